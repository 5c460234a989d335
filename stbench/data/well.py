"""``well``: any dataset of The Well (Ohana et al., NeurIPS 2024 D&B) from its HDF5 files, 2-D grids.

Layout (The Well's): ``<data_root>/data/{train,valid,test}/*.hdf5`` (or ``<data_root>/{train,valid,test}/``).
Each file has root attributes (``dataset_name``, ``n_spatial_dims``, ``n_trajectories``, ...), a
``dimensions`` group (``time``, ``x``, ``y``), ``t0_fields`` (scalar fields, datasets
``(n_traj, n_steps, x, y)``), ``t1_fields`` (vector fields, ``(n_traj, n_steps, x, y, 2)``) and
``t2_fields`` (tensor fields, ``(..., 2, 2)``). Fields whose ``time_varying`` attribute is false are
skipped unless named. h5py is an optional extra: ``pip install 'stbench[well]'``.

A split's files are opened only when that split is read (the shape and channel names come from the first test
file, else val, else train): the test directory alone serves ``stbench eval``.

Channels: the chosen ``fields`` (``--set data.fields=density,velocity``; default: every time-varying
t0 and t1 field, in file order), a scalar field one channel, a vector field its components, a tensor
field its 4 components. Grid ``(x, y)`` becomes ``(H, W) = (x, y)``. Samples: every window of
``T_in + T_out`` consecutive steps of every trajectory, windows starting every ``stride`` steps
(default 1), files in name order. Splits: The Well's own ``train`` / ``valid`` / ``test`` directories.
Values are raw (not normalised; declared scale (-1, 1) is nominal, not a bound). Metrics: ``vrmse`` (The Well's
headline score, below), ``vrmse_<channel>`` per channel, and ``mse_px`` / ``rmse`` / ``rel_l2`` per frame.

VRMSE, as The Well computes it (``the_well/benchmark/metrics/spatial.py``: ``VRMSE`` = ``NRMSE`` with
``norm_mode="std"``): per sample, time step and channel, ``sqrt(mean over space of (pred - true)^2 /
(std over space of true)^2 + eps))`` with ``torch.std``'s sample (N - 1) variance and ``eps = 1e-7`` added to the
variance; its trainer then averages over the batch and time, per field and (``full``) over the fields, every
vector / tensor component being a field of its own. Here: ``vrmse`` per frame = the mean over channels, then the
mean over all (B, T) frames (the same number for equal batch sizes); ``vrmse_<channel>`` one channel's value,
channels named as The Well flattens them (``density``, ``velocity_x``, ``velocity_y``, ``stress_xy`` ...).
A channel constant in space has variance 0: its VRMSE is ``sqrt(mse / 1e-7)``, large unless predicted exactly.

Model building needs the shape before any file is read; a spec without ``data_root`` takes the
shape of the last ``well`` dataset built with files in this process (the runner builds it first), or
``channels`` / ``height`` / ``width`` given as options; otherwise the spec shows (C, H, W) = (0, 0, 0).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError, RecipeError
from stbench.metrics import register_metric
from stbench.registry import DATASETS, METRICS

SPLIT_DIRS = {"train": "train", "val": "valid", "test": "test"}
GROUPS = ("t0_fields", "t1_fields", "t2_fields")
INSTALL_HINT = "reading The Well needs h5py; fix: pip install 'stbench[well]'"
_LAST_SHAPE: dict[str, tuple[int, int, int]] = {}


def _h5() -> Any:
    try:
        import h5py
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    return h5py


def split_files(data_root: str | Path, split: str) -> list[Path]:
    root = Path(data_root)
    for base in (root / "data", root):
        d = base / SPLIT_DIRS[split]
        if d.is_dir():
            return sorted(list(d.glob("*.hdf5")) + list(d.glob("*.h5")))
    return []


def _field_names(f: Any, wanted: tuple[str, ...] | None) -> list[tuple[str, str]]:
    out = []
    for g in GROUPS:
        if g not in f:
            continue
        for name in f[g].keys():
            ds = f[g][name]
            if wanted is None and not bool(ds.attrs.get("time_varying", True)):
                continue
            if wanted is None or name in wanted:
                out.append((g, name))
    if wanted is not None:
        have = {n for _, n in out}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise DataError(f"{f.filename}: no field(s) {', '.join(missing)}; fields here: "
                            + ", ".join(n for g in GROUPS if g in f for n in f[g].keys()))
        out.sort(key=lambda gn: wanted.index(gn[1]))
    return out


FULL_SCAN_BYTES = 2 << 30  # a field up to this size is checked for NaN / Inf whole, trajectory by trajectory


def _all_finite(ds: Any) -> bool:
    """Whether an HDF5 field ``(n_traj, n_steps, ...)`` is finite: whole up to FULL_SCAN_BYTES, else the first
    trajectory whole and every trajectory's first and last step (where a simulation that blew up shows it)."""
    if ds.size * ds.dtype.itemsize <= FULL_SCAN_BYTES:
        return all(np.isfinite(ds[i]).all() for i in range(ds.shape[0]))
    return bool(np.isfinite(ds[0]).all() and np.isfinite(ds[:, 0]).all() and np.isfinite(ds[:, -1]).all())


