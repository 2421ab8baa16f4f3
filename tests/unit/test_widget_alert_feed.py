"""``AlertFeed`` without a browser: over this machine's alert state file (a real
:class:`AlertState` in a temporary folder) and over an agent's ``/api/v1/alerts``
(a MockTransport standing in for the agent): rows and their order, acknowledge,
silence, live refresh, and errors in the status line."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import AlertFeed
from traitlets import TraitError

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics._alert_builtin import Finding
from ghostpanel_kernel.metrics._alert_client import (
    AgentAlertClient,
    LocalAlertClient,
    alert_client_for,
)
from ghostpanel_kernel.metrics._alert_rules import predicate_rule
from ghostpanel_kernel.metrics._alert_state import AlertState

RULES = [predicate_rule("web-leak", lambda frame: [], severity="critical"),
         predicate_rule("busy", lambda frame: [], severity="warning"),
         predicate_rule("crash-loop", lambda frame: [], severity="critical")]


def _round(state: AlertState, found: dict[str, list[str]], now: float,
           environment: str = "lab") -> None:
    state.apply(RULES, environment,
                {rule: [Finding(name, 1.0, f"{name} trips {rule}") for name in names]
                 for rule, names in found.items()}, now)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A metrics folder whose alert state holds: web-leak firing on web, busy firing on
    db, crash-loop resolved on job (all rules have ``for`` 0, so they fire at once)."""
    state = AlertState(tmp_path / "alerts.sqlite3")
    now = time.time()
    _round(state, {"web-leak": ["web"], "busy": ["db"], "crash-loop": ["job"]}, now - 60)
    _round(state, {"web-leak": ["web"], "busy": ["db"]}, now - 30)
    _round(state, {"busy": ["other"]}, now - 30, environment="prod")
    state.close()
    yield tmp_path


async def _open(widgets: list[Any], source: Any, **options: Any) -> AlertFeed:
    options.setdefault("live", False)
    feed = AlertFeed(source, **options)
    widgets.append(feed)
    await feed.wait_idle()
    return feed


async def test_active_alerts_first_critical_before_warning_then_resolved(
        folder: Path, widgets: list[Any]) -> None:
    feed = await _open(widgets, LocalAlertClient(folder, environment="lab"))
    assert feed.status.message == ""
    frame = feed.frame
    assert list(frame.columns) == ["severity", "state", "rule", "container", "environment",
                                   "since", "message", "acked", "silenced"]
    assert list(frame["rule"]) == ["web-leak", "busy", "crash-loop"]
    assert list(frame["state"]) == ["firing", "firing", "resolved"]
    assert frame["severity"][0].endswith("critical")
    assert set(frame["environment"]) == {"lab"}  # prod's alert is not this feed's
    assert (feed.active_count, feed.firing_count) == (2, 2)
    assert "2 firing" in feed.summary.value and "1 resolved" in feed.summary.value
    feed.show_resolved = False
    assert list(feed.frame["rule"]) == ["web-leak", "busy"]
    labels = [label for label, _ in feed.picker.options]
    assert labels[0].endswith("web-leak on web (firing)") and len(labels) == 2


async def test_acknowledge_marks_the_alert_in_the_store(folder: Path,
                                                        widgets: list[Any]) -> None:
    feed = await _open(widgets, LocalAlertClient(folder, environment="lab"))
    web = next(a for a in feed.active if a["container"] == "web")
    assert feed.picker.value == web["id"]  # the most urgent, picked for the user
    feed.ack_button.click()
    await feed.wait_idle()
    assert feed.status.level == "success", feed.status.message
    state = AlertState(folder / "alerts.sqlite3")
    try:
        stored = state.alert(web["id"])
    finally:
        state.close()
    assert stored is not None and stored["acked"] and stored["acked_by"]
    assert feed.frame.loc[feed.frame["container"] == "web", "acked"].item() != ""


async def test_silence_holds_back_that_rule_on_that_container(folder: Path,
                                                              widgets: list[Any]) -> None:
    feed = await _open(widgets, LocalAlertClient(folder, environment="lab"))
    db = next(a for a in feed.active if a["container"] == "db")
    feed.picker.value = db["id"]
    feed.silence_duration = "4h"
    feed.silence_button.click()
    await feed.wait_idle()
    assert feed.status.level == "success", feed.status.message
    silenced = dict(zip(feed.frame["container"], feed.frame["silenced"], strict=True))
    assert silenced == {"db": "yes", "web": "", "job": ""}
    state = AlertState(folder / "alerts.sqlite3")
    try:
        (silence,) = state.silences(now=time.time())
    finally:
        state.close()
    assert silence.matchers == {"alertname": "busy", "container": "db", "environment": "lab"}
    assert 4 * 3600 - 60 < silence.ends_at - time.time() <= 4 * 3600
    with pytest.raises(TraitError, match="silence_duration"):
        feed.silence_duration = "forever"


