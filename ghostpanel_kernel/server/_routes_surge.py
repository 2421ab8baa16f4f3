"""Routes of ``/api/v1`` for Surge: plan, apply, deploy, destroy and status of a Boltfile
on the agent's own engine, and the seed's per-container ``/containers/{id}/surge``.

Every route takes a Boltfile as ``_boltfile_request`` reads it (TOML body, JSON
``{"boltfile"}`` or ``{"path"}``) with its options. ``plan`` and ``status`` answer one
JSON document; ``apply``, ``deploy``, ``destroy`` and the per-container route stream
their progress as NDJSON (``_surge_stream``). ``deploy`` is the seed's name for "pull
the latest images and apply": an apply whose ``pull`` defaults to true. See
``docs/surge-api.md``.

Contract for every ``_routes_*`` module: ``ROUTES`` (Starlette routes with full paths,
``/api/v1/...``) and ``PATHS`` (their OpenAPI 3.1 path items, keyed by the templated
path), which ``_api.api_app`` mounts and ``_openapi`` documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._exceptions import GhostPanelError, NotFound
from ..bolt import Boltfile
from ..engine import Environment
from ..surge import (
    LABEL_PROJECT,
    LABEL_SERVICE,
    SurgeError,
    apply_surge,
    desired_state,
    destroy_surge,
    plan_surge,
    scale_surge,
    surge_status,
)
from ..surge._progress import ProgressCallback
from ._boltfile_request import InputProblem, OptionKind, read_boltfile_request
from ._engine_errors import engine_problem
from ._openapi import json_content, problem_responses, schema_ref
from ._problems import problem_response
from ._surge_stream import NDJSON, Operation, error_problem, start_streamed

__all__ = ["PATHS", "ROUTES"]

_PREFIX: Final = "/api/v1"

_PLAN_OPTIONS: Final[dict[str, OptionKind]] = {"pull": "bool"}
_STATUS_OPTIONS: Final[dict[str, OptionKind]] = {"check_health": "bool"}
_APPLY_OPTIONS: Final[dict[str, OptionKind]] = {
    "pull": "bool", "break_lock": "bool", "stop_timeout": "int", "health_timeout": "float",
    "service": "str", "snapshot": "bool"}
_DESTROY_OPTIONS: Final[dict[str, OptionKind]] = {
    "volumes": "bool", "break_lock": "bool", "stop_timeout": "int"}
_CONTAINER_OPTIONS: Final[dict[str, OptionKind]] = {
    "replicas": "int", "break_lock": "bool", "stop_timeout": "int", "health_timeout": "float"}


def _engine(request: Request) -> Environment:
    engine: Environment = request.app.state.engine
    return engine


def _surge_problem(error: Exception) -> Response:
    status, detail, extra = error_problem(error)
    return problem_response(status, detail, **extra)


def _timeouts(options: Mapping[str, Any]) -> dict[str, Any]:
    """The timeout and lock options an apply, scale or destroy was given (the library's
    defaults for the others)."""
    return {key: options[key] for key in ("stop_timeout", "health_timeout", "break_lock")
            if key in options}


def _service_replicas(boltfile: Boltfile, service: str) -> int:
    """How many replicas the Boltfile asks for ``service``.

    Raises
    ------
    SurgeError
        The Boltfile is invalid, or has no such service.
    """
    services = desired_state(boltfile).services
    if service not in services:
        raise SurgeError(f"the Boltfile of project {boltfile.project!r} has no service "
                         f"{service!r} (it has: {', '.join(services) or 'none'})")
    return services[service].replicas


def _scale(boltfile: Boltfile, engine: Environment, service: str, replicas: int,
           options: Mapping[str, Any]) -> Operation:
    async def run(progress: ProgressCallback, on_cancel: Any) -> Any:
        return await scale_surge(boltfile, [engine], service=service, replicas=replicas,
                                 progress=progress, on_cancel=on_cancel,
                                 **_timeouts(options))
    return run


# -- routes ----------------------------------------------------------------------------


async def plan(request: Request) -> Response:
    """``POST /api/v1/surge/plan``: what an apply would do; changes nothing."""
    try:
        given = await read_boltfile_request(request, _PLAN_OPTIONS)
        result = await plan_surge(given.boltfile, [_engine(request)],
                                  pull=given.options.get("pull", False))
    except InputProblem as problem:
        return problem.response()
    except (SurgeError, ValueError) as error:
        return _surge_problem(error)
    failure = result.environments[0].error if result.environments else None
    if isinstance(failure, GhostPanelError):
        return engine_problem(failure)
    return JSONResponse(result.to_dict())


async def status(request: Request) -> Response:
    """``GET /api/v1/surge/status``: desired and running replicas and health."""
    try:
        given = await read_boltfile_request(request, _STATUS_OPTIONS)
        result = await surge_status(given.boltfile, [_engine(request)],
                                    check_health=given.options.get("check_health", True))
    except InputProblem as problem:
        return problem.response()
    except (SurgeError, ValueError) as error:
        return _surge_problem(error)
    if result.errors and not result.services:
        failure = next(iter(result.errors.values()))
        if isinstance(failure, GhostPanelError):
            return engine_problem(failure)
        return _surge_problem(failure)  # type: ignore[arg-type]
    return JSONResponse({"project": given.boltfile.project,
                         "services": [entry.to_dict() for entry in result.services],
                         "errors": {name: str(e) for name, e in result.errors.items()}})


async def _apply(request: Request, *, deploy: bool) -> Response:
    try:
        given = await read_boltfile_request(request, _APPLY_OPTIONS)
        boltfile, options = given.boltfile, given.options
        pull = options.get("pull", deploy)
        engine = _engine(request)
        what = f"{'deploy' if deploy else 'apply'} of project {boltfile.project!r}"
        service = options.get("service")
        if service is None:
            hook = _before_surge_up(boltfile, request) if options.get("snapshot", True) \
                else None

            async def run(progress: ProgressCallback, on_cancel: Any) -> Any:
                return await apply_surge(boltfile, [engine], pull=pull, progress=progress,
                                         on_cancel=on_cancel, before_recreate=hook,
                                         **_timeouts(options))
            return await start_streamed(run, what, request.receive)
        if pull:
            raise InputProblem(422, "`pull` cannot go with `service`: a one-service apply "
                                    "uses the images the engine has (send pull=false, or "
                                    "apply the whole project)", option="pull")
        replicas = _service_replicas(boltfile, service)
        return await start_streamed(_scale(boltfile, engine, service, replicas, options),
                                    f"{what}, service {service!r}", request.receive)
    except InputProblem as problem:
        return problem.response()
    except (SurgeError, ValueError) as error:
        return _surge_problem(error)


def _before_surge_up(boltfile: Boltfile, request: Request) -> Any:
    """The Boltfile's ``before_surge_up`` hook (as ``ghostpanel surge apply`` takes it),
    snapshotting into the agent's snapshot folder; None when the file asks for none."""
    triggers = (boltfile.to_dict().get("snapshots") or {}).get("triggers") or {}
    if not triggers.get("before_surge_up"):  # no snapshot code for most applies
        return None
    from ..snapshots import boltfile_before_surge_up

    folder = request.app.state.settings.snapshot_dir
    try:
        return boltfile_before_surge_up(
            boltfile, snapshot_dir=None if folder is None else str(folder))
    except ValueError as error:  # a trigger that cannot be scheduled
        raise InputProblem(422, str(error)) from None


