"""WeatherBench: small NetCDF files in the 5.625 deg layout; OpenSTL's time slicing, index range and
training statistics; de-normalised metrics; bad files. Skipped without the `weather` extra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

xr = pytest.importorskip("xarray", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")
pytest.importorskip("netCDF4", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")

from stbench import metrics  # noqa: E402
from stbench.data import check as C  # noqa: E402
from stbench.data import get_dataset  # noqa: E402
from stbench.errors import DataError  # noqa: E402

PER_YEAR = 40  # hourly steps written per year (the loader takes whatever time stamps exist)


def _times():
    return pd.DatetimeIndex([t for y in range(2009, 2019) for t in pd.date_range(f"{y}-01-01", periods=PER_YEAR,
                                                                                    freq="h")])


def _write(root, short="t2m", var="t2m", d="2m_temperature", lat=32, level=False):
    times = _times()
    rng = np.random.default_rng(1)
    shape = (len(times), lat, 64)
    vals = (280 + 5 * rng.standard_normal(shape) + np.arange(len(times))[:, None, None] * 0.01).astype(np.float32)
    coords = {"time": times, "lat": np.linspace(-87.2, 87.2, lat), "lon": np.arange(64) * 5.625}
    if level:
        vals = np.stack([vals, vals * 0 + 1, vals + 100], axis=1)  # 3 levels, keep the last
        arr = xr.DataArray(vals, dims=("time", "level", "lat", "lon"), coords={**coords, "level": [1, 2, 3]})
    else:
        arr = xr.DataArray(vals, dims=("time", "lat", "lon"), coords=coords)
    out = root / "weather_5_625deg" / d
    out.mkdir(parents=True, exist_ok=True)
    # two files, split in time, as WeatherBench ships one file per year
    half = len(times) // 2
    arr.isel(time=slice(None, half)).to_dataset(name=var).to_netcdf(out / f"{d}_a_5.625deg.nc")
    arr.isel(time=slice(half, None)).to_dataset(name=var).to_netcdf(out / f"{d}_b_5.625deg.nc")
    return vals


def test_t2m_slicing_statistics_and_windows(tmp_path):
    vals = _write(tmp_path)
    ds = get_dataset("weather_t2m_5_625", data_root=str(tmp_path))
    t = _times()
    train = vals[(t.year >= 2010) & (t.year <= 2015)][:-1]  # last step dropped
    mean, std = train.mean(dtype=np.float64), train.std(dtype=np.float64)
    assert np.allclose(ds.std, [std]) and np.allclose(ds.mean, [mean])
    # windows of 24: starts 0 .. N - 25 (one window fewer than would fit)
    assert ds.num_samples("train") == 6 * PER_YEAR - 1 - 24
    assert ds.num_samples("val") == PER_YEAR - 1 - 24 and ds.num_samples("test") == 2 * PER_YEAR - 1 - 24
    test = vals[(t.year >= 2017)][:-1]
    got = ds.read("test", 3, 5)
    assert got.shape == (2, 24, 1, 32, 64)
    np.testing.assert_allclose(got[1, :, 0], (test[4:28] - mean) / std, rtol=0, atol=1e-4)
    assert ds.spec.metrics == ("mse_denorm", "mae_denorm", "rmse_denorm", "wrmse", "wacc")


def test_denormalised_metrics_by_hand(tmp_path):
    _write(tmp_path)
    ds = get_dataset("weather_t2m_5_625", data_root=str(tmp_path))
    true = torch.zeros(1, 2, 1, 32, 64)
    pred = true + 0.5  # half a std everywhere
    res = metrics.compute(pred, true, metrics=ds.spec.metrics, context=ds.spec.metric_context)
    s = float(ds.std[0])
    assert res["mse_denorm"] == pytest.approx((0.5 * s) ** 2)
    assert res["mae_denorm"] == pytest.approx(0.5 * s) and res["rmse_denorm"] == pytest.approx(0.5 * s)


def test_uv10_and_r_channels(tmp_path):
    _write(tmp_path, "u10", "u10", "10m_u_component_of_wind")
    _write(tmp_path, "v10", "v10", "10m_v_component_of_wind")
    _write(tmp_path, "r", "r", "relative_humidity", level=True)
    uv = get_dataset("weather_uv10_5_625", data_root=str(tmp_path))
    assert uv.spec.in_shape == (12, 2, 32, 64) and uv.read("val", 0, 1).shape == (1, 24, 2, 32, 64)
    r = get_dataset("weather_r_5_625", data_root=str(tmp_path))
    assert r.spec.in_shape == (12, 1, 32, 64) and r.mean[0] > 300  # the last level (values + 100)


def test_bad_files(tmp_path):
    assert C.check("weather_t2m_5_625", tmp_path)[0][1] == "missing"
    _write(tmp_path, lat=16)
    rows = C.check("weather_t2m_5_625", tmp_path)
    assert {r[1] for r in rows} == {"wrong shape"}
    ds = get_dataset("weather_t2m_5_625", data_root=str(tmp_path))  # a split's files are checked when it is asked for
    with pytest.raises(DataError, match="wrong shape") as exc:
        ds.num_samples("test")
    assert "\n" not in str(exc.value)
