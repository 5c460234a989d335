"""Run records: the :class:`RunRecord` type, one JSON file per (model, dataset, preset, seed), written atomically.

The runner builds a :class:`RunRecord` and writes it with :meth:`RunRecord.write`; the report, the plots
and :func:`stbench.load_records` read it back with :meth:`RunRecord.from_dict` / :func:`read_records`.
There is no other description of a record: ``results/README.md`` documents these fields.

A record is rewritten as the run progresses (status ``running`` with its history, then ``completed``
or ``failed``); every write goes to a temporary file in the same directory, is flushed to disk and then
renamed over the old record, so a crash at any moment leaves either the previous complete record or
the new one, never half of one. Per-sequence test metrics live beside the record in a compressed
``<record>.per_sequence.npz`` (one float64 array per metric, one value per test sequence).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 2: kind "evaluated", checkpoint, source, per_sequence; profile.published_fps (v1 readable)
N_EXAMPLES = 4  # test sequences kept as example strips beside a record (run and eval alike)
KINDS = ("model", "floor", "evaluated", "trial")  # trial: a `stbench tune` run stopped after validation
FAMILIES = ("recurrent", "parallel")  # a model's family: steps frame by frame, or predicts all frames at once


def family_of(recurrent: bool) -> str:
    """The family name of a model (or temporal module) with this ``recurrent`` flag."""
    return FAMILIES[0] if recurrent else FAMILIES[1]


REQUIRED_KEYS = ("schema_version", "status", "kind", "model", "dataset", "preset", "seed", "family")


class RecordError(ValueError):
    """A JSON file that cannot be read as a run record; the message says why (one line)."""


@dataclass
class RunRecord:
    """One run: a trained model (``kind="model"``), a sanity floor (``"floor"``) or a checkpoint evaluated
    without training (``"evaluated"``, with ``checkpoint`` and ``source`` naming where the weights came from).

    Build one with :meth:`new`, fill it as the run goes, write it with :meth:`write`.
    """

    model: str
    dataset: str
    preset: str
    seed: int
    kind: str = "model"
    status: str = "running"  # running | completed | failed | interrupted
    reason: str | None = None
    family: str = "-"  # one of FAMILIES, or floor
    encoder: str = "-"
    temporal: str = "-"
    decoder: str = "-"
    metrics: dict[str, float] | None = None  # test-set metrics of the selected weights
    per_frame: dict[str, list[float]] | None = None  # metric -> T_out values
    per_sequence: dict[str, Any] | None = None  # {"file": "<name>.per_sequence.npz", "metrics": [...], "n": N}
    metrics_meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> stbench.metrics.MetricDef
    convention: str | None = None  # the metric convention, in words, as it was when the record was written
    val: dict[str, Any] | None = None  # {"best_epoch", "metrics"} of the selected weights on the validation split
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch
    profile: dict[str, Any] | None = None  # stbench.profile.ProfileResult.as_dict()
    examples: dict[str, Any] | None = None  # {"file", "indices"}: qualitative strips beside the record
    checkpoint: dict[str, Any] | None = None  # "evaluated": {"file", "sha256", "source"} of the weights evaluated
    source: str | None = None  # "evaluated": whose checkpoint it is (stbench | openstl | predformer)
    rollout: str | None = None  # how T_out frames were made: frame | latent (parallel) | recurrent
    budget: dict[str, Any] | None = None  # training budget and what was spent: stbench.budget.budget_record
    horizon: dict[str, Any] | None = None  # `stbench eval --t-out N`: {t_in, t_out, trained_t_out, ...} (horizon.py)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved recipe the run used
    env: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)  # started_at, finished_at, train_s, eval_s, total_s
    run_id: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.run_id:
            sub = (self.config or {}).get("budget_dir")
            self.run_id = f"{self.dataset}/{self.preset}/{sub + '/' if sub else ''}{self.model}__seed{self.seed}"
        if not self.timing:
            self.timing = {"started_at": now_iso(), "finished_at": None, "train_s": 0.0, "eval_s": 0.0,
                           "total_s": 0.0}

    # -- files ----------------------------------------------------------------------------------
    def path(self, out: Path) -> Path:
        sub = (self.config or {}).get("budget_dir")  # a run at a budget asked for apart from the preset's
        if self.kind == "evaluated" and self.checkpoint:  # one record per evaluated weights file (and horizon)
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(self.checkpoint.get("file", "weights"))).stem)
            t_out = f"__t{int(self.horizon['t_out'])}" if self.horizon else ""
            sha = str(self.checkpoint.get("sha256") or "")[:8]  # runA/best.pt and runB/best.pt: two records
            name = f"{safe_name(self.model)}__evaluated_{stem}{'-' + sha if sha else ''}{t_out}.json"
            return record_path(out, self.dataset, self.preset, "", 0, budget_dir=sub).with_name(name)
        return record_path(out, self.dataset, self.preset, self.model, self.seed, budget_dir=sub)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, out: Path, per_sequence: dict[str, Any] | None = None) -> Path:
        """Write the record (and, if given, its per-sequence metrics beside it) under ``out``."""
        path = self.path(out)
        if per_sequence:
            ps = path.with_suffix(".per_sequence.npz")
            atomic_write_npz(ps, per_sequence)
            first = next(iter(per_sequence.values()))
            self.per_sequence = {"file": ps.name, "metrics": list(per_sequence), "n": int(len(first))}
        atomic_write_json(path, self.to_dict())
        return path

    def per_sequence_arrays(self, record_file: Path) -> dict[str, Any] | None:
        """The per-sequence test metrics stored beside ``record_file`` (None when there are none)."""
        if not self.per_sequence or not self.per_sequence.get("file"):
            return None
        import numpy as np

        f = Path(record_file).parent / self.per_sequence["file"]
        try:
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    # -- reading ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, rec: Any) -> RunRecord:
        """A record from parsed JSON of any known schema version; raises :class:`RecordError` saying why not."""
        problem = validate(rec)
        if problem:
            raise RecordError(problem)
        rec = upgrade(rec)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in rec.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordError(f"not a readable JSON record ({exc})") from None
        return cls.from_dict(data)


def upgrade(rec: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record as a schema-2 one (same values; new keys None). Version 1 wrote the profile's
    ``published_fps`` while its reader looked for ``published_protocol_fps``; both now read as
    ``profile.published_fps``."""
    rec = dict(rec)
    prof = rec.get("profile")
    if isinstance(prof, dict) and "published_protocol_fps" in prof:
        prof = dict(prof)
        prof.setdefault("published_fps", prof.pop("published_protocol_fps"))
        rec["profile"] = prof
    for key in ("per_sequence", "checkpoint", "source", "rollout", "horizon"):
        rec.setdefault(key, None)
    rec["history"] = rec.get("history") or []
    for key in ("metrics_meta", "config", "env", "timing"):
        rec[key] = rec.get(key) or {}
    return rec


