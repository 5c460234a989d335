"""ns2d: the pseudo-spectral solver against physics (analytic Taylor-Green decay, conservation,
divergence-free velocity) and the dataset contract (shapes, determinism, cache, disjoint splits)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stbench import metrics
from stbench.data import get_dataset
from stbench.data import ns2d as N
from stbench.errors import DataError

TINY = dict(resolution=16, t_in=2, t_out=2, traj_frames=6, stride=2, train_trajectories=3, val_trajectories=1,
            test_trajectories=2, dt=0.1, frame_dt=0.5)


def _energy_enstrophy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kinetic energy 0.5 <|u|^2> and enstrophy 0.5 <w^2> of fields (..., n, n), computed independently
    of the solver's operators (numpy FFT, psi from -lap psi = w)."""
    n = w.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    k2 = 4 * np.pi**2 * (kx**2 + ky**2)
    w_h = np.fft.fft2(w)
    psi_h = np.where(k2 > 0, w_h / np.where(k2 > 0, k2, 1), 0)
    u = np.fft.ifft2(2j * np.pi * ky * psi_h).real
    v = np.fft.ifft2(-2j * np.pi * kx * psi_h).real
    return 0.5 * (u**2 + v**2).mean(axis=(-2, -1)), 0.5 * (w**2).mean(axis=(-2, -1))


def test_taylor_green_decays_as_analytic():
    # w = A cos(2 pi k x) cos(2 pi k y) is an eigenfunction of the Laplacian whose advection term vanishes:
    # w(t) = w(0) exp(-nu 8 pi^2 k^2 t) exactly
    n, nu, k = 16, 0.01, 2
    y, x = N.grid(n)
    w0 = 1.5 * np.cos(2 * np.pi * k * x) * np.cos(2 * np.pi * k * y)
    w = N.solve(w0[None], t_frames=3, frame_dt=0.25, dt=0.01, nu=nu)
    a = nu * 8 * math.pi**2 * k**2 * 0.01  # decay per step
    for t in range(3):
        exact = w0 * math.exp(-a * 25 * t)
        assert np.abs(w[0, t] - exact).max() <= 3e-4 * np.abs(exact).max()  # Crank-Nicolson error ~ a^3/12 per step
        crank_nicolson = w0 * ((1 - a / 2) / (1 + a / 2)) ** (25 * t)
        assert np.abs(w[0, t] - crank_nicolson).max() <= 1e-12  # and exactly the discrete scheme
    assert w[0, 2].std() < 0.9 * w0.std()  # it did decay (a frozen solver would fail above, too)


def test_unforced_energy_and_enstrophy_decay_and_inviscid_conservation():
    w0 = N.gaussian_random_field(32, [(7, 0), (7, 1)])
    visc = N.solve(w0, t_frames=4, frame_dt=0.5, dt=0.05, nu=1e-2)
    e, z = _energy_enstrophy(visc)
    assert (np.diff(e, axis=1) < 0).all() and (np.diff(z, axis=1) < 0).all()
    inviscid = N.solve(w0, t_frames=4, frame_dt=0.5, dt=0.05, nu=0.0)
    e0, z0 = _energy_enstrophy(inviscid)
    assert np.abs(e0 / e0[:, :1] - 1).max() < 1e-4  # the de-aliased advection conserves both
    assert np.abs(z0 / z0[:, :1] - 1).max() < 1e-3
    assert np.abs(inviscid[:, -1] - w0).max() > 0.05 * np.abs(w0).max()  # and the field did move


def test_velocity_is_divergence_free_and_has_the_vorticity():
    sp = N.Spectral(32)
    w0 = N.gaussian_random_field(32, [(3, 3)])
    w_h = torch.fft.rfft2(torch.from_numpy(w0))
    u_h, v_h = sp.velocity(w_h)
    div = torch.fft.irfft2(sp.ikx * u_h + sp.iky * v_h, s=(32, 32))
    curl = torch.fft.irfft2(sp.ikx * v_h - sp.iky * u_h, s=(32, 32))  # dv/dx - du/dy
    assert div.abs().max() < 1e-12
    assert (curl - (torch.from_numpy(w0) - w0.mean())).abs().max() < 1e-12


def test_forcing_and_random_field_as_fno():
    f = N.fno_forcing(8)
    y, x = N.grid(8)
    assert np.allclose(f, 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y))))
    a = N.gaussian_random_field(16, [(1, 0), (1, 1)])
    b = N.gaussian_random_field(16, [(1, 1)])
    assert np.array_equal(a[1], b[0])  # field i depends only on its own stream
    assert abs(a.mean()) < 1e-12 and not np.allclose(a[0], a[1])


def test_dataset_shapes_cache_and_determinism(tmp_path):
    ds = get_dataset("ns2d", data_root=str(tmp_path), **TINY)
    assert ds.spec.in_shape == (2, 1, 16, 16) and ds.spec.t_out == 2
    assert ds.spec.metrics == ("mse", "mae", "rel_l2")
    assert ds.windows_per_traj == 2 and ds.num_samples("train") == 6 and ds.num_samples("test") == 4
    x = ds.read("train", 0, 6)
    assert x.shape == (6, 4, 1, 16, 16) and x.dtype == np.float32
    assert np.array_equal(x[1, :2], x[0, 2:])  # window 1 of a trajectory starts `stride` frames later
    assert len(list((tmp_path / "ns2d").glob("train_*.npy"))) == 1
    again = get_dataset("ns2d", data_root=str(tmp_path), **TINY).read("train", 2, 4)  # from the cache
    assert np.array_equal(again, x[2:4])
    fresh = ds.generate("train", 1, 2)  # trajectory 1 alone, not cached: same up to float32 FFT rounding
    assert np.array_equal(fresh[0, 0], x[2, 0, 0])  # the initial field is bit-identical
    np.testing.assert_allclose(fresh[0, 0:4], x[2, :, 0], rtol=0, atol=1e-5)
    test = ds.read("test", 0, 4)
    assert not np.allclose(test[0, 0], x[0, 0])  # disjoint trajectories
    xb, yb = next(ds.batches("val", 2))
    assert xb.shape == (2, 2, 1, 16, 16) and yb.shape == (2, 2, 1, 16, 16)
    assert get_dataset("ns2d_long").spec.t_out == 30


def test_bad_cache_is_one_line_error(tmp_path):
    ds = get_dataset("ns2d", data_root=str(tmp_path), **TINY)
    path = ds.cache_path("val")
    path.parent.mkdir(parents=True)
    np.save(path, np.zeros((1, 2, 3), np.float32))
    with pytest.raises(DataError, match="delete it to regenerate") as exc:
        ds.read("val", 0, 1)
    assert "\n" not in str(exc.value)


def test_rel_l2_and_rmse_by_hand():
    true = torch.zeros(1, 2, 1, 2, 2, dtype=torch.float64)
    true[0, 0] = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # ||true|| = 5
    true[0, 1] = 1.0  # ||true|| = 2
    pred = true.clone()
    pred[0, 0, 0, 0, 0] += 1.0  # error norm 1 -> 0.2
    pred[0, 1] += 0.5  # error norm 1 -> 0.5
    res = metrics.compute(pred, true, metrics=("rel_l2", "rmse"))
    assert res["per_frame"]["rel_l2"] == pytest.approx([0.2, 0.5])
    assert res["per_frame"]["rmse"] == pytest.approx([0.5, 0.5])
