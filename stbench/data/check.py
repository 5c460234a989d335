"""``stbench data check``: validate a dataset's standard files before a run.

:func:`check` returns one row ``(file, status, detail)`` per expected file (or directory, or array in
a file), status one of :data:`STATUSES`. A dataset names its checker on its registry
entry (``@DATASETS.register("x", check="module:function")``), the one place it is declared; ``stbench run``
calls :func:`preflight` before it writes anything, and the datasets call :func:`raise_on_bad` on the same
rows when they are constructed (the Python API), so bad files stop a run with the first bad row as a
one-line :class:`~stbench.errors.DataError`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stbench.errors import DataError

SPLITS = ("train", "val", "test")
STATUSES = ("ok", "missing", "wrong shape", "wrong dtype", "out of range")
Row = tuple[str, str, str]

def checker(dataset: str) -> Callable[[str | Path], list[Row]] | None:
    """The file checker on ``dataset``'s registry entry (``@DATASETS.register("x", check="module:function")``,
    a function ``data_root -> rows``), or None for a dataset without standard files (generated or built-in).
    An unknown dataset is a one-line "unknown dataset ..., did you mean" error."""
    from stbench.registry import DATASETS

    target = DATASETS.entry(dataset).meta.get("check")
    if target is None or callable(target):
        return target
    mod, _, fn = str(target).partition(":")
    return getattr(importlib.import_module(mod), fn)


def check(dataset: str, data_root: str | Path) -> list[Row]:
    """Rows ``(file, status, detail)`` for ``dataset``'s files under ``data_root``."""
    from stbench.registry import DATASETS

    fn = checker(dataset)
    if fn is None:
        known = ", ".join(e.name for e in DATASETS.entries() if e.meta.get("check"))
        raise DataError(f"dataset '{dataset}' has no standard files to check (generated or built-in); "
                        f"datasets with files: {known}")
    return list(fn(data_root))


def preflight(dataset: str, data_root: str | Path) -> None:
    """Check ``dataset``'s files (every dataset whose entry names a checker) and raise the first bad one."""
    fn = checker(dataset)
    if fn is not None:
        raise_on_bad(list(fn(data_root)))


def raise_on_bad(rows: list[Row]) -> None:
    """Raise the first bad row as a one-line DataError."""
    for file, status, detail in rows:
        if status != "ok":
            detail = " ".join(str(detail).split())
            raise DataError(f"{file}: {status} ({detail}); fix the file, check all with "
                            "`stbench data check --dataset NAME --data-root DIR`")


def mmnist_rows(data_root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[Row]:
    """Moving MNIST's standard files, validated by the readers the dataset uses (header-level checks); the
    training images serve ``train`` / ``val``, the test file ``test``."""
    from stbench.data import digits as D

    rows: list[Row] = []
    files = ((D.IDX_NAMES, "the MNIST training images", D.read_idx_images, ("train", "val")),
             ((D.TEST_SEQ_NAME,), f"{D.TEST_SEQ_NAME} (20 x 10000 x 64 x 64)", D.read_mnist_test_seq, ("test",)))
    for names, what, read, serves in files:
        if not set(serves) & set(splits):
            continue
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


SAMPLE = 8 << 20  # bytes read from the start, middle and end of a file larger than FULL for its fingerprint
FULL = 64 << 20  # files up to this size are hashed whole


def _file_digest(path: Path, h: Any) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with open(path, "rb") as f:
        if size <= FULL:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            return
        for start in (0, size // 2 - SAMPLE // 2, size - SAMPLE):
            f.seek(start)
            h.update(f.read(SAMPLE))


@functools.lru_cache(maxsize=8)
def data_source(dataset: str, data_root: str | None, splits: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What a record's numbers were computed on, part of its identity (issue 24): ``{"kind": "built-in"}``
    (generated or shipped data), or ``{"kind": "files", "root": ..., "fingerprint": sha256[:16]}`` over the
    dataset's files under ``data_root`` (the files its checker names, else every file under the root): each
    file's name, size and bytes (whole up to 64 MiB; beyond, 8 MiB from its start, middle and end). ``splits``
    (e.g. ``("test",)`` for ``stbench eval``): only the files of those splits, when the checker can tell them
    apart (its ``splits`` argument), so scoring never opens the training files (a checker that names directories,
    e.g. kth's person directories: the files in them); the result then says so."""
    if data_root is None:
        return {"kind": "built-in"}
    import hashlib

    root = Path(data_root).resolve()
    files: list[Path] = []
    fn = _checker_or_none(dataset)
    if fn is not None:
        try:
            files = [Path(r[0]) for r in (fn(root) if splits is None or not takes_splits(fn)
                                          else fn(root, splits=tuple(splits)))]
        except DataError:
            files = []
        named = [f if f.is_absolute() else root / f for f in files]
        files = [f for f in named if f.is_file()]
        if not files and splits is not None:  # a checker naming directories (kth: person directories): their files
            files = [f for d in named if d.is_dir() for f in d.rglob("*")
                     if f.is_file() and not any(p.startswith(".") for p in f.relative_to(d).parts)]
    if not files:
        files = [f for f in root.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.parts)]
    h = hashlib.sha256()
    for f in sorted(set(files)):
        try:
            h.update(str(f.relative_to(root) if f.is_relative_to(root) else f).encode())
            _file_digest(f, h)
        except OSError as exc:
            raise DataError(f"{f}: unreadable ({exc.strerror or exc}); fix the file or its permissions") from None
    out = {"kind": "files", "root": str(root), "fingerprint": h.hexdigest()[:16]}
    if splits is not None and fn is not None and takes_splits(fn):
        out["splits"] = list(splits)
    return out


def takes_splits(fn: Callable[..., Any]) -> bool:
    """Whether a file checker takes ``splits`` (checks only the files of the splits asked for)."""
    import inspect

    try:
        return "splits" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _checker_or_none(dataset: str) -> Callable[[str | Path], list[Row]] | None:
    from stbench.registry import RegistryError

    try:
        return checker(dataset)
    except RegistryError:  # a dataset name the registry does not know: every file under the root counts
        return None


def describe_source(src: dict[str, Any] | None) -> str:
    src = src or {"kind": "built-in"}
    if src.get("kind") != "files":
        return "the built-in data"
    fp = src.get("fingerprint")
    return f"the files under {src.get('root')}" + (f" (fingerprint {fp})" if fp else "")


def same_source(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two data sources are the same; a record older than fingerprints matches on its root alone."""
    a, b = a or {"kind": "built-in"}, b or {"kind": "built-in"}
    if a.get("kind") != b.get("kind"):
        return False
    if a.get("kind") != "files":
        return True
    if a.get("fingerprint") and b.get("fingerprint") and a.get("splits") == b.get("splits"):
        return a["fingerprint"] == b["fingerprint"]
    return Path(str(a.get("root"))).resolve() == Path(str(b.get("root"))).resolve()


def source_of_record(config: dict[str, Any] | None) -> dict[str, Any]:
    """The data source a record states (``config.data_source``), or for an older record its ``data_root``."""
    config = config or {}
    if isinstance(config.get("data_source"), dict):
        return config["data_source"]
    root = config.get("data_root")
    return {"kind": "files", "root": str(root)} if root else {"kind": "built-in"}


def format_rows(rows: list[Row]) -> str:
    """Rows as aligned text lines ``status  file  detail``."""
    width = max((len(r[1]) for r in rows), default=2)
    return "\n".join(f"{status:<{width}}  {file}  {detail}" for file, status, detail in rows)