def is_number(x: Any) -> bool:
    """An int or float that is not a bool (JSON numbers as a record holds them)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def nonfinite_metrics(metrics: dict[str, Any] | None, per_frame: dict[str, Any] | None = None) -> list[str]:
    """``["mse=inf", "ssim=nan (frame 3)", ...]``: the test metrics (overall, then per frame) that are NaN or
    infinite. A result with any is never ``completed`` (the runner, ``stbench eval`` and the report agree)."""
    import math

    bad = [f"{k}={float(v)}" for k, v in (metrics or {}).items() if is_number(v) and not math.isfinite(v)]
    named = {b.split("=")[0] for b in bad}
    for k, vals in (per_frame or {}).items():
        if k in named or not isinstance(vals, (list, tuple)):
            continue
        t = next((t for t, v in enumerate(vals) if is_number(v) and not math.isfinite(v)), None)
        if t is not None:
            bad.append(f"{k}={float(vals[t])} (frame {t + 1})")
    return bad


def validate(rec: Any) -> str | None:
    """Why ``rec`` cannot be read as a run record of schema 1 or 2, or None when it can."""
    if not isinstance(rec, dict):
        return f"top level is a JSON {type(rec).__name__}, not an object"
    version = rec.get("schema_version")
    if "schema_version" in rec and isinstance(version, int) and not isinstance(version, bool):
        if version > SCHEMA_VERSION:
            return (f"schema_version {version} is newer than this reader's {SCHEMA_VERSION}; "
                    "upgrade stbench to read it")
        if version < 1:
            return f"schema_version {version} is not a known version"
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        return f"missing required key(s) {', '.join(missing)}"
    if not isinstance(version, int) or isinstance(version, bool):
        return f"schema_version is {version!r}, not an integer"
    for key in ("status", "kind", "model", "dataset", "preset", "family"):
        if not isinstance(rec[key], str) or not rec[key]:
            return f"'{key}' is {rec[key]!r}, not a non-empty string"
    if not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool):
        return f"seed is {rec['seed']!r}, not an integer"
    if rec["status"] == "completed" and rec["kind"] == "trial":  # validation only: the test split is never seen
        if not isinstance(((rec.get("val") or {}).get("metrics") or {}).get("mse"), (int, float)):
            return "a completed tuning trial without a validation mse"
    elif rec["status"] == "completed":
        metrics = rec.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            return "a completed record without 'metrics'"
        bad = [k for k, v in metrics.items() if v is not None and not is_number(v)]
        if bad:
            return f"metric(s) {', '.join(bad)} are not numbers"
    for key in ("profile", "timing", "config", "env", "per_frame", "metrics_meta", "examples", "per_sequence",
                "checkpoint"):
        if rec.get(key) is not None and not isinstance(rec[key], dict):
            return f"'{key}' is a {type(rec[key]).__name__}, not an object"
    if rec.get("history") is not None and not isinstance(rec["history"], list):
        return "'history' is not a list"
    return None


CARD_SUFFIX = ".card.json"  # a model card beside a record (stbench.weights): JSON, but not a record


def is_record_name(name: str) -> bool:
    """Whether a ``*.json`` file name under ``records/`` is a run record: not the writer's temporary file (a name
    starting with '.', see atomic_write_bytes) and not a model card."""
    return name.endswith(".json") and not name.startswith(".") and not name.endswith(CARD_SUFFIX)


def find_record_files(results_dir: Path) -> list[Path]:
    """Every record ``*.json`` under ``<results>/records`` (or under ``results_dir`` itself when it has no records/)."""
    sub = Path(results_dir) / "records"
    root = sub if sub.is_dir() else Path(results_dir)
    return sorted(p for p in root.rglob("*.json") if p.is_file() and is_record_name(p.name))


def read_records(results_dir: Path) -> tuple[list[tuple[Path, RunRecord]], list[str]]:
    """(path, record) for every readable record under ``results_dir``, and one warning per skipped file."""
    out, warnings = [], []
    for path in find_record_files(results_dir):
        try:
            out.append((path, RunRecord.read(path)))
        except RecordError as exc:
            warnings.append(f"skipped {path}: {exc}")
    return out, warnings


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def safe_name(model: str) -> str:
    return model.replace("@", "_at_").replace("/", "_")


def record_path(out: Path, dataset: str, preset: str, model: str, seed: int, *, budget_dir: str | None = None) -> Path:
    """``<out>/records/<dataset>/<preset>/[<budget_dir>/]<model>__seed<s>.json``: ``budget_dir`` (from
    :func:`stbench.budget.budget_dir`) keeps the runs of a budget asked for apart from the preset's own."""
    return Path(out) / "records" / dataset / preset / (budget_dir or "") / f"{safe_name(model)}__seed{seed}.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


