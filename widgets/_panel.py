"""Panel, loaded once per process with the extensions the widgets need, offline, and the
one way a Panel object becomes an ipywidget here.

``inline=True``: no CDN is reachable from a Bolt host's notebook, and without Panel's
bundled JavaScript nothing renders (docs/). ``comms="ipywidgets"`` lets Panel objects
live inside ipywidgets layouts through ``pn.ipywidget``.

The browser side. A ``pn.ipywidget`` view is a jupyter_bokeh ``BokehView``, whose
constructor calls ``window.Bokeh.require(...)``: BokehJS, with Panel's models and the
libraries of Panel's extensions (Tabulator, Ace), must be in the page *before* the
first view is made, or the view fails ("Failed to create view for 'BokehView' ...
reading 'require'"). Panel's own loader (what ``pn.extension`` displays) starts its
work from a ``setTimeout`` and so runs after the widget of the same cell is already
being drawn; it works in Voila only because Voila draws the widgets late. So
:func:`load_panel` displays a loader of its own instead (:mod:`._panel_loader`), which
runs every script at once, in order, as the output is shown: in JupyterLab (through
jupyter_bokeh's ``application/vnd.bokehjs_load.v0+json`` renderer), in Voila and in
the classic notebook (``application/javascript``). It is shown once per kernel, in
the first cell that makes a GhostPanel widget, whichever that is, with every
extension any widget uses; nothing comes from a CDN or needs a set-up cell. A page
reloaded while the kernel runs gets it again from that cell's saved output (the
kernel does not send it twice); a page opened on a notebook saved without that
output needs the kernel restarted. The loader also carries a fix of Panel's Tabulator
view, which drops the rows that reach it while its table is being built
(:data:`~._panel_loader.TABULATOR_DATA_FIX`; the cause of "1 containers" beside an
empty grid).

:func:`load_panel` hands the widgets Panel with its ``ipywidget`` replaced by
:func:`panel_ipywidget`, which also holds a view's changes until a browser shows it
(see :func:`hold_changes_until_shown`). Every table and chart of GhostPanel is made
through it, so none of them can miss these fixes, however its widget was written.

:func:`hold_changes_until_shown` and :func:`render_again_for_new_views` rely on
jupyter_bokeh's ``BokehModel`` internals (``_document_patched``, ``update_from_model``,
``_model``, Panel's ``_view_count``): pyproject.toml pins the versions they were
checked with, and tests/unit/test_widget_panel_views.py fails if they change.
"""

from __future__ import annotations

from typing import Any

from ._panel_loader import BrowserLoader

__all__ = ["EXTENSIONS", "hold_changes_until_shown", "load_panel", "panel_ipywidget",
           "render_again_for_new_views"]

#: Every Panel extension a GhostPanel widget uses. All are loaded (and their scripts
#: sent to the browser) by the first widget, so that a widget needing one never comes
#: after the loader was shown without it.
EXTENSIONS = ("tabulator", "codeeditor", "terminal")

_loaded: set[str] = set()
_base_loaded = False
_browser = BrowserLoader()


class _Panel:
    """The ``panel`` module as the widgets see it: Panel's own names, but
    :func:`panel_ipywidget` for ``ipywidget``."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    @staticmethod
    def ipywidget(obj: Any, doc: Any = None, **kwargs: Any) -> Any:
        return panel_ipywidget(obj, doc=doc, **kwargs)


def load_panel(*extensions: str) -> Any:
    """Return Panel with GhostPanel's extensions and ``extensions`` loaded, and the
    browser's side of them on its way (:class:`~._panel_loader.BrowserLoader`).

    Each extension is loaded once, whichever widget asks first. What comes back is the
    ``panel`` module but for ``ipywidget``, which is :func:`panel_ipywidget`.

    Examples
    --------
    >>> pn = load_panel("tabulator")                                     # doctest: +SKIP
    >>> view = pn.ipywidget(pn.widgets.Tabulator(frame))                 # doctest: +SKIP
    """
    global _base_loaded
    import panel as pn

    missing = [name for name in dict.fromkeys((*EXTENSIONS, *extensions))
               if name not in _loaded]
    if missing or not _base_loaded:
        _browser.extension(pn, missing)
        _loaded.update(missing)
        _base_loaded = True
    _browser.show()
    return _Panel(pn)


def panel_ipywidget(obj: Any, doc: Any = None, **kwargs: Any) -> Any:
    """``pn.ipywidget(obj)``: ``obj`` (a Panel object, or what ``pn.panel`` takes) as an
    ipywidget, whose changes wait until a browser shows it
    (:func:`hold_changes_until_shown`)."""
    pn = load_panel()._module
    view = pn.ipywidget(obj, doc=doc, **kwargs)
    hold_changes_until_shown(view)
    render_again_for_new_views(view)
    return view


def render_again_for_new_views(view: Any) -> None:
    """Send a ``pn.ipywidget`` view's whole state again when a further view opens.

    jupyter_bokeh renders each new view from the state its model had when it was
    wrapped, so a second view (the same widget shown in two cells, or a page reloaded
    while the first is still counted) would start from stale data. The first view is
    :func:`hold_changes_until_shown`'s business, and Panel's (it makes a new model).
    """
    if not hasattr(view, "update_from_model"):
        return

    def views_changed(change: dict[str, Any]) -> None:
        old, new = change["old"] or 0, change["new"] or 0
        if 0 < old < new:
            view.update_from_model(view._model)

    view.observe(views_changed, "_view_count")


def hold_changes_until_shown(view: Any) -> None:
    """Send a ``pn.ipywidget`` view no change until a browser shows it, then its whole
    state; and let it be closed more than once.

    jupyter_bokeh sends each change of the Bokeh document as three or more comm messages
    (header, metadata, content, buffers) that the browser's view reassembles in order.
    A view created while such a group is arriving (the page is still building its
    widgets while a table sends its first listing or a chart a sample; or the table sits
    in a tab the user has not opened yet) takes the group's tail for the head of the
    next one, and from then on reads every change wrongly: the table never changes
    again. Changes made before any view exists are dropped instead, and when the kernel
    hears that a view exists (``_view_count`` goes above 0, which the browser reports)
    the model's current state is sent whole, as ``render_bundle``.

    ``BokehModel.close()`` raises KeyError the second time (it takes the view off its
    document's callbacks again), and ipywidgets calls ``close()`` once more when the
    widget is garbage collected: the view's ``close`` runs once only.

    A view that a browser already shows, or that does not count its views
    (``_view_count`` None), is left to send its changes as they come.
    """
    if not hasattr(view, "update_from_model") or getattr(view, "_close_once", False):
        return
    close = view.close
    closed = False

    def close_once() -> None:
        nonlocal closed
        if not closed:
            closed = True
            close()

    view.close = close_once
    view._close_once = True
    if getattr(view, "_view_count", None) != 0:
        return

    send_patch = view._document_patched
    held = True

    def document_patched(event: Any) -> None:
        # Replaced on the instance rather than taking the view off the document's
        # callbacks: update_from_model() puts it back on them (Panel calls it when it
        # makes a new model; the Boltfile editor when it adds its Ace modules).
        if not held:
            send_patch(event)

    def views_changed(change: dict[str, Any]) -> None:
        nonlocal held
        if held and (change["new"] or 0) > 0:
            held = False
            view.update_from_model(view._model)  # the whole state, as it is now

    view._document_patched = document_patched
    view.observe(views_changed, "_view_count")
