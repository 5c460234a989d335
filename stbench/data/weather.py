"""WeatherBench 5.625 deg (Rasp et al. 2020) in OpenSTL's layout and normalisation: ``weather_t2m_5_625``,
``weather_r_5_625``, ``weather_tcc_5_625``, ``weather_uv10_5_625`` (12 -> 12 hourly frames, 32 x 64) and the
multi-variable ``weather_mv_4_4_s6_5_625`` / ``weather_mv_4_28_s6_5_625`` (4 -> 4 / 4 -> 28 frames, 12 channels).

Files: ``<data_root>/weather_5_625deg/<variable dir>/<variable dir>*.nc`` (or ``<data_root>/weather/...``),
read with xarray (optional extra: ``pip install stbench[weather]`` = xarray + netCDF4); the time stamps of
the files of a variable are merged in time order and only the selected steps are read from each file. A split opens
only the files of its years when the file names say the year, as WeatherBench's do
(``2m_temperature_2017_5.625deg.nc``; a file without a year in its name is opened and its time stamps decide), and
its files are checked when the split is first asked for: the test years alone serve ``stbench eval`` of a kept
model, whose card carries the training mean / std and climatology (:meth:`_Weather.set_statistics`). Without a card
those statistics need the training years, and their absence is said in one line.

As OpenSTL's loader (``openstl/datasets/dataloader_weather.py`` and ``dataset_constant.py``, facts only;
docs/protocol.md "WeatherBench 5.625 deg"):

- single variables: years train 2010-2015, val 2016, test 2017-2018 (``sel(time=slice("2010", "2015"))``);
- within a split the time axis is cut with ``isel(time=slice(None, -1, step))``: the LAST time step
  is dropped (step 1 = hourly; the multi-variable sets use step 6 = 6-hourly);
- samples: a window of 24 consecutive steps per start index, starts ``0 .. N - 25`` (OpenSTL's index
  range ``range(11, N - 13)``, which leaves out one window that would fit);
- channels: ``t2m`` / ``tcc`` one each; ``r`` keeps the LAST pressure level only (``[:, -1:]``);
  ``uv10`` is (u10, v10), two channels;
- z-score per channel with the mean / std over (time, lat, lon) of the TRAINING years, reused for val
  and test (stbench accumulates them in float64; OpenSTL in float32, a difference in the 7th digit).

Multi-variable (``data_name = 'mv'`` in OpenSTL): the variables ``r, t, u, v`` (directories
``relative_humidity``, ``temperature``, ``u_component_of_wind``, ``v_component_of_wind``) at the pressure levels
150, 500 and 850 hPa (``sel(level=[150, 500, 850])``), channel order ``r150 r500 r850 t150 t500 t850 u150 u500
u850 v150 v500 v850``; years train **1979**-2015 (OpenSTL's ``dataset_constant.py`` for the mv sets), val 2016,
test 2017-2018; ``step = 6`` (6-hourly series). OpenSTL's frame offsets into that 6-hourly series are
``idx_in = [-17, -11, -5, 0]`` and ``idx_out = [1, 7, 13, ...]`` (``1 + 6 i``): the offsets are multiplied by 6
although the series is already 6-hourly, so consecutive frames are 36 h apart, except 30 h between the last two
inputs and 6 h between the last input and the first target. ``indices="openstl"`` (the default) reproduces these
samples (the ones behind the published numbers); ``indices="contiguous"`` gives consecutive 6-hourly frames
(what the name "4 -> 28 = 7 days" describes). Starts run over ``range(17, N - idx_out[-1] - 1)`` as in OpenSTL.

Differences: OpenSTL validates on the test years; stbench validates on 2016 (its own val split). OpenSTL's
current loader z-scores val and test with their OWN statistics (its mv branch always, its single-variable
branch since the multi-variable rewrite); stbench uses the training statistics for every split, as the issue and
OpenSTL's earlier loader do. Values are z-scores (scale declared (-4, 4), typical, not a bound).

Metrics are DE-NORMALISED per pixel in the variables' units, as the published weather tables:
``mse_denorm`` / ``mae_denorm`` / ``rmse_denorm`` = per frame mean over C*H*W of (std_c * error)^2,
|std_c * error|, and the square root of the former; the reported RMSE is the mean of per-frame RMSEs
(OpenSTL's is sqrt of the mean MSE, slightly larger; for mv it is the mean over the four variables of each
variable's RMSE). The std travels with the dataset: ``spec.metric_context["std"]`` (one value per channel),
which evaluation passes to the metrics that declare ``needs=("std",)``; no module state.

The weather community's scores (WeatherBench, Rasp et al. 2020; kept by WeatherBench 2), also default here, in
physical units (de-normalised with the training mean / std), per frame, then averaged like every metric (so the
per-frame curve is the score per lead time):

- ``wrmse`` latitude-weighted RMSE: per channel ``sqrt(mean over (lat, lon) of L(j) (f - t)^2)`` with
  ``L(j) = cos(lat_j) / mean_j cos(lat_j)``, then the mean over channels;
- ``wacc`` anomaly correlation coefficient: per channel ``sum L f' t' / sqrt(sum L f'^2 * sum L t'^2)`` over
  (lat, lon), ``f' = f - C``, ``t' = t - C``, ``C`` the climatology = the per-channel, per-pixel mean of the
  TRAINING years (WeatherBench 1's choice; WeatherBench 2 uses a day-of-year / hour climatology); the mean over
  channels. A frame whose forecast or target anomaly is zero everywhere scores 0 (denominator floored).

``spec.metric_context`` carries ``lat`` (the latitudes read from the files, in the grid's row order), ``clim``
(C, 32, 64) and ``mean`` / ``std``, so ``metrics.compute(pred, true, metrics=["wrmse", "wacc"],
context=ds.spec.metric_context)`` scores the dataset's normalised arrays.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.spec import SPLITS, Dataset, DatasetSpec, LazyContext, decode_array
from stbench.errors import DataError, RecipeError
from stbench.metrics import register_metric
from stbench.registry import DATASETS

#: short name -> (directory / file prefix, variable name in the file)
VARIABLES = {
    "t2m": ("2m_temperature", "t2m"),
    "r": ("relative_humidity", "r"),
    "tcc": ("total_cloud_cover", "tcc"),
    "u10": ("10m_u_component_of_wind", "u10"),
    "v10": ("10m_v_component_of_wind", "v10"),
    "t": ("temperature", "t"),
    "u": ("u_component_of_wind", "u"),
    "v": ("v_component_of_wind", "v"),
}
CHANNELS = {"t2m": ("t2m",), "r": ("r",), "tcc": ("tcc",), "uv10": ("u10", "v10"), "mv": ("r", "t", "u", "v")}
YEARS = {"train": ("2010", "2015"), "val": ("2016", "2016"), "test": ("2017", "2018")}
MV_YEARS = {"train": ("1979", "2015"), "val": ("2016", "2016"), "test": ("2017", "2018")}
MV_LEVELS = (150, 500, 850)  # hPa, OpenSTL's `level` of the mv sets
GRID = (32, 64)
INSTALL_HINT = "reading WeatherBench needs xarray and netCDF4; fix: pip install 'stbench[weather]'"


def _xr() -> Any:
    try:
        import xarray as xr
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    return xr


def weather_root(data_root: str | Path) -> Path:
    root = Path(data_root)
    for cand in (root / "weather_5_625deg", root / "weather"):
        if cand.is_dir():
            return cand
    return root / "weather_5_625deg"


_YEAR = re.compile(r"_((?:19|20)\d\d)_")  # WeatherBench names its files <dir>_<year>_5.625deg.nc


def files(data_root: str | Path, short: str, years: list[tuple[str, str]] | None = None) -> list[Path]:
    """The variable's .nc files; with ``years`` (``(first, last)`` ranges) only those whose name says a year in a
    range, or says none (such a file is opened and its time stamps decide): other years' files are never opened."""
    d, _ = VARIABLES[short]
    fs = sorted((weather_root(data_root) / d).glob(f"{d}*.nc"))
    if years is None:
        return fs
    out = []
    for f in fs:
        m = _YEAR.search(f.name[len(d):])
        if m is None or any(int(a) <= int(m.group(1)) <= int(b) for a, b in years):
            out.append(f)
    return out


