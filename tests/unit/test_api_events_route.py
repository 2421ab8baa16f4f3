"""``ws /api/v1/events`` as an ASGI application on a fake engine: the ``since=`` seam
(replayed record, then the live queue, no event twice), the query's refusals, and what
the messages look like."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette

from ghostpanel_kernel.server import _routes_events
from ghostpanel_kernel.server._event_shape import EventFilter, event_type, rfc3339_nano
from tests.unit.fake_events import (  # noqa: F401 (the engine fixture)
    EventsEngine,
    events_engine_fixture,
    podman_event,
)
from tests.unit.test_api_events_hub import at


class Client:
    """One WebSocket connection driven by hand: what the app sent, and a way to leave."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.leave = asyncio.Event()
        self.connected = False

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        await self.leave.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]


def app_on(engine: EventsEngine) -> Starlette:
    app = Starlette(routes=_routes_events.ROUTES)
    app.state.engine = engine.env
    app.state.settings = None
    return app


def scope(query: Sequence[tuple[str, str]], *, denial: bool = True) -> dict[str, Any]:
    return {"type": "websocket", "path": "/api/v1/events", "raw_path": b"/api/v1/events",
            "query_string": urlencode(list(query)).encode(), "headers": [],
            "subprotocols": [], "client": ("127.0.0.1", 5000), "server": ("agent", 443),
            "scheme": "wss", "root_path": "", "http_version": "1.1", "asgi": {"version": "3.0"},
            "extensions": {"websocket.http.response": {}} if denial else {}}


async def run_until(app: Starlette, client: Client, query: Sequence[tuple[str, str]],
                    count: int) -> asyncio.Task[None]:
    """Start the connection; return once ``count`` messages were sent."""
    task = asyncio.create_task(app(scope(query), client.receive, client.send))
    async with asyncio.timeout(5):
        while len(client.messages) < count:
            assert not task.done(), client.sent
            await asyncio.sleep(0.005)
    return task


async def test_since_replays_then_goes_live_without_a_repeat_at_the_seam(
        engine: EventsEngine) -> None:
    engine.emit(podman_event("create", "web", at(0)), live=False)
    engine.emit(podman_event("start", "web", at(1)), live=False)

    def meanwhile() -> None:
        # As the engine reads its record, the start reaches the live stream too, and
        # then a newer event: the subscriber must get the start once.
        engine.emit(podman_event("start", "web", at(1)), live=True)
        engine.emit(podman_event("died", "web", at(2)), live=True)
        engine.journal.pop()
        engine.journal.pop()

    engine.on_history = meanwhile
    app = app_on(engine)
    client = Client()
    task = await run_until(app, client, [("since", rfc3339_nano(at(-1)))], 4)
    await asyncio.sleep(0.05)  # nothing more may come
    client.leave.set()
    await task
    assert client.sent[0]["type"] == "websocket.accept"
    assert [m["type"] for m in client.messages] == [
        "agent.subscribed", "container.created", "container.started", "container.died"]
    assert client.messages[0]["data"]["since"] == at(-1)
    await app.state.events.aclose()


async def test_a_subscriber_without_since_gets_live_events_after_subscribed(
        engine: EventsEngine) -> None:
    app = app_on(engine)
    client = Client()
    task = await run_until(app, client, [("type", "container.started")], 1)
    engine.emit(podman_event("create", "web", at(0)))
    engine.emit(podman_event("start", "web", at(1)))
    async with asyncio.timeout(5):
        while len(client.messages) < 2:
            await asyncio.sleep(0.005)
    client.leave.set()
    await task
    assert [m["type"] for m in client.messages] == ["agent.subscribed", "container.started"]
    assert client.messages[0]["data"]["filters"]["type"] == ["container.started"]
    assert not app.state.events.subscribers  # the one that left is forgotten
    await app.state.events.aclose()


async def test_the_agent_stopping_closes_with_1001(engine: EventsEngine) -> None:
    app = app_on(engine)
    client = Client()
    task = await run_until(app, client, [], 1)
    await app.state.events.aclose()
    client.leave.set()  # the client answers the close
    async with asyncio.timeout(5):
        await task
    assert client.sent[-1] == {"type": "websocket.close", "code": 1001,
                               "reason": "the agent is stopping"}


@pytest.mark.parametrize(("query", "words"), [
    ([("since", "not a time")], "since='not a time' is not a time"),
    ([("token", "gpa_x")], "unknown query parameter(s) token"),
    ([("since", "1"), ("since", "2")], "give `since` once"),
    ([("label", "=x")], "a label filter"),
])
async def test_a_bad_query_is_a_400_problem(engine: EventsEngine, query: Any,
                                           words: str) -> None:
    client = Client()
    await app_on(engine)(scope(query), client.receive, client.send)
    head, body = client.sent
    assert head["type"] == "websocket.http.response.start" and head["status"] == 400
    assert words in json.loads(body["body"])["detail"]
    # Without the denial extension: a close with 4000 + status before accepting.
    client = Client()
    await app_on(engine)(scope(query, denial=False), client.receive, client.send)
    assert client.sent[-1]["type"] == "websocket.close" and client.sent[-1]["code"] == 4400


async def test_since_with_the_engine_down_is_a_503(engine: EventsEngine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes_events, "CONNECT_WAIT", 0.2)
    engine.down = True
    app = app_on(engine)
    client = Client()
    await app(scope([("since", "1")]), client.receive, client.send)
    assert client.sent[0]["status"] == 503
    await app.state.events.aclose()


def test_the_queue_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_routes_events.QUEUE_LIMIT_VARIABLE, raising=False)
    assert _routes_events.queue_limit() == 1000
    monkeypatch.setenv(_routes_events.QUEUE_LIMIT_VARIABLE, "16")
    assert _routes_events.queue_limit() == 16
    monkeypatch.setenv(_routes_events.QUEUE_LIMIT_VARIABLE, "0")
    with pytest.raises(ValueError, match="whole number"):
        _routes_events.queue_limit()


@pytest.mark.parametrize(("kind", "action", "expected"), [
    ("container", "start", "container.started"), ("container", "died", "container.died"),
    ("container", "die", "container.died"), ("container", "remove", "container.removed"),
    ("container", "destroy", "container.removed"), ("image", "pull", "image.pulled"),
    ("volume", "create", "volume.created"), ("network", "connect", "network.connected"),
    ("container", "exec_start: sh -c true", "container.exec_started"),
    ("container", "health_status: healthy", "container.health_status"),
    ("Container", "Start", "container.started"), ("", "", "unknown.unknown"),
])
def test_event_types(kind: str, action: str, expected: str) -> None:
    assert event_type(kind, action) == expected


def test_filter_values_of_one_key_are_alternatives() -> None:
    wanted = EventFilter.from_query([("type", "image,container.started"),
                                     ("type", "volume")])
    assert wanted.types == {"image", "container.started", "volume"}
    wanted = EventFilter.from_query([("label", "a=1,2")])
    assert wanted.labels == {"a=1,2"}  # a label's value may hold a comma


async def test_after_the_stop_began_a_new_subscriber_is_a_503(engine: EventsEngine) -> None:
    app = app_on(engine)
    await _routes_events.close_hub(app.state)  # before any subscriber made the hub
    client = Client()
    await app(scope([]), client.receive, client.send)
    assert client.sent[0]["status"] == 503
    assert "stopping" in json.loads(client.sent[1]["body"])["detail"]
    assert engine.opened == 0  # no engine stream was opened for it
