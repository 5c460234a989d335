"""Launch manifests: ``<out>/grid/<dataset>__<preset>.json``, the cells a launcher submitted and their job ids.

Written by :mod:`stbench.launch.slurm` at each submission, read by ``stbench status`` (:mod:`stbench.status`) to
list the submitted cells that have no record yet as ``queued``. A cell is ``[model, seed]``, or from ``stbench
sweep`` ``[model, seed, budget folder]``; a job id is keyed ``[<budget folder>/]<model>__seed<seed>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stbench.records import atomic_write_json, now_iso


def manifest_path(out: Path, dataset: str, preset: str) -> Path:
    return Path(out) / "grid" / f"{dataset}__{preset}.json"


def job_key(model: str, seed: int, folder: str | None = None) -> str:
    """A cell's key in the manifest's ``jobs``."""
    return f"{folder + '/' if folder else ''}{model}__seed{seed}"


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``; ``{}`` when there is none or it cannot be read."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_manifests(out: Path) -> list[dict[str, Any]]:
    """Every readable manifest under ``<out>/grid``."""
    return [m for p in sorted((Path(out) / "grid").glob("*.json")) if (m := read_manifest(p))]


def update_manifest(out: Path, dataset: str, preset: str, cells: Iterable[tuple[str, int, str | None]],
                    jobs: Mapping[str, str]) -> Path:
    """Add ``cells`` ((model, seed, budget folder)) and ``jobs`` (:func:`job_key` -> job id) to the grid's manifest;
    the cells and jobs of earlier submissions are kept."""
    path = manifest_path(out, dataset, preset)
    old = read_manifest(path)
    listed = [[m, s, sub] if sub else [m, s] for m, s, sub in cells]
    cells_all = list(dict.fromkeys([*(tuple(c) for c in old.get("cells", [])), *map(tuple, listed)]))
    atomic_write_json(path, {"dataset": dataset, "preset": preset, "cells": [list(c) for c in cells_all],
                             "jobs": {**dict(old.get("jobs", {})), **jobs}, "updated_at": now_iso()})
    return path
