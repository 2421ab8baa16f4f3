"""Shared-process mode: watch-only dashboard viewers served by ONE Panel server.

A Voila viewer costs a kernel (~180 MiB, docs/dashboard-performance.md). A watcher only
needs the live container table and its status, so here every browser session gets a
:class:`~._container_list.ContainerList` built in the server's own process, and its Panel
``Tabulator`` (``ContainerList.table``) is shown *directly* as a Panel object: no kernel,
no ipywidgets in the browser, only the Bokeh models of one table per session.

Serve it with :func:`serve_shared`. ``ghostpanel up --shared`` runs this module as its
child process (``python -m ghostpanel_widgets._shared_server PORT``), which serves the
environment named by ``GHOSTPANEL_ENV`` (or the default one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

__all__ = ["serve_shared", "session_app"]


def session_app(environments: Sequence[Any]) -> Any:
    """The Panel layout one browser session sees: a title, the status line's text and the
    live container table, built fresh for the session and closed with it.

    Parameters
    ----------
    environments : sequence of EnvironmentSpec or Environment
        What the table lists (each session opens its own connections).
    """
    import panel

    from ._container_list import ContainerList

    pn: Any = panel  # Panel's functions are untyped
    containers = ContainerList(list(environments))
    status = pn.pane.HTML(containers.status.value, sizing_mode="stretch_width")

    def status_changed(change: dict[str, Any]) -> None:
        status.object = change["new"]

    # The status line is an ipywidget: mirror its HTML into a Panel pane.
    containers.status.observe(status_changed, "value")
    layout = pn.Column(pn.pane.Markdown("## GhostPanel: containers (watch-only)"),
                       status, containers.table, sizing_mode="stretch_width")

    def closed(_context: Any) -> None:
        containers.close()

    if pn.state.curdoc is not None:
        pn.state.curdoc.on_session_destroyed(closed)
    loop = asyncio.get_event_loop()
    loop.call_soon(containers.start)
    return layout


def serve_shared(environments: Sequence[Any], *, port: int, address: str = "127.0.0.1",
                 show_url: bool = True) -> None:
    """Serve :func:`session_app` at ``http://ADDRESS:PORT/`` until interrupted.

    Panel's and Bokeh's JavaScript come from the server itself (no CDN).
    """
    import panel

    pn: Any = panel  # Panel's functions are untyped
    pn.extension("tabulator")
    if show_url:
        print(f"GhostPanel shared dashboard at http://{address}:{port}/", flush=True)
    pn.serve({"/": lambda: session_app(environments)}, port=port, address=address,
             show=False, threaded=False, websocket_origin=[f"{address}:{port}",
                                                           f"localhost:{port}"],
             check_unused_sessions=2000, unused_session_lifetime=5000)


def _main(port: int) -> None:
    """The child process of ``ghostpanel up --shared``: serve ``GHOSTPANEL_ENV``."""
    import os

    from ghostpanel_kernel.environments import session_registry

    registry = session_registry()
    try:
        spec = registry.resolve(os.environ.get("GHOSTPANEL_ENV"))
    finally:
        registry.close()
    serve_shared([spec], port=port, show_url=False)


if __name__ == "__main__":
    import sys

    _main(int(sys.argv[1]))
