"""The QUIC networking policy: parsing, the stored file, and its enforcement in the app.

In-process (httpx.ASGITransport with a chosen peer address); the real listeners, HTTPS
and HTTP/3 from two loopback addresses, are in tests/integration/test_api_network.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.bolt import Boltfile, validate
from ghostpanel_kernel.server._app import AgentApp, create_app
from ghostpanel_kernel.server._quic_policy import (
    PolicyError,
    PolicyStore,
    QuicPolicy,
    parse_endpoints,
    policy_from_document,
    policy_from_quic_fabric,
)
from ghostpanel_kernel.server._settings import AgentSettings

POLICY = "/api/v1/network/quic"


# -- parsing ---------------------------------------------------------------------------


def test_a_bad_network_is_named_with_its_index() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_endpoints(["10.0.0.0/8", "10.0.0.300/24"])
    assert caught.value.field == "endpoints[1]"
    assert "'10.0.0.300/24'" in caught.value.message


def test_host_bits_are_refused_with_the_network_to_write() -> None:
    with pytest.raises(PolicyError, match=r'write its network address, "10.0.0.0/8"'):
        parse_endpoints(["10.1.2.3/8"])


def test_encryption_false_and_an_empty_list_are_refused() -> None:
    with pytest.raises(PolicyError, match="no plaintext mode") as caught:
        policy_from_document({"cluster_id": "c", "endpoints": ["10.0.0.0/8"],
                              "encryption": False})
    assert caught.value.field == "encryption"
    with pytest.raises(PolicyError, match="refuse every peer"):
        policy_from_document({"cluster_id": "c", "endpoints": []})
    with pytest.raises(PolicyError, match="unknown member `endpoint`"):
        policy_from_document({"cluster_id": "c", "endpoint": ["10.0.0.0/8"]})


def test_peers_are_matched_by_network_ipv4_mapped_included() -> None:
    policy = policy_from_document({"cluster_id": "c", "endpoints": ["127.0.0.2/32",
                                                                    "fd00::/8"]})
    assert policy.allows("127.0.0.2")
    assert policy.allows("::ffff:127.0.0.2")
    assert policy.allows("fd12::1")
    assert not policy.allows("127.0.0.1")
    assert not policy.allows("")


@pytest.mark.parametrize(("networks", "allowed", "refused"), [
    (["0.0.0.0/0"], ["1.2.3.4", "::ffff:8.8.8.8"], ["::1"]),
    (["10.0.0.0/8", "10.1.0.0/16", "192.168.7.0/24"], ["10.200.0.1", "192.168.7.255"],
     ["11.0.0.1", "192.168.8.0"]),
    ([f"172.{i}.0.0/16" for i in range(16, 32)] + ["::1/128"], ["172.31.9.9", "::1"],
     ["172.32.0.1", "::2"]),
])
def test_network_membership(networks: list[str], allowed: list[str],
                            refused: list[str]) -> None:
    policy = QuicPolicy("c", parse_endpoints(networks))
    assert [a for a in allowed if not policy.allows(a)] == []
    assert [r for r in refused if policy.allows(r)] == []


def test_quic_fabric_table() -> None:
    policy = policy_from_quic_fabric({"enabled": True, "bind_address": "127.0.0.1",
                                      "bind_port": 4433, "encryption": True,
                                      "allowed_endpoints": ["10.0.0.0/8"]},
                                     project="shop", source="boltfile /x")
    assert policy.cluster_id == "shop"
    assert (policy.bind_address, policy.bind_port) == ("127.0.0.1", 4433)
    with pytest.raises(PolicyError) as caught:
        policy_from_quic_fabric({"bind_port": 4433}, project="shop", source="s")
    assert caught.value.field == "quic_fabric.allowed_endpoints"
    with pytest.raises(PolicyError) as caught:
        policy_from_quic_fabric({"allowed_endpoints": ["nope"]}, project="p", source="s")
    assert caught.value.field == "quic_fabric.allowed_endpoints[0]"


# -- the stored file -------------------------------------------------------------------


def test_the_store_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path / "agent" / "quic-policy.json")
    assert store.load() is None
    policy = QuicPolicy("lab", parse_endpoints(["127.0.0.2/32"]))
    store.save(policy)
    assert store.load() == policy
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["quic-policy.json"]
    assert store.clear() and store.load() is None and not store.clear()


def test_an_unreadable_policy_file_stops_the_agent_rather_than_opening_it(
        tmp_path: Path) -> None:
    settings = AgentSettings(engine_url="unix:///nowhere.sock", home=tmp_path)
    settings.quic_policy_file.parent.mkdir(parents=True)
    settings.quic_policy_file.write_text('{"cluster_id": "c", "endpoints": ["x"]}')
    with pytest.raises(PolicyError, match="fix or remove it"):
        create_app(settings)


# -- enforcement in the app ------------------------------------------------------------


def _settings(tmp_path: Path, listen: str = "127.0.0.1:9443") -> AgentSettings:
    return AgentSettings(engine_url=f"unix://{tmp_path}/engine.sock", listen=listen,
                         home=tmp_path)


def _client(app: AgentApp, peer: str, token: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url="https://agent", headers=headers)


async def test_a_policy_applies_at_once_refuses_before_authentication_and_survives_restart(
        tmp_path: Path, token: str, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(_settings(tmp_path))
    body = {"cluster_id": "lab", "endpoints": ["127.0.0.2/32"], "encryption": True}
    async with _client(app, "127.0.0.1", token) as first, \
            _client(app, "127.0.0.2", token) as second, \
            _client(app, "127.0.0.1", None) as anonymous:
        assert (await first.get(POLICY)).json()["enforced"] is False
        # Setting a policy that refuses the caller needs force=true.
        locked_out = await first.post(POLICY, json=body)
        assert locked_out.status_code == 409, locked_out.text
        assert "127.0.0.1" in locked_out.json()["detail"]
        assert (await first.get(POLICY)).json()["enforced"] is False
        # From an allowed address it is set, and applies to the next request.
        applied = await second.post(POLICY, json=body)
        assert applied.status_code == 200, applied.text
        assert applied.json()["endpoints"] == ["127.0.0.2/32"]
        assert applied.json()["enforced"] is True
        with caplog.at_level(logging.WARNING, logger="ghostpanel.agent.policy"):
            refused = await first.get("/api/v1/health")
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            assert "127.0.0.1" in refused.json()["detail"]
            # No credentials: still 403, not 401 -- and no failure counted against it.
            assert (await anonymous.get("/containers/json")).status_code == 403
        assert app.limiter.retry_after("127.0.0.1") is None
        assert "refused GET /api/v1/health from 127.0.0.1" in caplog.text
        assert (await second.get(POLICY)).json()["cluster_id"] == "lab"
    stored = json.loads(app.settings.quic_policy_file.read_text())
    assert stored["endpoints"] == ["127.0.0.2/32"]
    await app.shutdown()

    restarted = create_app(_settings(tmp_path))
    async with _client(restarted, "127.0.0.1", token) as first, \
            _client(restarted, "127.0.0.2", token) as second:
        assert (await first.get(POLICY)).status_code == 403
        removed = await second.delete(POLICY)
        assert removed.status_code == 200 and removed.json()["removed"] is True
        assert (await first.get(POLICY)).status_code == 200  # every peer again
    await restarted.shutdown()


async def test_force_sets_a_policy_that_refuses_the_caller(tmp_path: Path, token: str) -> None:
    app = create_app(_settings(tmp_path))
    async with _client(app, "127.0.0.1", token) as client:
        forced = await client.post(f"{POLICY}?force=true",
                                   json={"cluster_id": "c", "endpoints": ["10.0.0.0/8"]})
        assert forced.status_code == 200
        assert (await client.get(POLICY)).status_code == 403
    await app.shutdown()


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"cluster_id": "c", "endpoints": ["127.0.0.0/8"], "encryption": False},
     "encryption", "no plaintext mode"),
    ({"cluster_id": "c", "endpoints": ["127.0.0.0/8", "300.1.1.1/32"]},
     "endpoints[1]", "'300.1.1.1/32'"),
    ({"endpoints": ["127.0.0.0/8"]}, "cluster_id", "missing"),
])
async def test_bad_policies_are_422_naming_the_member(
        tmp_path: Path, token: str, body: dict[str, object], field: str, words: str) -> None:
    app = create_app(_settings(tmp_path))
    async with _client(app, "127.0.0.1", token) as client:
        answer = await client.post(POLICY, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        assert words in answer.json()["detail"]
        assert (await client.get(POLICY)).json()["enforced"] is False
    assert not app.settings.quic_policy_file.exists()
    await app.shutdown()


BOLTFILE = """project = "shop"

