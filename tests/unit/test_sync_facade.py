"""The blocking facade: the async client's own coroutines, run on a bridge loop."""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Iterator
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
from tests.unit.fake_engine import (
    URL,
    FakeEngine,
    empty,
    frame,
    json_answer,
    json_lines,
    streamed,
)

ID = "1df8c92e931a39be3686e640992d0f2ff780642770beaff3ab0642575a8941a0"

LIST_ENTRY = {"Id": ID, "Names": ["/web"], "Image": "localhost/busybox:latest",
              "State": "running", "Status": "Up 3 seconds", "Ports": [], "Labels": {},
              "Name": "", "Config": None}
INSPECT = {"Id": ID, "Name": "/web", "State": {"Status": "running"},
           "Config": {"Tty": False, "Image": "localhost/busybox:latest", "Labels": {}}}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine({
        ("GET", "/containers/json"): json_answer(
            [LIST_ENTRY, {**LIST_ENTRY, "Id": "ab" * 32, "Names": ["/db"]}]),
        ("GET", "/containers/web/json"): json_answer(INSPECT),
        ("GET", f"/containers/{ID}/json"): json_answer(INSPECT),
        ("POST", f"/containers/{ID}/stop"): empty(),
        ("GET", f"/containers/{ID}/logs"): streamed(
            [frame(1, b"one\n"), frame(2, b"two\n"), frame(1, b"three\n")], MULTIPLEXED),
        ("GET", f"/containers/{ID}/stats"): json_answer({
            "read": "2024-05-01T10:00:00Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 2}, "system_cpu_usage": 20,
                          "online_cpus": 1},
            "precpu_stats": {"cpu_usage": {"total_usage": 1}, "system_cpu_usage": 10},
            "memory_stats": {"usage": 100, "limit": 1000}}),
        ("GET", "/containers/nope/json"): json_answer(
            {"message": "no container with name or ID \"nope\" found"}, status=404),
        ("POST", "/images/create"): streamed([json_lines(
            {"status": "Pulling fs layer", "id": "a1"},
            {"status": "Downloading", "id": "a1", "progressDetail": {"current": 5, "total": 10}},
            {"status": "Pull complete", "id": "a1"})], "application/json"),
        ("GET", "/images/busybox:1.36/json"): json_answer(
            {"Id": "sha256:" + "9b" * 32, "RepoTags": ["busybox:1.36"]}),
    })


@pytest.fixture
def env(engine: FakeEngine) -> Iterator[Any]:
    proxy = connect_sync(URL, transport=httpx.MockTransport(engine))
    yield proxy
    proxy.close()


def bridge_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "ghostpanel-sync"}


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
    assert engine.calls[-1][:2] == ("POST", f"/containers/{ID}/stop")
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
    engine.routes[("POST", "/images/create")] = streamed(
        [json_lines({"error": "manifest unknown"})], "application/json")
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


def test_context_manager_closes_the_environment_and_stops_the_bridge(
        engine: FakeEngine) -> None:
    before = bridge_threads()
    with connect_sync(URL, transport=httpx.MockTransport(engine)) as env:
        assert env.ping() is True
        [bridge] = bridge_threads() - before  # the one this facade started
        assert bridge.is_alive()
    assert env.client.closed
    assert not bridge.is_alive()
    assert bridge_threads() == before


def test_close_stops_the_bridge_and_proxies_it_hands_out_do_not(engine: FakeEngine) -> None:
    before = bridge_threads()
    env = connect_sync(URL, transport=httpx.MockTransport(engine))
    container = env.containers.get("web")
    container.close()  # a container has no connection of its own, nor the bridge
    [bridge] = bridge_threads() - before
    assert bridge.is_alive()
    assert container.stop(timeout=1) is None  # the bridge still runs the facade's calls
    env.close()
    assert env.client.closed
    assert not bridge.is_alive()
    assert bridge_threads() == before
