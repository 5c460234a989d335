"""Leaderboard -> terminal (rich), Markdown, CSV and LaTeX (booktabs). HTML lives in :mod:`stbench.report.html`.

Every table is followed by its notes and the metric convention; runs that did not complete are
listed below it with their reason; on the ``paper`` preset the published numbers follow as their
own, clearly labelled table.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from html import escape as html_escape
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stbench.report.cells import Cell, Grid, grid, published_grid, unfinished_lines
from stbench.report.plots import PlotFile
from stbench.report.tables import Leaderboard

FIT_WIDTH = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"  # shrink wide tables only
PUBLISHED_TITLE = "Published reference numbers (NOT measured here)"
UNFINISHED_TITLE = "Runs that did not complete (not ranked)"


def convention_line(lb: Leaderboard) -> str:
    """The convention the ranked records state (never today's text: old records keep theirs)."""
    return f"Metric convention (as stated in the records): {lb.convention or 'not stated in the records'}"


def board_notes_html(lb: Leaderboard, heading: str, table: Callable[[Grid], str]) -> list[str]:
    """A board's notes and metric convention, its runs that did not complete and its published rows, as HTML
    blocks (the report page and the site draw them alike, under their own ``heading`` tag and ``table``)."""
    parts = ['<ul class="notes">' + "".join(f"<li>{html_escape(n)}</li>" for n in lb.notes)
             + f"<li><strong>{html_escape(convention_line(lb))}</strong></li></ul>"]
    unfinished = unfinished_lines(lb)
    if unfinished:
        parts.append(f"<{heading}>{html_escape(UNFINISHED_TITLE)}</{heading}><ul>"
                     + "".join(f'<li class="warn">{html_escape(u)}</li>' for u in unfinished) + "</ul>")
    pub = published_grid(lb)
    if pub is not None:
        parts += [f"<{heading}>{html_escape(PUBLISHED_TITLE)}</{heading}>", table(pub)]
    return parts


def title(lb: Leaderboard) -> str:
    return f"Leaderboard: {lb.title}"


# ---------------------------------------------------------------------------------------------
# terminal
# ---------------------------------------------------------------------------------------------
_TABLE_STYLE = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True}


def _rich_table(g: Grid, title_text: str, plain: bool, widths: list[int]) -> Table:
    """``plain``: a console without colour, where the best value gets a trailing '*' instead of a highlight."""
    t = Table(title=title_text, title_style="bold", header_style="bold", **_TABLE_STYLE)
    for c, w in zip(g.columns, widths):
        t.add_column(c.term_label, justify=c.align, width=w, overflow="fold")
    for i, (cells, floor) in enumerate(zip(g.rows, g.floor)):
        if floor and i > 0 and not g.floor[i - 1]:
            t.add_section()
        t.add_row(*[Text(c.text + (" *" if plain and c.best else ""), style="bold reverse" if c.best else "")
                    for c in cells], style="dim italic" if floor else None)
    return t


def _overhead(n_cols: int) -> int:
    """Characters the table adds around ``n_cols`` columns (padding, dividers), measured, not assumed."""
    t = Table(**_TABLE_STYLE)
    for _ in range(n_cols):
        t.add_column(width=1)
    t.add_row(*["x"] * n_cols)
    scratch = Console(width=10_000, file=io.StringIO(), color_system=None)
    with scratch.capture() as cap:
        scratch.print(t)
    return max(len(line.rstrip()) for line in cap.get().splitlines()) - n_cols


def _widths(g: Grid, plain: bool) -> tuple[list[int], list[int]]:
    """Per column (narrowest, widest): numbers are never broken; text and headers may wrap at spaces."""
    lo, hi = [], []
    for j, c in enumerate(g.columns):
        cells = [row[j].text + (" *" if plain and row[j].best else "") for row in g.rows]
        words = [len(w) for text in [c.term_label, *cells] for w in text.split()] or [1]
        longest = max((len(t) for t in [c.term_label, *cells]), default=1)
        lo.append(max(max(words), max((len(t) for t in cells), default=1) if c.align == "right" else 1))
        hi.append(longest)
    return lo, hi


