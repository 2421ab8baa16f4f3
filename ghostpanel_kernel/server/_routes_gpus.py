"""Routes of ``/api/v1`` for the agent host's NVIDIA GPUs and their reservations.

::

    GET  /api/v1/gpus                      the inventory and every reservation
    POST /api/v1/gpus/allocate             reserve GPUs for a workload (``gpu allocate``)
    POST /api/v1/gpus/release              release a workload's GPUs (``gpu release``)
    GET  /api/v1/containers/{id}/nvbind    the GPUs a container holds, and how

The GPUs are read through NVML on each request, or from the simulation
``GHOSTPANEL_GPU_SIMULATE`` names in the agent's environment (every answer then says
``"simulated": true``). A host without a driver is a ``200`` whose ``state`` says so, as
``ghostpanel gpu ls`` prints it, never a server error. Reservations are the kernel's
:class:`~ghostpanel_kernel.gpus.GpuAllocator` in the agent's store (``settings.store_url``),
shared with ``ghostpanel gpu`` on the same host; the first reservation starts the agent's
GPU releaser (``_gpu_release.py``), which releases a removed container's reservation from
the engine's events. The GPU kernel (and SQLAlchemy under it)
is imported on the first GPU request, not when the agent starts: most agents never serve
one, and the agent's memory budget is small. See docs/api.md and docs/gpus.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._exceptions import GhostPanelError
from ..engine import Environment
from ._engine_errors import engine_problem
from ._openapi import CONTAINER_ID_PARAM, json_content, problem_responses
from ._problems import problem_response
from ._request_body import BodyProblem, json_object

if TYPE_CHECKING:
    from ..gpus import GpuAllocator

__all__ = ["PATHS", "ROUTES"]

_PREFIX: Final = "/api/v1/gpus"
_NVBIND: Final = "/api/v1/containers/{id}/nvbind"
_POLICIES: Final = ("exclusive", "shared", "time-sliced", "mig")
#: The labels :func:`~ghostpanel_kernel.gpus.create_with_gpus` puts on a container.
_LABEL_WORKLOAD: Final = "io.ghostpanel.gpu.workload"
_LABEL_DEVICES: Final = "io.ghostpanel.gpu.devices"

_T = TypeVar("_T")


class _Invalid(Exception):
    """A request body the route cannot take: a ``422`` naming what is wrong."""


def _shown(value: Any) -> str:
    """A member's value for an error message, cut short: a body may hold a megabyte."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def _with_allocator(request: Request, work: Callable[[GpuAllocator], _T]) -> _T:
    """Run ``work`` on an allocator over a fresh inventory, in a worker thread: NVML and
    the store (SQLite) block, and must not stall the agent's other requests."""
    from ..gpus import GpuAllocator, read_inventory

    database_url = request.app.state.settings.store_url

    def run() -> _T:
        with GpuAllocator(read_inventory(), database_url=database_url) as allocator:
            return work(allocator)

    return await run_in_threadpool(run)


def _gpu_problem(error: GhostPanelError) -> Response:
    """The problem for what the GPU kernel or its store raised."""
    from ..gpus import GpuRequestError, GpuUnavailable
    from ..store import StoreError

    if isinstance(error, GpuUnavailable):
        return problem_response(409, str(error), holders=error.holders)
    if isinstance(error, GpuRequestError):
        return problem_response(422, str(error))
    if isinstance(error, StoreError):
        return problem_response(500, str(error))
    # A host with no GPU to give (no driver, no GPU, a broken simulation): a state of
    # the host, answered as a conflict with it rather than as the agent failing.
    return problem_response(409, str(error))


