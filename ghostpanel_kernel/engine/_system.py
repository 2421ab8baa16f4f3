"""Engine-wide calls: ping, version, info, disk usage, and the events stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._client import EngineVersion, body_of, encode_filters
from ._streams import iter_json_lines
from ._times import Timestamp, api_time, api_time_ns

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["Event", "SystemAPI"]

@dataclass(frozen=True)
class Event:
    """One engine event (``container start``, ``image pull``...).

    Attributes
    ----------
    type
        What kind of object: ``container``, ``image``, ``volume``, ``network``...
    action
        What happened: ``create``, ``start``, ``died``, ``remove``...
    actor_id
        The object's id.
    attributes
        The object's attributes at the time (``name``, ``image``, labels...).
    time
        Seconds since the epoch, with the engine's nanosecond precision.
    environment
        The environment the event came from.
    attrs
        The raw JSON.
    """

    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str]
    time: float
    environment: str = ""
    attrs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The object's name when the engine gave one, else its id."""
        return str(self.attributes.get("name") or self.actor_id)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], *, environment: str = "") -> Event:
        """Read one line of ``GET /events``."""
        actor = attrs.get("Actor") or {}
        nanos = attrs.get("timeNano")
        when = int(nanos) / 1e9 if nanos else float(attrs.get("time") or 0)
        return cls(type=str(attrs.get("Type") or attrs.get("type") or ""),
                   action=str(attrs.get("Action") or attrs.get("status") or ""),
                   actor_id=str(actor.get("ID") or attrs.get("id") or ""),
                   attributes=dict(actor.get("Attributes") or {}), time=when,
                   environment=environment, attrs=attrs)


class SystemAPI:
    """Engine-wide calls (``env.system``)."""

    _sync_wrap = True

    def __init__(self, client: EngineClient, *, environment: str = "") -> None:
        self._client = client
        self._environment = environment

    async def ping(self) -> bool:
        """True when the engine answers ``/_ping``; raises when it cannot be reached."""
        response = await self._client._request("GET", "/_ping", versioned=False)
        return body_of(response).strip() == b"OK"

    async def version(self) -> EngineVersion:
        """Engine kind, versions and the negotiated API version."""
        return await self._client.version()

    async def info(self) -> dict[str, Any]:
        """``GET /info``: host, storage driver, counts, runtimes..."""
        result: dict[str, Any] = await self._client.get_json("/info")
        return result

    async def df(self) -> dict[str, Any]:
        """Disk usage of images, containers, volumes and build cache."""
        result: dict[str, Any] = await self._client.get_json(
            "/system/df", timeout=self._client.timeout)  # Podman walks every layer
        return result

    async def events(self, *, filters: Mapping[str, Any] | None = None,
                     since: Timestamp | None = None,
                     until: Timestamp | None = None) -> AsyncIterator[Event]:
        """Engine events as they happen (or the past window ``since``..``until``).

        Without ``until`` the stream is live and never ends by itself; break out of the
        loop (or cancel the task) to stop. ``filters`` as the engine takes them, e.g.
        ``{"type": "container", "event": ["start", "die"]}``.
        """
        client = self._client
        params: dict[str, str | bool | None] = {
            "filters": encode_filters(filters), "since": api_time(since),
            "until": api_time(until)}
        until_seconds = None if until is None else api_time_ns(until) / 1e9
        podman_window = until_seconds is not None and await client.kind() == "podman"
        if podman_window:
            # Podman 4.3 answers a past ``until`` with no events at all, and a future one
            # erratically. So ask it for everything since ``since`` without ``until``:
            # ``stream=false`` when the window is over (it then ends by itself), live
            # otherwise, and end the window here.
            del params["until"]
            assert until_seconds is not None
            if until_seconds <= time.time():
                params["stream"] = False
        response = await client._request("GET", "/events", params=params, stream=True)
        body = client.iter_body(response)
        lines = iter_json_lines(body, endpoint=client.url)
        # The live window's deadline bounds each read, never the consumer's own work
        # between events (a timeout around ``yield`` would cancel the consumer's task, and
        # the sync facade reads each event in a task of its own).
        deadline = until_seconds if podman_window and "stream" not in params else None
        try:
            while True:
                try:
                    if deadline is None:
                        line = await anext(lines)
                    else:
                        remaining = deadline - time.time()
                        if remaining <= 0:
                            return
                        async with asyncio.timeout(remaining):
                            line = await anext(lines)
                except (StopAsyncIteration, TimeoutError):
                    return
                event = Event.from_attrs(line, environment=self._environment)
                if podman_window and until_seconds is not None and event.time > until_seconds:
                    return
                yield event
        finally:
            await body.aclose()
