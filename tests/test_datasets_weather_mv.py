"""Multi-variable WeatherBench (weather_mv_4_4_s6_5_625 / _4_28_): r, t, u, v at 150/500/850 hPa in small NetCDF
files of the 5.625 deg layout; channel order, OpenSTL's 6-hourly offsets and training z-score checked by hand;
bad files; two weather datasets in one process keep their own de-normalising std. Skipped without xarray."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

xr = pytest.importorskip("xarray", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")
pytest.importorskip("netCDF4", reason="the stbench[weather] extra (xarray + netCDF4) is not installed")

from stbench import metrics  # noqa: E402
from stbench.cli import main  # noqa: E402
from stbench.data import check as C  # noqa: E402
from stbench.data import get_dataset, get_spec  # noqa: E402
from stbench.errors import DataError  # noqa: E402

MV = "weather_mv_4_4_s6_5_625"
YEARS = (1979, 2015, 2016, 2017, 2018)  # the first and last year of every split
PER_YEAR = 120  # hourly steps per year
LEVELS = [850, 150, 1000, 500]  # stored out of order: the loader must pick 150, 500, 850 in that order
VARS = {"r": "relative_humidity", "t": "temperature", "u": "u_component_of_wind", "v": "v_component_of_wind"}


def _times(years=YEARS):
    return pd.DatetimeIndex([t for y in years for t in pd.date_range(f"{y}-01-01", periods=PER_YEAR, freq="h")])


def _values(k: int, n: int) -> np.ndarray:
    """(time, level, lat, lon) float32: distinct per variable k and level, drifting in time."""
    rng = np.random.default_rng(k)
    lv = np.array(LEVELS, np.float32)[None, :, None, None]
    t = np.arange(n, dtype=np.float32)[:, None, None, None]
    noise = rng.standard_normal((n, 1, 32, 64)).astype(np.float32)
    return (100 * k + lv / 10 + 0.05 * t + (1 + k + lv / 500) * noise).astype(np.float32)


def _write_mv(root, years=YEARS, skip=(), levels=LEVELS, dtype=np.float32):
    times = _times(years)
    out = {}
    for k, (var, d) in enumerate(VARS.items()):
        if var in skip:
            continue
        vals = _values(k, len(times))[:, : len(levels)].astype(dtype)
        arr = xr.DataArray(vals, dims=("time", "level", "lat", "lon"),
                           coords={"time": times, "level": levels, "lat": np.linspace(-87.2, 87.2, 32),
                                   "lon": np.arange(64) * 5.625})
        p = root / "weather_5_625deg" / d
        p.mkdir(parents=True, exist_ok=True)
        half = len(times) // 2  # two files per variable, merged in time order
        arr.isel(time=slice(half, None)).to_dataset(name=var).to_netcdf(p / f"{d}_b_5.625deg.nc")
        arr.isel(time=slice(None, half)).to_dataset(name=var).to_netcdf(p / f"{d}_a_5.625deg.nc")
        out[var] = vals
    return times, out


def _hand_split(times, vals, years):
    """OpenSTL by hand: the split's years, last step dropped, every 6th kept; channels r150..v850."""
    sel = np.flatnonzero((times.year >= years[0]) & (times.year <= years[1]))[:-1:6]
    order = [LEVELS.index(lv) for lv in (150, 500, 850)]
    return np.concatenate([vals[v][sel][:, order] for v in VARS], axis=1).astype(np.float64)  # (N, 12, 32, 64)


@pytest.fixture(scope="module")
def mv_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mv")
    times, vals = _write_mv(root)
    return root, times, vals


