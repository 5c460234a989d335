"""``stbench report --format site``: a static site from the leaderboards, readable offline from file://.

    <out>/site/index.html                 datasets x presets (x budgets), every model with its equivalence status
    <out>/site/<dataset>_<preset>.html    a sortable, filterable leaderboard and its interactive plots
    <out>/site/models/<model>.html        one page per model: counts, equivalence evidence, measured beside
                                          published rows, curves, per-lead-time errors, examples, recipe, budget
    <out>/site/assets/                    site.css, site.js and plotly.min.js (copied from the installed plotly)
    <out>/site/static/, records/          the PNG fallbacks of every plot (the SVGs stay in <out>/plots), and
                                          the run records the pages cite

Nothing is fetched at view time: the figures' data sit in each page, the scripts in ``assets/``. Needs the
optional ``site`` extra (plotly); without it :class:`SiteDependencyError` says what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from stbench.errors import UserError
from stbench.report.plots import PlotSet
from stbench.report.references import DatasetReferences
from stbench.report.tables import Leaderboard

ASSETS = Path(__file__).with_name("assets")
INSTALL_HINT = 'pip install "stbench[site]"'


class SiteDependencyError(UserError):
    """The optional plotting library of the site is not installed."""


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed ``plotly`` Python package (no download, no CDN)."""
    try:
        import plotly
    except ImportError:
        raise SiteDependencyError(f"--format site needs plotly; install it with: {INSTALL_HINT}") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise SiteDependencyError(f"the installed plotly has no package_data/plotly.min.js; reinstall it with: "
                                  f"{INSTALL_HINT}")
    return path


def write_site(boards: list[Leaderboard], plot_sets: dict[tuple[str, str], PlotSet], out_dir: Path, *,
               references: Callable[[str], DatasetReferences], warnings: list[str], source: str,
               n_records: int) -> list[Path]:
    """Write the whole site under ``out_dir`` (emptied of an older site first); returns the files written."""
    from stbench.report.site.pages import SiteBuilder

    js = plotly_js()
    out_dir = Path(out_dir)
    if (out_dir / "index.html").is_file():  # an older site: start clean so no stale page survives
        shutil.rmtree(out_dir)
    (out_dir / "assets").mkdir(parents=True, exist_ok=True)
    files = []
    for name in ("site.css", "site.js"):
        files.append(Path(shutil.copyfile(ASSETS / name, out_dir / "assets" / name)))
    files.append(Path(shutil.copyfile(js, out_dir / "assets" / "plotly.min.js")))
    builder = SiteBuilder(boards, plot_sets, out_dir, references=references, warnings=warnings, source=source,
                          n_records=n_records)
    return files + builder.write()


__all__ = ["INSTALL_HINT", "SiteDependencyError", "plotly_js", "write_site"]
