"""Alerts in a real agent process (``ghostpanel agent --alert-rules``) on real Podman:
a failed container's alert is served at ``/api/v1/alerts`` (long poll), sent to the
webhook and the audit log once, acknowledged, silenced, kept over an agent restart
without a second notification, and resolved when the container goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.gateway._audit import AuditLog
from ghostpanel_kernel.store import open_database
from tests.agent_process import RunningAgent, agent_factory_fixture  # noqa: F401
from tests.integration.alert_hook import Hook, hook_fixture  # noqa: F401
from tests.integration.conftest import MakeContainer, unique

pytestmark = pytest.mark.integration


def _wait_for(http: httpx.Client, done: Callable[[dict[str, Any]], bool],
              limit: float = 20.0) -> dict[str, Any]:
    """Long-poll ``/api/v1/alerts`` until ``done(listing)`` or ``limit`` seconds."""
    deadline = time.monotonic() + limit
    listing = http.get("/api/v1/alerts").json()
    while not done(listing) and time.monotonic() < deadline:
        listing = http.get("/api/v1/alerts", params={"after": listing["seq"], "wait": 5},
                           timeout=15).json()
    return listing


def _firing(listing: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in listing["alerts"] if a["state"] == "firing"]


async def test_agent_serves_delivers_and_keeps_alerts(
        agent_factory: Callable[..., RunningAgent], make_container: MakeContainer,
        hook: Hook, tmp_path: Path) -> None:
    prefix = unique("gp-alerta")
    failed = await make_container(name=f"{prefix}-job", command=["sh", "-c", "exit 2"])
    await failed.start()
    await failed.wait()
    rules = tmp_path / "alerts.toml"
    rules.write_text(f'''webhook = "{hook.url}"
[[rules]]
name = "job-down"
kind = "down"
containers = ["{prefix}-*"]
severity = "critical"
''')
    agent = agent_factory(extra_args=("--metrics-interval", "0.3", "--alert-rules",
                                      str(rules)))
    with agent.client() as http:
        listing = _wait_for(http, lambda found: bool(_firing(found)))
        [alert] = _firing(listing)
        assert (alert["rule"], alert["container"], alert["value"]) == (
            "job-down", failed.name, 2.0)
        for _ in range(50):  # the webhook is told in the background
            if hook.notified():
                break
            await asyncio.sleep(0.1)
        assert hook.notified() == [("firing", "job-down", failed.name)]

        acked = http.post(f"/api/v1/alerts/{alert['id']}/ack", json={"by": "ada"})
        assert acked.status_code == 200 and acked.json()["acked_by"] == "ada"
        silence = http.post("/api/v1/alerts/silences", json={
            "matchers": {"alertname": "job-*"}, "duration": "1h"}).json()
        assert _firing(http.get("/api/v1/alerts").json())[0]["silenced"]
        assert http.delete(f"/api/v1/alerts/silences/{silence['id']}").status_code == 204

    agent.restart()  # the state is on disk: still firing, still acked, not re-sent
    with agent.client() as http:
        await asyncio.sleep(1.0)  # three sampling rounds
        [again] = _firing(http.get("/api/v1/alerts").json())
        assert again["id"] == alert["id"] and again["acked"]
        await failed.remove(force=True)
        listing = _wait_for(http, lambda found: not _firing(found))
        assert [a["state"] for a in listing["alerts"]] == ["resolved"]
    for _ in range(50):
        if len(hook.notified()) == 2:
            break
        await asyncio.sleep(0.1)
    assert hook.notified() == [("firing", "job-down", failed.name),
                               ("resolved", "job-down", failed.name)]

    wanted = [("alerts", "alert.firing", failed.name),
              ("alerts", "alert.resolved", failed.name)]
    deadline = time.monotonic() + 10
    while (actions := _audited(agent)) != wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # the audit row is written beside the webhook call
    assert actions == wanted


def _audited(agent: RunningAgent) -> list[tuple[str, str, str | None]]:
    engine = open_database(f"sqlite:///{agent.home / 'ghostpanel.db'}")
    try:
        return [(e.user, e.action, e.target) for e in AuditLog(engine).entries()
                if e.user == "alerts"]
    finally:
        engine.dispose()
