"""Figures per leaderboard, PNG (200 dpi) and SVG, sized for a paper page, in a colour-blind-safe palette.

- accuracy vs FLOPs and accuracy vs measured throughput (log x; colour and marker = recurrent /
  parallel; marker area = parameters; floors as horizontal lines),
- error per predicted frame (one line per model, floors dashed),
- training curves (train and validation loss per epoch),
- qualitative strips (inputs, ground truth and each model's prediction for the same test sequences).

A plot whose data is missing is skipped with a note. Figures are built with ``matplotlib.figure.Figure``
(Agg canvas) and never touch pyplot's global state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.textpath import TextPath
from matplotlib.ticker import LogFormatter

from stbench.report.cells import label as metric_name_label
from stbench.report.cells import si
from stbench.report.tables import Leaderboard, sort_metric

DPI = 200
# Okabe & Ito (2008), black reserved for floors; yellow last (weak on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
FAMILY_STYLE = {"parallel": ("#0072B2", "o"), "recurrent": ("#D55E00", "s")}
OTHER_FAMILY_STYLE = ("#009E73", "^")
FLOOR_COLOUR = "#333333"
FLOOR_DASHES = ("--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LEGEND_BESIDE = 12  # line-plot legends with more entries go below the panels
RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.6, "svg.fonttype": "none", "svg.hashsalt": "stbench",
    "legend.frameon": False,
}


@dataclass
class PlotFile:
    kind: str  # acc_vs_flops | acc_vs_throughput | horizon | training_curves | examples
    title: str
    png: Path
    svg: Path


@dataclass
class PlotSet:
    files: list[PlotFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # plots skipped or incomplete, and why


def model_styles(lb: Leaderboard) -> dict[str, dict]:
    """One colour / marker / line style per model, stable across a leaderboard's figures."""
    styles, k, f = {}, 0, 0
    for _, row in lb.table.iterrows():
        if row["kind"] == "floor":
            styles[row["model"]] = {"color": FLOOR_COLOUR, "ls": FLOOR_DASHES[f % len(FLOOR_DASHES)], "marker": None,
                                    "label": f"{row['model']} (floor)"}
            f += 1
        else:
            # past seven models colours repeat; the marker cycle shifts and the line turns dash-dot
            styles[row["model"]] = {"color": OKABE_ITO[k % len(OKABE_ITO)],
                                    "marker": MARKERS[(k + k // len(OKABE_ITO)) % len(MARKERS)],
                                    "ls": "-" if k < len(OKABE_ITO) else "-.", "label": row["model"]}
            k += 1
    return styles


def _save(fig: Figure, out_dir: Path, kind: str, lb: Leaderboard, title: str) -> PlotFile:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{kind}_{lb.slug}.png", out_dir / f"{kind}_{lb.slug}.svg"
    save_figure(fig, png, dpi=DPI, metadata={"Software": None})
    save_figure(fig, svg, metadata={"Date": None, "Creator": None})
    return PlotFile(kind, title, png, svg)


def save_figure(fig: Figure, path: Path, **kw: Any) -> None:
    """``fig.savefig`` whole or not at all: rendered in memory, written atomically (a full disk leaves no
    0-byte image, and is a one-line error naming the file)."""
    import io

    from stbench.records import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), **kw)
    atomic_write_bytes(path, buf.getvalue())


def _suptitle(fig: Figure, lb: Leaderboard, what: str) -> None:
    fig.suptitle(f"{what} — {lb.title}", fontsize=10, fontweight="bold")


