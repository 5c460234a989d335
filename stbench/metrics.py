"""Metrics in the published convention (docs/protocol.md, "Metric conventions"), batched in torch.

Every metric is a per-frame quantity; the reported value is the mean over all (B, T) predicted
frames, and the per-frame curve is the mean over sequences for each predicted frame index.
Shapes are ``(B, T, C, H, W)``, pixels on [0, 1]:

- ``mse``  per-frame SUM over C*H*W of the squared error (a per-frame SSE), not clipped.
- ``mae``  per-frame SUM over C*H*W of the absolute error, not clipped.
- ``ssim`` scikit-image's ``structural_similarity`` per frame (7x7 uniform window, K1 0.01,
  K2 0.03, sample covariance, ``data_range=2.0`` as the published tables used it, channels
  averaged), on the prediction clipped to [0, 1]; the target is not clipped.
- ``psnr`` per frame ``20 log10(1 / sqrt(mse_f))`` with ``mse_f`` the MEAN squared error of the
  clipped prediction, then the mean of the per-frame values. A frame with ``mse_f == 0`` would be
  +inf: ``mse_f`` is floored at 1e-10, so such a frame scores 100 dB (documented cap).
- ``ssim_dr1`` the same SSIM with ``data_range=1.0`` (the correct range for [0, 1] data, about
  0.03 lower); reported beside ``ssim``, never instead of it.

Public API::

    from stbench import metrics
    res = metrics.compute(pred, true)          # numpy or torch, (B, T, C, H, W)
    res["mse"], res["per_frame"]["ssim"]       # float, list of T floats

    acc = metrics.MetricAccumulator()          # streaming, on the tensors' device
    for x, y in loader:
        acc.update(model(x), y)                # no host synchronisation per batch
    acc.result()                               # same dict as compute() on the concatenation

A metric is a callable ``fn(pred, true) -> (B, T) tensor`` of per-frame values (or ``(B,)`` per
sequence) with a :class:`MetricDef` (name, label, higher-is-better, convention, per-frame support),
registered in one call: ``@register_metric("rmse", higher_is_better=False, convention="...")``. The
built-ins are :data:`BUILTIN_METRICS`; every table, plot and record takes labels, directions and
conventions from these definitions. :func:`compute` / :class:`MetricAccumulator` accept any
registered name.

Pooled metrics (``MetricDef.pooled``; :class:`PooledMetric`, :func:`register_pooled_metric`) are the
other kind: a contingency score such as CSI is not a mean of per-frame scores but a ratio of COUNTS
summed over the whole test set. Their function returns per-frame counts ``(B, T, K)``; the accumulator
sums them over every sequence (per predicted frame for the curve, over all frames for the value) and
takes the ratio once, at the end. Metrics of one ``group`` share one counting pass. Per sequence they
keep the counts (``sequences()["<group>.counts"]``, ``(N, K)`` summed over the sequence's frames), so
a bootstrap resamples sequences and re-pools (:func:`pooled_resample`), never averages ratios.

Speed. SSIM runs on all frames at once: the four moment maps (x, y, x^2 + y^2, xy) are stacked
into one tensor and box-filtered with shifted-slice sums (valid 7x7 windows only, which is exactly
scikit-image's crop of (win_size - 1) // 2 pixels per side), in cache-sized chunks of frames. Measured
with ``python benchmarks/metrics_speed.py`` on this project's 2-core AMD EPYC CPU (torch 2.13,
scikit-image 0.26), 1,000 float32 64x64 frames: the per-frame ``structural_similarity`` loop takes
116-125 ms on idle cores; the batched SSIM 21-24 ms with one torch thread (5.0-5.6x) and 15-17 ms
with two (7.6-8.2x). With the cores busy the loop slows to ~185 ms while one torch thread holds
21-30 ms (6.5-9x); two torch threads then stall on their barriers (seconds), as any op-heavy torch
CPU work does when the machine is oversubscribed. All four default metrics together: ~27 ms per
1,000 frames on one thread, i.e. about 3 s for the 100,000 frames of a 10,000-sequence test set.

Precision. float64 inputs are computed in float64 (agreement with scikit-image ~1e-9). Other inputs
are computed in float32 with the moments taken about 0.5 (variances are shift-invariant; centring
removes most of the cancellation in E[x^2] - E[x]^2): the per-frame SSIM agrees with scikit-image in
float64 to about 1e-7 on textured frames and 3e-6 at worst (flat regions with faint noise), the
same order as scikit-image's own float32 path. MSE / MAE / PSNR per-frame sums and every sum across
frames and batches accumulate in float64 (float32 on devices without float64, e.g. MPS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from stbench.data.spec import DEFAULT_METRICS  # noqa: F401  (owned by the dataset spec; re-exported)
from stbench.registry import METRICS

__all__ = [
    "DEFAULT_METRICS",
    "FLOORS",
    "METRIC_CONVENTION",
    "IMAGE_METRICS",
    "convention_for",
    "MetricAccumulator",
    "PooledMetric",
    "compute",
    "floor_predictions",
    "metrics_meta",
    "metric_def",
    "register_metric",
    "register_pooled_metric",
    "pooled_resample",
    "MetricDef",
    "BUILTIN_METRICS",
    "mae",
    "mse",
    "psnr",
    "ssim",
    "ssim_dr1",
]

FLOORS: tuple[str, ...] = ("copy_last", "zeros")

METRIC_CONVENTION = (
    "Metrics follow the published convention (OpenSTL / TAU tables) so that numbers are comparable: "
    "pixels on [0, 1], every value is the mean over all predicted frames (B x T); MSE and MAE are "
    "per-frame SUMS over C*H*W of the squared / absolute error (not clipped); for SSIM and PSNR the "
    "prediction is clipped to [0, 1] (the target is not); SSIM is scikit-image's structural_similarity "
    "per frame (7x7 uniform window, K1=0.01, K2=0.03, sample covariance, data_range=2.0 as the published "
    "tables used it, channels averaged) - with the correct data_range=1.0 it is about 0.03 lower, reported "
    "as ssim_dr1 where shown; PSNR is the mean of per-frame 20*log10(1/sqrt(mse_f)), mse_f the per-frame "
    "mean squared error (capped at 100 dB for a perfect frame), not the PSNR of the mean MSE."
)

PSNR_MSE_FLOOR = 1e-10  # -> at most 100 dB for a frame predicted exactly

# SSIM constants (scikit-image defaults, uniform window)
_WIN = 7
_NP = _WIN * _WIN  # pixels per window
_COV_NORM = _NP / (_NP - 1)  # use_sample_covariance=True
_K1, _K2 = 0.01, 0.03
_CPU_CHUNK = 1 << 17  # pixels per SSIM chunk on CPU: the stacked moment maps stay near L2 size
_DEV_CHUNK = 1 << 23  # on accelerators only memory matters
_BATCH_ELEMS = 1 << 24  # elements per chunk in compute() / update(): bounds temporary memory


# -- input handling ----------------------------------------------------------------------------
def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if not arr.flags.writeable or any(st < 0 for st in arr.strides):
            arr = arr.copy()  # torch.from_numpy takes neither
        t = torch.from_numpy(arr)
    if not (t.is_floating_point()):
        raise TypeError(f"{name} must be a floating-point array with pixels on [0, 1], got dtype {t.dtype}")
    if t.ndim != 5:
        raise ValueError(f"{name} must have shape (B, T, C, H, W), got {tuple(t.shape)}")
    return t


def _pair(pred: Any, true: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_tensor(pred, "pred"), _as_tensor(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in shape: {tuple(p.shape)} vs {tuple(t.shape)} (B, T, C, H, W)")
    if t.device != p.device:
        t = t.to(p.device)
    dtype = torch.float64 if torch.float64 in (p.dtype, t.dtype) and _has_f64(p.device) else torch.float32
    return p.to(dtype), t.to(dtype)


def _has_f64(device: torch.device) -> bool:
    return device.type != "mps"


def _acc_dtype(device: torch.device) -> torch.dtype:
    return torch.float64 if _has_f64(device) else torch.float32


# -- the per-frame metric functions (registered below) -------------------------------------------
def mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-frame sum over C*H*W of the squared error, not clipped: (B, T)."""
    return _pixel_frames(pred, true, ("mse",))["mse"]


