"""``ExecConsole``'s interactive shell on a real Podman engine, straight and via an agent.

Headless: keys are typed as Panel's ``Terminal`` receives them from xterm.js (one
``keystroke`` event each), the browser's fitted size is set as its model reports it,
and what the shell wrote is read from the terminal's output.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from ghostpanel_widgets._exec_console import ExecConsole
from panel.util import edit_readonly

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.integration.exec_helpers import running

pytestmark = pytest.mark.integration


def type_keys(console: ExecConsole, text: str) -> None:
    for key in text:
        console.terminal._process_event(SimpleNamespace(key=key))


def fit(console: ExecConsole, rows: int, cols: int) -> None:
    """What the browser's terminal reports after fitting itself."""
    with edit_readonly(console.terminal):
        console.terminal.param.update(nrows=rows, ncols=cols)


async def wait_for_output(console: ExecConsole, wanted: str, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while wanted not in console.terminal.output:
            await asyncio.sleep(0.05)


async def wait_for_end(console: ExecConsole, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while console.shell_open:
            await asyncio.sleep(0.05)


async def test_shell_types_resizes_and_reports_the_exit_code(
        env: Environment, make_container: Any, shown: Any) -> None:
    container = await running(make_container)
    console = await shown(ExecConsole(env, container.name))
    fit(console, 24, 100)
    assert await console.open_shell() is not None
    assert console.shell_open and console.close_shell_button.disabled is False
    type_keys(console, "stty size\r")
    await wait_for_output(console, "24 100")
    fit(console, 33, 120)
    type_keys(console, "stty size\r")
    await wait_for_output(console, "33 120")
    type_keys(console, "echo h''i; exit 3\r")
    await wait_for_end(console)
    assert "\r\nhi\r\n" in console.terminal.output
    assert console.shell_exit_code == 3
    assert "[shell ended, exit code 3]" in console.terminal.output
    assert console.status.level == "warning"
    assert console.shell_button.disabled is False


async def test_closing_the_shell_ends_its_process(env: Environment, make_container: Any,
                                                  shown: Any) -> None:
    container = await running(make_container)
    console = await shown(ExecConsole(env, container))
    console.shell_button.click()
    console.shell_button.click()  # a double click: one shell
    async with asyncio.timeout(20):
        while not console.shell_open:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    shells = [line for line in (await container.exec("ps")).stdout.splitlines()
              if line.endswith(" sh")]
    assert len(shells) == 1, shells
    type_keys(console, "echo rea''dy; exec sleep 779\r")
    await wait_for_output(console, "ready")
    await asyncio.sleep(0.3)
    assert "sleep 779" in (await container.exec("ps")).stdout
    console.close_shell_button.click()
    await wait_for_end(console)
    assert "sleep 779" not in (await container.exec("ps")).stdout
    # Open again: a new shell.
    await console.open_shell()
    type_keys(console, "exit 0\r")
    await wait_for_end(console)
    assert console.shell_exit_code == 0


async def test_a_stopped_container_is_an_error_in_the_status(
        env: Environment, make_container: Any, shown: Any) -> None:
    container = await make_container()
    console = await shown(ExecConsole(env, container.name))
    assert await console.open_shell() is None
    assert console.status.level == "error"
    assert "start it first" in console.status.message
    assert not console.shell_open and console.shell_button.disabled is False


@pytest.fixture
async def agent_env(agent: RunningAgent) -> AsyncIterator[Environment]:
    environment = connect(agent.url, name="remote", token=agent.token,
                          fingerprint=agent.fingerprint)
    try:
        yield environment
    finally:
        await environment.aclose()


async def test_shell_through_an_agent(agent_env: Environment, make_container: Any,
                                      shown: Any) -> None:
    container = await running(make_container)
    console = await shown(ExecConsole(agent_env, container.name))
    fit(console, 20, 90)
    await console.open_shell()
    type_keys(console, "stty size; exit 4\r")
    await wait_for_end(console)
    assert "20 90" in console.terminal.output
    assert console.shell_exit_code == 4


async def test_keys_typed_off_the_event_loop_s_thread_reach_the_shell(
        env: Environment, make_container: Any, shown: Any) -> None:
    """JupyterLab's messages can be handled on another thread than the kernel's event
    loop: a key must still wake the loop at once, not at its next timer."""
    container = await running(make_container)
    console = await shown(ExecConsole(env, container.name))
    await console.open_shell()
    await wait_for_output(console, "# ")
    echoed = asyncio.Event()
    console.terminal.param.watch(
        lambda event: echoed.set() if "from-thread" in event.new else None, "output")
    # A bare thread, which tells the loop nothing when it ends (to_thread would): only
    # the keys' own wake-up can bring the echo before the timeout's timer.
    typist = threading.Thread(target=type_keys, args=(console, "echo from-thr''ead\r"))
    typist.start()
    try:
        async with asyncio.timeout(5):
            await echoed.wait()
    finally:
        typist.join()
    await console.close_shell()