# ---------------------------------------------------------------------------------------------
# label placement: each label goes to the first nearby spot that overlaps no marker, no other
# label and stays inside the axes; a label pushed far from its point gets a thin leader line.
# ---------------------------------------------------------------------------------------------
def _place_labels(ax, xs, ys, texts, radii_pt, yerr=None, colors=None) -> None:
    fig = ax.figure
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    box = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    radii = [r * px_per_pt for r in radii_pt]
    obstacles = [(px - r, py - r, px + r, py + r) for (px, py), r in zip(pts, radii)]
    for x, y, e in zip(xs, ys, yerr if yerr is not None else []):  # error bars are obstacles too
        if e > 0:
            (x0, y0), (x1, y1) = ax.transData.transform([(x, y - e), (x, y + e)])
            obstacles.append((x0 - 3 * px_per_pt, y0, x1 + 3 * px_per_pt, y1))

    def overlap(a, b) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    fontsize = mpl.rcParams["font.size"]
    for i in np.argsort(pts[:, 0], kind="stable"):
        t = ax.text(0, 0, texts[i], fontsize=fontsize)
        bb = t.get_window_extent(renderer)
        t.remove()
        w, h, r, g = bb.width, bb.height, radii[i], 3 * px_per_pt
        cands = []  # (dx, dy, ring): lower-left corner of the label relative to the point, in pixels
        for ring, k in enumerate((1.0, 2.5, 4.5, 7.0)):  # ring 0 starts with right of / left of the point
            d = r + g * k
            e = 0.8 * d
            cands += [(x, y, ring) for x, y in ((d, -h / 2), (-d - w, -h / 2), (-w / 2, d), (-w / 2, -d - h),
                                                (e, d / 2), (e, -d / 2 - h), (-e - w, d / 2), (-e - w, -d / 2 - h))]
        best, best_cost = (*cands[0], 0), math.inf
        for n, (dx, dy, ring) in enumerate(cands):
            rect = (pts[i, 0] + dx, pts[i, 1] + dy, pts[i, 0] + dx + w, pts[i, 1] + dy + h)
            outside = (max(0, box.x0 - rect[0]) + max(0, rect[2] - box.x1) + max(0, box.y0 - rect[1])
                       + max(0, rect[3] - box.y1))
            # a label nearer to another point than to its own reads as that point's label
            centre = np.array([rect[0] + w / 2, rect[1] + h / 2])
            dist = np.hypot(*(pts - centre).T)
            ambiguous = float(dist.min() < dist[i] - 1e-6)
            cost = (sum(overlap(rect, o) for o in obstacles) + 50 * outside * h + ambiguous * w * h
                    + ring * 0.01 * w * h)
            if cost < best_cost:
                best, best_cost = (dx, dy, n), cost
            if cost == 0:
                break
        dx, dy, n = best
        rect = (pts[i, 0] + dx, pts[i, 1] + dy, pts[i, 0] + dx + w, pts[i, 1] + dy + h)
        obstacles.append(rect)
        far = n >= 2  # anything but straight right / left of the point gets a leader line
        leader = {"arrowstyle": "-", "lw": 0.6, "color": "#555555", "shrinkA": 0, "shrinkB": r / px_per_pt}
        ax.annotate(texts[i], xy=(xs[i], ys[i]), xytext=(dx / px_per_pt, dy / px_per_pt),
                    textcoords="offset points", ha="left", va="bottom", fontsize=fontsize,
                    color=None if colors is None else colors[i], arrowprops=leader if far else None,
                    annotation_clip=False)


class _SILogFormatter(LogFormatter):
    """Log-axis tick labels in SI units (300M, 1G, 2G) instead of 3x10^8; matplotlib picks which to label."""

    def _num_to_string(self, x, vmin, vmax):  # noqa: ARG002 (LogFormatter's signature)
        return si(x, 2) if abs(x) >= 1 else f"{x:g}"


class _MinorSubset(_SILogFormatter):
    """Minor log ticks labelled only at 2x and 5x a power of ten once the axis spans more than a decade:
    with twenty-odd models the axis spans several decades and every minor label would collide."""

    def __call__(self, x, pos=None):
        lo, hi = sorted(self.axis.get_view_interval()) if self.axis is not None else (x, x)
        if lo > 0 and hi / lo > 10:
            mant = x / 10 ** math.floor(math.log10(x) + 1e-9)
            if not any(abs(mant - m) < 1e-6 for m in (2.0, 5.0)):
                return ""
        return super().__call__(x, pos)


