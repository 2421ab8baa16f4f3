"""``env.metrics.history`` on real engines: an agent that samples a running container
(its history read back through ``/api/v1/metrics/history`` as a tidy frame, named as the
client calls the environment), and the fleet-wide read mixing that agent, this
machine's store and a dead environment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.metrics import Sample, history
from ghostpanel_kernel.metrics._frame import COLUMNS, MetricsFrame
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.agent_process import RunningAgent, agent_factory_fixture  # noqa: F401

MakeContainer = Callable[..., Awaitable[Container]]


async def test_an_agent_s_history_comes_back_as_a_tidy_frame(
        agent_factory: Callable[..., RunningAgent], make_container: MakeContainer,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container = await make_container()
    await container.start()
    running = agent_factory(extra_args=["--metrics-interval", "0.3"])
    async with connect(running.url, name="edge", token=running.token,
                       fingerprint=running.fingerprint) as agent:
        deadline = time.monotonic() + 20
        while True:
            frame = await agent.metrics.history(container.name, since="5m",
                                                metrics=["pids", "cpu_cores"])
            if frame["time"].nunique() >= 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert isinstance(frame, MetricsFrame) and tuple(frame.columns) == COLUMNS
        assert set(frame["container"]) == {container.name}
        assert set(frame["environment"]) == {"edge"}  # the client's name, not "local"
        assert set(frame["metric"]) <= {"pids", "cpu_cores"}
        wide = frame.wide()
        assert (wide["pids"].dropna() >= 1).all() and len(wide) >= 3

        await container.stop(timeout=0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            events = await agent.metrics.events(container.name, kinds="die")
            if len(events):
                break
            await asyncio.sleep(0.2)
        assert events["container"].tolist() == [container.name]

        # The fleet: the agent, this machine's store (another environment's samples)
        # and an environment nobody answers for.
        monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
        with MetricsStore() as store:
            store.write([Sample(time.time() - 30, "laptop", "notes", "id", "busybox",
                                "pids", 2.0)])
        laptop = Environment("unix:///nonexistent/engine.sock", name="laptop")
        dead = connect(f"https://127.0.0.1:{running.port}", name="dead", token="wrong",
                       fingerprint=running.fingerprint)
        try:
            fleet = await history([agent, laptop, dead], since="5m", metrics="pids")
        finally:
            await dead.aclose()
        assert set(fleet["environment"]) == {"edge", "laptop"}
        assert list(fleet.failures) == ["dead"] and "401" in fleet.failures["dead"]
        assert fleet["time"].is_monotonic_increasing