async def apply(request: Request) -> Response:
    """``POST /api/v1/surge/apply``: make the engine run the Boltfile (NDJSON)."""
    return await _apply(request, deploy=False)


async def deploy(request: Request) -> Response:
    """``POST /api/v1/surge/deploy``: pull the latest images, then apply (NDJSON)."""
    return await _apply(request, deploy=True)


async def destroy(request: Request) -> Response:
    """``POST /api/v1/surge/destroy``: remove the project's containers and networks."""
    try:
        given = await read_boltfile_request(request, _DESTROY_OPTIONS)
    except InputProblem as problem:
        return problem.response()
    boltfile, options = given.boltfile, given.options
    if not boltfile.project:
        return problem_response(422, "the Boltfile has no `project`: Surge finds what to "
                                     "destroy by the project's name")
    engine = _engine(request)

    async def run(progress: ProgressCallback, on_cancel: Any) -> Any:
        return await destroy_surge(boltfile, [engine], volumes=options.get("volumes", False),
                                   progress=progress,
                                   **{k: v for k, v in _timeouts(options).items()
                                      if k != "health_timeout"})
    return await start_streamed(run, f"destroy of project {boltfile.project!r}",
                                request.receive)


async def container_surge(request: Request) -> Response:
    """``POST /api/v1/containers/{id}/surge``: redeploy or scale the service the
    container belongs to (NDJSON)."""
    ident = request.path_params["id"]
    engine = _engine(request)
    try:
        container = await engine.containers.get(ident)
    except (NotFound, ValueError):  # ValueError: no name an engine could have
        return problem_response(404, f"no container {ident!r} on this agent's engine")
    except GhostPanelError as error:
        return engine_problem(error)
    project = container.labels.get(LABEL_PROJECT)
    service = container.labels.get(LABEL_SERVICE)
    if not project or not service:
        return problem_response(409, f"container {container.name!r} is not managed by Surge "
                                     f"(it has no {LABEL_PROJECT} and {LABEL_SERVICE} "
                                     "labels); apply its Boltfile first",
                                container=container.name)
    try:
        given = await read_boltfile_request(request, _CONTAINER_OPTIONS)
        boltfile, options = given.boltfile, given.options
        if boltfile.project != project:
            return problem_response(409, f"container {container.name!r} belongs to project "
                                         f"{project!r}, not to the Boltfile's "
                                         f"{boltfile.project!r}: send project {project!r}'s "
                                         "Boltfile", project=project, service=service)
        replicas = options.get("replicas")
        if replicas is None:
            replicas = _service_replicas(boltfile, service)
        else:
            _service_replicas(boltfile, service)  # the service must be in the file
    except InputProblem as problem:
        return problem.response()
    except (SurgeError, ValueError) as error:
        return _surge_problem(error)
    return await start_streamed(
        _scale(boltfile, engine, service, replicas, options),
        f"surge of service {service!r} of project {project!r} (container {container.name})",
        request.receive)


