"""Issue 24, classes 5, 6 and 8: malformed files and a full disk end in one line, never a traceback, and
`stbench data check` never passes bad data. Each case is triggered as a user would: a file on disk, then
`stbench data check` and `stbench run` (which must refuse before writing anything) or `stbench eval`."""

from __future__ import annotations

import errno
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stbench import cli

RUN = ["run", "--models", "tau", "--preset", "smoke", "--no-profile", "--epochs", "1"]


def _lines(capsys) -> tuple[list[str], list[str]]:
    cap = capsys.readouterr()
    return cap.out.strip().splitlines(), [ln for ln in cap.err.strip().splitlines() if ln.strip()]


def _check_and_run_refuse(capsys, dataset: str, root, out, needle: str) -> None:
    assert cli.main(["data", "check", "--dataset", dataset, "--data-root", str(root)]) == 1
    out_lines, err = _lines(capsys)
    assert not err and any(needle in ln for ln in out_lines), out_lines
    assert cli.main([*RUN, "--dataset", dataset, "--data-root", str(root), "--out", str(out)]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and err[0].startswith("stbench: error:") and needle in err[0], err
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True  # nothing written


# -- TaxiBJ's dataset.npz ----------------------------------------------------------------------------------
def _taxibj(root, n_train=40, n_test=10, dtype=np.float32, fill=None):
    d = root / "taxibj"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for s, n in (("train", n_train), ("test", n_test)):
        for k in "XY":
            a = rng.uniform(-1, 1, (n, 4, 2, 32, 32)).astype(np.float32)
            if fill is not None and s == "test" and a.size:
                a.flat[5] = fill
            arrays[f"{k}_{s}"] = a.astype(dtype) if dtype is not object else np.array([None] * n, dtype=object)
    np.savez(d / "dataset.npz", **arrays)
    return d / "dataset.npz"


@pytest.mark.parametrize("case, needle", [
    ("zero_bytes", "not a readable .npz"),
    ("object_dtype", "object"),
    ("no_training_samples", "0 samples"),
    ("nan_in_test", "non-finite"),
])
def test_bad_taxibj_file_is_caught_by_check_and_run(tmp_path, capsys, case, needle):
    root = tmp_path / "data"
    if case == "zero_bytes":
        (root / "taxibj").mkdir(parents=True)
        (root / "taxibj" / "dataset.npz").write_bytes(b"")
    elif case == "object_dtype":
        _taxibj(root, dtype=object)
    elif case == "no_training_samples":
        _taxibj(root, n_train=0)
    else:
        _taxibj(root, fill=np.nan)
    _check_and_run_refuse(capsys, "taxibj", root, tmp_path / "res", needle)


def test_taxibj_val_fraction_out_of_range_is_one_line(tmp_path, capsys):
    root = tmp_path / "data"
    _taxibj(root)
    out = tmp_path / "res"
    assert cli.main([*RUN, "--dataset", "taxibj", "--data-root", str(root), "--out", str(out),
                     "--set", "data.val_fraction=0.9"]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and "val_fraction" in err[0] and "0.9" in err[0], err


# -- Moving MNIST's idx file -------------------------------------------------------------------------------
@pytest.mark.parametrize("n, size", [(1, 2), (0, 28)])
def test_degenerate_mnist_idx_is_caught_by_check_and_run(tmp_path, capsys, n, size):
    root = tmp_path / "data"
    root.mkdir()
    header = np.array([2051, n, size, size], dtype=">u4").tobytes()
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(n * size * size)))
    np.save(root / "mnist_test_seq.npy", np.zeros((20, 4, 64, 64), np.uint8))
    _check_and_run_refuse(capsys, "mmnist", root, tmp_path / "res", "images of")


