"""``ghostpanel up``'s pool of preheated kernels, in Chromium: every view gets its page
from the pool, sees its first container row, and leaves nothing behind.

One server for the module (``--pool 1``) on the session engine with the demo
containers, registered twice (``e2e-pool`` and ``e2e-pool-alias``, the same engine) so
that an address naming the second shows its rows. How fast a view is lives in
bench/dashboard_views.py, not here: nothing is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import (
    Server,
    alive,
    registered_environment,
    start_server,
    wait_until,
)
from tests.e2e.test_dashboard_browser import _seed, _unseed, run
from tests.podman_service import PodmanService

ENV = "e2e-pool"
ALIAS = "e2e-pool-alias"
WEB = "ghostpanel-demo-web-1"
VIEWS = 3
LOAD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(podman_engine: PodmanService) -> Iterator[Server]:
    """``ghostpanel up --env e2e-pool --pool 1``, stopped with Ctrl-C after the module."""
    run(_seed(podman_engine.url))
    try:
        with registered_environment(ENV, podman_engine.url), \
                registered_environment(ALIAS, podman_engine.url):
            served = start_server(["up", "--env", ENV, "--no-browser", "--pool", "1"],
                                  banner="GhostPanel dashboard:")
            yield served
            try:
                assert served.interrupt() == 0, served.output()
            finally:
                served.ensure_stopped()
    finally:
        run(_unseed(podman_engine.url))


def view(browser: Browser, url: str, environment: str, screenshot: Path) -> Any:
    """Open ``url`` in a new browser context and wait for the row of the demo web server
    on ``environment``; the context (saved as ``screenshot`` if the row never shows)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    row = page.locator(".gp-container-list .tabulator-row", has_text=WEB).filter(
        has_text=environment)
    try:
        expect(row.first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    except AssertionError:
        page.screenshot(path=str(screenshot), full_page=True)
        raise
    return context


def leave(context: Any) -> None:
    """Close the tab as a user does: Voila's unload beacon ends the page's kernel."""
    for page in context.pages:
        page.goto("about:blank")
        page.close(run_before_unload=True)
    context.close()


def pool_only(server: Server, timeout: float = 60) -> int:
    """Wait until the server runs the pool's one kernel and nothing else; its PID."""
    def alone() -> list[int] | None:
        kernels = server.kernels()
        return kernels if len(kernels) == 1 else None

    return int(wait_until(alone, timeout=timeout, message="the pool's kernel alone")[0])


def test_every_view_takes_the_pooled_kernel_which_is_replaced(
        browser: Browser, server: Server, screenshots: Path) -> None:
    # The URL is printed once the pool's kernel has its dashboard built.
    used: list[int] = []
    for number in range(VIEWS):
        pooled = pool_only(server)
        assert pooled not in used, "a kernel that served a page went back to the pool"
        context = view(browser, server.url, ENV,
                       screenshots / f"speed-pool-view-{number}-FAILED.png")
        try:
            # The page runs in the kernel that was waiting (a kernel started for the
            # view would leave it idle), and at most the pool's replacement runs beside.
            assert alive(pooled)
            assert len(server.kernels()) <= 2, server.kernels()
        finally:
            leave(context)
        used.append(pooled)
        wait_until(lambda pid=pooled: not alive(pid), timeout=30,
                   message="the kernel of the page left to end")
    # Bounded: the pool's one (new) kernel and nothing else.
    assert pool_only(server) not in used


def test_the_address_names_the_environment(browser: Browser, server: Server,
                                           screenshots: Path) -> None:
    pool_only(server)
    context = view(browser, f"{server.url}?env={ALIAS}&tab=containers", ALIAS,
                   screenshots / "speed-pool-alias-FAILED.png")
    leave(context)
