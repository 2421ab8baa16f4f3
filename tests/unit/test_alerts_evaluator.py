"""The alert evaluator over a canned engine and a real metrics store, and the agent's
``/api/v1/alerts`` routes over it (through ASGI, no sockets)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.metrics._alert_rules import parse_rules
from ghostpanel_kernel.metrics._alert_state import Notification
from ghostpanel_kernel.metrics._alerts import AlertEvaluator
from ghostpanel_kernel.metrics._names import ContainerEvent
from ghostpanel_kernel.metrics._store import MetricsStore
from ghostpanel_kernel.server._api import api_app
from tests.unit.fake_engine import FakeEngine, env_for, json_answer

RULES = parse_rules({"rules": [
    {"name": "down", "kind": "down", "severity": "critical"},
    {"name": "loop", "kind": "restart_loop", "restarts": 2, "window": "1m", "for": "1s"}]})


def listing(name: str, state: str, status: str) -> dict[str, Any]:
    return {"Id": f"{name}-id", "Names": [f"/{name}"], "Image": "busybox", "State": state,
            "Status": status, "Labels": {}}


class Collect:
    """A delivery that keeps what it is given."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []

    async def deliver(self, environment: str, notes: Sequence[Notification]) -> None:
        self.notes.extend(notes)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[AlertEvaluator, list[Any], Collect]]:
    containers = [listing("web", "running", "Up 1 minute")]
    engine = FakeEngine(routes={("GET", "/containers/json"):
                                lambda request: json_answer(containers)(request)})
    env = env_for(engine)
    store = MetricsStore(tmp_path / "metrics")
    collect = Collect()
    evaluator = AlertEvaluator(env, store, RULES, deliveries=[collect], environment="e")
    yield evaluator, containers, collect
    await evaluator.aclose()
    await env.aclose()


async def test_rounds_fire_and_resolve_down_and_restart_loops(
        setup: tuple[AlertEvaluator, list[Any], Collect]) -> None:
    evaluator, containers, collect = setup
    now = time.time()
    assert await evaluator.evaluate(now) == []
    containers[0] = listing("web", "exited", "Exited (3) 1 second ago")
    fired = await evaluator.evaluate(now + 1)
    assert [(n.status, n.alert["rule"], n.alert["value"]) for n in fired] == [
        ("firing", "down", 3.0)]
    evaluator.store.write_events([ContainerEvent(now + d, "e", "web", "web-id", "die", 3,
                                                 None) for d in (0.5, 1.5)])
    containers[0] = listing("web", "running", "Up 1 second")
    notes = await evaluator.evaluate(now + 2)
    assert [(n.status, n.alert["rule"]) for n in notes] == [("resolved", "down")]
    assert [a["state"] for a in evaluator.state.alerts() if a["rule"] == "loop"] == [
        "pending"]
    notes = await evaluator.evaluate(now + 3.5)  # held for `for`: fires
    assert [(n.status, n.alert["rule"]) for n in notes] == [("firing", "loop")]
    await evaluator.flush()
    assert [n.alert["rule"] for n in collect.notes] == ["down", "down", "loop"]


async def test_a_failing_rule_keeps_its_alerts(tmp_path: Path) -> None:
    def boom(frame: Any) -> Any:
        raise RuntimeError("bad predicate")

    from ghostpanel_kernel.metrics._alert_rules import RuleSet, predicate_rule

    engine = FakeEngine(routes={("GET", "/containers/json"):
                                json_answer([listing("web", "running", "Up")])})
    env = env_for(engine)
    flaky = {"fail": False}

    def predicate(frame: Any) -> Any:
        if flaky["fail"]:
            boom(frame)
        return ["web"]

    evaluator = AlertEvaluator(env, MetricsStore(tmp_path), RuleSet(
        (predicate_rule("p", predicate),)), deliveries=[], environment="e")
    try:
        assert [n.status for n in await evaluator.evaluate()] == ["firing"]
        flaky["fail"] = True
        assert await evaluator.evaluate() == []  # not "resolved": the rule failed
        assert [a["state"] for a in evaluator.state.alerts()] == ["firing"]
    finally:
        await evaluator.aclose()
        await env.aclose()


