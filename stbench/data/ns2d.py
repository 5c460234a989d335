"""``ns2d``: 2-D incompressible Navier-Stokes vorticity on the periodic unit square, generated locally
(no download) by a pseudo-spectral solver, following the setting of the FNO data generator
(Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021)::

    dw/dt + u . grad(w) = nu * lap(w) + f,    u = (d psi/dy, -d psi/dx),    -lap(psi) = w,

on [0, 1)^2 with viscosity ``nu = 1e-3``, forcing ``f(x, y) = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))``
and the initial vorticity a Gaussian random field ``N(0, 7^(3/2) (-lap + 49)^(-5/2))`` (FNO's
alpha = 2.5, tau = 7), mean zero.

Solver (vectorised over trajectories, torch FFTs; float32 for generation, float64 in the tests):
Fourier in space with 2/3-rule de-aliasing of the nonlinear term; in time an IMEX step,
Crank-Nicolson for the viscous term and Heun's predictor-corrector (explicit, 2nd order) for
advection + forcing. FNO's generator uses the same Crank-Nicolson treatment with a forward-Euler
advection step at dt = 1e-4 on 256^2; at 64^2 the 2nd-order explicit step allows dt = 0.05 (grid
CFL number u_max dt / dx up to ~0.5 for these fields; checked every frame, above 1 the solver stops
with a DataError). Against dt = 0.01 in float64 the relative L2 difference after 10 time units is
~2e-5 (float32, two fields). The solver runs on ONE torch thread (restored afterwards): on the 2-core
dev VM under load, 32 trajectories cost ~20 ms per step on one thread and ~800 ms with two threads
stalling on each other, so the quick preset's 44 trajectories x 39 time units take ~20-30 s.
Frames are recorded every ``frame_dt = 1`` time unit (as FNO's
``ns_V1e-3_N5000_T50``), the first at t = 0 (the initial field), with no burn-in (as FNO).

Samples: each trajectory has ``traj_frames`` frames; a sample is a window of ``T_in + T_out``
consecutive frames starting at frames 0, ``stride``, 2 ``stride``, ... Splits use disjoint
trajectories (different initial fields), so validation and test never share a trajectory with
training. ``ns2d``: 10 -> 10, ``ns2d_long``: 10 -> 30.

Scale: raw vorticity, not normalised and not bounded (values mostly within about [-3, 3]; declared
``scale = (-3, 3)`` as a typical range, not a bound). Metrics: ``mse`` / ``mae`` (per-frame SUMS over the
64 x 64 field, the harness convention) and ``rel_l2`` (per-frame ||pred - true||_2 / ||true||_2, the
PDE-benchmark metric); SSIM and PSNR do not apply to a signed unbounded field.

Determinism and cache: the initial field of trajectory ``i`` of a split depends only on
(``data_seed``, split, i) and the variant (its own PCG64 stream), bit for bit; a split is solved in
fixed blocks of 64 trajectories, so the same parameters give the same data on one machine (another
machine, FFT library or block size may differ by float32 rounding, which the flow amplifies
slowly). The run's seed does not change the data: every seed trains on the same trajectories.
Generated splits are stored as float32 ``.npy`` in ``<data_root>/ns2d/`` if ``data_root`` is given,
else in ``$STBENCH_CACHE/ns2d/`` or ``~/.cache/stbench/ns2d/``, under a name that encodes every
parameter (a cache that does not match is an error naming the file to delete).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError, RecipeError
from stbench.registry import DATASETS

_TAG = 0x4E533244  # "NS2D"
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
VISCOSITY = 1e-3
CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Spectral operators
# ---------------------------------------------------------------------------------------------
class Spectral:
    """Wavenumbers and operators of the periodic unit square at ``n x n`` (rfft layout: (n, n // 2 + 1))."""

    def __init__(self, n: int, *, dtype: Any = None):
        import torch

        dtype = torch.float64 if dtype is None else dtype
        self.n = n
        k = torch.fft.fftfreq(n, 1.0 / n, dtype=dtype)  # 0, 1, ..., -1 (integers)
        kr = torch.fft.rfftfreq(n, 1.0 / n, dtype=dtype)
        self.ky, self.kx = torch.meshgrid(k, kr, indexing="ij")  # (n, n//2+1): rows are y, columns x
        self.lap = -4.0 * math.pi**2 * (self.kx**2 + self.ky**2)  # symbol of the Laplacian
        safe = torch.where(self.lap == 0, torch.ones_like(self.lap), self.lap)
        self.inv_neg_lap = torch.where(self.lap == 0, 0.0, -1.0 / safe)  # psi_h = w_h / (4 pi^2 |k|^2), mean mode 0
        cut = n // 3  # 2/3 rule: keep |k| <= n/3 in each direction
        self.dealias = ((self.kx.abs() <= cut) & (self.ky.abs() <= cut)).to(dtype)
        self.ikx = 2j * math.pi * self.kx
        self.iky = 2j * math.pi * self.ky

    def velocity(self, w_h):
        """Velocity (u, v) in Fourier space from vorticity, via the stream function."""
        psi_h = w_h * self.inv_neg_lap
        return self.iky * psi_h, -self.ikx * psi_h  # u = d psi / dy, v = -d psi / dx

    def advection(self, w_h):
        """Fourier transform of -(u . grad w), de-aliased (one batched inverse FFT for u, v, w_x, w_y)."""
        import torch

        n = self.n
        psi_h = w_h * self.inv_neg_lap
        four = torch.stack([self.iky * psi_h, -self.ikx * psi_h, self.ikx * w_h, self.iky * w_h])  # (4, B, n, n//2+1)
        u, v, wx, wy = torch.fft.irfft2(four, s=(n, n)).unbind(0)
        return -torch.fft.rfft2(u * wx + v * wy) * self.dealias


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-corner coordinates ``(y, x)``, each (n, n), on [0, 1)."""
    t = np.arange(n) / n
    return np.meshgrid(t, t, indexing="ij")


def fno_forcing(n: int) -> np.ndarray:
    """FNO's forcing 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y))), (n, n)."""
    y, x = grid(n)
    return 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y)))