def _answering(handler: Callable[[Request], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
    """Turn the ways a GPU route that reads a body fails into its problem answers.

    Parameters
    ----------
    handler
        The route; it may raise :class:`BodyProblem` (the body is not JSON, or too
        large), ``_Invalid`` (a member is wrong: 422) or a :class:`GhostPanelError`
        from the GPU kernel or its store (see :func:`_gpu_problem`).

    Returns
    -------
    Callable
        The route, answering each of those as a problem instead of raising it.
    """
    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except BodyProblem as error:
            return problem_response(error.status, error.detail)
        except _Invalid as error:
            return problem_response(422, str(error))
        except GhostPanelError as error:
            return _gpu_problem(error)
    return route


# -- handlers ---------------------------------------------------------------------------


async def list_gpus(request: Request) -> Response:
    """``GET /api/v1/gpus``: the inventory (or why there is none) and the reservations."""
    def read(allocator: GpuAllocator) -> dict[str, Any]:
        data = allocator.inventory.to_dict()
        data["allocations"] = [a.to_dict() for a in allocator.allocations()]
        return data

    try:
        data = await _with_allocator(request, read)
    except GhostPanelError as error:
        return _gpu_problem(error)
    if data["allocations"]:  # made by the CLI on this host: follow their containers too
        _follow_removals(request)
    return JSONResponse(data)


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise _Invalid(f"{key!r} must be a non-empty string, not {_shown(value)}")
    return value


def _count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
        raise _Invalid(f"{key!r} must be an integer from 1 to 1024, not {_shown(value)}")
    return value


def _check_members(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _Invalid(f"unknown member {unknown[0]!r}; this route takes "
                       f"{', '.join(allowed)}")


@_answering
async def allocate_gpus(request: Request) -> Response:
    """``POST /api/v1/gpus/allocate``: reserve GPUs for a workload before it is created."""
    from ..gpus import GpuRequest

    body = await json_object(request)
    _check_members(body, ("workload", "count", "gpus", "policy", "tenants"))
    workload = _string(body, "workload")
    gpus = body.get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(g, str) and g.strip()
                                             for g in gpus):
        raise _Invalid("'gpus' must be a list of GPU indices or UUIDs (strings)")
    policy = body.get("policy", "exclusive")
    if policy not in _POLICIES:
        raise _Invalid(f"'policy' must be one of {', '.join(_POLICIES)}, "
                       f"not {json.dumps(policy)}")
    count, tenants = _count(body, "count"), _count(body, "tenants")
    if count is not None and gpus:
        raise _Invalid("give 'count' or 'gpus', not both")
    wanted = GpuRequest(count=count, gpus=tuple(gpus), tenants=tenants,
                        policy=GpuRequest.parse_policy(policy))

    def allocate(allocator: GpuAllocator) -> dict[str, Any]:
        made = allocator.allocate(workload, wanted)
        return {"workload": workload, "simulated": allocator.inventory.simulated,
                "allocations": [a.to_dict() for a in made]}

    answer = await _with_allocator(request, allocate)
    _follow_removals(request)
    return JSONResponse(answer)


def _follow_removals(request: Request) -> None:
    """Start the agent's GPU releaser (server/_gpu_release.py) if it is not running."""
    releaser = getattr(request.app.state, "gpu_releaser", None)
    if releaser is not None:
        releaser.start()


@_answering
async def release_gpus(request: Request) -> Response:
    """``POST /api/v1/gpus/release``: release every GPU a workload holds (holding none
    is not an error: ``released`` is empty)."""
    body = await json_object(request)
    _check_members(body, ("workload",))
    workload = _string(body, "workload")

    def release(allocator: GpuAllocator) -> dict[str, Any]:
        released = allocator.release(workload)
        return {"workload": workload, "simulated": allocator.inventory.simulated,
                "released": [a.to_dict() for a in released]}

    return JSONResponse(await _with_allocator(request, release))


def _bound_to(bound: str | None, container_id: str) -> bool:
    """Whether a reservation bound to ``bound`` (a full id or a prefix) is the
    container's; an empty binding is nobody's, not a prefix of every id."""
    return bool(bound) and container_id.startswith(bound or "")


async def container_nvbind(request: Request) -> Response:
    """``GET /api/v1/containers/{id}/nvbind``: the GPUs a container holds and how.

    A container holds the reservations bound to its id, and those of its workload (the
    ``io.ghostpanel.gpu.workload`` label, else its name) reserved before it was made.
    What the engine was given is read back from the container itself: its labels and
    ``HostConfig.DeviceRequests``/``Devices``.
    """
    ident: str = request.path_params["id"]
    missing = f"no container {ident!r} on this agent's engine"
    engine: Environment = request.app.state.engine
    try:
        container = await engine.containers.get(ident)
    except ValueError:  # "." or "..": not a name the engine could know
        return problem_response(404, missing)
    except GhostPanelError as error:
        return engine_problem(error, not_found=missing)
    labels = container.labels
    workload = labels.get(_LABEL_WORKLOAD) or container.name
    host_config = container.attrs.get("HostConfig") or {}

    def held(allocator: GpuAllocator) -> tuple[bool, str, list[dict[str, Any]]]:
        mine = [a for a in allocator.allocations()
                if a.workload == workload or _bound_to(a.container_id, container.id)]
        return (allocator.inventory.simulated, allocator.inventory.state,
                [a.to_dict() for a in mine])

    try:
        simulated, state, allocations = await _with_allocator(request, held)
    except GhostPanelError as error:
        return _gpu_problem(error)
    devices = [d for d in labels.get(_LABEL_DEVICES, "").split(",") if d]
    policies = sorted({a["policy"] for a in allocations})
    return JSONResponse({
        "container": container.id, "name": container.name, "workload": workload,
        "simulated": simulated, "inventory_state": state,
        "policy": policies[0] if len(policies) == 1 else None,
        "allocations": allocations, "devices": devices,
        "device_requests": host_config.get("DeviceRequests") or [],
        "host_devices": host_config.get("Devices") or [],
    })


ROUTES: list[BaseRoute] = [
    Route(_PREFIX, list_gpus, methods=["GET"]),
    Route(_PREFIX + "/allocate", allocate_gpus, methods=["POST"]),
    Route(_PREFIX + "/release", release_gpus, methods=["POST"]),
    Route(_NVBIND, container_nvbind, methods=["GET"]),
]

# -- the OpenAPI path items -------------------------------------------------------------

_TAGS: Final = ["gpus"]
_ALLOCATION: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A GPU or MIG device held by a workload.",
    "required": ["workload", "unit", "slot", "gpu_index", "gpu_uuid", "policy", "tenants",
                 "cdi_name", "simulated"],
    "properties": {
        "workload": {"type": "string"},
        "unit": {"type": "string", "description": "`GPU-...` or `MIG-...`."},
        "slot": {"type": "integer", "minimum": 0},
        "gpu_index": {"type": "integer", "minimum": 0},
        "gpu_uuid": {"type": "string"},
        "mig_index": {"type": ["integer", "null"]},
        "policy": {"type": "string", "enum": list(_POLICIES)},
        "tenants": {"type": "integer", "minimum": 1},
        "cdi_name": {"type": "string", "description": "`nvidia.com/gpu=0`, "
                                                     "`nvidia.com/gpu=0:1`."},
        "simulated": {"type": "boolean"},
        "container_id": {"type": ["string", "null"]},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_ALLOCATIONS: Final = {"type": "array", "items": _ALLOCATION}
_WORKLOAD: Final = {"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "\\S", "description": "A container or Surge service name."}
_INVENTORY: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["state", "host", "message", "simulated", "label", "gpus", "allocations"],
    "properties": {
        "state": {"type": "string", "enum": ["ok", "no-driver", "no-gpu", "error"]},
        "host": {"type": "string"},
        "message": {"type": "string", "description": "Why there are no GPUs, when so."},
        "simulated": {"type": "boolean"},
        "label": {"type": "string", "enum": ["nvml", "simulated"]},
        "source": {"type": ["string", "null"]},
        "driver_version": {"type": ["string", "null"]},
        "nvml_version": {"type": ["string", "null"]},
        "problems": {"type": "array", "items": {"type": "string"}},
        "gpus": {"type": "array", "items": {"type": "object"}},
        "allocations": _ALLOCATIONS,
    },
}
_BODY_ERRORS: Final = ((400, "The body is not JSON."), (413, "The body is too large."),
                       (500, "The reservation store failed."))


def _body(properties: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": json_content(
        {"type": "object", "additionalProperties": False, "required": ["workload"],
         "properties": properties})}


PATHS: dict[str, dict[str, Any]] = {
    _PREFIX: {"get": {
        "operationId": "listGpus", "tags": _TAGS,
        "summary": "The host's GPUs (NVML, or a simulation) and every reservation.",
        "responses": {"200": {"description": "The inventory; `state` says why there is "
                                             "none (no driver, no GPU).",
                              "content": json_content(_INVENTORY)},
                      **problem_responses((500, "The reservation store failed."))}}},
    _PREFIX + "/allocate": {"post": {
        "operationId": "allocateGpus", "tags": _TAGS,
        "summary": "Reserve GPUs for a container or Surge service before it is created.",
        "requestBody": _body({
            "workload": _WORKLOAD,
            "count": {"type": "integer", "minimum": 1, "maximum": 1024},
            "gpus": {"type": "array", "items": {"type": "string", "minLength": 1,
                                                "pattern": "\\S"},
                     "description": "GPU indices or UUIDs (`MIG-...` under `mig`)."},
            "policy": {"type": "string", "enum": list(_POLICIES), "default": "exclusive"},
            "tenants": {"type": "integer", "minimum": 1, "maximum": 1024}}),
        "responses": {"200": {"description": "What the workload holds now.",
                              "content": json_content({
                                  "type": "object",
                                  "required": ["workload", "simulated", "allocations"],
                                  "properties": {"workload": {"type": "string"},
                                                 "simulated": {"type": "boolean"},
                                                 "allocations": _ALLOCATIONS}})},
                      **problem_responses(
                          (409, "Nothing is free (`holders` names who holds what), or the "
                                "host has no GPU to give."),
                          (422, "The request can never be met (an unknown GPU, MIG on a "
                                "GPU without MIG mode...)."), *_BODY_ERRORS)}}},
    _PREFIX + "/release": {"post": {
        "operationId": "releaseGpus", "tags": _TAGS,
        "summary": "Release every GPU a workload holds.",
        "requestBody": _body({"workload": _WORKLOAD}),
        "responses": {"200": {"description": "What was released (empty: nothing held).",
                              "content": json_content({
                                  "type": "object",
                                  "required": ["workload", "simulated", "released"],
                                  "properties": {"workload": {"type": "string"},
                                                 "simulated": {"type": "boolean"},
                                                 "released": _ALLOCATIONS}})},
                      **problem_responses((409, "The host has no GPU inventory."),
                                          (422, "The body is invalid."), *_BODY_ERRORS)}}},
    _NVBIND: {"get": {
        "operationId": "containerNvbind", "tags": _TAGS,
        "summary": "The GPUs a container holds and how it was given them.",
        "parameters": [CONTAINER_ID_PARAM],
        "responses": {"200": {"description": "Its reservations and what the engine was "
                                             "given (empty when it holds none).",
                              "content": json_content({
                                  "type": "object",
                                  "required": ["container", "name", "workload", "simulated",
                                               "allocations", "devices", "device_requests"],
                                  "properties": {
                                      "container": {"type": "string"},
                                      "name": {"type": "string"},
                                      "workload": {"type": "string"},
                                      "simulated": {"type": "boolean"},
                                      "inventory_state": {"type": "string"},
                                      "policy": {"type": ["string", "null"]},
                                      "allocations": _ALLOCATIONS,
                                      "devices": {"type": "array",
                                                  "items": {"type": "string"}},
                                      "device_requests": {"type": "array"},
                                      "host_devices": {"type": "array"}}})},
                      **problem_responses((404, "No such container."),
                                          (500, "The reservation store failed."),
                                          (502, "The engine could not be reached or "
                                                "failed."),
                                          (504, "The engine did not answer in time."))}}},
}