def _one(xr: Any, f: Path, var: str, levels: tuple[int, ...] | None) -> tuple[str, str, Any]:
    """(status, detail, time stamps) of one file."""
    with xr.open_dataset(f) as ds:
        if var not in ds:
            return "missing", f"variable '{var}' not in the file", None
        a = ds[var]
        shape = tuple(a.sizes.get(k, 0) for k in ("lat", "lon"))
        if "time" not in a.dims or shape != GRID:
            return "wrong shape", f"dims {dict(a.sizes)}, expected time x lat 32 x lon 64", None
        if levels is not None:
            have = [int(x) for x in np.asarray(a["level"].values)] if "level" in a.dims else []
            lack = [lv for lv in levels if lv not in have]
            if lack:
                return "wrong shape", f"levels {have or 'none'} lack {lack} (hPa), need a level axis with them", None
        if not np.issubdtype(a.dtype, np.floating):
            return "wrong dtype", f"{a.dtype}, expected float", None
        n_bad = int((~np.isfinite(np.asarray(a.values))).sum())  # NaN would train to "non-finite loss", unnamed
        if n_bad:
            return "out of range", f"{n_bad} non-finite values (NaN / Inf) in '{var}'", None
        return "ok", f"{dict(a.sizes)}", np.asarray(ds["time"].values)


