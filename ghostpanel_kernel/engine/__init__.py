"""Async client for the Docker-compatible Engine API that Bolt hosts serve."""

from ._archive import FileEntry
from ._client import EngineClient, EngineVersion
from ._containers import Container, ContainerCollection, ExecResult, Logs
from ._endpoint import Endpoint, TLSConfig
from ._environment import Environment
from ._errors import (
    BoltfileError,
    Conflict,
    EngineAPIError,
    EngineConnectionError,
    EngineTimeout,
    EnvironmentNotFound,
    GhostPanelError,
    NotFound,
)
from ._images import Image, ImageCollection, ImagePull, ImagePullError, PullEvent
from ._networks import Network, NetworkCollection
from ._stats import StatsSample
from ._streams import LogLine
from ._sync import SyncBridge, SyncProxy
from ._system import Event, SystemAPI
from ._transport import EngineTransport
from ._volumes import Volume, VolumeCollection

__all__ = [
    "BoltfileError",
    "Conflict",
    "Container",
    "ContainerCollection",
    "Endpoint",
    "EngineAPIError",
    "EngineClient",
    "EngineConnectionError",
    "EngineTimeout",
    "EngineTransport",
    "EngineVersion",
    "Environment",
    "EnvironmentNotFound",
    "Event",
    "ExecResult",
    "FileEntry",
    "GhostPanelError",
    "Image",
    "ImageCollection",
    "ImagePull",
    "ImagePullError",
    "LogLine",
    "Logs",
    "Network",
    "NetworkCollection",
    "NotFound",
    "PullEvent",
    "StatsSample",
    "SyncBridge",
    "SyncProxy",
    "SystemAPI",
    "TLSConfig",
    "Volume",
    "VolumeCollection",
]