def check_rows(data_root: str | Path, fields: tuple[str, ...] | None = None,
               splits: tuple[str, ...] = tuple(SPLIT_DIRS)) -> list[tuple[str, str, str]]:
    """One row per HDF5 file of ``splits``: readable, the expected groups and 2-D field shapes, finite values (see
    _all_finite); then one row per split whose fields differ from the training split's (when train is checked)."""
    h5py = _h5()
    rows = []
    seen: dict[str, tuple[Path, list[str]]] = {}  # split -> (its first file, its fields)
    for split in [s for s in SPLIT_DIRS if s in splits]:
        fs = split_files(data_root, split)
        if not fs:
            rows.append((str(Path(data_root) / "data" / SPLIT_DIRS[split]), "missing", "no .hdf5 files"))
        for p in fs:
            try:
                with h5py.File(p, "r") as f:
                    if "dimensions" not in f or not any(g in f for g in GROUPS):
                        rows.append((str(p), "missing", "groups 'dimensions' and t0/t1/t2_fields expected"))
                        continue
                    names = _field_names(f, fields)
                    if not names:
                        rows.append((str(p), "missing", "no time-varying field"))
                        continue
                    bad = None
                    for g, n in names:
                        ds = f[g][n]
                        rank = GROUPS.index(g)
                        if ds.ndim != 4 + rank:
                            bad = ("wrong shape", f"{g}/{n} {ds.shape}, expected (n_traj, n_steps, x, y)"
                                   + ("" if rank == 0 else ", then " + ", ".join(["d"] * rank)))
                        elif not np.issubdtype(ds.dtype, np.floating):
                            bad = ("wrong dtype", f"{g}/{n} {ds.dtype}, expected float")
                        elif not _all_finite(ds):
                            bad = ("out of range", f"{g}/{n} has non-finite values (NaN / Inf)")
                        if bad:
                            break
                    rows.append((str(p), *bad) if bad else (str(p), "ok", ", ".join(n for _, n in names)))
                    seen.setdefault(split, (p, [n for _, n in names]))
            except OSError as exc:
                rows.append((str(p), "wrong dtype", f"not a readable HDF5 file ({' '.join(str(exc).split())[:80]})"))
    if "train" in seen:  # a model trained on one set of fields is never tested on another
        for split, (p, names) in seen.items():
            if names != seen["train"][1]:
                rows.append((str(p), "wrong shape", f"fields differ between splits: {split} has {', '.join(names)}, "
                             f"train has {', '.join(seen['train'][1])}"))
    return rows


# -- VRMSE (The Well's definition) ------------------------------------------------------------------------------
VRMSE_EPS = 1e-7  # the_well NMSE's eps, added to the variance
_VRMSE_CONV = ("The Well's VRMSE: per frame and channel sqrt(mean over H*W of (pred - true)^2 / (sample variance over "
               "H*W of true + 1e-7))")


