"""Paired statistics for a leaderboard: every model is scored on the same test sequences, so models are
compared through the per-sequence DIFFERENCE of their scores, never through the overlap of two intervals.

Method (docs/protocol.md, "Ranking: paired statistics"):

1. One bootstrap for the whole leaderboard. Resample ``n`` of the ``n`` test sequences with replacement,
   ``n_boot`` times; the SAME resample of sequences is used for every model (that is the pairing). A model
   trained with several seeds is resampled on two levels: its seeds with replacement (independently per model:
   seeds of different models are independent runs), then the shared resample of sequences; its bootstrap value
   is the mean over the drawn seeds of the mean over the drawn sequences.
2. For two models A, B the paired difference d = mean(A) - mean(B) has the bootstrap distribution
   d*_b = A*_b - B*_b: its 2.5% / 97.5% percentiles are the 95% interval; the two-sided p value comes from the
   bootstrap standard error, p = 2 (1 - Phi(|d| / sd(d*))) (a normal approximation that resolves small p values
   that a count of sign changes over n_boot resamples cannot).
3. Holm's step-down adjustment over the family of ALL pairwise comparisons of the ranked models; a pair is
   "significantly different" when its adjusted p < alpha (0.05).
4. Tie groups, walking the models in ranked order: the first group is the best model and each next model that
   differs significantly from NO member of the group so far; the first model that differs significantly from
   a member starts the next group, and so on. A group never holds two models that differ significantly, so
   groups do not chain (A ~ B, B ~ C but A != C puts C in a new group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

N_BOOT = 2000
ALPHA = 0.05
CI_LEVEL = 0.95


def _phi(z: np.ndarray) -> np.ndarray:
    from math import erf

    return 0.5 * (1.0 + np.vectorize(erf)(z / math.sqrt(2.0)))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p values (same order as given): sorted ascending, the i-th (0-based) of m is
    multiplied by (m - i), made monotone non-decreasing, capped at 1."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        adj[k] = running
    return adj


@dataclass
class PairedResult:
    models: list[str]  # in ranked order (best first)
    mean: np.ndarray  # (k,) point estimates (mean over seeds of the mean over sequences)
    boot: np.ndarray  # (k, n_boot) bootstrap means, pairing kept across models
    p_adj: np.ndarray  # (k, k) Holm-adjusted two-sided p values of every pair (diagonal 1)
    groups: list[int] = field(default_factory=list)  # group index (0 = the best's) per model, ranked order
    alpha: float = ALPHA

    def diff(self, i: int, j: int, level: float = CI_LEVEL) -> tuple[float, float, float]:
        """(mean_i - mean_j, lo, hi): the paired difference and its percentile bootstrap interval."""
        d = self.boot[i] - self.boot[j]
        a = (1 - level) / 2
        return float(self.mean[i] - self.mean[j]), float(np.quantile(d, a)), float(np.quantile(d, 1 - a))

    def significant(self, i: int, j: int) -> bool:
        return bool(self.p_adj[i, j] < self.alpha)


def bootstrap_means(values: list[np.ndarray], n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(k, n_boot) bootstrap means of k models given their per-sequence values, each (seeds, n) with the same
    n test sequences: one shared resample of sequences, seeds resampled per model (two levels)."""
    n = values[0].shape[1]
    rng = np.random.default_rng(seed)
    seq_idx = rng.integers(0, n, size=(n_boot, n))
    out = np.empty((len(values), n_boot))
    for k, v in enumerate(values):
        per_seed = np.stack([s[seq_idx].mean(axis=1) for s in v])  # (S, n_boot): each seed on the shared resample
        if len(v) == 1:
            out[k] = per_seed[0]
        else:
            pick = rng.integers(0, len(v), size=(n_boot, len(v)))  # seeds drawn with replacement
            out[k] = per_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1)
    return out


def paired_ranking(models: list[str], values: list[np.ndarray], *, higher_is_better: bool, n_boot: int = N_BOOT,
                   alpha: float = ALPHA, seed: int = 0) -> PairedResult:
    """Rank ``models`` (their per-sequence ``values``, each (seeds, n)) and form tie groups (module docstring)."""
    values = [np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in values]
    if len({v.shape[1] for v in values}) > 1:
        raise ValueError("paired statistics need the same test sequences for every model (per-sequence lengths "
                         f"differ: {sorted({v.shape[1] for v in values})})")
    mean = np.array([v.mean(axis=1).mean() for v in values])
    order = np.argsort(-mean if higher_is_better else mean, kind="stable")
    models = [models[i] for i in order]
    values = [values[i] for i in order]
    mean = mean[order]
    boot = bootstrap_means(values, n_boot, seed)
    k = len(models)
    iu = np.triu_indices(k, 1)
    p = np.ones((k, k))
    if k > 1:
        d = boot[iu[0]] - boot[iu[1]]  # (pairs, n_boot)
        sd = d.std(axis=1, ddof=1)
        est = mean[iu[0]] - mean[iu[1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, np.abs(est) / sd, np.where(est == 0, 0.0, np.inf))
        raw = 2.0 * (1.0 - _phi(z))
        adj = holm(raw)
        p[iu] = adj
        p[(iu[1], iu[0])] = adj
    res = PairedResult(models, mean, boot, p, alpha=alpha)
    group, members = 0, [0]
    res.groups = [0] * k
    for i in range(1, k):
        if any(res.significant(i, j) for j in members):
            group, members = group + 1, [i]
        else:
            members.append(i)
        res.groups[i] = group
    return res
