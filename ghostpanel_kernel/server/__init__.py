"""The GhostPanel server: the ASGI app that runs next to an engine as ``ghostpanel agent``.

It serves, over HTTPS and HTTP/3 on one port (or plain HTTP on a unix socket), the
Engine API passthrough at ``/engine/`` and ``/``, and GhostPanel's own API at
``/api/v1``, behind bearer-token or client-certificate authentication. Importing this
package imports nothing heavy: :func:`create_app` and :func:`serve` load Starlette and
Hypercorn when called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import create_app
    from ._serve import serve
    from ._settings import AgentSettings

__all__ = ["AgentSettings", "create_app", "serve"]

_EXPORTS = {
    "AgentSettings": "._settings",
    "create_app": "._app",
    "serve": "._serve",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
