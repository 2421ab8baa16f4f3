"""``GpuAllocator`` on the kernel's simulated NVML (``GHOSTPANEL_GPU_SIMULATE``) and a
private store: cards per GPU and MIG device, live readings, assign and release, the
"simulated" label, and the no-driver card on this machine's real NVML.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import GpuAllocator

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gpus import SIMULATE_VARIABLE, GpuRequest, read_inventory
from ghostpanel_kernel.gpus import GpuAllocator as KernelAllocator
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings
from tests.nvml_data import L4_0, L4_1, NVML_DATA
from tests.unit.fake_engine import FakeEngine, env_for

MIG_0 = "MIG-a100a100-0000-4000-8000-000000000c00"


@pytest.fixture
def simulation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the two-L4-one-A100 simulation that a test may change between reads."""
    path = tmp_path / "gpus.json"
    shutil.copy(NVML_DATA / "two-l4-one-a100-mig.json", path)
    monkeypatch.setenv(SIMULATE_VARIABLE, str(path))
    return path


@pytest.fixture
async def open_view(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await open_view(**options)``: a GpuAllocator on a private store, first read done;
    closed at the end, with no widget model left open."""
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    made: list[GpuAllocator] = []

    async def open_(**options: Any) -> GpuAllocator:
        options.setdefault("interval", 0)
        view = GpuAllocator(database_url=f"sqlite:///{tmp_path / 'store.db'}", **options)
        made.append(view)
        assert view.task is not None
        if view.interval:  # the live loop never ends: wait for its first reading
            for _ in range(200):
                if view.state:
                    break
                await asyncio.sleep(0.02)
        else:
            await view.task
        return view

    yield open_
    for view in made:
        view.close()
        await asyncio.gather(*view._tasks, return_exceptions=True)
    assert set(_instances) == before, "close() left widgets open"


def card(view: GpuAllocator, uuid: str) -> str:
    return str(view._cards[uuid].value)


def width(text: str, label: str) -> int:
    """The filled width (%) of the bar ``label`` in a card."""
    match = re.search(rf">{label}</span>.*?width: (\d+)%", text)
    assert match, f"no {label} bar in {text}"
    return int(match.group(1))


async def test_a_card_per_gpu_and_per_mig_device_with_bars_and_the_simulated_label(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    view = await open_view()
    assert view.state == "ok" and view.simulated
    # Two L4s, and the A100 in MIG mode as its three MIG devices.
    assert len(view.cards.children) == 5
    assert list(view._cards)[:2] == [L4_0, L4_1] and MIG_0 in view._cards
    assert "simulated" in view.title.value and str(simulation) in view.title.value
    first = card(view, L4_0)
    assert "gp-gpu-simulated" in first
    assert width(first, "GPU") == 37 and width(first, "Temp") == 51
    assert width(first, "Mem") == round(1210 / 23034 * 100)
    assert "free" in first and "running: <code>4242</code> in <code>3f5c9e0d1b2a</code>" in first
    assert "GPU 2 MIG 0" in card(view, MIG_0) and "19.5 GiB" in card(view, MIG_0)


async def test_readings_are_live_and_drawn_as_a_sparkline(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    view = await open_view()
    assert "<svg" not in card(view, L4_0)  # one sample is no line yet
    data = json.loads(simulation.read_text())
    data["gpus"][0]["utilization_gpu_percent"] = 91
    data["gpus"][0]["temperature_c"] = 86
    simulation.write_text(json.dumps(data))
    await view.refresh()
    now = card(view, L4_0)
    assert width(now, "GPU") == 91 and width(now, "Temp") == 86
    assert "#c62828" in now  # hot: the temperature bar is red
    assert "<svg" in now and "polyline" in now


async def test_the_interval_keeps_reading_until_closed(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    view = await open_view(interval=0.05)
    data = json.loads(simulation.read_text())
    data["gpus"][1]["utilization_gpu_percent"] = 64
    simulation.write_text(json.dumps(data))
    for _ in range(100):
        if width(card(view, L4_1), "GPU") == 64:
            break
        await asyncio.sleep(0.02)
    assert width(card(view, L4_1), "GPU") == 64


async def test_assign_and_release_show_the_holder_and_refusals_name_holders(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    view = await open_view()
    view.workload_field.value = "steam"
    view.unit_field.value = L4_0
    view.assign_button.click()
    await view.task
    assert view.status.level == "success", view.status.message
    assert "held by <b>steam</b>" in card(view, L4_0) and "exclusive" in card(view, L4_0)
    assert view.release_field.options == ("steam",)
    # A second exclusive claim on the same GPU is refused with who holds it.
    assert await view.assign("quake", gpus=[L4_0]) is None
    assert view.status.level == "error"
    assert "GPU 0 (NVIDIA L4) held by steam (exclusive)" in view.status.message
    # Shared tenants on the other GPU, then a MIG device.
    assert await view.assign("web", policy="shared", tenants=2, gpus=["1"])
    assert await view.assign("api", policy="shared", tenants=2, gpus=["1"])
    assert "web" in card(view, L4_1) and "2/2 tenants" in card(view, L4_1)
    made = await view.assign("train", policy="mig")
    assert made and made[0].unit == MIG_0 and "train" in card(view, MIG_0)
    view.release_field.value = "steam"
    view.release_button.click()
    await view.task
    assert view.status.level == "success" and "Released GPU 0" in view.status.message
    assert "free" in card(view, L4_0) and "steam" not in view.release_field.options


async def test_reservations_are_the_stores_so_a_new_view_sees_them(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    first = await open_view()
    assert await first.assign("steam", gpus=["0"])
    second = await open_view()
    assert "held by <b>steam</b>" in card(second, L4_0)


async def test_a_bad_request_is_shown_not_raised(
        simulation: Path, open_view: Callable[..., Any]) -> None:
    view = await open_view()
    assert await view.assign("", gpus=["0"]) is None
    assert view.status.level == "error" and "workload name" in view.status.message
    assert await view.assign("x", policy="mig", gpus=["0"]) is None
    assert "not in MIG mode" in view.status.message


async def test_a_broken_simulation_is_an_error_card(
        monkeypatch: pytest.MonkeyPatch, open_view: Callable[..., Any]) -> None:
    monkeypatch.setenv(SIMULATE_VARIABLE, str(NVML_DATA / "broken.json"))
    view = await open_view()
    assert view.state == "error"
    assert "gp-gpu-message" in view.cards.children[0].value
    assert view.form.layout.display == "none"
    assert await view.assign("steam") is None and "no GPU to assign" in view.status.message


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has an NVIDIA driver")
async def test_no_driver_is_a_message_card_on_the_real_nvml(
        monkeypatch: pytest.MonkeyPatch, open_view: Callable[..., Any]) -> None:
    monkeypatch.delenv(SIMULATE_VARIABLE, raising=False)
    view = await open_view(host="lab-1")
    assert view.state == "no-driver" and not view.simulated
    text = view.cards.children[0].value
    assert "No NVIDIA driver" in text and "no NVIDIA driver on" in text
    assert "simulated" not in view.title.value and "lab-1" in view.title.value


async def test_an_engine_on_another_host_is_said_not_read_here(
        open_view: Callable[..., Any]) -> None:
    env = env_for(FakeEngine(), url="tcp://gpu-box.example:2375")
    try:
        view = await open_view(env=env)
        assert view.state == "remote"
        assert "is not this machine" in view.cards.children[0].value
    finally:
        await env.aclose()


# -- an agent's environment: the agent host's GPUs, through /api/v1/gpus ---------------------


class _Recording(httpx.AsyncBaseTransport):
    """The agent's app over ASGI, remembering each request's method, path and token."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path,
                          request.headers.get("authorization", "")))
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def agent_env(tmp_path: Path) -> AsyncIterator[tuple[Environment, _Recording, Path]]:
    """An agent environment (``https://`` with a token) whose agent is the real ``/api/v1``
    app with its store under its own home; the engine behind it is a FakeEngine."""
    app = api_app()
    engine = env_for(FakeEngine())
    home = tmp_path / "agent-home"
    app.state.engine = engine
    app.state.settings = AgentSettings(engine_url=engine.url, listen="127.0.0.1:9443",
                                       home=home)
    app.state.started = time.monotonic()
    transport = _Recording(app)
    env = Environment("https://gpu-box.test:9443", name="lab", token="s3cret-token",
                      transport=transport)
    yield env, transport, home
    await env.aclose()
    await engine.aclose()


