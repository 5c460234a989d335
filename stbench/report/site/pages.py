"""The site's pages: index, one page per leaderboard, one per model. Cell text comes from
:mod:`stbench.report.cells` (as in every other format); sort keys are the leaderboard's raw numbers."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stbench import __version__
from stbench.report import cells
from stbench.report.cells import DASH, Grid, grid, si
from stbench.report.cells import missing as _missing
from stbench.report.plots import HORIZON_METRICS, PlotSet
from stbench.report.references import REFERENCE_FIELDS, DatasetReferences
from stbench.report.site import figures
from stbench.report.tables import Leaderboard, sort_metric
from stbench.report.writers import board_notes_html, title

# leaderboard column key -> the table column its sort key comes from
SORT_KEYS = {"rank": "rank", "model": "model", "family": "family", "params": "params", "flops": "flops",
             "throughput": "infer_seq_per_s", "n": "n", "train_s": "train_s", "samples": "samples_seen",
             "pflops": "train_flops"}
KEEP = {"rank", "model", "family", "arch"}  # never folded into the "same for every row" line
FAMILIES = ("parallel", "recurrent", "floor")


def safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in str(name))


def _attr(x: Any) -> str:
    """A sort key for ``data-v``: numbers as repr, text escaped, missing as empty."""
    if _missing(x):
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(int(x))
    if isinstance(x, (int, float, np.integer, np.floating)):
        return repr(float(x)) if math.isfinite(float(x)) else ""
    return escape(str(x), quote=True)


def _fam_badge(family: Any) -> str:
    f = str(family)
    return f'<span class="fam {f if f in FAMILIES else "other"}">{escape(f)}</span>'


def budget_label(record: dict[str, Any]) -> str | None:
    """The record's training budget in words (``samples=4000``), read defensively: older records have none."""
    b = record.get("budget") if isinstance(record, dict) else None
    if not isinstance(b, dict):
        return None
    if b.get("label"):
        return str(b["label"])
    if b.get("kind") is not None and b.get("value") is not None:
        v = b["value"]
        return f"{b['kind']}={si(v) if isinstance(v, (int, float)) else v}"
    return None


def _page(page_title: str, body: str, root: str, nav: str) -> str:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(page_title)} · stbench</title>\n"
            f"<link rel=\"stylesheet\" href=\"{root}assets/site.css\">\n"
            f"<script src=\"{root}assets/plotly.min.js\" defer></script>\n"
            f"<script src=\"{root}assets/site.js\" defer></script>\n</head>\n<body>\n"
            f"<header class=\"top\"><a class=\"brand\" href=\"{root}index.html\">stbench report</a><nav>{nav}</nav>"
            "</header>\n<main>\n" + body + "\n</main>\n"
            f"<footer class=\"meta\"><p>Generated {now} by stbench {escape(__version__)}. Every asset is local: "
            "this site works offline.</p></footer>\n</body>\n</html>\n")


