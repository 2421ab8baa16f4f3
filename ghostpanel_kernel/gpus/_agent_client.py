"""The GPUs of a GhostPanel agent's host, through its ``/api/v1/gpus`` routes.

An environment that is an agent (``https://`` or ``h3://`` with a token) has its GPUs on
the agent's host, not here: :class:`AgentGpus` reads and changes them through the
agent, over the environment's own client, so the token, the TLS settings (a pinned
fingerprint too) and HTTP/3 are the ones every other request of the environment uses.
The answers are turned back into the kernel's :class:`Inventory` and
:class:`Allocation`, and the agent's refusals into the kernel's errors
(:class:`GpuUnavailable` for a ``409``, :class:`GpuRequestError` for a ``422``), so a
caller treats a local and an agent host alike. See docs/api.md ("GPUs").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import EngineAPIError, EngineProtocolError
from ..engine._client import body_of, decode_json
from ._allocation import Allocation
from ._errors import GpuRequestError, GpuUnavailable
from ._model import GpuDevice, GpuProcess, Inventory, MigInstance
from ._request import GpuRequest

if TYPE_CHECKING:
    from ..engine import Environment

__all__ = ["AgentGpus", "allocation_from_dict", "holders_of", "inventory_from_dict",
           "is_agent"]

_PREFIX: Final = "/api/v1/gpus"
_STATES: Final = ("ok", "no-driver", "no-gpu", "error")


def is_agent(env: Environment) -> bool:
    """Whether ``env`` reaches a GhostPanel agent: only an agent takes a token, or
    speaks HTTP/3 (``h3://``); a plain ``https://`` engine (Docker's TLS port) does not."""
    return env.client.is_agent


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any, what: str, endpoint: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EngineProtocolError(f"the agent's {what} is not a JSON object: "
                                  f"{str(value)[:80]!r}", endpoint=endpoint)
    return value


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _gpu_from_dict(data: Mapping[str, Any]) -> GpuDevice:
    migs = tuple(MigInstance(
        index=_int(m.get("index")) or 0, uuid=str(m.get("uuid", "")),
        name=str(m.get("name") or ""), memory_total_mib=_int(m.get("memory_total_mib")),
        memory_used_mib=_int(m.get("memory_used_mib")),
        gpu_instance_id=_int(m.get("gpu_instance_id")),
        compute_instance_id=_int(m.get("compute_instance_id")))
        for m in _list(data.get("mig_instances")) if isinstance(m, Mapping))
    processes = tuple(GpuProcess(pid=_int(p.get("pid")) or 0,
                                 used_memory_mib=_int(p.get("used_memory_mib")),
                                 container_id=_text(p.get("container_id")))
                      for p in _list(data.get("processes")) if isinstance(p, Mapping))
    pending = data.get("mig_pending")
    return GpuDevice(
        index=_int(data.get("index")) or 0, uuid=str(data.get("uuid", "")),
        name=str(data.get("name") or ""),
        memory_total_mib=_int(data.get("memory_total_mib")),
        memory_used_mib=_int(data.get("memory_used_mib")),
        utilization_gpu_percent=_int(data.get("utilization_gpu_percent")),
        utilization_memory_percent=_int(data.get("utilization_memory_percent")),
        temperature_c=_int(data.get("temperature_c")), power_w=_float(data.get("power_w")),
        power_limit_w=_float(data.get("power_limit_w")),
        mig_enabled=data.get("mig_enabled") is True,
        mig_pending=pending if isinstance(pending, bool) else None,
        mig_instances=migs, processes=processes,
        problems=tuple(str(p) for p in _list(data.get("problems"))))


def inventory_from_dict(data: Mapping[str, Any]) -> Inventory:
    """The :class:`Inventory` an agent's ``GET /api/v1/gpus`` (or ``Inventory.to_dict``)
    describes; members it lacks take their defaults, an unknown state reads ``error``."""
    state = data.get("state")
    return Inventory(
        state=state if state in _STATES else "error",
        host=str(data.get("host") or ""),
        gpus=tuple(_gpu_from_dict(g) for g in _list(data.get("gpus"))
                   if isinstance(g, Mapping)),
        message=str(data.get("message") or ""),
        driver_version=_text(data.get("driver_version")),
        nvml_version=_text(data.get("nvml_version")),
        simulated=data.get("simulated") is True, source=_text(data.get("source")),
        problems=tuple(str(p) for p in _list(data.get("problems"))))


def allocation_from_dict(data: Mapping[str, Any]) -> Allocation:
    """The :class:`Allocation` an agent's answer (``Allocation.to_dict``) describes."""
    created = _text(data.get("created_at"))
    try:
        created_at = datetime.fromisoformat(created) if created else None
    except ValueError:
        created_at = None
    return Allocation(
        workload=str(data.get("workload", "")), unit=str(data.get("unit", "")),
        slot=_int(data.get("slot")) or 0, gpu_index=_int(data.get("gpu_index")) or 0,
        gpu_uuid=str(data.get("gpu_uuid", "")), mig_index=_int(data.get("mig_index")),
        policy=GpuRequest.parse_policy(str(data.get("policy", "exclusive"))),
        tenants=_int(data.get("tenants")) or 1, simulated=data.get("simulated") is True,
        container_id=_text(data.get("container_id")), created_at=created_at)


def _allocations(value: Any) -> list[Allocation]:
    return [allocation_from_dict(a) for a in _list(value) if isinstance(a, Mapping)]


class AgentGpus:
    """The GPUs and reservations of an agent's host.

    Parameters
    ----------
    env
        The agent's environment (see :func:`is_agent`); its client carries every request.

    Examples
    --------
    >>> gpus = AgentGpus(env)                                            # doctest: +SKIP
    >>> inventory, held = await gpus.read()                              # doctest: +SKIP
    >>> await gpus.allocate("steam", GpuRequest(gpus=("0",)))            # doctest: +SKIP
    """

    def __init__(self, env: Environment) -> None:
        self.env = env

    async def _call(self, method: str, path: str, body: Any = None) -> Mapping[str, Any]:
        client = self.env.client
        try:
            # Unversioned: /api/v1 is the agent's own API, not the Engine API it passes on.
            response = await client._request(method, path, json_body=body, versioned=False)
        except EngineAPIError as error:
            # The agent's refusals, as the local allocator raises them: a 409 names the
            # holders (or says the host has no GPU to give), a 422 an impossible request.
            if error.status_code == 409:
                raise GpuUnavailable(error.message) from error
            if error.status_code == 422:
                raise GpuRequestError(error.message) from error
            raise
        answer = decode_json(body_of(response), endpoint=client.url, method=method, path=path)
        return _mapping(answer, f"answer to {method} {path}", client.url)

    async def read(self) -> tuple[Inventory, list[Allocation]]:
        """The agent host's inventory and every reservation on it."""
        data = await self._call("GET", _PREFIX)
        return inventory_from_dict(data), _allocations(data.get("allocations"))

    async def allocate(self, workload: str, request: GpuRequest) -> list[Allocation]:
        """Reserve units for ``workload`` on the agent's host; what it holds now.

        Raises
        ------
        GpuUnavailable
            Nothing fits now (the message names the holders), or the host has no GPU.
        GpuRequestError
            The agent found the request impossible.
        """
        body: dict[str, Any] = {"workload": workload, "policy": request.policy}
        if request.gpus:
            body["gpus"] = list(request.gpus)
        elif request.count is not None:
            body["count"] = request.count
        if request.tenants is not None:
            body["tenants"] = request.tenants
        data = await self._call("POST", _PREFIX + "/allocate", body)
        return _allocations(data.get("allocations"))

    async def release(self, workload: str) -> list[Allocation]:
        """Release everything ``workload`` holds on the agent's host; what was released."""
        data = await self._call("POST", _PREFIX + "/release", {"workload": workload})
        return _allocations(data.get("released"))


def holders_of(allocations: Sequence[Allocation]) -> dict[str, list[Allocation]]:
    """Unit UUID -> the reservations on it (as the local allocator's ``holders``)."""
    held: dict[str, list[Allocation]] = {}
    for allocation in allocations:
        held.setdefault(allocation.unit, []).append(allocation)
    return held
