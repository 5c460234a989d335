"""Recipe.build_model takes the run's dataset shapes: a dataset whose spec depends on its files (The Well) builds
the model from the run's spec or ``data_root``, never from whatever files another dataset object read last."""

from __future__ import annotations

import pytest

pytest.importorskip("h5py", reason="the stbench[well] extra (h5py) is not installed")

from test_datasets_well import _write  # noqa: E402

from stbench.data import get_dataset  # noqa: E402
from stbench.recipes import Recipe  # noqa: E402


def _root(tmp_path, name, nx):
    for split in ("train", "valid", "test"):
        _write(tmp_path / name / "data" / split / f"toy_{split}.hdf5", nx=nx)
    return str(tmp_path / name)


def test_build_model_uses_the_runs_files(tmp_path):
    a, b = _root(tmp_path, "a", 8), _root(tmp_path, "b", 10)
    ds_a = get_dataset("well", data_root=a, t_in=2, t_out=2)
    get_dataset("well", data_root=b, t_in=2, t_out=2)  # read last: a file-less spec would take its grid
    recipe = Recipe("well", "convlstm", "smoke",
                    config={"data": {"t_in": 2, "t_out": 2}, "model": {"patch_size": 2, "num_hidden": [4],
                                                                        "filter_size": 3}})
    assert tuple(recipe.build_model(spec=ds_a.spec).in_shape) == (2, 3, 8, 6)
    assert tuple(recipe.build_model(data_root=a).in_shape) == (2, 3, 8, 6)
    assert recipe.dataset_spec(a).in_shape == (2, 3, 8, 6) and recipe.dataset_spec(b).in_shape == (2, 3, 10, 6)
