"""One engine events stream per agent, fanned out to every ``/api/v1/events`` subscriber.

The hub opens ``GET /events`` on the engine when its first subscriber comes and keeps
it open until the agent stops (a later subscriber then finds it live at once). Each
engine event is matched against every subscriber's filter, turned into its message
text once, and offered to the matching subscribers' queues: offering never waits, so a
slow subscriber can never hold up the others or the engine stream. A subscriber whose
queue is full is ended with :data:`CLOSE_SLOW` and its queue dropped.

When the engine stream fails or ends, every subscriber gets one ``agent.engine_lost``
message and the hub reconnects with a growing delay (:data:`RETRY_DELAYS`); once the
engine answers again it gets ``agent.engine_back``. The new stream asks the engine for
its events ``since`` the last one seen, so events of the outage the engine kept are
delivered, once: the keys of the events around that time are remembered and their
repeats skipped.

Resuming a subscriber from a past time (``since=``) is done by the route with
:meth:`EventHub.history` once the subscriber is registered (see ``_routes_events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from .._exceptions import GhostPanelError
from ..engine import Environment, Event
from ..engine._streams import iter_json_lines
from ._event_shape import EventFilter, EventKey, agent_message, event_key, event_message

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_SLOW", "EventHub", "Subscription"]

_log = logging.getLogger("ghostpanel.agent.events")

#: Close code of a subscriber whose queue overflowed: 1013 "Try Again Later" (RFC 6455
#: 7.4.1 via the IANA registry). It should reconnect with ``since=`` its last event.
CLOSE_SLOW: Final = 1013
#: Close code when the agent stops: 1001 "Going Away".
CLOSE_GOING_AWAY: Final = 1001
#: Messages a subscriber may have waiting before it is ended with :data:`CLOSE_SLOW`.
DEFAULT_QUEUE_LIMIT: Final = 1000
#: Seconds between reconnection attempts to the engine: doubling, then the last one.
RETRY_DELAYS: Final = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: Keys of the most recent events kept to skip repeats after a reconnection.
_RECENT_KEYS: Final = 512

_NS: Final = 1_000_000_000


def _api_ns(nanoseconds: int) -> str:
    """A time as the Engine API's ``since`` takes it, exact: ``seconds.nanoseconds``."""
    return f"{nanoseconds // _NS}.{nanoseconds % _NS:09d}"


class Subscription:
    """One subscriber's filter and bounded queue of message texts.

    Parameters
    ----------
    wanted
        Which engine events it gets (``agent.*`` messages always come).
    limit
        Messages it may have waiting; one more ends it with :data:`CLOSE_SLOW`.

    Attributes
    ----------
    close_code : int or None
        Why it ended: :data:`CLOSE_SLOW`, :data:`CLOSE_GOING_AWAY`, 1000 when the client
        left, None while it runs.
    reason : str
        A few words on why it ended.
    ended : asyncio.Event
        Set when it ends.
    """

    def __init__(self, wanted: EventFilter, limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"a subscriber's queue limit must be >= 1, not {limit}")
        self.wanted = wanted
        self.limit = limit
        self.close_code: int | None = None
        self.reason = ""
        self.ended = asyncio.Event()
        self._items: deque[tuple[EventKey | None, str]] = deque()
        self._ready = asyncio.Event()

    def offer(self, key: EventKey | None, text: str) -> None:
        """Queue one message without waiting; a full queue ends the subscription."""
        if self.close_code is not None:
            return
        if len(self._items) >= self.limit:
            self.end(CLOSE_SLOW, f"too slow: {self.limit} messages waiting")
            return
        self._items.append((key, text))
        self._ready.set()

    def end(self, code: int, reason: str) -> None:
        """End it (the first reason given stays) and drop what it had waiting."""
        if self.close_code is not None:
            return
        self.close_code, self.reason = code, reason
        self._items.clear()
        self.ended.set()
        self._ready.set()

    async def next_batch(self) -> list[tuple[EventKey | None, str]] | None:
        """Every waiting message, oldest first, once there is one; None once ended."""
        while not self._items and self.close_code is None:
            self._ready.clear()
            await self._ready.wait()
        if self.close_code is not None:
            return None
        batch = list(self._items)
        self._items.clear()
        return batch

    @property
    def waiting(self) -> int:
        """Messages queued and not yet taken."""
        return len(self._items)


