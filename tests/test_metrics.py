"""Metrics in the published convention: scikit-image is the oracle for SSIM and PSNR, hand-computed
values for MSE / MAE (per-frame sums), plus clipping, streaming, floors and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from stbench import metrics as M
from stbench.registry import METRICS, RegistryError


# -- helpers -----------------------------------------------------------------------------------
def _frames_last(x: np.ndarray, b: int, t: int) -> np.ndarray:
    return np.moveaxis(x[b, t], 0, -1)  # (C, H, W) -> (H, W, C)


def sk_ssim(pred: np.ndarray, true: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Per-frame oracle (B, T): the published loop, prediction clipped, target not."""
    pred = np.clip(pred.astype(np.float64), 0, 1)
    true = true.astype(np.float64)
    B, T = pred.shape[:2]
    return np.array([[structural_similarity(_frames_last(pred, b, t), _frames_last(true, b, t),
                                            data_range=data_range, channel_axis=-1, win_size=7)
                      for t in range(T)] for b in range(B)])


def sk_psnr(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    pred = np.clip(pred.astype(np.float64), 0, 1)
    true = true.astype(np.float64)
    B, T = pred.shape[:2]
    return np.array([[peak_signal_noise_ratio(true[b, t], pred[b, t], data_range=1.0) for t in range(T)]
                     for b in range(B)])


def structured(B: int, T: int, C: int, H: int, W: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moving bright discs on black (flat 0 and flat 1 regions, sharp edges) and a blurred, noisy,
    slightly shifted prediction that overshoots [0, 1] in places."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    true = np.zeros((B, T, C, H, W))
    for b in range(B):
        for c in range(C):
            for _ in range(3):
                cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(3, H / 3)
                vy, vx = rng.uniform(-2, 2, size=2)
                level = rng.choice([1.0, rng.uniform(0.3, 1.0)])
                for t in range(T):
                    disc = (yy - cy - vy * t) ** 2 + (xx - cx - vx * t) ** 2 < r * r
                    true[b, t, c] = np.maximum(true[b, t, c], level * disc)
    pred = 0.5 * (true + np.roll(true, 1, axis=-1))
    pred = 1.1 * pred - 0.03 + 0.02 * rng.standard_normal(pred.shape)
    return pred, true


def noisy(shape: tuple[int, ...], seed: int = 0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.random(shape)
    pred = true + 0.15 * rng.standard_normal(shape)
    return pred.astype(dtype), true.astype(dtype)


# -- SSIM --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 1, 16, 16), (2, 2, 3, 20, 27), (1, 4, 2, 7, 9)])
def test_ssim_random_matches_skimage(shape, dtype):
    pred, true = noisy(shape, dtype=dtype)
    ours = M.ssim(torch.from_numpy(pred), torch.from_numpy(true)).numpy()
    np.testing.assert_allclose(ours, sk_ssim(pred, true), rtol=0, atol=1e-5)
    res = M.compute(pred, true, metrics=("ssim",))
    assert res["ssim"] == pytest.approx(sk_ssim(pred, true).mean(), abs=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("C", [1, 3])
def test_ssim_structured_matches_skimage(C, dtype):
    pred, true = structured(2, 4, C, 32, 40)
    pred, true = pred.astype(dtype), true.astype(dtype)
    assert pred.max() > 1 and pred.min() < 0  # the clipping is exercised
    ours = M.ssim(torch.from_numpy(pred), torch.from_numpy(true)).numpy()
    np.testing.assert_allclose(ours, sk_ssim(pred, true), rtol=0, atol=1e-5)


def test_ssim_flat_and_identical_frames():
    flat = np.full((1, 2, 1, 12, 12), 0.9)
    near = flat + 0.003 * np.random.default_rng(1).standard_normal(flat.shape)
    for dtype in (np.float32, np.float64):
        p, t = near.astype(dtype), flat.astype(dtype)
        np.testing.assert_allclose(M.ssim(torch.from_numpy(p), torch.from_numpy(t)).numpy(), sk_ssim(p, t), atol=1e-5)
        same = M.ssim(torch.from_numpy(t), torch.from_numpy(t)).numpy()
        np.testing.assert_allclose(same, 1.0, atol=1e-6)


def test_ssim_dr1_is_the_corrected_variant():
    pred, true = structured(2, 3, 1, 32, 32, seed=3)
    res = M.compute(pred, true, metrics=("ssim", "ssim_dr1"))
    np.testing.assert_allclose(res["per_frame"]["ssim_dr1"], sk_ssim(pred, true, data_range=1.0).mean(0), atol=1e-5)
    np.testing.assert_allclose(res["per_frame"]["ssim"], sk_ssim(pred, true, data_range=2.0).mean(0), atol=1e-5)
    assert res["ssim_dr1"] < res["ssim"]  # the published data_range=2.0 flatters


def test_ssim_needs_7x7_frames():
    pred, true = noisy((1, 1, 1, 6, 30))
    with pytest.raises(ValueError, match="7x7"):
        M.compute(pred, true)


# -- PSNR, MSE, MAE ----------------------------------------------------------------------------
def test_psnr_matches_skimage_per_frame_then_mean():
    pred, true = structured(3, 4, 2, 16, 16, seed=5)
    res = M.compute(pred, true, metrics=("psnr",))
    oracle = sk_psnr(pred, true)  # (B, T)
    np.testing.assert_allclose(res["per_frame"]["psnr"], oracle.mean(0), rtol=0, atol=1e-9)
    assert res["psnr"] == pytest.approx(oracle.mean(), abs=1e-9)
    # the mean of per-frame PSNRs, not the PSNR of the mean MSE
    mse_all = np.mean((np.clip(pred, 0, 1) - true) ** 2)
    assert abs(res["psnr"] - 10 * np.log10(1 / mse_all)) > 1e-3


def test_psnr_of_a_perfect_frame_is_capped():
    true = np.random.default_rng(0).random((1, 2, 1, 8, 8))
    pred = true.copy()
    pred[0, 1] += 0.1
    res = M.compute(pred, true, metrics=("psnr",))
    assert res["per_frame"]["psnr"][0] == pytest.approx(100.0)
    assert np.isfinite(res["psnr"])


# A 1x2x1x2x2 case written out by hand: MSE and MAE are per-frame SUMS over C*H*W, not clipped.
PRED = np.array([[[[[0.5, 0.0], [1.0, 0.25]]], [[[-0.5, 0.0], [0.0, 0.0]]]]])  # (B=1, T=2, C=1, H=2, W=2)
TRUE = np.array([[[[[0.0, 0.0], [0.5, 0.25]]], [[[0.5, 0.0], [0.0, 0.0]]]]])
# frame 0: errors 0.5, 0, 0.5, 0 -> SSE 0.5, SAE 1.0; frame 1: error 1 (unclipped) -> SSE 1, SAE 1
# PSNR (clipped pred): frame 0 mse_f = 0.5 / 4; frame 1 pred -0.5 -> 0, error 0.5, mse_f = 0.25 / 4


def test_mse_mae_psnr_hand_computed():
    res = M.compute(PRED, TRUE, metrics=("mse", "mae", "psnr"))
    assert res["per_frame"]["mse"] == pytest.approx([0.5, 1.0])
    assert res["mse"] == pytest.approx(0.75)  # a per-pixel mean would give 0.1875
    assert res["per_frame"]["mae"] == pytest.approx([1.0, 1.0])
    assert res["mae"] == pytest.approx(1.0)
    psnr = [10 * np.log10(8.0), 10 * np.log10(16.0)]
    assert res["per_frame"]["psnr"] == pytest.approx(psnr)
    assert res["psnr"] == pytest.approx(np.mean(psnr))


def test_clipping_applies_to_predictions_only():
    # prediction above 1, target above 1 too (a target is never clipped)
    pred = np.full((1, 1, 1, 8, 8), 1.3)
    true = np.full((1, 1, 1, 8, 8), 1.1)
    res = M.compute(pred, true, metrics=("mse", "psnr"))
    assert res["psnr"] == pytest.approx(20.0)  # clipped pred 1.0 vs 1.1: mse_f 0.01
    # (unclipped pred would give 13.98 dB, a clipped target 100 dB)
    assert res["mse"] == pytest.approx(64 * 0.2**2)  # MSE is not clipped
    # SSIM: the same, frame by frame against scikit-image on clipped pred / raw target
    p, t = structured(1, 2, 1, 24, 24, seed=7)
    t = t * 1.2 - 0.1  # target outside [0, 1]
    ours = M.compute(p, t, metrics=("ssim",))["per_frame"]["ssim"]
    np.testing.assert_allclose(ours, sk_ssim(p, t)[0], atol=1e-5)
    both_clipped = np.array([structural_similarity(np.clip(p[0, i, 0], 0, 1), np.clip(t[0, i, 0], 0, 1),
                                                   data_range=2.0, win_size=7) for i in range(2)])
    assert np.abs(np.array(ours) - both_clipped).max() > 1e-3  # the case distinguishes the two


# -- API -----------------------------------------------------------------------------------------
def test_numpy_and_torch_inputs_agree():
    pred, true = noisy((2, 3, 2, 16, 16), seed=2, dtype=np.float32)
    a = M.compute(pred, true)
    b = M.compute(torch.from_numpy(pred), torch.from_numpy(true))
    c = M.compute(torch.from_numpy(pred), true)  # mixed
    d = M.compute(pred[:, :, :, ::-1], true[:, :, :, ::-1])  # negative strides: flipped rows, same SSE
    assert a == b == c
    assert d["mse"] == pytest.approx(a["mse"], rel=1e-12)
    assert set(a) == {"mse", "mae", "ssim", "psnr", "per_frame"}
    assert all(isinstance(a[k], float) for k in M.DEFAULT_METRICS)


def test_per_frame_lists_have_length_t():
    pred, true = noisy((2, 5, 1, 12, 12))
    res = M.compute(pred, true, metrics=("mse", "mae", "ssim", "psnr", "ssim_dr1"))
    assert set(res["per_frame"]) == {"mse", "mae", "ssim", "psnr", "ssim_dr1"}
    for name, curve in res["per_frame"].items():
        assert len(curve) == 5 and all(isinstance(v, float) for v in curve)
        assert res[name] == pytest.approx(np.mean(curve))
    assert "per_frame" not in M.compute(pred, true, per_frame=False)


def test_accumulator_equals_compute_on_concatenation():
    pred, true = structured(7, 3, 2, 16, 16, seed=11)
    full = M.compute(pred, true, metrics=("mse", "mae", "ssim", "psnr", "ssim_dr1"))
    acc = M.MetricAccumulator(metrics=("mse", "mae", "ssim", "psnr", "ssim_dr1"))
    for lo, hi in [(0, 1), (1, 4), (4, 4), (4, 7)]:  # uneven batches, one empty
        acc.update(torch.from_numpy(pred[lo:hi]), torch.from_numpy(true[lo:hi]))
    assert acc.n_sequences == 7
    res = acc.result()
    for k in full:
        if k == "per_frame":
            for n in full[k]:
                np.testing.assert_allclose(res[k][n], full[k][n], rtol=1e-12)
        else:
            assert res[k] == pytest.approx(full[k], rel=1e-12)
    with pytest.raises(ValueError, match="same number of predicted frames"):
        acc.update(pred[:, :2], true[:, :2])
    acc.reset()
    with pytest.raises(ValueError, match="no predictions"):
        acc.result()


def test_chunking_does_not_change_results(monkeypatch):
    pred, true = structured(5, 3, 2, 16, 16, seed=12)
    names = ("mse", "mae", "ssim", "psnr", "ssim_dr1")
    whole = M.compute(pred, true, metrics=names)
    monkeypatch.setattr(M, "_BATCH_ELEMS", 2 * 3 * 2 * 16 * 16)  # 2 sequences per chunk: 2 + 2 + 1
    monkeypatch.setattr(M, "_CPU_CHUNK", 4 * 2 * 16 * 16)  # 4 frames per SSIM chunk: 4 + 2
    chunked = M.compute(pred, true, metrics=names)
    for n in names:
        np.testing.assert_allclose(chunked["per_frame"][n], whole["per_frame"][n], rtol=1e-12)


def test_bad_inputs_fail_clearly():
    pred, true = noisy((1, 2, 1, 8, 8))
    with pytest.raises(ValueError, match="differ in shape"):
        M.compute(pred, true[:, :1])
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        M.compute(pred[0], true[0])
    with pytest.raises(TypeError, match="floating-point"):
        M.compute((pred * 255).astype(np.uint8), (true * 255).astype(np.uint8))
    with pytest.raises(RegistryError, match="unknown metric 'ssmi'.*did you mean"):
        M.compute(pred, true, metrics=("ssmi",))


def test_metrics_are_registered_with_metadata():
    for name, better in [("mse", False), ("mae", False), ("ssim", True), ("psnr", True), ("ssim_dr1", True)]:
        entry = METRICS.entry(name)
        assert entry.meta["higher_is_better"] is better
        assert entry.meta["convention"]
    assert "data_range=2.0" in METRICS.entry("ssim").meta["convention"]
    meta = M.metrics_meta(("mse", "ssim"))
    assert meta["mse"]["higher_is_better"] is False and meta["ssim"]["higher_is_better"] is True
    assert meta["ssim"]["convention"] == METRICS.entry("ssim").meta["convention"]
    for phrase in ("SUMS", "clipped", "data_range=2.0", "ssim_dr1", "per-frame", "100 dB"):
        assert phrase in M.METRIC_CONVENTION


def test_a_registered_metric_plugin_is_usable():
    def brightest(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return pred.amax(dim=(2, 3, 4)).double()  # (B, T)

    METRICS.register("test_brightest", obj=brightest, higher_is_better=False, convention="max pixel")
    try:
        pred, true = noisy((2, 3, 1, 8, 8))
        res = M.compute(pred, true, metrics=("mse", "test_brightest"))
        assert res["test_brightest"] == pytest.approx(pred.max(axis=(2, 3, 4)).mean())
    finally:
        METRICS.unregister("test_brightest")


# -- sanity floors -------------------------------------------------------------------------------
def test_floor_predictions():
    inputs = np.random.default_rng(0).random((2, 4, 3, 5, 6)).astype(np.float32)
    last = M.floor_predictions("copy_last", inputs, 7)
    assert isinstance(last, np.ndarray) and last.shape == (2, 7, 3, 5, 6) and last.dtype == np.float32
    for t in range(7):
        np.testing.assert_array_equal(last[:, t], inputs[:, -1])
    last[0, 0] = -1  # a real copy, not a view of the inputs
    assert inputs.min() >= 0
    zeros = M.floor_predictions("zeros", torch.from_numpy(inputs), 3)
    assert isinstance(zeros, torch.Tensor) and zeros.shape == (2, 3, 3, 5, 6) and not zeros.any()
    rev = M.floor_predictions("copy_last", inputs[:, ::-1], 2)  # negative strides
    np.testing.assert_array_equal(rev[:, 1], inputs[:, 0])
    with pytest.raises(ValueError, match="copy_last, zeros"):
        M.floor_predictions("mean", inputs, 3)


def test_copy_last_floor_scores_like_a_model():
    seq = structured(2, 6, 1, 16, 16, seed=4)[1]
    inputs, targets = seq[:, :3], seq[:, 3:]
    res = M.compute(M.floor_predictions("copy_last", inputs, 3), targets)
    zero = M.compute(M.floor_predictions("zeros", inputs, 3), targets)
    assert zero["mse"] == pytest.approx((targets**2).sum(axis=(2, 3, 4)).mean())
    assert res["per_frame"]["mse"][0] <= res["per_frame"]["mse"][-1]  # error grows with the horizon


# -- speed ---------------------------------------------------------------------------------------
def _speedup(frames: int, repeats: int, threads: int | None = 1) -> float:
    pred, true = noisy((frames // 10, 10, 1, 64, 64), dtype=np.float32)
    pred = np.clip(pred, 0, 1)
    pt, tt = torch.from_numpy(pred), torch.from_numpy(true)

    def loop() -> None:
        for b in range(pred.shape[0]):
            for t in range(10):
                structural_similarity(pred[b, t, 0], true[b, t, 0], data_range=2.0, win_size=7)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)  # 1: like for like with the loop, and robust on shared cores
    try:
        return best(loop) / best(lambda: M.ssim(pt, tt))
    finally:
        torch.set_num_threads(default)


def test_ssim_is_much_faster_than_a_skimage_loop():
    # loose and retried: shared CI cores are noisy; the >= 5x claim is the slow test below
    ratios = []
    while len(ratios) < 3 and max(ratios, default=0) < 2.5:
        ratios.append(_speedup(200, 3))
    assert max(ratios) >= 2.5, f"batched SSIM only {max(ratios):.1f}x faster than the scikit-image loop"


@pytest.mark.slow
def test_ssim_is_5x_faster_than_a_skimage_loop():
    # One torch thread is like for like with the loop and robust on busy cores; torch's default threads
    # are faster on idle cores but stall when another process holds one. The claim holds for the better.
    ratios = {threads: _speedup(1000, 7, threads=threads) for threads in sorted({1, torch.get_num_threads()})}
    assert max(ratios.values()) >= 5.0, f"batched SSIM vs scikit-image loop, by torch threads: {ratios}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_accumulator_on_cuda_matches_cpu():
    pred, true = structured(4, 3, 1, 32, 32, seed=9)
    acc = M.MetricAccumulator(metrics=("mse", "mae", "ssim", "psnr", "ssim_dr1"))
    for i in range(0, 4, 2):
        acc.update(torch.from_numpy(pred[i : i + 2]).cuda().float(), torch.from_numpy(true[i : i + 2]).cuda().float())
    res = acc.result()
    ref = M.compute(pred.astype(np.float32), true.astype(np.float32), metrics=tuple(acc.fns))
    for k in acc.fns:
        assert res[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-5)
