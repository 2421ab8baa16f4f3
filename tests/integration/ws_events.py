"""A ``ws /api/v1/events`` subscriber for tests and the benchmark (the ``websockets``
library, as a user's program would use it).

::

    async with subscribe(agent, type="container") as events:
        message = await events.next()           # the decoded JSON of the next message
        messages = await events.until(lambda m: m["type"] == "container.died")
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.agent_process import RunningAgent

__all__ = ["Subscriber", "events_url", "subscribe"]

Message = dict[str, Any]


def events_url(agent: RunningAgent, query: Sequence[tuple[str, str]] = ()) -> str:
    """``wss://127.0.0.1:PORT/api/v1/events?QUERY``."""
    text = urlencode(list(query))
    return f"wss://127.0.0.1:{agent.port}/api/v1/events" + (f"?{text}" if text else "")


class Subscriber:
    """One open subscription: the connection and what it received so far."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[Message] = []
        #: ``time.time_ns()`` at which each message of :attr:`received` was read.
        self.arrivals: list[int] = []

    async def next(self) -> Message:
        """The next message, decoded (raises ``ConnectionClosed`` at the end)."""
        text = await self.connection.recv()
        self.arrivals.append(time.time_ns())
        message: Message = json.loads(text)
        self.received.append(message)
        return message

    async def until(self, done: Callable[[Message], bool]) -> list[Message]:
        """Messages up to and including the first for which ``done`` is true."""
        taken = []
        while True:
            message = await self.next()
            taken.append(message)
            if done(message):
                return taken


@contextlib.asynccontextmanager
async def subscribe(agent: RunningAgent, query: Sequence[tuple[str, str]] = (), *,
                    token: str | None = None, as_subprotocol: bool = False,
                    receive_buffer: int | None = None, max_queue: int | None = 16,
                    wait_subscribed: bool = True) -> AsyncIterator[Subscriber]:
    """Open ``/api/v1/events`` on ``agent`` and, by default, read its
    ``agent.subscribed`` message (after which no event is missed).

    ``token``: another token than the agent's; ``as_subprotocol``: send it as a browser
    does; ``receive_buffer``: the socket's ``SO_RCVBUF`` (a small one makes a client that
    stops reading fill up soon); ``max_queue``: messages the library reads ahead.
    """
    token = agent.token if token is None else token
    headers = {} if as_subprotocol else {"Authorization": f"Bearer {token}"}
    protocols = [Subprotocol("ghostpanel"), Subprotocol(f"ghostpanel.bearer.{token}")] \
        if as_subprotocol else None
    sock = None
    if receive_buffer is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", agent.port))
    async with connect(events_url(agent, query), ssl=agent.ssl_context(),
                       additional_headers=headers, subprotocols=protocols,
                       compression=None, proxy=None, max_queue=max_queue,
                       open_timeout=30, sock=sock,
                       server_hostname="127.0.0.1" if sock is not None else None,
                       ) as connection:
        subscriber = Subscriber(connection)
        if wait_subscribed:
            first = await subscriber.next()
            assert first["type"] == "agent.subscribed", first
        yield subscriber