class EventHub:
    """The agent's one engine events stream and its subscribers (see the module notes).

    Parameters
    ----------
    engine
        The agent's engine environment.
    environment
        What messages name as their ``environment`` (the agent's host name).
    queue_limit
        Each subscriber's queue limit (:class:`Subscription`).
    retry_delays
        Seconds to wait before each reconnection attempt; the last repeats.
    """

    def __init__(self, engine: Environment, *, environment: str,
                 queue_limit: int = DEFAULT_QUEUE_LIMIT,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.engine = engine
        self.environment = environment
        self.queue_limit = queue_limit
        self.retry_delays = retry_delays
        self.subscribers: set[Subscription] = set()
        #: Set while the engine stream is open (its answer's head has come).
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._recent: deque[EventKey] = deque(maxlen=_RECENT_KEYS)
        self._recent_set: set[EventKey] = set()
        #: The newest engine time seen (else the first connection's wall-clock time):
        #: where a reconnection resumes.
        self._horizon_ns: int | None = None
        self._seen_event = False
        self._lost = False

    # -- subscribers ------------------------------------------------------------------

    def subscribe(self, wanted: EventFilter, *, limit: int | None = None) -> Subscription:
        """Register a subscriber (it gets every event from now on) and make sure the
        engine stream runs.

        Raises
        ------
        RuntimeError
            The hub was closed (the agent is stopping).
        """
        if self._closed:
            raise RuntimeError("the agent is stopping")
        subscription = Subscription(wanted, self.queue_limit if limit is None else limit)
        self.subscribers.add(subscription)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="ghostpanel engine events")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (idempotent)."""
        self.subscribers.discard(subscription)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the engine stream; whether it is open."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        return self.connected.is_set()

    async def history(self, since_ns: int, until_ns: int) -> AsyncIterator[Event]:
        """The engine's own record of its events from ``since_ns`` to ``until_ns``
        (wall-clock nanoseconds), oldest first; the stream ends at ``until_ns``."""
        async for event in self.engine.events(since=_api_ns(since_ns),
                                              until=_api_ns(until_ns)):
            yield event

    async def aclose(self, code: int = CLOSE_GOING_AWAY,
                     reason: str = "the agent is stopping") -> None:
        """End every subscriber with ``code`` and stop the engine stream (idempotent)."""
        self._closed = True
        for subscription in list(self.subscribers):
            subscription.end(code, reason)
        self.subscribers.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the engine stream ------------------------------------------------------------

    def _publish_agent(self, kind: str, **data: object) -> None:
        text = agent_message(kind, self.environment, time.time_ns(), **data)
        for subscription in list(self.subscribers):
            subscription.offer(None, text)

    def _publish(self, event: Event) -> None:
        key = event_key(event)
        if key in self._recent_set:
            return  # a repeat of the engine's replay after a reconnection
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(key)
        self._recent_set.add(key)
        # The engine's time of its newest event, not the agent's clock: the two may
        # differ, and the engine filters ``since`` by its own.
        self._horizon_ns = key[0] if not self._seen_event else max(self._horizon_ns or 0,
                                                                    key[0])
        self._seen_event = True
        text: str | None = None
        for subscription in list(self.subscribers):
            if subscription.wanted.matches(event):
                if text is None:  # serialised once, for all who want it
                    text = json.dumps(event_message(event, self.environment))
                subscription.offer(key, text)

    async def _stream_once(self) -> None:
        """Open the engine stream, publish what it sends until it ends."""
        client = self.engine.client
        since = None if self._horizon_ns is None else _api_ns(self._horizon_ns)
        response = await client._request("GET", "/events", params={"since": since},
                                         stream=True)
        self.connected.set()
        if self._horizon_ns is None:
            # Nothing seen yet: a later reconnection resumes from this moment.
            self._horizon_ns = time.time_ns()
        if self._lost:
            self._lost = False
            _log.info("engine events stream back")
            self._publish_agent("engine_back")
        environment = self.engine.name
        body = client.iter_body(response)
        try:
            async for line in iter_json_lines(body, endpoint=client.url):
                try:
                    event = Event.from_attrs(line, environment=environment)
                except (AttributeError, TypeError, ValueError) as error:
                    # One line of a shape no engine should send: skipped, or it would
                    # come back with every reconnection's replay.
                    _log.warning("skipped an engine event that cannot be read (%s): %.200r",
                                 error, line)
                    continue
                self._publish(event)
        finally:
            await body.aclose()

    async def _run(self) -> None:
        attempt = 0
        while True:
            error: str
            try:
                await self._stream_once()
                error = "the engine ended its events stream"
            except GhostPanelError as failure:
                error = str(failure)
            except OSError as failure:  # a socket error the client did not map
                error = f"{type(failure).__name__}: {failure}"
            except Exception as failure:  # a bug must not end the agent's events for good
                _log.exception("engine events stream failed")
                error = f"{type(failure).__name__}: {failure}"
            if self.connected.is_set():
                attempt = 0  # it was up: start the delays again
            self.connected.clear()
            if not self._lost:
                self._lost = True
                _log.warning("engine events stream lost: %s", error)
                self._publish_agent("engine_lost", error=error)
            delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
            attempt += 1
            await asyncio.sleep(delay)