def check_rows(data_root: str | Path, variable: str,
               splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    """One row per .nc file of the variable's channels (opened, variable, grid, levels and dtype checked), then,
    when every file of a variable is ok, one row saying whether its time stamps reach the split years. Only the
    files of ``splits``' years are opened (by the year in a file's name, see :func:`files`)."""
    mv = variable == "mv"
    years, levels = (MV_YEARS, MV_LEVELS) if mv else (YEARS, None)
    years = {s: y for s, y in years.items() if s in splits}
    rows = []
    for short in CHANNELS[variable]:
        d, var = VARIABLES[short]
        fs = files(data_root, short, list(years.values()))
        if not fs:
            rows.append((str(weather_root(data_root) / d / f"{d}*.nc"), "missing", "no NetCDF files"))
            continue
        xr = _xr()
        stamps, bad = [], False
        for f in fs:
            try:
                status, detail, t = _one(xr, f, var, levels)
            except (OSError, ValueError, KeyError) as exc:
                why = " ".join(str(exc).split())[:80]
                status, detail, t = "wrong dtype", f"not a readable NetCDF file ({why})", None
            rows.append((str(f), status, detail))
            bad |= status != "ok"
            if t is not None:
                stamps.append(t)
        if not bad:
            yrs = set(np.concatenate(stamps).astype("datetime64[Y]").astype(int) + 1970)
            need = sorted({int(y) for pair in years.values() for y in pair})
            lack = [y for y in need if y not in yrs]
            rows.append((str(weather_root(data_root) / d), "out of range" if lack else "ok",
                         f"no time stamps in {lack} (splits {_years_text(years)})" if lack
                         else f"time stamps cover {_years_text(years)}"))
    return rows


def _years_text(years: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{s} {a}-{b}" if a != b else f"{s} {a}" for s, (a, b) in years.items())


# -- de-normalised metrics: the std comes from the dataset's spec.metric_context, never module state --------------
def _err(pred: Any, true: Any, std: Any) -> Any:
    import torch

    s = torch.as_tensor(np.asarray(std, dtype=np.float64), device=pred.device).view(1, 1, -1, 1, 1)  # (1, 1, C, 1, 1)
    if s.shape[2] != pred.shape[2]:
        raise DataError(f"the de-normalising std has {s.shape[2]} channels but the predictions have {pred.shape[2]}")
    d = (pred.to(s.dtype) - true.to(s.dtype)) * s  # (B, T, C, H, W) in data units
    return d.reshape(*d.shape[:2], -1)


@register_metric("mse_denorm", label="MSE (denorm.)", unit="variable units^2", higher_is_better=False, needs=("std",),
                  convention="weather: per frame MEAN over C*H*W of the squared error after de-normalising with the "
                  "training std per channel; mean over all (B, T) frames")
def mse_denorm(pred: Any, true: Any, *, std: Any) -> Any:
    return _err(pred, true, std).pow(2).mean(dim=-1)


@register_metric("mae_denorm", label="MAE (denorm.)", unit="variable units", higher_is_better=False, needs=("std",),
                  convention="weather: per frame MEAN over C*H*W of the absolute error after de-normalising; mean "
                  "over all (B, T) frames")
def mae_denorm(pred: Any, true: Any, *, std: Any) -> Any:
    return _err(pred, true, std).abs().mean(dim=-1)


@register_metric("rmse_denorm", label="RMSE (denorm.)", unit="variable units", higher_is_better=False,
                  needs=("std",), convention="weather: per frame sqrt(MEAN squared de-normalised error); mean of "
                  "per-frame values (OpenSTL reports sqrt of the mean MSE, slightly larger)")
def rmse_denorm(pred: Any, true: Any, *, std: Any) -> Any:
    return _err(pred, true, std).pow(2).mean(dim=-1).sqrt()


def _physical(x: Any, std: Any, mean: Any, like: Any) -> Any:
    """De-normalised values in the variables' units, float64: ``x * std_c + mean_c`` (B, T, C, H, W)."""
    import torch

    s = torch.as_tensor(np.asarray(std, dtype=np.float64), device=like.device).view(1, 1, -1, 1, 1)
    m = torch.as_tensor(np.asarray(mean, dtype=np.float64), device=like.device).view(1, 1, -1, 1, 1)
    if s.shape[2] != like.shape[2]:
        raise DataError(f"the de-normalising std has {s.shape[2]} channels but the predictions have {like.shape[2]}")
    return x.to(s.dtype) * s + m


def lat_weights(lat: Any, like: Any) -> Any:
    """``L(j) = cos(lat_j) / mean_j cos(lat_j)`` as a (1, 1, 1, H, 1) float64 tensor (WeatherBench's weights)."""
    import torch

    w = np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))
    if w.shape != (like.shape[3],):
        raise DataError(f"{w.size} latitudes for frames of {like.shape[3]} rows; pass the dataset's metric context")
    return torch.as_tensor(w / w.mean(), device=like.device).view(1, 1, 1, -1, 1)


