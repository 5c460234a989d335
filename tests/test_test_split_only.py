"""`stbench eval` reads only the split it scores (issue 29): for every dataset with standard files, small files in
the standard layout without the training (and validation) files serve the test split, with the same scores as with
them; training statistics (weather's mean / std and climatology) come from the model card; a train run on such
files stops in one line. The writers are the dataset tests' own."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stbench.cli import main
from stbench.data import get_dataset
from stbench.data.check import data_source
from stbench.errors import DataError


def one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stbench: error: "), err
    return err[0]


def same_test_batches(a, b, n: int) -> None:
    (xa, ya), (xb, yb) = next(a.batches("test", n)), next(b.batches("test", n))
    assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())


def train_run_stops(capsys, dataset: str, root, out, *extra: str) -> str:
    return one_line(capsys, ["run", "--models", "tau", "--preset", "smoke", "--dataset", dataset, "--data-root",
                             str(root), "--out", str(out), "--no-profile", *extra])


# ---------------------------------------------------------------------------------------------
# weather: the test years alone; mean / std and climatology from the model card
# ---------------------------------------------------------------------------------------------
def _weather_years(root):
    """t2m in WeatherBench's file naming, one file per year (``2m_temperature_<year>_5.625deg.nc``)."""
    xr = pytest.importorskip("xarray", reason="the stbench[weather] extra is not installed")
    pytest.importorskip("netCDF4", reason="the stbench[weather] extra is not installed")
    from test_datasets_weather import _times

    times = _times()
    vals = (280 + 5 * np.random.default_rng(1).standard_normal((len(times), 32, 64))).astype(np.float32)
    arr = xr.DataArray(vals, dims=("time", "lat", "lon"),
                       coords={"time": times, "lat": np.linspace(-87.2, 87.2, 32), "lon": np.arange(64) * 5.625})
    d = root / "weather_5_625deg" / "2m_temperature"
    d.mkdir(parents=True)
    for y in sorted(set(times.year)):
        arr.sel(time=str(y)).to_dataset(name="t2m").to_netcdf(d / f"2m_temperature_{y}_5.625deg.nc")
    return d


