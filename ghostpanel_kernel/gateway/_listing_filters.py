"""Engine API answers that list many objects, cut down to what the caller may see.

A non-admin sees only the containers, volumes and networks their teams own
(``docs/gateway.md``). The Engine API answers that carry many of them are filtered on
their way back, by the labels each object carries:

``GET /containers/json``
    A JSON array; each container's ``Labels``.
``GET /volumes``
    ``{"Volumes": [...], "Warnings": ...}``; each volume's ``Labels``.
``GET /networks``
    A JSON array; each network's ``Labels``.
``GET /system/df``
    Its ``Containers`` and ``Volumes`` arrays are filtered (``Images`` are the
    environment's, shared by everyone).
``GET /events``
    A stream of JSON objects, one per line: an event about a container carries the
    container's labels in ``Actor.Attributes`` (Docker and Podman both put them
    there), and is passed on when the caller may see them; image events pass; events
    about volumes and networks are judged on the object's labels, looked up through
    the engine (and remembered, since a removed object cannot be looked up any more);
    anything else (pods, the daemon itself) reaches admins only.

The lists are held until whole (they are finite and small), filtered, and sent in one
piece with a new ``Content-Length``; the event stream is filtered line by line as it
flows. Error answers pass unchanged.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from ..server._problems import Message, Send

__all__ = ["EventFilter", "LabelsLookup", "Visible", "filter_listing", "filtering_send",
           "streaming_send"]

#: Whether an object with these labels may be shown to the caller.
Visible = Callable[[Mapping[str, str]], bool]
#: The labels of a volume or network by kind and id (None when it is gone).
LabelsLookup = Callable[[str, str], Awaitable[Mapping[str, str] | None]]

#: Objects whose labels an event filter remembers.
_REMEMBERED: Final = 4096
#: The longest event line kept while waiting for its end (an event is ~1 KiB).
_MAX_LINE: Final = 1024 * 1024


def _labels(item: Any) -> Mapping[str, str]:
    labels = item.get("Labels") if isinstance(item, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _keep(items: Any, visible: Visible,
          labels_by_id: Mapping[str, Mapping[str, str]] | None = None) -> Any:
    if not isinstance(items, list):
        return items
    if labels_by_id is None:
        return [item for item in items if visible(_labels(item))]
    return [item for item in items if isinstance(item, Mapping) and visible(
        labels_by_id.get(str(item.get("Id") or item.get("Name") or ""), {}))]


def filter_listing(listing: str, body: bytes, visible: Visible,
                   labels_by_id: Mapping[str, Mapping[str, str]] | None = None) -> bytes:
    """The JSON answer ``body`` of a ``listing`` with only the visible objects kept.

    ``listing`` is ``containers``, ``volumes``, ``networks`` or ``df``. A body that is
    not the expected JSON shape becomes an empty listing of that kind: nothing that
    was not judged gets through. ``labels_by_id`` (container id or volume name ->
    labels) is for ``df``, whose entries Podman sends without labels.

    Examples
    --------
    >>> body = b'[{"Id": "a", "Labels": {"team": "x"}}, {"Id": "b", "Labels": {}}]'
    >>> filter_listing("containers", body, lambda labels: "team" in labels)
    b'[{"Id": "a", "Labels": {"team": "x"}}]'
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if listing in ("containers", "networks"):
        data = _keep(data, visible) if isinstance(data, list) else []
    elif listing == "volumes":
        data = data if isinstance(data, dict) else {}
        data["Volumes"] = _keep(data.get("Volumes") or [], visible)
    elif listing == "df":
        data = data if isinstance(data, dict) else {}
        for key in ("Containers", "Volumes"):
            if key in data:
                data[key] = _keep(data[key] or [], visible, labels_by_id)
    return json.dumps(data).encode()


def filtering_send(send: Send, transform: Callable[[bytes], bytes]) -> Send:
    """A ``send`` that holds a successful answer's body whole and sends ``transform`` of
    it, with a matching ``Content-Length``; other answers pass unchanged.

    Both the Engine API listings and the ``/api/v1`` lists (``_api_filters``) are
    filtered through it: a filter needs the whole JSON document, and the answers are
    small and finite.
    """
    start: Message | None = None
    chunks: list[bytes] = []

    async def filtered(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            if message.get("status", 500) != 200:
                start = None
                await send(message)
                return
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = transform(b"".join(chunks))
        headers = [(name, value) for name, value in start.get("headers", [])
                   if name.lower() != b"content-length"]
        headers.append((b"content-length", b"%d" % len(body)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return filtered


class EventFilter:
    """Judges ``GET /events`` lines one by one (see the module notes).

    Parameters
    ----------
    visible
        Whether labels are the caller's to see.
    lookup
        The labels of a volume or network, through the engine.
    admin
        An admin sees every event.
    """

    def __init__(self, visible: Visible, lookup: LabelsLookup, *, admin: bool) -> None:
        self._visible = visible
        self._lookup = lookup
        self._admin = admin
        self._pending = b""
        self._known: OrderedDict[tuple[str, str], Mapping[str, str] | None] = OrderedDict()

    async def feed(self, chunk: bytes) -> bytes:
        """The whole visible lines of what arrived so far (a partial line waits)."""
        if self._admin:
            return chunk
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > _MAX_LINE:  # not an engine's event stream: drop it
            self._pending = b""
        kept = [line + b"\n" for line in lines if line.strip() and await self.shows(line)]
        return b"".join(kept)

    async def shows(self, line: bytes) -> bool:
        """Whether one event line may go to the caller."""
        try:
            event = json.loads(line)
        except ValueError:
            return False
        if not isinstance(event, dict):
            return False
        kind = str(event.get("Type") or "").lower()
        actor: Any = event.get("Actor")
        actor = actor if isinstance(actor, dict) else {}
        attributes: Any = actor.get("Attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        if kind == "image":
            return True
        if kind == "container":
            return self._visible(attributes)
        if kind in ("volume", "network"):
            labels = await self._labels_of(kind, str(actor.get("ID") or ""))
            return labels is not None and self._visible(labels)
        return False

    async def _labels_of(self, kind: str, ident: str) -> Mapping[str, str] | None:
        key = (kind, ident)
        if key in self._known:
            self._known.move_to_end(key)
            return self._known[key]
        labels = await self._lookup(kind, ident) if ident else None
        if labels is not None:  # a miss is not remembered: the object may come later
            self._known[key] = labels
            while len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        return labels


def streaming_send(send: Send, events: EventFilter) -> Send:
    """A ``send`` that passes a successful event stream through ``events``."""
    streaming = False

    async def filtered(message: Message) -> None:
        nonlocal streaming
        if message["type"] == "http.response.start":
            streaming = message["status"] == 200
            if streaming:
                # The length changes with what is dropped: let the server frame it.
                message = {**message, "headers": [
                    (name, value) for name, value in message["headers"]
                    if name.lower() != b"content-length"]}
            await send(message)
            return
        if streaming and message["type"] == "http.response.body":
            body = await events.feed(message.get("body", b""))
            more = message.get("more_body", False)
            if body or not more:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            return
        await send(message)

    return filtered
