"""What a caller may see of the ``/api/v1`` answers: lists and events, filtered by team.

The agent's API answers for the whole engine; behind the gateway a non-admin sees only
the objects their teams own (``docs/gateway-api.md``). Two answers carry many objects
and are filtered here, on their way out, whether they come from an in-process API app
(a local environment) or from an agent the gateway forwards to:

- ``GET /api/v1/containers``: a JSON array of containers, each with its ``labels``;
  the array is read whole, filtered with :func:`~._ownership.may_see` and re-encoded.
- ``ws /api/v1/events``: one JSON text message per engine event, the actor's
  attributes (labels included: both engines put them there) in ``data.attributes``.
  An event is passed on when the caller may see its object; images are
  environment-wide and pass; the gateway's own ``agent.*`` messages pass. Each message
  is given the environment's gateway name in ``data.environment`` (an agent names its
  host there).

The filters wrap the ASGI ``send`` callable, so the app behind them needs no change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ..server._problems import Message, Send
from ._identity import Identity
from ._listing_filters import filtering_send
from ._ownership import may_see

__all__ = ["container_visible", "event_visible", "filter_by_container", "filter_events",
           "filter_json_list"]

#: Object kinds every caller with ``read`` sees: images belong to the environment.
_SHARED_KINDS: Final = frozenset({"image"})


def container_visible(identity: Identity, item: Any) -> bool:
    """Whether a container of the API's JSON shape (``labels``...) is the caller's to see."""
    if not isinstance(item, Mapping):
        return identity.admin
    labels = item.get("labels")
    return may_see(identity, labels if isinstance(labels, Mapping) else {})


def event_visible(identity: Identity, message: Mapping[str, Any]) -> bool:
    """Whether one ``ws /api/v1/events`` message may go to the caller.

    Examples
    --------
    >>> ada = Identity("ada", groups=frozenset({"blue"}))
    >>> event_visible(ada, {"type": "agent.subscribed", "data": {}})
    True
    >>> event_visible(ada, {"type": "container.started", "data": {"kind": "container",
    ...     "attributes": {"io.ghostpanel.teams": "red"}}})
    False
    """
    kind_of_message = str(message.get("type", ""))
    if kind_of_message.startswith("agent."):
        return True
    data = message.get("data")
    if not isinstance(data, Mapping):
        return identity.admin
    if str(data.get("kind", "")).lower() in _SHARED_KINDS:
        return True
    attributes = data.get("attributes")
    return may_see(identity, attributes if isinstance(attributes, Mapping) else {})


def filter_json_list(send: Send, identity: Identity) -> Send:
    """A ``send`` that keeps, of a successful JSON array answer, what the caller may see.

    The answer's body is held until it is complete (a list is small and finite), then
    filtered and sent once with a corrected ``Content-Length``. Error answers (a
    problem document) pass unchanged.
    """

    def keep_visible(body: bytes) -> bytes:
        try:
            items = json.loads(body)
        except ValueError:
            items = None
        if isinstance(items, list):
            return json.dumps([item for item in items
                               if container_visible(identity, item)]).encode()
        if not identity.admin:
            # Not the list this filter was put on: say nothing rather than everything.
            return b"[]"
        return body

    return filtering_send(send, keep_visible)


def filter_events(send: Send, identity: Identity, environment: str) -> Send:
    """A ``send`` that drops the event messages the caller may not see (see the notes).

    A text message that is not a JSON object goes to admins only: the filter cannot
    tell whose it is.
    """

    async def filtered(message: Message) -> None:
        if message["type"] != "websocket.send" or message.get("text") is None:
            await send(message)
            return
        try:
            document = json.loads(message["text"])
        except ValueError:
            document = None
        if not isinstance(document, dict):
            if identity.admin:
                await send(message)
            return
        if not event_visible(identity, document):
            return
        data = document.get("data")
        if isinstance(data, dict) and "environment" in data:
            data["environment"] = environment
        await send({"type": "websocket.send", "text": json.dumps(document)})

    return filtered


def _rows_of(document: Any, names: frozenset[str]) -> Any:
    """``{"columns": [...], "rows": [...]}`` (metrics history and events) with only the
    rows of a container in ``names``; a document of another shape says nothing."""
    if not isinstance(document, dict) or not isinstance(document.get("columns"), list):
        return {"columns": [], "rows": []}
    columns = document["columns"]
    if "container" not in columns:
        return {**document, "rows": []}
    at = columns.index("container")
    rows = document.get("rows")
    kept = [row for row in rows if isinstance(row, list) and len(row) > at
            and row[at] in names] if isinstance(rows, list) else []
    return {**document, "rows": kept}


def _alerts_of(document: Any, names: frozenset[str]) -> Any:
    """The alert feed with only the alerts of a container in ``names`` (silences are
    patterns, not container data: they stay)."""
    if not isinstance(document, dict):
        return {"alerts": [], "silences": []}
    alerts = document.get("alerts")
    kept = [alert for alert in alerts if isinstance(alert, dict)
            and alert.get("container") in names] if isinstance(alerts, list) else []
    return {**document, "alerts": kept}


def filter_by_container(send: Send, listing: str, names: frozenset[str]) -> Send:
    """A ``send`` that keeps, of a metrics (``listing="metrics"``) or alerts
    (``"alerts"``) answer, what concerns the containers named in ``names``.

    The agent keys these by container *name*, without labels, so the caller's visible
    names are read from the environment's container list first. Error answers pass
    unchanged.

    Examples
    --------
    >>> _rows_of({"columns": ["time", "container"], "rows": [[1, "web"], [2, "db"]]},
    ...          frozenset({"web"}))["rows"]
    [[1, 'web']]
    """
    pick = _rows_of if listing == "metrics" else _alerts_of

    def keep_named(body: bytes) -> bytes:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        return json.dumps(pick(document, names)).encode()

    return filtering_send(send, keep_named)
