"""The Well's VRMSE: sqrt(MSE / (sample variance of the target over space + 1e-7)) per frame and channel, averaged
over channels (``vrmse``) or one channel by name (``vrmse_<channel>``), checked against numpy by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stbench import metrics as M


def _hand(pred, true):
    """(B, T, C) numpy VRMSE, the definition written out: ddof=1 variance over H*W, eps 1e-7 on the variance."""
    B, T, C = pred.shape[:3]
    p, t = pred.reshape(B, T, C, -1).astype(np.float64), true.reshape(B, T, C, -1).astype(np.float64)
    return np.sqrt(((p - t) ** 2).mean(-1) / (t.var(-1, ddof=1) + 1e-7))


def test_vrmse_by_hand():
    rng = np.random.default_rng(0)
    true = rng.standard_normal((2, 3, 3, 5, 4)).astype(np.float32) * np.array([1, 10, 0.1], np.float32)[:, None, None]
    pred = true + 0.2 * rng.standard_normal(true.shape).astype(np.float32)
    res = M.compute(pred, true, metrics=["vrmse"])
    want = _hand(pred, true)  # (B, T, C)
    assert res["vrmse"] == pytest.approx(want.mean(), rel=1e-6)
    np.testing.assert_allclose(res["per_frame"]["vrmse"], want.mean(axis=(0, 2)), rtol=1e-6)
    # scale-free per channel: the channel with 10x the spread and the same noise scores 10x lower
    assert want[..., 1].mean() < want[..., 0].mean() / 5


def test_constant_target_uses_the_epsilon():
    true = np.ones((1, 1, 1, 2, 2), np.float32)
    pred = true + 0.001
    got = M.compute(pred, true, metrics=["vrmse"])["vrmse"]
    assert got == pytest.approx(np.sqrt(0.001**2 / 1e-7), rel=1e-3)  # variance 0: sqrt(mse / eps)


def test_per_field_vrmse_on_the_well(tmp_path):
    pytest.importorskip("h5py", reason="the stbench[well] extra (h5py) is not installed")
    from test_datasets_well import _tree

    from stbench.data import get_dataset

    _tree(tmp_path)
    ds = get_dataset("well", data_root=str(tmp_path), t_in=2, t_out=2)
    assert ds.spec.metric_context["channels"] == ("density", "velocity_x", "velocity_y")
    assert ds.spec.metrics[:4] == ("vrmse", "vrmse_density", "vrmse_velocity_x", "vrmse_velocity_y")
    x, y = next(iter(ds.batches("test", 3)))
    rng = np.random.default_rng(1)
    pred = y.numpy() + rng.standard_normal(y.shape).astype(np.float32) * np.float32(5)
    res = M.compute(pred, y.numpy(), metrics=ds.spec.metrics[:4], context=ds.spec.metric_context)
    want = _hand(pred, y.numpy())
    assert res["vrmse"] == pytest.approx(want.mean(), rel=1e-6)
    for c, name in enumerate(ds.spec.metrics[1:4]):
        assert res[name] == pytest.approx(want[..., c].mean(), rel=1e-6)
    # another field choice: the channel is found by name, not by position
    only = get_dataset("well", data_root=str(tmp_path), t_in=2, t_out=2, fields="velocity")
    _, yv = next(iter(only.batches("test", 3)))
    r2 = M.compute(pred[:, :, 1:], yv.numpy(), metrics=["vrmse_velocity_y"], context=only.spec.metric_context)
    assert r2["vrmse_velocity_y"] == pytest.approx(want[..., 2].mean(), rel=1e-6)


def test_channel_names_follow_the_wells_flattening(tmp_path):
    h5py = pytest.importorskip("h5py", reason="the stbench[well] extra (h5py) is not installed")
    from stbench.data.well import channel_names

    with h5py.File(tmp_path / "t.hdf5", "w") as f:
        f.create_group("dimensions").attrs["spatial_dims"] = ["x", "y"]
        f.create_group("t0_fields").create_dataset("Pressure", data=np.zeros((1, 2, 3, 3)))
        f.create_group("t2_fields").create_dataset("D", data=np.zeros((1, 2, 3, 3, 2, 2)))
        names = channel_names(f, [("t0_fields", "Pressure"), ("t2_fields", "D")])
    assert names == ["pressure", "d_xx", "d_xy", "d_yx", "d_yy"]
