"""well: small HDF5 files in The Well's layout (root attrs, dimensions, t0/t1 fields), field choice,
windowing, bad files. Skipped without the `well` extra (h5py)."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="the stbench[well] extra (h5py) is not installed")

from stbench.data import check as C  # noqa: E402
from stbench.data import get_dataset  # noqa: E402
from stbench.errors import DataError  # noqa: E402


def _write(path, n_traj=2, n_steps=7, nx=8, ny=6, bad_dtype=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="toy", n_spatial_dims=2, n_trajectories=n_traj, grid_type="cartesian")
        d = f.create_group("dimensions")
        d["time"] = np.arange(n_steps, dtype=np.float32)
        d["x"] = np.linspace(0, 1, nx)
        d["y"] = np.linspace(0, 1, ny)
        t0 = f.create_group("t0_fields")
        rho = np.arange(n_traj * n_steps * nx * ny, dtype=np.float32).reshape(n_traj, n_steps, nx, ny)
        t0.create_dataset("density", data=rho.astype(np.int32) if bad_dtype else rho).attrs["time_varying"] = True
        t0.create_dataset("mask", data=np.ones((n_traj, nx, ny), np.float32)).attrs["time_varying"] = False
        t1 = f.create_group("t1_fields")
        vel = np.stack([rho + 0.25, -rho], axis=-1)
        t1.create_dataset("velocity", data=vel).attrs["time_varying"] = True
        f.create_group("t2_fields")
    return rho


def _tree(root):
    out = {}
    for split in ("train", "valid", "test"):
        out[split] = _write(root / "data" / split / f"toy_{split}.hdf5")
    return out


def test_layout_fields_and_windows(tmp_path):
    rho = _tree(tmp_path)["valid"]
    ds = get_dataset("well", data_root=str(tmp_path), t_in=2, t_out=2)
    assert ds.spec.in_shape == (2, 3, 8, 6)  # density + velocity (2 components); the static mask skipped
    assert ds.num_samples("val") == 2 * (7 - 4 + 1)
    x = ds.read("val", 5, 6)  # trajectory 1, window 1
    np.testing.assert_array_equal(x[0, :, 0], rho[1, 1:5])
    np.testing.assert_array_equal(x[0, :, 1], rho[1, 1:5] + 0.25)
    np.testing.assert_array_equal(x[0, :, 2], -rho[1, 1:5])
    only = get_dataset("well", data_root=str(tmp_path), t_in=2, t_out=2, fields="velocity", stride=2)
    assert only.spec.in_shape == (2, 2, 8, 6) and only.num_samples("train") == 2 * 2
    assert get_dataset("well", t_in=2, t_out=2, fields="velocity").spec.in_shape == (2, 2, 8, 6)  # last shape seen
    with pytest.raises(DataError, match="no field"):
        get_dataset("well", data_root=str(tmp_path), fields="pressure")


def test_bad_files(tmp_path):
    _tree(tmp_path)
    _write(tmp_path / "data" / "test" / "toy_test.hdf5", bad_dtype=True)
    rows = C.check("well", tmp_path)
    assert [r[1] for r in rows].count("wrong dtype") == 1 and sum(r[1] != "ok" for r in rows) == 1
    ds = get_dataset("well", data_root=str(tmp_path), t_in=2, t_out=2)  # a split's files: checked when asked for
    assert ds.num_samples("train") == 2 * (7 - 4 + 1)  # the bad test file does not concern train
    with pytest.raises(DataError, match="wrong dtype") as exc:
        ds.num_samples("test")
    assert "\n" not in str(exc.value)
    (tmp_path / "data" / "test" / "toy_test.hdf5").write_bytes(b"junk")
    assert "not a readable HDF5" in " ".join(r[2] for r in C.check("well", tmp_path))
    assert C.check("well", tmp_path / "none")[0][1] == "missing"
