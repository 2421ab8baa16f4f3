"""Errors of the registry client, under GhostPanel's one root::

    GhostPanelError
    └── RegistryError              a registry answered with an error, or not as one does
        ├── RegistryUnreachable    no connection, or no answer, in time
        ├── RegistryAuthError      credentials missing or refused (the registry's, or
        │                          its token service's)
        └── ManifestNotFound       the registry has no such repository or tag

Every httpx error the client meets is mapped to one of these in one place,
:func:`ghostpanel_kernel.registry._client.map_registry_errors`.
"""

from __future__ import annotations

from .._exceptions import GhostPanelError

__all__ = ["ManifestNotFound", "RegistryAuthError", "RegistryError", "RegistryUnreachable"]


class RegistryError(GhostPanelError):
    """The registry ``registry`` could not tell a manifest's digest.

    Parameters
    ----------
    message
        What went wrong, in the operator's terms.
    registry
        The registry's host (``docker.io``, ``127.0.0.1:5000``...).
    """

    def __init__(self, message: str, *, registry: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.registry = registry

    def __str__(self) -> str:
        return f"{self.registry}: {self.message}" if self.registry else self.message


class RegistryUnreachable(RegistryError):
    """No connection to the registry, or no answer within the time allowed."""


class RegistryAuthError(RegistryError):
    """The registry wants credentials that are missing, or refused those it was given."""


class ManifestNotFound(RegistryError):
    """The registry has no manifest for that repository and tag (404)."""
