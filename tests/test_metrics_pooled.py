"""Pooled contingency scores (CSI / POD / FAR / HSS at the SEVIR VIL thresholds, CSI-M): counts written out by
hand for tiny frames, pooled over the whole set (not averaged per batch), per lead time, per sequence, with the
0/0 cases, and the bootstrap that re-pools resampled sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stbench import metrics as M

EV, NO = 100 / 255, 50 / 255  # an event at thresholds 16 and 74, none at 133 and above; no event at 74


def _frame(events):
    """A 1 x 2 x 4 frame on [0, 1]: the listed pixel positions are events at threshold 74."""
    f = np.full(8, NO, dtype=np.float32)
    f[list(events)] = EV
    return f.reshape(1, 2, 4)


def _pair():
    """2 sequences x 2 frames. Hand counts at threshold 74 (a hits, b false alarms, c misses, d rest of 8):
    seq 0 frame 0: pred {0,1,2} true {0,1,3} -> a 2 b 1 c 1 d 4;  seq 0 frame 1: pred {} true {4,5,6} -> a 0 b 0 c 3 d 5
    seq 1 frame 0: pred {7} true {7} -> a 1 b 0 c 0 d 7;  seq 1 frame 1: pred {0,1} true {} -> a 0 b 2 c 0 d 6"""
    pred = np.stack([np.stack([_frame({0, 1, 2}), _frame(set())]), np.stack([_frame({7}), _frame({0, 1})])])
    true = np.stack([np.stack([_frame({0, 1, 3}), _frame({4, 5, 6})]), np.stack([_frame({7}), _frame(set())])])
    return pred, true  # (2, 2, 1, 2, 4)


def test_pooled_over_the_set_and_per_lead_time_by_hand():
    pred, true = _pair()
    r = M.compute(pred, true, metrics=["csi_74", "pod_74", "far_74", "hss_74", "csi_16", "csi_133"])
    a, b, c, d = 3, 3, 4, 22  # summed over all 4 frames
    assert r["csi_74"] == pytest.approx(a / (a + b + c))  # 3/10
    assert r["pod_74"] == pytest.approx(a / (a + c))  # 3/7
    assert r["far_74"] == pytest.approx(b / (a + b))  # 1/2
    assert r["hss_74"] == pytest.approx(2 * (a * d - b * c) / ((a + c) * (c + d) + (a + b) * (b + d)))
    assert r["csi_16"] == pytest.approx(1.0)  # every pixel (>= 50) is an event at 16 in both: a = 32
    assert r["csi_133"] == 0.0  # no event at 133 in either: 0 / 0 is 0 by convention
    # per lead time: frame 0 pooled over the 2 sequences: a 3 b 1 c 1; frame 1: a 0 b 2 c 3
    assert r["per_frame"]["csi_74"] == pytest.approx([3 / 5, 0.0])
    assert r["per_frame"]["far_74"] == pytest.approx([1 / 4, 1.0])
    # the pooled value is NOT the mean of the per-frame ratios (FAR: 1/2, not (1/4 + 1) / 2)
    assert r["far_74"] != pytest.approx(np.mean(r["per_frame"]["far_74"]))


def test_pooling_across_batches_differs_from_averaging_batch_ratios():
    pred, true = _pair()
    acc = M.MetricAccumulator(["csi_74"], keep_sequences=True)
    acc.update(pred[:1], true[:1])  # batch 1: a 2 b 1 c 4 -> CSI 2/7
    acc.update(pred[1:], true[1:])  # batch 2: a 1 b 2 c 0 -> CSI 1/3
    assert acc.result()["csi_74"] == pytest.approx(3 / 10)
    assert acc.result()["csi_74"] != pytest.approx((2 / 7 + 1 / 3) / 2)
    counts = acc.sequences()["contingency.counts"]  # (N, 24): 4 counts per threshold, thresholds in order
    assert counts.shape == (2, 24)
    i = 4 * 1  # threshold 74 is the second
    np.testing.assert_array_equal(counts[:, i:i + 4], [[2, 1, 4, 9], [1, 2, 0, 13]])


def test_threshold_is_inclusive_on_the_255_scale():
    true = np.zeros((1, 1, 1, 1, 3), np.float32)
    true[..., 0] = 1.0
    pred = np.array([74, 73, 0], np.uint8).reshape(1, 1, 1, 1, 3).astype(np.float32) / np.float32(255)
    r = M.compute(pred, true, metrics=["pod_74", "far_74", "csi_74"])
    # pixel 0: pred 74 (event) true 255 -> hit; pixel 1: pred 73 (no event) true 0; pixel 2: nothing
    assert r["pod_74"] == 1.0 and r["far_74"] == 0.0 and r["csi_74"] == 1.0


def test_csi_m_is_the_mean_of_the_six_pooled_csis():
    rng = np.random.default_rng(0)
    pred, true = rng.random((3, 2, 1, 6, 6)), rng.random((3, 2, 1, 6, 6))
    names = [f"csi_{t}" for t in (16, 74, 133, 160, 181, 219)]
    r = M.compute(pred, true, metrics=[*names, "csi_m"])
    # independent numpy count per threshold
    for name in names:
        t = int(name.split("_")[1])
        p, y = pred * 255 >= t, true * 255 >= t
        a, b, c = (p & y).sum(), (p & ~y).sum(), (~p & y).sum()
        assert r[name] == pytest.approx(a / (a + b + c))
    assert r["csi_m"] == pytest.approx(np.mean([r[n] for n in names]))
    assert M.metric_def("csi_m").pooled and M.metric_def("far_74").higher_is_better is False


def test_zero_over_zero_is_zero():
    z = np.zeros((1, 1, 1, 2, 2), np.float32)
    r = M.compute(z, z, metrics=["csi_74", "pod_74", "far_74", "hss_74", "csi_m"])
    assert all(r[k] == 0.0 for k in ("csi_74", "pod_74", "far_74", "hss_74", "csi_m"))
    assert all(math.isfinite(v) for v in r["per_frame"]["csi_m"])
    one = z.copy()
    one[..., 0, 0] = 1.0
    r = M.compute(z, one, metrics=["csi_74", "pod_74", "far_74"])  # a miss only: CSI 0, POD 0, FAR 0/0 = 0
    assert r["csi_74"] == 0.0 and r["pod_74"] == 0.0 and r["far_74"] == 0.0
    r = M.compute(one, one, metrics=["csi_74", "hss_74"])  # 1 hit, 3 correct negatives: CSI 1, HSS 1
    a, b, c, d = 1, 0, 0, 3
    assert r["csi_74"] == 1.0
    assert r["hss_74"] == pytest.approx(2 * (a * d - b * c) / ((a + c) * (c + d) + (a + b) * (b + d)))


def test_bootstrap_repools_resampled_sequences():
    pred, true = _pair()
    acc = M.MetricAccumulator(["csi_74", "mse"], keep_sequences=True)
    acc.update(pred, true)
    seqs = acc.sequences()
    vals = M.pooled_resample("csi_74", seqs, n_boot=200, seed=1)
    # a resample holds seq 0 k times and seq 1 (2 - k) times: CSI (2k + (2-k)) / (7k + 3(2-k)), k in 0, 1, 2
    allowed = {1 / 3, 3 / 10, 4 / 14}
    assert vals.shape == (200,) and all(min(abs(v - x) for x in allowed) < 1e-12 for v in vals)
    assert M.pooled_resample("mse", seqs, n_boot=10) is None  # a mean metric: the ordinary bootstrap applies
    from stbench.report.tables import pooled_ci

    lo, hi = pooled_ci("csi_74", seqs)
    assert 4 / 14 - 1e-12 <= lo <= hi <= 1 / 3 + 1e-12


def test_report_interval_of_a_pooled_metric_from_stored_counts(tmp_path):
    """A record as the runner writes it (counts per sequence beside it): the leaderboard's interval re-pools."""
    from test_report import make_record, write_record

    from stbench.report import build_report

    rng = np.random.default_rng(2)
    n = 300
    counts = np.zeros((n, 24))
    counts[:, 4:8] = rng.integers(0, 50, size=(n, 4))  # threshold 74: a, b, c, d per sequence
    a, b, c = counts[:, 4].sum(), counts[:, 5].sum(), counts[:, 6].sum()
    pooled = a / (a + b + c)
    rec = make_record("a")
    rec = dict(rec, schema_version=2, metrics=dict(rec["metrics"], csi_74=pooled),
               metrics_meta=dict(rec["metrics_meta"], csi_74={"higher_is_better": True, "pooled": True}),
               per_sequence={"file": "a__seed0.per_sequence.npz", "metrics": ["mse", "contingency.counts"], "n": n})
    path = write_record(tmp_path, rec)
    np.savez_compressed(path.parent / "a__seed0.per_sequence.npz", mse=np.full(n, 30.0),
                        **{"contingency.counts": counts})
    res = build_report(tmp_path, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path)
    row = res.leaderboards["mmnist", "quick"].set_index("model").loc["a"]
    assert row["csi_74_mean"] == pytest.approx(pooled)
    lo, hi = row["csi_74_ci_lo"], row["csi_74_ci_hi"]
    assert math.isfinite(lo) and lo < pooled < hi and hi - lo < 0.1


def test_chunked_updates_pool_the_same_counts(monkeypatch):
    rng = np.random.default_rng(5)
    pred, true = rng.random((5, 3, 1, 6, 6)), rng.random((5, 3, 1, 6, 6))
    names = ["csi_74", "hss_133", "csi_m", "mse"]
    whole = M.compute(pred, true, metrics=names)
    monkeypatch.setattr(M, "_BATCH_ELEMS", 2 * 3 * 36)  # two sequences per chunk
    acc = M.MetricAccumulator(names, keep_sequences=True)
    acc.update(pred[:3], true[:3])
    acc.update(pred[3:], true[3:])
    got = acc.result()
    for n in names:
        assert got[n] == pytest.approx(whole[n]) and got["per_frame"][n] == pytest.approx(whole["per_frame"][n])
    p, y = pred * 255 >= 74, true * 255 >= 74  # per-sequence counts at 74, by numpy
    a = (p & y).sum(axis=(1, 2, 3, 4))
    np.testing.assert_array_equal(acc.sequences()["contingency.counts"][:, 4], a)
