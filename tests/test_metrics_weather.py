"""Latitude-weighted RMSE and ACC (WeatherBench) on the dataset's normalised arrays: the context (latitudes from the
files, training climatology, mean / std) checked against the written files, the scores against a numpy hand
computation, and against xskillscore where it is installed. Skipped without the `weather` extra."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xarray", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")
pytest.importorskip("netCDF4", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")

from test_datasets_weather import _times, _write  # noqa: E402

from stbench import metrics  # noqa: E402
from stbench.data import get_dataset  # noqa: E402

LAT = np.linspace(-87.2, 87.2, 32)  # what _write stores


def _hand(pred, true, std, mean, clim, lat):
    """numpy, written from the WeatherBench definitions: (B, T) wRMSE and ACC, mean over channels."""
    w = np.cos(np.deg2rad(lat))
    L = (w / w.mean())[:, None]  # (H, 1)
    B, T, C = pred.shape[:3]
    rmse, acc = np.zeros((B, T)), np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            r, a = [], []
            for c in range(C):
                f = pred[b, t, c].astype(np.float64) * std[c] + mean[c]
                o = true[b, t, c].astype(np.float64) * std[c] + mean[c]
                r.append(np.sqrt(np.mean(L * (f - o) ** 2)))
                fa, oa = f - clim[c], o - clim[c]
                a.append(np.sum(L * fa * oa) / np.sqrt(np.sum(L * fa**2) * np.sum(L * oa**2)))
            rmse[b, t], acc[b, t] = np.mean(r), np.mean(a)
    return rmse, acc


def test_context_holds_file_latitudes_and_training_climatology(tmp_path):
    vals = _write(tmp_path)
    ds = get_dataset("weather_t2m_5_625", data_root=str(tmp_path))
    ctx = ds.spec.metric_context
    np.testing.assert_allclose(ctx["lat"], LAT)
    t = _times()
    train = vals[(t.year >= 2010) & (t.year <= 2015)][:-1]  # the training steps (last one dropped)
    np.testing.assert_allclose(np.asarray(ctx["clim"])[0], train.mean(axis=0, dtype=np.float64), rtol=1e-6)
    assert ds.spec.metrics[-2:] == ("wrmse", "wacc")


def test_wrmse_wacc_match_a_hand_computation_per_lead_time(tmp_path):
    _write(tmp_path)
    ds = get_dataset("weather_t2m_5_625", data_root=str(tmp_path))
    ctx = ds.spec.metric_context
    x, y = next(iter(ds.batches("test", 3)))  # normalised (3, 12, 1, 32, 64) targets from the files
    rng = np.random.default_rng(0)
    pred = (y.numpy() + 0.3 * rng.standard_normal(y.shape)).astype(np.float32)
    res = metrics.compute(pred, y.numpy(), metrics=["wrmse", "wacc"], context=ctx)
    rmse, acc = _hand(pred, y.numpy(), ctx["std"], ctx["mean"], np.asarray(ctx["clim"]), np.asarray(ctx["lat"]))
    assert res["wrmse"] == pytest.approx(rmse.mean(), rel=1e-6)
    assert res["wacc"] == pytest.approx(acc.mean(), rel=1e-6)
    np.testing.assert_allclose(res["per_frame"]["wrmse"], rmse.mean(axis=0), rtol=1e-6)  # per lead time
    np.testing.assert_allclose(res["per_frame"]["wacc"], acc.mean(axis=0), rtol=1e-6)
    # a perfect forecast: wRMSE 0, ACC 1
    perfect = metrics.compute(y, y, metrics=["wrmse", "wacc"], context=ctx)
    assert perfect["wrmse"] == 0.0 and perfect["wacc"] == pytest.approx(1.0)


def test_weights_favour_the_equator():
    """An error only in the polar rows counts less than the same error at the equator."""
    lat = np.linspace(-87.1875, 87.1875, 32)
    ctx = {"std": (2.0,), "mean": (0.0,), "lat": tuple(lat), "clim": np.zeros((1, 32, 64))}
    true = np.zeros((1, 1, 1, 32, 64), np.float32)
    polar, equator = true.copy(), true.copy()
    polar[..., 0, :] = 1.0
    equator[..., 16, :] = 1.0
    rp = metrics.compute(polar, true, metrics=["wrmse"], context=ctx)["wrmse"]
    re = metrics.compute(equator, true, metrics=["wrmse"], context=ctx)["wrmse"]
    w = np.cos(np.deg2rad(lat))
    # one row of 32 wrong by std * 1 = 2: sqrt(L(row) * 2^2 / 32)
    assert rp == pytest.approx(np.sqrt(w[0] / w.mean() * 4 / 32))
    assert re == pytest.approx(np.sqrt(w[16] / w.mean() * 4 / 32))
    assert rp < re / 4  # sqrt(cos 87.2 / cos 2.8) = 0.22


def test_against_xskillscore():
    xs = pytest.importorskip("xskillscore", reason="xskillscore is not installed (an optional oracle)")
    import xarray as xr

    rng = np.random.default_rng(3)
    B, T, C, H, W = 2, 3, 2, 32, 64
    lat = np.linspace(-87.1875, 87.1875, H)
    std, mean = np.array([3.0, 0.5]), np.array([280.0, 1.0])
    clim = mean[:, None, None] + rng.standard_normal((C, H, W))
    wts = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], (H, W))

    def anomalies():  # weighted mean zero per field: the centred (Pearson) and uncentred (ACC) correlations agree
        a = rng.standard_normal((B, T, C, H, W))
        return a - (a * wts).sum(axis=(3, 4), keepdims=True) / wts.sum()

    fa, ta = anomalies(), 0.5 * anomalies()
    pred = (clim + fa - mean[:, None, None]) / std[:, None, None]
    true = (clim + ta - mean[:, None, None]) / std[:, None, None]
    ctx = {"std": tuple(std), "mean": tuple(mean), "lat": tuple(lat), "clim": clim}
    res = metrics.compute(pred, true, metrics=["wrmse", "wacc"], context=ctx)
    w = xr.DataArray(wts, dims=("lat", "lon"))
    rmse, acc = np.zeros((B, T, C)), np.zeros((B, T, C))
    for b in range(B):  # one field at a time: xskillscore wants weights shaped like the reduced field
        for t in range(T):
            for c in range(C):
                f = xr.DataArray(clim[c] + fa[b, t, c], dims=("lat", "lon"))
                o = xr.DataArray(clim[c] + ta[b, t, c], dims=("lat", "lon"))
                rmse[b, t, c] = xs.rmse(f, o, dim=["lat", "lon"], weights=w).item()
                acc[b, t, c] = xs.pearson_r(f - clim[c], o - clim[c], dim=["lat", "lon"], weights=w).item()
    assert res["wrmse"] == pytest.approx(rmse.mean(axis=2).mean(), rel=1e-9)
    assert res["wacc"] == pytest.approx(acc.mean(axis=2).mean(), rel=1e-9)
    np.testing.assert_allclose(res["per_frame"]["wacc"], acc.mean(axis=(0, 2)), rtol=1e-9)
