"""Horizon extrapolation in the report: the leaderboards of ``stbench eval --t-out N`` records (one per dataset,
preset, budget and horizon; :mod:`stbench.horizon`) drawn as error per lead time with 95% intervals, the trained
horizon marked, and a table of each model's error within and beyond the trained horizon.

Intervals: every test sequence's value at every lead time is stored beside the record (``<record>.frames.npz``);
a model's seeds are averaged per sequence, then the mean over sequences gets a percentile bootstrap interval
(:func:`stbench.report.tables.bootstrap_ci`), per lead time for the curve and per segment (lead times 1..T_trained,
T_trained+1..N: each sequence's mean over the segment) for the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stbench.report.cells import label as metric_name
from stbench.report.paired import CI_LEVEL
from stbench.report.tables import Leaderboard, bootstrap_ci, sort_metric


@dataclass
class Extrapolation:
    board: Leaderboard
    metric: str
    trained: int  # the trained horizon (T_out of the cards)
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # model -> (mean, lo, hi) per lead time
    table: pd.DataFrame  # model, family, n, within, within_lo, within_hi, beyond, beyond_lo, beyond_hi, ratio

    @property
    def title(self) -> str:
        lb = self.board
        budget = f", budget {lb.budget}" if lb.budget else ""
        return f"Horizon extrapolation: {lb.dataset}, preset {lb.preset}{budget}, rolled out to {lb.horizon} frames " \
               f"(trained {self.trained})"


def frame_values(lb: Leaderboard, model: str, metric: str) -> np.ndarray | None:
    """(sequences, lead times) values of ``model`` in ``lb``, its seeds averaged per sequence; None if missing."""
    arrays = []
    for path, rec in zip(lb.runs.loc[lb.runs["model"] == model, "path"], lb.runs.loc[lb.runs["model"] == model,
                                                                                       "record"]):
        name = (rec.get("horizon") or {}).get("frames_file")
        try:
            with np.load(Path(path).parent / str(name), allow_pickle=False) as z:
                arrays.append(z[metric])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if not arrays or len({a.shape for a in arrays}) != 1:
        return None
    return np.mean(arrays, axis=0)


def _segment(v: np.ndarray) -> tuple[float, float, float]:
    per_seq = v.mean(axis=1)
    lo, hi = bootstrap_ci(per_seq)
    return float(per_seq.mean()), lo, hi


def extrapolations(boards: list[Leaderboard]) -> list[Extrapolation]:
    return [e for lb in boards if lb.horizon and not lb.table.empty and (e := _extrapolation(lb)) is not None]


def _extrapolation(lb: Leaderboard) -> Extrapolation | None:
    metric = sort_metric(lb.metrics)
    trained = lb.trained_t_out
    if metric is None or not trained:
        return None
    curves, rows = {}, []
    for _, r in lb.table.iterrows():
        v = frame_values(lb, r["model"], metric)
        if v is None:
            continue
        cis = np.array([bootstrap_ci(v[:, t]) for t in range(v.shape[1])])  # (T, 2)
        curves[r["model"]] = (v.mean(axis=0), cis[:, 0], cis[:, 1])
        within, beyond = _segment(v[:, :trained]), _segment(v[:, trained:]) if v.shape[1] > trained else (math.nan,) * 3
        rows.append({"model": r["model"], "family": r["family"], "n": int(r["n"]), "within": within[0],
                     "within_lo": within[1], "within_hi": within[2], "beyond": beyond[0], "beyond_lo": beyond[1],
                     "beyond_hi": beyond[2], "ratio": beyond[0] / within[0] if within[0] else math.nan})
    if not curves:
        return None
    return Extrapolation(lb, metric, int(trained), curves, pd.DataFrame(rows))


# ---------------------------------------------------------------------------------------------
def extrapolation_plot(ex: Extrapolation, out_dir: Path) -> Any:
    """Error per lead time, one line per model (family colours) with its 95% band; the trained horizon marked."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from stbench.report.compute import _save_study
    from stbench.report.plots import FAMILY_STYLE, MARKERS, OTHER_FAMILY_STYLE, RC, PlotFile

    with mpl.rc_context(RC):
        fig = Figure(figsize=(7.2, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        k: dict[str, int] = {}
        for _, r in ex.table.iterrows():
            mean, lo, hi = ex.curves[r["model"]]
            colour = FAMILY_STYLE.get(r["family"], OTHER_FAMILY_STYLE)[0]
            k[r["family"]] = k.get(r["family"], -1) + 1
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, color=colour, marker=MARKERS[k[r["family"]] % len(MARKERS)], ms=3, lw=1.2,
                    markevery=max(1, len(x) // 10), label=f"{r['model']} ({r['family']})")
            ax.fill_between(x, lo, hi, color=colour, alpha=0.12, lw=0)
        ax.axvline(ex.trained + 0.5, color="#333333", ls="--", lw=1)
        ax.annotate(f"trained horizon ({ex.trained})", (ex.trained + 0.5, 1), xycoords=("data", "axes fraction"),
                    xytext=(4, -4), textcoords="offset points", fontsize=7, va="top")
        ax.set_xlabel("lead time (predicted frame)")
        ax.set_ylabel(f"test {metric_name(ex.metric)} per frame, {CI_LEVEL:.0%} interval")
        ax.set_title(ex.title.replace("Horizon extrapolation: ", ""), loc="left", fontsize=9, fontweight="bold")
        lows = np.concatenate([c[0] for c in ex.curves.values()])
        if (lows > 0).all() and lows.max() / lows.min() > 20:
            ax.set_yscale("log")
        fig.legend(loc="outside lower center", fontsize=7, ncol=min(4, len(ex.curves)))
        png, svg = _save_study(fig, out_dir, f"extrapolation_{ex.board.slug}")
    return PlotFile("extrapolation", f"{metric_name(ex.metric)} per lead time beyond the trained horizon", png, svg)


def _num(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}"


def extrapolation_rows(ex: Extrapolation) -> tuple[list[str], list[list[str]]]:
    m, n, ci = metric_name(ex.metric), ex.board.horizon, f"{CI_LEVEL:.0%} CI"
    head = ["model", "family", "seeds", f"{m} lead 1-{ex.trained} [{ci}]", f"{m} lead {ex.trained + 1}-{n} [{ci}]",
            "beyond / within"]
    rows = [[r["model"], r["family"], str(r["n"]), f"{_num(r['within'])} [{_num(r['within_lo'])}, "
             f"{_num(r['within_hi'])}]", f"{_num(r['beyond'])} [{_num(r['beyond_lo'])}, {_num(r['beyond_hi'])}]",
             _num(r["ratio"])] for _, r in ex.table.iterrows()]
    return head, rows


NOTE = ("Each model was trained to predict {t} frames and rolled out to {n} (stbench eval --t-out): parallel models "
        "feed their predicted frames back through the whole model in blocks (as published), recurrent ones keep "
        "stepping. The test sequences are the trained test set continued (same inputs; the first {t} targets "
        "unchanged). Intervals: {ci:.0%} percentile bootstrap of the mean over test sequences (seeds averaged per "
        "sequence), per lead time (bands) and per segment (table). This board is never ranked with trained rows.")


def extrapolation_markdown(ex: Extrapolation, plot: Any, rel_to: Path) -> str:
    from stbench.report.writers import md_escape

    head, rows = extrapolation_rows(ex)
    return "\n".join([f"# {ex.title}", "", f"![{plot.title}]({plot.png.relative_to(rel_to).as_posix()})", "",
                      "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows), "",
                      md_escape(NOTE.format(t=ex.trained, n=ex.board.horizon, ci=CI_LEVEL)), ""])


def extrapolation_html(ex: Extrapolation, plot: Any) -> str:
    import base64
    from html import escape

    head, rows = extrapolation_rows(ex)
    data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
    return "\n".join([
        f'<section id="extrapolation-{escape(ex.board.slug)}"><h2>{escape(ex.title)}</h2>',
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(plot.title)}"><figcaption>{escape(plot.title)} '
        f"(SVG: {escape(plot.svg.name)})</figcaption></figure>",
        '<div class="scroll"><table><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead>"
        "<tbody>" + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</tbody></table></div>",
        f'<ul class="notes"><li>{escape(NOTE.format(t=ex.trained, n=ex.board.horizon, ci=CI_LEVEL))}</li></ul>'
        "</section>"])
