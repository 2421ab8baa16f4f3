"""The blocking facade: the async client's own coroutines, run on a bridge loop."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from ghostpanel_kernel import connect_sync
from ghostpanel_kernel.engine import (
    Container,
    Environment,
    ImagePullError,
    LogLine,
    Logs,
    NotFound,
    PullEvent,
    StatsSample,
    SyncProxy,
)

URL = "unix:///run/podman/podman.sock"
ID = "1df8c92e931a39be3686e640992d0f2ff780642770beaff3ab0642575a8941a0"

PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
    "Version": "4.3.1", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64",
}
LIST_ENTRY = {"Id": ID, "Names": ["/web"], "Image": "localhost/busybox:latest",
              "State": "running", "Status": "Up 3 seconds", "Ports": [], "Labels": {},
              "Name": "", "Config": None}
INSPECT = {"Id": ID, "Name": "/web", "State": {"Status": "running"},
           "Config": {"Tty": False, "Image": "localhost/busybox:latest", "Labels": {}}}

Route = Callable[[httpx.Request], httpx.Response]


class Body(httpx.AsyncByteStream):
    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = list(pieces)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def json_lines(*lines: Any) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


class FakeEngine:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/_ping"): lambda r: httpx.Response(200, text="OK"),
            ("GET", "/v1.41/containers/json"): lambda r: httpx.Response(
                200, json=[LIST_ENTRY, {**LIST_ENTRY, "Id": "ab" * 32, "Names": ["/db"]}]),
            ("GET", "/v1.41/containers/web/json"): lambda r: httpx.Response(200, json=INSPECT),
            ("GET", f"/v1.41/containers/{ID}/json"): lambda r: httpx.Response(200, json=INSPECT),
            ("POST", f"/v1.41/containers/{ID}/stop"): lambda r: httpx.Response(204),
            ("GET", f"/v1.41/containers/{ID}/logs"): lambda r: httpx.Response(
                200, headers={"Content-Type": "application/vnd.docker.multiplexed-stream"},
                stream=Body([frame(1, b"one\n"), frame(2, b"two\n"), frame(1, b"three\n")])),
            ("GET", f"/v1.41/containers/{ID}/stats"): lambda r: httpx.Response(200, json={
                "read": "2024-05-01T10:00:00Z",
                "cpu_stats": {"cpu_usage": {"total_usage": 2}, "system_cpu_usage": 20,
                              "online_cpus": 1},
                "precpu_stats": {"cpu_usage": {"total_usage": 1}, "system_cpu_usage": 10},
                "memory_stats": {"usage": 100, "limit": 1000}}),
            ("GET", "/v1.41/containers/nope/json"): lambda r: httpx.Response(
                404, json={"message": "no container with name or ID \"nope\" found"}),
            ("POST", "/v1.41/images/create"): lambda r: httpx.Response(
                200, stream=Body([json_lines(
                    {"status": "Pulling fs layer", "id": "a1"},
                    {"status": "Downloading", "id": "a1",
                     "progressDetail": {"current": 5, "total": 10}},
                    {"status": "Pull complete", "id": "a1"})])),
            ("GET", "/v1.41/images/busybox:1.36/json"): lambda r: httpx.Response(
                200, json={"Id": "sha256:" + "9b" * 32, "RepoTags": ["busybox:1.36"]}),
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.threads.add(threading.current_thread().name)
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if path == "/version":
            return httpx.Response(200, json=PODMAN_VERSION, request=request)
        self.requests.append((request.method, path))
        route = self.routes.get((request.method, path))
        response = route(request) if route else httpx.Response(404, json={"message": path})
        response.request = request
        return response


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def env(engine: FakeEngine) -> Iterator[Any]:
    proxy = connect_sync(URL, transport=httpx.MockTransport(engine))
    yield proxy
    proxy.aclose()
    proxy._bridge.close()


def test_connect_sync_wraps_an_environment(env: Any) -> None:
    assert isinstance(env, SyncProxy)
    assert isinstance(env.wrapped, Environment)
    assert env.url == URL
    assert env.name == "local"


def test_blocking_list_returns_proxies_with_names(env: Any, engine: FakeEngine) -> None:
    containers = env.containers.list(all=True)
    assert isinstance(containers, list)
    assert [c.name for c in containers] == ["web", "db"]
    assert all(isinstance(c, SyncProxy) and isinstance(c.wrapped, Container)
               for c in containers)
    assert containers[0].attrs["Status"] == "Up 3 seconds"
    assert engine.threads == {"ghostpanel-sync"}  # the coroutines ran on the bridge loop


def test_coroutine_methods_block_until_done(env: Any, engine: FakeEngine) -> None:
    container = env.containers.get("web")
    assert isinstance(container, SyncProxy)
    assert container.state == "running"
    assert container.stop(timeout=1) is None
    assert engine.requests[-1] == ("POST", f"/v1.41/containers/{ID}/stop")
    assert env.ping() is True
    assert env.version().kind == "podman"
    sample = container.stats()
    assert isinstance(sample, StatsSample)
    assert sample.cpu_percent == pytest.approx(10.0)  # (2-1)/(20-10) * 1 CPU * 100


def test_logs_read_and_follow(env: Any) -> None:
    container = env.containers.get("web")
    logs = container.logs()
    assert isinstance(logs, Logs)
    assert str(logs) == "one\ntwo\nthree"
    follow = container.logs(follow=True)
    assert isinstance(follow, Iterator)
    assert not hasattr(follow, "__anext__")
    assert list(follow) == [LogLine("stdout", "one"), LogLine("stderr", "two"),
                            LogLine("stdout", "three")]


def test_breaking_out_of_a_follow_is_clean(env: Any) -> None:
    container = env.containers.get("web")
    for line in container.logs(follow=True):
        assert line.text == "one"
        break
    assert env.ping() is True  # the bridge is free for the next call


def test_pull_iterates_synchronously(env: Any) -> None:
    pull = env.images.pull("busybox:1.36")
    events = list(pull)
    assert all(isinstance(e, PullEvent) for e in events)
    assert [(e.status, e.current) for e in events] == [
        ("Pulling fs layer", None), ("Downloading", 5), ("Pull complete", None)]
    image = env.images.pull("busybox:1.36").wait()
    assert isinstance(image, SyncProxy)
    assert image.name == "busybox:1.36"


def test_errors_propagate_with_their_class(env: Any, engine: FakeEngine) -> None:
    with pytest.raises(NotFound) as caught:
        env.containers.get("nope")
    assert type(caught.value) is NotFound
    assert caught.value.path == "/v1.41/containers/nope/json"
    engine.routes[("POST", "/v1.41/images/create")] = lambda r: httpx.Response(
        200, stream=Body([json_lines({"error": "manifest unknown"})]))
    with pytest.raises(ImagePullError, match="manifest unknown"):
        list(env.images.pull("busybox:nope"))


def test_using_the_facade_from_its_own_loop_raises(env: Any) -> None:
    bridge = env._bridge

    async def from_inside() -> None:
        env.ping()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="own event loop"):
            bridge.run(from_inside())
        gc.collect()
    # The refused coroutine is closed, not left to warn "was never awaited".
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


def test_context_manager_closes_the_environment(engine: FakeEngine) -> None:
    with connect_sync(URL, transport=httpx.MockTransport(engine)) as env:
        assert env.ping() is True
    assert env.client.closed
    with pytest.raises(RuntimeError, match="closed"):
        env.containers.list()
    env._bridge.close()
