"""Leaderboards and plots from run records (``stbench report``).

    from pathlib import Path
    from stbench.report import build_report

    res = build_report(Path("results"))            # prints the tables, writes results/report/*
    res.leaderboards["mmnist", "quick"]            # the ranked DataFrame behind one leaderboard

One leaderboard per (dataset, preset); only completed runs are ranked; floors are listed last and never
"best"; seeds are aggregated as mean ± std with n; published reference numbers join ``paper`` leaderboards
only, labelled as published. Modules: ``records`` (load and validate), ``references`` (published numbers),
``tables`` (aggregate and rank), ``cells`` (display strings), ``writers`` (terminal, Markdown, CSV, LaTeX),
``plots``, ``html``, ``build`` (``build_report``).
"""

from stbench.report.build import FORMATS, ReportResult, build_report
from stbench.report.records import EmptyResultsError, LoadedRecords, load_records
from stbench.report.tables import Leaderboard, build_leaderboards

__all__ = [
    "FORMATS",
    "EmptyResultsError",
    "Leaderboard",
    "LoadedRecords",
    "ReportResult",
    "build_leaderboards",
    "build_report",
    "load_records",
]