def _plain_table(g: Grid, cls: str = "plain") -> str:
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f'<th class="{c.align[0]}">{escape(c.label)}</th>' for c in g.columns]
    out.append("</tr></thead><tbody>")
    for row in g.rows:
        out.append("<tr>" + "".join(f'<td class="{c.align[0]}">{escape(x.text)}</td>'
                                    for c, x in zip(g.columns, row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _rows_table(head: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A simple table of already escaped cells; ``align``: one 'l' / 'r' per column."""
    align = align or "l" * len(head)
    out = ['<table class="plain"><thead><tr>']
    out += [f'<th class="{a}">{h}</th>' for a, h in zip(align, head)]
    out.append("</tr></thead><tbody>")
    out += ["<tr>" + "".join(f'<td class="{a}">{c}</td>' for a, c in zip(align, r)) + "</tr>" for r in rows]
    out.append("</tbody></table>")
    return "".join(out)


def _metric_cell(text: str) -> str:
    """'24.60 ± 0.31 [24.1, 25.2]' -> the value, and the interval on its own small line (the column stays narrow)."""
    if " [" in text:
        value, ci = text.split(" [", 1)
        return f'{escape(value)}<span class="ci">[{escape(ci)}</span>'
    return escape(text)


class SiteBuilder:
    def __init__(self, boards: list[Leaderboard], plot_sets: dict[tuple[str, str], PlotSet], out_dir: Path, *,
                 references: Callable[[str], DatasetReferences], warnings: list[str], source: str,
                 n_records: int) -> None:
        self.boards, self.plot_sets, self.out = boards, plot_sets, Path(out_dir)
        self.references, self.warnings, self.source, self.n_records = references, warnings, source, n_records
        self.files: list[Path] = []
        self.record_links: dict[str, str] = {}  # record path -> site-relative path of its copy
        self.n_fig = 0
        trained = [m for lb in boards for m, k in zip(lb.table.get("model", []), lb.table.get("kind", []))
                   if k != "floor"]
        self.models = list(dict.fromkeys(trained))
        self.combined: list[tuple[Leaderboard, list[Leaderboard]]] = []  # see _combined

    # -- files ------------------------------------------------------------------------------------
    def _write(self, rel: str, text: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files.append(path)

    def _copy_records(self) -> None:
        """Every ranked or unfinished run's record JSON into records/<dataset>/<preset>/ (the pages link them)."""
        for lb in self.boards:
            paths = [*lb.runs.get("path", []), *lb.unfinished.get("path", [])]
            for p in paths:
                src = Path(p)
                rel = f"records/{safe(lb.dataset)}/{safe(lb.preset)}/{src.name}"
                if src.is_file() and p not in self.record_links:
                    dst = self.out / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    self.files.append(Path(shutil.copyfile(src, dst)))
                    self.record_links[p] = rel

    def _fallback(self, lb: Leaderboard, kind: str) -> str | None:
        """The static PNG of a plot kind, copied to static/ (None when it was not drawn)."""
        ps = self.plot_sets.get(lb.key) if any(b is lb for b in self.boards) else None
        pf = next((f for f in (ps.files if ps else []) if f.kind == kind), None)
        if pf is None or not pf.png.is_file():
            return None
        rel = f"static/{lb.slug}/{pf.png.name}"
        dst = self.out / rel
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pf.png, dst)
            self.files.append(dst)
        return rel

    def _figure(self, fig, caption: str, root: str, fallback: str | None = None, wide: bool = False) -> str:
        if fig is None:
            return ""
        self.n_fig += 1
        fid = f"fig{self.n_fig}"
        img = (f'<img class="fallback" src="{root}{fallback}" alt="{escape(caption)} (static)" loading="lazy">'
               if fallback else "")
        link = f' Static version: <a href="{root}{fallback}">PNG</a>.' if fallback else ""
        klass = "plotbox wide" if wide else "plotbox"
        return (f'<figure class="{klass}"><div class="plot" id="{fid}" data-spec="{fid}-data"></div>{img}'
                f"<figcaption>{escape(caption)}{link}</figcaption></figure>\n"
                f'<script type="application/json" id="{fid}-data">{figures.to_json(fig)}</script>')

    def _nav(self, root: str) -> str:
        """One link per (dataset, preset): its all-budgets page where it has one, else each board."""
        shown = {(lb.dataset, lb.preset) for lb, _ in self.combined}
        links = [f'<a href="{root}{lb.slug}.html">{escape(lb.dataset)} · {escape(lb.preset)}</a>'
                 for lb, _ in self.combined]
        links += [f'<a href="{root}{lb.slug}.html">{escape(lb.dataset)} · {escape(lb.preset)}'
                  + (f" · {escape(lb.budget or 'unknown')}" if lb.budget_split else "") + "</a>"
                  for lb in self.boards if (lb.dataset, lb.preset) not in shown]
        return " ".join(links)

    # -- leaderboard pages ------------------------------------------------------------------------
    def _budgets(self, lb: Leaderboard) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        labels = lb.runs["budget"] if "budget" in lb.runs else [None] * len(lb.runs)
        for model, rec, col in zip(lb.runs.get("model", []), lb.runs.get("record", []), labels):
            label = col if isinstance(col, str) and col else budget_label(rec)
            if label:
                out.setdefault(model, [])
                if label not in out[model]:
                    out[model].append(label)
        return out

    def _leaderboard_table(self, lb: Leaderboard, table_id: str, budgets: dict[str, list[str]]) -> str:
        """The sortable table, at the page's width: a column that says the same for every trained row (n = 1,
        one budget, ...) is said once above the table instead of in every row, so nothing is hidden at 1280 px."""
        g = grid(lb)
        t = lb.table
        row_budgets = [[r["budget"]] if isinstance(r.get("budget"), str) else budgets.get(str(r["model"]), [])
                       for _, r in t.iterrows()]
        trained = [i for i, f in enumerate(g.floor) if not f]
        same: list[str] = []
        keep = []
        for j, c in enumerate(g.columns):
            texts = {g.rows[i][j].text for i in trained}
            if trained and len(texts) == 1 and c.key not in KEEP and not c.metric:
                same.append(f"{c.label}: {texts.pop()}")
            else:
                keep.append(j)
        labels = {"|".join(b) for i, b in enumerate(row_budgets) if i in trained}
        show_budget = len(labels) > 1
        if not show_budget and labels and next(iter(labels)):
            same.append(f"Budget: {next(iter(labels))}")
        cols = [g.columns[j] for j in keep]
        out = []
        if same:
            out.append(f'<p class="same">Same for every ranked row: {escape(" · ".join(same))}.</p>')
        out.append(f'<table class="lb" id="{table_id}"><thead><tr>')
        for c in cols:
            out.append(f'<th class="{c.align[0]}" data-key="{escape(c.key)}">{escape(c.label)}'
                       '<span class="arrow">↕</span></th>')
        out.append("</tr></thead><tbody>")
        for i, ((_, row), all_cells, floor) in enumerate(zip(t.iterrows(), g.rows, g.floor)):
            cells_ = [all_cells[j] for j in keep]
            model = str(row["model"])
            kind = str(row["kind"])
            fam = str(row["family"])
            b = row_budgets[i]
            out.append(f'<tr data-order="{i}" data-model="{escape(model, quote=True)}" data-family="{escape(fam)}" '
                       f'data-kind="{escape(kind)}" data-budget="{escape("|".join(b), quote=True)}"'
                       + (' class="floor"' if floor else "") + ">")
            for c, cell in zip(cols, cells_):
                if c.metric:
                    v = row.get(f"{c.metric}_mean")
                elif c.key.endswith("_published"):
                    v = row.get(c.key)
                elif c.key == "arch":
                    v = cell.text
                else:
                    v = row.get(SORT_KEYS.get(c.key, c.key))
                klass = c.align[0] + (" best" if cell.best else "")
                if c.key == "model" and kind != "floor":
                    text = f'<a href="models/{safe(model)}.html">{escape(cell.text)}</a>'
                    if show_budget and b:  # several budgets on one page: each row names its own
                        text += f'<span class="arch">{escape(", ".join(b))}</span>'
                elif c.key == "family":
                    text = _fam_badge(fam)
                else:
                    text = _metric_cell(cell.text)  # an interval goes on its own line
                out.append(f'<td class="{klass}" data-v="{_attr(v)}">{text}</td>')
            out.append("</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def _filters(self, lb: Leaderboard, table_id: str, budgets: dict[str, list[str]]) -> str:
        def select(name: str, label: str, values: list[str]) -> str:
            opts = "".join(f'<option value="{escape(v, quote=True)}">{escape(v)}</option>' for v in values)
            return f'<label>{label} <select name="{name}"><option value="">all</option>{opts}</select></label>'

        fams = sorted({str(f) for f in lb.table["family"]})
        kinds = sorted({str(k) for k in lb.table["kind"]})
        all_budgets = sorted({b for bs in budgets.values() for b in bs})
        parts = [f'<form class="filters" data-for="{table_id}" role="search">',
                 '<label>Model <input type="search" name="q" placeholder="search model names"></label>',
                 select("family", "Family", fams), select("kind", "Kind", kinds)]
        if all_budgets:
            parts.append(select("budget", "Budget", all_budgets))
        parts.append('<span class="count"></span></form>')
        return "".join(parts)

    def _leaderboard_page(self, lb: Leaderboard, parts: list[Leaderboard] | None = None) -> None:
        """One leaderboard's page; ``parts``: ``lb`` is the per-budget boards of one (dataset, preset) shown together,
        each row keeping the rank it has within its own budget."""
        root = ""
        budgets = self._budgets(lb)
        table_id = f"lb-{lb.slug}"
        heading = f"{title(lb)}, all budgets" if parts else title(lb)
        body = [f"<h1>{escape(heading)}</h1>"]
        if parts:
            links = ", ".join(f'<a href="{p.slug}.html">{escape(p.budget or "unknown")}</a>' for p in parts)
            body.append(f'<p class="warn">These runs had {len(parts)} different training budgets. They are ranked '
                        "separately, never together: # is the rank within the row's own budget, no cell is marked "
                        "best across budgets, and sorting by a column lines up runs that trained for different "
                        f"amounts. One leaderboard per budget: {links}.</p>")
        if lb.provenance:
            body.append(f'<p class="prov">{escape(lb.provenance)}</p>')
        if lb.table.empty:
            body.append("<p>No completed run.</p>")
        else:
            body.append("<p class=\"meta\">Click a column header to sort (again to reverse); the filters narrow the "
                        "rows and the plots below. Model names open the model's page.</p>")
            body.append(self._filters(lb, table_id, budgets))
            body.append(self._leaderboard_table(lb, table_id, budgets))
        body += board_notes_html(lb, "h2", _plain_table)
        if not lb.table.empty:
            body.append("<h2>Plots</h2><p class=\"meta\">Hover a point or line for its model and numbers; click a "
                        "legend entry to hide or show it (a family's title hides the whole family); drag to zoom, "
                        "double-click to reset.</p>")
            figs = [
                (figures.scatter(lb, "flops", "FLOPs per sequence (fvcore, log scale)", "Accuracy vs FLOPs"),
                 "Accuracy vs FLOPs; marker area = parameters; floors as dashed lines.", "acc_vs_flops"),
                (figures.scatter(lb, "infer_seq_per_s", "inference throughput (sequences/s, log scale)",
                                 "Accuracy vs measured throughput"),
                 "Accuracy vs measured inference throughput (see the throughput note above).", "acc_vs_throughput"),
                *[(figures.horizon(lb, m), f"{cells.label(m, lb.metrics_meta)} per predicted frame (lead time), "
                   "mean over the test set.", "horizon") for m in HORIZON_METRICS],
                (figures.training(lb, "train_loss"), "Training objective per epoch.", "training_curves"),
                (figures.training(lb, "val_mse"), "Validation MSE per epoch.", "training_curves"),
            ]
            many = len(lb.table) > 8  # line plots of many models get the page's full width for their legend
            body.append('<div class="plots">' + "\n".join(
                self._figure(f, cap, root, self._fallback(lb, kind), wide=many and kind in ("horizon",
                                                                                            "training_curves"))
                for f, cap, kind in figs if f is not None) + "</div>")
            ex = self._fallback(lb, "examples")
            if ex:
                body.append(f'<h3>Example predictions</h3><img class="examples" src="{ex}" '
                            'alt="inputs, ground truth and each model\'s prediction">')
            ps = self.plot_sets.get(lb.key)
            if ps and ps.notes:
                body.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in ps.notes) + "</ul>")
        self._write(f"{lb.slug}.html", _page(heading, "\n".join(body), root, self._nav(root)))

    # -- model pages ------------------------------------------------------------------------------
    def _examples_png(self, model: str, lb: Leaderboard) -> str | None:
        """inputs / ground truth / prediction of the model's first seed with examples (up to 2 sequences)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from stbench.report.plots import _load_examples, _mosaic, _to_display

        runs = lb.runs[(lb.runs["model"] == model) & lb.runs["examples_file"].notna()].sort_values("seed")
        for _, run in runs.iterrows():
            arrays, _problem = _load_examples(run["examples_file"])
            if arrays is None:
                continue
            n = min(2, arrays["targets"].shape[0])
            ncols = max(arrays["inputs"].shape[1], arrays["targets"].shape[1])
            rows, labels = [], []
            for s in range(n):
                for key, label in (("inputs", "input"), ("targets", "truth"), ("preds", model)):
                    rows.append(_to_display(arrays[key][s]))
                    labels.append(f"seq {s}: {label}")
            img = _mosaic(rows, ncols, pad=max(1, arrays["targets"].shape[3] // 16))
            h, w = img.shape[:2]
            fig = Figure(figsize=(8.0, 8.0 * h / w + 0.3), layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.subplots()
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            fh = arrays["targets"].shape[3]
            pad = max(1, fh // 16)
            ax.set_yticks([r * (fh + pad) + fh / 2 for r in range(len(labels))], labels, fontsize=7)
            ax.set_xticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            rel = f"models/{safe(model)}__{lb.slug}_examples.png"
            (self.out / "models").mkdir(parents=True, exist_ok=True)
            fig.savefig(self.out / rel, dpi=110)
            self.files.append(self.out / rel)
            return rel
        return None

    def _weights(self, record_path: str, root: str) -> str:
        """The kept weights beside a record (stbench.weights: ``<record>.safetensors`` + ``.card.json``): the card
        is copied into the site and linked; the weights file is named, not copied (megabytes; it stays with the
        records)."""
        src = Path(record_path)
        weights, card = src.with_suffix(".safetensors"), src.with_suffix(".card.json")
        if not weights.is_file():
            return ("not kept beside the record (a run from before stbench kept weights, or run with --no-weights); "
                    "re-run the recipe to get them")
        text = f"<code>{escape(weights.name)}</code> ({si(weights.stat().st_size)}B) beside the record"
        rel = self.record_links.get(record_path)
        if card.is_file() and rel:
            dst = self.out / Path(rel).with_name(card.name)
            self.files.append(Path(shutil.copyfile(card, dst)))
            text += f'; model card: <a href="{root}{Path(rel).with_name(card.name).as_posix()}">{escape(card.name)}</a>'
        return text

    def _model_page(self, model: str) -> None:
        root = "../"
        here = [(lb, lb.table[lb.table["model"] == model].iloc[0]) for lb in self.boards
                if model in set(lb.table.get("model", []))]
        first = here[0][1]
        body = [f"<h1>{escape(model)} {_fam_badge(first['family'])}</h1>"]
        desc = _registry_description(model)
        arch = " + ".join(str(first.get(k, "-")) for k in ("encoder", "temporal", "decoder"))
        facts = [("Architecture", f"encoder + temporal module + decoder: <code>{escape(arch)}</code>"),
                 ("Family", escape(str(first["family"])) + (" (steps frame by frame)" if first["family"] == "recurrent"
                                                             else " (all frames at once)" if first["family"] ==
                                                             "parallel" else ""))]
        if desc:
            facts.insert(0, ("Published as", escape(desc)))
        body.append('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
        body += self._model_counts(model, here, root)
        body += self._model_equivalence(model, here, root)
        body += self._model_results(model, here, root)
        body += self._model_curves(model, here, root)
        body += self._model_examples(model, here, root)
        body += self._model_recipe(model, here, root)
        self._write(f"models/{safe(model)}.html", _page(model, "\n".join(body), root, self._nav(root)))

    def _model_counts(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """Counts: the records' profile at each preset's size beside the published paper configuration."""
        body: list[str] = []
        body.append("<h2>Counts</h2>")
        rows = []
        for lb, row in here:
            conv = next((c for c in lb.runs.loc[lb.runs["model"] == model, "flops_convention"].dropna()), None)
            rows.append([f"measured here: {escape(lb.dataset)}, preset {escape(lb.preset)}", escape(si(row["params"])),
                         escape(si(row["flops"])), escape(conv or DASH)])
        for dataset in dict.fromkeys(lb.dataset for lb, _ in here):
            n = paper_params(model, dataset)
            if n is not None:
                rows.append([f"stbench at the paper configuration ({escape(dataset)}; built here, not trained)",
                             escape(si(n)), DASH, "<code>stbench profile --preset paper</code> counts FLOPs"])
            for ref in self.references(dataset).by_model.get(model, []):
                if "params_m" in ref.values or "flops_g" in ref.values:
                    p, f = ref.values.get("params_m"), ref.values.get("flops_g")
                    rows.append([f"published ({escape(dataset)}): {escape(ref.source)}",
                                 f"{p:.1f}M" if p is not None else DASH, f"{f:.1f}G" if f is not None else DASH,
                                 "as published (paper configuration)"])
        body.append(_rows_table(["Source", "Params", "FLOPs", "FLOPs convention"], rows, "lrrl"))
        body.append('<p class="meta">Measured counts are of the architecture at each preset\'s size (a quick preset '
                    "is scaled down); published counts are of the paper configuration and compare with the "
                    "<code>paper</code> preset only.</p>")
        return body

    def _model_equivalence(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """Function equivalence with the reference code (stbench/interop/equivalence.json)."""
        from stbench.interop.equivalence import evidence_for

        body: list[str] = []
        body.append("<h2>Function equivalence with the reference code</h2>")
        ev = evidence_for(model)
        if not ev:
            body.append('<p><span class="badge none">not checked</span> No fixture written by a reference '
                        "implementation covers this model, so its predictions were not compared with one.</p>")
        else:
            status = [e.passed for e in ev]
            badge = ('<span class="badge ok">reproduces the reference</span>' if all(s is True for s in status) else
                     '<span class="badge fail">above the bar</span>' if any(s is False for s in status) else
                     '<span class="badge none">not measured</span>')
            erows = [[f"<code>{escape(e.fixture)}</code>", escape(e.reference), escape(e.frames),
                      escape(e.written_by), escape(DASH if e.max_abs_diff is None else f"{e.max_abs_diff:.2g}"),
                      escape(f"{e.tolerance:g}"),
                      {True: "pass", False: "FAIL", None: "not measured"}[e.passed]] for e in ev]
            body.append(f"<p>{badge} Same weights, same inputs: max |stbench − reference| over the whole "
                        "prediction, fp32 on CPU.</p>")
            body.append(_rows_table(["Fixture", "Reference", "T_in → T_out", "Written by", "max |diff|", "Bar",
                                     "Status"], erows, "lllllrl"))
            when = ev[0].measured_at
            body.append(f'<p class="meta">Measured {escape(when or "never")} with {escape(ev[0].measured_with or "?")} '
                        "by <code>python -m stbench.interop.equivalence</code> (stbench/interop/equivalence.json), "
                        "re-checked by tests/test_equivalence.py; how the fixtures were written: docs/protocol.md, "
                        "\"Interop\".</p>")
        return body

    def _model_results(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """Each leaderboard's measured row beside the published rows, and links to the run records."""
        body: list[str] = []
        body.append("<h2>Results</h2>")
        for lb, row in here:
            body.append(f'<h3><a href="{root}{lb.slug}.html">{escape(lb.dataset)} · preset {escape(lb.preset)}</a>'
                        "</h3>")
            head = ["", "Epochs", *[escape(cells.metric_label(m, lb.higher_is_better[m], lb.metrics_meta))
                                    for m in lb.metrics]]
            rank = DASH if _missing(row.get("rank")) else f"{int(row['rank'])}{'=' if row.get('tied') else ''}"
            mrow = [f"<strong>measured here</strong> (rank {rank} of {int((lb.table['kind'] != 'floor').sum())}, "
                    f"n = {int(row['n'])})", escape(DASH if _missing(row.get("epochs")) else str(int(row["epochs"])))]
            mrow += [_metric_cell(cells.metric_text(m, row[f"{m}_mean"], row.get(f"{m}_std"),
                                                    (row.get(f"{m}_ci_lo"), row.get(f"{m}_ci_hi"))))
                     for m in lb.metrics]
            prow = []
            for ref in self.references(lb.dataset).by_model.get(model, []):
                prow.append([f"published: {escape(ref.source)}", escape(str(ref.epochs or DASH)),
                             *[escape(cells.metric_text(m, ref.values.get(m, math.nan))) if m in REFERENCE_FIELDS
                               else DASH for m in lb.metrics]])
            body.append(_rows_table(head, [mrow, *prow], "lr" + "r" * len(lb.metrics)))
            if prow and lb.preset != "paper":
                body.append(f'<p class="meta">The published rows are of the paper configuration and its epochs, '
                            f"not of this {escape(lb.preset)} preset: they show where the architecture lands when "
                            "trained as published, not a comparable number.</p>")
            runs = lb.runs[lb.runs["model"] == model].sort_values("seed")
            links = []
            for _, r in runs.iterrows():
                rel = self.record_links.get(r["path"])
                label = f"seed {r['seed']}"
                links.append(f'<a href="{root}{rel}">{escape(label)}</a>' if rel else escape(label))
            if links:
                body.append(f"<p>Run records: {', '.join(links)}.</p>")
        return body

    def _model_curves(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """Training curves and per-lead-time errors (floors beside them)."""
        body: list[str] = []
        train_series, val_series, lead_series = [], [], []
        for lb, _row in here:
            where = f"{lb.dataset}/{lb.preset}"
            for _, r in lb.runs[lb.runs["model"] == model].sort_values("seed").iterrows():
                hist = [h for h in r["record"].get("history") or [] if isinstance(h, dict)]
                for key, series in (("train_loss", train_series), ("val_mse", val_series)):
                    pts = [(h["epoch"], h[key]) for h in hist if figures._finite(h.get(key))
                           and figures._finite(h.get("epoch"))]
                    if pts:
                        series.append({"name": f"{where} seed {r['seed']}", "group": where,
                                       "x": [p[0] for p in pts], "y": [p[1] for p in pts]})
                pf = (r["record"].get("per_frame") or {}).get("mse")
                if isinstance(pf, list) and pf:
                    lead_series.append({"name": f"{model} seed {r['seed']}", "group": where,
                                        "x": list(range(1, len(pf) + 1)), "y": pf})
            floors = lb.runs[lb.runs["kind"] == "floor"]
            for i, (_, r) in enumerate(floors.iterrows()):
                pf = (r["record"].get("per_frame") or {}).get("mse")
                if isinstance(pf, list) and pf and lead_series:
                    lead_series.append({"name": f"{r['model']} (floor)", "group": f"{where} floors",
                                        "x": list(range(1, len(pf) + 1)), "y": pf, "color": "#555555",
                                        "dash": figures.FLOOR_DASH[i % len(figures.FLOOR_DASH)]})
        figs = [
            (figures.model_lines("Training objective per epoch", "epoch", "training loss", train_series),
             "Training objective under training-time inputs, per epoch."),
            (figures.model_lines("Validation MSE per epoch", "epoch", "MSE per frame", val_series),
             "Validation MSE (the test metric's convention) per epoch."),
            (figures.model_lines("Test MSE per predicted frame", "predicted frame (lead time)", "MSE per frame",
                                 lead_series),
             "Per-lead-time error on the test set, beside the floors of the same leaderboard."),
        ]
        drawn = [self._figure(f, cap, root) for f, cap in figs if f is not None]
        if drawn:
            body.append("<h2>Training curves and per-lead-time errors</h2><div class=\"plots\">" + "\n".join(drawn)
                        + "</div>")
        return body

    def _model_examples(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """The example-prediction images of each leaderboard."""
        body: list[str] = []
        exs = [(lb, self._examples_png(model, lb)) for lb, _ in here]
        exs = [(lb, rel) for lb, rel in exs if rel]
        if exs:
            body.append("<h2>Example predictions</h2>")
            for lb, rel in exs:
                body.append(f"<h3>{escape(lb.dataset)} · {escape(lb.preset)}</h3>"
                            f'<img class="examples" src="{root}{rel}" alt="inputs, ground truth and prediction of '
                            f'{escape(model)}" loading="lazy">')
        return body

    def _model_recipe(self, model: str, here: list[tuple[Leaderboard, pd.Series]], root: str) -> list[str]:
        """Each leaderboard's recipe, budget, device and weights."""
        body: list[str] = []
        body.append("<h2>Recipe and budget</h2>")
        for lb, _row in here:
            runs = lb.runs[lb.runs["model"] == model].sort_values("seed")
            if runs.empty:
                continue
            rec = runs.iloc[0]["record"]
            cfg = rec.get("config") or {}
            b = rec.get("budget") if isinstance(rec.get("budget"), dict) else None
            env = rec.get("env") or {}
            facts = [("Dataset / preset", f"{escape(lb.dataset)} / {escape(lb.preset)}"),
                     ("Epochs, batch, lr", escape(f"{cfg.get('epochs', DASH)} epochs, batch "
                                                  f"{cfg.get('batch_size', DASH)}, lr {cfg.get('lr', DASH)} "
                                                  f"({cfg.get('optimizer', '?')}, {cfg.get('scheduler', '?')})")),
                     ("Precision, layout", escape(f"{cfg.get('precision_resolved') or env.get('precision') or DASH}, "
                                                  f"{cfg.get('memory_format_resolved') or DASH}")),
                     ("Device", escape(str(env.get("device_name") or env.get("device") or DASH))),
                     ("Train time", escape(cells.duration((rec.get("timing") or {}).get("train_s"))))]
            if b:
                spent = ", ".join(x for x in (
                    f"{int(b['samples_seen']):,} samples seen" if isinstance(b.get("samples_seen"), (int, float))
                    else "",
                    f"{si(b['train_flops'])} training FLOPs" if isinstance(b.get("train_flops"), (int, float)) else "",
                    cells.duration(b["train_s"]) if isinstance(b.get("train_s"), (int, float)) else "",
                    f"on {b['device']}" if b.get("device") else "") if x)
                said = f"{budget_label(rec) or DASH}" + (f" (spent: {spent})" if spent else "")
                facts.append(("Budget", escape(said)))
            else:
                derived = runs.iloc[0].get("budget")
                facts.append(("Budget", escape(f"{derived} (derived from the recipe: the record predates the budget "
                                               "field)" if isinstance(derived, str) and derived else
                                               "not recorded (a record older than the budget field)")))
            ckpt = rec.get("checkpoint")
            if isinstance(ckpt, dict) and ckpt.get("file"):
                facts.append(("Weights", escape(f"{ckpt['file']} (sha256 {str(ckpt.get('sha256', '?'))[:16]}…, "
                                                f"{ckpt.get('source') or '?'})")))
            else:
                facts.append(("Weights", self._weights(runs.iloc[0]["path"], root)))
            body.append(f"<h3>{escape(lb.dataset)} · {escape(lb.preset)}</h3>")
            body.append('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
            body.append("<details><summary>The resolved recipe (record <code>config</code>)</summary><pre>"
                        + escape(json.dumps(cfg, indent=1, default=str)) + "</pre></details>")
        return body

    # -- index --------------------------------------------------------------------------------------
    def _index(self) -> None:
        root = ""
        body = ["<h1>stbench report</h1>",
                f'<p class="meta">{self.n_records} record(s) from {escape(self.source)}.</p>',
                "<h2>Leaderboards</h2>"]
        rows = []
        for lb in [*(c for c, _ in self.combined), *self.boards]:
            t = lb.table
            trained = t[t["kind"] != "floor"] if not t.empty else t
            parts = next((ps for c, ps in self.combined if c is lb), None)
            budgets = ([p.budget or "unknown" for p in parts] if parts else
                       sorted({b for bs in self._budgets(lb).values() for b in bs}))
            best = DASH
            if not trained.empty and "rank" in trained:
                top = trained[trained["rank"] == trained["rank"].min()]
                best = ", ".join(f'<a href="models/{safe(m)}.html">{escape(m)}</a>' for m in top["model"])
            sort_m = sort_metric(lb.metrics)
            if lb.budget_split or any(c is lb for c, _ in self.combined):
                best = best if lb.budget_split else "(per budget)"
            rows.append([escape(lb.dataset), escape(lb.preset), escape(", ".join(budgets) or "preset's"),
                         str(len(trained)), best,
                         escape(sort_m.upper() if sort_m else DASH), str(len(lb.runs) + len(lb.unfinished)),
                         f'<a href="{lb.slug}.html">open</a>'])
        body.append(_rows_table(["Dataset", "Preset", "Budget(s)", "Models", "Rank 1", "Ranked by", "Runs",
                                 "Leaderboard"], rows, "lllrllrl"))
        body.append("<h2>Models</h2><div class=\"cards\">")
        from stbench.interop.equivalence import evidence_for

        for model in self.models:
            where = [lb for lb in self.boards if model in set(lb.table.get("model", []))]
            fam = where[0].table.loc[where[0].table["model"] == model, "family"].iloc[0]
            ev = evidence_for(model)
            if not ev:
                badge = '<span class="badge none">no reference check</span>'
            elif all(e.passed for e in ev):
                worst = max(e.max_abs_diff for e in ev)
                badge = f'<span class="badge ok">reproduces reference (max |diff| {worst:.1g})</span>'
            else:
                badge = '<span class="badge fail">equivalence not shown</span>'
            body.append(f'<div class="card"><h3><a href="models/{safe(model)}.html">{escape(model)}</a> '
                        f"{_fam_badge(fam)}</h3><p>{badge}</p><p class=\"meta\">"
                        + ", ".join(f"{escape(lb.dataset)}/{escape(lb.preset)}"
                                    + (f" · {escape(lb.budget)}" if lb.budget_split and lb.budget else "")
                                    for lb in where) + "</p></div>")
        body.append("</div>")
        if self.warnings:
            body.append('<h2>Warnings</h2><ul>' + "".join(f'<li class="warn">{escape(w)}</li>' for w in self.warnings)
                        + "</ul>")
        self._write("index.html", _page("stbench report", "\n".join(body), root, self._nav(root)))

    def _combined(self) -> list[tuple[Leaderboard, list[Leaderboard]]]:
        """Per (dataset, preset) split by budget: one board holding every budget's rows (each model once, floors
        once), for the site's filters. None where a model ran under several budgets (its rows would collide)."""
        groups: dict[tuple[str, str], list[Leaderboard]] = {}
        for lb in self.boards:
            if lb.budget_split and not lb.table.empty:
                groups.setdefault((lb.dataset, lb.preset), []).append(lb)
        out = []
        for parts in groups.values():
            trained = [m for p in parts for m, k in zip(p.table["model"], p.table["kind"]) if k != "floor"]
            if len(parts) < 2 or len(trained) != len(set(trained)) or len({tuple(p.metrics) for p in parts}) > 1:
                continue
            tables = [p.table.assign(budget=p.budget) for p in parts]
            table = pd.concat(tables, ignore_index=True)
            table = table.drop_duplicates("model", keep="first")
            table.loc[table["kind"] == "floor", "budget"] = None
            floor = table["kind"] == "floor"
            table = pd.concat([table[~floor], table[floor]], ignore_index=True)
            for m in parts[0].metrics:  # no "best" across budgets: they were never ranked together
                table[f"best_{m}"] = False
            runs = pd.concat([p.runs for p in parts], ignore_index=True).drop_duplicates("path")
            unfinished = pd.concat([p.unfinished for p in parts], ignore_index=True).drop_duplicates("path")
            notes = list(dict.fromkeys(n for p in parts for n in p.notes))
            prov = (f"{len(runs)} completed runs under {len(parts)} training budgets; where and when each ran: "
                    "its budget's page")
            lb = replace(parts[0], table=table, runs=runs, unfinished=unfinished, notes=notes, budget=None,
                         budget_split=False, published=None, warnings=[], provenance=prov)
            out.append((lb, parts))
        return out

    def write(self) -> list[Path]:
        self._copy_records()
        self.combined = self._combined()
        for lb, parts in self.combined:
            self._leaderboard_page(lb, parts)
        for lb in self.boards:
            self._leaderboard_page(lb)
        for model in self.models:
            self._model_page(model)
        self._index()
        return self.files


@functools.cache
def paper_params(model: str, dataset: str) -> int | None:
    """Parameters of ``model`` at ``dataset``'s paper recipe, built on the meta device (no memory, no weights):
    the count to hold against the published one. None where there is no paper recipe or it does not build."""
    try:
        import torch

        from stbench.recipes import load_recipe

        recipe = load_recipe(dataset, model, "paper")
        with torch.device("meta"):
            built = recipe.build_model(model)
        return int(sum(p.numel() for p in built.parameters()))
    except Exception:  # noqa: BLE001 - a plugin model, a dataset whose shapes need its files: no row, no failure
        return None


def _registry_description(model: str) -> str | None:
    """The registry's one-line description of a model (``paper``), if it is registered here."""
    try:
        from stbench.registry import MODELS

        return MODELS.entry(model).meta.get("paper") or None
    except Exception:  # noqa: BLE001 - a plugin model that is not installed here still gets its page
        return None
