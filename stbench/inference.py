"""``stbench predict`` / :func:`stbench.predict`: a trained model on your own arrays. (The module is not called
``predict``: importing ``stbench.predict`` would replace the function ``stbench.predict`` with the module.)

    stbench predict --checkpoint results/records/mmnist/quick/tau__seed0.safetensors --input x.npy --out pred.npy
    stbench predict --checkpoint w.safetensors --input clips.npz:test --t-out 30 --out pred.npz
    stbench predict --checkpoint weather.safetensors --input t2m_2019.nc:t2m --out pred.npy   # NetCDF: xarray

Python::

    import stbench
    pred = stbench.predict("tau__seed0.safetensors", x, t_out=30)   # x (N, T, C, H, W) or (T, C, H, W)
    pred = stbench.predict(model, x)                                  # an STModel: x already on its scale

Input: ``(N, T, C, H, W)`` or one sequence ``(T, C, H, W)``; C, H and W must be the model's, T at least its
T_in (with more frames, the LAST T_in are the model's input). From a file: ``.npy``; ``.npz`` with
``file.npz:key`` (or a file holding one array); NetCDF ``file.nc:var[,var2...]`` (needs xarray and netCDF4:
``pip install stbench[weather]``), each variable ``(time, lat, lon)`` or ``(time, level, lat, lon)``, its
channels in the order named, read as one sequence.

With a ``.safetensors`` + model card the dataset's normalisation (:func:`stbench.weights.normalisation`) is
applied to the input and undone on the prediction, so both are in the input's own units (weather: physical
units; images: [0, 1], or 0..255 for a uint8 input). Horizons past the trained one (``t_out``) are rolled out
by :func:`stbench.rollout.rollout`, as ``stbench eval`` scores them. Output: float32 ``(N, t_out, C, H, W)``
(``(t_out, C, H, W)`` for one sequence). Problems (shape, channels, frame size, missing card) are one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from stbench.errors import DataError, UserError

PREDICT_BATCH = 16


def predict(model_or_path: Any, array: Any, *, t_out: int | None = None, batch_size: int = PREDICT_BATCH,
            device: str | torch.device = "cpu", model: str | None = None) -> np.ndarray:
    """Predicted frames for ``array`` (see the module docstring); ``t_out`` defaults to the trained horizon.

    ``model_or_path``: a ``.safetensors`` (or ``.card.json``) written by ``stbench run``, or a model object
    (no normalisation then: ``array`` is on the model's scale). ``model``, with a path, must be the card's model.
    """
    from stbench.precision import resolve_device
    from stbench.weights import from_model, load_model, to_model

    device = device if isinstance(device, torch.device) else resolve_device(str(device))  # "auto" -> cuda | cpu
    if isinstance(model_or_path, (str, Path)):
        net, card = load_model(model_or_path, model=model, device=device)
        norm = card.get("normalisation")
    else:
        net, norm = model_or_path, None
    x = np.asarray(array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array)
    single = x.ndim == 4
    x = check_input(x, tuple(net.in_shape))  # (N, T_in, C, H, W)
    horizon = int(t_out) if t_out is not None else int(net.t_out)
    if horizon < 1:
        raise UserError(f"--t-out must be >= 1, got {horizon}")
    y = run(net, to_model(x, norm), horizon, batch_size=batch_size, device=device)
    y = from_model(y, norm, x.dtype)
    return y[0] if single else y


def check_input(x: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """``x (N, T, C, H, W)`` or ``(T, C, H, W)`` checked against the model's ``(T_in, C, H, W)``; returns its last
    T_in frames as ``(N, T_in, C, H, W)``."""
    t_in, c, h, w = in_shape
    want = f"(N, T, C, H, W) or (T, C, H, W) with C = {c}, H x W = {h} x {w}, T >= {t_in}"
    if x.ndim not in (4, 5):
        raise UserError(f"input has shape {tuple(x.shape)} ({x.ndim} axes); the model takes {want}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"input has dtype {x.dtype}; pass numbers (float or integer frames)")
    if x.ndim == 4:
        x = x[None]  # one sequence
    if x.shape[2] != c:
        raise UserError(f"input has {x.shape[2]} channels (axis C of {tuple(x.shape)}), the model takes {c}; "
                        f"expected {want}")
    if tuple(x.shape[3:]) != (h, w):
        raise UserError(f"input frames are {x.shape[3]} x {x.shape[4]}, the model takes {h} x {w}; resize them "
                        f"(expected {want})")
    if x.shape[1] < t_in:
        raise UserError(f"input has {x.shape[1]} frames per sequence, the model reads {t_in}; expected {want}")
    if x.shape[0] < 1:
        raise UserError("input holds no sequences (N = 0)")
    return x[:, -t_in:]


@torch.no_grad()
def run(net: torch.nn.Module, x: np.ndarray, t_out: int, *, batch_size: int = PREDICT_BATCH,
        device: str | torch.device = "cpu") -> np.ndarray:
    """The model's ``t_out`` frames for model-scale ``x (N, T_in, C, H, W)``, in batches; float32 numpy."""
    from stbench.precision import resolve_device
    from stbench.rollout import rollout

    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    was = net.training
    net.eval().to(dev)
    out = []
    try:
        for b0 in range(0, x.shape[0], int(batch_size)):
            xb = torch.from_numpy(np.ascontiguousarray(x[b0:b0 + int(batch_size)], dtype=np.float32)).to(dev)
            out.append(rollout(net, xb, t_out).float().cpu().numpy())  # (B, t_out, C, H, W)
    finally:
        net.train(was)
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# files in and out (the CLI)
# ---------------------------------------------------------------------------------------------
def _split_spec(spec: str) -> tuple[Path, str | None]:
    """``file.npz:key`` -> (file, key); a plain path (even one with ':' in a folder name) -> (path, None)."""
    p = Path(spec)
    if p.exists():
        return p, None
    head, sep, tail = spec.rpartition(":")
    return (Path(head), tail) if sep and head else (p, None)


def read_input(spec: str) -> np.ndarray:
    """An array from ``file.npy``, ``file.npz[:key]`` or ``file.nc[:var,...]`` (see the module docstring)."""
    path, key = _split_spec(spec)
    if not path.is_file():
        raise DataError(f"input file '{path}' does not exist; pass .npy, .npz[:key] or .nc[:var]")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            if key:
                raise UserError(f"'{path.name}' is a .npy file (one array); drop ':{key}'")
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if key is None and len(names) == 1:
                    key = names[0]
                if key is None:
                    raise UserError(f"'{path.name}' holds {len(names)} arrays ({', '.join(names)}); name one: "
                                    f"--input {path}:{names[0]}")
                if key not in names:
                    raise UserError(f"'{path.name}' has no array '{key}'; it holds {', '.join(names) or 'none'}")
                return z[key]
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"'{path.name}' is not a readable numpy file ({str(exc).splitlines()[0]})") from None
    if suffix in (".nc", ".nc4", ".netcdf"):
        return _read_netcdf(path, key)
    raise UserError(f"unknown input format '{path.suffix}'; pass .npy, .npz[:key] or .nc[:var] (NetCDF)")


