"""``stbench data check``: validate a dataset's standard files before a run.

:func:`check` returns one row ``(file, status, detail)`` per expected file (or directory, or array in
a file), status one of :data:`STATUSES`. The datasets call :func:`raise_on_bad` on the same rows when
they are constructed, so ``stbench run`` stops before training, and before writing anything, with
the first bad row as a one-line :class:`~stbench.errors.DataError`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from stbench.errors import DataError

STATUSES = ("ok", "missing", "wrong shape", "wrong dtype", "out of range")
Row = tuple[str, str, str]

#: dataset name -> "module:function(data_root) -> rows" (resolved lazily)
CHECKERS: dict[str, str] = {
    "mmnist": "stbench.data.check:mmnist_rows",
    "taxibj": "stbench.data.taxibj:check_rows",
    "kth": "stbench.data.kth:kth_check_rows",
    "kth40": "stbench.data.kth:kth_check_rows",
}


def register_checker(names: tuple[str, ...] | list[str], target: str) -> None:
    for n in names:
        CHECKERS[n] = target


def check(dataset: str, data_root: str | Path) -> list[Row]:
    """Rows ``(file, status, detail)`` for ``dataset``'s files under ``data_root``."""
    from stbench.registry import DATASETS

    if dataset not in CHECKERS:  # a dataset's file registers its checker: import it, or all of them to list them
        if dataset not in DATASETS or dataset not in CHECKERS:
            DATASETS.names()
    target = CHECKERS.get(dataset)
    if target is None:
        known = ", ".join(sorted(CHECKERS))
        raise DataError(f"dataset '{dataset}' has no standard files to check (generated or built-in); "
                        f"datasets with files: {known}")
    mod, _, fn = target.partition(":")
    return list(getattr(importlib.import_module(mod), fn)(data_root))


def preflight(dataset: str, data_root: str | Path) -> None:
    """Check ``dataset``'s files (if it has standard files) and raise the first bad one."""
    if dataset in CHECKERS or dataset.startswith("weather_"):
        raise_on_bad(check(dataset, data_root))


def raise_on_bad(rows: list[Row]) -> None:
    """Raise the first bad row as a one-line DataError."""
    for file, status, detail in rows:
        if status != "ok":
            detail = " ".join(str(detail).split())
            raise DataError(f"{file}: {status} ({detail}); fix the file, check all with "
                            "`stbench data check --dataset NAME --data-root DIR`")


def mmnist_rows(data_root: str | Path) -> list[Row]:
    """Moving MNIST's standard files, validated by the readers the dataset uses (header-level checks)."""
    from stbench.data import digits as D

    rows: list[Row] = []
    for names, what, read in ((D.IDX_NAMES, "the MNIST training images", D.read_idx_images),
                              ((D.TEST_SEQ_NAME,), f"{D.TEST_SEQ_NAME} (20 x 10000 x 64 x 64)", D.read_mnist_test_seq)):
        try:
            path = D.find_file(data_root, names, what)
        except DataError:
            rows.append((str(Path(data_root) / names[0]), "missing", what))
            continue
        try:
            arr = read(path)
        except DataError as exc:
            msg = str(exc).split(": ", 1)[-1]
            rows.append((str(path), "wrong dtype" if "dtype" in msg else "wrong shape", msg))
            continue
        rows.append((str(path), "ok", f"{arr.shape} {arr.dtype}"))
    return rows


def format_rows(rows: list[Row]) -> str:
    """Rows as aligned text lines ``status  file  detail``."""
    width = max((len(r[1]) for r in rows), default=2)
    return "\n".join(f"{status:<{width}}  {file}  {detail}" for file, status, detail in rows)
