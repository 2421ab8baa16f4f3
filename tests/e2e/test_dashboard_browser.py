"""The dashboard as an operator uses it: ``ghostpanel up`` serving Voila, driven by
Debian's Chromium through Playwright.

One server for the module, on the session's private engine (registered as ``e2e``, with
the demo containers started on it) and a spare, empty engine of the module's own
(``e2e-spare``): the empty state, and an engine that goes away and comes back. The
session engine pulls from the session's private registry on loopback
(``registry_images``, tests/conftest.py).

Each test saves a screenshot of where it ended in ``tests/e2e/screenshots/`` and then
leaves the page as a user does (``beforeunload`` runs, and with it Voila's shutdown
beacon); the test then waits until the server runs no kernel for it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.demo import DEMO_LABEL, remove_demo_containers, start_demo_containers
from ghostpanel_kernel.engine import NotFound
from tests.e2e.conftest import (
    SCREENSHOTS,
    Server,
    failed,
    registered_environment,
    start_server,
)
from tests.image_registry import RegistryImages
from tests.podman_service import PodmanService

ENV = "e2e"
SPARE = "e2e-spare"
DEMO_NAMES = ["ghostpanel-demo-web-1", "ghostpanel-demo-web-2", "ghostpanel-demo-logger"]
# The most a page may take to show its table (a kernel starts and runs the notebook; the
# machine may be busy with other tests).
LOAD_TIMEOUT_MS = 120_000
# Requests that may leave loopback, all of them stylesheets the page renders without:
# Voila 0.5's lab template links Font Awesome from a CDN (voila/templates/lab/
# index.html.j2; the icons come from JupyterLab's own bundle), and Panel links its
# components' CSS (loading spinner, theme, Font Awesome, Tabulator's default theme) from
# cdn.holoviz.org when it runs in a notebook kernel rather than a Panel server (the
# Tabulator theme the dashboard shows is Panel's bundled copy, passed inline). The dead
# proxy refuses them all; any script, or anything else, from off this machine fails.
ALLOWED_OFFSITE = re.compile(
    r"^https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@(\^|%5E)?5/css/[\w.-]+\.css$"
    r"|^https://cdn\.holoviz\.org/panel/[\w.]+/dist/[\w/@.-]+\.css(\?v=[\w.]+)?$")


def run(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end, in a thread of its own: Playwright's sync API keeps
    an event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _containers(url: str, **filters: Any) -> dict[str, str]:
    async with connect(url, name="check") as env:
        found = await env.containers.list(all=True, filters=filters or None)
        return {container.name: container.state for container in found}


def containers(url: str, **filters: Any) -> dict[str, str]:
    """Name -> state of the containers on the engine at ``url``."""
    return run(_containers(url, **filters))


async def _images(url: str) -> set[str]:
    async with connect(url, name="check") as env:
        return {tag for image in await env.images.list() for tag in image.tags}


def images(url: str) -> set[str]:
    """The image tags on the engine at ``url``."""
    return run(_images(url))


async def _seed(url: str) -> list[str]:
    async with connect(url, name=ENV) as env:
        return [container.name for container in await start_demo_containers(env)]


async def _unseed(url: str) -> list[str]:
    async with connect(url, name=ENV) as env:
        return await remove_demo_containers(env)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(podman_engine: PodmanService) -> Iterator[list[str]]:
    """The demo containers, running on the session engine for this module."""
    names = run(_seed(podman_engine.url))
    assert names == DEMO_NAMES
    yield names
    run(_unseed(podman_engine.url))


@pytest.fixture(scope="module")
def server(podman_engine: PodmanService, spare_engine: PodmanService,
           seeded: list[str]) -> Iterator[Server]:
    """``ghostpanel up --env e2e`` for the whole module, stopped with Ctrl-C after it."""
    with registered_environment(ENV, podman_engine.url), \
            registered_environment(SPARE, spare_engine.url):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        served = start_server(["up", "--port", str(port), "--env", ENV, "--no-browser"],
                              banner="GhostPanel dashboard:")
        yield served
        try:
            assert served.interrupt() == 0, served.output()
        finally:
            served.ensure_stopped()


@pytest.fixture
def page(browser: Browser, server: Server, screenshots: Path,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on the dashboard, its table shown. Afterwards: a screenshot, the page
    left, and the server back to the kernels it ran before."""
    before = server.kernels()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    offsite: list[str] = []
    page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(
        (server.url, "data:", "blob:", "about:")) else None)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.goto(server.url, timeout=LOAD_TIMEOUT_MS)
    try:
        page.locator(".tabulator-row").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    except Exception:
        page.screenshot(path=str(screenshots / f"{request.node.name}-load.png"),
                        full_page=True)
        (screenshots / f"{request.node.name}-load.html").write_text(page.content())
        (screenshots / f"{request.node.name}-load.log").write_text(
            "\n".join(console) + "\n--- server ---\n" + server.output())
        raise
    # The page's kernel is the pool's (ghostpanel up --pool), which refills behind it.
    server.wait_for_kernels(len(before) + 1, timeout=30)
    try:
        yield page
    finally:
        suffix = "-FAILED" if failed(request) else ""
        page.screenshot(path=str(screenshots / f"{request.node.name}{suffix}.png"),
                        full_page=True)
        # Leave the page as a user does: beforeunload runs Voila's shutdown beacon.
        # (After a click, page.close(run_before_unload=True) alone leaves headless
        # Chromium's page open: navigating away first is what a closing tab does.)
        page.goto("about:blank")
        page.close(run_before_unload=True)
        context.close()
    server.wait_for_kernels(len(before), timeout=30)
    unexpected = [url for url in offsite if not ALLOWED_OFFSITE.match(url)]
    assert not unexpected, f"the page asked for resources off this machine: {unexpected}"