def test_weather_scores_the_test_years_with_the_cards_statistics(tmp_path, capsys, monkeypatch):
    full, only = tmp_path / "full", tmp_path / "only"
    d = _weather_years(full)
    (only / d.relative_to(full)).mkdir(parents=True)
    for f in d.glob("*_201[78]_*.nc"):
        shutil.copy(f, only / d.relative_to(full) / f.name)
    assert main(["run", "--models", "tau", "--preset", "smoke", "--dataset", "weather_t2m_5_625", "--data-root",
                 str(full), "--out", str(tmp_path / "o"), "--no-profile"]) == 0
    kept = tmp_path / "o" / "records" / "weather_t2m_5_625" / "smoke"
    card = json.loads((kept / "tau__seed0.card.json").read_text())
    assert card["normalisation"]["climatology"]["shape"] == [1, 32, 64]
    assert len(json.dumps(card["normalisation"])) < 12_000  # float32, base64: small
    import xarray

    opened, real_open = [], xarray.open_dataset
    monkeypatch.setattr(xarray, "open_dataset", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    scores = {}
    for name, root in (("full", full), ("only", only)):
        assert main(["eval", "--checkpoint", str(kept / "tau__seed0.safetensors"), "--data-root", str(root),
                     "--out", str(tmp_path / name), "--no-profile"]) == 0
        assert opened and all("_2017_" in f or "_2018_" in f for f in opened), opened  # the test years only
        opened.clear()
        rec = json.loads(next((tmp_path / name).rglob("tau__evaluated_*.json")).read_text())
        scores[name] = rec["metrics"]
        assert rec["config"]["data_source"]["splits"] == ["test"]
    assert scores["only"] == scores["full"]  # the card's statistics in both: identical
    run = json.loads((kept / "tau__seed0.json").read_text())["metrics"]
    for m, v in run.items():  # the run's own test, with the statistics computed in float64: the card keeps float32
        assert scores["only"][m] == pytest.approx(v, rel=1e-5, abs=1e-7), m
    # a horizon roll-out (`eval --t-out`) takes the card's statistics too
    assert main(["eval", "--checkpoint", str(kept / "tau__seed0.safetensors"), "--t-out", "14", "--data-root",
                 str(only), "--out", str(tmp_path / "h"), "--no-profile"]) == 0
    # the fingerprint of a scored root covers its test files only: the same with or without the training years
    assert data_source("weather_t2m_5_625", str(full), ("test",))["fingerprint"] == \
        data_source("weather_t2m_5_625", str(only), ("test",))["fingerprint"]
    # no card (e.g. OpenSTL's weights): the statistics need the training years, said in one line
    ds = get_dataset("weather_t2m_5_625", data_root=str(only))
    with pytest.raises(DataError, match="training years 2010-2015.*fix: add") as exc:
        ds.num_samples("test")
    assert "\n" not in str(exc.value)
    assert "2010" in train_run_stops(capsys, "weather_t2m_5_625", only, tmp_path / "o2")


# ---------------------------------------------------------------------------------------------
# taxibj: one file holding every split; only X_test / Y_test are loaded (tests/test_datasets_taxibj.py checks the
# keys loaded and the batches); here the train run on a file without the training arrays
# ---------------------------------------------------------------------------------------------
def test_taxibj_train_run_without_training_arrays_stops(tmp_path, capsys):
    from test_datasets_taxibj import _write

    _write(tmp_path, X_train=None, Y_train=None)
    ds = get_dataset("taxibj", data_root=str(tmp_path))
    assert ds.num_samples("test") == 5
    assert "X_train: missing" in train_run_stops(capsys, "taxibj", tmp_path, tmp_path / "o")


# ---------------------------------------------------------------------------------------------
# kth: persons 17-25 alone
# ---------------------------------------------------------------------------------------------
def test_kth_test_persons_alone(tmp_path, capsys):
    from test_datasets_kth import _write

    full, only = tmp_path / "full", tmp_path / "only"
    _write(full)
    shutil.copytree(full, only)
    for d in only.glob("kth/*/person*"):
        if d.name[6:8] != "17":
            shutil.rmtree(d)
    kw = dict(t_in=2, t_out=2, image_size=16)
    a, b = get_dataset("kth", data_root=str(full), **kw), get_dataset("kth", data_root=str(only), **kw)
    assert a.num_samples("test") == b.num_samples("test") == 12 and b.spec.sizes == {"test": 12}
    same_test_batches(a, b, 12)
    assert data_source("kth", str(full), ("test",))["fingerprint"] == data_source("kth", str(only), ("test",))[
        "fingerprint"]
    with pytest.raises(DataError, match="no person directories of persons 01-16") as exc:
        b.num_samples("train")
    assert "\n" not in str(exc.value)
    assert "no person directories" in train_run_stops(capsys, "kth", only, tmp_path / "o")


# ---------------------------------------------------------------------------------------------
# human: test.txt and its frames alone
# ---------------------------------------------------------------------------------------------
def test_human_test_list_alone(tmp_path, capsys):
    from test_datasets_human import _write

    full, only = tmp_path / "full", tmp_path / "only"
    _write(full)
    shutil.copytree(full, only)
    (only / "human" / "train.txt").unlink()
    for f in (only / "human" / "images").glob("S[18]_*.jpg"):
        f.unlink()
    a, b = get_dataset("human", data_root=str(full), image_size=16), get_dataset("human", data_root=str(only),
                                                                                image_size=16)
    assert b.num_samples("test") == 1 and b.spec.sizes == {"test": 1}
    same_test_batches(a, b, 1)
    assert data_source("human", str(full), ("test",))["fingerprint"] == data_source("human", str(only), ("test",))[
        "fingerprint"]
    with pytest.raises(DataError, match="train.txt: missing") as exc:
        b.num_samples("train")
    assert "\n" not in str(exc.value)
    assert "train.txt: missing" in train_run_stops(capsys, "human", only, tmp_path / "o")


# ---------------------------------------------------------------------------------------------
# sevir: the catalog and the files of the test events alone
# ---------------------------------------------------------------------------------------------
def test_sevir_test_events_files_alone(tmp_path, capsys):
    pytest.importorskip("h5py", reason="the stbench[sevir] extra is not installed")
    from test_datasets_sevir import FILES, _write

    full, only = tmp_path / "full", tmp_path / "only"
    _write(full)
    shutil.copytree(full, only)
    (only / "data" / FILES["a"]).unlink()  # the file of the training events (2018)
    a, b = get_dataset("sevir", data_root=str(full)), get_dataset("sevir", data_root=str(only))
    assert a.spec.in_shape == b.spec.in_shape and b.num_samples("test") == 6
    same_test_batches(a, b, 6)
    assert data_source("sevir", str(full), ("test",))["fingerprint"] == data_source("sevir", str(only), ("test",))[
        "fingerprint"]
    with pytest.raises(DataError, match="SEVIR_VIL_STORMEVENTS_2018.*missing") as exc:
        b.num_samples("train")
    assert "\n" not in str(exc.value)
    assert "missing" in train_run_stops(capsys, "sevir", only, tmp_path / "o")


# ---------------------------------------------------------------------------------------------
# well: the test directory alone
# ---------------------------------------------------------------------------------------------
def test_well_test_directory_alone(tmp_path, capsys):
    pytest.importorskip("h5py", reason="the stbench[well] extra is not installed")
    from test_datasets_well import _tree

    full, only = tmp_path / "full", tmp_path / "only"
    _tree(full)
    shutil.copytree(full / "data" / "test", only / "data" / "test")
    kw = dict(t_in=2, t_out=2)
    a, b = get_dataset("well", data_root=str(full), **kw), get_dataset("well", data_root=str(only), **kw)
    assert a.spec.in_shape == b.spec.in_shape == (2, 3, 8, 6) and a.spec.metrics == b.spec.metrics
    assert b.num_samples("test") == 8 and b.spec.sizes == {"test": 8}
    same_test_batches(a, b, 8)
    assert data_source("well", str(full), ("test",))["fingerprint"] == data_source("well", str(only), ("test",))[
        "fingerprint"]
    with pytest.raises(DataError, match="train: missing") as exc:
        b.num_samples("train")
    assert "\n" not in str(exc.value)
    assert "missing" in train_run_stops(capsys, "well", only, tmp_path / "o", "--set", "data.t_in=2",
                                        "--set", "data.t_out=2")


# ---------------------------------------------------------------------------------------------
# ns2d / ns2d_long: generated per split; the test split generates (and caches) its own trajectories only
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ns2d", "ns2d_long"])
def test_ns2d_test_split_generates_only_its_trajectories(tmp_path, name):
    from test_datasets_ns2d import TINY

    ds = get_dataset(name, data_root=str(tmp_path), **TINY)
    x, y = next(ds.batches("test", 2))
    assert x.shape == (2, 2, 1, 16, 16)
    cached = [p.name for p in (tmp_path / "ns2d").iterdir()]
    assert len(cached) == 1 and cached[0].startswith("test_"), cached
