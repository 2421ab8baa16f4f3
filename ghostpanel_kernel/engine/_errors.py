"""Former home of GhostPanel's exceptions, now in :mod:`ghostpanel_kernel._exceptions`.

Kept as a re-export so that code written against the old path still imports; new code
imports from ``ghostpanel_kernel._exceptions`` (or the public ``ghostpanel_kernel``).
"""

from __future__ import annotations

from .._exceptions import (
    BoltfileError,
    Conflict,
    EngineAPIError,
    EngineConnectionError,
    EngineProtocolError,
    EngineTimeout,
    EnvironmentClosed,
    EnvironmentNotFound,
    GhostPanelError,
    NotFound,
    api_error_for,
)

__all__ = [
    "BoltfileError",
    "Conflict",
    "EngineAPIError",
    "EngineConnectionError",
    "EngineProtocolError",
    "EngineTimeout",
    "EnvironmentClosed",
    "EnvironmentNotFound",
    "GhostPanelError",
    "NotFound",
    "api_error_for",
]