def _without_std(g: Grid) -> Grid:
    rows = [[Cell(c.text.split(" ± ")[0], c.best) for c in row] for row in g.rows]
    return Grid(list(g.columns), rows, list(g.floor))


def _without_ci(g: Grid) -> Grid:
    rows = [[Cell(c.text.split(" [")[0], c.best) for c in row] for row in g.rows]
    return Grid(list(g.columns), rows, list(g.floor))


# what the terminal leaves out, in this order, while the table is wider than the console
TERM_FALLBACKS = (("Encoder + temporal", lambda g: g.without("arch")), ("Train time", lambda g: g.without("train_s")),
                  ("95% intervals", _without_ci), ("± std", _without_std), ("Family", lambda g: g.without("family")))


def _fitted_table(g: Grid, title_text: str, console: Console) -> tuple[Table, list[str]]:
    """The table at the console's width, leaving out the least important parts while it does not fit."""
    plain = console.color_system is None
    dropped: list[str] = []

    def need(grid_: Grid) -> int:
        return sum(_widths(grid_, plain)[0]) + _overhead(len(grid_.columns))

    for what, fallback in TERM_FALLBACKS:
        if need(g) <= console.width:
            break
        smaller = fallback(g)
        if need(smaller) < need(g):
            g, dropped = smaller, [*dropped, what]
    lo, hi = _widths(g, plain)
    widths = list(lo)
    slack = console.width - sum(lo) - _overhead(len(g.columns))
    texts = [[c.term_label] + [row[j].text for row in g.rows] for j, c in enumerate(g.columns)]
    wrapped = [sum(len(t) > lo[j] for t in texts[j]) for j in range(len(lo))]
    for j in sorted(range(len(widths)), key=lambda j: -wrapped[j]):  # widen first where most cells would wrap
        extra = min(max(slack, 0), hi[j] - lo[j])
        widths[j] += extra
        slack -= extra
    return _rich_table(g, title_text, plain, widths), dropped


def print_term(lb: Leaderboard, console: Console) -> None:
    console.print()
    if lb.provenance:
        console.print(Text(lb.provenance, style="dim"))
    if lb.table.empty:
        console.print(Text(f"{title(lb)}: no completed run", style="bold"))
    else:
        table, dropped = _fitted_table(grid(lb), title(lb), console)
        console.print(table)
        if dropped:
            console.print(Text(f"(terminal too narrow: left out {', '.join(dropped)}; see the Markdown / HTML "
                               "report)", style="dim"))
        if console.color_system is None:
            console.print(Text("* best value of the column", style="dim"))
    for note in lb.notes:
        console.print(Text(note, style="dim"))
    console.print(Text(convention_line(lb), style="dim"))
    lines = unfinished_lines(lb)
    if lines:
        console.print(Text(UNFINISHED_TITLE + ":", style="bold yellow"))
        for line in lines:
            console.print(Text("  " + line, style="yellow"))
    pub = published_grid(lb)
    if pub is not None:
        console.print(_fitted_table(pub, PUBLISHED_TITLE, console)[0])


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------
def md_escape(text: str) -> str:
    for ch in "\\`*_|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def _md_table(g: Grid) -> list[str]:
    head = "| " + " | ".join(md_escape(c.label) for c in g.columns) + " |"
    rule = "|" + "|".join("---:" if c.align == "right" else ":---" for c in g.columns) + "|"
    lines = [head, rule]
    for cells, floor in zip(g.rows, g.floor):
        out = _styled(g, cells, floor, md_escape, bold="**{}**", italic="*{}*")
        lines.append("| " + " | ".join(out) + " |")
    return lines


def _styled(g: Grid, cells, floor: bool, escape, *, bold: str, italic: str) -> list[str]:
    """One row's cell texts, escaped; the best value of a column in bold, a floor's name in italics."""
    out = []
    for col, c in zip(g.columns, cells):
        t = escape(c.text)
        if c.best:
            t = bold.format(t)
        elif floor and col.key == "model":
            t = italic.format(t)
        out.append(t)
    return out