async def test_live_reads_a_new_alert_from_the_file(folder: Path,
                                                    widgets: list[Any]) -> None:
    feed = await _open(widgets, LocalAlertClient(folder, environment="lab"), live=True,
                       refresh_interval=0.05)
    assert feed.active_count == 2
    state = AlertState(folder / "alerts.sqlite3")
    try:
        _round(state, {"web-leak": ["web"], "busy": ["db"], "crash-loop": ["api"]},
               time.time())
    finally:
        state.close()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if feed.active_count == 3:
            break
    assert feed.active_count == 3 and "api" in set(feed.frame["container"])
    feed.live = False
    assert feed._live_task is None


class FakeAgent:
    """An agent's alert routes with one firing alert; records what it is asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.alert = {"id": 7, "rule": "web-leak", "kind": "memory_growth",
                      "container": "web", "environment": "local", "severity": "critical",
                      "state": "firing", "message": "web grows 60 MiB/h",
                      "started_at": "2026-12-07T22:00:00.000Z",
                      "fired_at": "2026-12-07T22:05:00.000Z", "resolved_at": None,
                      "acked": False, "acked_by": None, "silenced": False}
        self.seq = 3

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path == "/api/v1/alerts":
            return httpx.Response(200, json={"enabled": True, "environment": "local",
                                             "seq": self.seq, "alerts": [self.alert],
                                             "silences": []})
        if request.method == "POST" and path == "/api/v1/alerts/7/ack":
            self.alert = {**self.alert, "acked": True, "acked_by": "nb"}
            self.seq += 1
            return httpx.Response(200, json=self.alert)
        if request.method == "POST" and path == "/api/v1/alerts/silences":
            return httpx.Response(201, json={"id": "s1", **json.loads(request.content)})
        return httpx.Response(404, json={"message": f"no route {path}"})


def _agent(fake: Any) -> Environment:
    return Environment("https://edge.test:9443", name="edge", token="tok",
                       transport=httpx.MockTransport(fake))


async def test_over_an_agent_acknowledge_and_silence_use_its_routes(
        widgets: list[Any]) -> None:
    fake = FakeAgent()
    env = _agent(fake)
    assert isinstance(alert_client_for(env), AgentAlertClient)
    feed = await _open(widgets, env)
    assert list(feed.frame["rule"]) == ["web-leak"] and feed.seq == 3
    assert await feed.acknowledge(7) is not None
    assert fake.requests[-2].url.path == "/api/v1/alerts/7/ack"
    assert feed.frame["acked"].item() == "nb"
    silence = await feed.silence(feed.active[0], "15m")
    sent = json.loads(fake.requests[-2].content)
    assert sent["matchers"] == {"alertname": "web-leak", "container": "web",
                                "environment": "local"}
    assert sent["duration"] == "15m" and silence is not None and silence["id"] == "s1"
    assert all(r.headers["authorization"] == "Bearer tok" for r in fake.requests)


async def test_the_agent_s_long_poll_carries_the_last_seq(widgets: list[Any]) -> None:
    fake = FakeAgent()
    feed = await _open(widgets, _agent(fake))
    await feed.refresh(wait=5)
    assert fake.requests[-1].url.params["after"] == "3"
    assert fake.requests[-1].url.params["wait"] == "5"


async def test_an_agent_without_rules_and_a_failing_agent_say_so(
        widgets: list[Any]) -> None:
    def no_rules(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"enabled": False, "seq": 0, "alerts": [],
                                         "silences": []})

    feed = await _open(widgets, _agent(no_rules))
    assert feed.status.level == "warning" and "--alert-rules" in feed.status.message
    assert feed.ack_button.disabled and feed.silence_button.disabled
    assert feed.picker.value is None
    await feed._ack_selected()
    assert "Pick an active alert" in feed.status.message

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"message": "alert state is locked"})

    failing = await _open(widgets, _agent(broken))
    assert failing.status.level == "error"
    assert "alert state is locked" in failing.status.message


async def test_a_missing_alert_is_an_error_in_the_status_line(folder: Path,
                                                              widgets: list[Any]) -> None:
    feed = await _open(widgets, LocalAlertClient(folder, environment="prod"))
    assert list(feed.frame["container"]) == ["other"]
    lab_alert = LocalAlertClient(folder, environment="lab")
    try:
        lab_id = (await lab_alert.read()).alerts[0]["id"]
    finally:
        await lab_alert.aclose()
    assert await feed.acknowledge(lab_id) is None  # another environment's alert
    assert feed.status.level == "error" and f"no alert {lab_id}" in feed.status.message
