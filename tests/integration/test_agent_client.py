"""GhostPanel's client reaching a real ``ghostpanel agent`` over HTTPS and HTTP/3.

The agent runs on the session's Podman engine (``tests/agent_process.py``); the client is
the ``ghostpanel`` CLI in processes of its own, with a home of its own, registering the
agent with ``env add URL --token T --fingerprint F`` as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container
from tests.agent_process import (  # noqa: F401
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
    cli_environment,
    ghostpanel_command,
    run_cli,
)

pytestmark = pytest.mark.integration

MakeContainer = Callable[..., Awaitable[Any]]  # the ``make_container`` fixture

#: Prints a numbered line every 0.1 s, for ever.
TICKER = ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, timeout=120)


@pytest.fixture
def client_home(tmp_path: Path) -> Path:
    home = tmp_path / "client"
    home.mkdir()
    return home


def _url(agent: RunningAgent, scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{agent.port}"


def _add(home: Path, name: str, url: str, token: str, fingerprint: str | None
         ) -> subprocess.CompletedProcess[str]:
    assert fingerprint is not None
    return _cli(home, "env", "add", name, url, "--token", token, "--fingerprint", fingerprint)


async def _ticker(make_container: MakeContainer) -> Container:
    container = await make_container(command=TICKER)
    await container.start()
    return container


@pytest.mark.parametrize("scheme", ["https", "h3"])
async def test_ps_and_logs_follow_through_the_agent(
        agent: RunningAgent, client_home: Path, make_container: MakeContainer,
        scheme: str) -> None:
    added = await asyncio.to_thread(_add, client_home, "remote", _url(agent, scheme),
                                    agent.token, agent.fingerprint)
    assert added.returncode == 0, added.stderr
    container = await _ticker(make_container)

    ps = await asyncio.to_thread(_cli, client_home, "ps", "--env", "remote")
    assert ps.returncode == 0, ps.stderr
    assert container.name in ps.stdout
    # Over h3:// the answers came over HTTP/3: a fallback to HTTPS says so on stderr.
    assert "HTTPS over TCP" not in ps.stderr

    with subprocess.Popen(
            ghostpanel_command(client_home, "logs", "-f", "--env", "remote", container.name),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=cli_environment(client_home)) as follow:
        await _read_follow(follow)


async def _read_follow(follow: subprocess.Popen[str]) -> None:
    """Read 15 lines of a running ``logs -f``, then end it (as Ctrl-C would)."""
    try:
        assert follow.stdout is not None
        lines = []
        began = time.monotonic()
        while len(lines) < 15 and time.monotonic() - began < 60:
            line = await asyncio.to_thread(follow.stdout.readline)
            if not line:
                break
            lines.append(line.rstrip("\n"))
        # Lines keep coming as the container writes them (15 at 0.1 s: at least 1 s).
        assert len(lines) == 15, (lines, follow.poll())
        numbers = [int(line.split()[1]) for line in lines]
        assert numbers == list(range(numbers[0], numbers[0] + 15))
    finally:
        follow.terminate()
        await asyncio.to_thread(follow.wait, 30)


@pytest.mark.parametrize("scheme", ["https", "h3"])
async def test_logs_follow_ends_when_the_agent_restarts(
        agent: RunningAgent, client_home: Path, make_container: MakeContainer,
        scheme: str) -> None:
    added = await asyncio.to_thread(_add, client_home, "remote", _url(agent, scheme),
                                    agent.token, agent.fingerprint)
    assert added.returncode == 0, added.stderr
    container = await _ticker(make_container)
    with subprocess.Popen(
            ghostpanel_command(client_home, "logs", "-f", "--env", "remote", container.name),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cli_environment(client_home)) as follow:
        assert follow.stdout is not None and follow.stderr is not None
        first = await asyncio.to_thread(follow.stdout.readline)
        assert first.startswith("line "), first
        await asyncio.to_thread(agent.restart)
        began = time.monotonic()
        try:
            status = await asyncio.to_thread(follow.wait, 30)
        except subprocess.TimeoutExpired:
            follow.kill()
            raise AssertionError(f"logs -f over {scheme} hung after the agent restarted"
                                 ) from None
        ended_after = time.monotonic() - began
        errors = follow.stderr.read()
    print(f"\nlogs -f over {scheme}: ended {ended_after:.1f} s after the agent's restart, "
          f"status {status}, stderr {errors.strip()!r}")
    # Either the stream ended (the agent closed it as it stopped) or one clear line.
    assert len(errors.strip().splitlines()) <= 1, errors


async def test_a_wrong_token_is_one_clear_line(agent: RunningAgent, client_home: Path
                                               ) -> None:
    for scheme in ("https", "h3"):
        added = await asyncio.to_thread(_add, client_home, f"bad-{scheme}",
                                        _url(agent, scheme), "not-the-token",
                                        agent.fingerprint)
        assert added.returncode == 0, added.stderr
        ps = await asyncio.to_thread(_cli, client_home, "ps", "--env", f"bad-{scheme}")
        assert ps.returncode != 0
        lines = ps.stderr.strip().splitlines()
        assert len(lines) == 1, ps.stderr
        assert "refused the token" in lines[0]
        assert "not-the-token" not in ps.stderr


async def test_a_wrong_fingerprint_names_both(agent: RunningAgent, client_home: Path
                                              ) -> None:
    assert agent.fingerprint is not None
    wrong = "AB:" * 31 + "AB"
    for scheme in ("https", "h3"):
        added = await asyncio.to_thread(_add, client_home, f"pin-{scheme}",
                                        _url(agent, scheme), agent.token, wrong)
        assert added.returncode == 0, added.stderr
        ps = await asyncio.to_thread(_cli, client_home, "ps", "--env", f"pin-{scheme}")
        assert ps.returncode != 0
        lines = ps.stderr.strip().splitlines()
        assert len(lines) == 1, ps.stderr
        assert "does not match the pinned fingerprint" in lines[0]
        assert f"expected SHA-256 {wrong}" in lines[0]
        assert f"seen {agent.fingerprint}" in lines[0]
        assert "HTTPS (TCP)" not in lines[0]  # a certificate problem does not fall back


async def test_env_ls_hides_the_token_and_the_registry_is_private(
        agent: RunningAgent, client_home: Path) -> None:
    added = await asyncio.to_thread(_add, client_home, "remote", _url(agent, "h3"),
                                    agent.token, agent.fingerprint)
    assert added.returncode == 0, added.stderr
    table = await asyncio.to_thread(_cli, client_home, "env", "ls")
    listed = await asyncio.to_thread(_cli, client_home, "env", "ls", "--json")
    assert table.returncode == listed.returncode == 0
    assert agent.token not in table.stdout + table.stderr + listed.stdout + listed.stderr
    assert '"token": "set"' in listed.stdout
    assert (os.stat(client_home / "ghostpanel.db").st_mode & 0o777) == 0o600


async def _ping_times(url: str, agent: RunningAgent, count: int) -> list[float]:
    env = connect(url, token=agent.token, fingerprint=agent.fingerprint)
    try:
        await env.ping()  # connection and negotiation out of the way
        times = []
        for _ in range(count):
            began = time.perf_counter()
            await env.ping()
            times.append(time.perf_counter() - began)
        began = time.perf_counter()
        await asyncio.gather(*[env.ping() for _ in range(50)])
        times.append(time.perf_counter() - began)  # last: 50 in flight, all of them
        return times
    finally:
        await env.aclose()


async def test_ping_over_h3_and_https_through_the_agent(agent: RunningAgent,
                                                        engine_url: str) -> None:
    """Measures; the figures are printed (``-s``) rather than held to a bound here, on a
    machine shared with other test sessions."""
    direct = connect(engine_url)
    try:
        await direct.ping()
        began = time.perf_counter()
        for _ in range(200):
            await direct.ping()
        direct_ms = (time.perf_counter() - began) / 200 * 1000
    finally:
        await direct.aclose()
    report = [f"direct socket: {direct_ms:.3f} ms mean"]
    for scheme in ("https", "h3"):
        times = await _ping_times(_url(agent, scheme), agent, 200)
        each, fifty = times[:-1], times[-1]
        report.append(f"{scheme}: median {statistics.median(each) * 1000:.3f} ms, "
                      f"p99 {sorted(each)[int(len(each) * 0.99)] * 1000:.3f} ms; "
                      f"50 in flight {fifty * 1000:.1f} ms")
        assert statistics.median(each) < 0.5  # sanity only: it answered, and promptly
    print("\n/_ping through the agent: " + "; ".join(report))
