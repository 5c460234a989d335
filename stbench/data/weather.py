"""WeatherBench 5.625 deg (Rasp et al. 2020) in OpenSTL's layout and normalisation: ``weather_t2m_5_625``,
``weather_r_5_625``, ``weather_tcc_5_625``, ``weather_uv10_5_625`` (12 -> 12 hourly frames, 32 x 64).

Files: ``<data_root>/weather_5_625deg/<variable dir>/<variable dir>*.nc`` (or ``<data_root>/weather/...``),
read with xarray (optional extra: ``pip install stbench[weather]`` = xarray + netCDF4); every file of
a variable is opened and concatenated along time in file-name order.

As OpenSTL's loader (``openstl/datasets/dataloader_weather.py``, facts only; REFERENCE.md section 6):

- years: train 2010-2015, val 2016, test 2017-2018 (``sel(time=slice("2010", "2015"))``, whole years);
- within a split the time axis is cut with ``isel(time=slice(None, -1, step))``: the LAST time step
  is dropped (step 1 = hourly);
- samples: a window of 24 consecutive steps per start index, starts ``0 .. N - 25`` (OpenSTL's index
  range ``range(11, N - 13)``, which leaves out one window that would fit);
- channels: ``t2m`` / ``tcc`` one each; ``r`` keeps the LAST pressure level only (``[:, -1:]``);
  ``uv10`` is (u10, v10), two channels;
- z-score per channel with the mean / std over (time, lat, lon) of the TRAINING years, reused for val
  and test (stbench accumulates them in float64; OpenSTL in float32, a difference in the 7th digit).

Differences: OpenSTL validates on the test years; stbench validates on 2016 (its own val split).
Values are z-scores (scale declared (-4, 4), typical, not a bound). Metrics are DE-NORMALISED per pixel
in the variable's units, as the published weather tables: ``mse_denorm`` / ``mae_denorm`` /
``rmse_denorm`` = per frame mean over C*H*W of (std_c * error)^2, |std_c * error|, and the square
root of the former; the reported RMSE is the mean of per-frame RMSEs (OpenSTL's is sqrt of the mean
MSE, slightly larger). The de-normalising std is that of the weather dataset most recently loaded in
the process (one dataset per run).
The multi-variable variants (``weather_mv_4_4_s6_5_625``, ``weather_mv_4_28_s6_5_625``) are NOT implemented.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad, register_checker
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError
from stbench.metrics import register_metric
from stbench.registry import DATASETS

#: short name -> (directory / file prefix, variable name in the file)
VARIABLES = {
    "t2m": ("2m_temperature", "t2m"),
    "r": ("relative_humidity", "r"),
    "tcc": ("total_cloud_cover", "tcc"),
    "u10": ("10m_u_component_of_wind", "u10"),
    "v10": ("10m_v_component_of_wind", "v10"),
}
CHANNELS = {"t2m": ("t2m",), "r": ("r",), "tcc": ("tcc",), "uv10": ("u10", "v10")}
YEARS = {"train": ("2010", "2015"), "val": ("2016", "2016"), "test": ("2017", "2018")}
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


def files(data_root: str | Path, short: str) -> list[Path]:
    d, _ = VARIABLES[short]
    return sorted((weather_root(data_root) / d).glob(f"{d}*.nc"))


def check_rows(data_root: str | Path, variable: str) -> list[tuple[str, str, str]]:
    """One row per .nc file of the variable's channels (opened, variable and grid checked)."""
    rows = []
    for short in CHANNELS[variable]:
        d, var = VARIABLES[short]
        fs = files(data_root, short)
        if not fs:
            rows.append((str(weather_root(data_root) / d / f"{d}*.nc"), "missing", "no NetCDF files"))
            continue
        xr = _xr()
        for f in fs:
            try:
                with xr.open_dataset(f) as ds:
                    if var not in ds:
                        rows.append((str(f), "missing", f"variable '{var}' not in the file"))
                        continue
                    a = ds[var]
                    shape = tuple(a.sizes.get(k, 0) for k in ("lat", "lon"))
                    if "time" not in a.dims or shape != GRID:
                        rows.append((str(f), "wrong shape", f"dims {dict(a.sizes)}, expected time x lat 32 x lon 64"))
                    elif not np.issubdtype(a.dtype, np.floating):
                        rows.append((str(f), "wrong dtype", f"{a.dtype}, expected float"))
                    else:
                        rows.append((str(f), "ok", f"{dict(a.sizes)}"))
            except (OSError, ValueError) as exc:
                rows.append((str(f), "wrong dtype", f"not a readable NetCDF file ({' '.join(str(exc).split())[:80]})"))
    return rows


#: std per channel of the weather dataset loaded last (for the de-normalised metrics)
_DENORM: dict[str, np.ndarray] = {}


def _std(pred: Any) -> Any:
    import torch

    if "std" not in _DENORM:
        raise DataError("the de-normalised weather metrics need a weather dataset loaded first (its training std)")
    std = torch.as_tensor(_DENORM["std"], dtype=torch.float64, device=pred.device)
    return std.view(1, 1, -1, 1, 1)  # (1, 1, C, 1, 1)


def _err(pred: Any, true: Any) -> Any:
    import torch

    d = (pred.to(torch.float64) - true.to(torch.float64)) * _std(pred)  # (B, T, C, H, W) in data units
    return d.reshape(*d.shape[:2], -1)


@register_metric("mse_denorm", label="MSE (denorm.)", unit="variable units^2", higher_is_better=False,
                  convention="weather: per frame MEAN over C*H*W of the squared error after de-normalising with the "
                  "training std per channel; mean over all (B, T) frames")
