"""The agent's ``/metrics`` on a real agent process and real Podman: scraped as
Prometheus scrapes it (bearer token, the agent's CA), read back with prometheus-client's
parser."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.integration.conftest import MakeContainer

pytestmark = pytest.mark.integration


def _series(text: str) -> dict[tuple[str, str, str], float]:
    """``(series name, container name, status/state label) -> value``."""
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            extra = sample.labels.get("status") or sample.labels.get("state") or ""
            found[sample.name, sample.labels.get("name", ""), extra] = sample.value
    return found


def _scrape(agent: RunningAgent, **headers: str) -> httpx.Response:
    # As Prometheus does it: the token as a bearer credential, the agent's CA to trust.
    with httpx.Client(base_url=agent.url, verify=agent.ssl_context(), timeout=10) as http:
        return http.get("/metrics", headers=headers)


async def _wait_exited(container: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await container.reload()
        if container.state == "exited":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{container.name} did not exit")


async def _wait_restarted(container: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await container.reload()
        if container.attrs.get("RestartCount"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{container.name} was not restarted")


async def test_a_scrape_shows_cpu_limits_exit_codes_and_restarts(
        agent: RunningAgent, make_container: MakeContainer) -> None:
    burner = await make_container(command=["sh", "-c", "while :; do :; done"],
                                  memory="64m")
    failed = await make_container(command=["sh", "-c", "exit 3"])
    looping = await make_container(command=["sh", "-c", "sleep 0.1; exit 1"],
                                   restart_policy="on-failure")
    for container in (burner, failed, looping):
        await container.start()
    await _wait_exited(failed)
    await _wait_restarted(looping)

    refused = _scrape(agent)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"

    answer = _scrape(agent, Authorization=f"Bearer {agent.token}")
    assert answer.status_code == 200, answer.text
    series = _series(answer.text)
    assert series["container_cpu_usage_seconds_total", burner.name, ""] > 0
    assert series["container_processes", burner.name, ""] >= 1
    assert series["container_memory_working_set_bytes", burner.name, ""] > 0
    assert series["container_spec_memory_limit_bytes", burner.name, ""] == 64 * 1024**2
    assert series["ghostpanel_container_state", burner.name, "running"] == 1
    assert series["ghostpanel_container_state", failed.name, "exited"] == 1
    assert series["ghostpanel_container_exit_code", failed.name, ""] == 3
    assert series["ghostpanel_container_restarts_total", failed.name, ""] == 0
    assert series["ghostpanel_container_health_status", failed.name, "none"] == 1
    assert series["ghostpanel_container_restarts_total", looping.name, ""] >= 1
    # A stopped container has its state, not resource series.
    assert ("container_processes", failed.name, "") not in series

    # The counter moves between scrapes. At once when the burner's values come from a
    # one-shot sample (the agent's sampler had not seen it yet); were they from a
    # sampler round, they move at its next one (the agent samples every 10 s).
    first = series["container_cpu_usage_seconds_total", burner.name, ""]
    deadline = time.monotonic() + 15
    while True:
        await asyncio.sleep(0.5)
        again = _series(_scrape(agent, Authorization=f"Bearer {agent.token}").text)
        # A scrape may lack the series when the burner's stats did not answer in the
        # scrape's time limit (a loaded machine): the next one is asked again.
        if again.get(("container_cpu_usage_seconds_total", burner.name, ""), 0) > first:
            break
        assert time.monotonic() < deadline, "the CPU counter did not move"
