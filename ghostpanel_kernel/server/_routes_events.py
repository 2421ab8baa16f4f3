"""``ws /api/v1/events``: the engine's events as WebSocket messages (``docs/events.md``).

Contract for every ``_routes_*`` module: ``ROUTES`` (Starlette routes with full paths,
``/api/v1/...``) and ``PATHS`` (their OpenAPI 3.1 path items, keyed by the templated
path), which ``_api.api_app`` mounts and ``_openapi`` documents.

A subscriber's life:

1. The query is read (filters, ``since``); a bad one is refused with a ``400`` problem
   before the handshake completes.
2. It is registered with the agent's :class:`~._event_hub.EventHub`, so every event
   the engine sends from then on is queued for it, and the hub's engine stream is
   awaited (``since=`` needs it open: a ``503`` problem otherwise).
3. The handshake is accepted and ``agent.subscribed`` sent: from that message on the
   subscriber misses nothing.
4. With ``since=``, the engine's own record from that time up to now is sent, then the
   queue, skipping events already sent from the record: the seam has neither a gap
   (the subscriber was registered before the record was asked for) nor a repeat.
5. Live events until the client leaves, its queue overflows (close 1013), or the agent
   stops (close 1001).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Final

import anyio
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .._exceptions import GhostPanelError
from ..engine._times import api_time_ns
from ._event_hub import DEFAULT_QUEUE_LIMIT, EventHub, Subscription
from ._event_shape import (
    FILTER_KEYS,
    EventFilter,
    EventKey,
    agent_message,
    event_key,
    event_message,
)
from ._problems import send_problem

__all__ = ["PATH", "PATHS", "QUEUE_LIMIT_VARIABLE", "ROUTES", "close_hub", "hub_of",
           "queue_limit"]

PATH: Final = "/api/v1/events"
#: Seconds a subscriber waits for the hub's engine stream to open before it is told
#: the engine is lost (or, with ``since=``, refused).
CONNECT_WAIT: Final = 5.0
#: Seconds the agent waits for a close frame to leave before dropping the connection:
#: a slow subscriber's close waits behind what it has not read yet, and a client that
#: catches up within this time still learns why it was closed.
CLOSE_WAIT: Final = 30.0
#: Close code when the engine's record cannot be read for ``since=``: 1011.
CLOSE_INTERNAL: Final = 1011
#: Query keys besides the filters.
_OTHER_KEYS: Final = ("since",)
#: After the record, live events this much later than its end cannot repeat it.
_SEAM_SLACK_NS: Final = 60 * 1_000_000_000


#: The environment variable that sets each subscriber's queue limit (messages).
QUEUE_LIMIT_VARIABLE: Final = "GHOSTPANEL_EVENT_QUEUE_LIMIT"


def queue_limit() -> int:
    """Each subscriber's queue limit: :data:`QUEUE_LIMIT_VARIABLE`, else the default.

    Raises
    ------
    ValueError
        The variable is not a whole number >= 1.
    """
    text = os.environ.get(QUEUE_LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_QUEUE_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{QUEUE_LIMIT_VARIABLE}={text!r}: give a whole number >= 1")
    return int(text)


def hub_of(state: Any) -> EventHub:
    """The agent's event hub, made on first use from ``state.engine``.

    Raises
    ------
    RuntimeError
        The agent is stopping (:func:`close_hub` was called).
    """
    hub: EventHub | None = getattr(state, "events", None)
    if hub is None:
        if getattr(state, "events_closed", False):
            raise RuntimeError("the agent is stopping")
        hub = EventHub(state.engine, environment=socket.gethostname(),
                       queue_limit=queue_limit())
        state.events = hub
    return hub


async def close_hub(state: Any) -> None:
    """End every subscriber with 1001 and refuse new ones: the agent is stopping."""
    state.events_closed = True
    hub: EventHub | None = getattr(state, "events", None)
    if hub is not None:
        await hub.aclose()


@dataclass(frozen=True)
class _Query:
    wanted: EventFilter
    since_ns: int | None


def _read_query(websocket: WebSocket) -> _Query:
    items = websocket.query_params.multi_items()
    unknown = sorted({key for key, _ in items} - {*FILTER_KEYS, *_OTHER_KEYS})
    if unknown:
        raise ValueError(f"unknown query parameter(s) {', '.join(unknown)}; this route "
                         f"takes {', '.join((*FILTER_KEYS, *_OTHER_KEYS))}")
    since = [value for key, value in items if key == "since"]
    if len(since) > 1:
        raise ValueError("give `since` once")
    since_ns = None
    if since:
        try:
            since_ns = api_time_ns(since[0])
        except (TypeError, ValueError) as error:
            raise ValueError(f"since={since[0]!r} is not a time: give RFC 3339 or "
                             f"seconds since the epoch ({error})") from error
    return _Query(EventFilter.from_query(items), since_ns)


async def _refuse(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse the handshake: an HTTP problem where the server can send one, else a
    close with ``4000 + status`` (as ``_routes_exec`` does)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await send_problem(websocket.send, status, detail,
                           response_type="websocket.http.response")
    else:
        await websocket.close(4000 + status, detail[:120])


async def events_socket(websocket: WebSocket) -> None:
    """The ``/api/v1/events`` endpoint (see the module notes)."""
    try:
        query = _read_query(websocket)
    except ValueError as error:
        await _refuse(websocket, 400, str(error))
        return
    try:
        hub = hub_of(websocket.app.state)
        subscription = hub.subscribe(query.wanted)
    except RuntimeError as error:
        await _refuse(websocket, 503, str(error))
        return
    try:
        connected = await hub.wait_connected(CONNECT_WAIT)
        if query.since_ns is not None and not connected:
            await _refuse(websocket, 503, "the engine's events cannot be read now, so "
                                          "`since` cannot be replayed; try again")
            return
        await websocket.accept()
        await _serve(websocket, hub, subscription, query, connected)
    finally:
        hub.unsubscribe(subscription)


async def _serve(websocket: WebSocket, hub: EventHub, subscription: Subscription,
                 query: _Query, connected: bool) -> None:
    now = time.time_ns()
    filters = {key: sorted(getattr(query.wanted, attribute)) for key, attribute in
               (("type", "types"), ("action", "actions"), ("label", "labels"),
                ("container", "containers"))}
    await websocket.send_text(agent_message("subscribed", hub.environment, now,
                                            filters=filters, since=query.since_ns))
    if not connected:
        await websocket.send_text(agent_message(
            "engine_lost", hub.environment, now, error="the engine's events stream is "
            "not open yet; the agent keeps trying"))
    replayed: set[EventKey] = set()
    if query.since_ns is not None:
        try:
            async for event in hub.history(query.since_ns, now):
                if query.wanted.matches(event):
                    replayed.add(event_key(event))
                    await websocket.send_text(json.dumps(event_message(event,
                                                                      hub.environment)))
        except GhostPanelError as error:
            await _close(websocket, CLOSE_INTERNAL, f"cannot replay since: {error}")
            return
        except (WebSocketDisconnect, OSError):
            return
    client_left = False

    async def pump(scope: anyio.CancelScope) -> None:
        seam_end = now + _SEAM_SLACK_NS
        while (batch := await subscription.next_batch()) is not None:
            for key, text in batch:
                if replayed and key is not None:
                    if key in replayed:
                        continue
                    if key[0] > seam_end:
                        replayed.clear()  # past the seam: nothing more can repeat
                await websocket.send_text(text)
        scope.cancel()

    async def watch_client(scope: anyio.CancelScope) -> None:
        nonlocal client_left
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # what a subscriber sends is not read: this route only speaks
        client_left = True
        scope.cancel()

    async def watch_end(scope: anyio.CancelScope) -> None:
        # The pump may be stuck sending to a client that does not read: end it here.
        await subscription.ended.wait()
        scope.cancel()

    with contextlib.suppress(WebSocketDisconnect, OSError):
        async with anyio.create_task_group() as tasks:
            for task in (pump, watch_client, watch_end):
                tasks.start_soon(task, tasks.cancel_scope)
    hub.unsubscribe(subscription)
    if subscription.close_code is not None and not client_left:
        await _close(websocket, subscription.close_code, subscription.reason)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code`` and wait for the client's closing answer (RFC 6455 5.5.1),
    giving up after :data:`CLOSE_WAIT` seconds on a client that reads nothing.

    Returning before that answer would let the server end TLS while the client's
    close frame is on its way, and the server's TLS layer reports that frame as an
    error ("application data after close notify").
    """
    with anyio.move_on_after(CLOSE_WAIT), contextlib.suppress(
            WebSocketDisconnect, OSError, RuntimeError):
        await websocket.close(code, reason[:120])
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass


_ERROR = {"content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}

ROUTES: list[BaseRoute] = [WebSocketRoute(PATH, events_socket)]
PATHS: dict[str, dict[str, Any]] = {
    PATH: {"get": {
        "operationId": "subscribeEvents",
        "summary": "Engine events as a WebSocket stream",
        "description": (
            "A WebSocket endpoint (OpenAPI has no WebSocket operations, so it is written "
            "as the GET that carries the upgrade): send `Connection: Upgrade`, "
            "`Upgrade: websocket`, and the token as `Authorization: Bearer TOKEN` or, "
            "from a browser, as the subprotocols `ghostpanel` and "
            "`ghostpanel.bearer.TOKEN` (the agent answers `ghostpanel`). The answer is "
            "`101 Switching Protocols`; then each message is a JSON text "
            "`{\"type\": \"container.started\", \"data\": {\"id\", \"name\", "
            "\"environment\", \"time\", \"time_nano\", \"kind\", \"action\", "
            "\"attributes\"}}`. The first message is `agent.subscribed`. A subscriber "
            "that falls 1000 messages behind is closed with 1013; the agent stopping "
            "closes with 1001. See docs/events.md."),
        "tags": ["events"],
        "parameters": [
            {"name": "type", "in": "query", "required": False,
             "description": "`container.started` or an object type (`container`); "
                            "repeat or separate with commas for several.",
             "schema": {"type": "string"}},
            {"name": "action", "in": "query", "required": False,
             "description": "The engine's action word (`start`, `die`); several allowed.",
             "schema": {"type": "string"}},
            {"name": "label", "in": "query", "required": False,
             "description": "`key` or `key=value`; repeat for several, all must match.",
             "schema": {"type": "string"}},
            {"name": "container", "in": "query", "required": False,
             "description": "A container name, id or id prefix; several allowed.",
             "schema": {"type": "string"}},
            {"name": "since", "in": "query", "required": False,
             "description": "Replay the engine's events from this time (RFC 3339 or "
                            "seconds since the epoch), then continue live.",
             "schema": {"type": "string"}},
        ],
        "responses": {
            "101": {"description": "Switching to the WebSocket protocol."},
            "400": {"description": "A bad filter or `since`.", **_ERROR},
            "401": {"description": "No valid credentials.", **_ERROR},
            "503": {"description": "The engine's events cannot be read for `since`.",
                    **_ERROR},
        },
    }},
}
