"""``ContainerPage`` on a real Podman engine, driven headless as a browser would
(``click()``, ``tab`` and ``selected_index``), checked through its state and against
the engine. Each test closes its pages (``aclose``: their tabs' readers too) and
removes its containers (``make_container``).
"""

from __future__ import annotations

import html
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._container_inspector import ContainerInspector
from ghostpanel_widgets._container_page import ContainerPage
from ghostpanel_widgets._exec_console import ExecConsole
from ghostpanel_widgets._file_browser import FileBrowser
from ghostpanel_widgets._log_stream import LogStream
from ghostpanel_widgets._stats_monitor import StatsMonitor
from ipywidgets.widgets.widget import _instances
from traitlets import TraitError

from ghostpanel_kernel.engine import Container, Environment, NotFound
from tests.integration.waiting import until

pytestmark = pytest.mark.integration

# Ends at once on SIGTERM (a shell as PID 1 would otherwise ignore it: a Stop would
# take the engine's 10 s), and says a line the Logs tab can show.
TRAPPING = ["sh", "-c", "trap 'exit 0' TERM; echo page-ready; while :; do sleep 0.1; done"]

def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def enabled(page: ContainerPage) -> set[str]:
    """The lifecycle buttons a user can click, by action."""
    return {action for action, button in page.buttons.items() if not button.disabled}


