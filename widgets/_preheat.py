"""The dashboard of a preheated Voila kernel: built before anyone asks for a page.

``ghostpanel up`` runs Voila with ``preheat_kernel`` (docs/dashboard-performance.md):
Voila keeps a pool of kernels that have already run ``voila_apps/ops_dashboard.ipynb``
up to the cell that calls ``voila.utils.wait_for_request()``, and hands one to the next
page view, which then only waits for the cells after that one. This module is what the
notebook runs on both sides of that wait:

- :func:`build_dashboard` makes the dashboard (``OpsDashboard.from_query``) *before* the
  wait, for the default view (no query): Panel and pandas are imported, the environment
  is opened and its containers listed, and the list then follows the engine's events
  while the kernel waits in the pool;
- :func:`wait_for_view` waits for the page request without blocking the kernel's event
  loop (``wait_for_request`` runs in a thread), so that the waiting dashboard stays
  current; it first tells ``ghostpanel up`` that a kernel is ready
  (:data:`READY_VARIABLE`);
- :func:`for_query` moves the prebuilt dashboard to the view the URL names
  (``?env=prod&tab=logs&container=web``): nothing to do for the plain address.

Outside a preheated kernel (JupyterLab, ``voila --no-preheat``) :func:`wait_for_view`
returns at once and the notebook works as a plain one.
"""

from __future__ import annotations

import asyncio
import html
import os
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets

__all__ = ["READY_VARIABLE", "build_dashboard", "for_query", "request_info_url",
           "wait_for_request", "wait_for_view"]

#: A file ``ghostpanel up`` names for the kernels: a pooled kernel appends its PID to it
#: once its dashboard has listed (or failed to), so that the command prints its URL when
#: the first view can be served from the pool.
READY_VARIABLE = "GHOSTPANEL_VOILA_READY"
#: The most seconds a pooled kernel waits for its first listing before saying it is
#: ready anyway (an engine that does not answer must not hold the server's start).
_LISTED_TIMEOUT = 15.0


def build_dashboard(query: str | Mapping[str, str] = "", **kwargs: Any) -> ipywidgets.Widget:
    """The dashboard for ``query``; or a red line saying why there is none.

    Parameters
    ----------
    query
        The page's query string (``env=prod&tab=logs&container=web``) or its parameters:
        ``OpsDashboard.from_query``. Without ``env``, the environment of
        ``GHOSTPANEL_ENV`` (``ghostpanel up --env``), else the registry's default.
    **kwargs
        Passed to the dashboard.

    Returns
    -------
    ipywidgets.Widget
        An ``OpsDashboard``, or an ``ipywidgets.HTML`` with the error when no environment
        can be shown at all (none registered): the page says what to do rather than
        showing a traceback.
    """
    from ghostpanel_kernel.engine import GhostPanelError

    from ._dashboard import OpsDashboard

    kwargs.setdefault("environment", os.environ.get("GHOSTPANEL_ENV") or None)
    try:
        dashboard: ipywidgets.Widget = OpsDashboard.from_query(query, **kwargs)
    except GhostPanelError as error:
        dashboard = ipywidgets.HTML(f'<p style="color: #b00020">GhostPanel cannot start: '
                                    f"{html.escape(str(error))}</p>")
    return dashboard


def for_query(prebuilt: ipywidgets.Widget, query: str | Mapping[str, str],
              **kwargs: Any) -> ipywidgets.Widget:
    """The dashboard a page request asks for: ``prebuilt``, moved to the view ``query``
    names (``OpsDashboard.show_query``: another environment, tab or container page).

    Parameters
    ----------
    prebuilt
        What :func:`build_dashboard` made before the request, with no query.
    query
        The request's query string.
    **kwargs
        Passed to :func:`build_dashboard` when ``prebuilt`` is no dashboard (it could not
        start: the request is tried afresh).

    Returns
    -------
    ipywidgets.Widget
        The dashboard to display.
    """
    show_query = getattr(prebuilt, "show_query", None)
    if show_query is None:
        prebuilt.close()
        return build_dashboard(query, **kwargs)
    if query:
        show_query(query)
    return prebuilt


