"""What the gateway's parts share about one request: ASGI scope keys and the context.

The gateway's router (``_app.py``) authenticates a request, then hands it on with these
keys in the ASGI ``scope`` so that the Engine side and the ``/api/v1`` side read the same
facts the same way:

``scope[IDENTITY]``
    The :class:`~ghostpanel_kernel.gateway._identity.Identity` the hub vouched for.
``scope[REQUEST_ID]``
    The request's id (also sent back as ``X-Request-Id`` and written to the audit log).
``scope[ENVIRONMENT]``
    The environment's name for ``/env/{name}/...`` paths, else None.
``scope[CONTEXT]``
    The :class:`GatewayContext`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from ..engine import Environment
    from ._audit import AuditLog
    from ._identity import Identity

__all__ = ["CONTEXT", "ENVIRONMENT", "IDENTITY", "REQUEST_ID", "GatewayContext"]

IDENTITY: Final = "ghostpanel.identity"
REQUEST_ID: Final = "ghostpanel.request_id"
ENVIRONMENT: Final = "ghostpanel.environment"
CONTEXT: Final = "ghostpanel.context"


class GatewayContext(Protocol):
    """The gateway's shared state, as its request handlers use it."""

    #: The audit log every mutating request and every refusal is written to.
    audit: AuditLog

    async def permissions(self, identity: Identity, environment: str) -> frozenset[str]:
        """The permissions ``identity`` holds on ``environment`` (``docs/rbac.md``)."""
        ...

    async def environment(self, name: str) -> Environment:
        """The open :class:`Environment` registered as ``name`` (opened once, kept).

        Raises ``EnvironmentNotFound`` for a name the registry does not hold.
        """
        ...

    def environment_names(self) -> list[str]:
        """The names of every registered environment, sorted."""
        ...
