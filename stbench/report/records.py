"""Run records on disk -> one pandas DataFrame row per run, skipping (with a warning) what cannot be read.

Records are read as :class:`stbench.records.RunRecord` (the one type the runner writes; schema 1 records
are upgraded on reading). A record that is not valid JSON, lacks a required key, has a value of the
wrong type, or comes from a newer schema than this reader's is skipped and named in a warning; it is
never half-read. The schema is documented in ``results/README.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stbench.budget import budget_of
from stbench.records import (  # noqa: F401
    RecordError,
    RunRecord,
    find_record_files,
    is_number,
    nonfinite_metrics,
    validate,
)

HOW_TO_CREATE = "stbench run --models tau --dataset mmnist --preset quick"
# statuses are not checked against a list: only "completed" is ranked, any other ("running", "failed",
# "interrupted", ...) is listed under the table with its reason

# Columns every records DataFrame has (metric columns such as ``mse`` are added per metric found).
BASE_COLUMNS = (
    "path", "run_id", "status", "reason", "kind", "model", "dataset", "preset", "seed", "family",
    "encoder", "temporal", "decoder", "params", "flops", "flops_convention", "infer_seq_per_s", "infer_batch",
    "published_fps", "device", "device_name", "precision", "train_s", "total_s", "finished_at",
    "epochs", "convention", "examples_file", "examples_indices", "per_sequence_file", "checkpoint", "source",
    "rollout", "budget", "samples_seen", "train_flops", "tuning", "horizon", "record",
)


class EmptyResultsError(RuntimeError):
    """No usable record under the results directory. The message is one line that says how to make some."""

    def __init__(self, message: str, warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.warnings = list(warnings or [])


@dataclass
class LoadedRecords:
    frame: pd.DataFrame  # one row per run (BASE_COLUMNS + one column per metric name)
    warnings: list[str] = field(default_factory=list)
    n_files: int = 0
    metrics_meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> {higher_is_better, ...}
    metric_names: list[str] = field(default_factory=list)  # every metric column, in order of first appearance


def records_root(results_dir: Path) -> Path:
    """``<results>/records`` when it exists, else the directory itself (a folder of records is accepted)."""
    sub = Path(results_dir) / "records"
    return sub if sub.is_dir() else Path(results_dir)


def _num(x: Any) -> float:
    """A number as float; anything else, and +-inf, as NaN (missing): no cell or plot ever shows an infinity."""
    return float(x) if is_number(x) and math.isfinite(x) else math.nan


def _row(rec: RunRecord, path: Path) -> dict[str, Any]:
    profile = rec.profile or {}
    env, timing, config, examples = rec.env, rec.timing, rec.config, rec.examples or {}

    def beside(name: Any) -> str | None:
        if not isinstance(name, str) or not name:
            return None
        f = Path(name)
        return str(f if f.is_absolute() else path.parent / f)

    indices = examples.get("indices")
    budget = budget_of(rec)
    row: dict[str, Any] = {
        "path": str(path),
        "run_id": rec.run_id,
        "status": rec.status,
        "reason": rec.reason,
        "kind": rec.kind,
        "model": rec.model,
        "dataset": rec.dataset,
        "preset": rec.preset,
        "seed": rec.seed,
        "family": rec.family,
        "encoder": rec.encoder or "-",
        "temporal": rec.temporal or "-",
        "decoder": rec.decoder or "-",
        "params": _num(profile.get("params")),
        "flops": _num(profile.get("flops")),
        "flops_convention": profile.get("flops_convention"),
        "infer_seq_per_s": _num(profile.get("infer_seq_per_s")),
        "infer_batch": _num(profile.get("infer_batch")),
        "published_fps": _num(profile.get("published_fps")),
        "device": profile.get("device") or env.get("device"),
        "device_name": env.get("device_name"),
        "precision": profile.get("precision") or env.get("precision"),
        "train_s": _num(timing.get("train_s")),
        "total_s": _num(timing.get("total_s")),
        "finished_at": timing.get("finished_at"),
        "epochs": _num(config.get("epochs")),
        "convention": rec.convention,
        "examples_file": beside(examples.get("file")),
        "examples_indices": tuple(indices) if isinstance(indices, list) else None,
        "per_sequence_file": beside((rec.per_sequence or {}).get("file")),
        "checkpoint": _checkpoint_label(rec),
        "source": rec.source,
        "rollout": rec.rollout,
        "budget": (budget or {}).get("label"),
        "samples_seen": _num((budget or {}).get("samples_seen")),
        "train_flops": _num((budget or {}).get("train_flops")),
        "tuning": tuning_label(rec),
        "horizon": int(rec.horizon["t_out"]) if rec.horizon else None,  # `stbench eval --t-out N` (horizon.py)
        "record": rec.to_dict(),
    }
    for name, value in (rec.metrics or {}).items():
        if name not in row:  # a metric can never shadow a base column
            row[name] = _num(value)
    return row


def tuning_label(rec: RunRecord) -> str | None:
    """How the row's hyper-parameters were chosen: "published" (the paper preset's), "preset" (the recipe's, not
    tuned), or "tuned on val, K trials" (``stbench tune``); None for floors and evaluated checkpoints."""
    if rec.kind != "model":
        return None
    tuning = (rec.config or {}).get("tuning")
    if not tuning:
        return "published" if rec.preset == "paper" else "preset"
    return f"tuned on val, {len(tuning.get('trials', []))} trials"


def _checkpoint_label(rec: RunRecord) -> str | None:
    """``kind == "evaluated"`` records (``stbench eval``): the evaluated file's name, else None.

    Evaluated checkpoints are rows of their own: never merged with the trained runs of the same model,
    nor with another checkpoint of it.
    """
    ckpt = rec.checkpoint
    if rec.kind != "evaluated" or not isinstance(ckpt, dict) or rec.horizon:  # a roll-out: seeds aggregate per model
        return None
    return f"{ckpt.get('file') or '?'} ({ckpt.get('source') or rec.source or '?'})"


def _sha(rec: RunRecord) -> str | None:
    return (rec.checkpoint or {}).get("sha256") if isinstance(rec.checkpoint, dict) else None


def _tell_apart_same_named_checkpoints(rows: Any) -> None:
    """``best.pt (stbench)`` from runA/ and from runB/: each label gets its weights' sha256 prefix."""
    shas: dict[tuple[Any, ...], set[str | None]] = {}
    for row in rows:
        if row["checkpoint"]:
            shas.setdefault((row["dataset"], row["preset"], row["model"], row["checkpoint"]), set()).add(
                (row["record"].get("checkpoint") or {}).get("sha256"))
    for row in rows:
        key = (row["dataset"], row["preset"], row["model"], row["checkpoint"])
        if row["checkpoint"] and len(shas[key]) > 1:
            sha = (row["record"].get("checkpoint") or {}).get("sha256") or "?"
            row["checkpoint"] = f"{row['checkpoint']} sha256 {sha[:8]}"