def _si_ticks(axis) -> None:
    axis.set_major_formatter(_SILogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_MinorSubset(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


# ---------------------------------------------------------------------------------------------
# accuracy vs cost
# ---------------------------------------------------------------------------------------------
def _scatter(lb: Leaderboard, xcol: str, xlabel: str, what: str) -> tuple[Figure | None, str | None]:
    metric = sort_metric(lb.metrics)
    if metric is None:
        return None, "no metric in the records"
    t = lb.table
    pts = t[(t["kind"] != "floor") & t[xcol].notna() & (t[xcol] > 0) & t[f"{metric}_mean"].notna()]
    if pts.empty:
        return None, f"no trained model has {what} in its record"
    floors = t[(t["kind"] == "floor") & t[f"{metric}_mean"].notna()]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    params = pts["params"].astype(float)
    pmax = params.max() if params.notna().any() else math.nan
    sizes = np.where(params.notna() & (pmax > 0), 30 + 370 * params / (pmax if pmax > 0 else 1), 60.0)
    handles = []
    families = sorted(set(pts["family"]), key=lambda f: (list(FAMILY_STYLE).index(f) if f in FAMILY_STYLE else 9, f))
    for fam in families:
        sel = (pts["family"] == fam).to_numpy()
        colour, marker = FAMILY_STYLE.get(fam, OTHER_FAMILY_STYLE)
        g = pts[sel]
        ax.scatter(g[xcol], g[f"{metric}_mean"], s=sizes[sel], c=colour, marker=marker, alpha=0.85,
                   edgecolors="white", linewidths=0.8, zorder=3)
        std = g[f"{metric}_std"].fillna(0.0)
        if (std > 0).any():
            ax.errorbar(g[xcol], g[f"{metric}_mean"], yerr=std, fmt="none", ecolor=colour, elinewidth=1,
                        capsize=2, zorder=2)
        handles.append(Line2D([], [], ls="", marker=marker, color=colour, markersize=7, label=fam))
    styles = model_styles(lb)
    label = metric_name_label(metric, lb.metrics_meta)
    ymin, ymax = pts[f"{metric}_mean"].min(), pts[f"{metric}_mean"].max()
    span = max(ymax - ymin, 0.25 * abs(ymax))
    shown = []
    for _, row in floors.iterrows():  # a floor far from every model would squash the models into a line
        st, y = styles[row["model"]], row[f"{metric}_mean"]
        if ymin - span <= y <= ymax + span:
            ax.axhline(y, color=st["color"], ls=st["ls"], lw=1.0, zorder=1)
            handles.append(Line2D([], [], color=st["color"], ls=st["ls"], lw=1.0, label=st["label"]))
            shown.append(y)
        else:
            handles.append(Line2D([], [], ls="", label=f"{st['label']}:\n{label} {y:.4g}, off scale"))
    ax.set_xscale("log")
    _si_ticks(ax.xaxis)
    ys = pd.concat([pts[f"{metric}_mean"], pd.Series(shown, dtype=float)])
    if (ys > 0).all() and ys.max() / ys.min() > 3:
        ax.set_yscale("log")
        _si_ticks(ax.yaxis)
    ax.margins(x=0.18, y=0.12)
    better = "lower" if not lb.higher_is_better[metric] else "higher"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"test {label} ({better} is better)")
    if params.notna().any():
        handles.append(Line2D([], [], ls="", label=" "))
        for frac in (0.25, 1.0):
            p = pmax * frac
            handles.append(Line2D([], [], ls="", marker="o", color="#999999", markersize=math.sqrt(30 + 370 * frac),
                                  label=f"{si(p)} params"))
    fig.legend(handles=handles, loc="outside right upper", labelspacing=1.0, borderaxespad=0.5)
    ax.set_title(f"{label} vs {what} — {lb.title}", fontweight="bold", loc="left")
    radii = [math.sqrt(s) / 2 for s in sizes]
    _place_labels(ax, pts[xcol].to_numpy(float), pts[f"{metric}_mean"].to_numpy(float), list(pts["model"]), radii,
                  yerr=pts[f"{metric}_std"].fillna(0.0).to_numpy(float))
    return fig, None


def _throughput_label(lb: Leaderboard) -> str:
    runs = lb.runs[lb.runs["infer_seq_per_s"].notna()]
    names = sorted({str(n) for n in runs["device_name"].dropna()}) or sorted({str(d) for d in runs["device"].dropna()})
    where = names[0] if len(names) == 1 else "several devices, NOT comparable"
    if len(where) > 60:
        where = where[:57] + "..."
    return f"inference throughput (sequences/s, log scale)\n{where}"


# ---------------------------------------------------------------------------------------------
# error per predicted frame, training curves
# ---------------------------------------------------------------------------------------------
def _per_model_curves(lb: Leaderboard, extract) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """model -> (x, mean, std) over that model's seeds; runs whose curve has another length are left out."""
    out = {}
    for model in lb.table["model"]:
        curves = [c for c in (extract(rec) for rec in lb.runs.loc[lb.runs["model"] == model, "record"]) if c]
        if not curves:
            continue
        x0 = curves[0][0]
        same = [np.asarray(c[1], float) for c in curves if len(c[0]) == len(x0) and np.array_equal(c[0], x0)]
        arr = np.stack(same)
        std = arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
        out[model] = (np.asarray(x0, float), arr.mean(axis=0), std)
    return out


def _text_width_in(text: str, size: float) -> float:
    return TextPath((0, 0), text, size=size).get_extents().width / 72


def _line_panels(lb: Leaderboard, panels: list[tuple[str, str, dict]], xlabel: str, what: str,
                 log_ratio: float = 20.0, sharey: bool = False) -> Figure:
    styles = model_styles(lb)
    models = {m for _, _, curves in panels for m in curves}
    # a legend beside the panels holds about a dozen entries; more go below them, as many columns as fit
    below = len(models) > LEGEND_BESIDE
    width, height, ncol = 3.3 * len(panels) + (0.3 if below else 1.5), 3.5, 1
    if below:
        entry_in = 0.6 + max(_text_width_in(styles[m]["label"], RC["legend.fontsize"]) for m in models)  # + handle
        ncol = max(1, min(len(models), int((width - 0.2) / entry_in)))
        height += 0.17 * math.ceil(len(models) / ncol)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=sharey)[0]
    handles: dict[str, Line2D] = {}
    for ax, (ylabel, title, curves) in zip(axes, panels):
        for model, (x, mean, std) in curves.items():
            st = styles[model]
            (line,) = ax.plot(x, mean, color=st["color"], ls=st["ls"], marker=st["marker"], markersize=3.5,
                              markevery=max(1, len(x) // 12), lw=1.4 if st["marker"] else 1.2, label=st["label"])
            if std.any():
                ax.fill_between(x, mean - std, mean + std, color=st["color"], alpha=0.15, lw=0)
            handles.setdefault(model, line)
        vals = np.concatenate([c[1] for c in curves.values()])
        vals = vals[np.isfinite(vals)]
        if len(vals) and (vals > 0).all() and vals.max() / vals.min() > log_ratio:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
    order = [m for m in lb.table["model"] if m in handles]
    fig.legend(handles=[handles[m] for m in order], loc="outside lower center" if below else "outside right upper",
               ncol=ncol)
    _suptitle(fig, lb, what)
    return fig


#: metrics drawn per predicted frame when a board has them (the PNG panels here, the site's figures): images,
#: weather (WeatherBench), nowcasting, The Well
HORIZON_METRICS = ("mse", "ssim", "wrmse", "wacc", "csi_m", "vrmse")


def _horizon(lb: Leaderboard) -> tuple[Figure | None, str | None]:
    panels = []
    for m in HORIZON_METRICS:
        if m not in lb.higher_is_better:
            continue

        def pf(rec, m=m):
            vals = (rec.get("per_frame") or {}).get(m)
            return (np.arange(1, len(vals) + 1), vals) if isinstance(vals, list) and vals else None

        curves = _per_model_curves(lb, pf)
        if curves:
            label = metric_name_label(m, lb.metrics_meta)
            arrow = "higher" if lb.higher_is_better[m] else "lower"
            panels.append((f"{label} per frame ({arrow} is better)", label, curves))
    if not panels:
        return None, "no record has per-frame metrics (per_frame)"
    return _line_panels(lb, panels, "predicted frame", "Error per predicted frame"), None


TRAIN_CURVES = (
    # (history key, y-axis label, panel title): different quantities, so separate panels with their own axes
    ("train_loss", "training objective\n(teacher-forced / sampled inputs, + aux terms)", "training loss"),
    ("val_mse", "MSE per frame (SSE over C*H*W)\ntest-time roll-out, no targets seen", "validation MSE"),
)


def _training_curves(lb: Leaderboard) -> tuple[Figure | None, str | None]:
    """Training objective and validation MSE on separate, labelled axes: the training loss is the model's
    objective under training-time inputs (a recurrent model sees true frames, all T_in + T_out - 1 steps, plus
    e.g. DDR or decoupling terms), the validation MSE the test metric's convention; they are not one quantity."""
    panels = []
    for key, ylabel, title in TRAIN_CURVES:
        def hist(rec, key=key):
            rows = [h for h in rec.get("history") or [] if isinstance(h, dict)
                    and isinstance(h.get("epoch"), (int, float)) and isinstance(h.get(key), (int, float))]
            return (np.array([h["epoch"] for h in rows]), [h[key] for h in rows]) if rows else None

        curves = _per_model_curves(lb, hist)
        if curves:
            panels.append((ylabel, title, curves))
    if not panels:
        return None, "no record has a training history"
    return _line_panels(lb, panels, "epoch", "Training curves", log_ratio=10.0, sharey=False), None


# ---------------------------------------------------------------------------------------------
# qualitative strips
# ---------------------------------------------------------------------------------------------
def _load_examples(path: str) -> tuple[dict[str, np.ndarray] | None, str | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in ("inputs", "targets", "preds")}
    except FileNotFoundError:
        return None, f"{path} is missing"
    except (OSError, ValueError, KeyError) as exc:
        return None, f"{path} is unreadable ({exc})"
    if any(a.ndim != 5 for a in arrays.values()) or arrays["preds"].shape != arrays["targets"].shape:
        return None, f"{path} does not hold (n, T, C, H, W) inputs / targets / preds of matching shapes"
    return arrays, None


def _to_display(frames: np.ndarray) -> np.ndarray:
    """(T, C, H, W) uint8 (or float in [0, 1]) -> (T, H, W) or (T, H, W, 3) floats in [0, 1]."""
    f = frames.astype(np.float32)
    f = f / 255.0 if frames.dtype == np.uint8 or f.max() > 1.0 else f
    f = np.clip(f, 0.0, 1.0)
    return f.transpose(0, 2, 3, 1) if f.shape[1] == 3 else f[:, 0]


def _mosaic(rows: list[np.ndarray], ncols: int, pad: int) -> np.ndarray:
    """rows of (T, H, W[, 3]) -> one image, frames left-aligned on a white grid."""
    h, w = rows[0].shape[1:3]
    extra = rows[0].shape[3:]
    img = np.ones((len(rows) * (h + pad) - pad, ncols * (w + pad) - pad, *extra), np.float32)
    for r, frames in enumerate(rows):
        for c, fr in enumerate(frames[:ncols]):
            img[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = fr
    return img


def _strip_axis(ax, rows: list[np.ndarray], labels: list[str], frame_names: list[str], ticks: list[int],
                title: str, ncols: int, pad: int) -> None:
    h, w = rows[0].shape[1:3]
    # aspect "auto": an equal-aspect image axes is shrunk after the layout has reserved its label margin, and
    # its row labels then run off the figure; _examples sizes the figure for square pixels instead
    ax.imshow(_mosaic(rows, ncols, pad), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.set_yticks([r * (h + pad) + h / 2 for r in range(len(labels))], labels)
    ax.set_xticks([c * (w + pad) + w / 2 for c in ticks], [frame_names[c] for c in ticks])
    ax.tick_params(length=0, labelsize=7)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=8, loc="left")


def _examples(lb: Leaderboard, max_sequences: int = 2) -> tuple[Figure | None, list[str]]:
    """Rows: the inputs, the ground truth, then each model's prediction (leaderboard order) of the same test
    sequences; the first readable examples file (best-ranked model) sets which sequences those are."""
    notes: list[str] = []
    loaded: list[tuple[str, dict[str, np.ndarray], tuple | None]] = []
    for model in lb.table["model"]:
        runs = lb.runs[(lb.runs["model"] == model) & lb.runs["examples_file"].notna()].sort_values("seed")
        for _, run in runs.iterrows():
            arrays, problem = _load_examples(run["examples_file"])
            if arrays is not None:
                loaded.append((model, arrays, run["examples_indices"]))
                break
            notes.append(f"examples of {model} seed {run['seed']}: {problem}")
    if not loaded:
        return None, [*notes, "no record has readable example predictions (examples.file)"]
    ref_model, ref, ref_idx = loaded[0]
    n = min(max_sequences, ref["targets"].shape[0])
    preds = [(ref_model, ref["preds"][:n])]
    for model, arrays, idx in loaded[1:]:
        if arrays["targets"].shape[1:] != ref["targets"].shape[1:]:
            notes.append(f"examples of {model}: frames of another shape than {ref_model}'s; left out")
        elif ref_idx is not None and idx is not None:
            pos = {v: i for i, v in enumerate(idx)}
            if all(v in pos for v in ref_idx[:n]):
                preds.append((model, arrays["preds"][[pos[v] for v in ref_idx[:n]]]))
            else:
                notes.append(f"examples of {model}: not the same test sequences as {ref_model}'s; left out")
        elif arrays["preds"].shape[0] >= n:
            preds.append((model, arrays["preds"][:n]))  # no indices recorded: trust the schema (same sequences)
        else:
            notes.append(f"examples of {model}: fewer than {n} sequences; left out")
    if ref["inputs"].shape[2] not in (1, 3):
        notes.append(f"examples: {ref['inputs'].shape[2]} channels; showing channel 0")

    t_in, t_out = ref["inputs"].shape[1], ref["targets"].shape[1]
    ncols = max(t_in, t_out)
    pad = max(1, ref["targets"].shape[3] // 16)
    step = max(1, math.ceil(ncols / 10))  # at most about ten frame numbers per row
    in_names = [f"t{k - t_in + 1:+d}" if k < t_in - 1 else "t" for k in range(t_in)]
    in_ticks = sorted(range(t_in - 1, -1, -step))  # numbered back from t, the last input
    out_names = [f"t+{k + 1}" for k in range(t_out)]
    out_ticks = list(range(0, t_out, step))
    floor_label = {m: f"{m} (floor)" for m in lb.table.loc[lb.table["kind"] == "floor", "model"]}
    out_labels = ["ground truth"] + [floor_label.get(m, m) for m, _ in preds]

    width = 7.0
    cell = (width - 1.3) / ncols  # a first guess at a frame's size in inches; corrected below
    fig = Figure(figsize=(width, cell * n * (2 + len(preds)) + 1.1 * n + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(2 * n, 1, gridspec_kw={"height_ratios": [1, len(out_labels)] * n}))
    for s in range(n):
        seq = ref_idx[s] if ref_idx is not None and s < len(ref_idx) else s
        _strip_axis(axes[2 * s], [_to_display(ref["inputs"][s])], ["input"], in_names, in_ticks,
                    f"test sequence {seq}: input frames", ncols, pad)
        _strip_axis(axes[2 * s + 1], [_to_display(ref["targets"][s])] + [_to_display(p[s]) for _, p in preds],
                    out_labels, out_names, out_ticks, "ground truth and predictions", ncols, pad)
    _suptitle(fig, lb, "Example predictions")
    _square_pixels(fig, axes)
    return fig, notes


def _square_pixels(fig: Figure, axes: Sequence) -> None:
    """Give the figure (one column of image axes) the height and height ratios at which every image shows square
    pixels. The width the layout leaves the axes does not depend on the height, so one layout pass gives the
    axes' width and the height taken by titles, tick labels and padding."""
    fig.get_layout_engine().execute(fig)
    w, h = fig.get_size_inches()
    axes_h = sum(ax.get_position().height for ax in axes) * h
    needed = []
    for ax in axes:
        img_h, img_w = ax.get_images()[0].get_array().shape[:2]
        needed.append(ax.get_position().width * w * img_h / img_w)
    axes[0].get_subplotspec().get_gridspec().set_height_ratios(needed)
    fig.set_size_inches(w, h - axes_h + sum(needed))


# ---------------------------------------------------------------------------------------------
def make_plots(lb: Leaderboard, out_dir: Path) -> PlotSet:
    """Every figure of one leaderboard under ``out_dir`` (PNG + SVG); skipped ones named in ``notes``."""
    result = PlotSet()
    where = f"{lb.dataset}/{lb.preset}"
    if lb.table.empty:
        result.notes.append(f"{where}: no completed run, no plots")
        return result
    with mpl.rc_context(RC):
        jobs = [
            ("acc_vs_flops", "Accuracy vs FLOPs",
             lambda: _scatter(lb, "flops", "FLOPs per sequence (fvcore, log scale)", "FLOPs")),
            ("acc_vs_throughput", "Accuracy vs measured throughput",
             lambda: _scatter(lb, "infer_seq_per_s", _throughput_label(lb), "throughput")),
            ("horizon", "Error per predicted frame", lambda: _horizon(lb)),
            ("training_curves", "Training curves", lambda: _training_curves(lb)),
        ]
        for kind, title, job in jobs:
            fig, why = job()
            if fig is None:
                result.notes.append(f"{where}: skipped {title.lower()}: {why}")
            else:
                result.files.append(_save(fig, out_dir, kind, lb, title))
        fig, notes = _examples(lb)
        if fig is None:
            result.notes.append(f"{where}: skipped example predictions: {notes[-1]}")
            notes = notes[:-1]
        else:
            result.files.append(_save(fig, out_dir, "examples", lb, "Example predictions"))
        result.notes += [f"{where}: {n}" for n in notes]
    return result