def _agent_holders(home: Path) -> dict[str, list[str]]:
    """Unit -> workloads, as the agent's own store holds them."""
    settings = AgentSettings(engine_url="unix:///x", listen="127.0.0.1:1", home=home)
    with KernelAllocator(read_inventory(), database_url=settings.store_url) as store:
        return {unit: [a.workload for a in held] for unit, held in store.holders().items()}


async def test_an_agent_environment_shows_the_agent_host_s_cards(
        simulation: Path, open_view: Callable[..., Any],
        agent_env: tuple[Environment, _Recording, Path]) -> None:
    env, transport, _ = agent_env
    view = await open_view(env=env)
    assert view.state == "ok" and view.simulated
    assert list(view._cards)[:2] == [L4_0, L4_1] and MIG_0 in view._cards
    assert "gp-gpu-simulated" in card(view, L4_0)
    host = read_inventory().host
    assert f"GPUs of {host}" in view.title.value and "<code>lab</code>" in view.title.value
    # Read through the agent, with the environment's token; no local store was opened.
    assert transport.seen == [("GET", "/api/v1/gpus", "Bearer s3cret-token")]
    assert view.reservations is None


async def test_assign_and_release_on_an_agent_act_through_it(
        simulation: Path, open_view: Callable[..., Any],
        agent_env: tuple[Environment, _Recording, Path]) -> None:
    env, transport, home = agent_env
    view = await open_view(env=env)
    made = await view.assign("steam", gpus=[L4_0])
    assert made and made[0].unit == L4_0 and made[0].simulated
    assert view.status.level == "success", view.status.message
    assert "held by <b>steam</b>" in card(view, L4_0)
    assert _agent_holders(home) == {L4_0: ["steam"]}  # the agent's store, not ours
    # The agent's 409 is shown with who holds the GPU.
    assert await view.assign("quake", gpus=["0"]) is None
    assert view.status.level == "error"
    assert "GPU 0 (NVIDIA L4) held by steam (exclusive)" in view.status.message
    # The agent's 422 too.
    assert await view.assign("x", policy="mig", gpus=["0"]) is None
    assert "not in MIG mode" in view.status.message
    assert await view.assign("web", policy="shared", tenants=2, count=1)
    assert "web" in view.release_field.options
    view.release_field.value = "steam"
    view.release_button.click()
    assert view.task is not None
    await view.task
    assert view.status.level == "success" and "Released GPU 0" in view.status.message
    assert "free" in card(view, L4_0) and "steam" not in view.release_field.options
    assert "steam" not in str(_agent_holders(home))
    assert {path for _, path, _ in transport.seen} == {
        "/api/v1/gpus", "/api/v1/gpus/allocate", "/api/v1/gpus/release"}
    assert view.reservations is None


