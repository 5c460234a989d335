"""`stbench data check` and the run's early stop on bad files (nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

from stbench.cli import main


def _taxibj(root, bad=False):
    (root / "taxibj").mkdir(parents=True)
    arrays = {k: np.zeros((12 if "train" in k else 3, 4, 2, 32, 32), np.float32)
              for k in ("X_train", "Y_train", "X_test", "Y_test")}
    if bad:
        arrays["Y_test"] = np.zeros((3, 4, 2, 16, 16), np.float32)
    np.savez(root / "taxibj" / "dataset.npz", **arrays)


def test_data_check_lines_and_exit_code(tmp_path, capsys):
    _taxibj(tmp_path / "good")
    assert main(["data", "check", "--dataset", "taxibj", "--data-root", str(tmp_path / "good")]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 4 and "4 ok, 0 not ok" in out
    _taxibj(tmp_path / "bad", bad=True)
    assert main(["data", "check", "--dataset", "taxibj", "--data-root", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "wrong shape" in out and "Y_test" in out
    assert main(["data", "check", "--dataset", "kth", "--data-root", str(tmp_path / "none")]) == 1
    assert "missing" in capsys.readouterr().out


def test_run_with_bad_files_stops_before_writing(tmp_path, capsys):
    _taxibj(tmp_path / "bad", bad=True)
    out = tmp_path / "out"
    rc = main(["run", "--models", "tau", "--dataset", "taxibj", "--preset", "smoke", "--data-root",
               str(tmp_path / "bad"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and "wrong shape" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_mmnist_standard_files(tmp_path, capsys):
    assert main(["data", "check", "--dataset", "mmnist", "--data-root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.count("missing") == 2
    np.save(tmp_path / "mnist_test_seq.npy", np.zeros((20, 3, 32, 32), np.uint8))  # wrong frame size
    assert main(["data", "check", "--dataset", "mmnist", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "wrong" in out and "mnist_test_seq.npy" in out


def _refuses_before_writing(capsys, dataset, root, out, needle, *extra):
    rc = main(["run", "--models", "tau", "--dataset", dataset, "--preset", "smoke", "--no-profile",
               "--data-root", str(root), "--out", str(out), *extra])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()  # nothing written, not even the results folder


def test_human_bad_files_stop_the_run_before_writing(tmp_path, capsys):
    d = tmp_path / "data" / "human"
    d.mkdir(parents=True)
    (d / "train.txt").write_text("")
    (d / "test.txt").write_text("")
    _refuses_before_writing(capsys, "human", tmp_path / "data", tmp_path / "out", "0 clips")


def test_well_bad_files_stop_the_run_before_writing_and_well_has_recipes(tmp_path, capsys):
    h5py = pytest.importorskip("h5py", reason="the stbench[well] extra is not installed")
    from test_datasets_well import _tree

    from stbench.recipes import load_recipe

    for preset in ("smoke", "quick", "paper"):  # no --epochs / --batch-size needed
        cfg = load_recipe("well", "tau", preset).config
        assert cfg.get("epochs") or cfg.get("budget") and cfg["batch_size"] >= 1
    _tree(tmp_path)
    with h5py.File(tmp_path / "data" / "test" / "toy_test.hdf5", "r+") as h:
        h["t0_fields"]["density"][1, 5, 2, 2] = np.nan
    _refuses_before_writing(capsys, "well", tmp_path, tmp_path / "out", "non-finite")


def test_every_dataset_checker_is_on_its_registry_entry():
    from stbench.data import check as C
    from stbench.registry import DATASETS

    with_files = {e.name for e in DATASETS.entries() if e.meta.get("check")}
    assert {"mmnist", "taxibj", "kth", "kth40", "human", "sevir", "well"} <= with_files
    assert {n for n in DATASETS.names() if n.startswith("weather_")} <= with_files
    assert not hasattr(C, "CHECKERS") and not hasattr(C, "register_checker")
    assert C.checker("ns2d") is None  # generated data: nothing to check


def test_the_default_metrics_are_registered_video_metrics():
    """The one default list (stbench.data.spec, re-exported by stbench.metrics): every name is a registered
    metric that scores video frames, and a spec without its own list uses it."""
    from stbench.data.spec import DEFAULT_METRICS, DatasetSpec
    from stbench.metrics import metric_def

    assert DatasetSpec("x", (1, 1, 1, 1), 1).metrics == DEFAULT_METRICS == ("mse", "mae", "ssim", "psnr")
    assert all(metric_def(m).name == m and metric_def(m).per_frame for m in DEFAULT_METRICS)
