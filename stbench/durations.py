"""How stbench writes a duration for people: ``4m05s`` under an hour, ``2h13m`` from an hour on (the run's
time estimate and summary, ``stbench status``)."""

from __future__ import annotations


def fmt_duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
