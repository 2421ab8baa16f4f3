"""The client side of agents: tokens, pinned certificates, the registry and ``env``.

Engines are :class:`FakeEngine` behind httpx's MockTransport; the pinned TLS checks use
the real HTTPS server of ``tests/unit/h3_server.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel import EngineAPIError, EngineConnectionError, connect
from ghostpanel_kernel.cli import CliContext, cli
from ghostpanel_kernel.engine import AgentAuthError, Endpoint, Environment, TLSConfig
from ghostpanel_kernel.engine._endpoint import normalize_fingerprint
from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec, health_outcome
from tests.agent_process import free_port
from tests.unit.fake_engine import FakeEngine, json_lines, streamed
from tests.unit.h3_server import Server

TOKEN = "gp_Zm9vYmFyYmF6cXV4"
AGENT = "https://127.0.0.1:7443"


def _agent_env(engine: FakeEngine, *, token: str | None = TOKEN, url: str = AGENT
               ) -> Environment:
    return Environment(url, token=token, transport=httpx.MockTransport(engine))


# -- the token on the wire ----------------------------------------------------------------


async def test_every_request_carries_the_token_streams_included() -> None:
    event = {"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {}},
             "time": 1, "timeNano": 1_000_000_000}
    engine = FakeEngine(routes={
        ("GET", "/containers/json"): lambda request: httpx.Response(200, json=[]),
        ("GET", "/events"): streamed([json_lines(event)], "application/json")})
    env = _agent_env(engine)
    try:
        await env.ping()
        await env.containers.list(all=True)
        async for _ in env.events():
            break
    finally:
        await env.aclose()
    assert [request.url.path for request in engine.log] == [
        "/_ping", "/_ping", "/v1.41/containers/json", "/v1.41/events"]
    assert {request.headers["authorization"] for request in engine.log} == {
        f"Bearer {TOKEN}"}


async def test_no_token_no_authorization_header() -> None:
    engine = FakeEngine()
    env = _agent_env(engine, token=None)
    try:
        await env.ping()
    finally:
        await env.aclose()
    assert "authorization" not in engine.last.headers


def _refusing(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="ghostpanel"'},
                          json={"type": "about:blank", "title": "Unauthorized",
                                "detail": "invalid or revoked token"})


async def test_a_refused_token_is_one_clear_agent_auth_error() -> None:
    engine = FakeEngine(routes={("GET", "/_ping"): _refusing})
    env = _agent_env(engine)
    try:
        with pytest.raises(AgentAuthError) as caught:
            await env.ping()
    finally:
        await env.aclose()
    error = caught.value
    assert isinstance(error, EngineAPIError) and error.status_code == 401
    assert str(error) == (
        f"[401] the agent at {AGENT} refused the token (invalid or revoked token): it is "
        "wrong or was revoked; register a valid one with `ghostpanel env add NAME URL "
        "--token T` (GET /_ping)")
    assert TOKEN not in str(error)


async def test_a_missing_token_says_one_is_needed() -> None:
    engine = FakeEngine(routes={("GET", "/_ping"): _refusing})
    env = _agent_env(engine, token=None)
    try:
        with pytest.raises(AgentAuthError, match="requires a token"):
            await env.ping()
    finally:
        await env.aclose()


async def test_a_plain_engines_401_stays_an_engine_error() -> None:
    # No token sent and no Bearer challenge: not an agent speaking.
    engine = FakeEngine(routes={("GET", "/_ping"): lambda request: httpx.Response(
        401, json={"message": "authorization denied by plugin"})})
    env = _agent_env(engine, token=None)
    try:
        with pytest.raises(EngineAPIError) as caught:
            await env.ping()
    finally:
        await env.aclose()
    assert not isinstance(caught.value, AgentAuthError)
    assert caught.value.message == "authorization denied by plugin"


@pytest.mark.parametrize("token", ["", "two words", "line\nX-Injected: 1", "naïve"])
def test_a_token_that_cannot_be_a_header_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="one word of printable ASCII"):
        Environment(AGENT, token=token)


def test_a_token_is_never_sent_in_clear() -> None:
    with pytest.raises(ValueError, match="a token is sent only over TLS"):
        Environment("tcp://10.0.0.5:2375", token=TOKEN)
    Environment("unix:///run/ghostpanel/agent.sock", token=TOKEN)  # a local socket: fine


def test_the_token_is_not_in_reprs() -> None:
    spec = EnvironmentSpec("remote", AGENT, token=TOKEN)
    assert TOKEN not in repr(spec)
    assert spec == EnvironmentSpec("remote", AGENT)  # nor part of equality
    assert TOKEN not in repr(spec.open())


# -- URLs and fingerprints --------------------------------------------------------------


def test_h3_urls_parse_as_tls_endpoints() -> None:
    endpoint = Endpoint.parse("h3://agent.example:7443")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("h3", "agent.example", 7443)
    assert endpoint.tls == TLSConfig()
    assert Endpoint.parse("h3://10.0.0.7").port == 2376


@pytest.mark.parametrize("text", ["ab" * 32, "AB" * 32, ":".join(["ab"] * 32),
                                  "sha256:" + "ab" * 32, "SHA256 Fingerprint=" + ":".join(
                                      ["AB"] * 32)])
def test_fingerprints_are_taken_as_tools_print_them(text: str) -> None:
    assert normalize_fingerprint(text) == ":".join(["AB"] * 32)


@pytest.mark.parametrize("text", ["ab" * 31, "zz" * 32, "", "md5:" + "ab" * 16])
def test_a_malformed_fingerprint_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a SHA-256 fingerprint"):
        TLSConfig(fingerprint=text)


def test_a_fingerprint_excludes_a_ca() -> None:
    with pytest.raises(ValueError, match="a CA certificate or a pinned fingerprint"):
        TLSConfig(ca_cert="ca.pem", fingerprint="ab" * 32)


@pytest.fixture
def https_server(test_pki: Path) -> Iterator[Server]:
    server = Server(test_pki, free_port(), quic=False).start()
    yield server
    server.stop()


async def test_a_pinned_certificate_is_trusted_over_https_and_no_other(
        https_server: Server, test_pki: Path) -> None:
    der = ssl.PEM_cert_to_DER_cert((test_pki / "server.pem").read_text())
    right = hashlib.sha256(der).hexdigest()
    wrong = "11" * 32
    good = connect(f"https://127.0.0.1:{https_server.port}", fingerprint=right)
    bad = connect(f"https://127.0.0.1:{https_server.port}", fingerprint=wrong)
    try:
        # No CA given and the chain is not checked: the digest alone decides.
        assert await good.ping()
        with pytest.raises(EngineConnectionError) as caught:
            await bad.ping()
    finally:
        writers = [conn.writer for conn in getattr(good.client._transport, "_idle", [])]
        await asyncio.gather(good.aclose(), bad.aclose())
        # asyncio closes a TLS socket only once the close_notify exchange is over, some
        # loop turns after close(): wait for it, or the socket outlives the test's loop.
        await asyncio.wait_for(asyncio.gather(*[w.wait_closed() for w in writers],
                                              return_exceptions=True), 10)
        for _ in range(3):  # the failed handshake's transport closes on a later turn
            await asyncio.sleep(0)
    message = str(caught.value)
    assert "does not match the pinned fingerprint" in message
    assert f"expected SHA-256 {normalize_fingerprint(wrong)}" in message
    assert f"seen {normalize_fingerprint(right)}" in message


# -- the registry -------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "home" / "ghostpanel.db"


def _registry(database: Path) -> EnvironmentRegistry:
    return EnvironmentRegistry(f"sqlite:///{database}", detect=lambda: None)


def test_the_registry_keeps_token_and_pin(database: Path) -> None:
    registry = _registry(database)
    try:
        registry.add("remote", "h3://10.0.0.7:7443", token=TOKEN,
                     tls=TLSConfig(fingerprint="ab" * 32))
        spec = registry.get("remote")
    finally:
        registry.close()
    assert spec.token == TOKEN
    assert spec.tls == TLSConfig(fingerprint=":".join(["AB"] * 32))
    env = spec.open()
    assert env.client._base_headers["Authorization"] == f"Bearer {TOKEN}"


def test_the_registry_file_is_private(database: Path) -> None:
    old_umask = os.umask(0o022)  # files made 0644 unless fixed
    try:
        _registry(database).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    database.chmod(0o644)  # made readable by an older version, or by hand
    _registry(database).close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_an_older_registry_gains_the_new_columns(database: Path) -> None:
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as old:  # the table as the first release made it
        old.execute("CREATE TABLE environments (name VARCHAR(128) PRIMARY KEY, url TEXT, "
                    "tls_ca_cert TEXT, tls_client_cert TEXT, tls_client_key TEXT, "
                    "tls_verify BOOLEAN, labels JSON, created_at DATETIME)")
        old.execute("INSERT INTO environments VALUES ('old', 'tcp://10.0.0.5:2375', NULL, "
                    "NULL, NULL, NULL, '{}', '2026-01-01 00:00:00')")
    old.close()
    registry = _registry(database)
    try:
        registry.add("remote", AGENT, token=TOKEN, tls=TLSConfig(fingerprint="cd" * 32))
        assert registry.get("old").token is None
        assert registry.get("remote").token == TOKEN
    finally:
        registry.close()


def test_connect_by_name_uses_the_registered_token(database: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTPANEL_DATABASE_URL", f"sqlite:///{database}")
    registry = _registry(database)
    try:
        registry.add("remote", "h3://10.0.0.7:7443", token=TOKEN)
    finally:
        registry.close()
    env = connect("remote")
    assert env.client._base_headers["Authorization"] == f"Bearer {TOKEN}"
    assert env.client.endpoint.scheme == "h3"
    other = connect("remote", token="another-token")
    assert other.client._base_headers["Authorization"] == "Bearer another-token"


# -- ghostpanel env ------------------------------------------------------------------------


def _run(database: Path, *args: str, stdin: str | None = None) -> Result:
    context = CliContext(registry_factory=lambda: _registry(database))
    return CliRunner().invoke(cli, ["env", *args], obj=context, input=stdin)


def test_env_add_stores_the_token_and_ls_never_shows_it(database: Path) -> None:
    pin = "ab" * 32
    added = _run(database, "add", "remote", AGENT, "--token", TOKEN, "--fingerprint", pin)
    assert added.exit_code == 0, added.output
    assert added.stdout == f"Added environment 'remote' ({AGENT})\n"
    from_stdin = _run(database, "add", "quic", "h3://127.0.0.1:7443", "--token", "-",
                      stdin="tok-from-stdin\n")
    assert from_stdin.exit_code == 0, from_stdin.output
    table = _run(database, "ls")
    listed = _run(database, "ls", "--json")
    assert TOKEN not in table.output and TOKEN not in listed.output
    assert "tok-from-stdin" not in table.output + listed.output
    assert table.stdout.splitlines()[0].split() == [
        "NAME", "URL", "LABELS", "TLS", "TOKEN", "DEFAULT", "HEALTH"]
    remote_row = next(line for line in table.stdout.splitlines() if line.startswith("remote"))
    assert remote_row.split()[2:4] == ["pinned", "set"]
    records = {record["name"]: record for record in json.loads(listed.stdout)}
    assert records["remote"]["token"] == "set" and records["quic"]["token"] == "set"
    assert records["remote"]["tls"]["fingerprint"] == ":".join(["AB"] * 32)
    registry = _registry(database)
    try:
        assert registry.get("quic").token == "tok-from-stdin"
    finally:
        registry.close()


def test_env_add_refuses_a_ca_with_a_pin_and_a_bad_pin(database: Path, test_pki: Path
                                                       ) -> None:
    both = _run(database, "add", "x", AGENT, "--tls-ca", str(test_pki / "ca.pem"),
                "--fingerprint", "ab" * 32)
    assert both.exit_code == 2
    assert "--tls-ca and --fingerprint exclude each other" in both.stderr
    bad = _run(database, "add", "x", AGENT, "--fingerprint", "not-a-digest")
    assert bad.exit_code == 2
    assert "is not a SHA-256 fingerprint" in bad.stderr
    clear = _run(database, "add", "x", "tcp://10.0.0.5:2375", "--token", TOKEN)
    assert clear.exit_code != 0
    assert "a token is sent only over TLS" in clear.stderr
    assert TOKEN not in clear.output


def test_a_refused_token_counts_as_a_failing_environment() -> None:
    refused = AgentAuthError(401, "the agent refused the token", method="GET", path="/_ping")
    assert health_outcome(refused) is False
    assert health_outcome(EngineAPIError(500, "boom", method="GET", path="/x")) is True