@contextlib.contextmanager
def cell_lock(record: Path) -> Iterator[None]:
    """Hold ``<record>.lock`` (created with O_EXCL, holding pid and host) while a run or evaluation writes
    ``record``. A lock held by a live process, or by any process on another host, is refused in one line;
    one left by a dead process on this host (SIGKILL, power loss) is taken over."""
    from stbench.errors import UserError

    lock = Path(record).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(holder["pid"]), str(holder["host"])
            except (OSError, ValueError, KeyError, TypeError):
                holder, pid, host = None, -1, me["host"]  # half-written: its writer died between open and write
            if attempt == 0 and host == me["host"] and (pid < 0 or not _pid_alive(pid)):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            since = f" since {holder.get('since')}" if isinstance(holder, dict) and holder.get("since") else ""
            raise UserError(f"{Path(record).name} is being written by process {pid} on {host}{since} (lock "
                            f"{lock}); wait for it to finish, or delete the lock if that process is gone") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        try:
            if json.loads(lock.read_text(encoding="utf-8")).get("pid") == me["pid"]:
                lock.unlink()
        except (OSError, ValueError):
            pass


def checkpoint_path(out: Path, dataset: str, preset: str, model: str, seed: int, *,
                    budget_dir: str | None = None) -> Path:
    return Path(out) / "checkpoints" / dataset / preset / (budget_dir or "") / f"{safe_name(model)}__seed{seed}.pt"


@lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temporary file, fsync, rename). A failing disk (full, read-only,
    quota) is a one-line :class:`~stbench.errors.UserError` naming the file; the temporary file is removed."""
    from stbench.errors import UserError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc}); free space or choose another --out") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a record is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # the previous version of the file, if any, is untouched
            raise UserError(f"cannot write {path} ({exc.strerror or exc}); free space or choose another "
                            "--out") from None
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


def read_record(path: Path) -> RunRecord | None:
    """The record at ``path``, or None when there is none or it cannot be read."""
    try:
        return RunRecord.read(path)
    except RecordError:
        return None


def check_writable(out: Path) -> None:
    """Raise UserError with a one-line fix if ``out`` cannot hold records."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".stbench-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        from stbench.errors import UserError

        raise UserError(
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
