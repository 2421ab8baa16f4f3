"""Routes of ``/api/v1`` for snapshots of the agent host's volumes, containers and paths.

::

    POST   /api/v1/containers/{id}/snapshot     snapshot a container's data, 201
    GET    /api/v1/snapshots?source=TARGET      the target's snapshots, newest first
    POST   /api/v1/snapshots                    snapshot a target (body: source...), 201
    POST   /api/v1/snapshots/{name}/restore     put snapshot ``name`` back (body: source)
    DELETE /api/v1/snapshots/{name}?source=...  delete snapshot ``name`` of the target
    POST   /api/v1/snapshots/prune              apply a retention policy (or ``dry_run``)

A TARGET is what ``ghostpanel snapshot`` takes: ``volume:NAME``, ``container:NAME`` or
an absolute path on the agent's host that is a BTRFS subvolume or ZFS dataset. Every
operation is the kernel's :class:`~ghostpanel_kernel.snapshots.SnapshotManager` on the
agent's engine; this module only reads requests and shapes answers. Snapshots go to the
request's ``snapshot_dir``, else the agent's (``AgentSettings.snapshot_dir``), else the
kernel's default folder. See docs/api.md and docs/snapshots.md.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._exceptions import GhostPanelError
from ..engine import Environment
from ..snapshots import (
    RestoreError,
    SnapshotCommandError,
    SnapshotError,
    SnapshotExists,
    SnapshotManager,
    SnapshotNotFound,
    UnsupportedFilesystem,
    check_name,
    run_command,
)
from ._engine_errors import engine_problem
from ._openapi import CONTAINER_ID_PARAM, json_content, problem_responses
from ._problems import problem_response
from ._request_body import BodyProblem, text_body

__all__ = ["PATHS", "ROUTES"]

_PREFIX: Final = "/api/v1/snapshots"
_CONTAINER: Final = "/api/v1/containers/{id}/snapshot"
#: The longest stop grace period a restore accepts (a day), as the container routes.
_MAX_TIMEOUT: Final = 86400


class _Invalid(Exception):
    """A request the route cannot take: a ``422`` naming what is wrong."""


def _shown(value: Any) -> str:
    """A member's value for an error message, cut short: a body may hold a megabyte."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _NoContainer(Exception):
    """The ``{id}`` of the container route names no container."""


# -- reading requests -------------------------------------------------------------------

#: The members a request body may have, and their JSON types.
_STRING: Final = (str,)
_FLAG: Final = (bool,)
_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "source": _STRING, "name": _STRING, "description": _STRING, "snapshot_dir": _STRING,
    "keep_forever": _FLAG, "pause": _FLAG, "dry_run": _FLAG, "policy": (dict,),
    "stop_timeout": (int,),
}


