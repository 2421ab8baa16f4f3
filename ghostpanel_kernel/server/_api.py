"""GhostPanel's own API under ``/api/v1``: health, info, the document, and the fallbacks.

Routes receive the engine as ``request.app.state.engine`` (an
:class:`~ghostpanel_kernel.engine.Environment` the app opens at startup). A route that
is not here answers a ``404`` problem, never the engine passthrough: ``/api/v1`` is
GhostPanel's namespace. An engine that cannot be reached is a ``502`` problem naming it
(:func:`._engine_errors.engine_problem`, which route modules use too: importing it from
here would be an import cycle, this module importing theirs).

``GET /api/v1/openapi.json`` is the OpenAPI 3.1 document of every route mounted here
(this module's :data:`PATHS` and each route module's), built once per app;
``GET /api/v1/docs`` renders it as one HTML page made here, with no script and nothing
fetched from elsewhere. Both are behind the same authentication as every route.

A plain HTTP request to a WebSocket route (``/api/v1/events``...) is a ``426`` saying
so, rather than the ``404`` Starlette would give; the document lists that answer.
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
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute

from .. import __version__
from .._exceptions import GhostPanelError
from . import (
    _routes_alerts,
    _routes_containers,
    _routes_events,
    _routes_exec,
    _routes_gpus,
    _routes_metrics_history,
    _routes_network,
    _routes_snapshots,
    _routes_surge,
)
from ._docs_page import render_docs
from ._engine_errors import engine_problem
from ._openapi import json_content, openapi_document, problem_responses
from ._problems import problem_response

__all__ = ["API_PREFIX", "PATHS", "ROUTE_MODULES", "api_app", "api_document"]

API_PREFIX = "/api/v1"

#: The modules whose ``ROUTES`` make up ``/api/v1`` and whose ``PATHS`` document them.
ROUTE_MODULES = (_routes_containers, _routes_surge, _routes_network, _routes_events,
                 _routes_exec, _routes_snapshots, _routes_gpus, _routes_alerts,
                 _routes_metrics_history)


def _engine_problem(error: GhostPanelError) -> Response:
    """The problem answer for an engine that failed a route's call (see
    :func:`._engine_errors.engine_problem`)."""
    return engine_problem(error)


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


async def openapi_json(request: Request) -> Response:
    """``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of this API."""
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    """``GET /api/v1/docs``: the document as an HTML page (no script, no CDN)."""
    return HTMLResponse(request.app.state.docs_html)


_UPGRADE_REQUIRED: dict[str, Any] = {
    **problem_responses((426, "A WebSocket endpoint, asked without the upgrade."))["426"],
    "headers": {"Upgrade": {"schema": {"const": "websocket"}}}}

_ENGINE_DOWN = ((502, "The engine could not be reached or failed."),
                (504, "The engine did not answer in time."))

#: The OpenAPI path items of this module's routes.
PATHS: dict[str, dict[str, Any]] = {
    f"{API_PREFIX}/health": {"get": {
        "operationId": "health", "tags": ["agent"],
        "summary": "The agent answers and its engine answers `/_ping`.",
        "responses": {
            "200": {"description": "Both answer.", "content": json_content({
                "type": "object", "required": ["status", "engine"],
                "properties": {"status": {"const": "ok"}, "engine": {"type": "string"}}})},
            **problem_responses(*_ENGINE_DOWN)}}},
    f"{API_PREFIX}/info": {"get": {
        "operationId": "info", "tags": ["agent"],
        "summary": "The host, the agent and the engine's version.",
        "responses": {
            "200": {"description": "What this agent serves.", "content": json_content({
                "type": "object", "required": ["host", "agent", "engine"],
                "properties": {
                    "host": {"type": "object", "properties": {
                        "hostname": {"type": "string"}, "os": {"type": "string"},
                        "kernel": {"type": "string"}, "architecture": {"type": "string"}}},
                    "agent": {"type": "object", "properties": {
                        "version": {"type": "string"},
                        "uptime_seconds": {"type": "number", "minimum": 0},
                        "url": {"type": "string"}}},
                    "engine": {"type": "object", "properties": {
                        "url": {"type": "string"}, "kind": {"type": "string"},
                        "version": {"type": "string"},
                        "api_version": {"type": "string"}}}}})},
            **problem_responses(*_ENGINE_DOWN)}}},
    f"{API_PREFIX}/openapi.json": {"get": {
        "operationId": "openapi", "tags": ["agent"],
        "summary": "This document (OpenAPI 3.1).",
        "responses": {"200": {"description": "The document.",
                              "content": json_content({"type": "object"})}}}},
    f"{API_PREFIX}/docs": {"get": {
        "operationId": "docs", "tags": ["agent"],
        "summary": "This document as an HTML page.",
        "responses": {"200": {"description": "The page.", "content": {
            "text/html": {"schema": {"type": "string"}}}}}}},
}


def api_document(extra_paths: Sequence[dict[str, dict[str, Any]]] = ()) -> dict[str, Any]:
    """The OpenAPI document of :func:`api_app`: this module's paths, the route modules'.

    The ``GET`` of each WebSocket route (its handshake) is given the ``426`` that a
    request without the upgrade gets (see ``_http_error``).
    """
    document = openapi_document([PATHS, *(module.PATHS for module in ROUTE_MODULES),
                                 *extra_paths])
    for module in ROUTE_MODULES:
        for route in module.ROUTES:
            if isinstance(route, WebSocketRoute):
                operation = document["paths"].get(route.path, {}).get("get")
                if isinstance(operation, dict):
                    operation["responses"].setdefault("426", _UPGRADE_REQUIRED)
    return document


def _websocket_path(request: Request) -> bool:
    """Whether a WebSocket route of the app matches the request's path."""
    scope = {**request.scope, "type": "websocket"}
    return any(isinstance(route, WebSocketRoute) and route.matches(scope)[0] is Match.FULL
               for route in request.app.routes)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own errors (no route, a method not allowed) as problems."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404 and _websocket_path(request):
        # A plain request to a WebSocket route (Starlette finds no HTTP route there):
        # say what the route wants rather than that it does not exist.
        return problem_response(426, f"{request.url.path} is a WebSocket endpoint: "
                                     "connect with an HTTP upgrade (Upgrade: websocket)",
                                headers={"Upgrade": "websocket", "Connection": "Upgrade"})
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


def api_app(extra_routes: Sequence[BaseRoute] = (),
            extra_paths: Sequence[dict[str, dict[str, Any]]] = ()) -> Starlette:
    """The ``/api/v1`` application: health, info, the route modules and ``extra_routes``.

    Parameters
    ----------
    extra_routes
        More routes (full paths), e.g. a test's.
    extra_paths
        Their OpenAPI path items, for the document.

    The caller sets ``state.engine``, ``state.settings`` and ``state.started`` on it
    before serving (the agent app does it at startup).
    """
    routes = [Route(f"{API_PREFIX}/health", health, methods=["GET"]),
              Route(f"{API_PREFIX}/info", info, methods=["GET"]),
              Route(f"{API_PREFIX}/openapi.json", openapi_json, methods=["GET"]),
              Route(f"{API_PREFIX}/docs", docs, methods=["GET"]),
              *(route for module in ROUTE_MODULES for route in module.ROUTES),
              *extra_routes]
    app = Starlette(routes=routes,
                    exception_handlers={HTTPException: _http_error, 500: _server_error})
    # Built once: the routes do not change while the app serves.
    app.state.openapi = api_document(extra_paths)
    app.state.docs_html = render_docs(app.state.openapi)
    return app
