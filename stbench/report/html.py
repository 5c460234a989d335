"""All leaderboards and plots as ONE self-contained HTML page: inline CSS, PNGs as base64 data URIs, no
external asset, script or font."""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from pathlib import Path

from stbench import __version__
from stbench.report.cells import Grid, grid
from stbench.report.plots import PlotSet
from stbench.report.tables import Leaderboard
from stbench.report.writers import board_notes_html, title

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.meta, .prov { color: #555; } nav a { margin-right: 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3em 0.7em; white-space: nowrap; }
thead th { border-top: 2px solid #333; border-bottom: 1px solid #333; }
tbody tr:last-child td { border-bottom: 2px solid #333; }
td.r, th.r { text-align: right; } td.l, th.l { text-align: left; }
td.best { font-weight: bold; background: #fff1c2; }
tr.floor td { color: #666; font-style: italic; } tr.first-floor td { border-top: 1px solid #999; }
ul.notes { color: #444; font-size: 0.92em; } .warn { color: #8a4b00; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _table(g: Grid) -> str:
    out = ['<div class="scroll"><table>', "<thead><tr>"]
    out += [f'<th class="{c.align[0]}">{escape(c.label)}</th>' for c in g.columns]
    out.append("</tr></thead><tbody>")
    for i, (cells, floor) in enumerate(zip(g.rows, g.floor)):
        cls = ["floor"] if floor else []
        if floor and i > 0 and not g.floor[i - 1]:
            cls.append("first-floor")
        out.append(f'<tr class="{" ".join(cls)}">' if cls else "<tr>")
        for col, c in zip(g.columns, cells):
            klass = col.align[0] + (" best" if c.best else "")
            text = f"<strong>{escape(c.text)}</strong>" if c.best else escape(c.text)
            out.append(f'<td class="{klass}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _section(lb: Leaderboard, plots: PlotSet | None) -> str:
    anchor = escape(lb.slug)
    parts = [f'<section id="{anchor}">', f"<h2>{escape(title(lb))}</h2>"]
    if lb.provenance:
        parts.append(f'<p class="prov">{escape(lb.provenance)}</p>')
    parts.append("<p>No completed run.</p>" if lb.table.empty else _table(grid(lb)))
    parts += board_notes_html(lb, "h3", _table)
    if plots and (plots.files or plots.notes):
        parts.append("<h3>Plots</h3>")
        for p in plots.files:
            parts.append(f"<figure>{_img(p.png, p.title)}<figcaption>{escape(p.title)} "
                         f"(SVG: {escape(p.svg.name)})</figcaption></figure>")
        if plots.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in plots.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(boards: list[Leaderboard], plots: dict[tuple[str, str], PlotSet], warnings: list[str],
                source: str, n_records: int, extra: list[str] | None = None) -> str:
    """``extra``: further sections (HTML), e.g. the compute study and the horizon extrapolation, after the boards."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#{escape(lb.slug)}">{escape(lb.title)}</a>' for lb in boards)
    body = ["<h1>stbench report</h1>",
            f'<p class="meta">{n_records} record(s) from {escape(source)} · generated {now} by stbench '
            f"{escape(__version__)}</p>", f"<nav>{nav}</nav>"]
    body += [_section(lb, plots.get(lb.key)) for lb in boards]
    body += list(extra or [])
    if warnings:
        body.append('<section id="warnings"><h2>Warnings</h2><ul>'
                    + "".join(f'<li class="warn">{escape(w)}</li>' for w in warnings) + "</ul></section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>stbench report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