def load_records(results_dir: Path) -> LoadedRecords:
    """Every readable record under ``results_dir`` (see :func:`records_root`).

    Raises :class:`EmptyResultsError` when there is none; unreadable files become warnings.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise EmptyResultsError(f"results directory '{results_dir}' does not exist; create results with: "
                                f"{HOW_TO_CREATE}")
    files = find_record_files(results_dir)
    if not files:
        raise EmptyResultsError(f"no run records (*.json) under '{records_root(results_dir)}'; create results "
                                f"with: {HOW_TO_CREATE}")
    warnings: list[str] = []
    rows: dict[tuple[str, str, str, int, str | None], dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    names: dict[str, None] = {}
    versioned = 0  # files that at least claim to be records
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.append(f"skipped {path}: not a readable JSON record ({exc})")
            continue
        versioned += isinstance(data, dict) and "schema_version" in data
        try:
            rec = RunRecord.from_dict(data)
        except RecordError as exc:
            warnings.append(f"skipped {path}: {exc}")
            continue
        if rec.kind == "trial":  # `stbench tune` trials are validation-only runs: never a leaderboard row
            continue
        bad = nonfinite_metrics(rec.metrics, rec.per_frame) if rec.status == "completed" else []
        if bad:  # never ranked nor plotted: listed under its table as failed, named here (issue 24)
            warnings.append(f"{path}: non-finite test metrics ({', '.join(bad[:4])}); not ranked or plotted, "
                            "listed as failed")
            rec.status, rec.reason = "failed", f"non-finite test metrics ({', '.join(bad[:4])})"
        row = _row(rec, path)
        key = (row["dataset"], row["preset"], row["model"], row["seed"], row["checkpoint"], row["budget"],
               row["horizon"])
        key = (*key, _sha(rec))  # two weights files of one name are two rows (issue 24)
        if key in rows:
            old = rows[key]
            keep_new = str(row["finished_at"] or "") >= str(old["finished_at"] or "")
            kept, dropped = (row, old) if keep_new else (old, row)
            warnings.append(f"duplicate run {row['run_id']} in {old['path']} and {row['path']}; "
                            f"using the newer one ({kept['path']}), ignoring {dropped['path']}")
            rows[key] = kept
        else:
            rows[key] = row
        names.update(dict.fromkeys(k for k in (rec.metrics or {}) if k not in BASE_COLUMNS))
        for name, m in rec.metrics_meta.items():
            if isinstance(m, dict):
                meta.setdefault(name, m)
    _tell_apart_same_named_checkpoints(rows.values())
    if not rows:
        what = (f"none of the {len(files)} record file(s) under '{records_root(results_dir)}' could be read "
                f"({len(warnings)} skipped, see the warnings)" if versioned else
                f"no run records under '{records_root(results_dir)}' (its {len(files)} JSON file(s) have no "
                "schema_version)")
        raise EmptyResultsError(f"{what}; create results with: {HOW_TO_CREATE}", warnings)
    frame = pd.DataFrame(list(rows.values()))
    for col in BASE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    return LoadedRecords(frame=frame, warnings=warnings, n_files=len(files), metrics_meta=meta,
                         metric_names=list(names))