def row(page: Page, name: str) -> Any:
    """The container table's row of container ``name``."""
    return page.locator(".gp-container-list .tabulator-row", has_text=name)


def open_tab(page: Page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()


def pick_environment(page: Page, name: str) -> None:
    """Choose environment ``name`` in the picker (options read ``name — url``)."""
    select = page.locator(".gp-environment-picker select")
    labels = select.evaluate("e => Array.from(e.options).map(o => o.textContent)")
    wanted = [label for label in labels if label.split("\u00a0")[0].split(" ")[0] == name]
    assert wanted, f"no {name} in the picker: {labels}"
    select.select_option(label=wanted[0])


# -- tests -------------------------------------------------------------------------------


def test_dashboard_shows_the_seeded_containers(page: Page, seeded: list[str]) -> None:
    for name in seeded:
        expect(row(page, name)).to_contain_text("running")
    expect(page.get_by_role("tab")).to_have_text(
        ["Home", "Containers", "Stacks", "Create", "App templates", "Logs", "Stats", "Images",
         "Volumes", "Networks", "Snapshots", "GPUs", "Events", "Runbooks"])
    # `--env e2e` named the environment: its containers first, not the home cards.
    expect(page.get_by_role("tab", name="Containers", exact=True)).to_have_attribute(
        "aria-selected", "true")
    # Tabulator's own stylesheet arrived (bundled, not from a CDN): bold, ruled header.
    header = page.locator(".gp-container-list .tabulator-header").first
    style = header.evaluate(
        "e => [getComputedStyle(e).fontWeight, getComputedStyle(e).borderBottomWidth]")
    assert style[0] == "700" and style[1] != "0px", style
    # The code cells are hidden: only widgets show.
    assert page.locator(".jp-InputArea:visible").count() == 0
    expect(page.locator(".gp-empty-state")).to_be_hidden()


def test_stop_a_container_from_the_ui(page: Page, podman_engine: PodmanService) -> None:
    target = row(page, "ghostpanel-demo-web-2")
    expect(target).to_contain_text("running")
    target.locator("input[type=checkbox]").check()
    page.locator(".gp-container-list").get_by_role("button", name="Stop").click()
    expect(target).to_contain_text("exited", timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "test_stop_a_container_from_the_ui-exited.png"),
                    full_page=True)
    expect(page.locator(".gp-container-list .gp-status")).to_contain_text(
        "Stopped 1 container")
    assert containers(podman_engine.url)["ghostpanel-demo-web-2"] == "exited"
    run(_seed(podman_engine.url))  # running again, for the tests after this one
    expect(target).to_contain_text("running", timeout=30_000)


def assert_the_log_is_followed(page: Page, how: str = "") -> None:
    """The Logs tab shows the demo log writer's lines, and a newer one arrives within
    20 s (the log is followed, not read once)."""
    open_tab(page, "Logs")
    view = page.locator(".gp-log-output")
    expect(view).to_contain_text("demo-logger: line", timeout=30_000)

    def newest() -> int:
        numbers = re.findall(r"demo-logger: line (\d+)", view.inner_text())
        return max(map(int, numbers)) if numbers else 0

    first = newest()
    deadline = time.monotonic() + 20
    while newest() <= first and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert newest() > first, f"no new line arrived: the log is not followed{how}"


def test_logs_tab_follows_the_log_writer(page: Page) -> None:
    assert_the_log_is_followed(page)
    expect(page.locator(".gp-log-output")).to_contain_text(
        "every fifth line goes to stderr", timeout=30_000)


def test_stats_tab_charts_the_running_containers(page: Page) -> None:
    open_tab(page, "Stats")
    monitor = page.locator(".gp-stats-monitor")
    expect(monitor.locator(".gp-status")).to_contain_text(
        "last sample at", timeout=60_000)
    expect(monitor).to_contain_text("ghostpanel-demo-logger")
    # Four Bokeh charts (CPU, memory, network, block IO), drawn on canvases.
    charts = monitor.locator("canvas")
    expect(charts.first).to_be_visible(timeout=30_000)
    assert charts.count() >= 4
    # Sampling goes on: the time of the last sample moves.
    status = monitor.locator(".gp-status")
    first = status.inner_text()
    expect(status).not_to_have_text(first, timeout=30_000)


