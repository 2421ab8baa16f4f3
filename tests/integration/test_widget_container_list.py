"""``ContainerList`` without a browser, against real Podman engines.

Buttons are pressed with ``click()``, rows ticked with ``select()`` (what a checkbox in
the browser becomes on the kernel side); what the engine did is checked through the
library, and what the widget shows through ``.frame`` and its status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._container_list import COLUMNS, ContainerList
from traitlets import TraitError

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, Environment, NotFound
from tests.integration.waiting import until
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService
from tests.unit.fake_browser import FakeBrowser

pytestmark = pytest.mark.integration

# Ends at once on SIGTERM (a bare `sleep` as PID 1 ignores it and waits for the kill).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
# Keeps one CPU busy (a shell loop that never sleeps); ends at once on SIGTERM too.
SPINNER = ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]



def row(widget: ContainerList, name: str, environment: str = "a") -> dict[str, Any] | None:
    frame = widget.data
    found = frame[(frame["name"] == name) & (frame["environment"] == environment)]
    return None if found.empty else found.iloc[0].to_dict()


@pytest.fixture
async def widgets() -> AsyncIterator[Callable[..., ContainerList]]:
    """``widgets(envs, **options)``: a ContainerList, closed (tasks ended) after the test."""
    made: list[ContainerList] = []

    def make(*args: Any, **options: Any) -> ContainerList:
        widget = ContainerList(*args, **options)
        made.append(widget)
        return widget

    yield make
    for widget in made:
        await widget.aclose()


def count_listings(env: Environment, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every ``env.containers.list`` call (its keyword arguments)."""
    calls: list[dict[str, Any]] = []
    original = env.containers.list

    async def listing(**options: Any) -> list[Container]:
        calls.append(options)
        return await original(**options)

    monkeypatch.setattr(env.containers, "list", listing)
    return calls


async def test_rows_for_containers_in_two_environments(
        env: Environment, env_b: Environment, make_container, make_container_b,
        widgets) -> None:
    in_a = await make_container(labels={"tier": "web"})
    in_b = await make_container_b(command=SLEEPER)
    await in_b.start()

    table = widgets([env, env_b])
    await table.ready()

    assert tuple(table.frame.columns) == COLUMNS
    a, b = row(table, in_a.name, "a"), row(table, in_b.name, "b")
    assert a is not None and b is not None
    assert (a["environment"], a["image"], a["state"], a["id"]) == (
        "a", BUSYBOX_REFERENCE, "created", in_a.id)
    assert (b["environment"], b["state"]) == ("b", "running")
    assert b["status"].startswith("Up")
    assert row(table, in_a.name, "b") is None  # each engine its own containers
    assert table.status.level != "error"
    # The grid is Panel's Tabulator inside an ipywidget, not an HTML string.
    assert type(table.table_view).__name__ == "BokehModel"
    assert table.table.pagination == "remote"
    assert table.table.selectable == "checkbox"