def mse_denorm(pred: Any, true: Any) -> Any:
    return _err(pred, true).pow(2).mean(dim=-1)


@register_metric("mae_denorm", label="MAE (denorm.)", unit="variable units", higher_is_better=False,
                  convention="weather: per frame MEAN over C*H*W of the absolute error after de-normalising; mean "
                  "over all (B, T) frames")
def mae_denorm(pred: Any, true: Any) -> Any:
    return _err(pred, true).abs().mean(dim=-1)


@register_metric("rmse_denorm", label="RMSE (denorm.)", unit="variable units", higher_is_better=False,
                  convention="weather: per frame sqrt(MEAN squared de-normalised error); mean of per-frame values "
                  "(OpenSTL reports sqrt of the mean MSE, slightly larger)")
def rmse_denorm(pred: Any, true: Any) -> Any:
    return _err(pred, true).pow(2).mean(dim=-1).sqrt()


class _Weather(Dataset):
    name = ""
    variable = ""

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 12, t_out: int = 12,
                 step: int = 1) -> None:
        params = dict(variable=self.variable, t_in=int(t_in), t_out=int(t_out), step=int(step),
                      train_years="2010-2015", val_years="2016", test_years="2017-2018")
        super().__init__(data_root=data_root, seed=seed, **params)
        self.frames = params["t_in"] + params["t_out"]
        self.step = params["step"]
        self.sizes: dict[str, int] = {}
        if data_root is not None:  # without it: the spec only (model building); reading asks for --data-root
            raise_on_bad(check_rows(data_root, self.variable))
            _DENORM["std"] = self.std  # training statistics (reads the training years once)
            self.sizes = {s: max(0, len(self._split(s)) - self.frames) for s in ("train", "val", "test")}
        self.spec = DatasetSpec(
            name=self.name, in_shape=(params["t_in"], len(CHANNELS[self.variable]), *GRID), t_out=params["t_out"],
            scale=(-4.0, 4.0), metrics=("mse_denorm", "mae_denorm", "rmse_denorm"),
            description=f"WeatherBench 5.625 deg {self.variable}, {params['t_in']} -> {params['t_out']} steps of "
                        f"{self.step} h, z-scored with training (2010-2015) statistics; val 2016, test 2017-2018",
            sizes=dict(self.sizes), params=params,
        )

    @functools.lru_cache(maxsize=3)  # noqa: B019
    def _raw(self, split: str) -> np.ndarray:
        """(N, C, 32, 64) float32 raw values of a split (last step dropped, every ``step``-th kept)."""
        xr = _xr()
        chans = []
        for short in CHANNELS[self.variable]:
            _, var = VARIABLES[short]
            parts = []
            for f in files(self.data_root, short):
                with xr.open_dataset(f) as ds:
                    parts.append(ds[var].load())
            a = xr.concat(parts, dim="time").sortby("time") if len(parts) > 1 else parts[0]
            a = a.sel(time=slice(*YEARS[split])).isel(time=slice(None, -1, self.step))
            v = np.asarray(a.values, dtype=np.float32)
            if v.ndim == 4:  # (time, level, lat, lon): OpenSTL keeps the last level
                v = v[:, -1]
            chans.append(v)
        return np.stack(chans, axis=1)

    @functools.cached_property
    def mean(self) -> np.ndarray:
        return self._raw("train").mean(axis=(0, 2, 3), dtype=np.float64)

    @functools.cached_property
    def std(self) -> np.ndarray:
        return self._raw("train").std(axis=(0, 2, 3), dtype=np.float64)

    @functools.lru_cache(maxsize=3)  # noqa: B019
    def _split(self, split: str) -> np.ndarray:
        raw = self._raw(split)
        return ((raw - self.mean[None, :, None, None]) / self.std[None, :, None, None]).astype(np.float32)

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.data_root is None:
            raise DataError(f"{self.name} reads WeatherBench NetCDF files; fix: pass --data-root DIR "
                            "(the directory holding weather_5_625deg/)")
        return self.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        n = self.num_samples(split)
        if not 0 <= start <= stop <= n:
            raise IndexError(f"{self.name} {split}: sequences [{start}, {stop}) out of range [0, {n})")
        data = self._split(split)
        idx = np.arange(start, stop)[:, None] + np.arange(self.frames)[None, :]  # (n, T)
        return data[idx]  # (n, T, C, 32, 64) float32


def _variant(variable: str) -> type[_Weather]:
    name = f"weather_{variable}_5_625"
    cls = type(f"Weather_{variable}", (_Weather,), {"name": name, "variable": variable,
                                                    "__doc__": f"WeatherBench {variable} 5.625 deg, 12 -> 12 hourly "
                                                               "(see :mod:`stbench.data.weather`)."})
    DATASETS.register(name, obj=cls)
    register_checker([name], f"stbench.data.weather:check_{variable}")
    return cls


def check_t2m(root: str | Path) -> list[tuple[str, str, str]]:
    return check_rows(root, "t2m")


def check_r(root: str | Path) -> list[tuple[str, str, str]]:
    return check_rows(root, "r")


def check_tcc(root: str | Path) -> list[tuple[str, str, str]]:
    return check_rows(root, "tcc")


def check_uv10(root: str | Path) -> list[tuple[str, str, str]]:
    return check_rows(root, "uv10")


WeatherT2M = _variant("t2m")
WeatherR = _variant("r")
WeatherTCC = _variant("tcc")
WeatherUV10 = _variant("uv10")
