"""Leaderboard -> a grid of display strings (human units, mean ± std, arrows) shared by every output format.

The writers (terminal, Markdown, LaTeX, HTML) only decide how a cell marked ``best`` or a floor row
looks; what each cell says is decided here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from stbench.console import duration as _duration
from stbench.metrics import DEFAULT_METRICS
from stbench.report.tables import Leaderboard, definition, higher_is_better

DASH = "–"
UP, DOWN = "↑", "↓"


def missing(x: object) -> bool:
    """None, pandas' NA or a float NaN: a cell with no value (shown as :data:`DASH`)."""
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def si(x: float | None, digits: int = 3) -> str:
    """16.0e9 -> '16.0G', 44.7e6 -> '44.7M', 283.4 -> '283' (``digits`` significant digits)."""
    if missing(x):
        return DASH
    if not math.isfinite(x):
        return str(x)
    v, suffix = x, ""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v, suffix = x / div, unit
            break
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v)))) if v else 0
    return f"{v:.{decimals}f}{suffix}"


def duration(seconds: float | None) -> str:
    """:func:`stbench.console.duration` ('5m 12s'), or :data:`DASH` when there is no value."""
    return DASH if missing(seconds) else _duration(seconds)


def metric_decimals(metric: str, value: float) -> int:
    """SSIM 4 decimals; other metrics 2 decimals at >= 1, else 4 significant digits."""
    if metric.startswith("ssim"):
        return 4
    if missing(value) or value == 0 or abs(value) >= 1:
        return 2
    return 3 - int(math.floor(math.log10(abs(value))))


def metric_text(metric: str, mean: float, std: float | None = None, ci: tuple[float, float] | None = None) -> str:
    """'24.60', '24.60 ± 0.31' (seeds), '24.60 [24.1, 25.2]' (95% interval over test sequences)."""
    if missing(mean):
        return DASH
    d = metric_decimals(metric, mean)
    text = f"{mean:.{d}f}" if missing(std) else f"{mean:.{d}f} ± {std:.{d}f}"
    if ci is not None and not (missing(ci[0]) or missing(ci[1])):
        text += f" [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"
    return text


def label(metric: str, meta: dict | None = None) -> str:
    """A metric's label as the records' ``metrics_meta`` state it, else as its registered :class:`MetricDef`
    gives it, else its name upper-cased (a metric nobody here defines)."""
    stated = (meta or {}).get(metric, {}).get("label")
    if stated:
        return stated
    d = definition(metric)
    return d.label if d else metric.upper()


def metric_label(metric: str, higher_is_better: bool, meta: dict | None = None) -> str:
    """:func:`label` with ↑ / ↓."""
    return f"{label(metric, meta)}{UP if higher_is_better else DOWN}"


@dataclass
class Column:
    key: str
    label: str
    align: str = "right"  # "left" | "right"
    metric: str | None = None
    short: str | None = None  # a narrower header for the terminal and LaTeX

    @property
    def term_label(self) -> str:
        return self.short or self.label


@dataclass
class Cell:
    text: str
    best: bool = False


@dataclass
class Grid:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    floor: list[bool] = field(default_factory=list)  # per row: a floor (shown apart, never best)

    def without(self, key: str) -> Grid:
        keep = [i for i, c in enumerate(self.columns) if c.key != key]
        return Grid([self.columns[i] for i in keep], [[r[i] for i in keep] for r in self.rows], list(self.floor))


