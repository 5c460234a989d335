"""The compute study (docs/protocol.md, "Compute study"): when the records of one (dataset, preset) span several
training budgets (``stbench sweep``), recurrent and parallel models are compared at EQUAL training compute.

From the per-budget leaderboards (:func:`stbench.report.tables.build_leaderboards`, one per budget, each ranked on
its own) this module builds, for the sort metric (MSE):

- the points of the study: one per (model, budget) with the test mean over seeds, its 95% interval (the
  leaderboard's bootstrap of test sequences, seeds averaged per sequence), samples seen and training FLOPs;
- each family's Pareto frontier (:func:`pareto`): the (model, budget) points no other point of the family beats on
  both training compute and test error;
- "best model at each budget": the best recurrent and the best parallel model of each budget and their PAIRED
  difference (parallel - recurrent) with its 95% interval and p value (:func:`stbench.report.paired.paired_ranking`
  on the two models' per-sequence values; one comparison per budget, not adjusted across budgets);
- time to a validation target: per model, the first budget (fewest samples) at which its validation MSE (the
  selected weights', ``record.val.metrics.mse``, mean over seeds) is at or below the target, and that budget's
  wall-clock training time (``train_s``, mean over seeds). The default target is the validation MSE that the
  WORST model reaches at the largest budget, so every model that ran the largest budget reaches it and the table
  says how much sooner the others did; ``stbench report --val-target X`` states another one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stbench.records import FAMILIES
from stbench.report.cells import label as metric_name
from stbench.report.paired import CI_LEVEL
from stbench.report.tables import Leaderboard, per_sequence_runs, sort_metric

POINT_COLUMNS = ("model", "family", "budget", "samples_seen", "train_flops", "mean", "lo", "hi", "n", "val_mse",
                 "train_s")


@dataclass
class ComputeStudy:
    dataset: str
    preset: str
    metric: str
    higher_is_better: bool
    budgets: list[str]  # fewest samples first
    points: pd.DataFrame  # POINT_COLUMNS: one row per (model, budget)
    best: pd.DataFrame  # per budget: recurrent, recurrent_mean, parallel, parallel_mean, diff, diff_lo, diff_hi, p
    target: float | None
    target_rule: str
    to_target: pd.DataFrame  # per model: model, family, budget, samples_seen, train_s, val_mse (None: not reached)
    devices: list[str] = field(default_factory=list)  # where the training times were measured
    notes: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-._" else "-" for c in f"{self.dataset}_{self.preset}")

    @property
    def title(self) -> str:
        return f"Compute study: {self.dataset}, preset {self.preset}"


# ---------------------------------------------------------------------------------------------
# pure pieces (tested by hand)
# ---------------------------------------------------------------------------------------------
def pareto(x: np.ndarray, y: np.ndarray, higher_is_better: bool = False) -> list[int]:
    """Indices of the Pareto frontier of points (compute ``x``, error ``y``), by increasing ``x``: a point is on it
    when every point with less or equal compute is worse (a tie in ``x`` keeps the better ``y`` only)."""
    y = -np.asarray(y, float) if higher_is_better else np.asarray(y, float)
    order = np.lexsort((y, np.asarray(x, float)))  # by x, then by y
    out, best = [], math.inf
    for i in order:
        if y[i] < best:
            out.append(int(i))
            best = y[i]
    return out


def first_reaching(budgets: pd.DataFrame, target: float) -> pd.Series | None:
    """The first row (fewest samples) of one model's ``budgets`` (samples_seen, val_mse, ...) whose validation MSE
    is at or below ``target``; None if none is."""
    ok = budgets[budgets["val_mse"].notna() & (budgets["val_mse"] <= target)]
    return ok.sort_values("samples_seen").iloc[0] if len(ok) else None


# ---------------------------------------------------------------------------------------------
def compute_studies(boards: list[Leaderboard], val_target: float | None = None) -> list[ComputeStudy]:
    """One :class:`ComputeStudy` per (dataset, preset) whose trained records span at least two budgets."""
    groups: dict[tuple[str, str], list[Leaderboard]] = {}
    for lb in boards:
        if lb.budget and lb.budget_split and not lb.horizon and not lb.table.empty:
            groups.setdefault((lb.dataset, lb.preset), []).append(lb)
    return [_study(g, val_target) for g in groups.values() if len(g) >= 2]


def _study(boards: list[Leaderboard], val_target: float | None) -> ComputeStudy:
    first = boards[0]
    metric = sort_metric(first.metrics)
    higher = first.higher_is_better[metric]
    points = pd.DataFrame([p for lb in boards for p in _points(lb, metric)], columns=list(POINT_COLUMNS))
    order = budget_order([lb.budget for lb in boards], points)
    target, rule = _target(points, order, val_target)
    devices = sorted({str(d) for lb in boards for d in lb.runs.loc[lb.runs["kind"] == "model", "device_name"].dropna()})
    boards = sorted(boards, key=lambda b: order.index(b.budget))
    study = ComputeStudy(first.dataset, first.preset, metric, higher, order, points,
                         pd.DataFrame([_best(lb, metric, higher) for lb in boards]),
                         target, rule, _to_target(points, target), devices)
    if len(devices) > 1:
        study.notes.append(f"training times were measured on {len(devices)} devices ({'; '.join(devices)}): "
                           "they are not comparable across them")
    return study


def _points(lb: Leaderboard, metric: str) -> list[dict[str, Any]]:
    """The trained models of one budget's board as points of the study."""
    rows = lb.table[(lb.table["kind"] == "model") & lb.table[f"{metric}_mean"].apply(math.isfinite)]
    out = []
    for _, r in rows.iterrows():
        runs = lb.runs[(lb.runs["model"] == r["model"]) & (lb.runs["kind"] == "model")]
        vals = [((rec.get("val") or {}).get("metrics") or {}).get("mse") for rec in runs["record"]]
        vals = [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
        out.append({"model": r["model"], "family": r["family"], "budget": lb.budget,
                    "samples_seen": r["samples_seen"], "train_flops": r["train_flops"], "mean": r[f"{metric}_mean"],
                    "lo": r.get(f"{metric}_ci_lo", math.nan), "hi": r.get(f"{metric}_ci_hi", math.nan),
                    "n": int(r["n"]), "val_mse": float(np.mean(vals)) if vals else math.nan,
                    "train_s": r["train_s"]})
    return out


def _best(lb: Leaderboard, metric: str, higher: bool) -> dict[str, Any]:
    """The best recurrent and the best parallel model of one budget and their paired difference."""
    from stbench.report.paired import paired_ranking

    t = lb.table[(lb.table["kind"] == "model") & lb.table[f"{metric}_mean"].apply(math.isfinite)]
    row: dict[str, Any] = {"budget": lb.budget}
    for fam in FAMILIES:
        g = t[t["family"] == fam].sort_values(f"{metric}_mean", ascending=not higher)
        row[fam], row[f"{fam}_mean"] = (g.iloc[0]["model"], g.iloc[0][f"{metric}_mean"]) if len(g) else (None, None)
    row.update(diff=math.nan, diff_lo=math.nan, diff_hi=math.nan, p=math.nan)
    if row["recurrent"] and row["parallel"]:
        runs = lb.runs[lb.runs["kind"] == "model"]
        vals = [per_sequence_runs(runs[runs["model"] == row[f]]).get(metric) for f in FAMILIES]
        if all(v is not None for v in vals) and vals[0].shape[1] == vals[1].shape[1]:
            res = paired_ranking(list(FAMILIES), vals, higher_is_better=higher)
            i, j = res.models.index("parallel"), res.models.index("recurrent")
            row["diff"], row["diff_lo"], row["diff_hi"] = res.diff(i, j)
            row["p"] = float(res.p_adj[i, j])
    return row


def budget_order(budgets: list[str], points: pd.DataFrame) -> list[str]:
    """Smallest budget first: by value when every budget is of one kind (samples, flops or seconds), else by the
    mean samples seen."""
    from stbench.budget import Budget

    parsed = {b: Budget.parse(b) for b in budgets}
    if len({p.kind for p in parsed.values()}) == 1:
        return sorted(budgets, key=lambda b: parsed[b].value)
    seen = points.groupby("budget")["samples_seen"].mean()
    return sorted(budgets, key=lambda b: seen.get(b, math.inf))


def _target(points: pd.DataFrame, order: list[str], val_target: float | None) -> tuple[float | None, str]:
    if val_target is not None:
        return float(val_target), f"validation MSE <= {val_target:g} (stated with --val-target)"
    last = points[(points["budget"] == order[-1]) & points["val_mse"].notna()]
    if last.empty:
        return None, "no validation MSE in the records of the largest budget"
    worst = last.sort_values("val_mse").iloc[-1]
    return float(worst["val_mse"]), (f"validation MSE <= {worst['val_mse']:.4g}: the worst model's ({worst['model']}) "
                                     f"at the largest budget ({order[-1]}; default, --val-target sets another)")


def _to_target(points: pd.DataFrame, target: float | None) -> pd.DataFrame:
    rows = []
    for model, g in points.groupby("model", sort=False):
        hit = first_reaching(g, target) if target is not None else None
        rows.append({"model": model, "family": g.iloc[0]["family"],
                     **({"budget": hit["budget"], "samples_seen": hit["samples_seen"], "train_s": hit["train_s"],
                         "val_mse": hit["val_mse"]} if hit is not None else
                        {"budget": None, "samples_seen": math.nan, "train_s": math.nan, "val_mse": math.nan})})
    out = pd.DataFrame(rows, columns=["model", "family", "budget", "samples_seen", "train_s", "val_mse"])
    return out.sort_values(["train_s", "model"], na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# figures: test metric vs training compute (samples seen, training PFLOPs), one line per model
# ---------------------------------------------------------------------------------------------
X_AXES = (  # (file kind, column, scale, axis label)
    ("compute_samples", "samples_seen", 1.0, "training sequences seen (log scale)"),
    ("compute_pflops", "train_flops", 1e-15, "training PFLOPs (3 x fvcore training-mode forward x sequences, log)"),
)


def study_plots(study: ComputeStudy, out_dir: Any) -> Any:
    """Both compute-study figures (PNG + SVG) under ``out_dir``; a missing x quantity is a note."""
    import matplotlib as mpl

    from stbench.report.plots import RC, PlotFile, PlotSet

    ps = PlotSet()
    with mpl.rc_context(RC):
        for kind, col, scale, label in X_AXES:
            pts = study.points[study.points[col].notna() & (study.points[col] > 0)]
            if pts["budget"].nunique() < 2:
                ps.notes.append(f"{study.dataset}/{study.preset}: skipped {kind}: fewer than two budgets with {col}")
                continue
            fig = _compute_figure(study, pts.assign(x=pts[col] * scale), label)
            png, svg = _save_study(fig, out_dir, f"{kind}_{study.slug}")
            ps.files.append(PlotFile(kind, f"Test {metric_name(study.metric)} vs {label.split(' (')[0]}", png, svg))
    return ps


def _compute_figure(study: ComputeStudy, pts: pd.DataFrame, xlabel: str) -> Any:
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from stbench.report.plots import FAMILY_STYLE, MARKERS, OTHER_FAMILY_STYLE, _place_labels, _si_ticks

    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    handles, k, ends = [], {}, []  # ends: (x, y, half interval, model, colour) of each line's last point
    lines = pts.groupby("model")["budget"].transform("nunique") > 1
    if not lines.any():  # nobody has a line: every point is named instead
        lines[:] = True
    for fam, g in pts[~lines].groupby("family", sort=False):  # one budget each: no line to draw, so faint and
        colour, _ = FAMILY_STYLE.get(fam, OTHER_FAMILY_STYLE)  # unnamed (their names: the budget's leaderboard)
        yerr = np.array([g["mean"] - g["lo"], g["hi"] - g["mean"]]).clip(min=0)
        ax.errorbar(g["x"], g["mean"], yerr=np.nan_to_num(yerr), color=colour, marker="o", mfc="none", ms=4,
                    ls="none", capsize=0, alpha=0.45, zorder=2)
        handles.append(Line2D([], [], color=colour, marker="o", mfc="none", ms=4, ls="none", alpha=0.45,
                              label=f"{fam}, one budget ({g['model'].nunique()})"))
    for model, g in pts[lines].groupby("model", sort=False):
        g = g.sort_values("x")
        colour, _ = FAMILY_STYLE.get(g.iloc[0]["family"], OTHER_FAMILY_STYLE)
        k[g.iloc[0]["family"]] = k.get(g.iloc[0]["family"], -1) + 1
        marker = MARKERS[k[g.iloc[0]["family"]] % len(MARKERS)]
        yerr = np.array([g["mean"] - g["lo"], g["hi"] - g["mean"]]).clip(min=0)
        ax.errorbar(g["x"], g["mean"], yerr=np.nan_to_num(yerr), color=colour, marker=marker, ms=4, lw=1.1,
                    capsize=2, alpha=0.9, zorder=3)
        ends.append((g["x"].iloc[-1], g["mean"].iloc[-1], float(np.nan_to_num(yerr[:, -1]).max()), model, colour))
        handles.append(Line2D([], [], color=colour, marker=marker, ms=4, lw=1.1, label=model))
    for fam in FAMILIES:
        g = pts[pts["family"] == fam]
        if g.empty:
            continue
        idx = pareto(g["x"].to_numpy(), g["mean"].to_numpy(), study.higher_is_better)
        front = g.iloc[idx]
        colour = FAMILY_STYLE[fam][0]
        fx, fy = [*front["x"], g["x"].max()], [*front["mean"], front["mean"].iloc[-1]]  # held to the family's last x
        ax.step(fx, fy, where="post", color=colour, lw=4, alpha=0.25, zorder=1)
        handles.append(Line2D([], [], color=colour, lw=4, alpha=0.35, label=f"{fam} Pareto frontier"))
    ax.set_xscale("log")
    _si_ticks(ax.xaxis)
    if (pts["mean"] > 0).all() and pts["mean"].max() / pts["mean"].min() > 3:
        ax.set_yscale("log")
    ax.margins(x=0.15)
    ax.set_xlabel(xlabel)
    better = "higher" if study.higher_is_better else "lower"
    ax.set_ylabel(f"test {metric_name(study.metric)} ({better} is better), {CI_LEVEL:.0%} interval")
    ax.set_title(f"{metric_name(study.metric)} vs training compute — {study.dataset}, {study.preset}", loc="left",
                 fontweight="bold")
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    if ends:  # each line named at its last point, placed off the markers, the other names and the intervals
        xs, ys, es, names, colours = zip(*ends)
        with mpl.rc_context({"font.size": 7}):
            _place_labels(ax, np.array(xs), np.array(ys), list(names), [3.0] * len(ends), yerr=np.array(es),
                          colors=list(colours))
    return fig


def _save_study(fig: Any, out_dir: Any, stem: str) -> tuple[Any, Any]:
    from pathlib import Path

    from stbench.report.plots import DPI

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg


# ---------------------------------------------------------------------------------------------
# tables (Markdown and HTML share the cells)
# ---------------------------------------------------------------------------------------------
def _num(x: Any, fmt: str = ".4g") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _p(x: Any) -> str:
    """A p value; below 1e-15 (where a double's normal tail stops resolving it, and it would print as 0) as a bound."""
    return "< 1e-15" if isinstance(x, float) and math.isfinite(x) and x < 1e-15 else _num(x, ".3g")


def _name(x: Any, missing: str = "-") -> str:
    """A model / budget name, or ``missing`` where pandas holds NaN / None (a budget without that family)."""
    return x if isinstance(x, str) and x else missing


def best_rows(study: ComputeStudy) -> tuple[list[str], list[list[str]]]:
    head = ["budget", "best recurrent", metric_name(study.metric), "best parallel", metric_name(study.metric),
            f"Δ parallel − recurrent [{CI_LEVEL:.0%} CI]", "p"]
    rows = [[str(r["budget"]), _name(r["recurrent"]), _num(r["recurrent_mean"]), _name(r["parallel"]),
             _num(r["parallel_mean"]),
             f"{_num(r['diff'], '+.4g')} [{_num(r['diff_lo'], '+.4g')}, {_num(r['diff_hi'], '+.4g')}]"
             if math.isfinite(r["diff"]) else "-", _p(r["p"])] for _, r in study.best.iterrows()]
    return head, rows


def target_rows(study: ComputeStudy) -> tuple[list[str], list[list[str]]]:
    head = ["model", "family", "first budget reaching the target", "samples seen", "train time (s)", "val MSE"]
    rows = [[r["model"], r["family"], _name(r["budget"], "not reached"), _num(r["samples_seen"], ".0f"),
             _num(r["train_s"], ".0f"), _num(r["val_mse"])] for _, r in study.to_target.iterrows()]
    return head, rows


def study_notes(study: ComputeStudy) -> list[str]:
    return [f"Budgets: {', '.join(study.budgets)}; each budget is its own leaderboard (ranked on its own).",
            f"Lines: mean over seeds of the test {metric_name(study.metric)} per (model, budget), {CI_LEVEL:.0%} "
            "percentile bootstrap interval over test sequences (seeds averaged per sequence); shaded steps: each "
            "family's Pareto frontier; open faint markers: models run at one budget only (named in that budget's "
            "leaderboard).",
            "Δ: paired difference of the best parallel minus the best recurrent model of the budget, bootstrap of "
            "the shared test sequences (seeds resampled); p: two-sided, one comparison per budget (not adjusted "
            "across budgets); negative Δ: the parallel model is better (lower is better).",
            f"Time to target: {study.target_rule}; the wall-clock training time of the first budget that reaches "
            "it (mean over seeds); budgets are the ones run, nothing is interpolated.", *study.notes]


def study_markdown(study: ComputeStudy, plots: Any, rel_to: Any) -> str:
    from stbench.report.writers import md_escape

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                *("| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows), ""]

    lines = [f"# {study.title}", ""]
    for p in plots.files:
        lines += [f"![{p.title}]({p.png.relative_to(rel_to).as_posix()})", ""]
    lines += ["## Best model at each budget", "", *table(*best_rows(study))]
    lines += ["## Training time to a validation target", "", *table(*target_rows(study))]
    lines += [f"- {md_escape(n)}" for n in study_notes(study)] + [""]
    return "\n".join(lines)


def study_html(study: ComputeStudy, plots: Any) -> str:
    import base64
    from html import escape

    def table(head: list[str], rows: list[list[str]]) -> str:
        return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
                + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                                                   for r in rows) + "</tbody></table></div>")

    parts = [f'<section id="compute-{escape(study.slug)}"><h2>{escape(study.title)}</h2>']
    for p in plots.files:
        data = base64.b64encode(p.png.read_bytes()).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(p.title)}"><figcaption>'
                     f"{escape(p.title)} (SVG: {escape(p.svg.name)})</figcaption></figure>")
    parts += ["<h3>Best model at each budget</h3>", table(*best_rows(study)),
              "<h3>Training time to a validation target</h3>", table(*target_rows(study)),
              '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in study_notes(study)) + "</ul>",
              "</section>"]
    return "\n".join(parts)