def vrmse_channels(pred: Any, true: Any) -> Any:
    """(B, T, C) VRMSE per frame and channel (float64)."""
    import torch

    B, T, C = pred.shape[:3]
    acc = torch.float64 if pred.device.type != "mps" else torch.float32
    p, t = pred.reshape(B, T, C, -1).to(acc), true.reshape(B, T, C, -1).to(acc)  # (B, T, C, H*W)
    return ((p - t).pow(2).mean(dim=-1) / (t.var(dim=-1, correction=1) + VRMSE_EPS)).sqrt()


@register_metric("vrmse", label="VRMSE", unit="", higher_is_better=False,
                  convention=_VRMSE_CONV + "; mean over channels, then over all (B, T) frames")
def vrmse(pred: Any, true: Any) -> Any:
    return vrmse_channels(pred, true).mean(dim=2)


def channel_names(f: Any, names: list[tuple[str, str]]) -> list[str]:
    """Channel names as The Well flattens its fields (``the_well/data/datasets.py``): a scalar its name, a vector
    ``name_x``, ``name_y``, a tensor ``name_xx``, ``name_xy``, ``name_yx``, ``name_yy``, the axis letters from the
    file's ``dimensions`` attribute ``spatial_dims`` (else x, y); lower case, other characters become ``_``."""
    axes = [str(a.decode() if isinstance(a, bytes) else a) for a in
            np.atleast_1d(f["dimensions"].attrs.get("spatial_dims", ["x", "y", "z"]))] if "dimensions" in f else []
    axes = axes or ["x", "y", "z"]
    out = []
    for g, n in names:
        base = "".join(ch if ch.isalnum() else "_" for ch in n.lower())
        dims = tuple(f[g][n].shape[4:])  # () scalar, (2,) vector, (2, 2) tensor
        out += [base + ("_" + "".join(axes[i] if i < len(axes) else str(i) for i in c) if c else "")
                for c in np.ndindex(*dims)]
    return out


_FIELD_METRICS: dict[str, Any] = {}


def register_field_vrmse(channels: list[str]) -> list[str]:
    """Register ``vrmse_<channel>`` for each channel (once per name); the channel is found by NAME in the
    dataset's ``metric_context["channels"]``, so datasets with other field choices share the definition."""
    names = []
    for ch in channels:
        name = f"vrmse_{ch}"
        if name not in _FIELD_METRICS:
            def fn(pred: Any, true: Any, *, channels: Any, ch: str = ch) -> Any:
                if ch not in channels:
                    raise DataError(f"metric 'vrmse_{ch}': this dataset has no channel '{ch}' (it has "
                                    f"{', '.join(channels)})")
                c = list(channels).index(ch)
                return vrmse_channels(pred[:, :, c:c + 1], true[:, :, c:c + 1])[:, :, 0]

            METRICS.register(name, obj=fn, label=f"VRMSE {ch}", higher_is_better=False, unit="",
                             convention=_VRMSE_CONV + f", channel {ch}; mean over all (B, T) frames",
                             per_frame=True, needs=("channels",))
            _FIELD_METRICS[name] = fn
        names.append(name)
    return names


def _fields_opt(fields: Any) -> tuple[str, ...] | None:
    if fields is None or fields == "all":
        return None
    if isinstance(fields, str):
        fields = [s.strip() for s in fields.split(",") if s.strip()]
    return tuple(str(x) for x in fields)


