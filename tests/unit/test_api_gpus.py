"""``/api/v1/gpus`` and ``GET /api/v1/containers/{id}/nvbind`` over a FakeEngine.

The GPUs are the simulated NVML of tests/data/nvml/ (``GHOSTPANEL_GPU_SIMULATE``, as an
agent run with it set reads them); the reservations are the kernel's allocator in a
store under the test's own ``GHOSTPANEL_HOME``. With no simulation this machine has no
NVIDIA driver, which is the ``no-driver`` state.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.gpus import GpuAllocator, read_inventory
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings
from tests.nvml_data import L4_0, MIXED
from tests.unit.api_client import problem_of
from tests.unit.fake_engine import WEB_ID, WEB_INSPECT, FakeEngine, env_for, json_answer


@contextlib.asynccontextmanager
async def gpu_client(home: Path, engine: FakeEngine | None = None
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``api_app()`` whose store is under ``home``."""
    app = api_app()
    env = env_for(engine or FakeEngine())
    app.state.engine = env
    app.state.settings = AgentSettings(engine_url=env.url, listen="127.0.0.1:9443",
                                       home=home)
    app.state.started = time.monotonic()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://agent") as http:
            yield http
    finally:
        await env.aclose()


@pytest.fixture(name="simulated")
def simulated_fixture(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = MIXED
    monkeypatch.setenv("GHOSTPANEL_GPU_SIMULATE", str(path))
    return path


def _engine_with_gpu_labels() -> FakeEngine:
    inspect: dict[str, Any] = copy.deepcopy(WEB_INSPECT)
    inspect["Config"]["Labels"] = {"io.ghostpanel.gpu.workload": "steam",
                                   "io.ghostpanel.gpu.devices": "nvidia.com/gpu=0"}
    inspect["HostConfig"] = {"DeviceRequests": [{"Driver": "cdi",
                                                 "DeviceIDs": ["nvidia.com/gpu=0"]}]}
    return FakeEngine({("GET", "/containers/web/json"): json_answer(inspect),
                       ("GET", f"/containers/{WEB_ID}/json"): json_answer(inspect)})


async def test_the_inventory_is_listed_and_labelled_simulated(
        simulated: Path, tmp_path: Path) -> None:
    async with gpu_client(tmp_path) as http:
        answer = await http.get("/api/v1/gpus")
    assert answer.status_code == 200
    body = answer.json()
    assert body["state"] == "ok" and body["simulated"] is True
    assert body["label"] == "simulated" and body["source"] == str(simulated)
    assert [g["index"] for g in body["gpus"]] == [0, 1, 2]
    assert body["allocations"] == []


async def test_no_driver_is_a_200_with_its_state(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GHOSTPANEL_GPU_SIMULATE", raising=False)
    if read_inventory().state == "ok":
        pytest.skip("this machine has an NVIDIA GPU")
    async with gpu_client(tmp_path) as http:
        answer = await http.get("/api/v1/gpus")
        refused = problem_of(await http.post("/api/v1/gpus/allocate",
                                             json={"workload": "steam"}), 409)
    assert answer.status_code == 200
    body = answer.json()
    assert body["state"] in ("no-driver", "no-gpu") and body["simulated"] is False
    assert body["message"] and body["gpus"] == []
    assert body["message"] in str(refused["detail"])


async def test_allocate_refuse_naming_the_holder_and_release(
        simulated: Path, tmp_path: Path) -> None:
    async with gpu_client(tmp_path) as http:
        made = await http.post("/api/v1/gpus/allocate", json={"workload": "steam",
                                                              "gpus": ["0"]})
        again = await http.post("/api/v1/gpus/allocate", json={"workload": "steam",
                                                               "gpus": ["0"]})
        taken = problem_of(await http.post("/api/v1/gpus/allocate", json={
            "workload": "quake", "gpus": [L4_0]}), 409)
        mig = await http.post("/api/v1/gpus/allocate", json={"workload": "train",
                                                             "policy": "mig"})
        listed = (await http.get("/api/v1/gpus")).json()
        released = await http.post("/api/v1/gpus/release", json={"workload": "steam"})
        nothing = await http.post("/api/v1/gpus/release", json={"workload": "steam"})
    assert made.status_code == 200, made.text
    [held] = made.json()["allocations"]
    assert held["unit"] == L4_0 and held["policy"] == "exclusive"
    assert held["simulated"] is True and made.json()["simulated"] is True
    assert again.json()["allocations"] == made.json()["allocations"]  # idempotent
    assert "steam" in str(taken["detail"]) and taken["holders"] == {
        "GPU 0 (NVIDIA L4)": ["steam"]}
    assert mig.json()["allocations"][0]["cdi_name"].startswith("nvidia.com/gpu=2:")
    assert sorted(a["workload"] for a in listed["allocations"]) == ["steam", "train"]
    assert [a["unit"] for a in released.json()["released"]] == [L4_0]
    assert nothing.status_code == 200 and nothing.json()["released"] == []


async def test_reservations_are_the_ones_the_cli_sees(simulated: Path,
                                                      tmp_path: Path) -> None:
    async with gpu_client(tmp_path) as http:
        await http.post("/api/v1/gpus/allocate", json={"workload": "web", "count": 2,
                                                       "policy": "shared", "tenants": 2})
    store = f"sqlite:///{tmp_path / 'ghostpanel.db'}"
    with GpuAllocator(read_inventory(), database_url=store) as allocator:
        held = allocator.allocations("web")
    assert [(a.gpu_index, a.policy, a.tenants) for a in held] == [(0, "shared", 2),
                                                                  (1, "shared", 2)]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({}, 422, "'workload' must be a non-empty string"),
    ({"workload": " "}, 422, "'workload' must be a non-empty string"),
    ({"workload": "a", "policy": "greedy"}, 422, "'policy' must be one of"),
    ({"workload": "a", "count": 0}, 422, "'count' must be an integer"),
    ({"workload": "a", "count": True}, 422, "'count' must be an integer"),
    ({"workload": "a", "count": 1, "gpus": ["0"]}, 422, "not both"),
    ({"workload": "a", "gpus": "0"}, 422, "'gpus' must be a list"),
    ({"workload": "a", "gpus": ["7"]}, 422, "has no GPU '7'"),
    ({"workload": "a", "policy": "mig", "gpus": ["0"]}, 422, "not in MIG mode"),
    ({"workload": "a", "count": 9}, 422, "asks for 9 GPUs"),
    ({"workload": "a", "extra": 1}, 422, "unknown member 'extra'"),
    (["a"], 422, "JSON object"),
])
async def test_bad_allocations_are_problems(simulated: Path, tmp_path: Path, body: Any,
                                            status: int, words: str) -> None:
    async with gpu_client(tmp_path) as http:
        answer = problem_of(await http.post("/api/v1/gpus/allocate", json=body), status)
        listed = (await http.get("/api/v1/gpus")).json()
    assert words in str(answer["detail"])
    assert listed["allocations"] == []


