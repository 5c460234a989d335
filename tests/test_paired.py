"""Paired statistics of the leaderboard (stbench.report.paired): Holm's adjustment by hand, a paired test that
separates models whose unpaired intervals overlap, groups that never chain, and two-level (seeds, sequences)
resampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_report import _with_sequences, make_record

from stbench.report import build_report
from stbench.report.paired import bootstrap_means, holm, paired_ranking


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone: 0.06
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 0.5 x 2 = 1.0 (the cap), then 0.9 x 1 = 0.9 is raised to 1.0 (step-down p values never decrease)
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])


def _board(tmp_path, values: dict[str, np.ndarray]):
    for name, v in values.items():
        for seed, row in enumerate(np.atleast_2d(v)):
            _with_sequences(tmp_path, make_record(name, seed=seed), row)
    res = build_report(tmp_path, tmp_path / "out", formats=["md", "csv"], plots=False, baselines_dir=tmp_path)
    return res.leaderboards["mmnist", "quick"].set_index("model")


def test_paired_test_separates_what_unpaired_intervals_cannot(tmp_path):
    """b is worse than a by exactly 0.2 on every sequence; the sequences themselves vary with sd 20, so the
    unpaired 95% intervals (half-width ~ 1.96 x 20 / sqrt(400) = 1.96) overlap almost entirely, yet the paired
    difference is 0.2 with no spread at all: b is significantly worse."""
    base = 100 + np.random.default_rng(0).normal(0, 20, 400)
    t = _board(tmp_path, {"a": base, "b": base + 0.2})
    assert t.loc["b", "mse_ci_lo"] < t.loc["a", "mse_ci_hi"]  # the unpaired intervals overlap
    assert t.loc["b", "mse_diff"] == pytest.approx(0.2)
    assert t.loc["b", "mse_diff_lo"] == pytest.approx(0.2) and t.loc["b", "mse_diff_hi"] == pytest.approx(0.2)
    assert (int(t.loc["a", "rank"]), int(t.loc["b", "rank"])) == (1, 2)
    assert not t.loc["a", "tied"] and not t.loc["b", "tied"]
    md = next((tmp_path / "out").glob("leaderboard_mmnist_quick*.md")).read_text()
    assert "| 1 | a |" in md and "| 2 | b |" in md and "+0.20 [0.20, 0.20]" in md and "Δ vs best" in md


def test_groups_never_chain(tmp_path):
    """A ~ B and B ~ C but A != C. Paired differences by construction (n = 400, the +-8 patterns are orthogonal):
    B - A = 0.4 +- 8 -> z = 0.4 / (8 / 20) = 1.0;  C - B = 1.2 + 8 (p2 - p1), sd 8 sqrt 2 -> z = 1.2 / 0.566 = 2.1;
    C - A = 1.6 +- 8 -> z = 4.0. Raw two-sided p: 0.32, 0.034, 6e-5; Holm over the 3 pairs: 0.32, 0.068, 2e-4.
    Only A != C: the old rule (overlapping intervals chain) made one group of all three."""
    n = 400
    p1 = np.tile([1.0, -1.0], n // 2)
    p2 = np.tile([1.0, 1.0, -1.0, -1.0], n // 4)
    base = 100 + np.random.default_rng(1).normal(0, 30, n)
    values = {"a": base, "b": base + 0.4 + 8 * p1, "c": base + 1.6 + 8 * p2}
    res = paired_ranking(list(values), list(values.values()), higher_is_better=False)
    assert res.models == ["a", "b", "c"]
    assert not res.significant(0, 1) and not res.significant(1, 2) and res.significant(0, 2)
    # the bootstrap p values agree with the hand computation above (normal approximation, sampling noise)
    assert res.p_adj[0, 1] == pytest.approx(0.32, abs=0.06) and res.p_adj[1, 2] == pytest.approx(0.068, abs=0.03)
    assert res.groups == [0, 0, 1]
    t = _board(tmp_path, values)
    assert [str(r) for r in t.loc[["a", "b", "c"], "rank"]] == ["1", "1", "3"]
    assert list(t.loc[["a", "b", "c"], "tied"]) == [True, True, False]


def test_two_seeds_are_resampled_too():
    """Two seeds whose per-sequence values are equal: the seed level adds nothing. Seeds at +-c around the same
    values: resampling 2 seeds with replacement gives seed means -c, 0, +c with probabilities 1/4, 1/2, 1/4,
    a variance of c^2 / 2 on top of the sequences' own."""
    rng = np.random.default_rng(2)
    v = rng.normal(50, 5, 300)
    one = bootstrap_means([v[None]], n_boot=4000, seed=3)[0]
    same = bootstrap_means([np.stack([v, v])], n_boot=4000, seed=3)[0]
    assert np.allclose(one, same)
    c = 2.0
    spread = bootstrap_means([np.stack([v - c, v + c])], n_boot=4000, seed=3)[0]
    se_seq = v.std() / math.sqrt(len(v))
    assert spread.std() == pytest.approx(math.sqrt(se_seq**2 + c**2 / 2), rel=0.08)


def test_two_seed_leaderboard(tmp_path):
    rng = np.random.default_rng(4)
    base = 100 + rng.normal(0, 10, 300)
    t = _board(tmp_path, {"a": np.stack([base, base + 0.1]), "b": np.stack([base + 3, base + 3.2])})
    assert int(t.loc["a", "n"]) == 2 and t.loc["b", "mse_diff"] == pytest.approx(3.05)
    assert t.loc["b", "mse_diff_lo"] > 2.9 and t.loc["b", "mse_diff_hi"] < 3.25
    assert str(t.loc["b", "rank"]) == "2"
