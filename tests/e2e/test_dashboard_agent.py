"""The dashboard with an agent as its environment: ``ghostpanel up`` on an environment
``https://127.0.0.1:PORT`` (bearer token, the agent's self-signed certificate pinned by
its fingerprint), the agent a real ``ghostpanel agent`` on the session's private engine,
driven by Debian's Chromium through Playwright.

The page fixture, the demo containers and the helpers are the browser tests' own
(``tests/e2e/test_dashboard_browser.py``); only the server differs: its environment
reaches the engine through the agent, never through the engine's socket.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ghostpanel_kernel.engine import TLSConfig
from tests.agent_process import RunningAgent, start_agent
from tests.e2e.conftest import Server, registered_environment, start_server
from tests.e2e.test_dashboard_browser import (  # noqa: F401 (fixtures)
    _seed,
    assert_the_log_is_followed,
    containers,
    open_tab,
    page,
    row,
    run,
    seeded,
)
from tests.orphans import claim
from tests.podman_service import PodmanService

AGENT_ENV = "e2e-agent"


@pytest.fixture(scope="module")
def agent(podman_engine: PodmanService) -> Iterator[RunningAgent]:
    """An agent on the session engine for this module (HTTPS and HTTP/3, one token)."""
    home = claim(Path(tempfile.mkdtemp(prefix="gp-agent-", dir="/tmp")))
    running = start_agent(podman_engine.url, home=home)
    try:
        yield running
    finally:
        try:
            assert running.stop() == 0, running.log()
        finally:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def server(agent: RunningAgent, seeded: list[str]) -> Iterator[Server]:  # noqa: F811
    """``ghostpanel up --env e2e-agent``: the agent's URL, token and fingerprint, as
    ``ghostpanel env add e2e-agent https://... --token T --fingerprint F`` stores them."""
    assert agent.fingerprint is not None
    with registered_environment(AGENT_ENV, agent.url, token=agent.token,
                                tls=TLSConfig(fingerprint=agent.fingerprint)):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        served = start_server(["up", "--port", str(port), "--env", AGENT_ENV,
                               "--no-browser"], banner="GhostPanel dashboard:")
        yield served
        try:
            assert served.interrupt() == 0, served.output()
        finally:
            served.ensure_stopped()


def test_the_agent_s_containers_are_listed(page: Page, agent: RunningAgent,  # noqa: F811
                                           seeded: list[str]) -> None:  # noqa: F811
    picker = page.locator(".gp-environment-picker select")
    expect(picker).to_contain_text(AGENT_ENV)
    expect(picker).to_contain_text(agent.url)
    for name in seeded:
        expect(row(page, name)).to_be_visible()
    assert "Traceback" not in agent.log()


def test_a_container_stops_through_the_agent(
        page: Page, podman_engine: PodmanService) -> None:  # noqa: F811
    target = row(page, "ghostpanel-demo-web-2")
    expect(target).to_contain_text("running")
    target.locator("input[type=checkbox]").check()
    page.locator(".gp-container-list").get_by_role("button", name="Stop").click()
    expect(target).to_contain_text("exited", timeout=30_000)
    expect(page.locator(".gp-container-list .gp-status")).to_contain_text(
        "Stopped 1 container")
    assert containers(podman_engine.url)["ghostpanel-demo-web-2"] == "exited"
    run(_seed(podman_engine.url))  # running again, for the test after this one
    expect(target).to_contain_text("running", timeout=30_000)  # the agent's events, seen


def test_logs_stream_through_the_agent(page: Page) -> None:  # noqa: F811
    assert_the_log_is_followed(page, " through the agent")
