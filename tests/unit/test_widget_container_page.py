"""``ContainerPage`` without an engine: the Overview and header made from canned inspect
answers, which buttons each state enables, the traits' checks, and how the page takes
the engine's events (a scripted follower in place of the events stream). The real
engine's side is tests/integration/test_widget_container_page.py.
"""

from __future__ import annotations

import asyncio
import doctest
import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ghostpanel_widgets._container_overview as overview_module
import ghostpanel_widgets._container_page as page_module
import pytest
from ghostpanel_widgets._container_overview import (
    header_html,
    link_host,
    overview_html,
    port_links,
    resources,
)
from ghostpanel_widgets._container_page import TABS, ContainerPage, allowed_actions
from ipywidgets.widgets.widget import _instances
from traitlets import TraitError

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, Environment, Event, NotFound

ID = "c0ffee" * 10 + "abcd"

INSPECT: dict[str, Any] = {
    "Id": ID, "Name": "/web", "Created": "2024-05-01T10:00:00.123Z",
    "State": {"Status": "exited", "ExitCode": 3, "StartedAt": "2024-05-01T10:00:01Z",
              "FinishedAt": "2024-05-01T11:00:00Z",
              "Health": {"Status": "unhealthy", "Log": [
                  {"ExitCode": 0, "Output": "ok"},
                  {"ExitCode": 1, "Output": "curl: (7) refused\n"}]}},
    "Config": {"Image": "nginx:1.27", "Cmd": ["nginx", "-g", "daemon off;"],
               "Entrypoint": ["/docker-entrypoint.sh"],
               "Labels": {"com.example.team": "web", "z": "<b>"},
               "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"]}},
    "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
                   "NanoCpus": 2_000_000_000, "Memory": 512 * 1024 ** 2,
                   "MemoryReservation": 0, "PidsLimit": 100},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                  "443/tcp": None,
                                  "53/udp": [{"HostIp": "", "HostPort": "5353"}]}},
    "Mounts": [{"Type": "volume", "Name": "html", "Destination": "/usr/share/nginx/html",
                "RW": True}],
}


