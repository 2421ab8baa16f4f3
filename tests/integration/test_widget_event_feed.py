"""``EventFeed`` without a browser, against real Podman engines: what the engines do
shows up newest first, filtered, paused, bounded; an engine that goes away is named and
followed again when it returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._event_feed import COLUMNS, EventFeed
from traitlets import TraitError

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from tests.integration.waiting import until
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService
from tests.unit.fake_browser import FakeBrowser

pytestmark = pytest.mark.integration



def shown(feed: EventFeed, name: str) -> list[tuple[str, str, str]]:
    """(environment, type, action) of the rows about ``name``, top to bottom."""
    frame = feed.frame
    rows = frame[frame["name"] == name]
    return list(zip(rows["environment"], rows["type"], rows["action"], strict=True))


@pytest.fixture
async def feeds() -> AsyncIterator[Callable[..., EventFeed]]:
    made: list[EventFeed] = []

    def make(*args: Any, **options: Any) -> EventFeed:
        feed = EventFeed(*args, **options)
        made.append(feed)
        return feed

    yield make
    for feed in made:
        await feed.aclose()


async def test_events_of_two_environments_newest_first(
        env: Environment, env_b: Environment, make_container, make_container_b,
        feeds) -> None:
    feed = feeds([env, env_b])
    await feed.ready()
    assert tuple(feed.frame.columns) == COLUMNS
    assert type(feed.table_view).__name__ == "BokehModel"

    made = await make_container(command=["sleep", "300"])
    await made.start()
    other = await make_container_b()
    await until(lambda: ("a", "container", "start") in shown(feed, made.name)
                and shown(feed, other.name), timeout=10, what="both engines' events")

    actions = [action for _, _, action in shown(feed, made.name)]
    assert actions.index("start") < actions.index("create")  # newest first
    assert shown(feed, other.name)[-1] == ("b", "container", "create")
    times = list(feed.frame["time"])
    assert times == sorted(times, reverse=True)
    assert feed.events[0].time >= feed.events[-1].time
    assert feed.received >= 3
    assert feed.status.level != "error"


async def test_events_that_came_before_the_page_shows_the_feed_reach_it_when_it_does(
        env: Environment, make_container, feeds, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Events tab opened late: the rows the feed gathered meanwhile are shown then."""
    feed = feeds(env)
    browser = FakeBrowser(feed.table_view, monkeypatch)  # no view yet
    await feed.ready()
    made = await make_container()
    await until(lambda: shown(feed, made.name), what="the container's event is a row")
    assert browser.patches == []

    browser.show()
    (grid,) = browser.document().roots
    page = list(feed.frame["name"][:feed.table.page_size])
    assert list(grid.source.data["name"]) == page
    assert made.name in page

    await made.start()
    await until(lambda: ("a", "container", "start") in shown(feed, made.name),
                what="the start event")
    assert browser.patches


async def test_type_filter_pause_and_clear(env: Environment, make_container, make_volume,
                                           feeds) -> None:
    feed = feeds(env)
    await feed.ready()
    volume = await make_volume()
    container = await make_container()
    await until(lambda: shown(feed, volume.name) and shown(feed, container.name),
                what="a volume and a container event")

    feed.type_filter.value = "volume"  # picked in the dropdown
    assert feed.event_type == "volume"
    assert set(feed.frame["type"]) == {"volume"}
    assert shown(feed, container.name) == []
    feed.event_type = ""
    assert shown(feed, container.name)

    feed.pause_button.value = True  # pressed in the browser
    assert feed.paused and feed.pause_button.description == "Resume"
    before = len(feed.frame)
    later = await make_container()
    await until(lambda: any(e.name == later.name for e in feed.events),
                what="the event is received while paused")
    await asyncio.sleep(0.3)
    assert len(feed.frame) == before  # the table stood still
    assert "paused" in feed.count_label.value and "new waiting" in feed.count_label.value
    feed.paused = False
    assert shown(feed, later.name)  # what came meanwhile, shown at once

    feed.clear_button.click()
    assert len(feed.frame) == 0 and feed.events == []
    with pytest.raises(TraitError, match="max_events"):
        feed.max_events = 0


async def test_the_feed_is_bounded(env: Environment, make_container, feeds) -> None:
    feed = feeds(env, max_events=3)
    await feed.ready()
    for _ in range(3):
        await make_container()
    await until(lambda: feed.received >= 3, what="three events")
    await make_container()
    await until(lambda: feed.received >= 4, what="a fourth event")
    await asyncio.sleep(0.2)
    assert len(feed.events) == 3
    assert len(feed.frame) == 3
    assert feed.events[0].time >= feed.events[-1].time


async def test_an_engine_that_goes_away_is_named_and_followed_again(
        extra_podman_engine: Callable[..., PodmanService], feeds) -> None:
    engine = extra_podman_engine()
    async with connect(engine.url, name="doomed") as doomed:
        feed = feeds(doomed)
        feed.retry_max = 1.0
        await feed.ready()
        before = await doomed.containers.create(image=BUSYBOX_REFERENCE, name="gp-before")
        await until(lambda: shown(feed, before.name), what="an event before the outage")

        await asyncio.to_thread(engine.stop)
        await until(lambda: feed.status.level == "error", what="the outage is reported")
        assert "'doomed' is unreachable" in feed.status.message

        await asyncio.to_thread(engine.start)
        await until(lambda: feed.status.level == "success", timeout=15,
                    what="the engine is back")
        assert "'doomed' is back" in feed.status.message
        after = await doomed.containers.create(image=BUSYBOX_REFERENCE, name="gp-after")
        await until(lambda: shown(feed, after.name), what="an event after the outage")
        # What was seen before the outage is not shown twice after the re-connection.
        assert shown(feed, before.name) == [("doomed", "container", "create")]
        await feed.aclose()  # before its environment closes
