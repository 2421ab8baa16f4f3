"""The QUIC networking policy on a real agent: peers refused by address on HTTPS and
HTTP/3 alike, applied without a restart, kept across one.

All of 127.0.0.0/8 is loopback on Linux: the agent listens on 127.0.0.1, the policy
allows 127.0.0.2/32, and clients send from 127.0.0.1 (refused) or 127.0.0.2 (let in).
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from ghostpanel_kernel.engine import Endpoint, TLSConfig
from ghostpanel_kernel.engine._h3_transport import H3Transport
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401

pytestmark = pytest.mark.integration

POLICY = "/api/v1/network/quic"
ALLOWED = "127.0.0.2"


def _https(agent: RunningAgent, source: str) -> httpx.Client:
    return httpx.Client(base_url=agent.url, headers=agent.headers, timeout=10,
                        transport=httpx.HTTPTransport(verify=agent.ssl_context(),
                                                      local_address=source))


async def _h3_get(agent: RunningAgent, source: str, path: str) -> tuple[int, str, bool]:
    """GET ``path`` over HTTP/3 from ``source``: status, body, whether it stayed on
    HTTP/3 (no fallback to HTTPS)."""
    endpoint = Endpoint.parse(f"h3://127.0.0.1:{agent.port}",
                              tls=TLSConfig(ca_cert=os.fspath(agent.ca_cert)))
    transport = H3Transport(endpoint, local_address=source)
    async with httpx.AsyncClient(transport=transport, base_url="https://agent",
                                 headers=agent.headers, timeout=10) as client:
        answer = await client.get(path)
        on_h3 = transport._fallback is None  # the transport keeps its HTTPS fallback here
        return answer.status_code, answer.text, on_h3


def _wait_for_log(agent: RunningAgent, text: str) -> str:
    deadline = time.monotonic() + 5
    while text not in agent.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return agent.log()


async def test_peers_outside_the_policy_are_refused_on_https_and_http3(
        agent: RunningAgent) -> None:
    body = {"cluster_id": "lab", "endpoints": [f"{ALLOWED}/32"], "encryption": True}
    with _https(agent, "127.0.0.1") as outside, _https(agent, ALLOWED) as inside:
        assert outside.get("/_ping").status_code == 200  # no policy: every peer
        assert outside.post(POLICY, json=body).status_code == 409  # would lock us out
        assert outside.post(POLICY, json={**body, "encryption": False}).status_code == 422
        set_answer = inside.post(POLICY, json=body)
        assert set_answer.status_code == 200, set_answer.text

        # Applied without a restart, before authentication, on every path.
        refused = outside.get("/api/v1/health")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert outside.get("/containers/json", headers={"Authorization": ""}
                           ).status_code == 403
        assert inside.get("/api/v1/health").status_code == 200
        assert inside.get("/containers/json").status_code == 200

    status, text, on_h3 = await _h3_get(agent, "127.0.0.1", "/api/v1/health")
    assert (status, on_h3) == (403, True), text
    status, text, on_h3 = await _h3_get(agent, ALLOWED, "/api/v1/health")
    assert (status, on_h3) == (200, True), text
    log = _wait_for_log(agent, "over HTTP/3")
    assert "refused GET /api/v1/health from 127.0.0.1 over https" in log
    assert "from 127.0.0.1 over HTTP/3" in log

    # Kept across a restart; removing it lets every peer in again, at once.
    agent.restart()
    with _https(agent, "127.0.0.1") as outside, _https(agent, ALLOWED) as inside:
        assert outside.get("/_ping").status_code == 403
        kept = inside.get(POLICY).json()
        assert kept["endpoints"] == [f"{ALLOWED}/32"] and kept["enforced"] is True
        assert inside.delete(POLICY).json()["removed"] is True
        assert outside.get("/_ping").status_code == 200
    status, _, _ = await _h3_get(agent, "127.0.0.1", "/_ping")
    assert status == 200


def test_a_boltfile_quic_fabric_sets_the_policy(agent: RunningAgent) -> None:
    boltfile = agent.home / "Boltfile.toml"
    boltfile.write_text('project = "fabric"\n\n[quic_fabric]\nenabled = true\n'
                        'encryption = true\nallowed_endpoints = ["127.0.0.0/30"]\n\n'
                        '[services.web]\nimage = "nginx"\n', encoding="utf-8")
    with _https(agent, "127.0.0.1") as first, _https(agent, "127.0.0.5") as outside:
        answer = first.post(POLICY, json={"path": str(boltfile)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["cluster_id"] == "fabric"
        assert answer.json()["source"] == f"boltfile {boltfile}"
        assert outside.get("/_ping").status_code == 403
        assert first.get("/_ping").status_code == 200
        assert first.delete(POLICY).status_code == 200
