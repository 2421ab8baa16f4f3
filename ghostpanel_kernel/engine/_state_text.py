"""Docker's human status text ("Up 2 hours (healthy)") from an inspect's ``State``.

A listing (``GET /containers/json``) carries this text as ``Status``; an inspect
(``GET /containers/{id}/json``) does not, only the facts it is made of. The rules are
Docker's own, so that a container reads the same in both: ``State.String()`` in
moby's ``daemon/container/state.go`` and ``HumanDuration`` in ``docker/go-units``.
Pure functions: the current time is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._units import human_duration  # one formatter, shared with the CLI's ages
from ._times import engine_time

__all__ = ["human_duration", "status_text"]

# Health states Docker shows after the uptime; "starting" reads "health: starting".
_HEALTH_TEXT = {"starting": "health: starting", "healthy": "healthy", "unhealthy": "unhealthy"}


def _since(moment: datetime | None, now: datetime) -> str:
    return human_duration((now - moment).total_seconds() if moment is not None else 0.0)


def _health_suffix(state: Mapping[str, Any]) -> str:
    # Podman sends Health {"Status": ""} for every container without a healthcheck;
    # Docker leaves Health out. Either way there is nothing to show.
    health = state.get("Health")
    status = health.get("Status") if isinstance(health, Mapping) else None
    text = _HEALTH_TEXT.get(str(status or "").lower())
    return f" ({text})" if text else ""


def status_text(state: Mapping[str, Any], *, now: datetime | None = None) -> str:
    """Docker's status text for an inspect's ``State`` object, at time ``now``.

    Parameters
    ----------
    state
        ``attrs["State"]`` of an inspect: ``Status``, ``Running``, ``Paused``,
        ``Restarting``, ``Dead``, ``ExitCode``, ``StartedAt``, ``FinishedAt``, ``Health``.
    now
        The current time (aware); the real one when ``None``.

    Returns
    -------
    str
        ``"Up 3 minutes"``, ``"Up 2 hours (healthy)"``, ``"Up 5 seconds (Paused)"``,
        ``"Restarting (1) 5 seconds ago"``, ``"Exited (137) 2 minutes ago"``,
        ``"Created"``, ``"Dead"`` or ``"Removal In Progress"``, as ``docker ps`` shows.

    Examples
    --------
    >>> status_text({"Status": "exited", "ExitCode": 3,
    ...              "StartedAt": "2026-11-28T00:10:37Z",
    ...              "FinishedAt": "2026-11-28T00:10:38.5Z"},
    ...             now=datetime(2026, 11, 28, 0, 12, 40, tzinfo=UTC))
    'Exited (3) 2 minutes ago'
    """
    now = now or datetime.now(UTC)
    status = str(state.get("Status") or "").lower()
    started = engine_time(state.get("StartedAt"))
    finished = engine_time(state.get("FinishedAt"))
    # The flags decide, as in Docker; Status stands in for an engine that omits them.
    if state.get("Running") or status in ("running", "paused", "restarting"):
        if state.get("Paused") or status == "paused":
            return f"Up {_since(started, now)} (Paused)"
        if state.get("Restarting") or status == "restarting":
            return f"Restarting ({_exit_code(state)}) {_since(finished, now)} ago"
        return f"Up {_since(started, now)}{_health_suffix(state)}"
    # Docker keeps "removal in progress" out of the inspect's flags: only Status says it.
    if status == "removing":
        return "Removal In Progress"
    if state.get("Dead") or status == "dead":
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        # Docker's daemon writes "" here; Podman's listing names the state ("Stopping"),
        # which says more, so that is what is shown.
        return status.capitalize()
    return f"Exited ({_exit_code(state)}) {_since(finished, now)} ago"


def _exit_code(state: Mapping[str, Any]) -> int:
    try:
        return int(state.get("ExitCode") or 0)
    except (TypeError, ValueError):
        return 0
