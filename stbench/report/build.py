"""``build_report``: records -> leaderboards -> terminal tables, files and plots. ``stbench report`` calls it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.text import Text

from stbench.report.html import render_html
from stbench.report.plots import PlotSet, make_plots
from stbench.report.records import EmptyResultsError, load_records
from stbench.report.references import DatasetReferences, default_baselines_dir, load_references
from stbench.report.tables import Leaderboard, build_leaderboards
from stbench.report.writers import latex, markdown, print_term, write_csv

#: every report format (the one owner: ``stbench report --format`` and its help take them from here)
FORMATS = ("term", "md", "csv", "tex", "html", "site")
DEFAULT_FORMATS = FORMATS[:-1]  # site needs the optional plotly (the `site` extra): asked for by name
#: the report folder's list of the files stbench wrote there (one relative path a line): what a later report
#: may remove once it no longer writes them; files stbench did not write are never touched
MANIFEST = ".stbench-report-files"


@dataclass
class ReportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)  # every file written, in writing order
    leaderboards: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)  # (dataset, preset) -> table
    warnings: list[str] = field(default_factory=list)  # skipped records, mixed devices, unreadable baselines
    notes: list[str] = field(default_factory=list)  # plots skipped and why
    boards: list[Leaderboard] = field(default_factory=list)  # the full leaderboards (notes, failed runs, published)
    studies: list = field(default_factory=list)  # compute studies (stbench.report.compute), one per swept (ds, preset)
    records: pd.DataFrame | None = None  # every readable record, one row per run


def _check_formats(formats: Sequence[str] | str) -> list[str]:
    if isinstance(formats, str):
        formats = formats.split(",")
    wanted = [f.strip().lower() for f in formats if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format(s) {', '.join(bad)}; choose from {','.join(FORMATS)}")
    return list(dict.fromkeys(wanted))


def _print_warnings(console: Console | None, warnings: list[str]) -> None:
    if console is None:
        return
    for w in warnings:
        console.print(Text(f"warning: {w}", style="yellow"))


def build_report(
    results_dir: Path,
    out_dir: Path | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    console: Console | None = None,
    baselines_dir: Path | None = None,
    *,
    plots: bool = True,
    val_target: float | None = None,
) -> ReportResult:
    """Leaderboards (one per dataset and preset) and plots from every run record under ``results_dir``.

    - ``formats``: any of ``term`` (rich tables on ``console``), ``md``, ``csv``, ``tex`` (one file of each per
      leaderboard: ``leaderboard_<dataset>_<preset>.<ext>``), ``html`` (one self-contained ``report.html``) and
      ``site`` (an interactive static site under ``<out_dir>/site``, see :mod:`stbench.report.site`; needs plotly).
    - ``out_dir``: where files go (default ``<results_dir>/report``); plots go to ``<out_dir>/plots`` whenever
      a file format is asked for and ``plots`` is true.
    - ``console``: tables are printed when ``term`` is asked for (a new Console if none is given); warnings and
      skipped plots are printed whenever there is a console.
    - ``baselines_dir``: where ``<dataset>.toml`` with the published numbers lives (default: the recipes').
    - ``val_target``: the validation MSE of the compute study's time-to-target table (default: see
      :mod:`stbench.report.compute`); the study (``compute_<dataset>_<preset>.md``, a section of ``report.html``,
      ``plots/compute_*``) is drawn for every (dataset, preset) whose records span several budgets.

    Raises :class:`EmptyResultsError` (one-line message saying how to create results) when there is no
    readable record, and ``ValueError`` for an unknown format.
    """
    wanted = _check_formats(formats)
    if "site" in wanted:
        from stbench.report.site import plotly_js

        plotly_js()  # a missing plotly is named (with its install line) before any work is done
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
    if console is None and "term" in wanted:
        console = Console()
    try:
        loaded = load_records(results_dir)
    except EmptyResultsError as exc:
        _print_warnings(console, exc.warnings)
        raise
    result = ReportResult(out_dir=out_dir, warnings=list(loaded.warnings), records=loaded.frame)
    references = _reference_reader(baselines_dir, result.warnings)
    result.boards = build_leaderboards(loaded, references)
    result.leaderboards = {lb.key: lb.table for lb in result.boards}
    for lb in result.boards:
        result.warnings.extend(lb.warnings)

    plot_sets: dict[tuple[str, ...], PlotSet] = {}
    if any(f != "term" for f in wanted):
        out_dir.mkdir(parents=True, exist_ok=True)
        if plots:
            plot_sets = _board_plots(result, out_dir)
    _write_boards(result, out_dir, wanted, plot_sets)
    extra = _studies(result, result.boards, out_dir, wanted, val_target, plots)
    if "html" in wanted:
        path = out_dir / "report.html"
        path.write_text(render_html(result.boards, plot_sets, result.warnings, str(results_dir), len(loaded.frame),
                                    extra), encoding="utf-8")
        result.files.append(path)
    if "site" in wanted:
        from stbench.report.site import write_site

        result.files += write_site(result.boards, plot_sets, out_dir / "site", references=references,
                                   warnings=result.warnings, source=str(results_dir), n_records=len(loaded.frame))
    if any(f != "term" for f in wanted):
        _prune_stale(result, wanted, plots)
    if console is not None:
        _print_report(console, result, wanted)
    return result


def _kind(rel: Path) -> str:
    """Which format (or ``plots``) wrote the report file ``rel``."""
    if rel.parts[0] in ("plots", "site"):
        return rel.parts[0]
    return "html" if rel.name == "report.html" else rel.suffix.lstrip(".")


def _prune_stale(result: ReportResult, wanted: list[str], plots: bool) -> None:
    """Remove the files an earlier report wrote in ``out_dir`` that this one, writing the same formats, no longer
    writes (a leaderboard or study whose records are gone), then list what the folder now holds in MANIFEST.
    Files of formats not asked for this time stay (``--format md`` keeps the site), and so does any file the
    earlier report did not list (a user's own notes)."""
    out_dir = result.out_dir
    root = out_dir.resolve()
    manifest = out_dir / MANIFEST
    written = {f.resolve().relative_to(root) for f in result.files if f.resolve().is_relative_to(root)}
    kinds = set(wanted) | ({"plots"} if plots else set())
    listed = manifest.read_text(encoding="utf-8").splitlines() if manifest.is_file() else []
    keep, removed = set(written), 0
    for line in listed:
        rel = Path(line)
        path = (out_dir / rel).resolve()
        if not line or rel in written or not path.is_relative_to(root) or not path.is_file():
            continue
        if _kind(rel) in kinds:
            path.unlink()
            removed += 1
        else:
            keep.add(rel)
    if removed:
        result.notes.append(f"removed {removed} file(s) an earlier report wrote in {out_dir} and this one no "
                            f"longer does (their records are gone); the folder's files are listed in {MANIFEST}")
    manifest.write_text("".join(f"{rel.as_posix()}\n" for rel in sorted(keep)), encoding="utf-8")


def _reference_reader(baselines_dir: Path | None, warnings: list[str]) -> Callable[[str], DatasetReferences]:
    """``dataset -> its published references``, each file read once; unreadable files add to ``warnings``."""
    bdir = Path(baselines_dir) if baselines_dir is not None else default_baselines_dir()
    refs: dict[str, DatasetReferences] = {}

    def references(dataset: str) -> DatasetReferences:
        if dataset not in refs:
            refs[dataset], warns = load_references(bdir, dataset)
            warnings.extend(warns)
        return refs[dataset]

    return references


def _board_plots(result: ReportResult, out_dir: Path) -> dict[tuple[str, ...], PlotSet]:
    """Every leaderboard's plots, under ``<out_dir>/plots``."""
    plot_sets = {}
    for lb in result.boards:
        ps = make_plots(lb, out_dir / "plots")
        plot_sets[lb.key] = ps
        result.notes.extend(ps.notes)
        result.files += [f for p in ps.files for f in (p.png, p.svg)]
    return plot_sets


def _write_boards(result: ReportResult, out_dir: Path, wanted: list[str],
                  plot_sets: dict[tuple[str, ...], PlotSet]) -> None:
    """One ``leaderboard_<slug>.<md|csv|tex>`` per leaderboard and format asked for."""
    for lb in result.boards:
        stem = out_dir / f"leaderboard_{lb.slug}"
        ps = plot_sets.get(lb.key, PlotSet())
        if "md" in wanted:
            path = stem.with_suffix(".md")
            path.write_text(markdown(lb, ps.files, ps.notes, rel_to=out_dir), encoding="utf-8")
            result.files.append(path)
        if "csv" in wanted:
            result.files.append(write_csv(lb, stem.with_suffix(".csv")))
        if "tex" in wanted:
            path = stem.with_suffix(".tex")
            path.write_text(latex(lb), encoding="utf-8")
            result.files.append(path)


def _print_report(console: Console, result: ReportResult, wanted: list[str]) -> None:
    """The tables (``term``), then the notes on skipped plots and the warnings."""
    if "term" in wanted:
        for lb in result.boards:
            print_term(lb, console)
        console.print()
    for note in result.notes:
        console.print(Text(note, style="dim"))
    _print_warnings(console, result.warnings)


def _studies(result: ReportResult, boards: list[Leaderboard], out_dir: Path, wanted: list[str],
             val_target: float | None, plots: bool) -> list[str]:
    """The compute studies: Markdown files and plots written, their HTML sections returned."""
    from stbench.report.compute import compute_studies, study_html, study_markdown, study_plots

    result.studies = compute_studies(boards, val_target)
    html = []
    for st in result.studies:
        ps = study_plots(st, out_dir / "plots") if plots and len(wanted) > wanted.count("term") else PlotSet()
        result.files += [f for p in ps.files for f in (p.png, p.svg)]
        result.notes.extend(ps.notes)
        if "md" in wanted:
            path = out_dir / f"compute_{st.slug}.md"
            path.write_text(study_markdown(st, ps, rel_to=out_dir), encoding="utf-8")
            result.files.append(path)
        html.append(study_html(st, ps))
    return html + _extrapolations(result, boards, out_dir, wanted)


def _extrapolations(result: ReportResult, boards: list[Leaderboard], out_dir: Path, wanted: list[str]) -> list[str]:
    """Horizon extrapolation (``stbench eval --t-out`` boards): plot and Markdown written, HTML sections returned."""
    from stbench.report.extrapolation import (
        extrapolation_html,
        extrapolation_markdown,
        extrapolation_plot,
        extrapolations,
    )

    if len(wanted) == wanted.count("term"):
        return []
    html = []
    for ex in extrapolations(boards):
        plot = extrapolation_plot(ex, out_dir / "plots")
        result.files += [plot.png, plot.svg]
        if "md" in wanted:
            path = out_dir / f"extrapolation_{ex.board.slug}.md"
            path.write_text(extrapolation_markdown(ex, plot, rel_to=out_dir), encoding="utf-8")
            result.files.append(path)
        html.append(extrapolation_html(ex, plot))
    return html
