"""Interactive exec sessions straight on the session's Podman engine (the HTTP upgrade)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ghostpanel_kernel.engine import Conflict, Container, ExecSession, NotFound
from tests.integration.exec_helpers import MakeContainer, exec_processes, read_until, running

pytestmark = pytest.mark.integration


async def read_all(session: ExecSession, timeout: float = 20) -> bytes:
    async with asyncio.timeout(timeout):
        return b"".join([chunk async for chunk in session])


async def test_shell_echo_and_exit_code(make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with container.exec_session(["sh"]) as shell:
        await shell.send(b"echo hi; exit 3\n")
        output = await read_all(shell)
    assert b"hi\r\n" in output
    assert shell.exit_code == 3


async def test_resize_changes_stty_size(make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with container.exec_session(["sh"], size=(30, 100)) as shell:
        await shell.send(b"stty size\n")
        assert b"30 100" in await read_until(shell, b"30 100")
        await shell.resize(41, 132)
        await shell.send(b"stty size; exit\n")
        assert b"41 132" in await read_all(shell)
    assert shell.exit_code == 0


async def test_without_tty_streams_stay_apart(make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with container.exec_session(["sh"], tty=False, env={"WHO": "gp"},
                                      workdir="/etc") as shell:
        await shell.send("echo out $WHO; pwd; echo err >&2; exit 4\n")
        pieces = []
        async with asyncio.timeout(20):
            while (piece := await shell.receive_output()) is not None:
                pieces.append(piece)
    stdout = b"".join(data for stream, data in pieces if stream == "stdout")
    stderr = b"".join(data for stream, data in pieces if stream == "stderr")
    assert stdout == b"out gp\n/etc\n"
    assert stderr == b"err\n"
    assert shell.exit_code == 4


async def test_close_stdin_ends_cat(make_container: MakeContainer) -> None:
    container = await running(make_container)
    async with container.exec_session(["cat"], tty=False) as cat:
        await cat.send(b"abc")
        await cat.close_stdin()
        assert await read_all(cat) == b"abc"
    assert cat.exit_code == 0


async def test_closing_ends_the_process(make_container: MakeContainer) -> None:
    container = await running(make_container)
    shell = await container.exec_session(["sh"])
    await shell.send(b"echo ready; exec sleep 777\n")
    await read_until(shell, b"ready\r\n")
    await asyncio.sleep(0.3)
    assert "sleep 777" in await exec_processes(container)
    await shell.close()
    assert "sleep 777" not in await exec_processes(container)
    assert shell.exit_code is not None  # killed by a signal: 128 + its number


async def test_missing_and_stopped_containers(env: Any, make_container: MakeContainer
                                              ) -> None:
    stopped: Container = await make_container()
    with pytest.raises(Conflict):
        await stopped.exec_session(["sh"])
    gone = Container(env.client, {"Id": "0" * 64})
    with pytest.raises(NotFound):
        await gone.exec_session(["sh"])