async def test_an_agent_host_without_gpus_is_a_message_card(
        monkeypatch: pytest.MonkeyPatch, open_view: Callable[..., Any],
        agent_env: tuple[Environment, _Recording, Path]) -> None:
    monkeypatch.setenv(SIMULATE_VARIABLE, str(NVML_DATA / "broken.json"))
    view = await open_view(env=agent_env[0])
    assert view.state == "error" and "gp-gpu-message" in view.cards.children[0].value
    assert await view.assign("steam") is None and view.status.level == "error"


async def test_an_https_engine_without_a_token_is_no_agent(
        open_view: Callable[..., Any]) -> None:
    env = env_for(FakeEngine(), url="https://docker.example:2376")
    try:
        view = await open_view(env=env)
        assert view.state == "remote" and view.agent is None
    finally:
        await env.aclose()


async def test_a_refusal_redraws_the_holder_another_client_added(
        simulation: Path, open_view: Callable[..., Any], tmp_path: Path) -> None:
    view = await open_view()
    assert "free" in card(view, L4_1)
    # ``ghostpanel gpu allocate`` (another process) takes GPU 1 after the last reading.
    with KernelAllocator(read_inventory(),
                         database_url=f"sqlite:///{tmp_path / 'store.db'}") as other:
        other.allocate("quake", GpuRequest(gpus=("1",)))
    assert await view.assign("steam", gpus=["1"]) is None
    assert "held by quake" in view.status.message
    assert "held by <b>quake</b>" in card(view, L4_1)