ROUTES: list[BaseRoute] = [
    Route(f"{_PREFIX}/surge/plan", plan, methods=["POST"]),
    Route(f"{_PREFIX}/surge/apply", apply, methods=["POST"]),
    Route(f"{_PREFIX}/surge/deploy", deploy, methods=["POST"]),
    Route(f"{_PREFIX}/surge/destroy", destroy, methods=["POST"]),
    Route(f"{_PREFIX}/surge/status", status, methods=["GET"]),
    Route(f"{_PREFIX}/containers/{{id}}/surge", container_surge, methods=["POST"]),
]


# -- OpenAPI ---------------------------------------------------------------------------

_TOML_BODY: Final = {"type": "string", "description": "The Boltfile's TOML text; options "
                                                      "go in the query string."}


def _json_body(options: Mapping[str, OptionKind]) -> dict[str, Any]:
    kinds = {"bool": {"type": "boolean"}, "int": {"type": "integer", "minimum": 0},
             "float": {"type": "number", "minimum": 0}, "str": {"type": "string",
                                                                "minLength": 1}}
    return {
        "type": "object",
        "description": "Exactly one of `boltfile` (the TOML text) and `path` (an absolute "
                       "path on the agent's host), and options.",
        "properties": {"boltfile": {"type": "string"},
                       "path": {"type": "string", "pattern": "^/"},
                       **{name: kinds[kind] for name, kind in options.items()}},
        "additionalProperties": False,
    }


def _body(options: Mapping[str, OptionKind]) -> dict[str, Any]:
    return {"required": True, "content": {**json_content(_TOML_BODY, "application/toml"),
                                          **json_content(_json_body(options))}}


def _query(options: Mapping[str, OptionKind]) -> list[dict[str, Any]]:
    kinds = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}
    return [{"name": name, "in": "query", "required": False,
             "schema": {"type": kinds[kind]}} for name, kind in options.items()]


_PROGRESS_LINE: Final = {
    "type": "object",
    "description": "One line of the stream: `progress` per step, then one `result` or "
                   "`error` line.",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["progress", "result", "error"]},
        "step": {"type": "integer"}, "total": {"type": "integer"},
        "environment": {"type": "string"}, "message": {"type": "string"},
        "ok": {"type": "boolean"}, "rolled_back": {"type": "boolean"},
        "cancelled": {"type": "boolean"},
        "outcomes": {"type": "object", "additionalProperties": {"type": "string"}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "conclusion": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "error": schema_ref("Problem"),
    },
}