def text(value: str) -> str:
    """HTML as the eye reads it: tags out, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", value))


@pytest.fixture
async def pages() -> AsyncIterator[Callable[..., Any]]:
    """``await pages(env, container, ...)``: an opened page; all closed afterwards,
    with nothing of them left open (tabs included)."""
    made: list[ContainerPage] = []
    before = set(_instances)

    async def make(env: Environment, container: str | Container, **options: Any
                   ) -> ContainerPage:
        page = ContainerPage(env, container, **options)
        made.append(page)
        assert page.task is not None
        await page.task
        return page

    yield make
    for page in made:
        await page.aclose()
    left = set(_instances) - before
    assert not left, f"{len(left)} widgets left open: {[_instances[k] for k in left]}"


async def test_overview_shows_ports_limits_labels_and_restart_policy(
        env: Environment, make_container, make_volume, pages) -> None:
    volume = await make_volume()
    port = _free_loopback_port()
    container = await make_container(
        command=TRAPPING, ports={"8080/tcp": ("127.0.0.1", port)},
        volumes=[f"{volume.name}:/data:ro"], labels={"gp.page": "overview-test"},
        restart_policy="on-failure:3", cpus=0.5, memory="96m")
    page = await pages(env, container.name)

    assert page.state == "created" and page.status.message == ""
    header = text(page.title.value)
    assert container.name in header and "created" in header
    assert "localhost/busybox:latest" in header
    overview = page.overview.value
    assert f'href="http://127.0.0.1:{port}/"' in overview  # a port is a link
    shown = text(overview)
    for expected in (f"127.0.0.1:{port} \u2192 8080/tcp", "on-failure:3", "96 MiB",
                     "gp.page", "overview-test", f"volume {volume.name} \u2192 /data (ro)",
                     "echo page-ready", "no healthcheck"):
        assert expected in shown, expected
    assert re.search(r"CPUs\s+0\.5\b", shown), shown
    assert enabled(page) == {"start", "restart", "remove"}


async def test_lifecycle_buttons_change_the_real_state_and_the_header_follows(
        env: Environment, make_container, pages) -> None:
    container = await make_container(command=TRAPPING)
    page = await pages(env, container.id)  # by id: the header says the name
    assert container.name in page.title.value

    async def click(action: str, expected: str) -> None:
        page.buttons[action].click()
        assert page.busy and not enabled(page)  # no second click while it runs
        await page.task
        assert page.status.level == "success", page.status.message
        await container.reload()
        assert container.state == expected, action
        # The page inspects as the action ends; an older event may still come and be
        # shown until the inspect it causes (the page's _predates_shown drops most).
        await until(lambda: page.state == expected and f">{expected}<" in page.title.value,
                    what=f"the header after {action}")

    await click("start", "running")
    assert enabled(page) == {"stop", "restart", "pause", "kill", "remove"}
    await click("pause", "paused")
    assert page.buttons["pause"].description == "Unpause"
    assert enabled(page) == {"pause", "kill", "remove"}
    await click("pause", "running")  # Unpause
    assert page.buttons["pause"].description == "Pause"
    await click("restart", "running")
    await click("stop", "exited")
    assert enabled(page) == {"start", "restart", "remove"}
    exit_code = container.attrs["State"]["ExitCode"]
    # Podman may answer an inspect made during the stop with the exit code not yet
    # recorded; its cleanup event makes the page inspect again.
    await until(lambda: f"exited (exit code {exit_code})" in text(page.overview.value),
                what="the Overview's exit code")

    # A change made elsewhere reaches the page through the engine's events.
    await container.start()
    await until(lambda: page.state == "running", what="the page sees the start")
    await until(lambda: "Started" in text(page.overview.value), what="overview times")
    await container.kill()
    await until(lambda: page.state == "exited" and "kill" not in enabled(page),
                what="the page sees the kill")


async def test_tabs_are_built_when_first_shown_once_and_closed_with_the_page(
        env: Environment, make_container, pages) -> None:
    container = await make_container(command=TRAPPING)
    await container.start()
    page = await pages(env, container.name, stats_interval=0.5)
    assert page.views == {}  # nothing streams for a tab never opened

    page.tab = "logs"  # as a URL says it
    assert page.tab == "Logs" and page.tabs.selected_index == 1
    logs = page.views["Logs"]
    assert isinstance(logs, LogStream)
    await until(lambda: "page-ready" in logs.view.value, what="the log line")

    page.tabs.selected_index = 5  # a click on Inspect
    assert page.tab == "Inspect"
    inspector = page.views["Inspect"]
    assert isinstance(inspector, ContainerInspector)
    await inspector.task
    assert container.name in inspector.title.value

    page.tab = "Overview"
    page.tab = "Logs"
    assert page.views["Logs"] is logs  # built once
    assert set(page.views) == {"Logs", "Inspect"}

    page.tab = "Files"
    files = page.views["Files"]
    assert isinstance(files, FileBrowser)
    await files.task
    assert "etc" in files.listing.row_keys
    page.tab = "Stats"
    stats = page.views["Stats"]
    assert isinstance(stats, StatsMonitor) and stats.interval == 0.5  # stats_interval
    page.tab = "Exec"
    console = page.views["Exec"]
    assert isinstance(console, ExecConsole)
    result = await console.run("echo from-the-page")
    assert result is not None and result.output.strip() == "from-the-page"
    with pytest.raises(TraitError, match="tab must be one of"):
        page.tab = "Terminal"
    assert page.tab == "Exec"

    await page.aclose()
    assert logs._closed and inspector._closed and files._closed and stats._closed
    assert console._closed


async def test_remove_asks_first_and_then_the_page_says_it_is_gone(
        env: Environment, make_container, pages) -> None:
    container = await make_container(command=TRAPPING)
    await container.start()
    page = await pages(env, container.name, tab="Inspect")
    assert set(page.views) == {"Inspect"}  # the tab asked for is built at once

    page.buttons["remove"].click()
    assert "stopped first" in page.confirmation.question
    page.confirmation.cancel_button.click()
    assert page.confirmation.question == "" and page.task is not None
    await container.reload()  # still there
    assert container.state == "running"

    page.buttons["remove"].click()
    page.confirmation.confirm_button.click()
    await page.task
    assert page.removed and page.state == "removed"
    assert not enabled(page)
    assert "removed" in page.title.value
    with pytest.raises(NotFound):
        await env.containers.get(container.id)


async def test_a_container_removed_elsewhere_and_an_unknown_one(
        env: Environment, make_container, pages) -> None:
    container = await make_container(command=TRAPPING)
    page = await pages(env, container.name)
    backs: list[str] = []
    page.on_back(lambda: backs.append("back"))
    page.back_button.click()
    assert backs == ["back"]

    await container.remove(force=True)
    await until(lambda: page.removed, what="the page sees the removal")
    assert page.status.level == "warning"
    assert f"Container {container.name} was removed" in page.status.message
    assert not enabled(page)

    unknown = await pages(env, "gp-test-no-such-container")
    assert unknown.status.level == "error"
    assert "No container 'gp-test-no-such-container'" in unknown.status.message
    assert "No container" in unknown.overview.value
    assert not enabled(unknown) and unknown.state == ""

    # The same page shows another container when told to.
    other = await make_container(command=TRAPPING, labels={"gp.page": "other"})
    unknown.container = other.name
    await unknown.task
    assert unknown.state == "created" and "other" in text(unknown.overview.value)
    assert unknown.status.message == ""
    assert enabled(unknown) == {"start", "restart", "remove"}
