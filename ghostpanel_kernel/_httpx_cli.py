"""httpx's own command line, loaded when it is called rather than with httpx.

``import httpx`` also imports ``httpx._main`` (the ``httpx`` console script) whenever
click, rich and pygments are installed, which in a Jupyter environment they are: about
4.5 MB of resident memory and some 30 ms of start-up that no GhostPanel process uses,
in an agent whose whole budget is 50 MB. :func:`defer` puts a stand-in for that module
in ``sys.modules`` before httpx is imported; its ``main`` loads the real module and
runs it, so ``httpx.main`` still works, only later.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["defer"]

_NAME = "httpx._main"


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's ``main``: the real module is loaded now, in place of the stand-in."""
    if getattr(sys.modules.get(_NAME), "_ghostpanel_deferred", False):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME).main(*args, **kwargs)


def defer() -> None:
    """Have httpx's import skip its command line (nothing happens once httpx is in)."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = types.ModuleType(_NAME, "httpx's command line, loaded on first use")
    stand_in.main = _main  # type: ignore[attr-defined]
    stand_in._ghostpanel_deferred = True  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
