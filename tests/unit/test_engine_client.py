"""The low layer: version negotiation, request building, client state, endpoints, TLS.

The engines are those of :mod:`tests.unit.fake_engine`: ``/_ping`` headers and ``/version``
answers of Podman 4.3.1 (recorded from a running service) and Docker 24.0.7, and what
Bolt's compat server claims (API 1.43). The API version is negotiated from ``/_ping``;
``/version`` is only asked when ``version()`` is, or when the ping names no API version.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import (
    Container,
    Endpoint,
    EngineAPIError,
    EngineConnectionError,
    EngineVersion,
    Environment,
    TLSConfig,
)
from ghostpanel_kernel.engine._transport import FIRST_BYTE_TIMEOUT
from tests.unit.fake_engine import (
    BOLT,
    BOLT_VERSION,
    BOLT_WITHOUT_API_HEADER,
    DOCKER,
    DOCKER_VERSION,
    PODMAN,
    PODMAN_VERSION,
    Body,
    EngineProfile,
    FakeEngine,
    Route,
    env_for,
    json_answer,
)


def fake(answer: Route | None = None, profile: EngineProfile = PODMAN) -> FakeEngine:
    """A canned engine answering every API path with ``answer`` (an empty list)."""
    return FakeEngine(answer=answer or json_answer([]), profile=profile)


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query, keep_blank_values=True)


def raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


# -- version negotiation -----------------------------------------------------------------


def gated_ping(engine: FakeEngine, gate: asyncio.Event) -> FakeEngine:
    """``engine``, its ``/_ping`` held back until ``gate`` is set."""

    async def ping(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return engine.ping(request)

    engine.routes[("GET", "/_ping")] = ping
    return engine


async def test_api_version_is_negotiated_once_from_ping_across_many_requests() -> None:
    engine = fake()
    env = env_for(engine)
    for _ in range(25):
        await env.containers.list()
    await env.images.list()
    assert await env.client.api_version() == "1.41"
    assert await env.client.kind() == "podman"
    assert engine.paths[0] == "/_ping"  # unversioned, and first
    assert engine.count("/_ping") == 1
    assert engine.count("/version") == 0  # Podman takes ~0.45 s to answer it: not needed
    assert engine.count("/v1.41/containers/json") == 25
    assert engine.count("/v1.41/images/json") == 1
    await env.aclose()


async def test_concurrent_first_requests_share_one_negotiation() -> None:
    gate = asyncio.Event()
    engine = gated_ping(fake(), gate)
    env = env_for(engine)
    tasks = [asyncio.ensure_future(env.containers.list()) for _ in range(30)]
    tasks.append(asyncio.ensure_future(env.client.kind()))
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.paths == ["/_ping"]  # every request is waiting on the one negotiation
    gate.set()
    assert await asyncio.gather(*tasks) == [[]] * 30 + ["podman"]
    assert engine.count("/_ping") == 1
    assert engine.count("/version") == 0
    assert engine.count("/v1.41/containers/json") == 30
    await env.aclose()


async def test_cancelling_the_first_requester_does_not_break_the_others() -> None:
    gate = asyncio.Event()
    engine = gated_ping(fake(), gate)
    env = env_for(engine)
    first = asyncio.ensure_future(env.containers.list())
    second = asyncio.ensure_future(env.containers.list())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == []
    assert first.cancelled()
    assert engine.count("/_ping") == 1
    assert engine.paths == ["/_ping", "/v1.41/containers/json"]
    await env.aclose()


@pytest.mark.parametrize(
    ("profile", "failing", "error", "paths"),
    [(PODMAN, "/_ping", httpx.ConnectError("engine socket /run/podman/podman.sock does not "
                                           "exist"),
      ["/_ping", "/_ping", "/v1.41/containers/json"]),
     (PODMAN, "/_ping", httpx.Response(503, text="starting"),
      ["/_ping", "/_ping", "/v1.41/containers/json"]),
     (BOLT_WITHOUT_API_HEADER, "/version", httpx.ReadTimeout("no answer"),
      ["/_ping", "/version", "/_ping", "/version", "/v1.43/containers/json"])],
    ids=["ping-refused", "ping-503", "version-fallback-timeout"],
)
async def test_a_failed_negotiation_is_tried_again(
        profile: EngineProfile, failing: str, error: Exception | httpx.Response,
        paths: list[str]) -> None:
    engine = fake(profile=profile)
    own = engine.ping if failing == "/_ping" else engine.version
    failures = [error]

    def flaky(request: httpx.Request) -> httpx.Response:
        if not failures:
            return own(request)
        failure = failures.pop()
        if isinstance(failure, Exception):
            raise failure
        return failure

    engine.routes[("GET", failing)] = flaky
    env = env_for(engine)
    expected = EngineConnectionError if isinstance(error, Exception) else EngineAPIError
    with pytest.raises(expected):
        await env.containers.list()
    assert engine.requests == []  # no API call without an API version
    assert await env.containers.list() == []
    assert engine.paths == paths
    await env.containers.list()
    assert engine.paths == [*paths, paths[-1]]  # negotiated for good now
    await env.aclose()


@pytest.mark.parametrize(
    ("api_version", "prefix"),
    [("1.41", "/v1.41"), ("1.43", "/v1.43"), ("1.44", "/v1.43"), ("1.45", "/v1.43"),
     ("1.40", "/v1.40"), ("1.9", "/v1.9"), ("2.0", "/v1.43"), ("garbage", "/v1.40")],
)
async def test_api_prefix_is_the_lower_of_engine_and_ghostpanel(api_version: str,
                                                                prefix: str) -> None:
    engine = fake(profile=replace(
        DOCKER, ping_headers={**DOCKER.ping_headers, "Api-Version": api_version},
        prefix=prefix))
    env = env_for(engine)
    await env.containers.list()
    assert raw_path(engine.last) == f"{prefix}/containers/json"
    assert await env.client.api_version() == prefix.removeprefix("/v")
    assert engine.paths == ["/_ping", f"{prefix}/containers/json"]
    await env.aclose()


@pytest.mark.parametrize(
    ("profile", "kind"),
    [(PODMAN, "podman"), (DOCKER, "docker"), (BOLT, "bolt"),
     (replace(DOCKER, ping_headers={"Api-Version": "1.43", "Server": "nginx/1.24.0"}),
      "unknown"),
     (replace(DOCKER, ping_headers={"Api-Version": "1.43"}), "unknown")],
    ids=["libpod", "docker", "bolt", "behind-a-proxy", "no-server-header"],
)
async def test_engine_kind_comes_from_the_server_header(profile: EngineProfile,
                                                        kind: str) -> None:
    engine = fake(profile=profile)
    env = env_for(engine)
    assert await env.client.kind() == kind
    await env.containers.list()
    assert await env.client.kind() == kind
    assert engine.paths == ["/_ping", f"{profile.prefix}/containers/json"]
    await env.aclose()


@pytest.mark.parametrize(
    ("profile", "kind", "api_version"),
    [(BOLT_WITHOUT_API_HEADER, "bolt", "1.43"),
     (replace(PODMAN, ping_headers={"Content-Type": "text/plain; charset=utf-8"}),
      "podman", "1.41")],
    ids=["bolt", "podman-headers-stripped"],
)
async def test_without_an_api_version_header_version_is_asked_once(
        profile: EngineProfile, kind: str, api_version: str) -> None:
    engine = fake(profile=profile)
    env = env_for(engine)
    for _ in range(3):
        await env.containers.list()
    assert (await env.client.kind(), await env.client.api_version()) == (kind, api_version)
    version = await env.version()
    assert (version.kind, version.api_version) == (kind, api_version)
    assert await env.system.version() is version
    assert engine.paths == ["/_ping", "/version"] + [f"/v{api_version}/containers/json"] * 3
    await env.aclose()


async def test_version_is_fetched_only_when_asked_and_once() -> None:
    engine = fake()
    env = env_for(engine)
    await env.containers.list()
    assert engine.count("/version") == 0
    version = await env.version()
    assert await env.version() is version
    assert await env.system.version() is version
    assert engine.paths == ["/_ping", "/v1.41/containers/json", "/version"]
    await env.aclose()


async def test_version_first_also_settles_the_api_version() -> None:
    # /version names the API version too: no ping is needed after it.
    engine = fake()
    env = env_for(engine)
    assert (await env.version()).api_version == "1.41"
    await env.containers.list()
    assert await env.client.kind() == "podman"
    assert engine.paths == ["/version", "/v1.41/containers/json"]
    await env.aclose()


@pytest.mark.parametrize("attrs", [{}, {"ApiVersion": "garbage"}, {"ApiVersion": ""}])
async def test_missing_or_unreadable_api_version_falls_back_to_1_40(attrs: dict[str, Any]
                                                                   ) -> None:
    assert EngineVersion.from_attrs(attrs).api_version == "1.40"


@pytest.mark.parametrize(
    ("attrs", "kind"),
    [(PODMAN_VERSION, "podman"), (DOCKER_VERSION, "docker"), (BOLT_VERSION, "bolt"),
     ({"Platform": {"Name": "Docker Desktop 4.26.1 (131620)"}, "ApiVersion": "1.43"},
      "docker"),
     ({"Platform": {"Name": "linux/amd64/debian-12"}, "Components": None}, "unknown"),
     ({}, "unknown")],
    ids=["podman", "docker", "bolt", "docker-desktop", "no-components", "empty"],
)
def test_engine_kind_detection(attrs: dict[str, Any], kind: str) -> None:
    assert EngineVersion.from_attrs(attrs).kind == kind


async def test_engine_version_facts() -> None:
    env = env_for(fake())
    version = await env.version()
    assert version == await env.system.version()
    assert (version.kind, version.version, version.api_version, version.os, version.arch) == (
        "podman", "4.3.1", "1.41", "linux", "amd64")
    assert version.attrs["MinAPIVersion"] == "1.24"
    await env.aclose()


# -- building requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path"),
    [("web", "/v1.41/containers/web/json"),
     ("my app", "/v1.41/containers/my%20app/json"),
     ("a/b", "/v1.41/containers/a%2Fb/json"),
     ("../images", "/v1.41/containers/..%2Fimages/json"),
     ("x?all=1#frag", "/v1.41/containers/x%3Fall%3D1%23frag/json"),
     ("caf\u00e9", "/v1.41/containers/caf%C3%A9/json")],
)
async def test_ids_and_names_are_quoted_into_one_path_segment(name: str, path: str) -> None:
    engine = fake(lambda r: httpx.Response(200, json={"Id": "abc"}))
    env = env_for(engine)
    await env.containers.get(name)
    assert raw_path(engine.last) == path
    assert query(engine.last) == {}
    await env.aclose()


@pytest.mark.parametrize("name", ["..", "."])
async def test_dot_segments_cannot_leave_the_collection(name: str) -> None:
    # "/containers/../json" would be normalised to "/json": another endpoint entirely.
    engine = fake(lambda r: httpx.Response(200, json={"Id": "abc"}))
    env = env_for(engine)
    try:
        await env.containers.get(name)
    except ValueError:
        assert engine.count("/v1.41/json") == 0
    else:
        assert raw_path(engine.last).startswith("/v1.41/containers/%2E"), raw_path(engine.last)
    await env.aclose()


@pytest.mark.parametrize("bad", ["", None, 42])
async def test_empty_or_non_string_ids_are_refused(bad: Any) -> None:
    engine = fake()
    env = env_for(engine)
    with pytest.raises(ValueError):
        await env.containers.get(bad)
    assert engine.count("/v1.41/containers//json") == 0
    await env.aclose()


async def test_filters_are_json_of_lists_and_bools_are_true_false() -> None:
    engine = fake()
    env = env_for(engine)
    await env.containers.list(all=True, filters={
        "label": ["surge.project=web", "tier=front"], "status": "running",
        "dangling": True, "exited": 137, "id": ("a", "b")})
    params = query(engine.last)
    assert params["all"] == ["true"]
    assert json.loads(params["filters"][0]) == {
        "label": ["surge.project=web", "tier=front"], "status": ["running"],
        "dangling": ["true"], "exited": ["137"], "id": ["a", "b"]}
    assert "limit" not in params  # None is dropped, not sent as "None"
    await env.aclose()


async def test_false_bools_are_sent_and_none_params_dropped() -> None:
    engine = fake()
    env = env_for(engine)
    await env.containers.list()
    assert query(engine.last) == {"all": ["false"]}  # no filters, no limit
    await env.containers.list(filters={}, limit=3)
    assert query(engine.last) == {"all": ["false"], "limit": ["3"]}
    await env.aclose()


async def test_host_header_and_json_content_type() -> None:
    engine = fake(lambda r: httpx.Response(201, json={"Id": "f40", "Warning": ""}))
    env = env_for(engine, "tcp://10.0.0.5:2375")
    await env.volumes.create("data")
    request = engine.last
    assert str(request.url).startswith("http://10.0.0.5:2375/v1.41/volumes/create")
    assert request.headers["Host"] == "10.0.0.5:2375"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content)["Name"] == "data"
    await env.aclose()
    unix_engine = fake()
    unix_env = env_for(unix_engine)
    await unix_env.containers.list()
    assert unix_engine.last.headers["Host"] == "localhost"
    await unix_env.aclose()


async def test_https_endpoint_requests_use_https() -> None:
    engine = fake()
    env = env_for(engine, "https://bolt-1.example:2376")
    await env.containers.list()
    assert str(engine.last.url).startswith("https://bolt-1.example:2376/v1.41/")
    await env.aclose()


async def test_timeouts_per_kind_of_request() -> None:
    engine = fake(lambda r: httpx.Response(
        200, json=[] if r.url.path.endswith("/containers/json") else {"StatusCode": 0}))
    env = env_for(engine, timeout=12.0, connect_timeout=1.5, response_timeout=4.0)
    await env.containers.list()
    timeouts = engine.last.extensions["timeout"]
    assert (timeouts["connect"], timeouts["read"], timeouts[FIRST_BYTE_TIMEOUT]) == (
        1.5, 12.0, 4.0)
    container = Container(env.client, {"Id": "abc"})
    await container.stop(timeout=5)
    # The grace period, and margin: for the whole call and for its answer to begin.
    assert engine.last.extensions["timeout"]["read"] == 35
    assert engine.last.extensions["timeout"][FIRST_BYTE_TIMEOUT] == 35
    await container.wait()
    assert engine.last.extensions["timeout"]["read"] == 24 * 3600.0
    assert engine.last.extensions["timeout"][FIRST_BYTE_TIMEOUT] == 24 * 3600.0
    await env.aclose()


async def test_calls_slow_to_answer_are_not_cut_by_the_response_timeout() -> None:
    # A stop is answered when the container has stopped: up to its grace period after
    # SIGTERM, which a shell as PID 1 ignores. A prune or a large upload is answered
    # when done. Each waits for its answer as long as it may take, not response_timeout.
    engine = fake(lambda r: httpx.Response(200, json={}))
    env = env_for(engine, timeout=50.0, response_timeout=2.0)

    def first_byte() -> float:
        return float(engine.last.extensions["timeout"][FIRST_BYTE_TIMEOUT])

    await Container(env.client, {"Id": "abc"}).stop()
    assert first_byte() == 10 + 30  # the engines' default grace period, and margin
    await Container(env.client, {"Id": "abc", "Config": {"StopTimeout": 25}}).restart()
    assert first_byte() == 25 + 30  # the container's own
    for call in (env.containers.prune(), env.images.prune(), env.volumes.prune(),
                 env.networks.prune(), env.system.df(), env.images.remove("busybox"),
                 Container(env.client, {"Id": "abc"}).put_archive("/", b"")):
        await call
        assert first_byte() == 50.0, engine.last.url.path
    await env.containers.list()
    assert first_byte() == 2.0  # an ordinary call
    await env.aclose()


def test_connect_takes_the_timeouts() -> None:
    env = connect("tcp://127.0.0.1:2375", timeout=30, connect_timeout=0.5,
                  response_timeout=2)
    timeouts = env.client._timeout
    assert (timeouts["connect"], timeouts["read"], timeouts[FIRST_BYTE_TIMEOUT]) == (
        0.5, 30, 2)
    defaults = connect("tcp://127.0.0.1:2375").client._timeout
    assert (defaults["connect"], defaults["read"], defaults[FIRST_BYTE_TIMEOUT]) == (
        3.0, 60.0, 10.0)


@pytest.mark.parametrize("option", ["timeout", "connect_timeout", "response_timeout"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), True])
def test_timeouts_must_be_positive_seconds(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{option} must be a positive number of seconds"):
        Environment("tcp://127.0.0.1:2375", **{option: value})


FRAME = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
MULTIPLEXED = {"Content-Type": "application/vnd.docker.multiplexed-stream"}


async def test_streams_have_no_read_timeout() -> None:
    # Podman sends a stats sample every 5 s: a read timeout would cut a healthy stream.
    engine = fake(lambda r: httpx.Response(200, headers=MULTIPLEXED,
                                                        stream=Body([FRAME])))
    env = env_for(engine)
    container = Container(env.client, {"Id": "abc"})
    assert [line.text async for line in container.logs(follow=True)] == ["hi"]
    assert engine.last.extensions["timeout"]["read"] is None
    # Nor a first-byte limit: Podman sends a log follow's head with the first line (see
    # the integration test test_a_quiet_log_follow_outlives_the_response_timeout).
    assert engine.last.extensions["timeout"][FIRST_BYTE_TIMEOUT] is None
    await env.aclose()


async def test_a_stream_answer_the_transport_already_read() -> None:
    # MockTransport handlers naturally answer httpx.Response(content=...), which httpx
    # reads at once: a streamed endpoint must still yield that body.
    engine = fake(lambda r: httpx.Response(200, headers=MULTIPLEXED,
                                                        content=FRAME))
    env = env_for(engine)
    container = Container(env.client, {"Id": "abc"})
    assert [line.text async for line in container.logs(follow=True)] == ["hi"]
    await env.aclose()


# -- client state ------------------------------------------------------------------------


async def test_a_closed_client_refuses_requests() -> None:
    engine = fake()
    env = env_for(engine)
    await env.containers.list()
    assert not env.client.closed
    await env.aclose()
    assert env.client.closed
    sent = len(engine.log)
    with pytest.raises(RuntimeError, match="closed"):
        await env.containers.list()
    with pytest.raises(RuntimeError, match="closed"):
        await env.ping()
    with pytest.raises(RuntimeError, match="closed"):
        await env.version()  # not fetched yet, and not fetched now
    assert len(engine.log) == sent


async def test_environment_context_manager_closes_the_client() -> None:
    engine = fake()
    async with env_for(engine) as env:
        await env.containers.list()
    assert env.client.closed
    with pytest.raises(RuntimeError):
        await env.images.list()


def test_environment_repr_and_url() -> None:
    env = Environment("tcp://10.0.0.5:2375", name="us-east-1", labels={"region": "us-east"},
                      transport=httpx.MockTransport(fake()))
    assert env.url == "tcp://10.0.0.5:2375"
    assert env.name == "us-east-1"
    assert env.labels == {"region": "us-east"}
    assert repr(env) == "<Environment us-east-1 tcp://10.0.0.5:2375>"


# -- endpoints ---------------------------------------------------------------------------


def test_endpoint_unix() -> None:
    endpoint = Endpoint.parse("unix:///run/podman/podman.sock")
    assert (endpoint.scheme, endpoint.socket_path, endpoint.host, endpoint.port) == (
        "unix", "/run/podman/podman.sock", None, None)
    assert endpoint.host_header == "localhost"
    assert endpoint.tls is None


def test_endpoint_tcp_with_and_without_port() -> None:
    endpoint = Endpoint.parse("tcp://127.0.0.1:2375")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("tcp", "127.0.0.1", 2375)
    assert endpoint.host_header == "127.0.0.1:2375"
    assert Endpoint.parse("tcp://bolt-1.example").port == 2375


def test_endpoint_http_is_an_alias_of_tcp() -> None:
    endpoint = Endpoint.parse("http://bolt-1.example:8080")
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.tls) == (
        "tcp", "bolt-1.example", 8080, None)


def test_endpoint_https_defaults_to_port_2376_and_verifies() -> None:
    endpoint = Endpoint.parse("https://bolt-1.example")
    assert (endpoint.scheme, endpoint.port) == ("https", 2376)
    assert endpoint.tls == TLSConfig()
    assert endpoint.tls is not None and endpoint.tls.verify


def test_endpoint_tcp_with_tls_config_speaks_https() -> None:
    tls = TLSConfig(ca_cert="ca.pem", client_cert="cert.pem", client_key="key.pem")
    endpoint = Endpoint.parse("tcp://bolt-1.example", tls=tls)
    assert (endpoint.scheme, endpoint.port, endpoint.tls) == ("https", 2376, tls)
    assert Endpoint.parse("tcp://bolt-1.example:12376", tls=tls).port == 12376


@pytest.mark.parametrize(
    ("url", "words"),
    [("ftp://host:21", "unsupported engine URL"),
     ("ssh://user@host", "unsupported engine URL"),
     ("npipe:////./pipe/docker_engine", "unsupported engine URL"),
     ("/run/podman/podman.sock", "unsupported engine URL"),
     ("unix:podman.sock", "absolute socket path"),
     ("unix://", "absolute socket path"),
     # Read as host "relative" and path "", this used to become /relative.
     ("unix://relative", "needs an absolute socket path"),
     ("unix://run/podman/podman.sock", "unix:///run/podman/podman.sock"),
     ("unix:///" + "s" * 120 + ".sock", "too long for the system"),
     ("tcp://" + "a" * 10_000 + ":2375", "too long"),
     ("tcp://" + "a" * 300 + ":2375", "at most 253"),
     ("tcp://" + "a" * 64 + ".example:2375", "not a valid host name"),
     ("tcp://bad_host!:2375", "not a valid host name"),
     ("tcp://-leading.example:2375", "not a valid host name"),
     ("tcp://a..b:2375", "not a valid host name"),
     ("tcp://" + "\u00e9" * 70 + ".example:2375", "not a valid international domain"),
     ("tcp://host\n:2375", "control characters"),
     ("tcp://host:0", "invalid port"),
     ("tcp://", "no host"),
     ("tcp://:2375", "no host"),
     ("tcp://host:99999", "invalid port"),
     ("tcp://host:port", "invalid port"),
     ("https://host:-1", "invalid port")],
)
def test_endpoint_errors(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Endpoint.parse(url)


def test_endpoint_needs_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        Endpoint.parse(b"unix:///run/podman/podman.sock")  # type: ignore[arg-type]


def test_environment_refuses_a_bad_url_before_any_request() -> None:
    engine = fake()
    with pytest.raises(ValueError):
        Environment("ftp://host", transport=httpx.MockTransport(engine))
    assert engine.log == []


# -- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{"client_cert": "cert.pem"}, {"client_key": "key.pem"}])
def test_tls_config_needs_cert_and_key_together(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="both client_cert and client_key"):
        TLSConfig(**options)


def test_tls_config_is_frozen() -> None:
    tls = TLSConfig(ca_cert="ca.pem")
    with pytest.raises(AttributeError):
        tls.verify = False  # type: ignore[misc]


def test_tls_contexts() -> None:
    strict = TLSConfig().ssl_context()
    assert strict.verify_mode == ssl.CERT_REQUIRED
    assert strict.check_hostname
    loose = TLSConfig(verify=False).ssl_context()
    assert loose.verify_mode == ssl.CERT_NONE
    assert not loose.check_hostname


@pytest.mark.parametrize(
    ("url", "host"),
    [("tcp://bolt-1.example:2375", "bolt-1.example"), ("tcp://[::1]:2375", "::1"),
     ("tcp://10.0.0.5", "10.0.0.5"), ("https://b\u00fccher.example", "b\u00fccher.example"),
     ("tcp://docker_host:2375", "docker_host"), ("tcp://a.b.c.d.e.f.example.:2375",
                                                 "a.b.c.d.e.f.example.")],
)
def test_good_hosts_are_accepted(url: str, host: str) -> None:
    assert Endpoint.parse(url).host == host


def test_tls_context_with_missing_files_fails_loudly(tmp_path: Any) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ValueError, match=f"TLS client_cert file '{missing}' does not exist"):
        TLSConfig(client_cert=missing, client_key=missing).ssl_context()


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "does not exist"), (b"", "is empty"),
     (b"not a certificate\n", "does not hold a CA certificate in PEM form"),
     ("dir", "is a directory")],
)
def test_a_bad_ca_file_is_named_with_its_environment(tmp_path: Any, content: bytes | str | None,
                                                     words: str) -> None:
    ca = tmp_path / "ca.pem"
    if content == "dir":
        ca.mkdir()
    elif isinstance(content, bytes):
        ca.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        Environment("https://bolt-1.example:2376", name="prod", tls=TLSConfig(ca_cert=str(ca)))
    message = str(caught.value)
    assert message == f"environment 'prod': TLS ca_cert file '{ca}' {words}" or (
        message.startswith(f"environment 'prod': TLS ca_cert file '{ca}' {words}"))
    assert "\n" not in message


def test_a_missing_client_key_is_the_file_named(tmp_path: Any) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    key = tmp_path / "key.pem"
    with pytest.raises(ValueError, match=f"TLS client_key file '{key}' does not exist"):
        TLSConfig(client_cert=str(cert), client_key=str(key)).ssl_context()