@pytest.fixture
async def http(setup: tuple[AlertEvaluator, list[Any], Collect]
               ) -> AsyncIterator[httpx.AsyncClient]:
    app = api_app()
    app.state.alerts = setup[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://agent") as client:
        yield client


async def test_routes_list_ack_and_silence(
        setup: tuple[AlertEvaluator, list[Any], Collect], http: httpx.AsyncClient) -> None:
    evaluator, containers, _ = setup
    containers[0] = listing("web", "exited", "Exited (1) now")
    await evaluator.evaluate()
    listed = (await http.get("/api/v1/alerts")).json()
    assert listed["enabled"] and [a["state"] for a in listed["alerts"]] == ["firing"]
    alert_id = listed["alerts"][0]["id"]
    acked = await http.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "ada"})
    assert acked.status_code == 200 and acked.json()["acked_by"] == "ada"
    assert (await http.post("/api/v1/alerts/999/ack")).status_code == 404
    assert (await http.post("/api/v1/alerts/abc/ack")).status_code == 404
    made = await http.post("/api/v1/alerts/silences",
                           json={"matchers": {"container": "web*"}, "duration": "1h"})
    assert made.status_code == 201
    silence = made.json()
    shown = (await http.get("/api/v1/alerts")).json()["alerts"][0]
    assert shown["silenced_by"] == [silence["id"]] and shown["acked"]
    assert [s["id"] for s in (await http.get("/api/v1/alerts/silences")).json()[
        "silences"]] == [silence["id"]]
    assert (await http.delete(f"/api/v1/alerts/silences/{silence['id']}")).status_code == 204
    assert (await http.delete(f"/api/v1/alerts/silences/{silence['id']}")).status_code == 404
    rules = (await http.get("/api/v1/alerts/rules")).json()["rules"]
    assert [r["name"] for r in rules] == ["down", "loop"]


@pytest.mark.parametrize("body", [
    {}, {"matchers": {}}, {"matchers": {"a": 1}, "duration": "1h"},
    {"matchers": {"a": "b"}}, {"matchers": {"a": "b"}, "duration": "soon"},
    {"matchers": {"a": "b"}, "ends_at": "2000-01-01T00:00:00Z"},
    {"matchers": {"a": "b"}, "duration": "1h", "extra": 1}])
async def test_bad_silences_are_a_422(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await http.post("/api/v1/alerts/silences", json=body)).status_code == 422


async def test_long_poll_answers_on_a_change(
        setup: tuple[AlertEvaluator, list[Any], Collect], http: httpx.AsyncClient) -> None:
    evaluator, containers, _ = setup
    seq = (await http.get("/api/v1/alerts")).json()["seq"]
    waiting = asyncio.create_task(http.get(f"/api/v1/alerts?after={seq}&wait=20"))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    containers[0] = listing("web", "exited", "Exited (1) now")
    started = time.monotonic()
    await evaluator.evaluate()
    answer = (await waiting).json()
    assert time.monotonic() - started < 5 and answer["seq"] > seq
    assert [a["rule"] for a in answer["alerts"]] == ["down"]


async def test_routes_without_rules() -> None:
    app = api_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://agent") as client:
        assert (await client.get("/api/v1/alerts")).json()["enabled"] is False
        answer = await client.post("/api/v1/alerts/silences",
                                   json={"matchers": {"a": "b"}, "duration": "1h"})
        assert answer.status_code == 409


def test_an_agent_with_rules_loads_no_heavy_library(tmp_path: Path) -> None:
    # Rules that need no pandas keep the agent within its idle memory budget.
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "d"\nkind = "down"\n')
    code = (
        "import sys, asyncio, pathlib\n"
        "from ghostpanel_kernel.server._app import create_app\n"
        "from ghostpanel_kernel.server._settings import AgentSettings\n"
        f"home = pathlib.Path({str(tmp_path)!r})\n"
        "settings = AgentSettings(engine_url=f'unix://{home}/engine.sock', "
        "listen='127.0.0.1:9', home=home, alert_rules=home / 'rules.toml', "
        "alert_interval=0.05)\n"
        "async def main():\n"
        "    app = create_app(settings)\n"
        "    await app.startup()\n"
        "    assert app.api.state.alerts is not None\n"
        "    await asyncio.sleep(0.2)\n"  # a few rounds (the engine is absent: logged)
        "    await app.shutdown()\n"
        "asyncio.run(main())\n"
        "print(sorted(n for n in ('pandas', 'sqlalchemy', 'pyarrow', 'duckdb') "
        "if n in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "[]"


async def test_volume_sizes_come_from_system_df_and_statvfs(tmp_path: Path) -> None:
    volumes = [{"Name": "data", "Mountpoint": str(tmp_path), "UsageData": {"Size": 5000}},
               {"Name": "logs", "Mountpoint": "/nonexistent", "UsageData": {"Size": 10}}]
    engine = FakeEngine(routes={("GET", "/containers/json"): json_answer([]),
                                ("GET", "/system/df"): json_answer({"Volumes": volumes})})
    env = env_for(engine)
    rules = parse_rules({"rules": [
        {"name": "big", "kind": "disk_filling", "max_bytes": 4000},
        # Any real filesystem is fuller than this: only a volume whose filesystem the
        # agent can see (statvfs of its mount point) can match a fraction.
        {"name": "fs", "kind": "disk_filling", "fraction": 1e-12}]})
    evaluator = AlertEvaluator(env, MetricsStore(tmp_path / "m"), rules, deliveries=[],
                               environment="e")
    try:
        notes = await evaluator.evaluate()
        assert sorted((n.alert["rule"], n.alert["container"]) for n in notes) == [
            ("big", "volume:data"), ("fs", "volume:data")]
    finally:
        await evaluator.aclose()
        await env.aclose()
