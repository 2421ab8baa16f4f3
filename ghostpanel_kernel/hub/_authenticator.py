"""The demo login: JupyterHub 5's shared password, keeping admins made by the CLI.

JupyterHub's ``SharedPasswordAuthenticator`` answers ``admin: False`` for every login
with the user password, and the hub applies that answer, so an admin made with
``ghostpanel hub user add --admin`` would lose the flag the first time they log in
through the browser. This subclass drops the key from the answer: the hub then keeps
the admin flag its database holds (set by the CLI through the REST API).
"""

from __future__ import annotations

from typing import Any

from jupyterhub.authenticators.shared import (  # type: ignore[import-untyped]
    SharedPasswordAuthenticator,
)

__all__ = ["DemoAuthenticator"]


class DemoAuthenticator(SharedPasswordAuthenticator):  # type: ignore[misc]
    """The shared-password authenticator, leaving a user's admin flag as stored."""

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> Any:
        """Check the shared password; the answer carries no ``admin`` key."""
        answer = await super().authenticate(handler, data)
        if isinstance(answer, dict) and answer.get("admin") is False:
            answer = {key: value for key, value in answer.items() if key != "admin"}
        return answer