[quic_fabric]
enabled = true
bind_address = "127.0.0.1"
bind_port = 4433
encryption = true
allowed_endpoints = ["127.0.0.0/8"]

[services.web]
image = "nginx"
"""


async def test_a_boltfile_quic_fabric_sets_the_policy(tmp_path: Path, token: str) -> None:
    app = create_app(_settings(tmp_path))
    async with _client(app, "127.0.0.1", token) as client:
        answer = await client.post(POLICY, content=BOLTFILE,
                                   headers={"Content-Type": "application/toml"})
        assert answer.status_code == 200, answer.text
        policy = answer.json()
        assert policy["cluster_id"] == "shop" and policy["endpoints"] == ["127.0.0.0/8"]
        assert policy["source"] == "boltfile <request body>"
        # The Boltfile asks for HTTP/3 on 4433; the agent listens on 9443: said, not done.
        assert "restart" in policy["notes"][0]
        path = tmp_path / "Boltfile.toml"
        path.write_text(BOLTFILE.replace("encryption = true", "encryption = false"))
        refused = await client.post(POLICY, json={"path": str(path)})
        assert refused.status_code == 422
        assert refused.json()["field"] == "quic_fabric.encryption"
        missing = await client.post(POLICY, content=BOLTFILE.replace(
            'allowed_endpoints = ["127.0.0.0/8"]', ""),
            headers={"Content-Type": "application/toml"})
        assert missing.status_code == 422
        assert missing.json()["field"] == "quic_fabric.allowed_endpoints"
        broken = await client.post(POLICY, content="project = \n",
                                   headers={"Content-Type": "application/toml"})
        assert broken.status_code == 422 and broken.json()["line"] == 1
    await app.shutdown()


async def test_a_unix_socket_is_not_subject_to_the_policy(tmp_path: Path, token: str) -> None:
    settings = _settings(tmp_path, listen=f"unix://{tmp_path}/agent.sock")
    PolicyStore(settings.quic_policy_file).save(
        QuicPolicy("lab", parse_endpoints(["10.0.0.0/8"])))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("", 0))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        answer = await client.get(POLICY)
        assert answer.status_code == 200
        assert answer.json()["enforced"] is False
        assert answer.json()["endpoints"] == ["10.0.0.0/8"]
    await app.shutdown()


async def test_a_websocket_handshake_from_outside_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    PolicyStore(settings.quic_policy_file).save(
        QuicPolicy("lab", parse_endpoints(["10.0.0.0/8"])))
    app = create_app(settings)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/api/v1/events", "client": ("127.0.0.1", 5000),
             "headers": [], "extensions": {"websocket.http.response": {}}}
    await app(scope, receive, send)
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 403
    await app.shutdown()


def test_the_validator_knows_the_policy_keys_of_quic_fabric() -> None:
    diagnostics = validate(Boltfile.loads(BOLTFILE))
    assert [d for d in diagnostics if d.key.startswith("quic_fabric")] == []