def _read_netcdf(path: Path, key: str | None) -> np.ndarray:
    try:
        import xarray as xr
    except ImportError:
        raise UserError("reading NetCDF needs xarray and netCDF4: pip install 'stbench[weather]' (or save the "
                        "array as .npy)") from None
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"'{path.name}' is not a readable NetCDF file ({str(exc).splitlines()[0]}); "
                        "pip install 'stbench[weather]' for the netCDF4 engine") from None
    with ds:
        names = [k for k in ds.data_vars]
        wanted = [v.strip() for v in key.split(",") if v.strip()] if key else names[:1] if len(names) == 1 else None
        if not wanted:
            raise UserError(f"'{path.name}' holds the variables {', '.join(names)}; name them in channel order: "
                            f"--input {path}:{','.join(names)}")
        chans = []
        for v in wanted:
            if v not in ds:
                raise UserError(f"'{path.name}' has no variable '{v}'; it holds {', '.join(names)}")
            a = np.asarray(ds[v].values, dtype=np.float32)
            if a.ndim == 3:  # (time, lat, lon)
                a = a[:, None]
            if a.ndim != 4:
                raise UserError(f"variable '{v}' of '{path.name}' has dims {ds[v].dims}; expected (time, lat, lon) "
                                "or (time, level, lat, lon)")
            chans.append(a)
    return np.concatenate(chans, axis=1)  # (T, C, H, W): one sequence


def write_output(path: str | Path, pred: np.ndarray) -> Path:
    """``pred`` to ``.npy`` or ``.npz`` (array ``pred``), atomically."""
    import io

    from stbench.records import atomic_write_bytes, atomic_write_npz

    path = Path(path)
    if path.suffix.lower() == ".npz":
        atomic_write_npz(path, {"pred": pred})
    elif path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, pred)
        atomic_write_bytes(path, buf.getvalue())
    else:
        raise UserError(f"unknown output format '{path.suffix}'; write .npy or .npz (array 'pred')")
    return path
