"""Routes of ``/api/v1`` for containers on the agent's engine.

::

    GET    /api/v1/containers                   all containers (?status ?label ?name)
    POST   /api/v1/containers                   create (see _container_create), 201
    GET    /api/v1/containers/{id}              one, by id, id prefix or name
    POST   /api/v1/containers/{id}/start        start  (the container afterwards)
    POST   /api/v1/containers/{id}/stop         stop   (?timeout seconds before SIGKILL)
    POST   /api/v1/containers/{id}/restart      restart (?timeout)
    DELETE /api/v1/containers/{id}              remove (?force ?volumes), 204

``POST /api/v1/containers/{id}/snapshot`` is in :mod:`._routes_snapshots` and
``GET /api/v1/containers/{id}/nvbind`` in :mod:`._routes_gpus`.

Containers are answered in :mod:`._container_json`'s shape. Contract for every
``_routes_*`` module: ``ROUTES`` (Starlette routes with full paths, ``/api/v1/...``) and
``PATHS`` (their OpenAPI 3.1 path items, keyed by the templated path), which
``_api.api_app`` mounts and ``_openapi`` documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._exceptions import GhostPanelError
from ..engine import Container, Environment
from ._container_create import CreateProblem, CreateRequest, read_create_request
from ._container_json import container_json
from ._engine_body import ENGINE_BODY_SCHEMA
from ._engine_errors import engine_problem
from ._openapi import CONTAINER_ID_PARAM, json_content, problem_responses, schema_ref
from ._problems import problem_response
from ._request_body import BodyProblem

__all__ = ["PATHS", "ROUTES"]

_PREFIX: Final = "/api/v1/containers"

#: The engines' container states, the values the ``status`` filter takes.
STATES: Final = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
#: States in which a container is removed only with ``force``.
_BUSY: Final = frozenset({"running", "paused", "restarting"})
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
#: The longest stop grace period accepted (a day): more is a mistake, not a wish.
_MAX_TIMEOUT: Final = 86400


class _QueryProblem(Exception):
    """A query parameter the route cannot take: a ``422`` naming it."""


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in _BOOLEANS:
        raise _QueryProblem(f"?{name} must be true or false, not {value!r}")
    return _BOOLEANS[value]


def _timeout(request: Request) -> int | None:
    value = request.query_params.get("timeout")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > _MAX_TIMEOUT:
        raise _QueryProblem(f"?timeout must be whole seconds from 0 to {_MAX_TIMEOUT}, "
                            f"not {value!r}")
    return int(value)


def _engine(request: Request) -> Environment:
    engine: Environment = request.app.state.engine
    return engine


def _missing(ident: str) -> str:
    return f"no container {ident!r} on this agent's engine"


async def _container(request: Request) -> Container:
    ident: str = request.path_params["id"]
    try:
        return await _engine(request).containers.get(ident)
    except ValueError:  # "." or "..": not a name the engine could know
        raise _NoContainer(ident) from None


class _NoContainer(Exception):
    """An id that cannot name a container."""


def _guarded(handler: Callable[[Request], Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
    """Turn the ways a container route fails into its problem answers."""
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except _QueryProblem as error:
            return problem_response(422, str(error))
        except _NoContainer as error:
            return problem_response(404, _missing(str(error)))
        except CreateProblem as error:
            if error.diagnostics:
                return problem_response(error.status, error.detail,
                                        diagnostics=error.diagnostics)
            return problem_response(error.status, error.detail)
        except BodyProblem as error:
            return problem_response(error.status, error.detail)
        except GhostPanelError as error:
            ident = request.path_params.get("id")
            return engine_problem(error, not_found=_missing(ident) if ident else None)
        except (TypeError, ValueError) as error:
            # The kernel's own argument checks (a port out of range, a bad size...).
            return problem_response(422, str(error))

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


# -- handlers ---------------------------------------------------------------------------


async def list_containers(request: Request) -> Response:
    """``GET /api/v1/containers``: every container, running or not, with filters."""
    query = request.query_params
    filters: dict[str, list[str]] = {}
    statuses = query.getlist("status")
    wrong = [s for s in statuses if s not in STATES]
    if wrong:
        return problem_response(422, f"?status {wrong[0]!r} is not a container state; use "
                                     f"one of {', '.join(STATES)}")
    labels = query.getlist("label")
    if any(not label or label.startswith("=") for label in labels):
        return problem_response(422, "?label must read KEY or KEY=VALUE")
    if labels:
        filters["label"] = labels
    names = [name for name in query.getlist("name") if name]
    try:
        found = await _engine(request).containers.list(all=True, filters=filters)
    except GhostPanelError as error:
        return engine_problem(error)
    # State and name are filtered here, not by the engine: Podman 4.3 fails with a 500
    # on states it has no word for (``restarting``), and the engines read a name
    # filter as a regular expression (a 500 on a bad one) where the documented meaning
    # is plain text.
    if statuses:
        found = [c for c in found if c.state in statuses]
    if names:
        found = [c for c in found if any(name in c.name for name in names)]
    return JSONResponse([container_json(c) for c in found])


async def _create(engine: Environment, wanted: CreateRequest) -> Container:
    if wanted.engine_body is not None:
        created = await engine.client.post_json("/containers/create",
                                                params={"name": wanted.name},
                                                body=wanted.engine_body)
        return await engine.containers.get(created["Id"])
    assert wanted.create is not None
    container = await engine.containers.create(name=wanted.name, **wanted.create)
    try:
        for network, aliases in wanted.networks:
            await (await engine.networks.get(network)).connect(container.id,
                                                               aliases=list(aliases))
    except Exception:
        # All or nothing: a container missing one of its networks is not the one asked
        # for, and a retry of the same create would fail on its name.
        with contextlib.suppress(GhostPanelError):
            await container.remove(force=True, volumes=True)
        raise
    return container


@_guarded
async def create_container(request: Request) -> Response:
    """``POST /api/v1/containers``: create (not start) a container."""
    wanted = await read_create_request(request)
    try:
        container = await _create(_engine(request), wanted)
    except GhostPanelError as error:
        if getattr(error, "status_code", None) == 404:
            # Nothing here is looked up by id: a 404 is the image or a network missing.
            return problem_response(422, f"the engine cannot create it: {error}")
        raise
    body = {**container_json(container), "warnings": wanted.warnings}
    return JSONResponse(body, status_code=201,
                        headers={"Location": f"{_PREFIX}/{container.id}"})


@_guarded
async def get_container(request: Request) -> Response:
    """``GET /api/v1/containers/{id}``."""
    return JSONResponse(container_json(await _container(request)))


async def _reloaded(container: Container) -> Response:
    """The container as it is now, after a lifecycle call changed its state.

    The lifecycle routes answer with the engine's view after the call (its new
    ``state`` and ``status``), not the one read before it.
    """
    await container.reload()
    return JSONResponse(container_json(container))


@_guarded
async def start_container(request: Request) -> Response:
    """``POST /api/v1/containers/{id}/start``: start it (running already is fine)."""
    container = await _container(request)
    await container.start()
    return await _reloaded(container)


@_guarded
async def stop_container(request: Request) -> Response:
    """``POST /api/v1/containers/{id}/stop``: SIGTERM, then SIGKILL after ``?timeout``."""
    timeout = _timeout(request)
    container = await _container(request)
    await container.stop(timeout=timeout)
    return await _reloaded(container)


@_guarded
async def restart_container(request: Request) -> Response:
    """``POST /api/v1/containers/{id}/restart``: stop as ``stop`` does, then start."""
    timeout = _timeout(request)
    container = await _container(request)
    await container.restart(timeout=timeout)
    return await _reloaded(container)


@_guarded
async def remove_container(request: Request) -> Response:
    """``DELETE /api/v1/containers/{id}``: remove it (``?force`` running, ``?volumes``)."""
    force, volumes = _flag(request, "force"), _flag(request, "volumes")
    container = await _container(request)
    if not force and container.state in _BUSY:
        # Docker answers this with a 409; Podman 4.3 with a 500 ("container state
        # improper"): said here, the same on both.
        return problem_response(409, f"container {container.name!r} is {container.state}; "
                                     "stop it first, or remove it with ?force=true")
    await container.remove(force=force, volumes=volumes)
    return Response(status_code=204)


ROUTES: list[BaseRoute] = [
    Route(_PREFIX, list_containers, methods=["GET"]),
    Route(_PREFIX, create_container, methods=["POST"]),
    Route(_PREFIX + "/{id}", get_container, methods=["GET"]),
    Route(_PREFIX + "/{id}", remove_container, methods=["DELETE"]),
    Route(_PREFIX + "/{id}/start", start_container, methods=["POST"]),
    Route(_PREFIX + "/{id}/stop", stop_container, methods=["POST"]),
    Route(_PREFIX + "/{id}/restart", restart_container, methods=["POST"]),
]

# -- the OpenAPI path items -------------------------------------------------------------

_TAGS: Final = ["containers"]
_ID: Final = CONTAINER_ID_PARAM
_TIMEOUT: Final = {"name": "timeout", "in": "query", "required": False,
                   "description": "Seconds between SIGTERM and SIGKILL (default: the "
                                  "container's own stop timeout, else 10).",
                   "schema": {"type": "integer", "minimum": 0, "maximum": _MAX_TIMEOUT}}
_ENGINE_DOWN: Final = ((502, "The engine could not be reached or failed."),
                       (504, "The engine did not answer in time."))
_NOT_FOUND: Final = (404, "No such container.")


def _container_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": json_content(schema_ref("Container"))}


def _action(verb: str, summary: str, *, timeout: bool) -> dict[str, Any]:
    return {"post": {
        "operationId": f"{verb}Container", "tags": _TAGS, "summary": summary,
        "parameters": [_ID, *([_TIMEOUT] if timeout else [])],
        "responses": {"200": _container_answer("The container afterwards."),
                      **problem_responses(_NOT_FOUND, (409, "The engine refused the change "
                                                            "in the container's state."),
                                          (422, "A query parameter is invalid."),
                                          *_ENGINE_DOWN)}}}


_SERVICE_TABLE: Final = {
    "type": "object",
    "description": "The keys of one Boltfile `[services.X]` table, as JSON.",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "minLength": 1},
        "command": {"type": "array", "items": {"type": "string"}},
        "entrypoint": {"type": "array", "items": {"type": "string"}},
        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "string"},
                  "description": "`HOST:CONTAINER` or `PORT`."},
        "volumes": {"type": "array", "items": {"type": "string"},
                    "description": "`/host/path:/target[:ro]` or `volume:/target`."},
        "networks": {"type": "array", "items": {"type": "string"},
                     "description": "Engine networks; the first is joined at creation."},
        "restart": {"type": "string"},
        "cpu_limit": {"type": "string"},
        "memory_limit": {"type": "string"},
    },
}

_CREATE_BODY: Final = {
    "application/json": {"schema": {"oneOf": [
        {"type": "object", "title": "Service", "required": ["service"],
         "additionalProperties": False,
         "properties": {"name": {"type": "string",
                                 "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"},
                        "service": _SERVICE_TABLE}},
        {**ENGINE_BODY_SCHEMA, "not": {"required": ["service"]}},
    ]}},
    "application/toml": {"schema": {
        "type": "string", "description": "A Boltfile; the container is its only service "
                                         "or `?service=`."}},
}

PATHS: dict[str, dict[str, Any]] = {
    _PREFIX: {
        "get": {
            "operationId": "listContainers", "tags": _TAGS,
            "summary": "Every container on the engine, running or not.",
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "description": "Only containers in this state (repeatable).",
                 "schema": {"type": "string", "enum": list(STATES)}},
                {"name": "label", "in": "query", "required": False,
                 "description": "`KEY` or `KEY=VALUE` (repeatable: all must match).",
                 "schema": {"type": "string", "pattern": "^[^=]"}},
                {"name": "name", "in": "query", "required": False,
                 "description": "Only names that contain this text (repeatable: any "
                                "may match).",
                 "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The containers.",
                        "content": json_content({"type": "array",
                                                 "items": schema_ref("Container")})},
                **problem_responses((422, "A filter is invalid."), *_ENGINE_DOWN)},
        },
        "post": {
            "operationId": "createContainer", "tags": _TAGS,
            "summary": "Create (not start) a container from a Boltfile service or an "
                       "Engine API body.",
            "parameters": [
                {"name": "name", "in": "query", "required": False,
                 "description": "The container's name (TOML and Engine API bodies).",
                 "schema": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"}},
                {"name": "service", "in": "query", "required": False,
                 "description": "The Boltfile's service to create (TOML bodies with "
                                "several).",
                 "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True, "content": _CREATE_BODY},
            "responses": {
                "201": {"description": "Created; `warnings` are the validator's.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": json_content({"allOf": [
                            schema_ref("Container"),
                            {"type": "object", "required": ["warnings"],
                             "properties": {"warnings": {
                                 "type": "array", "items": schema_ref("Diagnostic")}}}]})},
                **problem_responses(
                    (400, "The body is not JSON, or not TOML (with line and column)."),
                    (409, "The name is in use."), (413, "The body is too large."),
                    (415, "Neither JSON nor TOML."),
                    (422, "The service or body is invalid; `diagnostics` says where."),
                    *_ENGINE_DOWN)},
        },
    },
    _PREFIX + "/{id}": {
        "get": {
            "operationId": "getContainer", "tags": _TAGS, "summary": "One container.",
            "parameters": [_ID],
            "responses": {"200": _container_answer("The container."),
                          **problem_responses(_NOT_FOUND, *_ENGINE_DOWN)},
        },
        "delete": {
            "operationId": "removeContainer", "tags": _TAGS,
            "summary": "Remove a container.",
            "parameters": [
                _ID,
                {"name": "force", "in": "query", "required": False,
                 "description": "Stop it first if it runs.",
                 "schema": {"type": "boolean", "default": False}},
                {"name": "volumes", "in": "query", "required": False,
                 "description": "Remove its anonymous volumes too.",
                 "schema": {"type": "boolean", "default": False}},
            ],
            "responses": {"204": {"description": "Removed."},
                          **problem_responses(_NOT_FOUND,
                                              (409, "It runs and `force` was not given."),
                                              (422, "A query parameter is invalid."),
                                              *_ENGINE_DOWN)},
        },
    },
    _PREFIX + "/{id}/start": _action("start", "Start a container.", timeout=False),
    _PREFIX + "/{id}/stop": _action("stop", "Stop a container.", timeout=True),
    _PREFIX + "/{id}/restart": _action("restart", "Restart a container.", timeout=True),
}
