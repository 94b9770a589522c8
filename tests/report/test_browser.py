"""The report in a real headless browser (Debian's chromium, driven by Playwright through
its executable path): each page loads with no console error, every plot renders with
marks, and a screenshot is kept under build/artifacts/ for CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _pages import RUN_DIR, bench_dir, violating_trace

pytest.importorskip("vl_convert", reason="the [report] extra (vl-convert-python) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the [dev] extra)")

from inspectorate.report import write_report  # noqa: E402

CHROMIUM = (
    os.environ.get("INSPECTORATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (the Makefile's install step adds Debian's chromium)"
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, html: Path, shot: str) -> dict:
    """Load ``html`` offline, wait for every plot, return what the page shows."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(html.as_uri())
    page.wait_for_function(
        "document.body.dataset.plotsDone === document.body.dataset.plotsTotal", timeout=30_000
    )
    plots = page.evaluate(
        """[...document.querySelectorAll('.plot')].map(e => ({
            id: e.id, rendered: e.dataset.rendered, error: e.dataset.error || null,
            marks: e.querySelectorAll('svg .mark-line path, svg .mark-rect path, svg .mark-symbol path,'
                                      + ' svg .mark-area path, svg .mark-rule line, svg .mark-tick path').length,
            width: e.getBoundingClientRect().width}))"""
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    headline = page.inner_text("header h1")
    context.close()
    return {"errors": errors, "requests": requests, "plots": plots, "headline": headline}


def assert_rendered(shown: dict, at_least: int) -> None:
    assert shown["errors"] == []
    assert shown["requests"] == []  # nothing fetched at view time
    assert len(shown["plots"]) >= at_least
    for plot in shown["plots"]:
        assert plot["error"] is None and plot["rendered"] == "1", plot
        assert plot["marks"] > 0 and plot["width"] > 300, plot


def test_run_dir_report_renders_in_chromium(browser, tmp_path: Path) -> None:
    shown = open_page(browser, write_report(RUN_DIR, tmp_path / "run.html"), "report-run.png")
    assert_rendered(shown, at_least=4)  # the timeline + NIC + three nvsmi panels
    assert "CERTIFIED" in shown["headline"]


def test_check_report_renders_in_chromium(browser, tmp_path: Path) -> None:
    trace, commitment = violating_trace(tmp_path)
    out = write_report(trace, tmp_path / "check.html", commitment=commitment)
    shown = open_page(browser, out, "report-check.png")
    assert_rendered(shown, at_least=1)
    assert shown["headline"].startswith("VIOLATION")


def test_bench_report_renders_in_chromium(browser, tmp_path: Path) -> None:
    shown = open_page(browser, write_report(bench_dir(tmp_path), tmp_path / "bench.html"), "report-bench.png")
    assert_rendered(shown, at_least=3)  # two tracks + the family bars
