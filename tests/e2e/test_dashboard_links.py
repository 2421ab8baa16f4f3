"""The dashboard's views as links, in Chromium: ``ghostpanel up`` serving Voila, one
server for the module (the session engine as ``e2e`` with the demo containers, and an
empty ``e2e-links-spare`` engine of the module's own).

- home: a card's click opens its environment's containers;
- a click on a container's name opens its page in place of the list; the address
  follows (``?env=e2e&tab=overview&container=...``), then the page's tab;
- Back returns to the previous view (the page's Overview, then the list), and Forward
  comes back, without loading the page again;
- an address with a view, reloaded (as a shared link is opened), shows that view.

The stale links (an unknown environment or container) are
tests/integration/test_widget_dashboard.py's: each page load here costs a kernel.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server, failed, registered_environment, start_server
from tests.e2e.test_dashboard_browser import _seed, _unseed, run
from tests.podman_service import PodmanService

ENV = "e2e"
SPARE = "e2e-links-spare"
WEB = "ghostpanel-demo-web-1"
LOAD_TIMEOUT_MS = 120_000


def view(page: Page) -> dict[str, str]:
    """The view the address names now (``env``, ``tab``, ``container``)."""
    query = parse_qs(urlsplit(page.url).query)
    return {key: values[0] for key, values in query.items()
            if key in ("env", "tab", "container")}


def wait_for_view(page: Page, **wanted: str) -> None:
    page.wait_for_function(
        """wanted => {
            const found = new URLSearchParams(window.location.search)
            return Object.entries(wanted).every(([key, value]) => found.get(key) === value)
                && ["env", "tab", "container"].every(
                    key => key in wanted || !found.has(key))
        }""", arg=wanted, timeout=30_000)


@pytest.fixture(scope="module")
def server(podman_engine: PodmanService, spare_engine: PodmanService) -> Iterator[Server]:
    run(_seed(podman_engine.url))
    try:
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
    finally:
        run(_unseed(podman_engine.url))


@pytest.fixture(scope="module")
def tab(browser: Browser, server: Server) -> Iterator[Page]:
    """One browser tab for the module; each test navigates it where it starts."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.gp_console = console  # type: ignore[attr-defined]  # read when a test fails
    yield page
    page.goto("about:blank")
    page.close(run_before_unload=True)
    context.close()


@pytest.fixture
def page(tab: Page, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield tab
    suffix = "-FAILED" if failed(request) else ""
    tab.screenshot(path=str(screenshots / f"{request.node.name}{suffix}.png"), full_page=True)
    if suffix:
        (screenshots / f"{request.node.name}{suffix}.log").write_text(
            "\n".join(tab.gp_console))  # type: ignore[attr-defined]


def open_dashboard(page: Page, server: Server, query: str = "") -> None:
    page.goto(server.url + query, timeout=LOAD_TIMEOUT_MS)
    page.locator(".gp-ops-dashboard").wait_for(timeout=LOAD_TIMEOUT_MS)


def name_cell(page: Page, name: str) -> object:
    return page.locator(".gp-container-list .tabulator-row", has_text=name).locator(
        ".tabulator-cell[tabulator-field=name]")


def test_a_home_card_opens_its_environment(page: Page, server: Server) -> None:
    open_dashboard(page, server)
    page.get_by_role("tab", name="Home", exact=True).click()
    wait_for_view(page, env=ENV, tab="home")
    card = page.locator(".gp-home-card", has_text=SPARE)
    expect(card).to_be_visible(timeout=60_000)
    card.locator(".gp-home-open").click()
    wait_for_view(page, env=SPARE, tab="containers")
    expect(page.get_by_role("tab", name="Containers", exact=True)).to_have_attribute(
        "aria-selected", "true")
    expect(page.locator(".gp-empty-state")).to_contain_text(  # its engine is empty
        f"No containers on {SPARE} yet", timeout=60_000)
    page.go_back()  # the home view again, in the same page
    wait_for_view(page, env=ENV, tab="home")
    expect(card).to_be_visible(timeout=30_000)


def test_a_row_opens_the_page_the_address_follows_and_back_returns(
        page: Page, server: Server) -> None:
    # Where the test before left the page, if it did (a page load costs a kernel).
    if not page.url.startswith(server.url) or not page.locator(".gp-ops-dashboard").count():
        open_dashboard(page, server)
    page.get_by_role("tab", name="Containers", exact=True).click()
    cell = name_cell(page, WEB)
    expect(cell).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    if view(page):  # the tab's click is an entry of its own (not on a fresh page: "/")
        wait_for_view(page, env=ENV, tab="containers")
    first_url = page.url
    page.evaluate("window.gpSameDocument = true")  # gone if the page loads again
    cell.click()
    container_page = page.locator(".gp-container-page")
    expect(container_page).to_be_visible(timeout=30_000)
    expect(container_page).to_contain_text(WEB)
    expect(page.locator(".gp-container-list")).to_be_hidden()
    wait_for_view(page, env=ENV, tab="overview", container=WEB)

    container_page.get_by_role("tab", name="Logs", exact=True).click()
    wait_for_view(page, env=ENV, tab="logs", container=WEB)

    page.go_back()
    wait_for_view(page, env=ENV, tab="overview", container=WEB)
    expect(container_page.get_by_role("tab", name="Overview", exact=True)
           ).to_have_attribute("aria-selected", "true")
    page.go_back()
    assert page.url == first_url
    expect(page.locator(".gp-container-list")).to_be_visible(timeout=30_000)
    expect(container_page).to_have_count(0)
    assert page.evaluate("window.gpSameDocument") is True  # no page load: popstate

    page.go_forward()
    page.go_forward()
    wait_for_view(page, env=ENV, tab="logs", container=WEB)
    expect(container_page.get_by_role("tab", name="Logs", exact=True)
           ).to_have_attribute("aria-selected", "true", timeout=30_000)

    # Reloaded (as a shared link is opened), the address shows the same view.
    page.reload(timeout=LOAD_TIMEOUT_MS)
    assert page.evaluate("window.gpSameDocument") is None
    expect(container_page.get_by_role("tab", name="Logs", exact=True)
           ).to_have_attribute("aria-selected", "true", timeout=LOAD_TIMEOUT_MS)
    expect(container_page).to_contain_text(WEB)
    expect(page.locator(".gp-container-list")).to_be_hidden()
    assert view(page) == {"env": ENV, "tab": "logs", "container": WEB}

    container_page.get_by_role("button", name="\u2190 Containers").click()
    wait_for_view(page, env=ENV, tab="containers")
    expect(page.locator(".gp-container-list")).to_be_visible()
    expect(container_page).to_have_count(0)
