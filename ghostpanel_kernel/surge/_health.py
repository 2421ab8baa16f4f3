"""Waiting for a container's healthcheck to pass, on engines that run checks and on
those that do not.

Docker runs a container's healthcheck on its own timer; Podman does it through systemd
timers, and without systemd (containers, CI runners, this project's test machines) the
health stays ``starting`` for ever -- measured with Podman 4.3.1: five seconds after a
check that passes at once, ``State.Health.Status`` was still ``starting``. So:

- **Podman** (and engines that are not Docker, such as Bolt's compat server in front of
  Podman): Surge runs the check itself through libpod's
  ``GET /libpod/containers/{name}/healthcheck`` -- what ``podman healthcheck run`` does.
  The engine records each result, so ``status`` and ``ps`` see real health afterwards.
  Podman serves libpod under any version prefix, so the client's negotiated one works.
  Where that endpoint does not exist (404), the check's ``test`` is run with ``exec``.
- **Docker**: the engine's own status is polled (inspect).

Checks run every :data:`POLL_INTERVAL` seconds, not at the Boltfile's ``interval``: an
apply waiting for a database should not sleep 30 s between looks. A failing check is not
final (a service failing while it starts is normal): waiting ends when the check passes,
when the container stops running, or when the bounded wait runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final

from ..engine import Container, Environment, GhostPanelError, NotFound

__all__ = ["POLL_INTERVAL", "HealthTimeout", "run_healthcheck", "wait_healthy"]

#: Seconds between two looks at a container's health while waiting.
POLL_INTERVAL: Final = 0.5


class HealthTimeout(GhostPanelError):
    """A container did not become healthy within the wait (or stopped running)."""


async def _exec_check(container: Container, test: list[str]) -> str:
    kind, *command = test
    if kind == "CMD-SHELL":
        result = await container.exec(["sh", "-c", " ".join(command)])
    else:
        result = await container.exec(command)
    return "healthy" if result.exit_code == 0 else "unhealthy"


async def run_healthcheck(environment: Environment, container: Container,
                          check: Mapping[str, Any]) -> str:
    """Run ``container``'s healthcheck once (Podman) or read its status (Docker).

    Returns
    -------
    str
        ``healthy``, ``unhealthy`` or ``starting``.
    """
    if await environment.client.kind() == "docker":
        await container.reload()
        return container.health or "starting"
    try:
        result = await environment.client.get_json(
            f"/libpod/containers/{container.id}/healthcheck")
    except NotFound as error:
        if "no such container" in error.message.lower():
            raise
        return await _exec_check(container, list(check.get("Test") or []))
    return str((result or {}).get("Status") or "starting")


async def wait_healthy(environment: Environment, container: Container,
                       check: Mapping[str, Any], *, timeout: float) -> None:
    """Return once ``container`` is healthy.

    Raises
    ------
    HealthTimeout
        It stopped running, or was not healthy after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    status = "starting"
    while True:
        await container.reload()
        if container.state != "running":
            raise HealthTimeout(f"container {container.name} stopped ({container.state}) "
                                "before its healthcheck passed")
        status = await run_healthcheck(environment, container, check)
        if status == "healthy":
            return
        if time.monotonic() >= deadline:
            raise HealthTimeout(f"container {container.name} was not healthy after "
                                f"{timeout:g} s (last check: {status})")
        await asyncio.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
