"""The agent's event hub on a fake engine (``tests/unit/fake_events.py``): fan-out in
order, filters, a slow subscriber that cannot hold the others up, the engine stream
lost and found again without a gap or a repeat, and the stop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from ghostpanel_kernel.server._event_hub import (
    CLOSE_GOING_AWAY,
    CLOSE_SLOW,
    EventHub,
    Subscription,
)
from ghostpanel_kernel.server._event_shape import EventFilter
from tests.unit.fake_events import (  # noqa: F401 (the engine fixture)
    EventsEngine,
    events_engine_fixture,
    podman_event,
)

NOW = time.time_ns() - 60 * 1_000_000_000  # a minute ago: history windows include it


def at(seconds: float) -> int:
    return NOW + int(seconds * 1_000_000_000)


async def drain(subscription: Subscription, count: int, timeout: float = 5.0
                ) -> list[dict[str, Any]]:
    """The next ``count`` messages of ``subscription``, decoded."""
    taken: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(taken) < count:
            batch = await subscription.next_batch()
            assert batch is not None, f"ended: {subscription.close_code} {subscription.reason}"
            taken.extend(json.loads(text) for _, text in batch)
    return taken


def hub_on(engine: EventsEngine, **options: Any) -> EventHub:
    return EventHub(engine.env, environment="host1", retry_delays=(0.01,), **options)


async def test_every_subscriber_gets_the_same_events_in_order(engine: EventsEngine) -> None:
    hub = hub_on(engine)
    subscribers = [hub.subscribe(EventFilter()) for _ in range(20)]
    assert await hub.wait_connected(5)
    for n, action in enumerate(["create", "init", "start", "died", "remove"]):
        engine.emit(podman_event(action, "web", at(n), app="shop"))
    seen = [await drain(s, 5) for s in subscribers]
    assert all(other == seen[0] for other in seen)
    assert [m["type"] for m in seen[0]] == [
        "container.created", "container.initialized", "container.started",
        "container.died", "container.removed"]
    data = seen[0][2]["data"]
    assert data["name"] == "web" and data["id"] == "id-web" and data["environment"] == "host1"
    assert data["action"] == "start" and data["kind"] == "container"
    assert data["time_nano"] == at(2) and data["time"].endswith("Z")
    assert data["attributes"]["app"] == "shop"
    assert engine.opened == 1, "one engine stream for every subscriber"
    await hub.aclose()


async def test_filters_pick_events_per_subscriber(engine: EventsEngine) -> None:
    hub = hub_on(engine)
    started = hub.subscribe(EventFilter.from_query([("type", "container.started")]))
    images = hub.subscribe(EventFilter.from_query([("type", "image")]))
    labelled = hub.subscribe(EventFilter.from_query([("label", "app=shop"), ("label", "tier")]))
    named = hub.subscribe(EventFilter.from_query([("container", "db,id-we")]))
    dying = hub.subscribe(EventFilter.from_query([("action", "died")]))
    await hub.wait_connected(5)
    engine.emit(podman_event("start", "web", at(0), app="shop", tier="front"))
    engine.emit(podman_event("start", "db", at(1), app="shop"))
    engine.emit(podman_event("pull", "busybox", at(2), kind="image"))
    engine.emit(podman_event("died", "web", at(3), app="shop", tier="front"))
    engine.emit(podman_event("start", "last", at(4)))  # passes only `started`

    def names(messages: list[dict[str, Any]]) -> list[str]:
        return [f'{m["data"]["name"]}:{m["data"]["action"]}' for m in messages]

    assert names(await drain(started, 3)) == ["web:start", "db:start", "last:start"]
    assert names(await drain(images, 1)) == ["busybox:pull"]
    assert names(await drain(labelled, 2)) == ["web:start", "web:died"]
    assert names(await drain(named, 3)) == ["web:start", "db:start", "web:died"]
    assert names(await drain(dying, 1)) == ["web:died"]
    for subscription in (images, labelled, named, dying):
        assert subscription.waiting == 0
    await hub.aclose()


async def test_a_slow_subscriber_is_ended_and_never_holds_the_others(
        engine: EventsEngine) -> None:
    hub = hub_on(engine, queue_limit=3)
    slow = hub.subscribe(EventFilter())
    fast = hub.subscribe(EventFilter(), limit=100)
    await hub.wait_connected(5)
    for n in range(10):
        engine.emit(podman_event("start", f"c{n}", at(n)))
    got = await drain(fast, 10)
    assert [m["data"]["name"] for m in got] == [f"c{n}" for n in range(10)]
    assert slow.close_code == CLOSE_SLOW and "3 messages" in slow.reason
    assert slow.ended.is_set() and slow.waiting == 0  # its queue was dropped
    assert await slow.next_batch() is None
    await hub.aclose()


async def test_the_engine_stream_lost_and_back_without_gap_or_repeat(
        engine: EventsEngine) -> None:
    hub = hub_on(engine)
    subscription = hub.subscribe(EventFilter())
    await hub.wait_connected(5)
    engine.emit(podman_event("start", "before", at(0)))
    assert [m["data"]["name"] for m in await drain(subscription, 1)] == ["before"]
    engine.down = True
    engine.end_stream()
    lost = await drain(subscription, 1)
    assert lost[0]["type"] == "agent.engine_lost"
    assert lost[0]["data"]["environment"] == "host1" and lost[0]["data"]["error"]
    engine.emit(podman_event("start", "during", at(1)), live=False)  # while it was down
    await asyncio.sleep(0.05)  # a few failed reconnections: still one engine_lost
    engine.down = False
    back = await drain(subscription, 2)
    assert [m["type"] for m in back] == ["agent.engine_back", "container.started"]
    assert back[1]["data"]["name"] == "during"
    engine.emit(podman_event("died", "after", at(2)))
    after = await drain(subscription, 1)
    assert [m["data"]["name"] for m in after] == ["after"]
    assert subscription.waiting == 0, "an event came twice"
    await hub.aclose()


async def test_closing_ends_every_subscriber_with_going_away(engine: EventsEngine) -> None:
    hub = hub_on(engine)
    subscriptions = [hub.subscribe(EventFilter()) for _ in range(3)]
    await hub.wait_connected(5)
    await hub.aclose()
    assert {s.close_code for s in subscriptions} == {CLOSE_GOING_AWAY}
    assert not hub.subscribers
    with pytest.raises(RuntimeError, match="stopping"):
        hub.subscribe(EventFilter())


async def test_history_is_the_engines_record_of_a_window(engine: EventsEngine) -> None:
    hub = hub_on(engine)
    for n in range(4):
        engine.emit(podman_event("start", f"c{n}", at(n)), live=False)
    names = [event.name async for event in hub.history(at(1), at(2.5))]
    assert names == ["c1", "c2"]
    await hub.aclose()


def test_a_queue_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Subscription(EventFilter(), limit=0)


async def test_a_line_the_hub_cannot_read_is_skipped(engine: EventsEngine) -> None:
    hub = hub_on(engine)
    subscription = hub.subscribe(EventFilter())
    await hub.wait_connected(5)
    for live in engine.lives:
        live.queue.put_nowait(b'{"Type": "container", "timeNano": "soon"}\n')  # not a time
        live.queue.put_nowait(b'["not", "an", "object"]\n')
    engine.emit(podman_event("start", "web", at(0)))
    (message,) = await drain(subscription, 1)
    assert message["type"] == "container.started"  # no engine_lost before it
    assert engine.opened == 1
    await hub.aclose()


async def test_a_failure_of_the_hub_itself_is_an_outage_not_the_end(
        engine: EventsEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_on(engine)
    subscription = hub.subscribe(EventFilter())
    await hub.wait_connected(5)
    publish = hub._publish
    failures = [KeyError("a bug")]

    def failing(event: Any) -> None:
        if failures:
            raise failures.pop()
        publish(event)

    monkeypatch.setattr(hub, "_publish", failing)
    now = time.time_ns()  # after the stream opened: a reconnection replays from there
    engine.emit(podman_event("start", "first", now + 1000))
    lost, back, replayed = await drain(subscription, 3)
    assert lost["type"] == "agent.engine_lost" and "KeyError" in lost["data"]["error"]
    assert back["type"] == "agent.engine_back"
    assert replayed["data"]["name"] == "first"  # the event that met the bug is not lost
    engine.emit(podman_event("start", "second", now + 2000))
    assert [m["data"]["name"] for m in await drain(subscription, 1)] == ["second"]
    assert subscription.waiting == 0
    await hub.aclose()
