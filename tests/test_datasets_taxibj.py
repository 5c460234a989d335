"""taxibj: OpenSTL's dataset.npz layout, (x+1)/2 mapping, validation carved from training data, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from stbench.data import get_dataset
from stbench.data import taxibj as TB
from stbench.errors import DataError


def _write(root, n_train=30, n_test=5, **bad):
    rng = np.random.default_rng(0)
    arrays = {k: rng.uniform(-1, 1, (n_train if "train" in k else n_test, 4, 2, 32, 32)).astype(np.float32)
              for k in TB.KEYS}
    arrays.update(bad)
    (root / "taxibj").mkdir(exist_ok=True)
    np.savez(root / "taxibj" / "dataset.npz", **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_layout_mapping_and_splits(tmp_path):
    arr = _write(tmp_path)
    ds = get_dataset("taxibj", data_root=str(tmp_path))
    assert ds.spec.in_shape == (4, 2, 32, 32) and ds.spec.t_out == 4
    # 30 training samples: val = last 3, gap of 7, train = first 20; test = all 5
    assert (ds.num_samples("train"), ds.num_samples("val"), ds.num_samples("test")) == (20, 3, 5)
    test = ds.read("test", 1, 3)
    assert test.shape == (2, 8, 2, 32, 32) and test.dtype == np.float32
    np.testing.assert_allclose(test[:, :4], (arr["X_test"][1:3] + 1) / 2, atol=1e-7)
    np.testing.assert_allclose(test[:, 4:], (arr["Y_test"][1:3] + 1) / 2, atol=1e-7)
    val = ds.read("val", 0, 3)
    np.testing.assert_allclose(val[:, :4], (arr["X_train"][27:30] + 1) / 2, atol=1e-7)
    train = ds.read("train", 19, 20)
    np.testing.assert_allclose(train[:, 4:], (arr["Y_train"][19:20] + 1) / 2, atol=1e-7)
    x, y = next(ds.batches("train", 4))
    assert x.shape == (4, 4, 2, 32, 32) and y.shape == (4, 4, 2, 32, 32) and 0 <= float(x.min()) <= float(x.max()) <= 1


@pytest.mark.parametrize("bad, status", [
    ({"X_test": None}, "missing"),
    ({"Y_train": np.zeros((30, 4, 2, 16, 16), np.float32)}, "wrong shape"),
    ({"X_train": np.zeros((30, 4, 2, 32, 32), np.int64)}, "wrong dtype"),
    ({"Y_test": np.full((5, 4, 2, 32, 32), 3.0, np.float32)}, "out of range"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, bad, status):
    _write(tmp_path, **bad)
    rows = TB.check_rows(tmp_path)
    assert [r[1] for r in rows].count(status) == 1 and sum(r[1] != "ok" for r in rows) == 1
    ds = get_dataset("taxibj", data_root=str(tmp_path))  # a split's arrays are checked when it is first asked for
    with pytest.raises(DataError, match=status) as exc:
        for split in ("train", "val", "test"):
            ds.num_samples(split)
    assert "\n" not in str(exc.value)


def test_missing_file_and_missing_root(tmp_path):
    assert TB.check_rows(tmp_path)[0][1] == "missing"
    with pytest.raises(DataError, match="missing"):
        get_dataset("taxibj", data_root=str(tmp_path))
    spec_only = get_dataset("taxibj")  # the spec (model building) needs no files; reading does
    assert spec_only.spec.in_shape == (4, 2, 32, 32)
    with pytest.raises(DataError, match="--data-root"):
        spec_only.num_samples("train")


def test_test_split_alone(tmp_path, monkeypatch):
    """Scoring test loads X_test / Y_test only: a file without the training arrays serves it, and the same file
    with them gives the same batches without loading them; train asks for them in one line."""
    arr = _write(tmp_path)
    full = get_dataset("taxibj", data_root=str(tmp_path))
    loaded = []
    real_getitem = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, k: loaded.append(k) or real_getitem(self, k))
    x_full, y_full = next(full.batches("test", 5))
    assert set(loaded) == {"X_test", "Y_test"}
    monkeypatch.undo()
    only = tmp_path / "only_test"
    (only / "taxibj").mkdir(parents=True)
    np.savez(only / "taxibj" / "dataset.npz", X_test=arr["X_test"], Y_test=arr["Y_test"])
    ds = get_dataset("taxibj", data_root=str(only))
    assert ds.num_samples("test") == 5 and ds.spec.sizes == {"test": 5}
    x, y = next(ds.batches("test", 5))
    assert np.array_equal(x.numpy(), x_full.numpy()) and np.array_equal(y.numpy(), y_full.numpy())
    with pytest.raises(DataError, match="X_train.*missing") as exc:
        ds.num_samples("train")
    assert "\n" not in str(exc.value)
