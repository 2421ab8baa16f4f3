"""GhostPanel's core library: run Bolt container hosts from Python and Jupyter.

>>> from ghostpanel_kernel import connect, NotFound, EngineConnectionError
>>> env = connect("unix:///run/podman/podman.sock")          # doctest: +SKIP
>>> c = await env.containers.create(image="localhost/busybox:latest", name="web",
...                                 command=["sh", "-c", "echo hi; sleep 30"])  # doctest: +SKIP

Public names load on first use (PEP 562): ``import ghostpanel_kernel`` stays cheap for
tools that only need a part of it, and the registry (SQLAlchemy), Boltfiles (tomlkit) and
anything Jupyter are imported only by code that uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; one table feeds __all__, __getattr__ and __dir__.
_EXPORTS: dict[str, str] = {
    "BoltfileError": "._exceptions",
    "Conflict": "._exceptions",
    "Container": ".engine",
    "EngineAPIError": "._exceptions",
    "EngineConnectionError": "._exceptions",
    "EngineProtocolError": "._exceptions",
    "EngineTimeout": "._exceptions",
    "EngineVersion": ".engine",
    "Environment": ".engine",
    "EnvironmentClosed": "._exceptions",
    "EnvironmentNotFound": "._exceptions",
    "EnvironmentRegistry": ".environments",
    "EnvironmentSpec": ".environments",
    "Event": ".engine",
    "ExecResult": ".engine",
    "FanOutResult": ".environments",
    "FileEntry": ".engine",
    "GhostPanelError": "._exceptions",
    "Image": ".engine",
    "ImagePullError": ".engine",
    "LogLine": ".engine",
    "Logs": ".engine",
    "Network": ".engine",
    "NotFound": "._exceptions",
    "PermissionDenied": "._exceptions",
    "PullEvent": ".engine",
    "StatsSample": ".engine",
    "TLSConfig": ".engine",
    "Volume": ".engine",
    "connect": "._connect",
    "connect_sync": "._connect",
    "fan_out": ".environments",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ghostpanel_kernel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from ._connect import connect, connect_sync
    from ._exceptions import (
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
    from .engine import (
        Container,
        EngineVersion,
        Environment,
        Event,
        ExecResult,
        FileEntry,
        Image,
        ImagePullError,
        LogLine,
        Logs,
        Network,
        PullEvent,
        StatsSample,
        TLSConfig,
        Volume,
    )
    from .environments import EnvironmentRegistry, EnvironmentSpec, FanOutResult, fan_out