async def test_nvbind_shows_what_a_container_holds_and_how(simulated: Path,
                                                            tmp_path: Path) -> None:
    engine = _engine_with_gpu_labels()
    async with gpu_client(tmp_path, engine) as http:
        await http.post("/api/v1/gpus/allocate", json={"workload": "steam", "gpus": ["0"]})
        await http.post("/api/v1/gpus/allocate", json={"workload": "other", "gpus": ["1"]})
        answer = await http.get("/api/v1/containers/web/nvbind")
        unknown = problem_of(await http.get("/api/v1/containers/nope/nvbind"), 404)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["container"] == WEB_ID and body["name"] == "web"
    assert body["workload"] == "steam" and body["policy"] == "exclusive"
    assert [a["unit"] for a in body["allocations"]] == [L4_0]
    assert body["devices"] == ["nvidia.com/gpu=0"]
    assert body["device_requests"] == [{"Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=0"]}]
    assert body["simulated"] is True
    assert unknown["detail"] == "no container 'nope' on this agent's engine"


async def test_nvbind_of_a_container_without_gpus_is_empty(simulated: Path,
                                                           tmp_path: Path) -> None:
    engine = FakeEngine({("GET", "/containers/web/json"): json_answer(WEB_INSPECT)})
    async with gpu_client(tmp_path, engine) as http:
        answer = await http.get("/api/v1/containers/web/nvbind")
    body = answer.json()
    assert answer.status_code == 200
    assert body["workload"] == "web" and body["allocations"] == []
    assert body["policy"] is None and body["devices"] == []


async def test_nvbind_finds_reservations_bound_to_the_container_by_id(
        simulated: Path, tmp_path: Path) -> None:
    engine = FakeEngine({("GET", "/containers/web/json"): json_answer(WEB_INSPECT)})
    async with gpu_client(tmp_path, engine) as http:
        for workload in ("job", "ghost"):
            await http.post("/api/v1/gpus/allocate", json={"workload": workload,
                                                           "policy": "shared"})
        store = f"sqlite:///{tmp_path / 'ghostpanel.db'}"
        with GpuAllocator(read_inventory(), database_url=store) as allocator:
            allocator.bind("job", WEB_ID)  # made under another name than the container's
            allocator.bind("ghost", "")  # an empty binding names no container
        body = (await http.get("/api/v1/containers/web/nvbind")).json()
    assert [a["workload"] for a in body["allocations"]] == ["job"]
    assert body["allocations"][0]["container_id"] == WEB_ID
    assert body["policy"] == "shared"