@register_metric("wrmse", label="wRMSE", unit="variable units", higher_is_better=False, needs=("std", "lat"),
                  convention="weather (WeatherBench): per frame and channel sqrt(mean over lat, lon of L(j) (f - t)^2),"
                  " L = cos(lat) / mean cos(lat), error de-normalised; mean over channels, then over (B, T) frames")
def wrmse(pred: Any, true: Any, *, std: Any, lat: Any) -> Any:
    import torch

    err = pred.to(torch.float64) - true.to(torch.float64)
    d = _physical(err, std, np.zeros(len(np.atleast_1d(std))), pred)  # (B, T, C, H, W): std_c * error, variable units
    return (lat_weights(lat, pred) * d * d).mean(dim=(3, 4)).sqrt().mean(dim=2)  # (B, T)


ACC_FLOOR = 1e-300  # a zero anomaly field gives ACC 0, not NaN


@register_metric("wacc", label="ACC", unit="", higher_is_better=True, needs=("std", "mean", "clim", "lat"),
                  convention="weather (WeatherBench): per frame and channel sum L f' t' / sqrt(sum L f'^2 sum L t'^2) "
                  "over lat, lon, anomalies f' = f - C, t' = t - C against the climatology C = per-pixel mean of the "
                  "training years, L = cos(lat) / mean cos(lat); mean over channels, then over all (B, T) frames")
def wacc(pred: Any, true: Any, *, std: Any, mean: Any, clim: Any, lat: Any) -> Any:
    import torch

    c = torch.as_tensor(np.asarray(clim, dtype=np.float64), device=pred.device)[None, None]  # (1, 1, C, H, W)
    if c.shape[2:] != pred.shape[2:]:
        raise DataError(f"climatology of shape {tuple(c.shape[2:])} for frames {tuple(pred.shape[2:])} (C, H, W)")
    f = _physical(pred, std, mean, pred) - c
    t = _physical(true, std, mean, pred) - c
    L = lat_weights(lat, pred)
    num = (L * f * t).sum(dim=(3, 4))
    den = ((L * f * f).sum(dim=(3, 4)) * (L * t * t).sum(dim=(3, 4))).sqrt().clamp_min(ACC_FLOOR)
    return (num / den).mean(dim=2)  # (B, T)


