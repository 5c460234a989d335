"""Interactive figures of the site as plotly specs (``{"data": [...], "layout": {...}}``), built and checked with
plotly's Python graph objects and drawn in the browser by the plotly.js that ships with the same package.

Every trace carries its family as ``legendgroup`` and the legend toggles whole groups, so one click on
"recurrent" hides every recurrent model; hovering a point shows the model and its numbers. The data are the
leaderboard's (``Leaderboard.table`` / ``Leaderboard.runs``): these figures are the PNG plots' interactive
twins, never a second computation.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from stbench.report.cells import label as metric_name_label
from stbench.report.cells import si
from stbench.report.plots import (
    FAMILY_STYLE,
    FLOOR_COLOUR,
    OTHER_FAMILY_STYLE,
    TRAIN_CURVES,
    _per_model_curves,
    model_styles,
)
from stbench.report.tables import Leaderboard, sort_metric

SYMBOLS = {"o": "circle", "s": "square", "^": "triangle-up", "D": "diamond", "v": "triangle-down", "P": "cross",
           "X": "x"}
FLOOR_DASH = ("dash", "dot", "dashdot")
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _go():
    import plotly.graph_objects as go

    return go


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _layout(title: str, xlabel: str, ylabel: str, *, logx: bool = False, logy: bool = False,
            height: int = 420, integer_x: bool = False) -> dict[str, Any]:
    def axis(label: str, log: bool) -> dict[str, Any]:
        return {"title": {"text": label}, "type": "log" if log else "linear", "zeroline": False,
                "exponentformat": "SI"}

    return {
        "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
        "xaxis": {**axis(xlabel, logx), **({"tickmode": "linear", "dtick": 1} if integer_x else {})},
        "yaxis": axis(ylabel, logy),
        "legend": {"groupclick": "togglegroup", "itemclick": "toggle", "tracegroupgap": 6,
                   "title": {"text": "click: hide / show"}},
        "hovermode": "closest", "height": height, "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "font": {"family": FONT, "size": 12}, "template": "plotly_white",
    }


def to_json(fig) -> str:
    """The figure as JSON for a ``<script type="application/json">`` block (``</`` escaped)."""
    return fig.to_json().replace("</", "<\\/")


def _family_style(family: str) -> tuple[str, str]:
    colour, marker = FAMILY_STYLE.get(family, OTHER_FAMILY_STYLE)
    return colour, SYMBOLS.get(marker, "circle")


def _metric_label(lb: Leaderboard, m: str) -> str:
    label = metric_name_label(m, lb.metrics_meta)
    return f"{label} ({'higher' if lb.higher_is_better.get(m) else 'lower'} is better)"


def scatter(lb: Leaderboard, xcol: str, xlabel: str, title: str):
    """Accuracy (the leaderboard's first metric) against ``xcol`` (``flops`` or ``infer_seq_per_s``), one trace
    per family, marker area by parameters, floors as horizontal lines. None when no model has both numbers."""
    metric = sort_metric(lb.metrics)
    if metric is None:
        return None
    go = _go()
    t = lb.table
    ycol = f"{metric}_mean"
    trained = t[(t["kind"] != "floor") & t[xcol].apply(_finite) & t[ycol].apply(_finite) & (t[xcol] > 0)]
    if trained.empty:
        return None
    fig = go.Figure()
    pmax = max([p for p in trained["params"] if _finite(p)] or [1.0])
    for family, g in trained.groupby("family", sort=True):
        colour, symbol = _family_style(str(family))
        sizes = [8 + 22 * math.sqrt(p / pmax) if _finite(p) else 10 for p in g["params"]]
        custom = [[si(r["params"]), si(r["flops"]), si(r["infer_seq_per_s"]), r.get("rank")] for _, r in g.iterrows()]
        custom = [[c if not (isinstance(c, float) and math.isnan(c)) and c is not pd.NA else "–" for c in row]
                  for row in custom]
        fig.add_trace(go.Scatter(
            x=g[xcol].tolist(), y=g[ycol].tolist(), mode="markers", name=str(family), legendgroup=str(family),
            text=g["model"].tolist(), customdata=custom,
            marker={"color": colour, "symbol": symbol, "size": sizes, "opacity": 0.85,
                    "line": {"width": 1, "color": "white"}},
            hovertemplate=("<b>%{text}</b> (" + str(family) + ")<br>" + metric_name_label(metric, lb.metrics_meta)
                           + " %{y:.4g}<br>params %{customdata[0]} · FLOPs %{customdata[1]}<br>"
                           "throughput %{customdata[2]} seq/s · rank %{customdata[3]}<extra></extra>")))
    xs = trained[xcol].astype(float)
    x0, x1 = float(xs.min()) / 1.5, float(xs.max()) * 1.5
    floors = t[(t["kind"] == "floor") & t[ycol].apply(_finite)]
    for i, (_, r) in enumerate(floors.iterrows()):
        fig.add_trace(go.Scatter(
            x=[x0, x1], y=[r[ycol]] * 2, mode="lines", name=f"{r['model']} (floor)", legendgroup="floor",
            line={"color": FLOOR_COLOUR, "dash": FLOOR_DASH[i % len(FLOOR_DASH)], "width": 1.2},
            hovertemplate=f"<b>{r['model']}</b> (floor)<br>{metric.upper()} %{{y:.4g}}<extra></extra>"))
    fig.update_layout(**_layout(title, xlabel, _metric_label(lb, metric), logx=True))
    return fig


def _curve_traces(fig, lb: Leaderboard, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  ylabel_short: str) -> None:
    go = _go()
    styles = model_styles(lb)
    fam = dict(zip(lb.table["model"], lb.table["family"]))
    kind = dict(zip(lb.table["model"], lb.table["kind"]))
    order = [m for m in lb.table["model"] if m in curves]
    for model in sorted(order, key=lambda m: (kind.get(m) == "floor", str(fam.get(m)), order.index(m))):
        x, mean, std = curves[model]
        st = styles[model]
        floor = kind.get(model) == "floor"
        group = "floor" if floor else str(fam.get(model))
        dash = {"--": "dash", ":": "dot", "-.": "dashdot"}.get(st["ls"], "solid")
        fig.add_trace(go.Scatter(
            x=x.tolist(), y=mean.tolist(), mode="lines" if floor else "lines+markers", name=st["label"],
            legendgroup=group, legendgrouptitle={"text": group},
            line={"color": st["color"], "dash": dash, "width": 1.6},
            marker={"symbol": SYMBOLS.get(st["marker"] or "o", "circle"), "size": 5},
            error_y={"type": "data", "array": std.tolist(), "visible": bool(std.any()), "thickness": 1},
            hovertemplate=f"<b>{model}</b> ({group})<br>%{{x}}: {ylabel_short} %{{y:.4g}}<extra></extra>"))


def _few(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> bool:
    """Integer x ticks (epochs, frames) when there are few of them."""
    return max(len(c[0]) for c in curves.values()) <= 20


def horizon(lb: Leaderboard, metric: str):
    """``metric`` per predicted frame, one line per model (floors dashed). None without per-frame data."""
    if metric not in lb.higher_is_better:
        return None

    def pf(rec):
        vals = (rec.get("per_frame") or {}).get(metric)
        return (np.arange(1, len(vals) + 1), vals) if isinstance(vals, list) and vals else None

    curves = _per_model_curves(lb, pf)
    if not curves:
        return None
    go = _go()
    fig = go.Figure()
    label = metric_name_label(metric, lb.metrics_meta)
    _curve_traces(fig, lb, curves, label)
    fig.update_layout(**_layout(f"{label} per predicted frame", "predicted frame (lead time)",
                                _metric_label(lb, metric), height=460, integer_x=_few(curves)))
    return fig


def training(lb: Leaderboard, key: str):
    """One history quantity (``train_loss`` or ``val_mse``) per epoch, one line per model."""
    ylabel, title = next((y, t) for k, y, t in TRAIN_CURVES if k == key)

    def hist(rec):
        rows = [h for h in rec.get("history") or [] if isinstance(h, dict)
                and _finite(h.get("epoch")) and _finite(h.get(key))]
        return (np.array([h["epoch"] for h in rows]), [h[key] for h in rows]) if rows else None

    curves = _per_model_curves(lb, hist)
    if not curves:
        return None
    go = _go()
    fig = go.Figure()
    _curve_traces(fig, lb, curves, title)
    vals = np.concatenate([c[1] for c in curves.values()])
    vals = vals[np.isfinite(vals)]
    logy = bool(len(vals) and (vals > 0).all() and vals.max() / vals.min() > 10)
    fig.update_layout(**_layout(title, "epoch", ylabel.split("\n")[0], logy=logy, height=460,
                                integer_x=_few(curves)))
    return fig


def model_lines(title: str, xlabel: str, ylabel: str, series: list[dict[str, Any]]):
    """A model page's line figure: ``series`` = [{name, group, x, y, dash?, color?}] (one per run or floor)."""
    if not series:
        return None
    go = _go()
    fig = go.Figure()
    for s in series:
        fig.add_trace(go.Scatter(
            x=list(s["x"]), y=list(s["y"]), mode="lines+markers" if not s.get("dash") else "lines", name=s["name"],
            legendgroup=s["group"], legendgrouptitle={"text": s["group"]},
            line={"dash": s.get("dash") or "solid", "width": 1.6, **({"color": s["color"]} if s.get("color") else {})},
            marker={"size": 5},
            hovertemplate=f"<b>{s['name']}</b><br>{xlabel} %{{x}}: %{{y:.4g}}<extra></extra>"))
    xs = [x for s in series for x in s["x"]]
    fig.update_layout(**_layout(title, xlabel, ylabel, height=380, integer_x=bool(xs) and max(xs) <= 20))
    return fig


def spec_dict(fig) -> dict[str, Any]:
    return json.loads(fig.to_json())
