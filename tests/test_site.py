"""`stbench report --format site`: the static site's files (offline, every asset local), its pages' content,
and, in a real headless Chromium, sorting, filtering, a plot tooltip, a legend click and no console error.

The browser tests drive Debian's `chromium` (apt-get install chromium; .ci/run installs it) through the
`playwright` Python package with `executable_path`; they are skipped, with the reason, where either is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from test_report import make_record, write_examples, write_record

pytest.importorskip("plotly", reason="the site needs plotly: pip install 'stbench[site]'")

from stbench.interop.equivalence import evidence_for  # noqa: E402
from stbench.report import build_report  # noqa: E402
from stbench.report.site import SiteDependencyError, plotly_js  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUDGET = {"kind": "samples", "value": 4000, "label": "samples=4000", "samples_seen": 4000, "train_flops": 1.2e14,
          "train_s": 100.0, "device": "Test CPU"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    quick = root / "records" / "mmnist" / "quick"
    recs = [
        make_record("tau", mse=20.0, ssim=0.80, params=44.7e6, flops=16.0e9, seq_per_s=283.0,
                    examples="tau__seed0_examples.npz"),
        make_record("simvp", mse=25.0, ssim=0.93, params=58.0e6, flops=19.4e9, seq_per_s=209.0),
        make_record("convlstm", family="recurrent", mse=30.0, ssim=0.85, params=15.0e6, flops=56.8e9,
                    seq_per_s=113.0),
        make_record("predrnn", family="recurrent", mse=28.0, ssim=0.88, params=23.8e6, flops=116e9, seq_per_s=50.0),
        make_record("zeros", kind="floor", mse=200.0, ssim=0.30),
        make_record("tau", preset="paper", mse=30.0, epochs=200),
    ]
    recs[0]["budget"] = BUDGET  # the budget field of newer records; the others have none
    for rec in recs:
        write_record(root, rec)
    write_examples(quick / "tau__seed0_examples.npz", 0)
    (quick / "tau__seed0.safetensors").write_bytes(b"\0" * 2048)  # kept weights (stbench.weights); only named
    (quick / "tau__seed0.card.json").write_text('{"model": "tau"}')
    (root / "baselines").mkdir()
    (root / "baselines" / "mmnist.toml").write_text(
        '[presets.paper]\nepochs = 200\n[[models.tau.reference]]\nsource = "OpenSTL benchmark, 200 epochs"\n'
        "epochs = 200\nparams_m = 44.7\nflops_g = 16.0\nmse = 24.60\nssim = 0.9454\n")
    res = build_report(root, root / "report", ["site"], baselines_dir=root / "baselines")
    assert all(p.exists() for p in res.files)
    return root / "report" / "site"


def test_site_files_are_local_and_complete(site):
    for rel in ("index.html", "mmnist_quick.html", "mmnist_paper.html", "models/tau.html", "models/convlstm.html",
                "assets/site.css", "assets/site.js", "assets/plotly.min.js"):
        assert (site / rel).is_file(), rel
    assert (site / "assets" / "plotly.min.js").read_bytes() == plotly_js().read_bytes()
    assert not (site / "models" / "zeros.html").exists()  # floors are no models
    for page in site.rglob("*.html"):
        html = page.read_text()
        # nothing from the network: no absolute URL in any src / href, no CDN
        assert not re.search(r'(src|href)="(https?:)?//', html), page
        for ref in re.findall(r'(?:src|href)="([^"#]+)"', html):
            assert (page.parent / ref).exists(), f"{page.name}: broken link {ref}"
        for spec in re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S):
            fig = json.loads(spec)
            assert fig["data"] and fig["layout"]["legend"]["groupclick"] == "togglegroup"


def test_leaderboard_page_rows_filters_and_budget(site):
    html = (site / "mmnist_quick.html").read_text()
    rows = re.findall(r'<tr data-order="\d+" data-model="([^"]+)" data-family="([^"]+)" data-kind="([^"]+)" '
                      r'data-budget="([^"]*)"', html)
    assert [r[0] for r in rows] == ["tau", "simvp", "predrnn", "convlstm", "zeros"]  # the leaderboard's order
    assert dict((r[0], r[3]) for r in rows)["tau"] == "samples=4000"
    assert '<select name="budget">' in html and '<select name="family">' in html and 'name="q"' in html
    assert '<a href="models/tau.html">tau</a>' in html
    # sort keys are the raw numbers, not the display text
    assert 'data-v="44700000.0"' in html and 'data-v="20.0"' in html


def test_budgets_ranked_apart_and_shown_together(site):
    # tau states samples=4000; the others predate the budget field (12000 derived from their recipes)
    for slug in ("mmnist_quick_samples-4000", "mmnist_quick_samples-12000"):
        assert (site / f"{slug}.html").is_file()
    together = (site / "mmnist_quick.html").read_text()
    assert "ranked separately, never together" in together and 'href="mmnist_quick_samples-4000.html"' in together
    assert '<td class="r best"' not in together  # no best across budgets
    index = (site / "index.html").read_text()
    assert index.count('href="mmnist_quick') >= 3


def test_model_page_shows_counts_equivalence_published_and_records(site):
    html = (site / "models" / "tau.html").read_text()
    measured = {e.fixture: e.max_abs_diff for e in evidence_for("tau")}
    assert set(measured) == {"tau", "tau_tout20"} and all(v is not None for v in measured.values())
    for fixture, diff in measured.items():
        assert f"<code>{fixture}</code>" in html and f"{diff:.2g}" in html  # from equivalence.json, not typed
    assert "reproduces the reference" in html
    assert "published (mmnist): OpenSTL benchmark, 200 epochs" in html and "44.7M" in html  # published counts
    assert "stbench at the paper configuration (mmnist; built here, not trained)</td><td class=\"r\">44.7M" in html
    assert "published: OpenSTL benchmark, 200 epochs" in html and "24.60" in html  # published beside measured
    assert "samples=4000" in html and "4,000 samples seen" in html  # the budget block
    assert 'href="../records/mmnist/quick/tau__seed0.json"' in html
    assert "<code>tau__seed0.safetensors</code> (2.05kB)" in html  # kept weights: named, not copied
    assert 'href="../records/mmnist/quick/tau__seed0.card.json"' in html
    assert (site / "records/mmnist/quick/tau__seed0.card.json").is_file()
    assert re.search(r'src="\.\./models/tau__mmnist_quick_samples-4000_examples\.png"', html)
    conv = (site / "models" / "convlstm.html").read_text()
    assert "samples=12000 (derived from the recipe" in conv  # a record without the budget field
    assert "index.html" in conv


def test_missing_plotly_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    write_record(tmp_path, make_record("tau"))
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(SiteDependencyError) as exc:
        build_report(tmp_path, tmp_path / "out", ["md", "site"])
    assert 'pip install "stbench[site]"' in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()  # refused before any work


# ---------------------------------------------------------------------------------------------
# in a real browser
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900}, offline=True)
        yield ctx
        ctx.close()


def _open(browser, path: Path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"failed request: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_selector("figure.drawn", timeout=15_000)  # plotly drew at least one figure
    return page, errors


def _models(page) -> list[str]:
    return page.eval_on_selector_all("table.lb tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.model)")


def test_browser_sort_filter_and_fit(site, browser):
    page, errors = _open(browser, site / "mmnist_quick.html")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing hidden behind a scroll bar
    page.click("table.lb th[data-key=ssim]")
    assert _models(page) == ["zeros", "tau", "convlstm", "predrnn", "simvp"]  # ascending SSIM
    page.click("table.lb th[data-key=ssim]")
    assert _models(page) == ["simvp", "predrnn", "convlstm", "tau", "zeros"]
    assert page.get_attribute("table.lb th[data-key=ssim]", "aria-sort") == "descending"
    page.select_option("form.filters select[name=family]", "recurrent")
    assert _models(page) == ["predrnn", "convlstm"]
    assert "2 of 5 rows shown" in page.inner_text("form.filters .count")
    page.select_option("form.filters select[name=family]", "")
    page.fill("form.filters input[name=q]", "SIM")
    assert _models(page) == ["simvp"]
    page.fill("form.filters input[name=q]", "")
    page.select_option("form.filters select[name=budget]", "samples=4000")
    assert _models(page) == ["tau", "zeros"]  # floors stay: they are every budget's reference
    assert errors == []


def test_browser_plot_tooltip_and_legend(site, browser):
    page, errors = _open(browser, site / "mmnist_quick.html")
    fig = page.locator("figure.drawn").first
    fig.scroll_into_view_if_needed()
    point = fig.locator(".scatterlayer .trace .points path.point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
    tip = fig.locator(".hoverlayer .hovertext").first.text_content()
    assert re.search(r"(tau|simvp|convlstm|predrnn) \((parallel|recurrent)\)", tip) and "MSE" in tip
    # a click on a legend entry hides that family's trace
    page.mouse.move(0, 0)  # the tooltip away
    fig.locator(".legend .traces").filter(has_text="recurrent").first.locator(".legendtoggle").click(force=True)
    page.wait_for_timeout(700)  # plotly waits out its double-click delay before it toggles
    vis = page.evaluate("""() => { const d = document.querySelector('figure.drawn .plot');
                                   return d.data.map(t => [t.name, t.visible === undefined ? true : t.visible]); }""")
    assert ["recurrent", "legendonly"] in vis and ["parallel", True] in vis
    assert errors == []


def test_browser_model_page_and_index(site, browser):
    page, errors = _open(browser, site / "models" / "tau.html")
    assert "reproduces the reference" in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.click("header.top a.brand")
    page.wait_for_load_state()
    assert page.url.endswith("/index.html") and "Leaderboards" in page.inner_text("main")
    page.click("text=tau >> nth=0")
    assert errors == []
