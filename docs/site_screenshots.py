"""Screenshots of a report site in headless Chromium (Debian's `chromium`, driven by playwright): the committed
docs/site_*.png come from this script.

    python docs/site_screenshots.py results/zoo-mmnist-quick-cpu/report/site --model mau --out docs

It also opens every page of the site and fails on a console error, a failed request or a page wider than 1280 px.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("site", type=Path)
    p.add_argument("--model", default="mau", help="the model page to show")
    p.add_argument("--board", default=None, help="the leaderboard page to show (default: the first on the index)")
    p.add_argument("--out", type=Path, default=Path("docs"))
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on PATH: apt-get install chromium", file=sys.stderr)
        return 1
    problems: list[str] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True, args=FLAGS,
                                                    viewport={"width": 1280, "height": 860}, offline=True)
        page = ctx.new_page()
        page.on("console", lambda m: problems.append(f"{page.url}: console {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"{page.url}: failed request {r.url}"))
        for html in sorted(args.site.rglob("*.html")):
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 1280:
                problems.append(f"{html}: {width} px wide")
        args.out.mkdir(parents=True, exist_ok=True)
        # the index
        page.goto((args.site / "index.html").resolve().as_uri())
        page.screenshot(path=str(args.out / "site_index.png"))
        # a leaderboard: sorted by SSIM (best first), the recurrent family hidden, a point hovered
        board = args.board or page.get_attribute("main table a[href$='.html']:text('open')", "href")
        page.goto((args.site / board).resolve().as_uri())
        page.wait_for_selector("figure.drawn")
        metric = "ssim" if page.locator("table.lb th[data-key=ssim]").count() else "mse"
        page.click(f"table.lb th[data-key={metric}]")
        page.click(f"table.lb th[data-key={metric}]")
        if page.locator("form.filters select[name=family] option[value=parallel]").count():
            page.select_option("form.filters select[name=family]", "parallel")
        page.wait_for_timeout(500)
        fig = page.locator("figure.drawn").first
        fig.scroll_into_view_if_needed()
        points = fig.locator(".scatterlayer .trace .points path.point")
        point = points.nth(min(3, points.count() - 1))
        box = point.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".hoverlayer .hovertext")
        fig.screenshot(path=str(args.out / "site_plot.png"))
        page.mouse.move(0, 0)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(args.out / "site_leaderboard.png"))
        # one model page, whole
        page.goto((args.site / "models" / f"{args.model}.html").resolve().as_uri())
        page.wait_for_selector("figure.drawn")
        page.screenshot(path=str(args.out / "site_model.png"), full_page=True)
        ctx.close()
    for line in problems:
        print(line, file=sys.stderr)
    print(f"wrote {args.out}/site_index.png, site_leaderboard.png, site_plot.png, site_model.png")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
