"""Fan-out: every environment's result on its own, slow and dead hosts bounded."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ghostpanel_kernel.engine import (
    EngineConnectionError,
    EngineTimeout,
    Environment,
    NotFound,
)
from ghostpanel_kernel.environments import EnvironmentSpec, FanOutResult, fan_out
from tests.unit.fake_engine import FakeEngine, env_for, json_answer


def mock_engine(name: str, *, containers: list[dict[str, object]] | None = None,
                status: int = 200) -> Environment:
    """An environment on the fake engine (Podman 4.3.1) that lists ``containers``."""
    listing = json_answer(containers or []) if status == 200 else json_answer(
        {"message": "no such thing here"}, status)
    return env_for(FakeEngine({("GET", "/containers/json"): listing}),
                   f"tcp://{name}.example:2375", name=name)


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A real TCP engine on 127.0.0.1 that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"tcp://127.0.0.1:{port}"
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


@pytest.fixture
async def answering_server() -> AsyncIterator[str]:
    """A real TCP engine on 127.0.0.1 whose ``/_ping`` answers ``OK``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"tcp://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for unix socket paths."""
    path = Path(tempfile.mkdtemp(prefix="gp-fan-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


async def ping(env: Environment) -> bool:
    return await env.ping()


async def container_names(env: Environment) -> list[str]:
    return [container.name for container in await env.containers.list(all=True)]


async def test_values_and_errors_are_reported_per_environment() -> None:
    envs = [
        mock_engine("a", containers=[{"Id": "1" * 64, "Names": ["/web"], "State": "running"}]),
        mock_engine("b", status=404),
        mock_engine("c", containers=[]),
    ]
    try:
        results = await fan_out(envs, container_names)
    finally:
        for env in envs:
            await env.aclose()

    assert [r.environment for r in results] == ["a", "b", "c"]  # input order
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].value == ["web"]
    assert results[2].value == []
    assert results[1].value is None
    assert isinstance(results[1].error, NotFound)
    assert str(results[1].error) == "[404] no such thing here (GET /v1.41/containers/json)"
    assert all(r.elapsed >= 0 for r in results)


async def test_any_exception_is_recorded_not_raised() -> None:
    env = mock_engine("a")

    async def broken(env: Environment) -> int:
        raise ZeroDivisionError("boom")

    try:
        [result] = await fan_out([env], broken)
    finally:
        await env.aclose()
    assert not result.ok
    assert isinstance(result.error, ZeroDivisionError)


async def test_a_timeout_error_of_the_operation_is_not_relabelled() -> None:
    env = mock_engine("a")

    async def own_timeout(env: Environment) -> int:
        raise TimeoutError("the operation's own")

    try:
        [result] = await fan_out([env], own_timeout, timeout=5.0)
    finally:
        await env.aclose()
    assert type(result.error) is TimeoutError
    assert str(result.error) == "the operation's own"


async def test_a_silent_host_times_out_while_the_others_return(silent_server: str) -> None:
    fast = [mock_engine("a"), mock_engine("b")]
    slow = [Environment(silent_server, name="silent-1"),
            Environment(silent_server, name="silent-2")]
    envs = [fast[0], slow[0], fast[1], slow[1]]
    started = time.perf_counter()
    try:
        results = await fan_out(envs, ping, timeout=1.0)
    finally:
        for env in envs:
            await env.aclose()
    wall = time.perf_counter() - started

    by_name = {r.environment: r for r in results}
    assert [r.environment for r in results] == ["a", "silent-1", "b", "silent-2"]
    for name in ("a", "b"):
        assert by_name[name].ok and by_name[name].value is True
        assert by_name[name].elapsed < 0.5  # did not wait for the silent ones
    for name in ("silent-1", "silent-2"):
        error = by_name[name].error
        assert isinstance(error, EngineTimeout)
        assert error.endpoint == silent_server
        assert "no result within 1 s" in str(error)
        assert 0.95 <= by_name[name].elapsed < 1.9
    # Concurrent: two silent hosts cost one timeout, not two.
    assert wall < 1.9


async def test_a_dead_socket_fails_only_its_environment(short_dir: Path) -> None:
    dead = EnvironmentSpec("dead", f"unix://{short_dir}/gone.sock")
    alive = mock_engine("alive")
    try:
        results = await fan_out([dead, alive], ping, timeout=5.0)
    finally:
        await alive.aclose()
    assert results[0].environment == "dead"
    assert isinstance(results[0].error, EngineConnectionError)
    assert not isinstance(results[0].error, EngineTimeout)
    assert "does not exist" in str(results[0].error)
    assert results[1].ok and results[1].value is True


async def test_specs_are_opened_and_closed_environments_left_open(answering_server: str
                                                                  ) -> None:
    seen: list[Environment] = []

    async def record_and_ping(env: Environment) -> bool:
        seen.append(env)
        return await env.ping()

    given = Environment(answering_server, name="given")
    spec = EnvironmentSpec("from-spec", answering_server, labels={"region": "eu"})
    try:
        results = await fan_out([spec, given], record_and_ping)
        assert [r.value for r in results] == [True, True]
        opened = next(env for env in seen if env.name == "from-spec")
        assert opened.labels == {"region": "eu"}
        assert opened.client.closed  # opened by fan_out, closed by it
        assert not given.client.closed  # the caller's to close
        assert await given.ping()
    finally:
        await given.aclose()


async def test_cancelling_fan_out_cancels_and_closes_everything(silent_server: str) -> None:
    seen: list[Environment] = []

    async def record_and_ping(env: Environment) -> bool:
        seen.append(env)
        return await env.ping()

    spec = EnvironmentSpec("silent", silent_server)
    task = asyncio.create_task(fan_out([spec], record_and_ping, timeout=30.0))
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen[0].client.closed


async def test_nothing_to_do_gives_no_results() -> None:
    assert await fan_out([], ping) == []


def test_fan_out_result_ok() -> None:
    ok: FanOutResult[int] = FanOutResult("a", value=3, error=None, elapsed=0.1)
    failed: FanOutResult[int] = FanOutResult("b", value=None, error=RuntimeError("x"),
                                             elapsed=0.2)
    assert ok.ok and not failed.ok
    assert ok == FanOutResult("a", value=3, error=None, elapsed=0.1)
    with pytest.raises(AttributeError):
        ok.value = 4  # type: ignore[misc]
