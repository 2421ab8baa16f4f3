"""The low layer: version negotiation, request building, client state, endpoints, TLS.

``/version`` answers are the real ones of Podman 4.3.1 (recorded from a running
service) and Docker; the Bolt one is what Bolt's compat server claims (API 1.43).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ghostpanel_kernel.engine import (
    Container,
    Endpoint,
    EngineConnectionError,
    EngineVersion,
    Environment,
    TLSConfig,
)

URL = "unix:///run/podman/podman.sock"

PODMAN_VERSION: dict[str, Any] = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [
        {"Name": "Podman Engine", "Version": "4.3.1",
         "Details": {"APIVersion": "4.3.1", "Arch": "amd64", "MinAPIVersion": "4.0.0",
                     "Os": "linux"}},
        {"Name": "Conmon", "Version": "conmon version 2.1.6, commit: unknown"},
        {"Name": "OCI Runtime (runc)", "Version": "runc version 1.1.5+ds1"},
    ],
    "Version": "4.3.1", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "GitCommit": "",
    "GoVersion": "go1.19.8", "Os": "linux", "Arch": "amd64",
    "KernelVersion": "6.1.0-13-amd64", "BuildTime": "1970-01-01T00:00:00Z",
}

DOCKER_VERSION: dict[str, Any] = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Components": [
        {"Name": "Engine", "Version": "24.0.7",
         "Details": {"ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux"}},
        {"Name": "containerd", "Version": "1.6.26"},
        {"Name": "runc", "Version": "1.1.10"},
        {"Name": "docker-init", "Version": "0.19.0"},
    ],
    "Version": "24.0.7", "ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux",
    "Arch": "arm64", "KernelVersion": "6.5.0-14-generic",
}

BOLT_VERSION: dict[str, Any] = {
    "Platform": {"Name": "Bolt"},
    "Components": [{"Name": "Bolt compat api-server", "Version": "0.1.0"}],
    "Version": "0.1.0", "ApiVersion": "1.43", "Os": "linux", "Arch": "amd64",
}


class FakeEngine:
    """A canned engine: records every request and answers ``/version`` and ``/_ping``."""

    def __init__(self, version: Mapping[str, Any] = PODMAN_VERSION,
                 answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.version = version
        self.answer = answer or (lambda request: httpx.Response(200, json=[]))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/version":
            response = httpx.Response(200, json=self.version)
        else:
            response = self.answer(request)
        response.request = request
        return response

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query, keep_blank_values=True)


def raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


def env_for(engine: FakeEngine, url: str = URL, **options: Any) -> Environment:
    return Environment(url, transport=httpx.MockTransport(engine), **options)


# -- version negotiation -----------------------------------------------------------------


async def test_version_is_negotiated_once_across_many_requests() -> None:
    engine = FakeEngine()
    env = env_for(engine)
    for _ in range(25):
        await env.containers.list()
    await env.images.list()
    await env.version()
    assert engine.count("/version") == 1
    assert engine.count("/v1.41/containers/json") == 25
    assert engine.requests[0].url.path == "/version"  # unversioned, and first
    await env.aclose()


async def test_concurrent_first_requests_share_one_negotiation() -> None:
    gate = asyncio.Event()
    engine = FakeEngine()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            await gate.wait()  # every request below is waiting on the version by now
        return engine(request)

    env = Environment(URL, transport=httpx.MockTransport(handler))
    tasks = [asyncio.ensure_future(env.containers.list()) for _ in range(30)]
    for _ in range(5):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert engine.count("/version") == 1
    assert engine.count("/v1.41/containers/json") == 30
    await env.aclose()


async def test_cancelling_the_first_requester_does_not_break_the_others() -> None:
    gate = asyncio.Event()
    engine = FakeEngine()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            await gate.wait()
        return engine(request)

    env = Environment(URL, transport=httpx.MockTransport(handler))
    first = asyncio.ensure_future(env.containers.list())
    second = asyncio.ensure_future(env.containers.list())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == []
    assert first.cancelled()
    assert engine.count("/version") == 1
    await env.aclose()


async def test_a_failed_negotiation_is_tried_again() -> None:
    engine = FakeEngine()
    failures = [httpx.ConnectError("engine socket /run/podman/podman.sock does not exist")]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop()
        return engine(request)

    env = Environment(URL, transport=httpx.MockTransport(handler))
    with pytest.raises(EngineConnectionError):
        await env.containers.list()
    assert await env.containers.list() == []
    assert engine.count("/version") == 1
    await env.aclose()


@pytest.mark.parametrize(
    ("api_version", "prefix"),
    [("1.41", "/v1.41/"), ("1.43", "/v1.43/"), ("1.44", "/v1.43/"), ("1.45", "/v1.43/"),
     ("1.40", "/v1.40/"), ("1.9", "/v1.9/"), ("2.0", "/v1.43/")],
)
async def test_api_prefix_is_the_lower_of_engine_and_ghostpanel(api_version: str,
                                                                prefix: str) -> None:
    engine = FakeEngine({**DOCKER_VERSION, "ApiVersion": api_version})
    env = env_for(engine)
    await env.containers.list()
    assert engine.last.url.path == f"{prefix}containers/json"
    assert (await env.version()).api_version == prefix.strip("/v")
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
    env = env_for(FakeEngine(PODMAN_VERSION))
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
    engine = FakeEngine(answer=lambda r: httpx.Response(200, json={"Id": "abc"}))
    env = env_for(engine)
    await env.containers.get(name)
    assert raw_path(engine.last) == path
    assert query(engine.last) == {}
    await env.aclose()


@pytest.mark.parametrize("name", ["..", "."])
async def test_dot_segments_cannot_leave_the_collection(name: str) -> None:
    # "/containers/../json" would be normalised to "/json": another endpoint entirely.
    engine = FakeEngine(answer=lambda r: httpx.Response(200, json={"Id": "abc"}))
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
    engine = FakeEngine()
    env = env_for(engine)
    with pytest.raises(ValueError):
        await env.containers.get(bad)
    assert engine.count("/v1.41/containers//json") == 0
    await env.aclose()


async def test_filters_are_json_of_lists_and_bools_are_true_false() -> None:
    engine = FakeEngine()
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
    engine = FakeEngine()
    env = env_for(engine)
    await env.containers.list()
    assert query(engine.last) == {"all": ["false"]}  # no filters, no limit
    await env.containers.list(filters={}, limit=3)
    assert query(engine.last) == {"all": ["false"], "limit": ["3"]}
    await env.aclose()


async def test_host_header_and_json_content_type() -> None:
    engine = FakeEngine(answer=lambda r: httpx.Response(201, json={"Id": "f40", "Warning": ""}))
    env = env_for(engine, "tcp://10.0.0.5:2375")
    await env.volumes.create("data")
    request = engine.last
    assert str(request.url).startswith("http://10.0.0.5:2375/v1.41/volumes/create")
    assert request.headers["Host"] == "10.0.0.5:2375"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content)["Name"] == "data"
    await env.aclose()
    unix_engine = FakeEngine()
    unix_env = env_for(unix_engine)
    await unix_env.containers.list()
    assert unix_engine.last.headers["Host"] == "localhost"
    await unix_env.aclose()


async def test_https_endpoint_requests_use_https() -> None:
    engine = FakeEngine()
    env = env_for(engine, "https://bolt-1.example:2376")
    await env.containers.list()
    assert str(engine.last.url).startswith("https://bolt-1.example:2376/v1.41/")
    await env.aclose()


async def test_timeouts_per_kind_of_request() -> None:
    engine = FakeEngine(answer=lambda r: httpx.Response(
        200, json=[] if r.url.path.endswith("/containers/json") else {"StatusCode": 0}))
    env = env_for(engine, timeout=12.0)
    await env.containers.list()
    assert engine.last.extensions["timeout"]["read"] == 12.0
    container = Container(env.client, {"Id": "abc"})
    await container.stop(timeout=5)
    assert engine.last.extensions["timeout"]["read"] == 35  # the grace period, and margin
    await container.wait()
    assert engine.last.extensions["timeout"]["read"] == 24 * 3600.0
    await env.aclose()


class Body(httpx.AsyncByteStream):
    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


FRAME = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
MULTIPLEXED = {"Content-Type": "application/vnd.docker.multiplexed-stream"}


async def test_streams_have_no_read_timeout() -> None:
    # Podman sends a stats sample every 5 s: a read timeout would cut a healthy stream.
    engine = FakeEngine(answer=lambda r: httpx.Response(200, headers=MULTIPLEXED,
                                                        stream=Body(FRAME)))
    env = env_for(engine)
    container = Container(env.client, {"Id": "abc"})
    assert [line.text async for line in container.logs(follow=True)] == ["hi"]
    assert engine.last.extensions["timeout"]["read"] is None
    await env.aclose()


async def test_a_stream_answer_the_transport_already_read() -> None:
    # MockTransport handlers naturally answer httpx.Response(content=...), which httpx
    # reads at once: a streamed endpoint must still yield that body.
    engine = FakeEngine(answer=lambda r: httpx.Response(200, headers=MULTIPLEXED,
                                                        content=FRAME))
    env = env_for(engine)
    container = Container(env.client, {"Id": "abc"})
    assert [line.text async for line in container.logs(follow=True)] == ["hi"]
    await env.aclose()


# -- client state ------------------------------------------------------------------------


async def test_a_closed_client_refuses_requests() -> None:
    engine = FakeEngine()
    env = env_for(engine)
    await env.containers.list()
    assert not env.client.closed
    await env.aclose()
    assert env.client.closed
    sent = len(engine.requests)
    with pytest.raises(RuntimeError, match="closed"):
        await env.containers.list()
    with pytest.raises(RuntimeError, match="closed"):
        await env.ping()
    assert len(engine.requests) == sent


async def test_environment_context_manager_closes_the_client() -> None:
    engine = FakeEngine()
    async with env_for(engine) as env:
        await env.containers.list()
    assert env.client.closed
    with pytest.raises(RuntimeError):
        await env.images.list()


def test_environment_repr_and_url() -> None:
    env = Environment("tcp://10.0.0.5:2375", name="us-east-1", labels={"region": "us-east"},
                      transport=httpx.MockTransport(FakeEngine()))
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
    engine = FakeEngine()
    with pytest.raises(ValueError):
        Environment("ftp://host", transport=httpx.MockTransport(engine))
    assert engine.requests == []


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


def test_tls_context_with_missing_files_fails_loudly(tmp_path: Any) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(OSError):
        TLSConfig(client_cert=missing, client_key=missing).ssl_context()