async def test_rows_listed_before_the_page_shows_the_table_reach_it_when_it_does(
        env: Environment, make_container, widgets,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A table in a tab the user has not opened yet (no view of it in the browser) still
    shows what it holds when the tab opens, and changes as they come from then on."""
    web = await make_container(command=SLEEPER)
    table = widgets(env)
    browser = FakeBrowser(table.table_view, monkeypatch)  # no view yet
    await table.ready()
    table.text_filter = web.name  # before the view too
    assert row(table, web.name) is not None
    assert browser.patches == []  # held: nothing a view being made could take half of

    browser.show()
    (grid,) = browser.document().roots
    assert list(grid.source.data["name"]) == list(table.frame["name"]) == [web.name]
    assert list(grid.source.data["state"]) == ["created"]

    await web.start()
    await until(lambda: (row(table, web.name) or {}).get("state") == "running",
                timeout=5, what="its row turns running")
    assert browser.patches  # sent as it came


async def test_published_ports_are_shown(env: Environment, make_container, widgets) -> None:
    web = await make_container(command=SLEEPER, ports={"8080/tcp": None})
    await web.start()
    table = widgets(env)
    await table.ready()
    shown = row(table, web.name)
    assert shown is not None
    host, _, inner = shown["ports"].partition("->")
    assert inner == "8080/tcp"
    assert host.rsplit(":", 1)[1].isdigit()  # the host port the engine picked


async def test_clicking_stop_stops_the_selected_container(
        env: Environment, make_container, widgets) -> None:
    web = await make_container(command=SLEEPER)
    other = await make_container(command=SLEEPER)
    await web.start()
    await other.start()
    table = widgets(env, stop_timeout=5)
    await table.ready()
    assert table.stop_button.disabled  # nothing ticked yet

    table.select([web.name])
    assert table.selected == [("a", web.name)]
    assert not table.stop_button.disabled
    table.stop_button.click()
    assert table.task is not None
    await asyncio.wait_for(table.task, 30)

    assert (await env.containers.get(web.id)).state == "exited"
    assert (await env.containers.get(other.id)).state == "running"  # not selected
    assert table.status.level == "success", table.status.message
    assert web.name in table.status.message
    await until(lambda: (row(table, web.name) or {}).get("state") == "exited",
                what="the stopped container's row says exited")
    assert table.selected == [("a", web.name)]  # the row stays ticked

    table.start_button.click()
    await asyncio.wait_for(table.task, 30)
    assert (await env.containers.get(web.id)).state == "running"
    await until(lambda: (row(table, web.name) or {}).get("state") == "running",
                what="the started container's row says running")


async def test_an_engine_event_adds_and_updates_one_row_without_listing_again(
        env: Environment, make_container, widgets, monkeypatch: pytest.MonkeyPatch) -> None:
    listings = count_listings(env, monkeypatch)
    table = widgets(env)
    await table.ready()
    assert len(listings) == 1  # the first listing, and no other

    made = await make_container(command=SLEEPER)  # through the library, not the widget
    await until(lambda: row(table, made.name) is not None, timeout=5,
                what="a row for the container made meanwhile")
    assert row(table, made.name)["state"] == "created"

    await made.start()
    await until(lambda: (row(table, made.name) or {}).get("state") == "running",
                timeout=5, what="its row turns running")

    await made.remove(force=True)
    await until(lambda: row(table, made.name) is None, timeout=5, what="its row goes")
    assert len(listings) == 1, f"listed again: {listings}"


async def test_text_and_state_filters_narrow_the_frame(
        env: Environment, make_container, widgets) -> None:
    running = await make_container(command=SLEEPER, name=f"gp-filter-up-{time.time_ns()}")
    await running.start()
    created = await make_container(name=f"gp-filter-new-{time.time_ns()}")
    table = widgets(env)
    await table.ready()
    ours = {running.name, created.name}

    table.text_filter = "gp-filter-"
    assert set(table.frame["name"]) == ours
    table.text_field.value = running.name.upper()  # typed in the field; any case
    assert table.text_filter == running.name.upper()
    assert list(table.frame["name"]) == [running.name]

    table.text_filter = created.id[:12]  # a short id finds its container, by its start
    assert list(table.frame["name"]) == [created.name]
    table.text_filter = created.id[5:12]  # not by hex digits in the middle of an id
    assert created.name not in set(table.frame["name"])

    table.text_filter = "gp-filter-"
    table.state_field.value = "running"  # picked in the dropdown
    assert table.state_filter == "running"
    assert list(table.frame["name"]) == [running.name]
    table.state_filter = "created"
    assert list(table.frame["name"]) == [created.name]
    assert set(table.data["name"]) >= ours  # the rows are all still there
    assert "1 of" in table.count_label.value

    table.state_filter = ""
    table.text_filter = ""
    assert set(table.frame["name"]) >= ours
    with pytest.raises(TraitError, match="state_filter"):
        table.state_filter = "sleeping"


async def test_remove_asks_for_confirmation_first(
        env: Environment, make_container, widgets) -> None:
    doomed = await make_container(command=SLEEPER)
    await doomed.start()
    table = widgets(env)
    await table.ready()
    table.select([("a", doomed.name)])

    table.remove_button.click()
    assert table.confirming
    assert doomed.name in table.confirm_text.value
    assert "running" in table.confirm_text.value
    await asyncio.sleep(0.2)
    assert (await env.containers.get(doomed.id)).state == "running"  # nothing done yet

    table.cancel_button.click()
    assert not table.confirming
    assert table.status.message == "Remove cancelled."
    await env.containers.get(doomed.id)  # still there

    table.remove_button.click()
    table.force_box.value = True  # it is running: kill it
    table.confirm_button.click()
    assert not table.confirming
    await asyncio.wait_for(table.task, 30)
    with pytest.raises(NotFound):
        await env.containers.get(doomed.id)
    assert table.status.level == "success", table.status.message
    assert row(table, doomed.name) is None
    assert table.selected == []


async def test_a_failed_action_is_shown_in_the_widget(
        env: Environment, make_container, widgets) -> None:
    running = await make_container(command=SLEEPER)
    await running.start()
    table = widgets(env)
    await table.ready()
    table.select([running.name])
    failed = await table.remove_selected()  # running, without force: the engine refuses
    assert list(failed) == [("a", running.name)]
    assert table.status.level == "error"
    assert f"a/{running.name}" in table.status.message
    assert "cannot remove container" in table.status.message  # the engine's own words
    assert (await env.containers.get(running.id)).state == "running"

    table.select([])
    assert await table.stop_selected() == {}
    assert table.status.level == "warning"
    assert "select containers first" in table.status.message
    with pytest.raises(KeyError, match="no container 'gp-nothing-here'"):
        table.select(["gp-nothing-here"])


async def test_show_all_false_lists_running_containers_only(
        env: Environment, make_container, widgets) -> None:
    up = await make_container(command=SLEEPER)
    await up.start()
    idle = await make_container()
    table = widgets(env, show_all=False, stop_timeout=5)
    await table.ready()
    assert row(table, up.name) is not None
    assert row(table, idle.name) is None
    await up.stop(timeout=5)
    await until(lambda: row(table, up.name) is None, timeout=5,
                what="a stopped container leaves a running-only list")


async def test_stats_fill_cpu_and_memory(env: Environment, make_container, widgets) -> None:
    busy = await make_container(command=SPINNER)
    idle = await make_container(command=SLEEPER)
    await busy.start()
    await idle.start()
    table = widgets(env, stats_interval=0.5)
    await table.ready()

    def cell(name: str, column: str) -> float:
        return float((row(table, name) or {}).get(column, math.nan))

    # NaN (not sampled yet) compares false: both rows must have real figures.
    await until(lambda: cell(busy.name, "cpu") > 5 and cell(idle.name, "memory") > 0,
                timeout=20, what="CPU and memory figures for the running containers")
    # A percentage of one CPU, as docker stats shows it: one busy shell is at most 100.
    assert cell(busy.name, "cpu") <= 100 * (os.cpu_count() or 1)
    assert 0 <= cell(idle.name, "cpu") < cell(busy.name, "cpu")
    assert 0 < cell(busy.name, "memory") < 256  # MiB: a busybox shell, not bytes


async def test_without_live_updates_refresh_lists_again(
        env: Environment, make_container, widgets) -> None:
    table = widgets(env, live=False)
    await table.ready()
    made = await make_container()
    await asyncio.sleep(0.3)
    assert row(table, made.name) is None  # no events followed
    table.refresh_button.click()
    await asyncio.wait_for(table.task, 30)
    assert row(table, made.name) is not None
    assert table.status.level == "success"


async def test_an_engine_that_goes_away_is_named_and_the_list_recovers(
        env: Environment, make_container,
        extra_podman_engine: Callable[..., PodmanService], widgets) -> None:
    engine = extra_podman_engine()
    steady = await make_container()
    async with connect(engine.url, name="doomed") as doomed:
        first = await doomed.containers.create(image=BUSYBOX_REFERENCE, name="gp-first",
                                               command=SLEEPER)
        table = widgets([env, doomed])
        table.retry_max = 1.0
        await table.ready()
        assert row(table, first.name, "doomed") is not None

        await asyncio.to_thread(engine.stop)
        await until(lambda: table.status.level == "error", timeout=10,
                    what="the status line reports the engine")
        assert "'doomed' is unreachable" in table.status.message
        assert "retrying in" in table.status.message
        assert "'a'" not in table.status.message  # the other environment is fine
        assert row(table, steady.name, "a") is not None

        await asyncio.to_thread(engine.start)
        # The engine came back with a container it did not have when it left.
        later = await doomed.containers.create(image=BUSYBOX_REFERENCE, name="gp-later")
        await until(lambda: table.status.level == "success", timeout=15,
                    what="the status line says the engine is back")
        assert "'doomed' is back" in table.status.message
        await until(lambda: row(table, later.name, "doomed") is not None, timeout=5,
                    what="the new container's row")
        assert row(table, first.name, "doomed") is not None

        # Events flow again after the re-connection.
        await first.start()
        await until(lambda: (row(table, first.name, "doomed") or {}).get("state")
                    == "running", timeout=5, what="an event after the re-connection")
        await table.aclose()  # before its environment closes


async def test_an_engine_that_never_answered_is_named(
        env: Environment, make_container, tmp_path, widgets) -> None:
    made = await make_container()
    ghost = Environment(f"unix://{tmp_path}/no-engine.sock", name="ghost")
    try:
        table = widgets([env, ghost])
        table.retry_max = 0.5
        await table.ready()
        assert table.status.level == "error"
        assert "'ghost' is unreachable" in table.status.message
        assert "no-engine.sock" in table.status.message  # where it looked
        assert row(table, made.name) is not None  # the other environment is listed

        await ghost.aclose()  # closed under the widget: it says so and stops trying
        await until(lambda: "closed; connect again" in table.status.message,
                    what="the closed environment is reported")
        follower = table._followers.get("ghost")
        assert follower is not None
        await until(follower.done, what="the follower of the closed environment to end")
    finally:
        await ghost.aclose()


async def test_closing_ends_every_task(env: Environment, make_container) -> None:
    await make_container()
    table = ContainerList(env, stats_interval=0.5)
    await table.ready()
    tasks: list[asyncio.Task[Any]] = table._followers.tasks()
    assert table._stats_task is not None
    tasks.append(table._stats_task)
    await table.aclose()
    assert all(task.done() for task in tasks)
    await asyncio.sleep(0.1)
    assert all(task.done() for task in tasks)
    assert not env.client.closed  # the caller's environment is the caller's to close


async def test_environment_specs_are_opened_and_closed_by_the_widget(
        engine_url: str, widgets) -> None:
    from ghostpanel_kernel.environments import EnvironmentSpec

    table = widgets(EnvironmentSpec("spec-env", engine_url))
    await table.ready()
    (opened,) = table.environments
    assert opened.name == "spec-env"
    assert table.status.level != "error"
    await table.aclose()
    assert opened.client.closed


async def test_bad_arguments_are_refused(env: Environment) -> None:
    with pytest.raises(ValueError, match="two environments are named 'a'"):
        ContainerList([env, env])
    with pytest.raises(TypeError, match="not str"):
        ContainerList("unix:///run/podman/podman.sock")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stats_interval"):
        ContainerList(env, stats_interval=0)


async def test_a_click_on_a_name_or_open_with_one_row_ticked_asks_to_open_it(
        env: Environment, make_container, widgets) -> None:
    from panel.models.tabulator import CellClickEvent

    first = await make_container(command=SLEEPER)
    second = await make_container(command=SLEEPER)
    table = widgets(env)
    await table.ready()
    assert table.open_button.layout.display == "none"  # nothing listens yet
    opened: list[tuple[str, str]] = []
    table.on_open(lambda environment, name: opened.append((environment, name)))
    assert table.open_button.layout.display == "flex"

    # What the browser sends for a click on a name cell: the row's position on the page.
    # Sorted by name the other way round, the second container is the first row shown.
    table.table.sorters = [{"field": "name", "dir": "desc"}]
    position = list(table.frame["name"]).index(second.name)
    table.table._process_event(CellClickEvent(model=None, column="name", row=position))
    assert opened == [("a", second.name)]
    # A click on another column opens nothing (it is for reading, or ticking).
    table.table._process_event(CellClickEvent(model=None, column="image", row=position))
    assert opened == [("a", second.name)]

    assert table.open_button.disabled  # nothing ticked
    table.select([first.name, second.name])
    assert table.open_button.disabled  # two: which one?
    table.select([first.name])
    assert not table.open_button.disabled
    table.open_button.click()
    assert opened[-1] == ("a", first.name)

    def broken(environment: str, name: str) -> None:
        raise RuntimeError("no page today")

    table.on_open(broken)
    table.open_button.click()
    assert table.status.level == "error" and "no page today" in table.status.message


async def test_check_updates_fills_the_update_column_from_the_registry(
        env: Environment, make_container, widgets, podman_engine: PodmanService,
        image_registry: Any, busybox_archive: Any) -> None:
    import uuid

    name = f"gp-list-updates-{uuid.uuid4().hex[:6]}"
    repository = f"gp-list-updates/{name}:latest"
    made: list[str] = []  # image ids, removed at the end

    def push(version: int) -> str:
        staged = f"localhost/{name}-v{version}:latest"
        made.append(podman_engine.import_image(
            busybox_archive, staged, changes=('CMD ["sh"]', f"ENV V={version}")))
        reference = image_registry.push(podman_engine, staged, repository)
        podman_engine.podman("image", "untag", staged)
        return reference

    reference = push(1)
    containers: list[Container] = []
    try:
        await env.images.pull(reference)
        from_registry = await make_container(image=reference, command=SLEEPER)
        local = await make_container(command=SLEEPER)
        containers.append(from_registry)
        table = widgets(env)
        await table.ready()
        assert row(table, from_registry.name)["update"] == ""  # not asked yet

        shown = await table.check_updates()
        assert shown[("a", from_registry.name)] == "current"
        assert shown[("a", local.name)] == "unknown"  # a local image: no registry to ask
        await until(lambda: (row(table, from_registry.name) or {}).get("update") == "current",
                    what="the Update cell to show current")

        push(2)  # the same tag now names another image
        shown = await table.check_updates()
        assert shown[("a", from_registry.name)] == "update available"
        await until(lambda: (row(table, from_registry.name) or {}).get("update")
                    == "update available", what="the Update cell to show the update")
        assert (row(table, local.name) or {}).get("update") == "unknown"
    finally:
        for container in containers:  # before its image goes
            with contextlib.suppress(NotFound):
                await container.remove(force=True)
        with contextlib.suppress(NotFound):
            await env.images.remove(reference)
        for image_id in made:
            with contextlib.suppress(NotFound):
                await env.images.remove(image_id, force=True)