def grid(lb: Leaderboard) -> Grid:
    table = lb.table
    dev = f", {lb.throughput_device}" if lb.throughput_device else ""
    cols = [Column("rank", "#"), Column("model", "Model", "left"), Column("family", "Family", "left"),
            Column("arch", "Encoder + temporal", "left"), Column("params", "Params"), Column("flops", "FLOPs"),
            Column("throughput", f"Throughput{UP} (seq/s{dev})", short=f"seq/s{UP}" + (f" ({dev[2:]})" if dev else ""))]
    for m in lb.metrics:
        cols.append(Column(m, metric_label(m, lb.higher_is_better[m], lb.metrics_meta), metric=m))
        if f"{m}_diff" in table.columns and table[f"{m}_diff"].notna().any():
            cols.append(Column(f"{m}_diff", f"Δ {metric_label(m, lb.higher_is_better[m], lb.metrics_meta)} vs best "
                                            "(paired)", short="Δ best"))
        if f"{m}_published" in table.columns and m == "mse":
            cols.append(Column(f"{m}_published", f"{metric_label(m, lb.higher_is_better[m])} (published)"))
    cols += [Column("n", "n"), Column("samples", "Samples seen"), Column("pflops", "Train PFLOPs"),
             Column("tuning", "Tuning", "left"), Column("train_s", "Train time")]
    out = Grid(cols)
    for _, row in table.iterrows():
        floor = row["kind"] == "floor"
        cells = []
        for c in cols:
            if c.key == "rank":
                tie = "=" if bool(row.get("tied", False)) else ""
                cells.append(Cell(DASH if floor or missing(row["rank"]) else f"{int(row['rank'])}{tie}"))
            elif c.key == "model":
                cells.append(Cell(f"{row['model']} (floor)" if floor else _model_label(row)))
            elif c.key == "family":
                cells.append(Cell(str(row["family"])))
            elif c.key == "arch":
                enc, tmp = row.get("encoder", "-"), row.get("temporal", "-")
                cells.append(Cell(DASH if floor or (enc in ("-", None) and tmp in ("-", None)) else f"{enc} + {tmp}"))
            elif c.key == "params":
                cells.append(Cell(si(row.get("params"))))
            elif c.key == "flops":
                cells.append(Cell(si(row.get("flops"))))
            elif c.key == "throughput":
                cells.append(Cell(si(row.get("infer_seq_per_s"))))
            elif c.metric:
                ci = (row.get(f"{c.metric}_ci_lo"), row.get(f"{c.metric}_ci_hi"))
                cells.append(Cell(metric_text(c.metric, row[f"{c.metric}_mean"], row[f"{c.metric}_std"], ci),
                                  best=bool(row[f"best_{c.metric}"])))
            elif c.key.endswith("_diff"):
                m = c.key[: -len("_diff")]
                d = row.get(c.key)
                ci = (row.get(f"{m}_diff_lo"), row.get(f"{m}_diff_hi"))
                k = metric_decimals(m, row[f"{m}_mean"])  # the metric's own decimals, not the difference's
                text = "best" if d == 0 else f"{d:+.{k}f} [{ci[0]:.{k}f}, {ci[1]:.{k}f}]"
                cells.append(Cell(DASH if floor or missing(d) else text))
            elif c.key == "samples":
                cells.append(Cell(DASH if floor else si(row.get("samples_seen"))))
            elif c.key == "pflops":
                f = row.get("train_flops")
                cells.append(Cell(DASH if floor or missing(f) else f"{f / 1e15:.3g}"))
            elif c.key == "tuning":
                cells.append(Cell(DASH if floor or missing(row.get("tuning")) else str(row["tuning"])))
            elif c.key.endswith("_published"):
                cells.append(Cell(metric_text(c.key[: -len("_published")], row[c.key])))
            elif c.key == "n":
                cells.append(Cell(str(int(row["n"]))))
            elif c.key == "train_s":
                cells.append(Cell(si(None) if floor or row["kind"] == "evaluated" else duration(row.get("train_s"))))
        out.rows.append(cells)
        out.floor.append(bool(floor))
    return out


def _model_label(row: pd.Series) -> str:
    """The model's name; an evaluated checkpoint (``stbench eval``) says so and names its file."""
    if row.get("kind") == "evaluated":
        return f"{row['model']} (evaluated: {row.get('checkpoint') or 'checkpoint'})"
    return str(row["model"])


def published_grid(lb: Leaderboard) -> Grid | None:
    """The paper preset's published reference numbers as their own grid (never mixed with measured rows)."""
    if lb.published is None or lb.published.empty:
        return None
    cols = [Column("model", "Model", "left"), Column("source", "Source", "left"), Column("epochs", "Epochs"),
            Column("params_m", "Params"), Column("flops_g", "FLOPs"), Column("fps", "FPS (as published)")]
    cols += [Column(m, metric_label(m, lb.higher_is_better.get(m, higher_is_better(m, lb.metrics_meta))), metric=m)
             for m in DEFAULT_METRICS]
    out = Grid(cols)
    for _, r in lb.published.iterrows():
        out.rows.append([
            Cell(str(r["model"])), Cell(str(r["source"])),
            Cell(DASH if missing(r["epochs"]) else str(int(r["epochs"]))),
            Cell(DASH if missing(r["params_m"]) else f"{r['params_m']:.1f}M"),
            Cell(DASH if missing(r["flops_g"]) else f"{r['flops_g']:.1f}G"),
            Cell(DASH if missing(r["fps"]) else f"{r['fps']:.0f}"),
            *[Cell(metric_text(m, r[m])) for m in DEFAULT_METRICS],
        ])
        out.floor.append(False)
    return out


def unfinished_lines(lb: Leaderboard) -> list[str]:
    """'predrnn seed 0: failed — non-finite loss at epoch 3' for each run that did not complete."""
    lines = []
    for _, r in lb.unfinished.iterrows():
        reason = r["reason"] if isinstance(r["reason"], str) and r["reason"] else (
            "still running, or stopped without a final record" if r["status"] == "running" else "no reason recorded")
        lines.append(f"{r['model']} seed {r['seed']}: {r['status']} — {reason}")
    return lines
