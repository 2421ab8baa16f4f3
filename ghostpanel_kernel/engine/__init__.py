"""Async client for the Docker-compatible Engine API that Bolt hosts serve."""

import importlib
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    AgentAuthError,
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
    PermissionDenied,
)
from ._archive import FileEntry
from ._client import EngineClient, EngineVersion
from ._containers import Container, ContainerCollection, ExecResult, Logs
from ._endpoint import Endpoint, TLSConfig
from ._environment import Environment
from ._exec_session import ExecSession
from ._images import Image, ImageCollection, ImagePull, ImagePullError, PullEvent
from ._networks import Network, NetworkCollection
from ._pull_progress import LayerProgress, PullProgress
from ._stats import StatsSample
from ._streams import LogLine
from ._sync import SyncBridge, SyncProxy
from ._system import Event, SystemAPI
from ._transport import EngineTransport
from ._volumes import Volume, VolumeCollection

if TYPE_CHECKING:
    from ._image_updates import UpdateStatus, check_updates

# Imported on first use: the registry client is needed only by update checks, and the
# agent imports this package.
_LAZY = {"UpdateStatus": "_image_updates", "check_updates": "_image_updates"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AgentAuthError",
    "BoltfileError",
    "Conflict",
    "Container",
    "ContainerCollection",
    "Endpoint",
    "EngineAPIError",
    "EngineClient",
    "EngineConnectionError",
    "EngineProtocolError",
    "EngineTimeout",
    "EngineTransport",
    "EngineVersion",
    "Environment",
    "EnvironmentClosed",
    "EnvironmentNotFound",
    "Event",
    "ExecResult",
    "ExecSession",
    "FileEntry",
    "GhostPanelError",
    "Image",
    "ImageCollection",
    "ImagePull",
    "ImagePullError",
    "LayerProgress",
    "LogLine",
    "Logs",
    "Network",
    "NetworkCollection",
    "NotFound",
    "PermissionDenied",
    "PullEvent",
    "PullProgress",
    "StatsSample",
    "SyncBridge",
    "SyncProxy",
    "SystemAPI",
    "TLSConfig",
    "UpdateStatus",
    "Volume",
    "VolumeCollection",
    "check_updates",
]
