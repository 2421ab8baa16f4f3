"""What ``ws /api/v1/events`` sends, and which events a subscriber asked for.

One engine event becomes one WebSocket text message, a JSON object::

    {"type": "container.started",
     "data": {"id": "3f1c...", "name": "web", "environment": "host1",
              "time": "2026-12-07T19:30:05.123456789Z", "time_nano": 1796671805123456789,
              "kind": "container", "action": "start", "attributes": {...}}}

``type`` is the engine's object type and its action in the past tense
(:func:`event_type`); ``data.action`` keeps the engine's own action word, ``data.kind``
its object type, ``data.attributes`` the actor's attributes (labels included, as both
engines put them there). Messages of the agent itself have the type ``agent.*`` (see
``docs/events.md``).

Filters (:class:`EventFilter`) work like the Engine API's: values of one key are
alternatives (any may match), except labels, which must all be there (as in
``docker events --filter label=...``); different keys must all match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..engine import Event

__all__ = ["EventFilter", "EventKey", "agent_message", "event_key", "event_message",
           "event_type", "rfc3339_nano"]

#: Engine action words and their past tense in a message's ``type``. Words not listed
#: are kept as they are (``container.exec_died``, ``image.health_status``...).
PAST_TENSE: Final[Mapping[str, str]] = {
    "attach": "attached", "checkpoint": "checkpointed", "cleanup": "cleaned_up",
    "commit": "committed", "connect": "connected", "copy": "copied", "create": "created",
    "delete": "deleted", "destroy": "removed", "detach": "detached", "die": "died",
    "died": "died", "disconnect": "disconnected", "exec": "exec_started",
    "exec_create": "exec_created", "exec_start": "exec_started", "export": "exported",
    "import": "imported", "init": "initialized", "kill": "killed", "load": "loaded",
    "mount": "mounted", "oom": "oom_killed", "pause": "paused", "prune": "pruned",
    "pull": "pulled", "push": "pushed", "remove": "removed", "rename": "renamed",
    "resize": "resized", "restart": "restarted", "restore": "restored", "save": "saved",
    "start": "started", "stop": "stopped", "sync": "synced", "tag": "tagged",
    "unmount": "unmounted", "unpause": "unpaused", "untag": "untagged",
    "update": "updated",
}

#: The identity of an engine event, for telling a replayed event from a live one:
#: (time in nanoseconds, object type, action, actor id).
EventKey = tuple[int, str, str, str]

#: The keys a filter query may carry.
FILTER_KEYS: Final = ("type", "action", "label", "container")


def _verb(action: str) -> str:
    # Docker writes some actions with a detail after a colon ("exec_start: sh -c ...",
    # "health_status: healthy"): the word before it is the action.
    return action.partition(":")[0].strip().lower()


def event_type(kind: str, action: str) -> str:
    """The dotted ``type`` of a message: ``kind.<action in the past tense>``.

    Examples
    --------
    >>> event_type("container", "start"), event_type("container", "died")
    ('container.started', 'container.died')
    >>> event_type("image", "pull"), event_type("container", "health_status: healthy")
    ('image.pulled', 'container.health_status')
    """
    verb = _verb(action)
    return f"{kind.lower() or 'unknown'}.{PAST_TENSE.get(verb, verb) or 'unknown'}"


def rfc3339_nano(nanoseconds: int) -> str:
    """UTC RFC 3339 text with all nine fraction digits.

    Examples
    --------
    >>> rfc3339_nano(1_700_000_000_000_000_001)
    '2023-11-14T22:13:20.000000001Z'
    """
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def _time_nano(event: Event) -> int:
    nanos = event.attrs.get("timeNano")
    if nanos:
        return int(nanos)
    return int(event.time * 1_000_000_000)


def event_key(event: Event) -> EventKey:
    """The identity of ``event`` (see :data:`EventKey`)."""
    return (_time_nano(event), event.type, event.action, event.actor_id)


def event_message(event: Event, environment: str) -> dict[str, Any]:
    """The message for one engine event (see the module notes)."""
    nanos = _time_nano(event)
    return {"type": event_type(event.type, event.action),
            "data": {"id": event.actor_id, "name": event.name, "environment": environment,
                     "time": rfc3339_nano(nanos), "time_nano": nanos, "kind": event.type,
                     "action": event.action, "attributes": dict(event.attributes)}}


def agent_message(kind: str, environment: str, nanoseconds: int, **data: Any) -> str:
    """The text of a message of the agent itself, ``agent.<kind>``."""
    body = {"environment": environment, "time": rfc3339_nano(nanoseconds),
            "time_nano": nanoseconds, **data}
    return json.dumps({"type": f"agent.{kind}", "data": body})


def _split(values: Iterable[str]) -> frozenset[str]:
    return frozenset(part.strip() for value in values for part in value.split(",")
                     if part.strip())


@dataclass(frozen=True)
class EventFilter:
    """Which engine events a subscriber wants; empty sets mean "any".

    Attributes
    ----------
    types
        Dotted types (``container.started``) or object types (``container``).
    actions
        Engine action words (``start``, ``die``); the word before a ``:`` is compared.
    labels
        ``key`` (present with any value) or ``key=value``; all must match.
    containers
        Container names, or ids or id prefixes; only container events can match.

    Examples
    --------
    >>> wanted = EventFilter.from_query([("type", "container"), ("label", "app=web")])
    >>> wanted.matches(Event("container", "start", "abc", {"app": "web"}, 0.0))
    True
    >>> wanted.matches(Event("image", "pull", "abc", {"app": "web"}, 0.0))
    False
    """

    types: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    containers: frozenset[str] = frozenset()

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> EventFilter:
        """Read the filter keys of a query string's ``(key, value)`` pairs.

        A key may repeat; ``type``, ``action`` and ``container`` also take several
        values separated by commas (a label's value may hold a comma, so it does not).
        Keys other than :data:`FILTER_KEYS` are left to the caller.

        Raises
        ------
        ValueError
            An empty label.
        """
        grouped: dict[str, list[str]] = {key: [] for key in FILTER_KEYS}
        for key, value in items:
            if key in grouped:
                grouped[key].append(value)
        labels = frozenset(value.strip() for value in grouped["label"])
        if any(not label or label.startswith("=") for label in labels):
            raise ValueError("a label filter is `key` or `key=value`, not empty")
        return cls(types=frozenset(t.lower() for t in _split(grouped["type"])),
                   actions=frozenset(a.lower() for a in _split(grouped["action"])),
                   labels=labels, containers=_split(grouped["container"]))

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every key of the filter."""
        if self.types:
            kind = event.type.lower()
            if kind not in self.types and event_type(kind, event.action) not in self.types:
                return False
        if self.actions and _verb(event.action) not in self.actions \
                and event.action.lower() not in self.actions:
            return False
        if not all(self._has_label(event.attributes, label) for label in self.labels):
            return False
        return not self.containers or (event.type == "container" and any(
            wanted in (event.attributes.get("name"), event.actor_id)
            or (len(wanted) >= 3 and event.actor_id.startswith(wanted))
            for wanted in self.containers))

    @staticmethod
    def _has_label(attributes: Mapping[str, str], label: str) -> bool:
        key, equals, value = label.partition("=")
        if not equals:
            return key in attributes
        return attributes.get(key) == value