class _Weather(Dataset):
    """One WeatherBench variant: ``variable`` (a key of :data:`CHANNELS`), its years, levels and frame offsets."""

    name = ""
    variable = ""
    years = YEARS
    levels: tuple[int, ...] | None = None  # pressure levels to select (mv); None: the last level of a 4-D variable

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 12, t_out: int = 12,
                 step: int = 1) -> None:
        self._setup(data_root, seed, t_in, t_out, step, np.arange(int(t_in) + int(t_out)))

    def _setup(self, data_root: str | None, seed: int, t_in: int, t_out: int, step: int, offsets: np.ndarray,
               **extra: Any) -> None:
        y = self.years
        params = dict(variable=self.variable, t_in=int(t_in), t_out=int(t_out), step=int(step), **extra,
                      train_years=f"{y['train'][0]}-{y['train'][1]}", val_years="2016", test_years="2017-2018")
        if self.levels:
            params["levels"] = list(self.levels)
        super().__init__(data_root=data_root, seed=seed, **params)
        self.step = params["step"]
        self.offsets = np.asarray(offsets, dtype=np.int64)  # frame offsets of one sample, from its first frame
        if len(self.offsets) != params["t_in"] + params["t_out"]:
            raise ValueError(f"{self.name}: {len(self.offsets)} frame offsets for {params['t_in']} + {params['t_out']}")
        self.sizes: dict[str, int] = {}  # filled per split as it is first asked for
        self._given: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # set_statistics: a model card's
        # the metrics' context holds training statistics: read on first look (from the training years, or a card)
        context: dict[str, Any] = {} if data_root is None else LazyContext(fill=self._context)
        self.spec = DatasetSpec(
            name=self.name, in_shape=(params["t_in"], len(self.channel_names), *GRID), t_out=params["t_out"],
            scale=(-4.0, 4.0), metrics=("mse_denorm", "mae_denorm", "rmse_denorm", "wrmse", "wacc"),
            description=f"WeatherBench 5.625 deg {self.variable}, {params['t_in']} -> {params['t_out']} frames of "
                        f"a {self.step} h series, z-scored with training ({params['train_years']}) statistics; "
                        "val 2016, test 2017-2018",
            sizes=self.sizes, params=params, metric_context=context,
        )

    def _context(self) -> dict[str, Any]:
        return {"std": tuple(float(v) for v in self.std), "mean": tuple(float(v) for v in self.mean),
                "channels": self.channel_names, "clim": self.clim, "lat": self.lat}

    def set_statistics(self, norm: dict[str, Any]) -> None:
        """Take the training mean / std and climatology from a model card's ``normalisation`` (written by
        :func:`stbench.weights.normalisation`): scoring then reads the test years only."""
        if norm.get("kind") != "zscore" or norm.get("climatology") is None:
            return  # an older card without the climatology: the training years are read, as before
        mean, std = np.asarray(norm["mean"], np.float64), np.asarray(norm["std"], np.float64)
        clim = decode_array(norm["climatology"])
        if not len(mean) == len(std) == clim.shape[0] == len(self.channel_names):
            raise DataError(f"the model card's normalisation has {len(mean)} channels, {self.name} has "
                            f"{len(self.channel_names)}; score it on the dataset it was trained on")
        self._given = (mean, std, clim)
    @property
    def channel_names(self) -> tuple[str, ...]:
        if self.levels:
            return tuple(f"{v}{lv}" for v in CHANNELS[self.variable] for lv in self.levels)
        return CHANNELS[self.variable]

    def _series(self, short: str, split: str) -> list[np.ndarray]:
        """The split's steps of one variable as float32 (N, H, W) arrays, one per channel: the time stamps of all
        files merged, the split's years selected, the last step dropped, every ``step``-th kept; only those read."""
        import pandas as pd

        xr = _xr()
        _, var = VARIABLES[short]
        a, b = self.years[split]
        fs = files(self.data_root, short, [(a, b)])  # other years' files are not opened
        stamps = []
        for f in fs:
            with xr.open_dataset(f) as ds:
                stamps.append(pd.DatetimeIndex(ds["time"].values))
        every = pd.DatetimeIndex(np.concatenate([s.values for s in stamps] or [np.array([], "datetime64[ns]")]))
        every = every.sort_values()
        keep = every[(every.year >= int(a)) & (every.year <= int(b))][:-1:self.step]
        parts = []
        for f, s in zip(fs, stamps):
            mine = keep[keep.isin(s)]
            if len(mine) == 0:
                continue
            with xr.open_dataset(f) as ds:
                arr = ds[var].sel(time=mine)
                if self.levels:
                    arr = arr.sel(level=list(self.levels)).transpose("time", "level", "lat", "lon")
                parts.append((mine, np.asarray(arr.values, dtype=np.float32)))
        if not parts:
            return [np.zeros((0, *GRID), np.float32) for _ in (self.levels or (0,))]
        order = np.argsort(np.concatenate([m.values for m, _ in parts]), kind="stable")
        v = np.concatenate([p for _, p in parts])[order]
        if v.ndim == 4 and self.levels:  # (time, level, lat, lon): one channel per selected level, in their order
            return [np.ascontiguousarray(v[:, i]) for i in range(v.shape[1])]
        if v.ndim == 4:  # single variable with levels (r): OpenSTL keeps the last level
            v = v[:, -1]
        return [v]

    def _raw(self, split: str) -> np.ndarray:
        """(N, C, 32, 64) float32 raw values of a split."""
        return np.stack([c for short in CHANNELS[self.variable] for c in self._series(short, split)], axis=1)

    @functools.cached_property
    def _train_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._given is not None:
            return self._given
        bad = [r for r in check_rows(self.data_root, self.variable, ("train",)) if r[1] != "ok"]
        if bad:  # e.g. `stbench eval --from openstl` with the test years only: say where the statistics come from
            a, b = self.years["train"]
            file, status, detail = bad[0]
            raise DataError(f"{self.name}: the z-score mean / std and the climatology (wacc) are those of the training "
                            f"years {a}-{b}, and {file} is {status} ({' '.join(str(detail).split())}); fix: add the "
                            "training years' files, or score a .safetensors kept by `stbench run` (its model card "
                            "carries these statistics)")
        raw = self._raw("train")
        mean = np.array([raw[:, c].mean(dtype=np.float64) for c in range(raw.shape[1])])
        std = np.array([raw[:, c].std(dtype=np.float64) for c in range(raw.shape[1])])
        clim = np.stack([raw[:, c].mean(axis=0, dtype=np.float64) for c in range(raw.shape[1])])  # (C, 32, 64)
        self._split_cache["train"] = self._normalise(raw, mean, std)  # the raw array is reused in place
        return mean, std, clim

    @property
    def mean(self) -> np.ndarray:
        return self._train_stats[0]

    @property
    def std(self) -> np.ndarray:
        return self._train_stats[1]

    @property
    def clim(self) -> np.ndarray:
        """The climatology: per-channel, per-pixel mean of the training years, in the variables' units (C, 32, 64)."""
        return self._train_stats[2]

    @functools.cached_property
    def lat(self) -> tuple[float, ...]:
        """Latitudes (degrees) of the grid's rows, read from the first test-years file of the first variable."""
        short = CHANNELS[self.variable][0]
        fs = files(self.data_root, short, [self.years["test"]]) or files(self.data_root, short)
        if not fs:
            raise DataError(f"{weather_root(self.data_root) / VARIABLES[short][0]}: no NetCDF files; fix: pass the "
                            "--data-root holding weather_5_625deg/")
        with _xr().open_dataset(fs[0]) as ds:
            return tuple(float(v) for v in np.asarray(ds["lat"].values))

    @staticmethod
    def _normalise(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        for c in range(raw.shape[1]):  # channel by channel, in place (the multi-variable train split is GBs)
            raw[:, c] -= np.float32(mean[c])
            raw[:, c] /= np.float32(std[c])
        return raw

    @functools.cached_property
    def _split_cache(self) -> dict[str, np.ndarray]:
        return {}

    def _split(self, split: str) -> np.ndarray:
        if split not in self._split_cache:
            mean, std = self._train_stats[:2]
            if split not in self._split_cache:
                self._split_cache[split] = self._normalise(self._raw(split), mean, std)
        return self._split_cache[split]

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.data_root is None:
            raise DataError(f"{self.name} reads WeatherBench NetCDF files; fix: pass --data-root DIR "
                            "(the directory holding weather_5_625deg/)")
        if split not in self.sizes:  # bad files of the split stop here, before any training or writing
            raise_on_bad(check_rows(self.data_root, self.variable, (split,)))
            # OpenSTL's start range: range(-idx_in[0], N - idx_out[-1] - 1), i.e. N - last offset - 1 windows
            self.sizes[split] = max(0, len(self._split(split)) - int(self.offsets[-1]) - 1)
        return self.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        self.check_range(split, start, stop)
        data = self._split(split)
        idx = np.arange(start, stop)[:, None] + self.offsets[None, :]  # (n, T)
        return data[idx]  # (n, T, C, 32, 64) float32


def _variant(variable: str) -> type[_Weather]:
    name = f"weather_{variable}_5_625"
    cls = type(f"Weather_{variable}", (_Weather,), {"name": name, "variable": variable,
                                                    "__doc__": f"WeatherBench {variable} 5.625 deg, 12 -> 12 hourly "
                                                               "(see :mod:`stbench.data.weather`)."})
    DATASETS.register(name, obj=cls, check=f"stbench.data.weather:check_{variable}")
    return cls


def mv_offsets(t_out: int, indices: str = "openstl") -> np.ndarray:
    """Frame offsets (into the 6-hourly series, from a sample's first frame) of a 4 -> ``t_out`` mv sample."""
    if indices == "contiguous":
        return np.arange(4 + int(t_out))
    if indices != "openstl":
        raise RecipeError(f"unknown indices '{indices}'; use openstl (OpenSTL's samples) or contiguous")
    idx_in = [1 + i * 6 for i in range(-3, 0)] + [0]  # OpenSTL dataset_constant.py: [-17, -11, -5, 0]
    idx_out = [1 + i * 6 for i in range(int(t_out))]  # [1, 7, 13, ...]
    return np.array(idx_in + idx_out) - idx_in[0]


class _WeatherMV(_Weather):
    variable = "mv"
    years = MV_YEARS
    levels = MV_LEVELS
    default_t_out = 4

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_out: int | None = None,
                 indices: str = "openstl") -> None:
        t_out = self.default_t_out if t_out is None else int(t_out)
        self._setup(data_root, seed, 4, t_out, 6, mv_offsets(t_out, indices), indices=indices)


@DATASETS.register("weather_mv_4_4_s6_5_625", check="stbench.data.weather:check_mv")
class WeatherMV4(_WeatherMV):
    """WeatherBench r, t, u, v at 150/500/850 hPa (12 channels), 4 -> 4 frames of the 6-hourly series."""

    name = "weather_mv_4_4_s6_5_625"
    default_t_out = 4


@DATASETS.register("weather_mv_4_28_s6_5_625", check="stbench.data.weather:check_mv")
class WeatherMV28(_WeatherMV):
    """WeatherBench r, t, u, v at 150/500/850 hPa (12 channels), 4 -> 28 frames of the 6-hourly series."""

    name = "weather_mv_4_28_s6_5_625"
    default_t_out = 28


def check_t2m(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    return check_rows(root, "t2m", splits)


def check_r(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    return check_rows(root, "r", splits)


def check_tcc(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    return check_rows(root, "tcc", splits)


def check_uv10(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    return check_rows(root, "uv10", splits)


def check_mv(root: str | Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    return check_rows(root, "mv", splits)


WeatherT2M = _variant("t2m")
WeatherR = _variant("r")
WeatherTCC = _variant("tcc")
WeatherUV10 = _variant("uv10")