def mae(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-frame sum over C*H*W of the absolute error, not clipped: (B, T)."""
    return _pixel_frames(pred, true, ("mae",))["mae"]


def psnr(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-frame 20*log10(1/sqrt(mean squared error)) of the clipped prediction: (B, T), dB."""
    return _pixel_frames(pred, true, ("psnr",))["psnr"]


def ssim(pred: torch.Tensor, true: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-frame SSIM of the clipped prediction (scikit-image definition, see module doc): (B, T)."""
    return _ssim_frames(pred, true, (data_range,), clip=True)[0]


def ssim_dr1(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM with data_range=1.0 (the corrected variant): (B, T)."""
    return ssim(pred, true, data_range=1.0)


def _chunk(x: torch.Tensor, per_frame: int) -> int:
    """Frames per chunk: cache-sized on CPU, large elsewhere."""
    return max(1, (_CPU_CHUNK if x.device.type == "cpu" else _DEV_CHUNK) // per_frame)


def _pixel_frames(pred: torch.Tensor, true: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """MSE / MAE / PSNR per frame in one pass over cache-sized chunks of frames: {name: (B, T)}."""
    B, T = pred.shape[:2]
    pf = pred.reshape(B * T, -1)  # (N, C*H*W)
    tf = true.reshape(B * T, -1)
    acc = _acc_dtype(pred.device)
    step = _chunk(pred, pf.shape[1])
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for i in range(0, B * T, step):
        pc, tc = pf[i : i + step], tf[i : i + step]
        if "mse" in parts or "mae" in parts:
            d = pc - tc
            if "mse" in parts:
                parts["mse"].append((d * d).sum(dim=1, dtype=acc))
            if "mae" in parts:
                parts["mae"].append(d.abs_().sum(dim=1, dtype=acc))
        if "psnr" in parts:
            d = pc.clamp(0.0, 1.0).sub_(tc)
            parts["psnr"].append(d.mul_(d).sum(dim=1, dtype=acc))
    out = {n: torch.cat(v).reshape(B, T) for n, v in parts.items()}
    if "psnr" in out:
        mse_f = out["psnr"] / pf.shape[1]
        out["psnr"] = -10.0 * torch.log10(mse_f.clamp_min(PSNR_MSE_FLOOR))
    return out


def _box7(s: torch.Tensor) -> torch.Tensor:
    """Sums over every valid 7x7 window of the last two dims: (..., H, W) -> (..., H-6, W-6)."""
    t = s[..., :-1] + s[..., 1:]  # pairs
    u = t[..., :-2] + t[..., 2:]  # quads
    r = u[..., :-3] + t[..., 4:-1]  # 6
    r += s[..., 6:]  # 7
    t = r[..., :-1, :] + r[..., 1:, :]
    u = t[..., :-2, :] + t[..., 2:, :]
    out = u[..., :-3, :] + t[..., 4:-1, :]
    out += r[..., 6:, :]
    return out


def _ssim_frames(
    x: torch.Tensor, y: torch.Tensor, data_ranges: Sequence[float], clip: bool = False
) -> list[torch.Tensor]:
    """Mean SSIM per frame of ``x`` (clipped to [0, 1] if ``clip``) against ``y``, both (B, T, C, H, W):
    one (B, T) tensor per data range.

    With window sums S over k = 49 pixels of a = x - 1/2 and b = y - 1/2, and U = S_a + k/2 = k mu_x:
    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))
         = 4 (U_a U_b + c1/2)(S_ab + c2/2 - S_a S_b / k) / ((U_a^2 + U_b^2 + c1)(S_qq + c2 - (S_a^2 + S_b^2) / k))
    where S_qq = sum(a^2 + b^2), c1 = C1 k^2, c2 = C2 k / cov_norm (the common factors cancel). The
    constants are added after the subtractions: folded into the product maps they would cost float32
    accuracy (identical flat frames would no longer score exactly 1).
    """
    B, T, C, H, W = x.shape
    if H < _WIN or W < _WIN:
        raise ValueError(f"SSIM needs frames of at least {_WIN}x{_WIN} pixels (win_size 7), got {H}x{W}")
    n = B * T
    xf = x.reshape(n, C, H, W)  # (N, C, H, W)
    yf = y.reshape(n, C, H, W)
    k = float(_NP)
    # c1 as 0-dim tensors for addcmul; torch.full fills on the device (no host-to-device copy, no sync)
    consts = [
        (torch.full((), (_K1 * dr) ** 2 * k * k, dtype=x.dtype, device=x.device), (_K2 * dr) ** 2 * k / _COV_NORM)
        for dr in data_ranges
    ]
    step = _chunk(x, C * H * W)
    scale = 4.0 / ((H - _WIN + 1) * (W - _WIN + 1) * C)
    acc = _acc_dtype(x.device)
    outs: list[list[torch.Tensor]] = [[] for _ in data_ranges]
    for i in range(0, n, step):
        xc, yc = xf[i : i + step], yf[i : i + step]
        s = torch.empty((4, *xc.shape), dtype=x.dtype, device=x.device)  # (4, n, C, H, W)
        a = torch.sub(xc, 0.5, out=s[0])
        if clip:
            a.clamp_(-0.5, 0.5)  # = clip(x, 0, 1) - 1/2, on the chunk in cache
        b = torch.sub(yc, 0.5, out=s[1])
        torch.mul(a, a, out=s[2]).addcmul_(b, b)
        torch.mul(a, b, out=s[3])
        sa, sb, sqq, sab = _box7(s).unbind(0)  # (n, C, H-6, W-6) each
        cov = sab.sub_(torch.mul(sa, sb), alpha=1.0 / k)  # S_ab - S_a S_b / k
        var = sqq.sub_(torch.mul(sa, sa).addcmul_(sb, sb), alpha=1.0 / k)  # S_qq - (S_a^2 + S_b^2) / k
        ua = sa.add_(k / 2)  # k mu_x; the centred sums are no longer needed
        ub = sb.add_(k / 2)
        prev_c2 = 0.0
        for j, (c1, c2) in enumerate(consts):
            cov.add_((c2 - prev_c2) / 2)  # in place; shifted again for a further data range
            var.add_(c2 - prev_c2)
            prev_c2 = c2
            smap = torch.addcmul(c1 / 2, ua, ub).mul_(cov)
            smap /= torch.addcmul(c1, ua, ua).addcmul_(ub, ub).mul_(var)
            frame = smap.sum(dim=(1, 2, 3)).to(acc)  # (n,): float32 cascade sum per frame is exact enough
            outs[j].append(frame * scale)
    return [torch.cat(o).reshape(B, T) for o in outs]


_SSIM_RANGES: dict[Callable[..., Any], float] = {ssim: 2.0, ssim_dr1: 1.0}
_PIXEL: dict[Callable[..., Any], str] = {fn: fn.__name__ for fn in (mse, mae, psnr)}

_CONV_CLIP = "prediction clipped to [0, 1], target not; mean over all (B, T) frames"


@dataclass(frozen=True)
class MetricDef:
    """Everything a table, plot or record says about a metric, defined once next to its function."""

    name: str
    label: str  # column header, e.g. "MSE"
    higher_is_better: bool
    convention: str  # how it is computed, in words (stored in every record's metrics_meta)
    unit: str = ""
    per_frame: bool = True  # fn(pred, true) returns (B, T) per-frame values; else (B,) per sequence
    #: keys of the dataset's metric context the function takes as keyword arguments (e.g. ``("std",)``)
    needs: tuple[str, ...] = ()
    #: counts pooled over the test set, one ratio at the end (a :class:`PooledMetric`), not a mean of values
    pooled: bool = False

    def as_meta(self) -> dict[str, Any]:
        """The fields other than ``name`` (what a registry entry's meta and a record's metrics_meta hold)."""
        d = asdict(self)
        del d["name"]
        return d


def convention_for(names: Sequence[str]) -> str:
    """The convention text a record stores for these metrics: the published image convention when the
    metrics are the image ones (so such records stay comparable with earlier ones), else each metric's own
    convention, from its definition (datasets on other scales: ns2d, weather, The Well)."""
    if set(names) <= IMAGE_METRICS:
        return METRIC_CONVENTION
    return "Each value is the mean over all predicted frames (B x T). " + "; ".join(
        f"{metric_def(n).label}: {metric_def(n).convention}" for n in names)


def register_metric(name: str, *, label: str | None = None, higher_is_better: bool, convention: str,
                    unit: str = "", per_frame: bool = True,
                    needs: tuple[str, ...] = ()) -> Callable[[Callable[..., torch.Tensor]], Any]:
    """Register a metric in one decorator call; a plugin's metric is then usable by name everywhere::

        @register_metric("rmse", label="RMSE", higher_is_better=False, convention="sqrt of per-frame mean SE")
        def rmse(pred, true):                    # (B, T, C, H, W) float tensors -> (B, T)
            return ((pred - true) ** 2).mean(dim=(2, 3, 4)).sqrt()

    ``stbench run --metrics +rmse`` adds it to a run's records and leaderboard. A metric that needs facts
    about the dataset (weather's training std) declares them with ``needs=("std",)`` and is called as
    ``fn(pred, true, std=...)`` with the values of the dataset's ``spec.metric_context`` (see
    :func:`context_kwargs`); nothing is kept in module state.
    """
    d = MetricDef(name, label or name.upper(), higher_is_better, convention, unit, per_frame, tuple(needs))

    def add(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        METRICS.register(name, obj=fn, **d.as_meta())
        return fn

    return add


@dataclass(frozen=True)
class PooledMetric:
    """A metric pooled over the test set: per-frame counts summed over every sequence, one ratio at the end.

    ``counts(pred, true) -> (B, T, K)`` non-negative counts per frame (e.g. hits, false alarms, misses,
    correct negatives); ``ratio(S) -> (...)`` the score of summed counts ``S`` of shape ``(..., K)``.
    Metrics with the same ``group`` share one ``counts`` function: it runs once per batch for all of them.
    Called like a plain metric, it gives each frame's own ratio (what the score means for a lone frame).
    """

    group: str
    counts: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ratio: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return self.ratio(self.counts(pred, true).to(_acc_dtype(pred.device)))


def register_pooled_metric(name: str, *, group: str, counts: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                           ratio: Callable[[torch.Tensor], torch.Tensor], label: str | None = None,
                           higher_is_better: bool, convention: str, unit: str = "") -> PooledMetric:
    """Register a pooled metric (see :class:`PooledMetric`); usable by name like any other metric."""
    obj = PooledMetric(group, counts, ratio)
    d = MetricDef(name, label or name.upper(), higher_is_better, convention, unit, True, (), True)
    METRICS.register(name, obj=obj, **d.as_meta())
    return obj


def pooled_resample(name: str, per_sequence: Mapping[str, np.ndarray], n_boot: int, seed: int = 0,
                    ) -> np.ndarray | None:
    """``n_boot`` bootstrap values of the pooled metric ``name``: each resamples the test sequences with
    replacement, sums their stored counts (``per_sequence["<group>.counts"]``, ``(N, K)``) and takes the
    ratio. None when ``name`` is not a pooled metric or its counts are not stored."""
    try:
        fn = _resolve([name])[name]
    except Exception:  # noqa: BLE001 - an unknown metric in an old record has no pooled counts
        return None
    if not isinstance(fn, PooledMetric) or f"{fn.group}.counts" not in per_sequence:
        return None
    counts = np.asarray(per_sequence[f"{fn.group}.counts"], dtype=np.float64)  # (N, K)
    n = len(counts)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, n_boot, 64):  # resample weights in blocks: (b, N) @ (N, K), never (b, N, K)
        idx = rng.integers(0, n, size=(min(64, n_boot - i), n))
        w = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)  # (b, N)
        out.append(fn.ratio(torch.from_numpy(w @ counts)).numpy())
    return np.concatenate(out)


def metric_def(name: str) -> MetricDef:
    """The definition of a registered metric (built-in or plugin); unknown names raise RegistryError.

    A metric registered without the full metadata (an entry point naming a bare function) gets the
    name as label, lower-is-better, and "(no convention stated)".
    """
    if name in _DEFS:
        return _DEFS[name]
    meta = METRICS.entry(name).meta
    return MetricDef(name, meta.get("label") or name.upper(), bool(meta.get("higher_is_better", False)),
                     meta.get("convention") or "(no convention stated)", meta.get("unit", ""),
                     bool(meta.get("per_frame", True)), tuple(meta.get("needs") or ()), bool(meta.get("pooled", False)))


def context_kwargs(names: Sequence[str], context: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``{metric: {key: value}}``: the keyword arguments each metric that declares ``needs`` takes from
    ``context`` (a dataset's ``spec.metric_context``); a missing key is a one-line error naming it."""
    from stbench.errors import DataError

    ctx = dict(context or {})
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        needs = () if n in _DEFS else metric_def(n).needs
        missing = [k for k in needs if k not in ctx]
        if missing:
            raise DataError(f"metric '{n}' needs {', '.join(missing)} from the dataset's metric context, which has "
                            f"{', '.join(sorted(ctx)) or 'nothing'}; evaluate it on a dataset loaded with its files "
                            "(--data-root) or pass context=dataset.spec.metric_context")
        if needs:
            out[n] = {k: ctx[k] for k in needs}
    return out


BUILTIN_METRICS: tuple[MetricDef, ...] = (
    MetricDef("mse", "MSE", False, "per-frame SUM over C*H*W of squared error (SSE), not clipped; "
              "mean over all (B, T) frames", "per-frame SSE"),
    MetricDef("mae", "MAE", False, "per-frame SUM over C*H*W of absolute error, not clipped; "
              "mean over all (B, T) frames", "per-frame SAE"),
    MetricDef("ssim", "SSIM", True, "scikit-image structural_similarity per frame, 7x7 uniform window, K1 0.01, "
              f"K2 0.03, sample covariance, data_range=2.0 (as published), channels averaged; {_CONV_CLIP}"),
    MetricDef("psnr", "PSNR", True, "per frame 20*log10(1/sqrt(mse_f)), mse_f = mean over C*H*W of squared error, "
              f"capped at 100 dB; {_CONV_CLIP}", "dB"),
    MetricDef("ssim_dr1", "SSIM dr=1", True, "as ssim but data_range=1.0 (correct for [0, 1] pixels; about 0.03 "
              "below the published convention); reported beside ssim, never instead"),
)
_DEFS: dict[str, MetricDef] = {d.name: d for d in BUILTIN_METRICS}
#: the metrics that :data:`METRIC_CONVENTION` describes (pixels in [0, 1]): every built-in one
IMAGE_METRICS: frozenset[str] = frozenset(_DEFS)
_BUILTINS: dict[str, Callable[..., torch.Tensor]] = {fn.__name__: fn for fn in (mse, mae, ssim, psnr, ssim_dr1)}
for _d in BUILTIN_METRICS:
    METRICS.register(_d.name, obj=_BUILTINS[_d.name], **_d.as_meta())


def metrics_meta(names: Sequence[str] | str = DEFAULT_METRICS) -> dict[str, dict[str, Any]]:
    """``{name: MetricDef fields}`` for run records and tables."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return {n: metric_def(n).as_meta() for n in names}


def _resolve(names: Sequence[str] | str) -> dict[str, Callable[..., torch.Tensor]]:
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError("no metrics requested")
    # built-in names without touching the registry (which would import every plugin)
    return {n: (_BUILTINS[n] if n in _BUILTINS else METRICS.get(n)) for n in names}


def _per_frame(
    fns: dict[str, Callable[..., torch.Tensor]], p: torch.Tensor, t: torch.Tensor,
    kwargs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, torch.Tensor]:
    """(B, T) per-frame values for every requested metric; the built-ins share their passes."""
    out: dict[str, torch.Tensor] = {}
    ssims = {n: _SSIM_RANGES[f] for n, f in fns.items() if f in _SSIM_RANGES}
    if ssims:
        out.update(zip(ssims, _ssim_frames(p, t, list(ssims.values()), clip=True)))
    pixel = {n: _PIXEL[f] for n, f in fns.items() if f in _PIXEL}
    if pixel:
        vals = _pixel_frames(p, t, list(set(pixel.values())))
        out.update((n, vals[kind]) for n, kind in pixel.items())
    for n, f in fns.items():
        if n not in out:
            v = f(p, t, **(kwargs or {}).get(n, {}))
            if v.shape == p.shape[:1]:  # a per-sequence metric (MetricDef.per_frame False): same value per frame
                v = v[:, None].expand(p.shape[:2])
            if v.shape != p.shape[:2]:
                raise ValueError(f"metric '{n}' returned shape {tuple(v.shape)}, expected per-frame (B, T) "
                                 "or per-sequence (B,)")
            out[n] = v
    return out


# -- streaming accumulation and the one-call API ----------------------------------------------
class MetricAccumulator:
    """Streaming per-frame sums: ``update(pred, true)`` batch by batch, then ``result()``.

    The sums stay on the device of the first batch (float64 where supported); ``update`` never
    moves data to the host, so a CUDA evaluation loop is not synchronised per batch. ``result()``
    returns exactly what :func:`compute` returns for the concatenated batches. Pooled metrics
    (:class:`PooledMetric`) sum counts instead of values and take their ratio in ``result()``.
    """

    def __init__(self, metrics: Sequence[str] | str = DEFAULT_METRICS, per_frame: bool = True,
                 keep_sequences: bool = False, context: Mapping[str, Any] | None = None) -> None:
        every = _resolve(metrics)
        self.names = list(every)  # the requested order, both kinds
        self.pooled = {n: f for n, f in every.items() if isinstance(f, PooledMetric)}
        self.fns = {n: f for n, f in every.items() if n not in self.pooled}  # means of per-frame values
        self.groups = {f.group: f.counts for f in self.pooled.values()}  # one counting pass per group
        self.kwargs = context_kwargs(list(self.fns), context)  # what metrics with ``needs`` take from the dataset
        self.per_frame = per_frame
        self.keep_sequences = keep_sequences  # also keep each sequence's value (mean over its frames) / counts
        self._frame_curves = [n for n in every if n not in _DEFS or _DEFS[n].per_frame]
        if any(n not in _DEFS for n in every):
            self._frame_curves = [n for n in every if metric_def(n).per_frame]
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}  # metric -> (T,) sums of values; group -> (T, K) sums of counts
        self._seq: dict[str, list[torch.Tensor]] = {n: [] for n in self.fns}
        self._seq.update({f"{g}.counts": [] for g in self.groups})
        self._t: int | None = None
        self.n_sequences = 0

    def sequences(self) -> dict[str, np.ndarray]:
        """Per-sequence values ``{metric: (N,) float64}`` in the order seen (needs ``keep_sequences=True``); for
        pooled metrics their counts, ``{"<group>.counts": (N, K)}`` summed over each sequence's frames."""
        if not self.keep_sequences:
            raise ValueError("construct MetricAccumulator(keep_sequences=True) to keep per-sequence values")
        return {n: torch.cat(v).cpu().double().numpy() if v else np.zeros(0) for n, v in self._seq.items()}

    def _add(self, key: str, s: torch.Tensor) -> None:
        if key in self._sums:
            self._sums[key] += s.to(self._sums[key].device, self._sums[key].dtype)
        else:
            self._sums[key] = s.to(_acc_dtype(s.device))

    def update(self, pred: Any, true: Any) -> None:
        p, t = _pair(pred, true)
        B, T = p.shape[:2]
        if self._t is not None and T != self._t:
            raise ValueError(f"every batch must have the same number of predicted frames: got T={T}, before {self._t}")
        self._t = T
        if B == 0:
            return
        step = max(1, _BATCH_ELEMS // p[0].numel())
        for i in range(0, B, step):
            pc, tc = p[i : i + step], t[i : i + step]
            vals = _per_frame(self.fns, pc, tc, self.kwargs) if self.fns else {}
            for n, v in vals.items():
                if self.keep_sequences:
                    self._seq[n].append(v.mean(dim=1).to(_acc_dtype(v.device)))  # (B,)
                self._add(n, v.sum(dim=0))  # (T,)
            for g, counts in self.groups.items():
                c = counts(pc, tc).to(_acc_dtype(pc.device))  # (B, T, K)
                if c.ndim != 3 or c.shape[:2] != pc.shape[:2]:
                    raise ValueError(f"pooled metric group '{g}' returned counts of shape {tuple(c.shape)}, "
                                     "expected (B, T, K)")
                if self.keep_sequences:
                    self._seq[f"{g}.counts"].append(c.sum(dim=1))  # (B, K)
                self._add(g, c.sum(dim=0))  # (T, K)
        self.n_sequences += B

    def result(self) -> dict[str, Any]:
        if not self.n_sequences:
            raise ValueError("no predictions accumulated: call update(pred, true) first")
        curves: dict[str, torch.Tensor] = {}
        values: dict[str, float] = {}
        if self.fns:
            names = list(self.fns)
            means = (torch.stack([self._sums[n] for n in names]) / self.n_sequences).cpu().double()  # (M, T)
            for j, n in enumerate(names):
                curves[n], values[n] = means[j], float(means[j].mean())
        for n, f in self.pooled.items():
            s = self._sums[f.group].cpu().double()  # (T, K) counts pooled over the sequences, per predicted frame
            curves[n] = f.ratio(s)  # (T,): pooled per lead time
            values[n] = float(f.ratio(s.sum(dim=0)))  # pooled over every frame and pixel: not the mean of the curve
        res: dict[str, Any] = {n: values[n] for n in self.names}
        if self.per_frame:
            res["per_frame"] = {n: curves[n].tolist() for n in self.names if n in self._frame_curves}
        return res


def compute(
    pred: Any,
    true: Any,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    per_frame: bool = True,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics of predictions against targets, numpy or torch, both ``(B, T, C, H, W)`` on [0, 1].

    Returns ``{"mse": float, ..., "per_frame": {"mse": [T floats], ...}}``: each overall value is
    the mean over all B*T frames, each curve the mean over the B sequences per predicted frame.
    ``context`` is the dataset's ``spec.metric_context`` (needed by metrics that declare ``needs``).
    """
    acc = MetricAccumulator(metrics, per_frame=per_frame, context=context)
    acc.update(pred, true)
    return acc.result()


def frame_values(pred: Any, true: Any, metrics: Sequence[str] | str = DEFAULT_METRICS,
                 context: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Each sequence's value at each predicted frame, ``{metric: (B, T) float64}``: the numbers
    :class:`MetricAccumulator` averages, for the metrics that are means of per-frame values (a pooled metric has
    none and is left out). ``stbench eval --t-out`` keeps them for intervals per lead time."""
    fns = {n: f for n, f in _resolve(metrics).items() if not isinstance(f, PooledMetric)}
    p, t = _pair(pred, true)
    vals = _per_frame(fns, p, t, context_kwargs(list(fns), context)) if fns else {}
    return {n: v.double().cpu().numpy() for n, v in vals.items()}


# -- sanity floors -------------------------------------------------------------------------------
def floor_predictions(kind: str, inputs: Any, t_out: int) -> Any:
    """A trivial prediction (B, T_out, C, H, W) from inputs (B, T_in, C, H, W), same array type.

    ``copy_last`` repeats the last input frame; ``zeros`` predicts black frames. Scored with
    :func:`compute` like a model, they are the floors printed under every leaderboard.
    """
    if kind not in FLOORS:
        raise ValueError(f"unknown floor '{kind}'; choose one of {', '.join(FLOORS)}")
    if t_out < 1:
        raise ValueError(f"t_out must be >= 1, got {t_out}")
    x = inputs if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    if x.ndim != 5 or x.shape[1] < 1:
        raise ValueError(f"inputs must have shape (B, T_in, C, H, W) with T_in >= 1, got {tuple(x.shape)}")
    B, _, C, H, W = x.shape
    if isinstance(x, torch.Tensor):
        if kind == "copy_last":
            return x[:, -1:].expand(B, t_out, C, H, W).clone()  # (B, T_out, C, H, W)
        return torch.zeros((B, t_out, C, H, W), dtype=x.dtype, device=x.device)
    if kind == "copy_last":
        return np.repeat(x[:, -1:], t_out, axis=1)  # (B, T_out, C, H, W), a copy
    return np.zeros((B, t_out, C, H, W), dtype=x.dtype)
