"""`stbench data check` and the run's early stop on bad files (nothing written)."""

from __future__ import annotations

import numpy as np

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
