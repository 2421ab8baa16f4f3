"""The browser's side of a ``pn.ipywidget`` view (a jupyter_bokeh ``BokehModel``), for
tests without a browser.

:class:`FakeBrowser` records every message the kernel sends over the view's comm, says
when a view opens the way the browser's widget manager does (it sets ``_view_count``
through a state update), and rebuilds the Bokeh document the browser would render from
the last whole state (``render_bundle``) it was sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bokeh.document import Document

__all__ = ["FakeBrowser"]


class FakeBrowser:
    """Messages sent over ``view``'s comm, from now on, and the view's page.

    Examples
    --------
    >>> browser = FakeBrowser(view, monkeypatch)                         # doctest: +SKIP
    >>> table.value = frame; browser.patches                            # doctest: +SKIP
    []
    >>> browser.show(); browser.document()                              # doctest: +SKIP
    """

    def __init__(self, view: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.view = view
        self.messages: list[dict[str, Any]] = []
        monkeypatch.setattr(view.comm, "send", self._record)

    def _record(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append(data)

    @property
    def patches(self) -> list[dict[str, Any]]:
        """The Bokeh document changes sent (each change is several such messages)."""
        return [message["content"] for message in self.messages
                if message.get("method") == "custom"
                and message["content"].get("msg") == "patch"]

    @property
    def bundles(self) -> list[dict[str, Any]]:
        """The whole states sent (``render_bundle``), oldest first."""
        return [json.loads(message["state"]["render_bundle"]) for message in self.messages
                if message.get("method") == "update"
                and "render_bundle" in message.get("state", {})]

    def show(self) -> None:
        """Open a view of the widget, as the browser's widget manager reports it."""
        count = self.view._view_count or 0
        self.view.set_state({"_view_count": count + 1})

    def document(self) -> Document:
        """The document the browser renders from the last whole state it was sent."""
        assert self.bundles, "no whole state was sent"
        (document_json,) = self.bundles[-1]["docs_json"].values()
        return Document.from_json(document_json)
