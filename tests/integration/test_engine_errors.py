"""What goes wrong, on a real engine: the issue's list.

"Tested: unknown container, name conflict, missing image, port already taken, engine
socket absent, engine stopping mid-stream." Each test asserts what Podman 4.3 really
answers, and that GhostPanel hands it over as the right error with the engine's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import (
    Conflict,
    EngineAPIError,
    EngineConnectionError,
    EngineTimeout,
    Environment,
    NotFound,
)
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

BUSYBOX = "localhost/busybox:latest"
CHATTY = ["sh", "-c", "while :; do echo tick; sleep 0.05; done"]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- unknown container -----------------------------------------------------------------


async def test_unknown_container_is_not_found(env: Environment) -> None:
    name = _unique("gp-absent")
    with pytest.raises(NotFound) as missing:
        await env.containers.get(name)
    error = missing.value
    assert error.status_code == 404
    assert error.message == f'no container with name or ID "{name}" found: no such container'
    assert (error.method, error.path) == ("GET", f"/v1.41/containers/{name}/json")
    assert str(error) == f"[404] {error.message} (GET /v1.41/containers/{name}/json)"


async def test_a_removed_container_is_not_found_on_use(make_container) -> None:
    container = await make_container()
    await container.remove(force=True)
    with pytest.raises(NotFound) as missing:
        await container.start()
    assert missing.value.status_code == 404
    assert container.id in missing.value.message or "no such container" in \
        missing.value.message
    assert missing.value.path == f"/v1.41/containers/{container.id}/start"


# -- name conflict ---------------------------------------------------------------------


async def test_name_conflict(env: Environment, make_container,
                             track_container: Callable[[str], None]) -> None:
    first = await make_container()
    track_container(first.name)  # should the second create wrongly succeed
    with pytest.raises(EngineAPIError) as conflict:
        await env.containers.create(image=BUSYBOX, name=first.name, command=["true"])
    error = conflict.value
    # Docker answers 409 (Conflict) for a name in use; Podman 4.3 answers 500 with the
    # same meaning in its message. GhostPanel picks the class from the status alone
    # (never from the text), so this is a plain EngineAPIError carrying the 500.
    assert type(error) is EngineAPIError and not isinstance(error, Conflict)
    assert error.status_code == 500
    assert f'the container name "{first.name}" is already in use' in error.message
    assert "already in use" in str(error)
    assert (error.method, error.path) == ("POST", "/v1.41/containers/create")
    # Nothing was created under that name but the first container.
    listed = await env.containers.list(all=True, filters={"name": first.name})
    assert [c.id for c in listed] == [first.id]


# -- missing image ---------------------------------------------------------------------


async def test_create_from_a_missing_image(env: Environment,
                                           track_container: Callable[[str], None]) -> None:
    image = f"localhost/{_unique('gp-no-image')}:latest"
    name = _unique("gp-test")
    track_container(name)
    with pytest.raises(NotFound) as missing:
        await env.containers.create(image=image, name=name)
    error = missing.value
    assert error.status_code == 404
    assert error.message == f"no such image: {image}: image not known"
    assert (error.method, error.path) == ("POST", "/v1.41/containers/create")
    with pytest.raises(NotFound):
        await env.containers.get(name)


# -- port already taken ----------------------------------------------------------------


async def test_port_already_taken(make_container) -> None:
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        container = await make_container(ports={"80/tcp": ("127.0.0.1", port)})
        # Create does not bind: Podman only reserves the port when the container starts.
        with pytest.raises(EngineAPIError) as taken:
            await container.start()
        error = taken.value
        assert error.status_code == 500
        assert f"127.0.0.1:{port}: bind: address already in use" in error.message
        assert error.path == f"/v1.41/containers/{container.id}/start"
        await container.reload()
        assert container.state != "running"
    finally:
        listener.close()
    # Once the port is free the same container starts and publishes it.
    await container.start()
    await container.reload()
    assert container.state == "running"
    assert f"127.0.0.1:{port}->80/tcp" in container.ports


# -- engine socket absent --------------------------------------------------------------


async def test_engine_socket_absent() -> None:
    path = f"/tmp/{_unique('gp-no-engine')}/podman.sock"
    url = f"unix://{path}"
    async with connect(url, name="nowhere") as env:
        with pytest.raises(EngineConnectionError) as absent:
            await env.ping()
        error = absent.value
        assert not isinstance(error, EngineTimeout)
        assert error.endpoint == url
        assert path in str(error) and "does not exist" in str(error)
        assert isinstance(error.__cause__, httpx.ConnectError)
        # Anything that needs the engine says the same, version negotiation included.
        with pytest.raises(EngineConnectionError, match=re.escape(path)):
            await env.containers.list()


async def test_engine_socket_refusing(tmp_path: Path) -> None:
    # A socket file nobody listens on: what a crashed engine leaves behind.
    path = tmp_path / "dead.sock"
    stale = socket.socket(socket.AF_UNIX)
    try:
        stale.bind(str(path))
        async with connect(f"unix://{path}") as env:
            with pytest.raises(EngineConnectionError) as refused:
                await env.ping()
        assert "refused" in str(refused.value) and str(path) in str(refused.value)
    finally:
        stale.close()


# -- engine stopping mid-stream --------------------------------------------------------


async def _stop(engine: PodmanService) -> None:
    await asyncio.to_thread(engine.stop)


async def test_engine_stopping_mid_log_stream_then_coming_back(
        extra_podman_engine: Callable[..., PodmanService]) -> None:
    engine = extra_podman_engine()
    async with connect(engine.url, name="doomed") as env:
        chatty = await env.containers.create(image=BUSYBOX, name=_unique("gp-chatty"),
                                             command=CHATTY)
        await chatty.start()
        # Several idle keep-alive connections, all of them stale once the engine restarts.
        await asyncio.gather(*(env.containers.list() for _ in range(4)))

        lines = 0
        stopping: asyncio.Task[None] | None = None
        with pytest.raises(EngineConnectionError) as broken:
            async with asyncio.timeout(15):  # a hang fails the test instead of the suite
                async with contextlib.aclosing(chatty.logs(follow=True)) as stream:
                    async for _line in stream:
                        lines += 1
                        if lines == 3:
                            stopping = asyncio.create_task(_stop(engine))
        assert stopping is not None
        await stopping
        error = broken.value
        assert not isinstance(error, EngineTimeout)
        assert error.endpoint == engine.url
        assert f"{engine.socket_path} closed the connection mid-response" in str(error)
        assert lines >= 3

        # While it is down, every call says so, naming the socket.
        with pytest.raises(EngineConnectionError, match=re.escape(str(engine.socket_path))):
            await env.ping()

        # The engine comes back: the same Environment works again, its stale keep-alive
        # connections replaced, for reads and for writes.
        await asyncio.to_thread(engine.start)
        assert await env.ping()
        listed = await env.containers.list(all=True)
        assert chatty.id in [c.id for c in listed]
        again = await env.containers.create(image=BUSYBOX, command=["echo", "back"])
        await again.start()
        assert await again.wait(timeout=20) == 0
        assert [line.text for line in await again.logs()] == ["back"]


async def test_engine_stopping_mid_event_stream(
        extra_podman_engine: Callable[..., PodmanService]) -> None:
    engine = extra_podman_engine(import_busybox=False)
    async with connect(engine.url, name="doomed") as env:
        received = []
        stopping: asyncio.Task[None] | None = None

        async def make_an_event() -> None:
            await asyncio.sleep(0.2)  # let the events request reach the engine first
            await env.volumes.create(_unique("gp-event"))

        with pytest.raises(EngineConnectionError) as broken:
            async with asyncio.timeout(15):
                async with contextlib.aclosing(env.events()) as events:
                    maker = asyncio.create_task(make_an_event())
                    async for event in events:
                        received.append(event)
                        if stopping is None:  # the stream is flowing: pull the plug
                            stopping = asyncio.create_task(_stop(engine))
        await maker
        assert stopping is not None
        await stopping
        assert not engine.running
        assert [(e.type, e.action) for e in received][:1] == [("volume", "create")]
        error = broken.value
        assert error.endpoint == engine.url
        assert not isinstance(error, EngineTimeout)
        assert f"{engine.socket_path} closed the connection mid-response" in str(error)


# -- the first-byte limit never cuts a quiet stream --------------------------------------
#
# Podman 4.3 sends the head of a log follow only with the container's first output (the
# events stream's comes at once): a first-byte limit on streams would cut a quiet follow,
# so streams have none. These tests keep that checked on the real engine.


async def test_a_quiet_log_follow_outlives_the_response_timeout(engine_url: str,
                                                                make_container) -> None:
    container = await make_container(command=["sh", "-c", "sleep 1.5; echo late"])
    await container.start()
    async with connect(engine_url, name="quick", response_timeout=0.5) as quick:
        follower = await quick.containers.get(container.id)
        async with asyncio.timeout(20):
            lines = [line.text async for line in follower.logs(follow=True)]
    assert lines == ["late"]


async def test_a_quiet_event_stream_outlives_the_response_timeout(engine_url: str,
                                                                  make_volume) -> None:
    async with connect(engine_url, name="quick", response_timeout=0.5) as quick:
        async def later() -> None:
            await asyncio.sleep(1.5)  # three response timeouts with nothing to send
            await make_volume()

        maker = asyncio.create_task(later())
        async with asyncio.timeout(20):
            async with contextlib.aclosing(quick.events(filters={"type": "volume"})) as events:
                first = await anext(events)
        await maker
    assert (first.type, first.action) == ("volume", "create")
