"""``stbench status``: one line per grid cell, read from the records (and the launch manifests).

    stbench status --results /shared/results

A cell is ``completed``, ``failed`` (with its reason), ``interrupted``, ``running`` (with its last
epoch and how long ago its record was written), or ``queued`` (submitted by ``--launcher slurm`` but
no record yet). Nothing is asked of the scheduler: the records are the truth, so this works from a
login node on the shared results directory, whatever launched the runs.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stbench.console import duration
from stbench.launch.slurm import read_manifests
from stbench.records import is_record_name, record_path

ORDER = {"failed": 0, "interrupted": 1, "running": 2, "queued": 3, "completed": 4}


@dataclass
class Cell:
    dataset: str
    preset: str
    model: str
    seed: int | None
    status: str
    detail: str = ""
    budget: str | None = None  # the records sub-folder of a run at a budget asked for (stbench.budget.budget_dir)

    def line(self) -> str:
        seed = "-" if self.seed is None else str(self.seed)
        preset = f"{self.preset}/{self.budget}" if self.budget else self.preset
        return f"{self.dataset:<10} {preset:<6} {self.model:<20} seed {seed:<3} {self.status:<11} {self.detail}"


def _age(iso: str | None, now: _dt.datetime) -> str:
    if not iso:
        return ""
    try:
        t = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return ""
    s = max(0, int((now - t).total_seconds()))
    return f"{duration(s)} ago"


def _unshowable(rec: dict[str, Any]) -> str | None:
    """Why ``rec`` cannot be a row of the grid (the keys that place it, of the right types), or None."""
    missing = [k for k in ("dataset", "preset", "seed", "status") if k not in rec]
    if missing:
        return f"missing required key(s) {', '.join(missing)}"
    for key in ("dataset", "preset", "model", "status"):
        if not isinstance(rec[key], str) or not rec[key]:
            return f"'{key}' is {rec[key]!r}, not a non-empty string"
    if not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool):
        return f"seed is {rec['seed']!r}, not an integer"
    return None


def _from_record(rec: dict[str, Any], path: Path, now: _dt.datetime) -> Cell:
    status = str(rec.get("status", "?"))
    hist = rec.get("history") or []
    epochs = (rec.get("config") or {}).get("epochs")
    detail = ""
    if status == "running":
        written = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC).isoformat(timespec="seconds")
        last = f"epoch {len(hist)}/{epochs}" if epochs else f"epoch {len(hist)}"
        detail = f"{last}, record written {_age(written, now)}"
    elif status in ("failed", "interrupted"):
        detail = str(rec.get("reason") or "")
    elif status == "completed":
        m = rec.get("metrics") or {}
        detail = f"mse {m['mse']:.4g}" if isinstance(m.get("mse"), (int, float)) else ""
        if rec.get("kind") == "floor":
            detail = f"floor; {detail}"
    return Cell(str(rec.get("dataset")), str(rec.get("preset")), str(rec.get("model")),
                rec.get("seed") if rec.get("kind") != "floor" else None, status, detail,
                (rec.get("config") or {}).get("budget_dir"))


def grid_status(results: Path, now: _dt.datetime | None = None) -> list[Cell]:
    """Every cell with a record under ``results/records``, plus the manifest cells without one."""
    now = now or _dt.datetime.now(_dt.UTC)
    results = Path(results)
    cells: dict[tuple[str, str, str | None, str, int | None], Cell] = {}
    paths = [*(results / "records").glob("*/*/*.json"), *(results / "records").glob("*/*/*/*.json")]  # + budgets
    for path in sorted(paths):
        if not is_record_name(path.name):  # a model card or a temporary file beside the records
            continue
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            ds, preset = path.parent.parent.name, path.parent.name
            cells[(ds, preset, None, path.stem, None)] = Cell(ds, preset, path.stem, None, "unreadable", str(path))
            continue
        if not isinstance(rec, dict) or "model" not in rec:
            continue
        problem = _unshowable(rec)  # a record status cannot place is named, not shown as "None None"
        if problem:
            ds, preset = path.parent.parent.name, path.parent.name
            cells[(ds, preset, None, path.stem, None)] = Cell(ds, preset, path.stem, None, "unreadable",
                                                              f"{path}: {problem}")
            continue
        c = _from_record(rec, path, now)
        cells[(c.dataset, c.preset, c.budget, c.model, c.seed)] = c
    for man in read_manifests(results):
        ds, preset = man.get("dataset"), man.get("preset")
        jobs = man.get("jobs", {})
        for model, seed, *budget in man.get("cells", []):  # [model, seed] or, from a sweep, [model, seed, folder]
            sub = budget[0] if budget else None
            if not record_path(results, ds, preset, model, seed, budget_dir=sub).exists():
                job = jobs.get(f"{sub + '/' if sub else ''}{model}__seed{seed}")
                cells[(ds, preset, sub, model, seed)] = Cell(ds, preset, model, seed, "queued",
                                                             f"job {job}" if job else "", sub)
    return sorted(cells.values(), key=lambda c: (c.dataset, c.preset, c.budget or "", ORDER.get(c.status, -1),
                                                 c.model, -1 if c.seed is None else c.seed))


def summary(cells: list[Cell]) -> str:
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: ORDER.get(kv[0], -1)))