def markdown(lb: Leaderboard, plots: list[PlotFile] | None = None, plot_notes: list[str] | None = None,
             rel_to: Path | None = None) -> str:
    lines = [f"# {md_escape(title(lb))}", ""]
    if lb.provenance:
        lines += [md_escape(lb.provenance), ""]
    if lb.table.empty:
        lines += ["No completed run.", ""]
    else:
        lines += _md_table(grid(lb)) + [""]
    lines += [f"- {md_escape(n)}" for n in lb.notes]
    lines += [f"- {md_escape(convention_line(lb))}", ""]
    unfinished = unfinished_lines(lb)
    if unfinished:
        lines += [f"## {UNFINISHED_TITLE}", ""] + [f"- {md_escape(u)}" for u in unfinished] + [""]
    pub = published_grid(lb)
    if pub is not None:
        lines += [f"## {PUBLISHED_TITLE}", ""] + _md_table(pub) + [""]
    if plots or plot_notes:
        lines += ["## Plots", ""]
        for p in plots or []:
            target = p.png.relative_to(rel_to) if rel_to and p.png.is_relative_to(rel_to) else p.png
            lines += [f"![{md_escape(p.title)}]({target.as_posix()})", ""]
        lines += [f"- {md_escape(n)}" for n in plot_notes or []]
        if plot_notes:
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def write_csv(lb: Leaderboard, path: Path) -> Path:
    """The leaderboard's numbers, unformatted (SI units: params, FLOPs; seconds; seq/s)."""
    df = lb.table.copy().dropna(axis=1, how="all")  # no column that is empty for every row
    df.insert(0, "preset", lb.preset)
    df.insert(0, "dataset", lb.dataset)
    if lb.throughput_device is not None:  # None: no row has a measured throughput
        df["throughput_device"] = lb.throughput_device
    df.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------
# LaTeX (booktabs)
# ---------------------------------------------------------------------------------------------
_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "↑": r"$\uparrow$",
    "↓": r"$\downarrow$", "–": "--", "—": "---", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$",
    "·": r"$\cdot$", "→": r"$\rightarrow$", "≈": r"$\approx$", "…": r"\dots{}", "π": r"$\pi$",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_tabular(g: Grid) -> list[str]:
    spec = "".join("r" if c.align == "right" else "l" for c in g.columns)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(c.term_label) for c in g.columns) + r" \\", r"\midrule"]
    for i, (cells, floor) in enumerate(zip(g.rows, g.floor)):
        if floor and i > 0 and not g.floor[i - 1]:
            lines.append(r"\midrule")
        out = _styled(g, cells, floor, tex_escape, bold=r"\textbf{{{}}}", italic=r"\textit{{{}}}")
        lines.append(" & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines


def latex(lb: Leaderboard) -> str:
    label = f"tab:stbench-{lb.slug.replace('_', '-')}"
    lines = [f"% stbench {tex_escape(title(lb))}. Needs \\usepackage{{booktabs,graphicx}}.", r"\begin{table}[t]",
             r"\centering", r"\small", rf"\caption{{{tex_escape(title(lb))}.}}", rf"\label{{{label}}}"]
    if lb.table.empty:
        lines.append("No completed run.")
    else:
        lines += [FIT_WIDTH] + _tex_tabular(grid(lb)) + ["}"]
    notes = list(lb.notes)
    unfinished = unfinished_lines(lb)
    if unfinished:
        notes.append(f"{UNFINISHED_TITLE}: " + "; ".join(unfinished) + ".")
    notes.append(convention_line(lb))
    lines += [r"\par\smallskip{\footnotesize\raggedright", *[tex_escape(n) + r"\par" for n in notes], "}"]
    lines.append(r"\end{table}")
    pub = published_grid(lb)
    if pub is not None:
        lines += ["", r"\begin{table}[t]", r"\centering", r"\small",
                  rf"\caption{{{tex_escape(PUBLISHED_TITLE)}: {tex_escape(lb.dataset)}.}}",
                  rf"\label{{{label}-published}}", FIT_WIDTH, *_tex_tabular(pub), "}",
                  r"\end{table}"]
    return "\n".join(lines) + "\n"