async def _body(request: Request, allowed: tuple[str, ...], *,
                required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object body with only ``allowed`` members, each of its type.

    An empty body is ``{}`` (every member optional) unless ``required`` names some.
    """
    # The body streams in once: read it here, then parse, rather than json_object.
    text = await text_body(request)
    if not text.strip() and not required:
        body: Any = {}
    elif not text.strip():
        raise BodyProblem(400, "the body is empty; send a JSON object "
                               "(Content-Type: application/json)")
    else:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise BodyProblem(400, f"the body is not JSON: {error.msg} at line "
                                   f"{error.lineno} column {error.colno}") from error
    if not isinstance(body, dict):
        raise BodyProblem(422, f"the body must be a JSON object, not {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _Invalid(f"unknown member {unknown[0]!r}; this route takes "
                       f"{', '.join(allowed)}")
    for key in required:
        if key not in body:
            raise _Invalid(f"the body needs {key!r}")
    for key, value in body.items():
        types = _FIELDS[key]
        # bool is an int in Python, never in JSON: true is not a timeout of 1 second.
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            kind = {str: "a string", bool: "true or false", dict: "an object",
                    int: "an integer"}[types[0]]
            raise _Invalid(f"{key!r} must be {kind}, not {_shown(value)}")
    if "stop_timeout" in body and not 0 <= body["stop_timeout"] <= _MAX_TIMEOUT:
        raise _Invalid(f"'stop_timeout' must be whole seconds from 0 to {_MAX_TIMEOUT}")
    for key in ("source", "snapshot_dir"):
        _check_text(key, body.get(key))
    return body


def _check_text(key: str, value: str | None) -> None:
    """Refuse what cannot name a target or folder before any command sees it."""
    if value is None:
        return
    if not value or "\x00" in value:
        raise _Invalid(f"{key!r} must be a non-empty text without NUL characters")
    if key == "snapshot_dir" and not value.startswith("/"):
        raise _Invalid(f"'snapshot_dir' must be an absolute path on the agent's host, "
                       f"not {_shown(value)}")
    if key == "source" and not value.startswith(("volume:", "container:", "/")):
        # A relative path would be resolved against the agent's working directory,
        # which no client can know.
        raise _Invalid(f"'source' must be volume:NAME, container:NAME or an absolute "
                       f"path, not {_shown(value)}")


def _source_query(request: Request) -> str:
    source = request.query_params.get("source")
    if source is None:
        raise _Invalid("?source is required: volume:NAME, container:NAME or an absolute path")
    _check_text("source", source)
    return source


def _path_name(request: Request) -> str:
    """The ``{name}`` of the route, refused unless it can name a snapshot: the drivers
    join it to the snapshot folder, so ``..`` would reach outside it."""
    return check_name(request.path_params["name"])


def _manager(request: Request, body: dict[str, Any]) -> SnapshotManager:
    engine: Environment = request.app.state.engine
    folder = body.get("snapshot_dir") or request.app.state.settings.snapshot_dir
    # ``run_command`` is read from this module on each request, so that a test can put
    # a model of the btrfs/zfs commands in its place (the kernel's own seam).
    return SnapshotManager(engine, snapshot_dir=None if folder is None else str(folder),
                           run=run_command)


# -- answering failures -----------------------------------------------------------------


def _snapshot_problem(error: SnapshotError) -> Response:
    """The problem answer for what the snapshot kernel raised."""
    if isinstance(error, UnsupportedFilesystem):
        return problem_response(422, str(error), path=error.path,
                                filesystem=error.filesystem)
    if isinstance(error, SnapshotNotFound):
        return problem_response(404, str(error))
    if isinstance(error, SnapshotExists):
        return problem_response(409, str(error))
    if isinstance(error, RestoreError):
        # The request was sound; the host failed a step. ``undo_failures`` empty means
        # the original data is back in place, as the detail says.
        return problem_response(500, str(error), step=error.step,
                                undo_failures=error.undo_failures)
    if isinstance(error, SnapshotCommandError):
        return problem_response(500, str(error), command=error.command,
                                returncode=error.returncode)
    # What remains is about the request: a container with no data, a target that
    # needs an engine...
    return problem_response(422, str(error))


def _guarded(handler: Callable[[Request], Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
    """Turn the ways a snapshot route fails into its problem answers."""
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except _Invalid as error:
            return problem_response(422, str(error))
        except _NoContainer as error:
            return problem_response(404, f"no container {str(error)!r} on this agent's "
                                         "engine")
        except BodyProblem as error:
            return problem_response(error.status, error.detail)
        except SnapshotError as error:
            return _snapshot_problem(error)
        except GhostPanelError as error:
            ident = request.path_params.get("id")
            return engine_problem(error, not_found=None if ident is None else
                                  f"no container {ident!r} on this agent's engine")
        except (TypeError, ValueError) as error:
            # The kernel's own checks: a snapshot name, a retention key, a path.
            return problem_response(422, str(error))

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


def _created(snapshots: list[Any]) -> Response:
    return JSONResponse({"snapshots": [s.to_json() for s in snapshots]}, status_code=201)


# -- handlers ---------------------------------------------------------------------------

_CREATE_OPTIONS: Final = ("name", "description", "keep_forever", "pause", "snapshot_dir")


@_guarded
async def snapshot_container(request: Request) -> Response:
    """``POST /api/v1/containers/{id}/snapshot``: snapshot a container's volumes and bind
    mounts under one name (paused meanwhile with ``pause``)."""
    body = await _body(request, _CREATE_OPTIONS)
    ident: str = request.path_params["id"]
    engine: Environment = request.app.state.engine
    try:
        container = await engine.containers.get(ident)
    except ValueError:  # "." or "..": not a name the engine could know
        raise _NoContainer(ident) from None
    made = await _manager(request, body).create(
        f"container:{container.name}", name=body.get("name"),
        keep_forever=body.get("keep_forever", False),
        description=body.get("description", ""), pause=body.get("pause", False))
    return _created(made)


@_guarded
async def list_snapshots(request: Request) -> Response:
    """``GET /api/v1/snapshots?source=TARGET``: every snapshot of it, newest first."""
    source = _source_query(request)
    found = await _manager(request, {}).list(source)
    return JSONResponse([s.to_json() for s in found])


@_guarded
async def create_snapshot(request: Request) -> Response:
    """``POST /api/v1/snapshots``: snapshot a volume, container or path."""
    body = await _body(request, ("source", *_CREATE_OPTIONS), required=("source",))
    made = await _manager(request, body).create(
        body["source"], name=body.get("name"), keep_forever=body.get("keep_forever", False),
        description=body.get("description", ""), pause=body.get("pause", False))
    return _created(made)


@_guarded
async def restore_snapshot(request: Request) -> Response:
    """``POST /api/v1/snapshots/{name}/restore``: put the snapshot's data back in place,
    keeping the data as it was in a ``pre-restore`` snapshot."""
    body = await _body(request, ("source", "stop_timeout", "snapshot_dir"),
                       required=("source",))
    result = await _manager(request, body).restore(
        body["source"], _path_name(request),
        stop_timeout=body.get("stop_timeout", 10))
    return JSONResponse({"restored": [s.to_json() for s in result.restored],
                         "safety": result.safety, "restarted": result.restarted})


@_guarded
async def delete_snapshot(request: Request) -> Response:
    """``DELETE /api/v1/snapshots/{name}?source=TARGET``: delete it from every source of
    the target that has it."""
    source = _source_query(request)
    deleted = await _manager(request, {}).delete(source, _path_name(request))
    return JSONResponse({"deleted": [s.to_json() for s in deleted]})


@_guarded
async def prune_snapshots(request: Request) -> Response:
    """``POST /api/v1/snapshots/prune``: delete what a retention policy removes (nothing
    with ``dry_run``), and say why each kept snapshot is kept."""
    body = await _body(request, ("source", "policy", "dry_run", "snapshot_dir"),
                       required=("source", "policy"))
    dry_run = body.get("dry_run", False)
    result = await _manager(request, body).prune(body["source"], body["policy"],
                                                 dry_run=dry_run)
    plan = result.plan
    return JSONResponse({"dry_run": dry_run, "keep": list(plan.keep),
                         "remove": list(plan.remove),
                         "reasons": {name: list(rules) for name, rules in plan.reasons.items()},
                         "deleted": [s.to_json() for s in result.deleted]})


ROUTES: list[BaseRoute] = [
    Route(_CONTAINER, snapshot_container, methods=["POST"]),
    Route(_PREFIX, list_snapshots, methods=["GET"]),
    Route(_PREFIX, create_snapshot, methods=["POST"]),
    # Before "/{name}" routes would not matter (methods differ), but keep prune first
    # so that a snapshot named "prune" can never shadow it.
    Route(_PREFIX + "/prune", prune_snapshots, methods=["POST"]),
    Route(_PREFIX + "/{name}/restore", restore_snapshot, methods=["POST"]),
    Route(_PREFIX + "/{name}", delete_snapshot, methods=["DELETE"]),
]

# -- the OpenAPI path items -------------------------------------------------------------

_TAGS: Final = ["snapshots"]
_TARGET: Final = {"type": "string", "minLength": 1, "pattern": "^(volume:|container:|/)",
                  "description": "`volume:NAME`, `container:NAME` or an absolute path "
                                 "(a BTRFS subvolume or ZFS dataset) on the agent's host."}
_SOURCE_QUERY: Final = {"name": "source", "in": "query", "required": True,
                        "description": "The snapshots' target.", "schema": _TARGET}
_NAME: Final = {"name": "name", "in": "path", "required": True,
                "description": "The snapshot's name (`bolt-YYYYmmdd-HHMMSS`...).",
                "schema": {"type": "string",
                           "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}}
_DIR: Final = {"type": "string", "pattern": "^/",
               "description": "Where BTRFS snapshots go (default: the agent's, else "
                              "`.ghostpanel-snapshots` at the top of the filesystem)."}
_OPTIONS: Final = {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
             "description": "Default `bolt-YYYYmmdd-HHMMSS` (UTC)."},
    "description": {"type": "string"},
    "keep_forever": {"type": "boolean", "default": False,
                     "description": "Never removed by retention."},
    "pause": {"type": "boolean", "default": False,
              "description": "Pause the running containers that use the data meanwhile."},
    "snapshot_dir": _DIR,
}

SNAPSHOT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "One read-only snapshot of one source and its metadata record.",
    "required": ["name", "source", "source_path", "location", "filesystem", "created"],
    "properties": {
        "name": {"type": "string"},
        "source": {"type": "string", "description": "`volume:NAME` or a path."},
        "source_path": {"type": "string"},
        "location": {"type": "string", "description": "A path (BTRFS) or "
                                                     "`dataset@name` (ZFS)."},
        "filesystem": {"type": "string", "enum": ["btrfs", "zfs"]},
        "created": {"type": "string", "format": "date-time"},
        "size": {"type": ["integer", "null"]},
        "trigger": {"type": "string"},
        "keep_forever": {"type": "boolean"},
        "description": {"type": "string"},
        "container": {"type": "string"},
    },
}
_SNAPSHOTS: Final = {"type": "array", "items": SNAPSHOT_SCHEMA}
_CREATED: Final = {"description": "Created: one snapshot per source, under one name.",
                   "content": json_content({"type": "object", "required": ["snapshots"],
                                            "properties": {"snapshots": _SNAPSHOTS}})}
_SOURCE_ERRORS: Final = (
    (404, "No such container, volume or snapshot."),
    (422, "The request is invalid, or a source is not on BTRFS/ZFS (`path` and "
          "`filesystem` name it)."),
    (502, "The engine could not be reached or failed."),
    (504, "The engine did not answer in time."))
_JSON_BODY_ERRORS: Final = ((400, "The body is not JSON."), (413, "The body is too large."))


def _body_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": bool(required), "content": json_content(
        {"type": "object", "additionalProperties": False, "required": required,
         "properties": properties})}


PATHS: dict[str, dict[str, Any]] = {
    _CONTAINER: {"post": {
        "operationId": "snapshotContainer", "tags": _TAGS,
        "summary": "Snapshot a container's volumes and bind mounts under one name.",
        "parameters": [CONTAINER_ID_PARAM],
        "requestBody": _body_schema(_OPTIONS, []),
        "responses": {"201": _CREATED,
                      **problem_responses(*_JSON_BODY_ERRORS, (409, "The name is taken."),
                                          (500, "A snapshot command failed on the host."),
                                          *_SOURCE_ERRORS)}}},
    _PREFIX: {
        "get": {
            "operationId": "listSnapshots", "tags": _TAGS,
            "summary": "The snapshots of a volume, container or path, newest first.",
            "parameters": [_SOURCE_QUERY],
            "responses": {"200": {"description": "The snapshots.",
                                  "content": json_content(_SNAPSHOTS)},
                          **problem_responses(
                              (500, "A snapshot command failed on the host."),
                              *_SOURCE_ERRORS)}},
        "post": {
            "operationId": "createSnapshot", "tags": _TAGS,
            "summary": "Snapshot a volume, container or path.",
            "requestBody": _body_schema({"source": _TARGET, **_OPTIONS}, ["source"]),
            "responses": {"201": _CREATED,
                          **problem_responses(*_JSON_BODY_ERRORS, (409, "The name is taken."),
                                              (500, "A snapshot command failed on the host."),
                                              *_SOURCE_ERRORS)}},
    },
    _PREFIX + "/prune": {"post": {
        "operationId": "pruneSnapshots", "tags": _TAGS,
        "summary": "Delete the snapshots a retention policy removes (`dry_run`: only say "
                   "which).",
        "requestBody": _body_schema({
            "source": _TARGET, "snapshot_dir": _DIR,
            "dry_run": {"type": "boolean", "default": False},
            "policy": {"type": "object", "description": "The Boltfile's "
                       "`[snapshots.retention]` table: `keep_hourly`, `keep_daily`, "
                       "`keep_weekly`, `keep_monthly`, `keep_yearly`, `max_total`.",
                       "additionalProperties": {"type": "integer"}}},
            ["source", "policy"]),
        "responses": {"200": {"description": "The plan, and what was deleted.",
                              "content": json_content({
                                  "type": "object",
                                  "required": ["dry_run", "keep", "remove", "reasons",
                                               "deleted"],
                                  "properties": {
                                      "dry_run": {"type": "boolean"},
                                      "keep": {"type": "array", "items": {"type": "string"}},
                                      "remove": {"type": "array",
                                                 "items": {"type": "string"}},
                                      "reasons": {"type": "object", "additionalProperties": {
                                          "type": "array", "items": {"type": "string"}}},
                                      "deleted": _SNAPSHOTS}})},
                      **problem_responses(*_JSON_BODY_ERRORS,
                                          (500, "A snapshot command failed on the host."),
                                          *_SOURCE_ERRORS)}}},
    _PREFIX + "/{name}/restore": {"post": {
        "operationId": "restoreSnapshot", "tags": _TAGS,
        "summary": "Put a snapshot's data back in place; the data as it was is kept as a "
                   "`pre-restore` snapshot.",
        "parameters": [_NAME],
        "requestBody": _body_schema({
            "source": _TARGET, "snapshot_dir": _DIR,
            "stop_timeout": {"type": "integer", "minimum": 0, "maximum": _MAX_TIMEOUT,
                             "description": "Seconds to stop the containers that use "
                                            "the data (default 10)."}}, ["source"]),
        "responses": {"200": {"description": "Restored.", "content": json_content({
            "type": "object", "required": ["restored", "safety", "restarted"],
            "properties": {"restored": _SNAPSHOTS,
                           "safety": {"type": "array", "items": {"type": "string"}},
                           "restarted": {"type": "array", "items": {"type": "string"}}}})},
                      **problem_responses(
                          *_JSON_BODY_ERRORS,
                          (500, "A step failed (`step` names it; every step before it "
                                "was undone unless `undo_failures` says otherwise)."),
                          *_SOURCE_ERRORS)}}},
    _PREFIX + "/{name}": {"delete": {
        "operationId": "deleteSnapshot", "tags": _TAGS,
        "summary": "Delete a snapshot of every source of the target that has it.",
        "parameters": [_NAME, _SOURCE_QUERY],
        "responses": {"200": {"description": "Deleted.", "content": json_content({
            "type": "object", "required": ["deleted"],
            "properties": {"deleted": _SNAPSHOTS}})},
                      **problem_responses((500, "A snapshot command failed on the host."),
                                          *_SOURCE_ERRORS)}}},
}