# -- a full disk -------------------------------------------------------------------------------------------
def test_full_disk_during_run_is_one_line_and_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import stbench.records as R

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(R.os, "fsync", full)
    out = tmp_path / "res"
    assert cli.main([*RUN, "--out", str(out)]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and "No space left on device" in err[0] and str(out) in err[0], err
    assert not [p for p in out.rglob("*") if p.is_file()]  # no temporary file left behind


# -- misleading messages about checkpoints -----------------------------------------------------------------
@pytest.mark.parametrize("case, needle, unwanted", [
    ("random_bytes", "not a PyTorch file", "pickled Python objects"),
    ("directory", "is a directory", "does not exist"),
])
def test_checkpoint_messages_say_what_the_file_is(tmp_path, capsys, case, needle, unwanted):
    ck = tmp_path / "w.pt"
    if case == "random_bytes":
        ck.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        ck.mkdir()
        torch.save({}, ck / "inside.pt")
    assert cli.main(["eval", "--checkpoint", str(ck), "--model", "tau", "--out", str(tmp_path / "res"),
                     "--no-profile"]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and needle in err[0] and unwanted not in err[0], err


def test_zero_byte_ns2d_cache_names_its_path(tmp_path):
    from test_datasets_ns2d import TINY

    from stbench.data import get_dataset
    from stbench.errors import DataError

    ds = get_dataset("ns2d", data_root=str(tmp_path), **TINY)
    path = ds.cache_path("val")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # a disk that filled up while the cache was written
    with pytest.raises(DataError, match="delete it to regenerate") as exc:
        ds.read("val", 0, 1)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("obj", [torch.arange(200_000), list(range(200_000))])
def test_predformer_checkpoint_of_the_wrong_type_is_named_not_printed(tmp_path, capsys, obj):
    ck = tmp_path / "w.pt"
    torch.save(obj, ck)
    assert cli.main(["eval", "--checkpoint", str(ck), "--model", "predformer", "--from", "predformer",
                     "--out", str(tmp_path / "res"), "--no-profile"]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and len(err[0]) < 300 and type(obj).__name__ in err[0], err[0][:300]


def test_weatherbench_file_with_nan_is_caught_by_check_and_run(tmp_path, capsys):
    xr = pytest.importorskip("xarray", reason="the stbench[weather] extra is not installed")
    pytest.importorskip("netCDF4", reason="the stbench[weather] extra is not installed")
    from test_datasets_weather import _write

    root = tmp_path / "data"
    _write(root)
    f = sorted((root / "weather_5_625deg" / "2m_temperature").glob("*.nc"))[-1]
    with xr.open_dataset(f) as ds:
        bad = ds.load()
    bad["t2m"][3, 4, 5] = np.nan
    f.unlink()
    bad.to_netcdf(f)
    _check_and_run_refuse(capsys, "weather_t2m_5_625", root, tmp_path / "res", "non-finite")


def test_human_with_an_empty_test_list_is_not_ok(tmp_path):
    from stbench.data import check as C

    d = tmp_path / "human"
    d.mkdir()
    (d / "train.txt").write_text("")
    (d / "test.txt").write_text("")
    rows = C.check("human", tmp_path)
    assert [r[1] for r in rows] == ["wrong shape", "wrong shape"] and "0 clips" in rows[1][2]


@pytest.mark.parametrize("case, needle", [("nan_after_first_step", "non-finite"),
                                          ("test_field_differs", "fields differ")])
def test_well_data_check_sees_late_nan_and_field_mismatch(tmp_path, case, needle):
    h5py = pytest.importorskip("h5py", reason="the stbench[well] extra is not installed")
    from test_datasets_well import _tree

    from stbench.data import check as C

    _tree(tmp_path)
    f = tmp_path / "data" / "test" / "toy_test.hdf5"
    with h5py.File(f, "r+") as h:
        if case == "nan_after_first_step":
            h["t0_fields"]["density"][1, 5, 2, 2] = np.nan
        else:  # trained on density + velocity, tested on pressure + velocity
            h["t0_fields"]["pressure"] = h["t0_fields"]["density"][()]
            h["t0_fields"]["pressure"].attrs["time_varying"] = True
            del h["t0_fields"]["density"]
    rows = C.check("well", tmp_path)
    assert any(r[1] != "ok" and needle in r[2] for r in rows), rows


@pytest.mark.parametrize("extra, needle", [
    (["--set", "data.num_digits=3"], "data.num_digits=3"),
    (["--set", "data.nosuch=3"], "does not take option(s) nosuch"),
])
def test_bad_data_options_are_one_line(tmp_path, capsys, extra, needle):
    root = tmp_path / "data"
    root.mkdir()
    _standard_files_mmnist(root)
    out = tmp_path / "res"
    assert cli.main([*RUN, "--data-root", str(root), "--out", str(out), *extra]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and needle in err[0], err
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True


def _standard_files_mmnist(root):
    rng = np.random.default_rng(0)
    header = np.array([2051, 40, 28, 28], dtype=">u4").tobytes()
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(40 * 28 * 28)))
    np.save(root / "mnist_test_seq.npy", rng.integers(0, 256, (20, 4, 64, 64), dtype=np.uint8))


def test_well_trajectories_too_short_for_one_window_are_one_line(tmp_path, capsys):
    pytest.importorskip("h5py", reason="the stbench[well] extra is not installed")
    from test_datasets_well import _tree

    _tree(tmp_path / "data")  # 7 steps per trajectory
    out = tmp_path / "res"
    assert cli.main([*RUN, "--dataset", "well", "--data-root", str(tmp_path / "data"), "--out", str(out),
                     "--batch-size", "2", "--set", "data.t_in=5", "--set", "data.t_out=5"]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and "has no train sequences" in err[0], err


def test_status_names_a_record_missing_required_keys(tmp_path, capsys):
    """A record without dataset / preset / seed used to be listed as `None None 5 seed - [1]`."""
    d = tmp_path / "records" / "mmnist" / "smoke"
    d.mkdir(parents=True)
    (d / "tau__seed0.json").write_text('{"schema_version": 2, "model": "tau", "status": [1], "kind": "model"}')
    assert cli.main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "unreadable" in out and "missing required key" in out, out


def test_waiting_on_cells_names_every_failed_one():
    """`--launcher submitit-local --wait` exited 1 without naming the cells whose run failed (exit 1)."""
    from stbench.launch.slurm import wait_jobs

    class Job:
        def __init__(self, code):
            self.code = code

        def result(self):
            if isinstance(self.code, Exception):
                raise self.code
            return self.code

    said: list[str] = []
    rc = wait_jobs([Job(0), Job(1), Job(RuntimeError("node lost"))], ["tau seed 0", "predrnn seed 0", "simvp seed 1"],
                   echo=said.append)
    text = "\n".join(said)
    assert rc == 1 and "predrnn seed 0" in text and "simvp seed 1" in text and "tau seed 0" not in text, said
    assert "2 of 3 cells failed" in text


def test_full_disk_during_report_is_one_line_and_leaves_no_empty_plot(tmp_path, capsys, monkeypatch):
    from test_nonfinite import _record

    import stbench.records as R

    res = tmp_path / "res"
    for rec in (_record("tau", 500.0), _record("simvp", 600.0), _record("copy_last", 900.0, kind="floor")):
        rec.write(res)

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    from matplotlib.figure import Figure

    savefig = Figure.savefig

    def savefig_on_a_full_disk(self, fname, *args, **kw):  # a file name: 0 bytes land on disk, then ENOSPC
        if isinstance(fname, (str, os.PathLike)):
            open(fname, "wb").close()
            full()
        return savefig(self, fname, *args, **kw)

    monkeypatch.setattr(R.os, "fsync", full)
    monkeypatch.setattr(Figure, "savefig", savefig_on_a_full_disk)
    monkeypatch.setattr(Path, "write_text", full)
    assert cli.main(["report", "--results", str(res), "--format", "md"]) == cli.EXIT_USAGE
    _, err = _lines(capsys)
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert not [p for p in (res / "report").rglob("*") if p.is_file() and p.stat().st_size == 0]