def solve(w0: np.ndarray, *, t_frames: int, frame_dt: float = 1.0, dt: float = 0.01, nu: float = VISCOSITY,
          forcing: np.ndarray | None = None, max_cfl: float = 1.0, precision: str = "float64") -> np.ndarray:
    """Integrate vorticity fields ``w0`` (B, n, n) and return ``(B, t_frames, n, n)`` frames (float64 or
    float32 as ``precision``) at t = 0, frame_dt, 2 frame_dt, ... (frame 0 is ``w0``). ``forcing`` None
    means unforced."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small FFTs: one thread is fastest, and never stalls on a busy machine
    try:
        return _solve(w0, t_frames, frame_dt, dt, nu, forcing, max_cfl,
                      {"float64": torch.float64, "float32": torch.float32}[precision], precision)
    finally:
        torch.set_num_threads(threads)


def _solve(w0: np.ndarray, t_frames: int, frame_dt: float, dt: float, nu: float, forcing: np.ndarray | None,
           max_cfl: float, dtype: Any, precision: str) -> np.ndarray:
    import torch

    w0 = np.asarray(w0, dtype=np.float64)
    B, n, _ = w0.shape
    sp = Spectral(n, dtype=dtype)
    steps = round(frame_dt / dt)
    if steps < 1 or abs(steps * dt - frame_dt) > 1e-9 * frame_dt:
        raise ValueError(f"frame_dt {frame_dt} must be a whole number of steps dt {dt}")
    f_h = torch.fft.rfft2(torch.as_tensor(np.zeros((n, n)) if forcing is None else np.asarray(forcing), dtype=dtype))
    half = 0.5 * dt * nu * sp.lap
    num, den = 1.0 + half, 1.0 - half  # Crank-Nicolson factors
    w_h = torch.fft.rfft2(torch.as_tensor(w0, dtype=dtype))
    out = np.empty((B, t_frames, n, n), dtype=precision)
    out[:, 0] = w0
    dx = 1.0 / n
    for t in range(1, t_frames):
        for _ in range(steps):
            r0 = sp.advection(w_h) + f_h
            w_p = (num * w_h + dt * r0) / den  # predictor
            r1 = sp.advection(w_p) + f_h
            w_h = (num * w_h + 0.5 * dt * (r0 + r1)) / den  # corrector
        w = torch.fft.irfft2(w_h, s=(n, n))
        u_h, v_h = sp.velocity(w_h)
        speed = torch.fft.irfft2(torch.stack([u_h, v_h]), s=(n, n)).abs().amax()
        cfl = float(speed) * dt / dx
        if not math.isfinite(cfl) or cfl > max_cfl:
            raise DataError(f"ns2d solver unstable at t={t * frame_dt:g} (CFL {cfl:.2f} > {max_cfl}); "
                            "fix: use a smaller solver dt (--set data.dt=...)")
        out[:, t] = w.numpy()
    return out


def gaussian_random_field(n: int, entropies: list[tuple[int, ...]], *, alpha: float = 2.5,
                          tau: float = 7.0) -> np.ndarray:
    """One mean-zero GRF ``N(0, sigma^2 (-4 pi^2 lap + tau^2)^(-alpha))`` per entropy tuple, sigma =
    tau^(alpha - 1) (FNO's initial vorticity): (len, n, n) float64.

    Field ``i`` uses only its own PCG64 stream (standard normals from numpy's Generator), so it does
    not depend on the other fields drawn with it."""
    sigma = tau ** (0.5 * (2 * alpha - 2))
    k = np.fft.fftfreq(n, 1.0 / n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    sqrt_eig = n * n * math.sqrt(2.0) * sigma * ((4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2.0))
    sqrt_eig[0, 0] = 0.0
    out = np.empty((len(entropies), n, n))
    for i, ent in enumerate(entropies):
        g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(ent))))
        xi = g.standard_normal((n, n))  # complex-free construction: real white noise -> Hermitian spectrum
        coef = sqrt_eig * np.fft.fft2(xi) / n  # unit-variance complex Gaussian per mode (Hermitian)
        out[i] = np.fft.ifft2(coef).real
    return out


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
class _NS2D(Dataset):
    """Vorticity windows ``(B, T_in, 1, 64, 64)`` -> ``(B, T_out, 1, 64, 64)``, raw units (see module doc)."""

    name = "ns2d"
    default_t_out = 10

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 10, t_out: int | None = None,
                 resolution: int = 64, traj_frames: int | None = None, stride: int = 10,
                 train_trajectories: int = 100, val_trajectories: int = 10, test_trajectories: int = 20,
                 data_seed: int = 0, dt: float = 0.05, frame_dt: float = 1.0, viscosity: float = VISCOSITY) -> None:
        t_out = self.default_t_out if t_out is None else int(t_out)
        t_in, resolution, stride = int(t_in), int(resolution), int(stride)
        frames = t_in + t_out
        traj_frames = frames + 2 * stride if traj_frames is None else int(traj_frames)
        for k, v in dict(t_in=t_in, t_out=t_out, resolution=resolution, stride=stride).items():
            if v < 1:
                raise RecipeError(f"{self.name}: {k} must be >= 1, got {v}")
        if traj_frames < frames:
            raise RecipeError(f"{self.name}: traj_frames {traj_frames} is shorter than a window of {frames} frames")
        params = dict(t_in=t_in, t_out=t_out, resolution=resolution, traj_frames=traj_frames, stride=stride,
                      data_seed=int(data_seed), dt=float(dt), frame_dt=float(frame_dt), viscosity=float(viscosity),
                      forcing="0.1*(sin(2pi(x+y))+cos(2pi(x+y)))", init="GRF alpha=2.5 tau=7")
        super().__init__(data_root=data_root, seed=seed, **params)
        self.params = params
        self.trajectories = {"train": int(train_trajectories), "val": int(val_trajectories),
                             "test": int(test_trajectories)}
        self.frames = frames
        self.windows_per_traj = (traj_frames - frames) // stride + 1
        sizes = {s: n * self.windows_per_traj for s, n in self.trajectories.items()}
        self.spec = DatasetSpec(
            name=self.name,
            in_shape=(t_in, 1, resolution, resolution),
            t_out=t_out,
            scale=(-3.0, 3.0),
            metrics=("mse", "mae", "rel_l2"),
            description=f"2-D Navier-Stokes vorticity (nu={viscosity:g}, FNO forcing, GRF init), periodic "
                        f"{resolution}x{resolution}, {t_in} -> {t_out} frames every {frame_dt:g} time units; "
                        "generated locally, raw vorticity (not in [0, 1])",
            sizes=sizes,
            params={**params, **{f"{s}_trajectories": n for s, n in self.trajectories.items()}},
        )

    def horizon_options(self, options: dict[str, Any], t_out: int) -> dict[str, Any]:
        """Every trajectory grows by the extra frames (``traj_frames`` + t_out - T_out), so each test window keeps
        its trajectory and start: the same inputs, and the first T_out targets unchanged (``stbench eval --t-out``).
        The trajectories are the same (their initial fields depend on (data_seed, split, i) only), solved longer."""
        grow = int(t_out) - self.spec.t_out
        return {**options, "t_out": int(t_out), "traj_frames": self.params["traj_frames"] + grow}

    # -- cache ---------------------------------------------------------------------------------
    def cache_dir(self) -> Path:
        if self.data_root is not None:
            return Path(self.data_root) / "ns2d"
        env = os.environ.get("STBENCH_CACHE")
        return (Path(env) if env else Path.home() / ".cache" / "stbench") / "ns2d"

    def cache_path(self, split: str) -> Path:
        key = {k: self.params[k] for k in ("resolution", "traj_frames", "data_seed", "dt", "frame_dt", "viscosity")}
        key.update(split=split, n=self.trajectories[split], version=CACHE_VERSION)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        return self.cache_dir() / f"{split}_{self.trajectories[split]}traj_{self.params['traj_frames']}f_{digest}.npy"

    def generate(self, split: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Trajectories ``[start, stop)`` of ``split``: (n, traj_frames, res, res) float32 (not cached)."""
        stop = self.trajectories[split] if stop is None else stop
        p = self.params
        ents = [(_TAG, _SPLIT_CODE[split], p["data_seed"], i) for i in range(start, stop)]
        w0 = gaussian_random_field(p["resolution"], ents)
        w = solve(w0, t_frames=p["traj_frames"], frame_dt=p["frame_dt"], dt=p["dt"], nu=p["viscosity"],
                  forcing=fno_forcing(p["resolution"]), precision="float32")
        return w.astype(np.float32)

    @functools.lru_cache(maxsize=3)  # noqa: B019  (one dataset object per run)
    def _split(self, split: str) -> np.ndarray:
        path = self.cache_path(split)
        shape = (self.trajectories[split], self.params["traj_frames"], self.params["resolution"],
                 self.params["resolution"])
        if path.is_file():
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as exc:  # EOFError: a 0-byte file (a disk that filled up)
                raise DataError(f"{path}: unreadable ns2d cache ({type(exc).__name__}: {exc}); fix: delete it to "
                                "regenerate") from None
            if arr.shape != shape or arr.dtype != np.float32:
                raise DataError(f"{path}: ns2d cache has shape {arr.shape} {arr.dtype}, expected {shape} float32; "
                                "fix: delete it to regenerate")
            return arr
        arr = np.empty(shape, np.float32)
        chunk = 64
        for c0 in range(0, shape[0], chunk):
            arr[c0:c0 + chunk] = self.generate(split, c0, min(c0 + chunk, shape[0]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, arr)
            os.replace(tmp, path)
        except OSError:  # a read-only cache is not fatal: the data is in memory
            pass
        return arr

    # -- Dataset API ------------------------------------------------------------------------------
    def num_samples(self, split: str) -> int:
        self.check_split(split)
        return self.spec.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        """Windows ``[start, stop)`` as ``(n, T_in + T_out, 1, H, W)`` float32 (window ``i`` is window
        ``i % windows_per_traj`` of trajectory ``i // windows_per_traj``); ``epoch`` is ignored."""
        self.check_range(split, start, stop)
        data = self._split(split)
        idx = np.arange(start, stop)
        traj, win = np.divmod(idx, self.windows_per_traj)
        t0 = win * self.params["stride"]
        frames = t0[:, None] + np.arange(self.frames)[None, :]  # (n, T)
        return np.ascontiguousarray(data[traj[:, None], frames])[:, :, None]  # (n, T, 1, H, W)


@DATASETS.register("ns2d")
class NS2D(_NS2D):
    """Navier-Stokes vorticity, 10 -> 10 (see :mod:`stbench.data.ns2d`)."""

    name = "ns2d"
    default_t_out = 10


@DATASETS.register("ns2d_long")
class NS2DLong(_NS2D):
    """Navier-Stokes vorticity, long horizon 10 -> 30 (see :mod:`stbench.data.ns2d`)."""

    name = "ns2d_long"
    default_t_out = 30
