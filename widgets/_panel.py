"""Panel, loaded once per process with the extensions the widgets need, offline.

``inline=True``: no CDN is reachable from a Bolt host's notebook, and without Panel's
bundled JavaScript nothing renders (STACK_NOTES.md). ``comms="ipywidgets"`` lets Panel
objects live inside ipywidgets layouts through ``pn.ipywidget``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_panel"]

_loaded: set[str] = set()
_base_loaded = False


def load_panel(*extensions: str) -> Any:
    """Return the ``panel`` module with ``extensions`` (e.g. ``"tabulator"``) loaded.

    Each extension is loaded once, whichever widget asks first.
    """
    global _base_loaded
    import panel as pn

    missing = [name for name in extensions if name not in _loaded]
    if missing or not _base_loaded:
        pn.extension(*missing, comms="ipywidgets", inline=True)
        _loaded.update(missing)
        _base_loaded = True
    return pn
