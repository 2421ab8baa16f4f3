"""``ghostpanel_kernel.gpus._agent_client``: the agent's ``/api/v1/gpus`` answers read
back into the kernel's inventory and allocations, and its refusals into the kernel's
errors, over an environment's own client (a MockTransport standing in for the agent)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ghostpanel_kernel._exceptions import EngineAPIError, EngineProtocolError
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gpus import (
    SIMULATE_VARIABLE,
    Allocation,
    GpuRequest,
    GpuRequestError,
    GpuUnavailable,
    read_inventory,
)
from ghostpanel_kernel.gpus._agent_client import (
    AgentGpus,
    allocation_from_dict,
    inventory_from_dict,
    is_agent,
)
from tests.nvml_data import MIXED


def _agent(answer: httpx.Response, seen: list[httpx.Request]) -> Environment:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer
    return Environment("https://gpu-box.test:9443", token="tok",
                       transport=httpx.MockTransport(handler))


def test_an_inventory_and_an_allocation_survive_the_round_trip(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_VARIABLE, str(MIXED))
    inventory = read_inventory()
    assert inventory.state == "ok" and inventory.gpus[2].mig_instances
    assert inventory_from_dict(json.loads(json.dumps(inventory.to_dict()))) == inventory
    held = Allocation("steam", "MIG-1", 0, 2, "GPU-2", 1, "mig", 1, simulated=True,
                      container_id="ab" * 32,
                      created_at=datetime(2026, 12, 7, 21, 0, tzinfo=UTC))
    assert allocation_from_dict(json.loads(json.dumps(held.to_dict()))) == held
    assert inventory_from_dict({"state": "melted"}).state == "error"


def test_only_a_token_or_http3_makes_an_agent() -> None:
    plain = Environment("https://docker.test:2376",
                        transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert not is_agent(plain)
    assert is_agent(_agent(httpx.Response(200), []))


@pytest.mark.parametrize(("status", "error"), [(409, GpuUnavailable),
                                                 (422, GpuRequestError),
                                                 (500, EngineAPIError)])
async def test_the_agent_s_refusals_are_the_kernel_s_errors(
        status: int, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []
    env = _agent(httpx.Response(status, json={"status": status, "detail": "GPU 0 held by x"},
                                headers={"content-type": "application/problem+json"}), seen)
    with pytest.raises(error, match="GPU 0 held by x"):
        await AgentGpus(env).allocate("steam", GpuRequest(gpus=("0",), policy="shared",
                                                          tenants=2))
    body: dict[str, Any] = json.loads(seen[0].content)
    assert seen[0].url.path == "/api/v1/gpus/allocate"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert body == {"workload": "steam", "policy": "shared", "gpus": ["0"], "tenants": 2}
    await env.aclose()


async def test_an_answer_that_is_no_object_is_a_protocol_error() -> None:
    env = _agent(httpx.Response(200, json=[1, 2]), [])
    with pytest.raises(EngineProtocolError, match="not a JSON object"):
        await AgentGpus(env).read()
    await env.aclose()
