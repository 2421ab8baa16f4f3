"""The JSON of a container in ``/api/v1``: the kernel model's fields, not the engine's.

The Engine API describes a container twice, differently (a listing entry and an
inspect answer), and Docker and Podman differ again within each. The API answers one
shape, made from :class:`~ghostpanel_kernel.engine.Container`'s properties, whichever
the engine sent: :data:`CONTAINER_SCHEMA` is its contract, in the OpenAPI document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from ..engine import Container

__all__ = ["CONTAINER_SCHEMA", "container_json"]

#: JSON Schema (2020-12) of :func:`container_json`'s answer.
CONTAINER_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A container on the agent's engine.",
    "required": ["id", "short_id", "name", "image", "state", "status", "health", "created",
                 "labels", "ports"],
    "properties": {
        "id": {"type": "string", "description": "The engine's full id."},
        "short_id": {"type": "string", "description": "The first 12 hex digits of the id."},
        "name": {"type": "string", "description": "The name, without a leading slash."},
        "image": {"type": "string", "description": "The image reference it was created "
                                                   "from."},
        "state": {"type": "string", "description": "created, running, paused, restarting, "
                                                   "exited, removing or dead."},
        "status": {"type": "string", "description": "The engine's human status, e.g. "
                                                    "`Up 3 minutes`."},
        "health": {"type": "string",
                   "description": "healthy, unhealthy, starting, or empty without a "
                                  "healthcheck."},
        "created": {"type": ["string", "null"],
                    "description": "When it was created, ISO 8601 (null if the engine did "
                                   "not say)."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "string"},
                  "description": "Published ports, `HOSTIP:HOSTPORT->PORT/PROTO` or "
                                 "`PORT/PROTO`."},
    },
}


def _created(attrs: dict[str, Any]) -> str | None:
    """``Created`` as ISO 8601: an inspect sends RFC 3339 text, a listing Unix seconds."""
    value = attrs.get("Created")
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC).isoformat()
    return value if isinstance(value, str) and value else None


def container_json(container: Container) -> dict[str, Any]:
    """The API's JSON for ``container`` (see :data:`CONTAINER_SCHEMA`).

    Examples
    --------
    >>> from ghostpanel_kernel.engine import Container
    >>> c = Container(None, {"Id": "ab" * 32, "Names": ["/web"], "State": "running",
    ...                      "Image": "busybox", "Created": 0})
    >>> container_json(c)["created"], container_json(c)["name"]
    ('1970-01-01T00:00:00+00:00', 'web')
    """
    return {"id": container.id, "short_id": container.short_id, "name": container.name,
            "image": container.image, "state": container.state, "status": container.status,
            "health": container.health, "created": _created(container.attrs),
            "labels": container.labels, "ports": container.ports}