@DATASETS.register("well", check="stbench.data.well:check_rows")
class Well(Dataset):
    """A 2-D dataset of The Well (see :mod:`stbench.data.well`)."""

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 4, t_out: int = 4,
                 stride: int = 1, fields: Any = None, channels: int | None = None, height: int | None = None,
                 width: int | None = None) -> None:
        self.fields = _fields_opt(fields)
        params = dict(t_in=int(t_in), t_out=int(t_out), stride=int(stride),
                      fields="all" if self.fields is None else ",".join(self.fields))
        super().__init__(data_root=data_root, seed=seed, **params)
        self.frames = params["t_in"] + params["t_out"]
        self.stride = params["stride"]
        if min(self.frames, self.stride) < 1:
            raise RecipeError("well: t_in, t_out and stride must be >= 1")
        key = params["fields"]
        self.index: dict[str, list[tuple[Path, int, int]]] = {}
        self.channels: list[str] = []
        if data_root is not None:  # the shape from one file's header; a split's files are checked when first asked for
            shape = self._probe()
            _LAST_SHAPE[key] = shape
        elif None not in (channels, height, width):
            shape = (int(channels), int(height), int(width))
        elif key in _LAST_SHAPE:
            shape = _LAST_SHAPE[key]
        else:  # unknown until files are read (`stbench list datasets` shows 0s)
            shape = (0, 0, 0)
        self.spec = DatasetSpec(
            name="well", in_shape=(params["t_in"], *shape), t_out=params["t_out"], scale=(-1.0, 1.0),
            metrics=("vrmse", *register_field_vrmse(self.channels), "mse_px", "rmse", "rel_l2"),
            description=f"The Well HDF5, fields {key}, {params['t_in']} -> {params['t_out']} steps, raw values",
            sizes={}, params=params,  # filled per split as it is first asked for
            metric_context={"channels": tuple(self.channels)} if self.channels else {},
        )

    def _probe(self) -> tuple[int, int, int]:
        """(C, H, W) and the channel names, from the first file of test, else val, else train (scoring the test split
        opens no training file); a bad or absent file: the split's first bad row, in one line."""
        for split in ("test", "val", "train"):
            fs = split_files(self.data_root, split)
            if fs:
                try:
                    with _h5().File(fs[0], "r") as f:
                        names = _field_names(f, self.fields)
                        c = sum(int(np.prod(f[g][n].shape[4:], dtype=np.int64)) for g, n in names)
                        x, y = f[names[0][0]][names[0][1]].shape[2:4]
                        self.channels = channel_names(f, names)
                        return (c, int(x), int(y))
                except (OSError, KeyError, IndexError, ValueError, DataError):
                    raise_on_bad(check_rows(self.data_root, self.fields, (split,)))
                    raise
        raise_on_bad(check_rows(self.data_root, self.fields, ("test",)))  # no file at all: "missing"
        raise AssertionError("unreachable: check_rows reports an empty split as missing")

    def _scan(self, split: str) -> None:
        h5py = _h5()
        shape, idx = tuple(self.spec.frame_shape), []
        for p in split_files(self.data_root, split):
            with h5py.File(p, "r") as f:
                names = _field_names(f, self.fields)
                first = f[names[0][0]][names[0][1]]
                n_traj, n_steps, x, y = first.shape[:4]
                c = sum(int(np.prod(f[g][n].shape[4:], dtype=np.int64)) for g, n in names)
                if shape != (c, x, y) or channel_names(f, names) != self.channels:
                    raise DataError(f"{p}: fields give {(c, x, y)} (C, H, W) {', '.join(channel_names(f, names))}, "
                                    f"other files {shape} {', '.join(self.channels)}; fix: the same fields in every "
                                    "split")
                for tr in range(n_traj):
                    idx += [(p, tr, s) for s in range(0, n_steps - self.frames + 1, self.stride)]
        self.index[split] = idx
        self.spec.sizes[split] = len(idx)

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.data_root is None:
            raise DataError("well: pass --data-root DIR (a dataset of The Well)")
        if split not in self.index:  # bad files of the split stop here, before any training or writing
            raise_on_bad(check_rows(self.data_root, self.fields, (split,)))
            self._scan(split)
        return len(self.index[split])

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def _file(self, path: Path) -> Any:
        return _h5().File(path, "r")

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        self.check_range(split, start, stop)
        out = np.empty((stop - start, self.frames, *self.spec.frame_shape), np.float32)
        for k, (path, tr, s) in enumerate(self.index[split][start:stop]):
            f = self._file(path)
            chans = []
            for g, name in _field_names(f, self.fields):
                a = np.asarray(f[g][name][tr, s:s + self.frames], dtype=np.float32)  # (T, x, y, ...)
                a = a.reshape(*a.shape[:3], -1)  # (T, x, y, components)
                chans.append(np.moveaxis(a, -1, 1))  # (T, components, x, y)
            out[k] = np.concatenate(chans, axis=1)
        return out


