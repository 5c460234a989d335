"""The rich console every command prints through, and the one way a duration is written for people."""

from __future__ import annotations

import os

from rich.console import Console

PIPE_WIDTH = 140  # rich assumes 80 columns when output is not a terminal; tables need more


def make_console(stderr: bool = False, quiet: bool = False) -> Console:
    con = Console(stderr=stderr, highlight=False, soft_wrap=False, quiet=quiet)
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con = Console(stderr=stderr, highlight=False, soft_wrap=False, quiet=quiet, width=PIPE_WIDTH)
    return con


def duration(seconds: float) -> str:
    """42.3 -> '42s', 4.25 -> '4.2s', 312 -> '5m 12s', 3720 -> '1h 02m' (the report, run estimates, status)."""
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"
