"""``stbench status``: one line per grid cell, read from the records (and the launch manifests).

    stbench status --results /shared/results

A cell is ``completed``, ``failed`` (with its reason), ``interrupted``, ``running`` (with its last
epoch and how long ago its record was written), or ``queued`` (submitted by ``--launcher slurm`` but
no record yet). Nothing is asked of the scheduler: the records are the truth, so this works from a
login node on the shared results directory, whatever launched the runs.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from stbench.console import duration
from stbench.launch.manifest import job_key, read_manifests
from stbench.records import RecordError, RunRecord, is_record_name, record_path

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
    return f"{duration(int((now - t).total_seconds()))} ago"


def _from_record(rec: RunRecord, path: Path, now: _dt.datetime) -> Cell:
    detail = ""
    if rec.status == "running":
        written = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC).isoformat(timespec="seconds")
        epochs = rec.config.get("epochs")
        last = f"epoch {len(rec.history)}/{epochs}" if epochs else f"epoch {len(rec.history)}"
        detail = f"{last}, record written {_age(written, now)}"
    elif rec.status in ("failed", "interrupted"):
        detail = str(rec.reason or "")
    elif rec.status == "completed":
        m = rec.metrics or {}
        detail = f"mse {m['mse']:.4g}" if isinstance(m.get("mse"), (int, float)) else ""
        if rec.kind == "floor":
            detail = f"floor; {detail}"
    return Cell(rec.dataset, rec.preset, rec.model, rec.seed if rec.kind != "floor" else None, rec.status, detail,
                rec.config.get("budget_dir"))


def grid_status(results: Path, now: _dt.datetime | None = None) -> list[Cell]:
    """Every cell with a record under ``results/records``, plus the manifest cells without one. A record
    :class:`~stbench.records.RunRecord` cannot read is listed as ``unreadable``, with the reason."""
    now = now or _dt.datetime.now(_dt.UTC)
    results = Path(results)
    cells: dict[tuple[str, str, str | None, str, int | None], Cell] = {}
    paths = [*(results / "records").glob("*/*/*.json"), *(results / "records").glob("*/*/*/*.json")]  # + budgets
    for path in sorted(paths):
        if not is_record_name(path.name):  # a model card or a temporary file beside the records
            continue
        try:
            rec = RunRecord.read(path)
        except RecordError as exc:  # named, not shown as "None None"
            ds, preset = path.parent.parent.name, path.parent.name
            cells[(ds, preset, None, path.stem, None)] = Cell(ds, preset, path.stem, None, "unreadable",
                                                              f"{path}: {exc}")
            continue
        c = _from_record(rec, path, now)
        cells[(c.dataset, c.preset, c.budget, c.model, c.seed)] = c
    for man in read_manifests(results):
        ds, preset = man.get("dataset"), man.get("preset")
        jobs = man.get("jobs", {})
        for model, seed, *budget in man.get("cells", []):  # [model, seed] or, from a sweep, [model, seed, folder]
            sub = budget[0] if budget else None
            if not record_path(results, ds, preset, model, seed, budget_dir=sub).exists():
                job = jobs.get(job_key(model, seed, sub))
                cells[(ds, preset, sub, model, seed)] = Cell(ds, preset, model, seed, "queued",
                                                             f"job {job}" if job else "", sub)
    return sorted(cells.values(), key=lambda c: (c.dataset, c.preset, c.budget or "", ORDER.get(c.status, -1),
                                                 c.model, -1 if c.seed is None else c.seed))


def summary(cells: list[Cell]) -> str:
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: ORDER.get(kv[0], -1)))