def text(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", value))


@pytest.mark.parametrize("module", [overview_module, page_module])
def test_the_examples_in_the_docstrings_hold(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


def test_overview_says_what_an_operator_looks_for() -> None:
    shown = overview_html(INSPECT, engine_url="tcp://bolt-7.lan:2375", state="exited")
    words = text(shown)
    for expected in ("exited (exit code 3)", "unhealthy", "exit 1: curl: (7) refused",
                     "bolt-7.lan:8080 \u2192 80/tcp", "443/tcp (not published)",
                     "nginx:1.27", "nginx -g 'daemon off;'", "/docker-entrypoint.sh",
                     "on-failure:5", "512 MiB", "2024-05-01 10:00 UTC",
                     "2024-05-01 11:00 UTC", "volume html \u2192 /usr/share/nginx/html (rw)",
                     "com.example.team"):
        assert expected in words, expected
    assert re.search(r"CPUs\s+2\b", words) and re.search(r"PIDs\s+100\b", words)
    assert 'href="http://bolt-7.lan:8080/"' in shown
    assert 'href="http://bolt-7.lan:5353/"' not in shown  # UDP: no link
    assert "<b>" not in shown.replace("<b>Labels</b>", "")  # label values escaped


def test_a_running_container_has_no_finished_time_and_no_health_without_a_check() -> None:
    attrs = {**INSPECT, "Config": {"Image": "busybox"},
             "State": {"Status": "running", "StartedAt": "2024-05-01T10:00:01Z",
                       "FinishedAt": "0001-01-01T00:00:00Z"}}
    words = text(overview_html(attrs, engine_url="unix:///run/podman/podman.sock",
                               state="running"))
    assert "no healthcheck" in words and "Finished" not in words
    assert "localhost:8080 \u2192 80/tcp" in words


@pytest.mark.parametrize(("url", "host_ip", "expected"), [
    ("unix:///run/podman/podman.sock", "0.0.0.0", "localhost"),
    ("ssh://ops@bolt-2.lan/run/podman/podman.sock", "", "bolt-2.lan"),
    ("https://[fd00::7]:2376", "::", "[fd00::7]"),
    ("https://gateway.lan/api/v1/environments/prod/engine", "0.0.0.0", "gateway.lan"),
    ("tcp://bolt-7.lan:2375", "127.0.0.1", "127.0.0.1"),
])
def test_a_port_link_goes_to_the_engine_host_unless_bound_to_one_address(
        url: str, host_ip: str, expected: str) -> None:
    assert link_host(url, host_ip) == expected


def test_resources_read_podman_cpu_quota_and_say_unlimited() -> None:
    podman = {"HostConfig": {"CpuQuota": 50000, "CpuPeriod": 100000, "CpusetCpus": "0-1"}}
    assert resources(podman) == [("CPUs", "0.5 (on CPUs 0-1)"), ("Memory", "unlimited"),
                                 ("Memory reservation", "none"), ("PIDs", "unlimited")]
    assert port_links({}, "unix:///x") == []


def test_the_header_escapes_and_colours_the_state() -> None:
    header = header_html("<img src=x>", INSPECT, state="exited")
    assert "<img" not in header and "&lt;img src=x&gt;" in header
    assert ">exited<" in header and ">unhealthy<" in header and "nginx:1.27" in header
    assert ">removed<" in header_html("web", INSPECT, state="removed")
    assert "unhealthy" not in header_html("web", INSPECT, state="removed")


@pytest.mark.parametrize(("state", "actions"), [
    ("running", {"stop", "restart", "pause", "kill", "remove"}),
    ("paused", {"unpause", "kill", "remove"}),
    ("created", {"start", "restart", "remove"}),
    ("exited", {"start", "restart", "remove"}),
    ("restarting", {"stop", "kill", "remove"}),
    ("removing", set()), ("removed", set()), ("", set()),
])
def test_which_actions_each_state_allows(state: str, actions: set[str]) -> None:
    assert allowed_actions(state) == actions


# -- the widget, without an engine -------------------------------------------------------


@pytest.fixture
def env() -> Environment:
    return connect("unix:///nonexistent/podman.sock", name="lab")


def test_bad_arguments_are_refused(env: Environment) -> None:
    before = set(_instances)
    with pytest.raises(ValueError, match="container name or id"):
        ContainerPage(env, " ")
    with pytest.raises(ValueError, match="stats_interval"):
        ContainerPage(env, "web", stats_interval=0)
    with pytest.raises(TraitError, match="tab must be one of"):
        ContainerPage(env, "web", tab="Shell")
    assert set(_instances) == before  # refused before any widget was made


def test_without_an_event_loop_the_page_says_so_and_builds_no_tab(env: Environment) -> None:
    page = ContainerPage(env, "web", tab="overview")
    try:
        assert page.tab == "Overview" and page.tabs.titles == TABS
        assert page.status.level == "error" and "event loop" in page.status.message
        assert page.views == {} and page.task is None
        assert all(button.disabled for button in page.buttons.values())
    finally:
        page.close()


class ScriptedEvents:
    """``follow_events`` of a page, replaced: it runs ``connect``, then hands the page
    the events a test puts in :attr:`queue`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.filters: list[Any] = []

    async def __call__(self, environment: Environment, *, filters: Any,
                       on_event: Callable[[Environment, Event], None],
                       on_up: Callable[[Environment], None],
                       on_down: Callable[..., None],
                       connect: Callable[[Environment], Awaitable[Any]]) -> None:
        self.filters.append(filters)
        await connect(environment)
        on_up(environment)
        while True:
            on_event(environment, await self.queue.get())


@pytest.fixture
async def scripted(env: Environment, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[tuple[ScriptedEvents, list[Any], list[str]]]:
    """The page's events scripted, and its inspects answered from a list of states
    (the last one repeated; a state of ``None`` is a removed container); the ids or
    names inspected, in order."""
    events = ScriptedEvents()
    states: list[Any] = []
    inspected: list[str] = []

    async def get(ident: str) -> Container:
        inspected.append(ident)
        await asyncio.sleep(0)  # in flight for a turn of the loop, as a real one is
        state = states.pop(0) if len(states) > 1 else states[0]
        if state is None:
            raise NotFound(404, "no such container", method="GET", path=f"/{ident}/json")
        return Container(env.client, {**INSPECT, "State": state})

    monkeypatch.setattr(page_module, "follow_events", events)
    monkeypatch.setattr(env.containers, "get", get)
    yield events, states, inspected
    await env.aclose()


def event(action: str, when: str) -> Event:
    from ghostpanel_kernel.engine._times import engine_time_ns

    stamp = engine_time_ns(when)
    assert stamp is not None
    return Event(type="container", action=action, actor_id=ID,
                 attributes={"name": "web"}, time=stamp / 1e9)


async def settle(page: ContainerPage) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    await page.wait_idle()


async def test_events_change_the_header_at_once_and_late_ones_are_dropped(
        env: Environment, scripted: tuple[ScriptedEvents, list[Any], list[str]]) -> None:
    events, states, inspected = scripted
    running = {"Status": "running", "StartedAt": "2024-05-01T12:00:00Z",
               "FinishedAt": "2024-05-01T11:00:00Z"}
    exited = {**running, "Status": "exited", "FinishedAt": "2024-05-01T12:05:00Z"}
    states.append(running)
    page = ContainerPage(env, "web")
    try:
        await page.task
        await settle(page)
        assert events.filters == [{"type": ["container"], "container": [ID]}]
        assert inspected == ["web", ID]  # by name, then by id once connected
        assert page.state == "running" and ">running<" in page.title.value

        # Podman: "stopped" until its clean-up, which the cleanup event says is done.
        states[:] = [{**exited, "Status": "stopped"}]
        page._on_event(page._generation, event("die", "2024-05-01T12:05:00Z"))
        assert page.state == "exited"  # from the event, before any inspect
        await settle(page)
        assert page.state == "stopped"
        assert page.attrs["State"]["FinishedAt"] == "2024-05-01T12:05:00Z"
        states[:] = [exited]
        page._on_event(page._generation, event("cleanup", "2024-05-01T12:05:01Z"))
        await settle(page)
        assert page.state == "exited"

        # A start older than the stop shown (events lag) does not flip the header.
        page._on_event(page._generation, event("start", "2024-05-01T12:00:00Z"))
        assert page.state == "exited"
        await settle(page)
        count = len(inspected)
        page._on_event(page._generation, event("exec_start: sh", "2024-05-01T12:06:00Z"))
        await settle(page)
        assert len(inspected) == count  # an exec says nothing about the state

        # Events while an inspect is in flight cost one more inspect, not one each.
        page._on_event(page._generation, event("pause", "2024-05-01T12:06:30Z"))
        await asyncio.sleep(0)  # the inspect is asked for
        assert len(inspected) == count + 1
        for action in ("unpause", "pause", "unpause"):
            page._on_event(page._generation, event(action, "2024-05-01T12:06:31Z"))
        await settle(page)
        assert len(inspected) == count + 2

        page._on_event(page._generation, event("remove", "2024-05-01T12:07:00Z"))
        assert page.removed and page.state == "removed"
        assert all(button.disabled for button in page.buttons.values())
        assert "was removed" in page.status.message
        await settle(page)
        assert page._follower is None  # nothing more can come for this id
    finally:
        await page.aclose()
