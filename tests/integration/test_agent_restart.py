"""A restart of the agent while a client streams through its Engine API passthrough.

The client is GhostPanel's own (``connect("https://..." | "h3://...")``, and the
``ghostpanel events`` CLI): a ``logs -f`` or ``events`` stream open through the agent
when it restarts must end -- by itself or with one clear error -- within a bound,
never hang; and the same environment must work again once the agent is back. A
``ws /api/v1/events`` subscriber is closed with 1001 and, subscribing again with
``since=``, gets what happened while the agent was down.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from ghostpanel_kernel import connect
from ghostpanel_kernel._exceptions import GhostPanelError
from ghostpanel_kernel.engine import Container, Environment
from tests.agent_process import (  # noqa: F401 (fixtures)
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
    cli_environment,
    ghostpanel_command,
    run_cli,
)
from tests.integration.conftest import unique
from tests.integration.ws_events import subscribe

pytestmark = pytest.mark.integration

MakeContainer = Callable[..., Awaitable[Container]]

#: Prints a numbered line every 0.1 s, for ever.
TICKER = ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"]
#: Seconds a stream may take to end after the agent stopped (its stop cuts streams
#: after 2 s; the rest is a loaded machine's slack). A hang is anything longer.
ENDS_WITHIN = 20.0


def _agent_env(agent: RunningAgent, scheme: str) -> Environment:
    return connect(f"{scheme}://127.0.0.1:{agent.port}", name="remote", token=agent.token,
                   fingerprint=agent.fingerprint)


async def _drain_across_restart(agent: RunningAgent, stream: AsyncIterator[Any],
                                first: Callable[[Any], bool]) -> tuple[float, str]:
    """Read ``stream`` until an item passes ``first``, restart the agent, and read on
    until the stream ends; (seconds it took to end after the stop, how it ended)."""
    async with asyncio.timeout(60):
        async for item in stream:
            if first(item):
                break
    restarting = asyncio.create_task(asyncio.to_thread(agent.restart))
    stopped_at = time.monotonic()
    ending = "ended"
    try:
        async with asyncio.timeout(ENDS_WITHIN):
            async for _ in stream:
                pass
    except TimeoutError:
        raise AssertionError(f"the stream did not end within {ENDS_WITHIN} s of the "
                             f"agent's stop:\n{agent.log()}") from None
    except GhostPanelError as error:
        ending = f"{type(error).__name__}: {error}"
    took = time.monotonic() - stopped_at
    await restarting
    return took, ending


@pytest.mark.parametrize("scheme", ["https", "h3"])
async def test_logs_follow_across_a_restart(agent: RunningAgent, scheme: str,
                                            make_container: MakeContainer) -> None:
    container = await make_container(command=TICKER)
    await container.start()
    env = _agent_env(agent, scheme)
    try:
        remote = await env.containers.get(container.id)
        lines = remote.logs(follow=True, tail=1)
        took, ending = await _drain_across_restart(
            agent, lines, lambda line: True)
        print(f"\nlogs -f over {scheme}: {ending} {took:.1f} s after the stop")
        assert "\n" not in ending  # one clear line, never a traceback's worth
        # The environment reconnects by itself once the agent is back.
        async with asyncio.timeout(30):
            assert str(await remote.logs(tail=1)).startswith("line")
    finally:
        await env.aclose()


@pytest.mark.parametrize("scheme", ["https", "h3"])
async def test_events_across_a_restart(agent: RunningAgent, scheme: str,
                                       make_container: MakeContainer) -> None:
    name = unique("restart")
    env = _agent_env(agent, scheme)
    try:
        events = env.events(filters={"type": "container"})

        async def start_one() -> None:
            await asyncio.sleep(0.5)  # once the events stream is open
            await (await make_container(name=name)).start()

        starter = asyncio.create_task(start_one())
        took, ending = await _drain_across_restart(
            agent, events, lambda event: event.name == name and event.action == "start")
        await starter
        print(f"\nevents over {scheme}: {ending} {took:.1f} s after the stop")
        assert "\n" not in ending
        async with asyncio.timeout(30):
            assert await env.ping()
    finally:
        await env.aclose()


async def test_the_events_cli_across_a_restart(agent: RunningAgent, tmp_path: Path,
                                               make_container: MakeContainer) -> None:
    home = tmp_path / "client"
    home.mkdir()
    added = await asyncio.to_thread(
        run_cli, home, "env", "add", "remote", f"https://127.0.0.1:{agent.port}",
        "--token", agent.token, "--fingerprint", str(agent.fingerprint))
    assert added.returncode == 0, added.stderr
    name = unique("restart-cli")
    with subprocess.Popen(ghostpanel_command(home, "events", "--env", "remote"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=cli_environment(home)) as watching:
        assert watching.stdout is not None and watching.stderr is not None
        await asyncio.sleep(1.5)  # the CLI connected and its stream is open
        await (await make_container(name=name)).start()
        async with asyncio.timeout(60):
            while name not in await asyncio.to_thread(watching.stdout.readline):
                pass
        await asyncio.to_thread(agent.restart)
        try:
            status = await asyncio.to_thread(watching.wait, ENDS_WITHIN)
        except subprocess.TimeoutExpired:
            watching.kill()
            raise AssertionError("`ghostpanel events` hung after the agent restarted"
                                 ) from None
        errors = watching.stderr.read()
    print(f"\nevents CLI: status {status}, stderr {errors.strip()!r}")
    assert len(errors.strip().splitlines()) <= 1, errors


async def test_a_websocket_subscriber_resumes_with_since_after_a_restart(
        agent: RunningAgent, make_container: MakeContainer) -> None:
    label = [("label", f"gp.test={unique('resume')}")]
    labels = {"gp.test": label[0][1].partition("=")[2]}
    first = await make_container(labels=labels)
    async with subscribe(agent, label) as events:
        await first.start()
        async with asyncio.timeout(60):
            seen = await events.until(lambda m: m["type"] == "container.started")
        last = seen[-1]["data"]["time_nano"]
        stopping = asyncio.create_task(asyncio.to_thread(agent.stop))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(ENDS_WITHIN):
                while True:
                    await events.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        await stopping
    # While the agent is down, the engine goes on.
    missed = await make_container(labels=labels)
    await missed.start()
    await asyncio.to_thread(agent.start)
    since = f"{last // 1_000_000_000}.{last % 1_000_000_000:09d}"
    async with subscribe(agent, [*label, ("since", since)]) as events:
        async with asyncio.timeout(60):
            caught_up = await events.until(lambda m: m["data"].get("name") == missed.name
                                           and m["type"] == "container.started")
    names = [(m["type"], m["data"]["name"]) for m in caught_up]
    assert ("container.created", missed.name) in names
    # Only the last event seen before may come again (``since`` is inclusive).
    assert [n for n in names if n[1] == first.name] in ([], [("container.started",
                                                                first.name)])