_PLAN: Final = {
    "type": "object", "required": ["project", "environments"],
    "properties": {
        "project": {"type": "string"},
        "environments": {"type": "array", "items": {
            "type": "object", "properties": {
                "environment": {"type": "string"},
                "error": {"type": ["string", "null"]},
                "actions": {"type": "array", "items": {"type": "object", "properties": {
                    "kind": {"type": "string"}, "service": {"type": "string"},
                    "container": {"type": "string"}, "reason": {"type": "string"},
                    "resource": {"type": "string"}, "replica": {"type": "integer"},
                    "container_id": {"type": "string"}}}}}}},
    },
}

_STATUS: Final = {
    "type": "object", "required": ["project", "services", "errors"],
    "properties": {
        "project": {"type": "string"},
        "services": {"type": "array", "items": {"type": "object", "properties": {
            "environment": {"type": "string"}, "service": {"type": "string"},
            "desired": {"type": "integer"}, "running": {"type": "integer"},
            "containers": {"type": "array", "items": {"type": "string"}},
            "health": {"type": "string"}}}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_BOLTFILE_ERRORS: Final = (
    (415, "The body is neither TOML nor JSON."),
    (422, "The Boltfile is not TOML (path, line, column), is invalid (diagnostics), or "
          "an option is wrong."),
    (502, "The engine refused or did not answer."))


def _streamed(summary: str, description: str, options: Mapping[str, OptionKind], *,
              extra_errors: tuple[tuple[int, str], ...] = ()) -> dict[str, Any]:
    return {"post": {
        "summary": summary, "description": description, "tags": ["surge"],
        "parameters": _query(options), "requestBody": _body(options),
        "responses": {
            "200": {"description": "NDJSON: one progress line per step, then the result "
                                   "(or an error) line.",
                    "content": json_content(_PROGRESS_LINE, NDJSON)},
            **problem_responses(*_BOLTFILE_ERRORS, (409, "The project's Surge lock is held "
                                                         "by another run."), *extra_errors),
        }}}


PATHS: dict[str, dict[str, Any]] = {
    f"{_PREFIX}/surge/plan": {"post": {
        "summary": "Plan a Boltfile", "tags": ["surge"],
        "description": "What an apply would do on the agent's engine; changes nothing.",
        "parameters": _query(_PLAN_OPTIONS), "requestBody": _body(_PLAN_OPTIONS),
        "responses": {"200": {"description": "The plan.", "content": json_content(_PLAN)},
                      **problem_responses(*_BOLTFILE_ERRORS)}}},
    f"{_PREFIX}/surge/apply": _streamed(
        "Apply a Boltfile", "Make the engine run the Boltfile, all or nothing; a client "
        "that disconnects cancels it and every change is rolled back.", _APPLY_OPTIONS),
    f"{_PREFIX}/surge/deploy": _streamed(
        "Deploy a Boltfile (pull, then apply)", "An apply whose `pull` defaults to true: "
        "the latest images are pulled and the containers whose image changed recreated.",
        _APPLY_OPTIONS),
    f"{_PREFIX}/surge/destroy": _streamed(
        "Destroy a project", "Remove the project's containers and networks (and volumes "
        "with `volumes`). A client that disconnects stops it where it is.",
        _DESTROY_OPTIONS),
    f"{_PREFIX}/surge/status": {"get": {
        "summary": "Status of a Boltfile's services", "tags": ["surge"],
        "description": "Desired and running replicas and health. The Boltfile comes as a "
                       "body (as for plan) or as `?path=` on the agent's host.",
        "parameters": [{"name": "path", "in": "query", "required": False,
                        "schema": {"type": "string"}}, *_query(_STATUS_OPTIONS)],
        "responses": {"200": {"description": "The status.", "content": json_content(_STATUS)},
                      **problem_responses(*_BOLTFILE_ERRORS)}}},
    f"{_PREFIX}/containers/{{id}}/surge": {
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        **_streamed("Redeploy or scale a container's Surge service",
                    "Finds the service from the container's Surge labels and applies only "
                    "that service of the Boltfile sent (its `replicas`, or the option).",
                    _CONTAINER_OPTIONS,
                    extra_errors=((404, "No such container."),)),
    },
}
