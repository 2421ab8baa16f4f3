"""The gateway (issue 10) behind a REAL JupyterHub: what authorisation and the audit log
add per request, 1,000 event subscribers, and 50 users listing at once.

Run from the repository root (needs podman + runc + busybox-static as ``bench/run.py``,
and configurable-http-proxy on PATH)::

    .venv/bin/python -m bench.gateway_overhead                   # ~3 min on 2 cores
    .venv/bin/python -m bench.gateway_overhead --update-results  # + bench/RESULTS.md

One run, one private Podman engine (or ``--engine unix:///...``), one real ``ghostpanel
hub`` (JupyterHub, configurable-http-proxy and the gateway as its ``ghostpanel``
service, ``tests/hub_process.py``) with the engine registered as ``prod``, and one real
``ghostpanel agent`` on a unix socket on the same engine. 50 hub users in 10 teams
(``@bt0``...``@bt9``, operator on ``prod``; team ``bt0`` also deployer, to create its
containers). Every token is checked by the hub (``HubAuth``, cached at most 5 s).

* **per request** (sequential, one kept-alive connection per client, round-robin with
  the order rotating each round): ``GET /containers/json?all=1`` (20 containers, 10 of
  the caller's team) and ``POST /containers/{id}/restart?t=0`` (audited by the
  gateway), sent to the engine's socket directly, to the agent's passthrough (its unix
  socket, plain HTTP), to the gateway's own loopback port and to the gateway through
  the hub's proxy. Overhead = the median per-round difference to the engine directly;
  ratio = the median per-round ratio.
* **cold vs warm identity**: the first request of a never-used token (the gateway asks
  the hub) against the same token again within the cache's 5 s.
* **1,000 subscribers**: ``ws /api/v1/events`` through the proxy, 20 per user across
  the 50 users; the gateway's RSS before, with all open, after one event reached them,
  and after they closed; and that the event reached exactly the subscribers of its
  team.
* **50 users listing at once**: each user's own client sends ``GET /containers/json``
  back to back through the proxy for a fixed time: requests per second, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._engine import (
    LABEL,
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)
from bench._proc import rss_kib
from bench._report import load_average, percentile, run_line
from bench.agent_passthrough import Agent, start_agent
from tests.hub_process import RunningHub, start_hub
from tests.podman_service import BUSYBOX_REFERENCE

SCRIPT = "bench/gateway_overhead.py"
ENGINE = "services/ghostpanel/env/prod/engine"
TEAMS = 10
#: The figures' four ways to the same engine, in report order.
WAYS = ("engine socket, direct", "agent passthrough (unix socket)",
        "gateway, own port (no proxy)", "gateway through the hub's proxy")


@dataclass
class Setup:
    """What the run made: the hub, the agent, users, tokens and containers."""

    engine: BenchEngine
    hub: RunningHub
    agent: Agent
    agent_token: str
    users: list[str]
    tokens: dict[str, str]
    team_containers: list[str]
    gateway_port: int

    def team_of(self, user: str) -> str:
        return f"bt{int(user.removeprefix('bu')) % TEAMS}"

    def clients(self, user: str) -> dict[str, httpx.Client]:
        """One kept-alive client per way, each with the right credentials."""
        auth = {"Authorization": f"token {self.tokens[user]}"}
        return {
            WAYS[0]: httpx.Client(transport=httpx.HTTPTransport(
                uds=self.engine.socket_path), base_url="http://engine", timeout=60),
            WAYS[1]: httpx.Client(transport=httpx.HTTPTransport(
                uds=str(self.agent.home / "agent.sock")), base_url="http://agent/engine",
                headers={"Authorization": f"Bearer {self.agent_token}"}, timeout=60),
            WAYS[2]: httpx.Client(base_url=f"http://127.0.0.1:{self.gateway_port}/{ENGINE}",
                                  headers=auth, timeout=60),
            WAYS[3]: httpx.Client(base_url=f"{self.hub.url}{ENGINE}", headers=auth,
                                  timeout=60),
        }


@dataclass
class Figures:
    """Every figure of a run (``report`` turns them into Markdown)."""

    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    overhead: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    ratio: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)
    subscribers: int = 0
    users: int = 0
    delivered: int = 0
    expected: int = 0
    strays: int = 0
    flight: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: str = ""
    elapsed: float = 0.0


# -- setting up -------------------------------------------------------------------------


def _start_unix_agent(home: Path, engine_url: str) -> tuple[Agent, str]:
    made = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "--home",
                           str(home), "agent", "token", "create", "bench"],
                          capture_output=True, text=True, check=True)
    token = made.stdout.strip().splitlines()[-1]
    return start_agent(home, engine_url, f"unix://{home / 'agent.sock'}"), token


def _make_users(hub: RunningHub, count: int) -> tuple[list[str], dict[str, str]]:
    users = [f"bu{index:02d}" for index in range(count)]
    for user in users:
        hub.add_user(user, groups=(f"bt{int(user[2:]) % TEAMS}",))
    for team in range(TEAMS):
        hub.grant(f"@bt{team}", "operator", "prod")
    hub.grant("@bt0", "deployer", "prod")
    return users, {user: hub.token(user) for user in users}


def _make_containers(engine: BenchEngine, hub: RunningHub, token: str,
                     count: int) -> list[str]:
    """``count`` running containers of team bt0 (made through the gateway, so stamped)
    and ``count`` unlabelled ones made on the engine (which the team never sees)."""
    made = []
    body = {"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "3600"],
            "Labels": {LABEL: engine.run_id}}
    with httpx.Client(base_url=f"{hub.url}{ENGINE}", timeout=60,
                      headers={"Authorization": f"token {token}"}) as http:
        for _ in range(count):
            answer = http.post("/v1.41/containers/create", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"create through the gateway: {answer.text}")
            ident = answer.json()["Id"]
            engine.created.add(ident)
            made.append(ident)
            started = http.post(f"/v1.41/containers/{ident}/start")
            if started.status_code != 204:
                raise RuntimeError(f"start through the gateway: {started.text}")
    asyncio.run(engine.create_containers(count, command=["true"]))
    return made


# -- per request ---------------------------------------------------------------------------


def _round_robin(setup: Setup, rounds: int, call: Callable[[httpx.Client], int],
                 expected: int, name: str, figures: Figures) -> None:
    clients = setup.clients("bu00")
    try:
        for client in clients.values():  # connections open, the identity cache warm
            assert call(client) == expected
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        over: dict[str, list[float]] = {way: [] for way in WAYS[1:]}
        ratio: dict[str, list[float]] = {way: [] for way in WAYS[1:]}
        for index in range(rounds):
            order = list(WAYS[index % len(WAYS):] + WAYS[:index % len(WAYS)])
            this: dict[str, float] = {}
            for way in order:
                start = time.perf_counter()
                status = call(clients[way])
                this[way] = time.perf_counter() - start
                if status != expected:
                    raise RuntimeError(f"{name} via {way}: {status}")
            for way in WAYS:
                times[way].append(this[way])
            for way in WAYS[1:]:
                over[way].append(this[way] - this[WAYS[0]])
                ratio[way].append(this[way] / this[WAYS[0]])
        figures.samples[name] = times
        figures.overhead[name] = over
        figures.ratio[name] = ratio
    finally:
        for client in clients.values():
            client.close()


def _identity_cold_and_warm(setup: Setup, count: int, figures: Figures) -> None:
    """First use of ``count`` fresh tokens (the gateway asks the hub) vs. the same token
    again at once (HubAuth's cache, at most 5 s). One kept-alive connection for all,
    so that neither figure pays a connection set-up."""
    fresh = [setup.hub.token("bu01") for _ in range(count)]
    path = "/v1.41/containers/json"
    with httpx.Client(base_url=f"{setup.hub.url}{ENGINE}", timeout=60) as http:
        http.get("/_ping", headers={"Authorization": f"token {setup.tokens['bu01']}"})
        for token in fresh:
            auth = {"Authorization": f"token {token}"}
            start = time.perf_counter()
            assert http.get(path, params={"all": "1"}, headers=auth).status_code == 200
            figures.cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert http.get(path, params={"all": "1"}, headers=auth).status_code == 200
            figures.warm.append(time.perf_counter() - start)


# -- 1,000 subscribers ---------------------------------------------------------------------


async def _subscribers(setup: Setup, per_user: int, figures: Figures) -> None:
    """Open, use and close every subscription; then once more, to see that the memory
    of the first round is reused rather than kept growing."""
    gateway_pid = setup.hub.part_pids()["gateway"]
    figures.rss["before"] = rss_kib(gateway_pid)
    await _subscriber_round(setup, per_user, figures, gateway_pid)
    await _subscriber_round(setup, per_user, Figures(), gateway_pid)
    figures.rss["after a second open/close round"] = rss_kib(gateway_pid)


async def _subscriber_round(setup: Setup, per_user: int, figures: Figures,
                            gateway_pid: int) -> None:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{setup.hub.port}/services/ghostpanel/env/prod/api/v1/events"
    stack = contextlib.AsyncExitStack()
    opened: list[tuple[str, Any]] = []
    gate = asyncio.Semaphore(25)

    async def open_one(user: str) -> None:
        async with gate:
            connection = await stack.enter_async_context(connect(
                url, additional_headers={"Authorization": f"token {setup.tokens[user]}"},
                compression=None, proxy=None, open_timeout=120, max_queue=16))
            first = json.loads(await connection.recv())
            if first["type"] != "agent.subscribed":
                raise RuntimeError(f"first message: {first}")
            opened.append((user, connection))

    async with stack:
        await asyncio.gather(*(open_one(user) for user in setup.users
                               for _ in range(per_user)))
        figures.subscribers = len(opened)
        figures.users = len(setup.users)
        await asyncio.sleep(1)
        figures.rss["all open"] = rss_kib(gateway_pid)
        target = setup.team_containers[0]
        team = setup.team_of("bu00")

        async def wait_for_pause(connection: Any) -> bool:
            try:
                async with asyncio.timeout(20):
                    while True:
                        message = json.loads(await connection.recv())
                        if message["type"].startswith("container.") and \
                                target in json.dumps(message):
                            return True
            except TimeoutError:
                return False

        waits = [asyncio.create_task(wait_for_pause(connection))
                 for _, connection in opened]
        in_team = [task for (user, _), task in zip(opened, waits, strict=True)
                   if setup.team_of(user) == team]
        async with httpx.AsyncClient(base_url=f"{setup.hub.url}{ENGINE}", timeout=60,
                                     headers={"Authorization":
                                              f"token {setup.tokens['bu00']}"}) as http:
            assert (await http.post(f"/v1.41/containers/{target}/pause")).status_code == 204
            assert (await http.post(f"/v1.41/containers/{target}/unpause")).status_code \
                == 204
        # Everyone of the team within 20 s; the others get 2 s more to show a stray.
        await asyncio.wait(in_team, timeout=20)
        await asyncio.sleep(2)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)  # let the cancels land
        got = [task.done() and not task.cancelled() and task.result() for task in waits]
        figures.expected = sum(1 for user, _ in opened if setup.team_of(user) == team)
        figures.delivered = sum(1 for (user, _), seen in zip(opened, got, strict=True)
                                if seen and setup.team_of(user) == team)
        figures.strays = sum(1 for (user, _), seen in zip(opened, got, strict=True)
                             if seen and setup.team_of(user) != team)
        figures.rss["after an event"] = rss_kib(gateway_pid)
    await asyncio.sleep(3)
    figures.rss["all closed (+3 s)"] = rss_kib(gateway_pid)


# -- 50 users at once ------------------------------------------------------------------------


async def _in_flight(setup: Setup, seconds: float, figures: Figures, *,
                     direct: bool = False) -> None:
    """Every user lists back to back for ``seconds``: through the proxy, or (``direct``)
    the same load on the engine's socket, for reference."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    barrier = asyncio.Barrier(len(setup.users) + 1)
    stop_at = [float("inf")]  # set once every user is connected and ready

    async def user_loop(user: str) -> None:
        options: dict[str, Any] = (
            {"transport": httpx.AsyncHTTPTransport(uds=setup.engine.socket_path),
             "base_url": "http://engine"} if direct else
            {"base_url": f"{setup.hub.url}{ENGINE}",
             "headers": {"Authorization": f"token {setup.tokens[user]}"}})
        async with httpx.AsyncClient(timeout=60, **options) as http:
            await http.get("/v1.41/_ping")  # the connection and the identity cache
            await barrier.wait()
            while time.perf_counter() < stop_at[0]:
                start = time.perf_counter()
                answer = await http.get("/v1.41/containers/json", params={"all": "1"})
                latencies.append(time.perf_counter() - start)
                counts["ok" if answer.status_code == 200 else "errors"] += 1

    tasks = [asyncio.create_task(user_loop(user)) for user in setup.users]
    await barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    figures.flight["direct" if direct else "gateway"] = {
        "users": len(setup.users), "seconds": elapsed, **counts,
                      "rps": counts["ok"] / elapsed, "p50": percentile(latencies, 0.5),
                      "p99": percentile(latencies, 0.99)}


# -- the run -------------------------------------------------------------------------------


def measure(engine: BenchEngine, args: argparse.Namespace) -> Figures:
    """Set everything up, take every figure, and take it all down again."""
    figures = Figures(engine=engine.label)
    home = Path(tempfile.mkdtemp(prefix="gpb-gw-", dir="/tmp"))
    agent: Agent | None = None
    try:
        agent, agent_token = _start_unix_agent(home, engine.url)
        log("starting the hub (JupyterHub, proxy, gateway)")
        with start_hub(environments={"prod": engine.url}) as hub:
            hub.wait_for_gateway()
            users, tokens = _make_users(hub, args.users)
            containers = _make_containers(engine, hub, tokens["bu00"], 10)
            state = hub.paths.read_state()
            assert state is not None
            setup = Setup(engine, hub, agent, agent_token, users, tokens, containers,
                          state.gateway_port)
            log(f"per request: list x {args.rounds}")
            _round_robin(setup, args.rounds, lambda client: client.get(
                "/v1.41/containers/json", params={"all": "1"}).status_code, 200,
                "GET /containers/json?all=1", figures)
            target = containers[1]
            log(f"per request: restart x {args.mutating_rounds}")
            _round_robin(setup, args.mutating_rounds, lambda client: client.post(
                f"/v1.41/containers/{target}/restart", params={"t": "0"}).status_code,
                204, "POST /containers/{id}/restart?t=0", figures)
            log("identity: cold and warm")
            _identity_cold_and_warm(setup, args.cold, figures)
            log(f"{len(users)} users listing at once for {args.seconds:.0f} s")
            asyncio.run(_in_flight(setup, args.seconds, figures, direct=True))
            asyncio.run(_in_flight(setup, args.seconds, figures))
            log(f"{args.subscribers} event subscribers")
            asyncio.run(_subscribers(setup, max(1, args.subscribers // len(users)),
                                     figures))
            log("stopping the hub")
    finally:
        if agent is not None:
            agent.stop()
        shutil.rmtree(home, ignore_errors=True)
    return figures


def _ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def report(figures: Figures, command: str) -> str:
    """The run's figures as the Markdown block of ``bench/RESULTS.md``."""
    lines = [
        "### Gateway authorisation + audit overhead, behind a real JupyterHub "
        f"(`{SCRIPT}`)",
        "",
        run_line(figures.engine) + f"  load={load_average()}  machine: 2 cores shared "
        "with other work",
        "",
        f"Command: `{command}` (total {figures.elapsed:.0f} s). Every gateway request "
        "carries a hub API token that the gateway checks through the hub (`HubAuth`, "
        "cached at most 5 s).",
        "",
    ]
    for name, times in figures.samples.items():
        rounds = len(times[WAYS[0]])
        lines += [f"**{name}** ({rounds} rounds, round-robin):", "",
                  "| way | p50 ms | p99 ms | + over direct, median ms | x direct, median |",
                  "|---|---:|---:|---:|---:|"]
        for way in WAYS:
            over = figures.overhead[name].get(way)
            ratio = figures.ratio[name].get(way)
            lines.append(
                f"| {way} | {_ms(statistics.median(times[way]))} | "
                f"{_ms(percentile(times[way], 0.99))} | "
                f"{_ms(statistics.median(over)) if over else '-'} | "
                f"{statistics.median(ratio):.2f} |" if ratio else
                f"| {way} | {_ms(statistics.median(times[way]))} | "
                f"{_ms(percentile(times[way], 0.99))} | - | 1.00 |")
        lines.append("")
    for name, over in figures.overhead.items():
        own, proxied, agent = (statistics.median(over[way]) for way in
                               (WAYS[2], WAYS[3], WAYS[1]))
        lines += [f"{name}: the gateway's own cost (its port, minus the agent's "
                  f"passthrough, which pays the same ASGI server and forwarding) "
                  f"{(own - agent) * 1000:+.2f} ms; the proxy hop "
                  f"{(proxied - own) * 1000:+.2f} ms (medians of per-round differences)."]
    lines.append("")
    if figures.cold:
        lines += [
            f"**Identity, cold vs warm** ({len(figures.cold)} fresh tokens, `GET "
            "/containers/json?all=1` through the proxy, one kept-alive connection): "
            f"cold (first use: the gateway asks the hub) p50 {_ms(statistics.median(figures.cold))}"
            f" ms, p99 {_ms(percentile(figures.cold, 0.99))} ms; warm (same token at once: "
            f"HubAuth's cache) p50 {_ms(statistics.median(figures.warm))} ms, p99 "
            f"{_ms(percentile(figures.warm, 0.99))} ms.", ""]
    if "gateway" in figures.flight:
        flight, direct = figures.flight["gateway"], figures.flight.get("direct")
        lines += [
            f"**{flight['users']} users listing at once** (each its own token and client, "
            f"`GET /containers/json?all=1` back to back through the proxy for "
            f"{flight['seconds']:.1f} s): {flight['rps']:.0f} req/s, p50 "
            f"{_ms(flight['p50'])} ms, p99 {_ms(flight['p99'])} ms, "
            f"{flight['ok']} answered 200, {flight['errors']} otherwise."
            + (f" The same {direct['users']} clients on the engine's socket directly: "
               f"{direct['rps']:.0f} req/s, p50 {_ms(direct['p50'])} ms, p99 "
               f"{_ms(direct['p99'])} ms." if direct else ""), ""]
    if figures.rss:
        rss = ", ".join(f"{key} {value / 1024:.1f} MiB" for key, value in figures.rss.items())
        grew = figures.rss.get("all open", 0) - figures.rss.get("before", 0)
        per = grew / figures.subscribers if figures.subscribers else 0.0
        lines += [
            f"**{figures.subscribers} event subscribers** (`ws /api/v1/events` through the "
            f"proxy, {figures.subscribers // max(1, figures.users)} per user across "
            f"{figures.users} users in {TEAMS} teams): gateway RSS {rss} "
            f"({per:.1f} KiB per open subscriber). One pause/unpause of a team-bt0 "
            f"container reached {figures.delivered} of the {figures.expected} "
            f"subscribers of that team within 20 s and {figures.strays} of the others "
            "(must be 0: events are filtered by team).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_engine_option(parser)
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the read")
    parser.add_argument("--mutating-rounds", type=int, default=60,
                        help="rounds of the restart (each ~0.5 s on Podman)")
    parser.add_argument("--cold", type=int, default=30, help="fresh tokens for cold/warm")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long the 50 users list at once")
    parser.add_argument("--update-results", action="store_true",
                        help="write the figures into bench/RESULTS.md (## Gateway (issue 10))")
    args = parser.parse_args(argv)
    if shutil.which("configurable-http-proxy") is None:
        raise SystemExit("configurable-http-proxy is not on PATH")
    interrupt_on_sigterm()
    started = time.monotonic()
    engine = BenchEngine(args.engine)
    figures = measure_on(engine, lambda: measure(engine, args))
    if figures is None:
        return 130
    figures.elapsed = time.monotonic() - started
    command = ".venv/bin/python -m bench.gateway_overhead " + " ".join(
        sys.argv[1:] if argv is None else argv)
    publish_report(report(figures, command.strip()), SCRIPT, update=args.update_results,
                   section="Gateway (issue 10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
