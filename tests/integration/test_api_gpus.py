"""GPU routes of ``/api/v1`` on a real ``ghostpanel agent`` and its private Podman engine.

The agent runs with ``GHOSTPANEL_GPU_SIMULATE`` naming a file of tests/data/nvml/ (this
machine has no NVIDIA GPU), so every answer is labelled simulated; without it, the
machine's real state (no driver) is a ``200`` that says so. Reservations are kept in
the agent's home, the store ``ghostpanel gpu`` uses there too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ghostpanel_kernel.gpus import read_inventory
from tests.agent_process import (  # noqa: F401  (fixtures)
    RunningAgent,
    agent_factory_fixture,
    run_cli,
)
from tests.integration.conftest import unique
from tests.nvml_data import L4_0, L4_1, MIXED
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration



def _holders(agent: RunningAgent) -> dict[str, str]:
    """Unit -> workload, as ``ghostpanel gpu ls --json`` in the agent's home says."""
    result = run_cli(agent.home, "gpu", "ls", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["simulated"] is True
    return {a["unit"]: a["workload"] for a in data["allocations"]}


def test_reservations_through_the_agent_are_the_cli_s_and_survive_a_restart(
        agent_factory: Callable[..., RunningAgent], monkeypatch: pytest.MonkeyPatch,
        track_container: Callable[[str], None]) -> None:
    monkeypatch.setenv("GHOSTPANEL_GPU_SIMULATE", str(MIXED))
    agent = agent_factory()
    steam = unique("gp-gpu")
    track_container(steam)
    with agent.client(timeout=60) as http:
        listed = http.get("/api/v1/gpus").json()
        assert listed["state"] == "ok" and listed["label"] == "simulated"
        assert [g["uuid"] for g in listed["gpus"]][:2] == [L4_0, L4_1]
        made = http.post("/api/v1/gpus/allocate", json={"workload": steam, "gpus": ["0"]})
        assert made.status_code == 200, made.text
        assert made.json()["allocations"][0]["unit"] == L4_0
    assert _holders(agent) == {L4_0: steam}
    cli = run_cli(agent.home, "gpu", "allocate", "quake", "--gpu", "0")
    assert cli.returncode == 1 and steam in cli.stderr  # the agent's holder, named
    assert run_cli(agent.home, "gpu", "allocate", "quake", "--gpu", "1").returncode == 0

    agent.restart()
    with agent.client(timeout=60) as http:
        held = {a["unit"]: a["workload"]
                for a in http.get("/api/v1/gpus").json()["allocations"]}
        assert held == {L4_0: steam, L4_1: "quake"}
        taken = http.post("/api/v1/gpus/allocate", json={"workload": "other",
                                                         "gpus": [L4_1]})
        assert taken.status_code == 409 and taken.json()["holders"] == {
            "GPU 1 (NVIDIA L4)": ["quake"]}

        created = http.post("/api/v1/containers", json={"name": steam, "service": {
            "image": BUSYBOX_REFERENCE, "command": ["true"]}})
        assert created.status_code == 201, created.text
        nvbind = http.get(f"/api/v1/containers/{steam}/nvbind")
        assert nvbind.status_code == 200, nvbind.text
        body = nvbind.json()
        assert body["container"] == created.json()["id"] and body["workload"] == steam
        assert [a["unit"] for a in body["allocations"]] == [L4_0]
        assert body["policy"] == "exclusive" and body["simulated"] is True
        unknown = http.get(f"/api/v1/containers/{unique('gp-none')}/nvbind")
        assert unknown.status_code == 404

        released = http.post("/api/v1/gpus/release", json={"workload": steam}).json()
        assert [a["unit"] for a in released["released"]] == [L4_0]
        after = http.get(f"/api/v1/containers/{steam}/nvbind").json()
        assert after["allocations"] == [] and after["policy"] is None
    assert _holders(agent) == {L4_1: "quake"}


def test_without_a_driver_the_inventory_is_a_200_that_says_so(
        agent_factory: Callable[..., RunningAgent], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GHOSTPANEL_GPU_SIMULATE", raising=False)
    if read_inventory().state == "ok":
        pytest.skip("this machine has an NVIDIA GPU")
    agent = agent_factory()
    with agent.client() as http:
        answer = http.get("/api/v1/gpus")
        refused = http.post("/api/v1/gpus/allocate", json={"workload": "steam"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["state"] in ("no-driver", "no-gpu") and body["simulated"] is False
    assert body["message"].startswith(("no NVIDIA driver on", "no NVIDIA GPU on"))
    assert refused.status_code == 409 and body["message"] in refused.json()["detail"]
