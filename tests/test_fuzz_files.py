"""Issue 24, deliverable 6: malformed files of every supported format (idx, npy, npz, NetCDF, HDF5, JPEG,
checkpoints), each emptied, replaced by random bytes and truncated, as a user's disk or download would leave
them. Every case must end in a one-line error (no traceback) from `stbench data check` / `run` / `eval`, and
a completed record already in the output folder must come out byte for byte untouched."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from stbench import cli
from stbench.records import RunRecord

CORRUPTIONS = ("empty", "random", "truncated")


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "random":
        path.write_bytes(np.random.default_rng(len(data)).bytes(max(64, min(len(data), 4096))))
    else:
        path.write_bytes(data[: len(data) // 2])


def _mmnist(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    header = np.array([2051, 40, 28, 28], dtype=">u4").tobytes()
    idx = root / "train-images-idx3-ubyte.gz"
    idx.write_bytes(gzip.compress(header + rng.integers(0, 256, 40 * 28 * 28, dtype=np.uint8).tobytes()))
    np.save(root / "mnist_test_seq.npy", rng.integers(0, 256, (20, 4, 64, 64), dtype=np.uint8))
    return {"idx": idx, "npy": root / "mnist_test_seq.npy"}


def _taxibj(root: Path) -> dict[str, Path]:
    d = root / "taxibj"
    d.mkdir()
    rng = np.random.default_rng(0)
    arrays = {f"{k}_{s}": rng.uniform(-1, 1, (n, 4, 2, 32, 32)).astype(np.float32)
              for s, n in (("train", 40), ("test", 10)) for k in "XY"}
    np.savez(d / "dataset.npz", **arrays)
    return {"npz": d / "dataset.npz"}


def _weather(root: Path) -> dict[str, Path]:
    pytest.importorskip("xarray", reason="the stbench[weather] extra is not installed")
    pytest.importorskip("netCDF4", reason="the stbench[weather] extra is not installed")
    from test_datasets_weather import _write

    _write(root)
    return {"netcdf": sorted((root / "weather_5_625deg" / "2m_temperature").glob("*.nc"))[0]}


def _well(root: Path) -> dict[str, Path]:
    pytest.importorskip("h5py", reason="the stbench[well] extra is not installed")
    from test_datasets_well import _tree

    _tree(root)
    return {"hdf5": root / "data" / "valid" / "toy_valid.hdf5"}


def _human(root: Path) -> dict[str, Path]:
    from test_datasets_human import _write

    _write(root)
    return {"jpg": root / "human" / "images" / "S1_Walking.1_000001.jpg"}


DATASETS = {"mmnist": (_mmnist, "mmnist"), "taxibj": (_taxibj, "taxibj"), "weather": (_weather, "weather_t2m_5_625"),
            "well": (_well, "well"), "human": (_human, "human")}
CASES = [(name, fmt, how) for name, fmts in (("mmnist", ("idx", "npy")), ("taxibj", ("npz",)),
                                              ("weather", ("netcdf",)), ("well", ("hdf5",)), ("human", ("jpg",)))
         for fmt in fmts for how in CORRUPTIONS]


def _completed(out: Path, dataset: str) -> Path:
    return RunRecord(model="tau", dataset=dataset, preset="smoke", seed=0, status="completed", metrics={"mse": 1.0},
                     config={"data_root": None}).write(out)


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("stbench: error:") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("name, fmt, how", CASES)
def test_malformed_data_file_is_one_line_and_leaves_records_alone(tmp_path, capsys, name, fmt, how):
    build, dataset = DATASETS[name]
    root = tmp_path / "data"
    root.mkdir()
    target = build(root)[fmt]
    _corrupt(target, how)
    assert cli.main(["data", "check", "--dataset", dataset, "--data-root", str(root)]) == 1  # named, not "ok"
    capsys.readouterr()
    out = tmp_path / "res"
    rec = _completed(out, dataset)
    before = rec.read_bytes()
    rc = cli.main(["run", "--models", "tau", "--preset", "smoke", "--dataset", dataset, "--data-root", str(root),
                   "--out", str(out), "--no-profile", "--batch-size", "2", "--epochs", "1"])
    assert rc == cli.EXIT_USAGE
    assert str(target.name) in _one_error_line(capsys) or how == "truncated"
    assert rec.read_bytes() == before
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [rec.name]


def _stbench_checkpoint(tmp_path: Path) -> Path:
    """A real `stbench run` checkpoint file (written by the loop's save_checkpoint) of a smoke TAU."""
    from conftest import smoke_model

    from stbench import train as T

    model = smoke_model("tau", in_shape=(10, 1, 64, 64), t_out=10)
    opt = T.make_optimizer(model, {"lr": 1e-3})
    sched = T.make_scheduler(opt, {"lr": 1e-3, "epochs": 1}, 4)
    path = tmp_path / "ck.pt"
    T.save_checkpoint(path, model=model, opt=opt, sched=sched, scaler=torch.amp.GradScaler("cpu", enabled=False),
                      state=T.TrainState(), best_state=None, gen=torch.Generator(), meta={"cfg": {}})
    return path


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_malformed_checkpoint_is_one_line_for_eval_and_resume(tmp_path, capsys, how):
    ck = _stbench_checkpoint(tmp_path)
    _corrupt(ck, how)
    out = tmp_path / "res"
    assert cli.main(["eval", "--checkpoint", str(ck), "--model", "tau", "--out", str(out), "--no-profile"]) == 2
    assert ck.name in _one_error_line(capsys)
    rec = _completed(out, "mmnist")
    running = RunRecord(model="tau", dataset="mmnist", preset="smoke", seed=1, status="interrupted",
                        history=[{"epoch": 1}], config={"data_root": None}).write(out)
    before, before_running = rec.read_bytes(), running.read_bytes()
    resume_ck = out / "checkpoints/mmnist/smoke/tau__seed1.pt"
    resume_ck.parent.mkdir(parents=True)
    resume_ck.write_bytes(ck.read_bytes())
    assert cli.main(["run", "--models", "tau", "--preset", "smoke", "--seeds", "0,1", "--out", str(out),
                     "--no-profile", "--resume"]) == 2
    assert "checkpoint" in _one_error_line(capsys)
    assert rec.read_bytes() == before and running.read_bytes() == before_running