def test_mv_channels_offsets_and_training_zscore_by_hand(mv_root):
    root, times, vals = mv_root
    ds = get_dataset(MV, data_root=str(root))
    assert ds.spec.in_shape == (4, 12, 32, 64) and ds.spec.t_out == 4
    assert ds.spec.metric_context["channels"] == ("r150", "r500", "r850", "t150", "t500", "t850",
                                                  "u150", "u500", "u850", "v150", "v500", "v850")
    train = _hand_split(times, vals, (1979, 2015))  # 2 years x 120 h -> 239 steps -> every 6th: 40
    assert len(train) == 40
    mean, std = train.mean(axis=(0, 2, 3)), train.std(axis=(0, 2, 3))
    np.testing.assert_allclose(ds.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(ds.std, std, rtol=1e-5)
    np.testing.assert_allclose(ds.spec.metric_context["std"], std, rtol=1e-5)
    assert mean[3] > 100 > mean[2]  # t (k=1) after r (k=0): variable-major order
    assert mean[0] < mean[1] < mean[2]  # levels 150 < 500 < 850 within a variable
    # OpenSTL's offsets: idx_in [-17, -11, -5, 0], idx_out [1, 7, 13, 19]; starts range(17, N - 20)
    assert ds.num_samples("train") == 40 - 37
    got = ds.read("train", 2, 3)[0]  # (8, 12, 32, 64)
    frames = 17 + 2 + np.array([-17, -11, -5, 0, 1, 7, 13, 19])
    want = (train[frames] - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # val / test use the TRAINING statistics
    test = _hand_split(times, vals, (2017, 2018))
    assert ds.num_samples("test") == len(test) - 37 == 3
    np.testing.assert_allclose(ds.read("test", 0, 1)[0, 0], (test[0] - mean[:, None, None]) / std[:, None, None],
                               rtol=0, atol=2e-5)
    assert ds.num_samples("val") == 0  # 120 h of 2016 -> 20 steps, fewer than one 37-step window


def test_mv_28_spec_and_contiguous_indices(mv_root):
    spec = get_spec("weather_mv_4_28_s6_5_625")
    assert spec.in_shape == (4, 12, 32, 64) and spec.t_out == 28 and spec.params["step"] == 6
    assert spec.params["train_years"] == "1979-2015" and spec.params["levels"] == [150, 500, 850]
    root, times, vals = mv_root
    ds = get_dataset(MV, data_root=str(root), indices="contiguous")
    train = _hand_split(times, vals, (1979, 2015))
    assert ds.num_samples("train") == 40 - 8
    got = ds.read("train", 5, 6)[0]
    want = (train[5:13] - ds.mean[None, :, None, None]) / ds.std[None, :, None, None]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="indices"):
        get_dataset(MV, indices="hourly")


def test_mv_bad_files(tmp_path, capsys):
    rows = C.check(MV, tmp_path)
    assert [r[1] for r in rows] == ["missing"] * 4
    _write_mv(tmp_path / "lev", levels=[850, 1000, 500])  # no 150 hPa
    rows = C.check(MV, tmp_path / "lev")
    assert {r[1] for r in rows} == {"wrong shape"} and "150" in rows[0][2]
    _write_mv(tmp_path / "int", dtype=np.int16, skip=("r", "t", "u"))
    assert [r[1] for r in C.check(MV, tmp_path / "int")] == ["missing"] * 3 + ["wrong dtype"] * 2
    _write_mv(tmp_path / "yrs", years=(2010, 2015, 2016, 2017, 2018))  # the mv training years start in 1979
    rows = C.check(MV, tmp_path / "yrs")
    assert [r[1] for r in rows] == (["ok"] * 2 + ["out of range"]) * 4 and "1979" in rows[2][2]
    with pytest.raises(DataError, match="out of range") as exc:  # the training split lacks 1979
        get_dataset(MV, data_root=str(tmp_path / "yrs")).num_samples("train")
    assert "\n" not in str(exc.value)
    # the CLI: one line per expected file, exit code 1
    assert main(["data", "check", "--dataset", MV, "--data-root", str(tmp_path / "lev")]) == 1
    out = capsys.readouterr().out
    assert sum("wrong shape" in line for line in out.splitlines()) == 8  # 4 variables x 2 files


def test_mv_run_with_bad_files_stops_before_writing(tmp_path, capsys):
    _write_mv(tmp_path / "bad", skip=("u",))
    out = tmp_path / "out"
    rc = main(["run", "--models", "tau", "--dataset", MV, "--preset", "smoke", "--data-root",
               str(tmp_path / "bad"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and "missing" in err and "u_component_of_wind" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _t2m(root, scale):
    times = pd.DatetimeIndex([t for y in range(2010, 2019) for t in pd.date_range(f"{y}-01-01", periods=30, freq="h")])
    vals = (280 + scale * np.random.default_rng(3).standard_normal((len(times), 32, 64))).astype(np.float32)
    arr = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": times, "lat": np.linspace(-87.2, 87.2, 32),
                                                                    "lon": np.arange(64) * 5.625})
    (root / "weather_5_625deg" / "2m_temperature").mkdir(parents=True)
    arr.to_dataset(name="t2m").to_netcdf(root / "weather_5_625deg" / "2m_temperature" / "2m_temperature_5.625deg.nc")
    train = vals[(times.year <= 2015)][:-1].astype(np.float64)
    return train.std()


class _Const(torch.nn.Module):
    """Predicts the targets plus a constant offset (in z-score units): error = offset everywhere."""

    def __init__(self, t_out: int, offset: float) -> None:
        super().__init__()
        self.t_out, self.offset, self.targets = t_out, offset, None

    def forward(self, x):
        from types import SimpleNamespace

        return SimpleNamespace(pred=self.targets + self.offset)


def test_two_weather_datasets_keep_their_own_std(tmp_path, mv_root):
    from stbench.precision import make_precision
    from stbench.train import evaluate

    s1, s2 = _t2m(tmp_path / "a", 2.0), _t2m(tmp_path / "b", 7.0)
    a = get_dataset("weather_t2m_5_625", data_root=str(tmp_path / "a"))
    b = get_dataset("weather_t2m_5_625", data_root=str(tmp_path / "b"))
    mv = get_dataset(MV, data_root=str(mv_root[0]))  # loaded last: would have overwritten a global std
    assert abs(s1 - s2) > 3
    prec = make_precision("fp32", torch.device("cpu"))
    for ds, std in ((a, [s1]), (b, [s2]), (mv, list(mv.std))):
        x, y = next(iter(ds.batches("test", 2)))
        model = _Const(ds.spec.t_out, 0.5)
        model.targets = y
        res, _ = evaluate(model, iter([(x, y)]), torch.device("cpu"), prec, metrics=ds.spec.metrics,
                          context=ds.spec.metric_context)
        want = float(np.mean((0.5 * np.asarray(std)) ** 2))  # mean over channels of (offset * std_c)^2
        assert res["mse_denorm"] == pytest.approx(want, rel=1e-5)
        assert res["mae_denorm"] == pytest.approx(float(np.mean(0.5 * np.asarray(std))), rel=1e-5)
    # without the dataset's context the metric refuses, in one line
    with pytest.raises(DataError, match="needs std") as exc:
        metrics.compute(torch.zeros(1, 1, 1, 32, 64), torch.zeros(1, 1, 1, 32, 64), metrics=("mse_denorm",))
    assert "\n" not in str(exc.value)
