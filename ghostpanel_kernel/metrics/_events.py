"""Engine container events to :class:`ContainerEvent`: what restarted, died, went OOM,
changed health or was removed, as the engine tells it (not polled).

Docker and Podman name some actions differently: Docker's health change is
``health_status: healthy`` and its removal ``destroy``; Podman's are ``health_status``
(the status in the attributes) and ``remove``. A restart carries no exit code on either,
so it takes the one of the container's last ``die``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..engine._system import Event
from ._names import ContainerEvent

__all__ = ["EventTranslator"]

_KINDS = {"start": "start", "die": "die", "died": "die", "restart": "restart",
          "oom": "oom", "destroy": "destroy", "remove": "destroy"}


def _exit_code(attributes: Mapping[str, str]) -> int | None:
    text = attributes.get("exitCode")
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


class EventTranslator:
    """Turns engine events of one environment into ContainerEvents (or None for the
    actions not recorded: create, init, exec, attach...)."""

    def __init__(self, environment: str) -> None:
        self.environment = environment
        self._last_exit: dict[str, int | None] = {}

    def __call__(self, event: Event) -> ContainerEvent | None:
        """The ContainerEvent for ``event``, if it is one the store keeps."""
        if event.type != "container":
            return None
        action = event.action
        health: str | None = None
        if action.startswith("health_status"):
            kind = "health"
            _, _, status = action.partition(":")
            health = status.strip() or event.attributes.get("health_status") or None
        else:
            found = _KINDS.get(action)
            if found is None:
                return None
            kind = found
        exit_code = _exit_code(event.attributes) if kind == "die" else None
        if kind == "die":
            self._last_exit[event.actor_id] = exit_code
        elif kind == "restart":
            exit_code = self._last_exit.get(event.actor_id)
        elif kind == "destroy":
            self._last_exit.pop(event.actor_id, None)
        return ContainerEvent(event.time, self.environment, event.name.lstrip("/"),
                              event.actor_id, kind, exit_code, health)
