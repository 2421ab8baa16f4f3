"""A fake engine's ``GET /events`` for the event hub's unit tests.

:class:`EventsEngine` keeps a journal of the events it "made" and answers

- a live stream (no ``stream=false``): the journal's events since ``since`` (when
  given), then every event :meth:`EventsEngine.emit` makes, until the test ends the
  stream (:meth:`EventsEngine.end_stream`) or refuses new ones (:attr:`down`);
- a past window (``stream=false``, how the client asks Podman for ``since..until``): the
  journal's events since ``since``, then the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.unit.fake_engine import FakeEngine, env_for

__all__ = ["EventsEngine", "events_engine_fixture", "podman_event"]

_NS = 1_000_000_000


def podman_event(action: str, name: str, nanos: int, *, kind: str = "container",
                 **attributes: str) -> dict[str, Any]:
    """One line of Podman's ``GET /events``."""
    return {"Type": kind, "Action": action, "status": action, "id": f"id-{name}",
            "from": "busybox", "time": nanos // _NS, "timeNano": nanos,
            "Actor": {"ID": f"id-{name}", "Attributes": {"name": name, **attributes}}}


class _Live(httpx.AsyncByteStream):
    """A live body: the lines put in its queue, until None (the end)."""

    def __init__(self, first: list[bytes]) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for line in first:
            self.queue.put_nowait(line)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (line := await self.queue.get()) is not None:
            yield line

    async def aclose(self) -> None:
        self.queue.put_nowait(None)


class EventsEngine:
    """See the module notes. ``env`` is an :class:`Environment` on it."""

    def __init__(self) -> None:
        self.journal: list[dict[str, Any]] = []
        self.lives: list[_Live] = []
        self.down = False
        self.opened = 0
        #: Called when a past window is asked for, before it is answered (a test makes
        #: live events "happen" while the engine reads its record).
        self.on_history: Callable[[], None] | None = None
        self.fake = FakeEngine(routes={("GET", "/events"): self._events})
        self.env = env_for(self.fake)

    @staticmethod
    def _line(event: dict[str, Any]) -> bytes:
        return json.dumps(event).encode() + b"\n"

    def _since(self, request: httpx.Request) -> list[bytes]:
        since = request.url.params.get("since")
        if since is None:
            return []
        seconds, _, fraction = since.partition(".")
        since_ns = int(seconds) * _NS + int(fraction.ljust(9, "0")[:9] or 0)
        return [self._line(e) for e in self.journal if e["timeNano"] >= since_ns]

    def _events(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(500, json={"message": "engine is restarting"})
        past = self._since(request)
        if request.url.params.get("stream") == "false":
            if self.on_history is not None:
                self.on_history()
            return httpx.Response(200, content=b"".join(past))
        self.opened += 1
        live = _Live(past)
        self.lives.append(live)
        return httpx.Response(200, stream=live)

    def emit(self, event: dict[str, Any], *, live: bool = True) -> None:
        """Record ``event``; send it on the open live streams unless ``live`` is False
        (an event made while the stream was down)."""
        self.journal.append(event)
        if live:
            for stream in self.lives:
                stream.queue.put_nowait(self._line(event))

    def end_stream(self) -> None:
        """End every open live stream (the engine went away)."""
        for stream in self.lives:
            stream.queue.put_nowait(None)
        self.lives.clear()


@pytest.fixture(name="engine")
async def events_engine_fixture() -> AsyncIterator[EventsEngine]:
    """The ``engine`` fixture: an :class:`EventsEngine`, its environment closed after.

    Import it into a test module (``# noqa: F401``) to use it under the name ``engine``;
    defined under another name so that a test's ``engine`` parameter does not shadow the
    import.
    """
    fake = EventsEngine()
    yield fake
    await fake.env.aclose()
