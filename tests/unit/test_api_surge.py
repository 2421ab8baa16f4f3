"""The Surge routes' request handling and streaming, without a real engine.

What a real Podman engine must show (apply, deploy, lock, rollback on disconnect, the
per-container route) is in tests/integration/test_api_surge.py; here: bodies and
options, the problem answers, and the NDJSON stream's own rules (the status waits for
the first step; a client that goes away cancels the run and waits for its unwinding).
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.server import _surge_stream
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings
from ghostpanel_kernel.server._surge_stream import start_streamed
from ghostpanel_kernel.surge import (
    LABEL_PROJECT,
    LABEL_SERVICE,
    LockHolder,
    ProjectLocked,
    SurgePlan,
    SurgeProgress,
    SurgeResult,
)
from tests.unit.fake_engine import WEB_INSPECT, FakeEngine, env_for, json_answer, web_engine

TOML = {"Content-Type": "application/toml"}
GOOD = 'project = "shop"\n\n[services.web]\nimage = "nginx"\n'


def _client(tmp_path: Path, engine: FakeEngine | None = None) -> httpx.AsyncClient:
    app = api_app()
    app.state.settings = AgentSettings(engine_url="unix:///nowhere.sock", home=tmp_path)
    # No route answers: the engine is there, and every call it gets is a 404.
    app.state.engine = env_for(engine or FakeEngine(), name="agent")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://agent")


async def test_a_boltfile_that_is_not_toml_is_422_with_line_and_column(
        tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for route in ("plan", "apply", "deploy", "destroy"):
            answer = await client.post(f"/api/v1/surge/{route}",
                                       content='project = "shop"\n[services.web\n',
                                       headers=TOML)
            assert answer.status_code == 422, (route, answer.text)
            problem = answer.json()
            assert answer.headers["content-type"] == "application/problem+json"
            assert (problem["path"], problem["line"]) == ("<request body>", 2)
            assert problem["column"] is not None


async def test_an_invalid_boltfile_is_422_with_the_validator_diagnostics(
        tmp_path: Path) -> None:
    bad = 'project = "shop"\n\n[services.web]\nimage = "nginx"\nports = ["70000:80"]\n'
    async with _client(tmp_path) as client:
        for route in ("plan", "apply"):
            answer = await client.post(f"/api/v1/surge/{route}", content=bad, headers=TOML)
            assert answer.status_code == 422, answer.text
            diagnostics = answer.json()["diagnostics"]
            assert diagnostics and diagnostics[0]["line"] == 5
            assert diagnostics[0]["key"] == "services.web.ports"
            assert diagnostics[0]["hint"]


@pytest.mark.parametrize(("kwargs", "status", "words"), [
    ({"content": GOOD, "headers": {"Content-Type": "text/plain"}}, 415, "text/plain"),
    ({"json": {"boltfile": GOOD, "path": "/x"}}, 422, "exactly one"),
    ({"json": {"path": "Boltfile.toml"}}, 422, "absolute path"),
    ({"json": {"path": "/nonexistent/Boltfile.toml"}}, 422, "no Boltfile at"),
    ({"json": {"boltfile": GOOD, "pul": True}}, 422, "unknown option `pul`"),
    ({"json": {"boltfile": GOOD, "stop_timeout": -1}}, 422, "stop_timeout"),
    ({"content": GOOD, "headers": TOML, "params": {"pull": "maybe"}}, 422, "`pull`"),
    ({"json": {"boltfile": GOOD, "service": "web"}}, 422, "`pull` cannot go with"),
    ({"json": {"boltfile": GOOD, "service": "db", "pull": False}}, 422, "no service 'db'"),
    ({}, 422, "send the Boltfile"),
])
async def test_bad_requests_are_refused_with_a_problem(
        tmp_path: Path, kwargs: dict[str, Any], status: int, words: str) -> None:
    async with _client(tmp_path) as client:
        answer = await client.post("/api/v1/surge/deploy", **kwargs)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["detail"]


async def test_status_takes_a_path_in_the_query(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text('project = "shop"\n[services.web\n')
    async with _client(tmp_path) as client:
        answer = await client.get("/api/v1/surge/status", params={"path": str(path)})
        assert answer.status_code == 422
        assert answer.json()["path"] == str(path)


async def test_the_per_container_route_needs_a_surge_container(tmp_path: Path) -> None:
    labelled = copy.deepcopy(WEB_INSPECT)
    labelled["Config"]["Labels"] = {LABEL_PROJECT: "other", LABEL_SERVICE: "web"}
    engine = web_engine({("GET", "/containers/surged/json"): json_answer(labelled)})
    async with _client(tmp_path, engine) as client:
        missing = await client.post("/api/v1/containers/ghost/surge", content=GOOD,
                                    headers=TOML)
        assert missing.status_code == 404
        plain = await client.post("/api/v1/containers/web/surge", content=GOOD, headers=TOML)
        assert plain.status_code == 409 and "not managed by Surge" in plain.json()["detail"]
        other = await client.post("/api/v1/containers/surged/surge", content=GOOD,
                                  headers=TOML)
        assert other.status_code == 409
        assert "belongs to project 'other'" in other.json()["detail"]


# -- the NDJSON stream -----------------------------------------------------------------


class _Client:
    """A raw ASGI client: collects what is sent; disconnects after ``lines`` lines."""

    def __init__(self, lines: int | None) -> None:
        self.lines = lines
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        body = b"".join(m.get("body", b"") for m in self.sent)
        if self.lines is not None and body.count(b"\n") >= self.lines:
            self.gone.set()

    def body_lines(self) -> list[dict[str, Any]]:
        body = b"".join(m.get("body", b"") for m in self.sent)
        return [json.loads(line) for line in body.splitlines()]


def _result(**kwargs: Any) -> SurgeResult:
    return SurgeResult("shop", SurgePlan("shop", ()), {"agent": "applied"}, **kwargs)


async def test_lines_are_sent_as_steps_happen_and_end_with_the_result() -> None:
    step = asyncio.Event()

    async def operation(progress: Any, on_cancel: Any) -> SurgeResult:
        progress(SurgeProgress(1, 2, "agent", "created shop_web"))
        await step.wait()
        progress(SurgeProgress(2, 2, "agent", "started shop_web"))
        return _result()

    response = await start_streamed(operation, "apply")
    client = _Client(None)
    serving = asyncio.ensure_future(response({"type": "http"}, client.receive, client.send))
    while not client.body_lines():
        await asyncio.sleep(0.01)
    # The first line is out before the operation goes on: nothing is buffered.
    assert client.sent[0]["status"] == 200
    headers = dict(client.sent[0]["headers"])
    assert headers[b"content-type"] == b"application/x-ndjson"
    assert b"content-length" not in headers  # streamed: the length is not known
    assert client.body_lines() == [{"type": "progress", "step": 1, "total": 2,
                                    "environment": "agent", "message": "created shop_web"}]
    step.set()
    await serving
    lines = client.body_lines()
    assert [line["type"] for line in lines] == ["progress", "progress", "result"]
    assert lines[-1]["ok"] is True and client.sent[-1]["more_body"] is False


async def test_a_client_that_goes_away_cancels_the_run_and_waits_for_its_rollback() -> None:
    unwound: list[str] = []

    async def operation(progress: Any, on_cancel: Any) -> SurgeResult:
        progress(SurgeProgress(1, 3, "agent", "created shop_web"))
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # a rollback takes engine calls
            unwound.append("rolled back")
            on_cancel(_result(rolled_back=True, cancelled=True))
            raise
        return _result()

    response = await start_streamed(operation, "apply")
    client = _Client(1)
    await asyncio.wait_for(response({"type": "http"}, client.receive, client.send), 5)
    assert unwound == ["rolled back"]  # done before the response returned
    assert len(client.body_lines()) == 1


async def test_a_held_lock_is_a_409_problem_not_a_stream() -> None:
    locked = ProjectLocked("agent", "shop", LockHolder("ci-7", 42, None, "apply", "r"), None)

    async def operation(progress: Any, on_cancel: Any) -> SurgeResult:
        return SurgeResult("shop", SurgePlan("shop", ()), {"agent": "failed"},
                           errors={"agent": locked})

    response = await start_streamed(operation, "apply")
    assert response.status_code == 409
    problem = json.loads(bytes(response.body))
    assert "pid 42 on ci-7" in problem["detail"] and problem["project"] == "shop"


async def test_an_unreachable_engine_ends_the_stream_with_a_failed_result(
        tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        # The fake engine answers 404 to everything: the lock cannot be taken.
        answer = await client.post("/api/v1/surge/apply", content=GOOD, headers=TOML)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in answer.text.splitlines()]
        assert lines[-1]["type"] == "result" and lines[-1]["ok"] is False
        assert lines[-1]["errors"]["agent"]


async def test_a_slow_first_step_gets_the_stream_going_with_heartbeats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A pull or a health wait must not leave the client without headers, nor without
    # bytes for longer than its read timeout (which would cancel the run).
    monkeypatch.setattr(_surge_stream, "FIRST_LINE_WAIT", 0.05)
    monkeypatch.setattr(_surge_stream, "HEARTBEAT", 0.05)

    async def operation(progress: Any, on_cancel: Any) -> SurgeResult:
        await asyncio.sleep(0.3)
        progress(SurgeProgress(1, 1, "agent", "pulled busybox"))
        return _result()

    response = await start_streamed(operation, "deploy")
    assert response.status_code == 200
    client = _Client(None)
    await asyncio.wait_for(response({"type": "http"}, client.receive, client.send), 5)
    types = [line["type"] for line in client.body_lines()]
    assert types[0] == "heartbeat" and types.count("heartbeat") >= 2, types
    assert types[-2:] == ["progress", "result"]


async def test_the_agent_stop_cancels_the_runs_and_waits_for_their_rollback() -> None:
    # Even a run whose request is no longer waiting for it (its handler ended) is
    # unwound before the agent closes the engine connection a rollback needs.
    unwound: list[str] = []

    async def operation(progress: Any, on_cancel: Any) -> SurgeResult:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            unwound.append("rolled back")
            raise
        return _result()

    run = _surge_stream.SurgeRun(operation, "apply")
    await asyncio.sleep(0)
    await _surge_stream.unwind_runs(timeout=5)
    assert unwound == ["rolled back"] and run.task.cancelled()
    await _surge_stream.unwind_runs(timeout=5)  # nothing left: returns at once


SNAPSHOTTING = GOOD + ('volumes = ["data:/srv"]\n\n[snapshots]\nenabled = true\n\n'
                       '[snapshots.triggers]\nbefore_surge_up = true\n')


@pytest.mark.parametrize(("boltfile", "query", "hooked"), [
    (SNAPSHOTTING, "", True),                 # the file asks: snapshots first, as the CLI
    (SNAPSHOTTING, "?snapshot=false", False),  # the API's --no-snapshot
    (GOOD, "", False),                         # the file does not ask
])
async def test_apply_takes_the_boltfile_s_before_surge_up_snapshots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boltfile: str, query: str,
        hooked: bool) -> None:
    from ghostpanel_kernel.server import _routes_surge

    given: dict[str, Any] = {}

    async def recorded_apply(*args: Any, **kwargs: Any) -> Any:
        given.update(kwargs)
        raise RuntimeError("recorded, not applied")

    monkeypatch.setattr(_routes_surge, "apply_surge", recorded_apply)
    async with _client(tmp_path) as client:
        answer = await client.post(f"/api/v1/surge/apply{query}", content=boltfile,
                                   headers=TOML)
    assert "before_recreate" in given, answer.text
    assert (given["before_recreate"] is not None) is hooked