def _preheated() -> bool:
    return os.environ.get("VOILA_PREHEAT") == "True"


async def _listed(dashboard: ipywidgets.Widget, timeout: float) -> None:
    """Return once ``dashboard`` listed its containers (or said it could not), or after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status = getattr(getattr(dashboard, "container_list", None), "status", None)
    while time.monotonic() < deadline:
        if getattr(dashboard, "container_count", 0) != -1:
            return
        if status is not None and status.level == "error":
            return
        await asyncio.sleep(0.05)


def _say_ready() -> None:
    path = os.environ.get(READY_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as ready:
            ready.write(f"{os.getpid()}\n")


def request_info_url(environ: Mapping[str, str] | None = None) -> str:
    """Where a preheated kernel hears about its page request: Voila's
    ``voila/query/<kernel id>`` WebSocket, found as ``voila.utils.wait_for_request`` finds
    it from the variables Voila gives the kernel (``environ``, default ``os.environ``).

    Examples
    --------
    >>> request_info_url({"VOILA_APP_PORT": "8870", "VOILA_SERVER_URL": "/",
    ...                   "VOILA_KERNEL_ID": "k1"})
    'ws://127.0.0.1:8870/voila/query/k1'
    """
    env = os.environ if environ is None else environ
    protocol = env.get("VOILA_WS_PROTOCOL", "ws")
    address = env.get("VOILA_APP_IP", "127.0.0.1")
    port = env.get("VOILA_APP_PORT", "8866")
    base = env.get("VOILA_WS_BASE_URL", env.get("VOILA_SERVER_URL", "/"))
    kernel = env.get("VOILA_KERNEL_ID", "")
    return f"{protocol}://{address}:{port}{base}voila/query/{kernel}"


async def wait_for_request(url: str | None = None) -> None:
    """``voila.utils.wait_for_request()``, awaited on the kernel's own event loop.

    Voila (0.5) sends a preheated kernel its page request's variables
    (``QUERY_STRING``, ``SERVER_NAME``...) as one JSON message on the WebSocket
    :func:`request_info_url` names, once a page takes the kernel; like Voila's helper,
    this puts them in ``os.environ``. Voila's helper blocks the kernel in a thread of its
    own and imports Voila's server (Jupyter Server, JupyterLab Server: some 45 MiB and
    one to four seconds in every kernel of the pool, docs/dashboard-performance.md);
    this speaks the same protocol with ``websockets`` alone, and lets the dashboard
    follow its engine while it waits. A connection that drops is opened again (Voila
    keeps a message sent meanwhile for the kernel).

    Parameters
    ----------
    url
        The WebSocket; default :func:`request_info_url`.
    """
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    while True:
        try:
            async with connect(url or request_info_url(), open_timeout=5) as socket:
                message = await socket.recv()
            break
        except (ConnectionClosed, OSError, TimeoutError):
            await asyncio.sleep(1)  # Voila restarting its socket, or a busy server
    for name, value in json.loads(message).items():
        os.environ[str(name)] = str(value)


async def wait_for_view(dashboard: ipywidgets.Widget, *,
                        listed_timeout: float = _LISTED_TIMEOUT) -> str:
    """Wait for the page request a preheated kernel was started for; its query string.

    In a kernel Voila started ahead of time (``VOILA_PREHEAT=True``): once ``dashboard``
    has listed its containers, tell ``ghostpanel up`` (:data:`READY_VARIABLE`), then
    wait for the request (:func:`wait_for_request`, Voila's protocol) while the kernel's
    event loop, and with it the dashboard, keeps running. Elsewhere: at once.

    Parameters
    ----------
    dashboard
        The dashboard built before the request.
    listed_timeout
        The most seconds to wait for its first listing.

    Returns
    -------
    str
        The request's query string (``QUERY_STRING``), ``""`` when there is none.
    """
    if _preheated():
        await _listed(dashboard, listed_timeout)
        _say_ready()
        await wait_for_request()
    return os.environ.get("QUERY_STRING", "")
