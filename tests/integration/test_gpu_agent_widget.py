"""``GpuAllocator`` on an agent's environment: a real ``ghostpanel agent`` (on its private
Podman engine) run with ``GHOSTPANEL_GPU_SIMULATE``, reached over HTTPS and HTTP/3 with
its token and certificate, as a notebook reaches it.

This process reads no simulation (this machine has no NVIDIA GPU), so the cards the
widget draws can only be the agent host's; the reservations it makes are the agent's,
which ``ghostpanel gpu`` in the agent's home sees and refuses in turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ghostpanel_widgets import GpuAllocator

from ghostpanel_kernel.engine import Environment, TLSConfig
from ghostpanel_kernel.gpus import SIMULATE_VARIABLE
from tests.agent_process import (  # noqa: F401  (fixtures)
    RunningAgent,
    agent_factory_fixture,
    run_cli,
)
from tests.nvml_data import L4_0, L4_1, MIXED

pytestmark = pytest.mark.integration



def _on_agent_host(agent: RunningAgent, *args: str) -> subprocess.CompletedProcess[str]:
    """``ghostpanel ARGS`` in the agent's home, with the agent's simulated GPUs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SIMULATE_VARIABLE, str(MIXED))
        return run_cli(agent.home, *args)


def _agent_holders(agent: RunningAgent) -> dict[str, str]:
    """Unit -> workload, as ``ghostpanel gpu ls --json`` in the agent's home says."""
    result = _on_agent_host(agent, "gpu", "ls", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return {a["unit"]: a["workload"] for a in data["allocations"]}


async def _finished(view: GpuAllocator) -> None:
    assert view.task is not None
    await view.task


@pytest.mark.parametrize("scheme", ["https", "h3"])
async def test_the_widget_reads_and_reserves_the_agent_host_s_gpus(
        scheme: str, agent_factory: Callable[..., RunningAgent],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SIMULATE_VARIABLE, str(MIXED))
    agent = agent_factory()  # the agent's environment carries the simulation...
    monkeypatch.delenv(SIMULATE_VARIABLE)  # ...this process does not
    env = Environment(f"{scheme}://127.0.0.1:{agent.port}", name="lab", token=agent.token,
                      tls=TLSConfig(ca_cert=os.fspath(agent.ca_cert)), timeout=60)
    view = GpuAllocator(env, interval=0, database_url=f"sqlite:///{tmp_path / 'local.db'}")
    try:
        await _finished(view)
        assert view.state == "ok" and view.simulated, view.status.message
        assert list(view._cards)[:2] == [L4_0, L4_1]
        assert "gp-gpu-simulated" in view._cards[L4_0].value
        assert "<code>lab</code>" in view.title.value

        view.workload_field.value = "steam"
        view.unit_field.value = L4_0
        view.assign_button.click()
        await _finished(view)
        assert view.status.level == "success", view.status.message
        assert "held by <b>steam</b>" in view._cards[L4_0].value
        assert _agent_holders(agent) == {L4_0: "steam"}

        # Taken on the agent's host by its command line: the widget's claim is refused
        # by the agent, naming the holder.
        assert _on_agent_host(agent, "gpu", "allocate", "quake", "--gpu", "1").returncode == 0
        assert await view.assign("other", gpus=["1"]) is None
        assert view.status.level == "error"
        assert "GPU 1 (NVIDIA L4) held by quake" in view.status.message
        assert "held by <b>quake</b>" in view._cards[L4_1].value  # redrawn from the agent

        view.release_field.value = "steam"
        view.release_button.click()
        await _finished(view)
        assert view.status.level == "success", view.status.message
        assert _agent_holders(agent) == {L4_1: "quake"}
        assert view.reservations is None  # no local store was opened
    finally:
        view.close()
        await asyncio.gather(*view._tasks, return_exceptions=True)
        await env.aclose()
