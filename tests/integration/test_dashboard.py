"""The dashboard in a real browser: `loom up --detach` of the bookstore (a copy), then headless
Chromium (Debian's, driven by Playwright) on the URL `loom dashboard` prints: the graph shows the
bookstore's workloads and live calls between them, a trace opens as a waterfall, the tap streams
requests, and the configuration view lists the catalog's DestinationRule.

Screenshots go to the test's folder and, when ``$LOOM_TEST_ARTIFACTS`` is set, to
``test-artifacts/`` at the repository's root."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_up import _down, loom, mesh_state

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
BOOKSTORE = ROOT / "examples" / "bookstore"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRAFFIC_DEADLINE_MS = 60_000
"""The traffic generator calls the frontend 10 times a second; edges show within a few pushes."""

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extras install it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        sync_playwright is None, reason="needs the playwright package (pip install playwright)"
    ),
]


@pytest.fixture(scope="module")
def bookstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("dashboard") / "bookstore"
    shutil.copytree(BOOKSTORE, directory, ignore=shutil.ignore_patterns(".loom", "__pycache__"))
    done = loom("up", "--detach", str(directory), timeout=120)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "dashboard: http://127.0.0.1:" in done.stdout, done.stdout
        yield directory
    finally:
        _down(directory)


def _save(page: Page, artifacts: Path, name: str) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / name), full_page=True)
    if os.environ.get("LOOM_TEST_ARTIFACTS"):
        shared = ROOT / "test-artifacts"
        shared.mkdir(exist_ok=True)
        shutil.copyfile(artifacts / name, shared / name)


EDGE_WITH_TRAFFIC = """() => [...document.querySelectorAll('#graph [data-edge]')]
    .some((edge) => Number(edge.dataset.rps) > 0)"""


@pytest.mark.timeout(300)
def test_the_dashboard_shows_the_running_bookstore(bookstore: Path, tmp_path: Path) -> None:
    url = str(mesh_state(bookstore)["dashboard_url"])
    assert url.startswith("http://127.0.0.1:"), url
    done = loom("dashboard", "--mesh", str(bookstore), "--no-open")
    assert done.returncode == 0 and done.stdout.strip() == url, done.stdout + done.stderr
    artifacts = tmp_path / "artifacts"
    problems: list[str] = []
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(url)
            try:
                _graph(page)
            finally:
                _save(page, artifacts, "dashboard.png")
            _trace(page, artifacts)
            _tap(page)
            _config(page)
        finally:
            context.close()
    assert not problems, problems


def _graph(page: Page) -> None:
    for workload in ("frontend", "catalog-v1", "catalog-v2", "reviews", "orders", "traffic"):
        page.wait_for_selector(f'#graph [data-node="bookstore/{workload}"]', timeout=30_000)
    page.wait_for_function(EDGE_WITH_TRAFFIC, timeout=TRAFFIC_DEADLINE_MS)
    edges: list[dict[str, Any]] = page.eval_on_selector_all(
        "#graph [data-edge]", "(all) => all.map((e) => ({...e.dataset}))"
    )
    calls = {(e["source"], e["target"]) for e in edges if float(e["rps"]) > 0}
    assert ("bookstore/traffic", "bookstore/frontend") in calls or any(
        source == "bookstore/frontend" for source, _ in calls
    ), calls


def _trace(page: Page, artifacts: Path) -> None:
    page.click('#tabs button[data-view="traces"]')
    page.wait_for_selector("#traces tr[data-trace], #traces .empty", timeout=15_000)
    rows = page.query_selector_all("#traces tr[data-trace]")
    if not rows:
        return  # no trace sampled yet: the empty state is shown
    rows[0].click()
    page.wait_for_selector("#waterfall [data-waterfall] .span-row", timeout=15_000)
    _save(page, artifacts, "dashboard-trace.png")


def _tap(page: Page) -> None:
    page.click('#tabs button[data-view="tap"]')
    page.fill('#tap-form input[name="to"]', "catalog")
    page.fill('#tap-form input[name="seconds"]', "20")
    page.click("#tap-toggle")
    page.wait_for_selector("#tap tr[data-tap-event]", timeout=20_000)
    page.click("#tap-toggle")
    page.wait_for_function("() => document.getElementById('tap-toggle').textContent === 'Start'")
    authorities = page.eval_on_selector_all(
        "#tap tr[data-tap-event] td:nth-child(6)", "(c) => c.map((x) => x.textContent)"
    )
    assert authorities and all(a.startswith("catalog") for a in authorities), authorities


def _config(page: Page) -> None:
    page.click('#tabs button[data-view="config"]')
    selector = (
        '#config [data-service="bookstore/catalog"] [data-resource="DestinationRule/bookstore/catalog"]'
    )
    page.wait_for_selector(selector, timeout=15_000)
    text = page.inner_text(selector)
    assert "catalog-destinationrule.yaml:" in text and "v2" in text, text
