"""``ghostpanel agent``'s authentication, on a real agent process and the session engine.

Tokens good, revoked, missing and wrong; a refused request never reaches the engine
(a container create without a valid token leaves no container); failed attempts
rate-limited per peer; WebSocket handshakes refused the same way; the agent's own
errors are RFC 9457 problems.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.engine import Environment, NotFound
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def _is_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


def _create(http: httpx.Client, name: str) -> httpx.Response:
    return http.post("/engine/containers/create", params={"name": name},
                     json={"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "300"]})


async def _assert_no_container(env: Environment, name: str) -> None:
    with pytest.raises(NotFound):
        await env.containers.get(name)


def test_a_good_token_reaches_the_api(agent: RunningAgent) -> None:
    with agent.client() as http:
        health = http.get("/api/v1/health")
        assert health.status_code == 200, health.text
        assert health.json() == {"status": "ok", "engine": agent.engine_url}
        info = http.get("/api/v1/info").json()
    assert info["engine"]["kind"] == "podman" and info["engine"]["version"]
    assert info["engine"]["url"] == agent.engine_url
    assert info["agent"]["version"] and info["agent"]["uptime_seconds"] >= 0
    assert info["agent"]["url"] == agent.url
    assert info["host"]["hostname"] == socket.gethostname()


@pytest.mark.parametrize("authorization", [None, "Bearer gpa_not-a-token",
                                           "Basic dXNlcjpwYXNz", "Bearer"])
async def test_no_or_wrong_credentials_get_401_and_no_engine_call(
        agent: RunningAgent, env: Environment, authorization: str | None) -> None:
    name = f"gp-agent-refused-{uuid.uuid4().hex[:8]}"
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=agent.url, verify=agent.ssl_context(), headers=headers,
                      timeout=10) as http:
        refused = _create(http, name)
    problem = _is_problem(refused, 401)
    assert refused.headers["www-authenticate"].startswith('Bearer realm="ghostpanel"')
    assert "authentication required" in str(problem["detail"])
    await _assert_no_container(env, name)


async def test_a_revoked_token_fails_on_its_next_request(agent: RunningAgent,
                                                         env: Environment) -> None:
    token = agent.create_token("short-lived")
    name = f"gp-agent-revoked-{uuid.uuid4().hex[:8]}"
    with agent.client(token=token) as http:
        assert http.get("/api/v1/health").status_code == 200
        agent.revoke_token("short-lived")
        # The same kept-alive connection: nothing may be cached per connection either.
        refused = _create(http, name)
        _is_problem(refused, 401)
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    await _assert_no_container(env, name)
    with agent.client() as http:  # the fixture's own token still works
        assert http.get("/api/v1/health").status_code == 200


def test_failed_attempts_are_rate_limited_per_peer(agent: RunningAgent) -> None:
    with agent.client(token="gpa_wrong") as wrong, agent.client() as good:
        statuses = [wrong.get("/api/v1/health").status_code for _ in range(10)]
        assert statuses == [401] * 10
        limited = wrong.get("/api/v1/health")
        problem = _is_problem(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "too many failed authentications" in str(problem["detail"])
        # Locked out means not even checked: a good token from that peer waits too,
        # else the lockout would still answer "right" or "wrong" to a guesser.
        _is_problem(good.get("/api/v1/health"), 429)
    assert "authentication failed from 127.0.0.1" in agent.log()
    assert "refused for 60 s after 10 failed authentications" in agent.log()


def test_a_websocket_handshake_without_token_is_refused(agent: RunningAgent) -> None:
    context = agent.ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 401"), answer


def test_unknown_api_route_is_a_404_problem(agent: RunningAgent) -> None:
    with agent.client() as http:
        problem = _is_problem(http.get("/api/v1/no-such-thing"), 404)
        assert problem["detail"] == "no route GET /api/v1/no-such-thing"
        _is_problem(http.delete("/api/v1/health"), 405)


def test_engine_down_is_a_502_problem_naming_the_socket(
        agent_factory: Callable[..., RunningAgent], tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/no-engine.sock"
    running = agent_factory(engine_url=missing)
    with running.client() as http:
        problem = _is_problem(http.get("/api/v1/info"), 502)
        assert f"{tmp_path}/no-engine.sock" in str(problem["detail"])
        assert problem["engine"] == missing
        # The agent itself keeps serving.
        _is_problem(http.get("/api/v1/health"), 502)
