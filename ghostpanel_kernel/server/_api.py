"""GhostPanel's own API under ``/api/v1``: the routes of this module and the fallbacks.

Routes receive the engine as ``request.app.state.engine`` (an
:class:`~ghostpanel_kernel.engine.Environment` the app opens at startup). A route that
is not here answers a ``404`` problem, never the engine passthrough: ``/api/v1`` is
GhostPanel's namespace. An engine that cannot be reached is a ``502`` problem naming it.
"""

from __future__ import annotations

import platform
import socket
import time
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from .._exceptions import EngineConnectionError, EngineTimeout, GhostPanelError
from . import _routes_containers, _routes_events, _routes_exec, _routes_network, _routes_surge
from ._problems import problem_response

__all__ = ["API_PREFIX", "ROUTE_MODULES", "api_app"]

API_PREFIX = "/api/v1"

#: The modules whose ``ROUTES`` make up ``/api/v1`` and whose ``PATHS`` document them.
ROUTE_MODULES = (_routes_containers, _routes_surge, _routes_network, _routes_events,
                 _routes_exec)


def _engine_problem(error: GhostPanelError) -> Response:
    """The problem answer for an engine that failed a route's call."""
    if isinstance(error, EngineConnectionError):
        status = 504 if isinstance(error, EngineTimeout) else 502
        return problem_response(status, f"the engine did not answer: {error}",
                                engine=error.endpoint)
    return problem_response(502, f"the engine refused: {error}")


async def health(request: Request) -> Response:
    """``GET /api/v1/health``: the agent answers and its engine answers ``/_ping``."""
    engine = request.app.state.engine
    try:
        await engine.ping()
    except GhostPanelError as error:
        return _engine_problem(error)
    return JSONResponse({"status": "ok", "engine": engine.url})


async def info(request: Request) -> Response:
    """``GET /api/v1/info``: the host, the agent and the engine's version."""
    state = request.app.state
    try:
        version = await state.engine.version()
    except GhostPanelError as error:
        return _engine_problem(error)
    body: dict[str, Any] = {
        "host": {"hostname": socket.gethostname(), "os": platform.system(),
                 "kernel": platform.release(), "architecture": platform.machine()},
        "agent": {"version": __version__,
                  "uptime_seconds": round(time.monotonic() - state.started, 3),
                  "url": state.settings.url},
        "engine": {"url": state.engine.url, "kind": version.kind,
                   "version": version.version, "api_version": version.api_version},
    }
    return JSONResponse(body)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own errors (no route, a method not allowed) as problems."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        detail = f"no route {request.method} {request.url.path}"
    elif error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(error.detail)
    return problem_response(error.status_code, detail, headers=error.headers)


async def _server_error(request: Request, error: Exception) -> Response:
    """A bug in a route: a 500 problem (the traceback goes to the log, not the client)."""
    return problem_response(500, f"the agent failed on {request.method} {request.url.path}: "
                                 f"{type(error).__name__}")


def api_app(extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ``/api/v1`` application: health, info and ``extra_routes`` (full paths).

    The caller sets ``state.engine``, ``state.settings`` and ``state.started`` on it
    before serving (the agent app does it at startup).
    """
    routes = [Route(f"{API_PREFIX}/health", health, methods=["GET"]),
              Route(f"{API_PREFIX}/info", info, methods=["GET"]),
              *(route for module in ROUTE_MODULES for route in module.ROUTES),
              *extra_routes]
    return Starlette(routes=routes,
                     exception_handlers={HTTPException: _http_error, 500: _server_error})