def test_images_tab_pull_without_a_registry_says_why(page: Page) -> None:
    # Nothing listens on loopback port 1: the pull fails, and the widget must say so.
    # (A pull that succeeds is the next test, from the session's private registry.)
    open_tab(page, "Images")
    browser_view = page.locator(".gp-image-browser")
    expect(browser_view).to_contain_text("localhost/busybox:latest", timeout=30_000)
    browser_view.get_by_placeholder("registry.local:5000/app:1.4").fill(
        "localhost:1/nope:latest")
    browser_view.get_by_role("button", name="Pull").click()
    status = browser_view.locator(".gp-status-error")
    expect(status).to_contain_text("Pull localhost:1/nope:latest failed", timeout=60_000)


async def _remove_image(url: str, reference: str) -> None:
    async with connect(url, name="cleanup") as env:
        with contextlib.suppress(NotFound):  # the pull may never have happened
            await env.images.remove(reference)


# Every width the pull's bar takes, in order: the page records them as they change, so
# that none is missed between two looks from the test.
_RECORD_WIDTHS = """bar => {
    window.gpBarWidths = [];
    new MutationObserver(() => window.gpBarWidths.push(bar.style.width))
        .observe(bar, {attributes: true, attributeFilter: ["style"]});
}"""


def test_images_tab_pull_from_the_registry_fills_the_bar(
        page: Page, podman_engine: PodmanService, registry_images: RegistryImages) -> None:
    # Through the registry's slow door the payload's layer takes ~3 s: Podman reports its
    # bytes as they arrive, and the bar follows them.
    reference = registry_images.reference(registry_images.payload, slow=True)
    open_tab(page, "Images")
    browser_view = page.locator(".gp-image-browser")
    expect(browser_view).to_contain_text("localhost/busybox:latest", timeout=30_000)
    expect(browser_view).not_to_contain_text(reference)
    bar = browser_view.locator(".progress-bar")
    bar.evaluate(_RECORD_WIDTHS)
    browser_view.get_by_placeholder("registry.local:5000/app:1.4").fill(reference)
    try:
        browser_view.get_by_role("button", name="Pull").click()
        expect(browser_view).to_contain_text("Downloading: ", timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / (
            "test_images_tab_pull_from_the_registry_fills_the_bar-pulling.png")),
                        full_page=True)
        expect(browser_view.locator(".gp-status-success")).to_contain_text(
            f"Pulled {reference}", timeout=60_000)
        expect(browser_view).to_contain_text(f"Pulled {reference}")
        expect(bar).to_have_class(re.compile(r"progress-bar-success"))
        expect(browser_view.locator(".tabulator-row", has_text=reference)).to_be_visible()
        widths = [float(width.rstrip("%")) for width in page.evaluate("window.gpBarWidths")
                  if width]
        # From empty, through at least one partial filling, to full; never backwards.
        assert widths and widths[-1] == 100, widths
        assert any(0 < width < 100 for width in widths), widths
        assert widths == sorted(widths), widths
        assert reference in images(podman_engine.url)
    finally:
        run(_remove_image(podman_engine.url, reference))


def test_empty_environment_offers_the_demo_containers(page: Page,
                                                      spare_engine: PodmanService) -> None:
    assert containers(spare_engine.url) == {}
    pick_environment(page, SPARE)
    empty = page.locator(".gp-empty-state")
    expect(empty).to_contain_text(f"No containers on {SPARE} yet", timeout=60_000)
    empty.get_by_role("button", name="Start demo containers").click()
    for name in DEMO_NAMES:
        expect(row(page, name)).to_contain_text(SPARE, timeout=90_000)
    expect(empty).to_be_hidden()
    expect(page.locator(".gp-ops-dashboard > .gp-status").first).to_contain_text(
        "Started 3 demo containers", timeout=30_000)
    on_spare = containers(spare_engine.url, label=[DEMO_LABEL])
    assert sorted(on_spare) == sorted(DEMO_NAMES)
    assert set(on_spare.values()) == {"running"}


def test_engine_that_goes_away_is_reported_and_recovers(page: Page,
                                                        spare_engine: PodmanService) -> None:
    run(_seed(spare_engine.url))  # something to show (already there after the test above)
    pick_environment(page, SPARE)
    status = page.locator(".gp-ops-dashboard > .gp-status").first
    expect(row(page, "ghostpanel-demo-logger")).to_be_visible(timeout=60_000)
    spare_engine.stop()
    try:
        expect(status).to_contain_text(f"Environment '{SPARE}' is unreachable",
                                        timeout=60_000)
    finally:
        spare_engine.start()
    expect(status).to_contain_text(f"Environment '{SPARE}' is back", timeout=60_000)
    expect(row(page, "ghostpanel-demo-logger")).to_contain_text("running")
