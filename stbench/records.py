"""Run records: one JSON file per (model, dataset, preset, seed), written atomically.

Schema: ``results/README.md``. A record is rewritten as the run progresses (status ``running`` with
its history, then ``completed`` or ``failed``); every write goes to a temporary file in the same
directory, is flushed to disk and then renamed over the old record, so a crash at any moment leaves
either the previous complete record or the new one, never half of one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def safe_name(model: str) -> str:
    return model.replace("@", "_at_").replace("/", "_")


def record_path(out: Path, dataset: str, preset: str, model: str, seed: int) -> Path:
    return Path(out) / "records" / dataset / preset / f"{safe_name(model)}__seed{seed}.json"


def checkpoint_path(out: Path, dataset: str, preset: str, model: str, seed: int) -> Path:
    return Path(out) / "checkpoints" / dataset / preset / f"{safe_name(model)}__seed{seed}.pt"


@lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a record is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode())


def atomic_write_npz(path: Path, arrays: dict[str, Any]) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def check_writable(out: Path) -> None:
    """Raise PermissionError with a one-line fix if ``out`` cannot hold records."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".stbench-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PermissionError(
            f"cannot write to output directory '{out}' ({exc.strerror or exc}); choose a writable one with --out"
        ) from None


@lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        # the code is dirty, not the results: modified records under results/ do not count
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                     "--", ".", ":(exclude)results"],
                                    capture_output=True, text=True, timeout=5).stdout.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"git_commit": commit, "git_dirty": dirty}


def env_info(device: Any, precision: str) -> dict[str, Any]:
    import numpy
    import torch

    import stbench
    from stbench.precision import device_name

    dev = str(device)
    return {
        "stbench": stbench.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **git_info(),
        "device": dev,
        "device_name": device_name(device.type, device.index or 0),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "hostname": socket.gethostname(),
    }
