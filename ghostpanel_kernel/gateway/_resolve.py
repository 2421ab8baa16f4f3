"""What a name or id in a request really points at: the full id and the owner's labels.

The engine finds a container by full id, by any unique id prefix, or by name (a leading
``/`` stripped); a volume by name; a network by id, prefix or name; an exec instance by
its id. The gateway must judge the object the engine will act on, so it asks the engine
the same way (an inspect, the reference percent-encoded as the client sent it), takes
the full id and the labels from the answer, checks ownership on those, and then forwards
by full id: the request the engine receives names exactly the object that was judged,
even if a name is taken over meanwhile.

An exec instance has no labels: it belongs to its container (the engine's exec inspect
names it, ``ContainerID``), which is judged in its place. The exec id -> container link
is remembered (:class:`ExecOwners`), since an exec id never changes its container.

A container's labels never change either (no engine API sets them after the create),
and its full id is never reused: a container named by its full id is looked up once
and then remembered (:class:`KnownContainers`), which spares the engine an inspect on
every request of a client that uses ids (the docker CLI after ``ps``, GhostPanel's own
client). A name or a prefix is always asked again: it may point elsewhere tomorrow.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

from ..engine import Environment, NotFound

__all__ = ["ExecOwners", "KnownContainers", "Resolved", "inspect_path", "resolve"]

Kind = Literal["container", "volume", "network", "exec"]

#: Exec ids remembered per gateway process (an id costs ~150 bytes).
_EXEC_MEMORY: Final = 10_000
#: Containers remembered per environment (one costs ~1 KiB with its labels).
_CONTAINER_MEMORY: Final = 10_000

_FULL_ID: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Resolved:
    """The object a reference points at.

    Attributes
    ----------
    kind
        ``container``, ``volume``, ``network`` or ``exec``.
    reference
        What the request said (a name, a prefix, the full id).
    full_id
        The engine's full id (a volume's name, which is its id).
    labels
        The labels ownership is judged on (an exec's: its container's).
    name
        The object's name, for the audit log ("" when it has none).
    container_id
        For an exec instance: its container's full id.
    """

    kind: Kind
    reference: str
    full_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    container_id: str | None = None


def inspect_path(kind: Kind, reference: str) -> str:
    """The engine path that inspects ``reference`` (no version prefix).

    Examples
    --------
    >>> inspect_path("container", "/web")
    '/containers/%2Fweb/json'
    """
    quoted = quote(reference, safe="")
    return {"container": f"/containers/{quoted}/json", "volume": f"/volumes/{quoted}",
            "network": f"/networks/{quoted}", "exec": f"/exec/{quoted}/json"}[kind]


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


class ExecOwners:
    """Exec id -> its container's full id, remembered (least recently used dropped)."""

    def __init__(self, capacity: int = _EXEC_MEMORY) -> None:
        self._capacity = capacity
        self._owners: OrderedDict[str, str] = OrderedDict()

    def get(self, exec_id: str) -> str | None:
        """The container of ``exec_id``, when known."""
        owner = self._owners.get(exec_id)
        if owner is not None:
            self._owners.move_to_end(exec_id)
        return owner

    def remember(self, exec_id: str, container_id: str) -> None:
        """Record that ``exec_id`` runs in ``container_id``."""
        self._owners[exec_id] = container_id
        self._owners.move_to_end(exec_id)
        while len(self._owners) > self._capacity:
            self._owners.popitem(last=False)


class KnownContainers:
    """Full container id -> what it resolved to, remembered (least recently used
    dropped); see the module notes for why that is safe."""

    def __init__(self, capacity: int = _CONTAINER_MEMORY) -> None:
        self._capacity = capacity
        self._known: OrderedDict[str, Resolved] = OrderedDict()

    def get(self, full_id: str) -> Resolved | None:
        """The container with this full id, when it was resolved before."""
        known = self._known.get(full_id)
        if known is not None:
            self._known.move_to_end(full_id)
        return known

    def remember(self, resolved: Resolved) -> None:
        """Keep ``resolved`` (a container) under its full id."""
        self._known[resolved.full_id] = resolved
        self._known.move_to_end(resolved.full_id)
        while len(self._known) > self._capacity:
            self._known.popitem(last=False)


async def resolve(env: Environment, kind: Kind, reference: str, *,
                  execs: ExecOwners | None = None,
                  known: KnownContainers | None = None) -> Resolved:
    """Ask the engine what ``reference`` names.

    Raises
    ------
    NotFound
        The engine has no such object (for an exec: or no longer its container).
    """
    client = env.client
    if kind == "exec":
        owner = execs.get(reference) if execs is not None else None
        if owner is None:
            answer = await client.get_json(inspect_path("exec", reference))
            exec_id = str(answer.get("ID") or reference)
            owner = str(answer.get("ContainerID") or "")
            if not owner:
                raise NotFound(404, f"exec instance {reference} names no container",
                               method="GET", path=inspect_path("exec", reference))
            if execs is not None:
                execs.remember(exec_id, owner)
                if exec_id != reference:
                    execs.remember(reference, owner)
        else:
            exec_id = reference
        container = await resolve(env, "container", owner, known=known)
        return Resolved("exec", reference, exec_id, container.labels, container.name,
                        container_id=container.full_id)
    if kind == "container" and reference.startswith("/"):
        # Docker strips a leading "/" from a container name (its names are stored so);
        # Podman 4 does not, and answers 404. Judge what Docker would act on: a
        # request the engine refuses anyway loses nothing by it.
        reference = reference.lstrip("/")
    if kind == "container" and known is not None and _FULL_ID.fullmatch(reference):
        remembered = known.get(reference)
        if remembered is not None:
            return remembered
    answer = await client.get_json(inspect_path(kind, reference))
    if kind == "container":
        config = answer.get("Config") or {}
        resolved = Resolved(kind, reference, str(answer["Id"]), _labels(config.get("Labels")),
                            str(answer.get("Name") or "").lstrip("/"))
        if known is not None:
            known.remember(resolved)
        return resolved
    if kind == "volume":
        name = str(answer["Name"])
        return Resolved(kind, reference, name, _labels(answer.get("Labels")), name)
    return Resolved(kind, reference, str(answer.get("Id") or answer["Name"]),
                    _labels(answer.get("Labels")), str(answer.get("Name") or ""))
