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
    with pytest.raises(DataError, match=status) as exc:
        get_dataset("taxibj", data_root=str(tmp_path))
    assert "\n" not in str(exc.value)


def test_missing_file_and_missing_root(tmp_path):
    assert TB.check_rows(tmp_path)[0][1] == "missing"
    with pytest.raises(DataError, match="missing"):
        get_dataset("taxibj", data_root=str(tmp_path))
    spec_only = get_dataset("taxibj")  # the spec (model building) needs no files; reading does
    assert spec_only.spec.in_shape == (4, 2, 32, 32)
    with pytest.raises(DataError, match="--data-root"):
        spec_only.num_samples("train")
