"""The agent's Engine API passthrough: what it adds over the engine's own socket, and
HTTP/3 next to HTTPS with 50 requests in flight.

Run from the repository root (needs podman + runc + busybox-static, as ``bench/run.py``)::

    PYTHONPATH=. .venv/bin/python bench/agent_passthrough.py                   # ~2 min
    PYTHONPATH=. .venv/bin/python bench/agent_passthrough.py --update-results  # + RESULTS.md

One run, one private Podman engine (or ``--engine unix:///...``), two real ``ghostpanel
agent`` processes on it: one on a loopback port (HTTPS and HTTP/3) and one on a unix
socket (plain HTTP: no TLS), so that the agent's own cost and TLS's can be told apart.
Every client is measured round-robin, the order rotating each round (``bench/README.md``);
the table shows medians over rounds, and each ratio is the median of the per-round
ratios to the direct client of the same kind.

* **ping** (``GET /_ping``, sequential, one kept-alive connection): the floors are hand-
  written HTTP/1.1 on a bare socket (the engine's unix socket; a bare Hypercorn serving
  a trivial ASGI app, on a unix socket and on TLS 1.3, which is what any ASGI app on this
  server pays; the agent's unix socket; the agent's TLS 1.3 port); then GhostPanel's
  client (``connect()``) direct, over HTTPS and over HTTP/3. (docker-py through the
  agent is left out: requests refused the agent's self-signed certificate given as its
  CA, which Python's ``ssl`` accepts.)
* **list** (``GET /containers/json?all=1`` with 50 containers) and **logs** (a whole
  200,000-line log, ``follow=false``): GhostPanel's client direct, over HTTPS, over HTTP/3.
* **in flight**: 50 concurrent callers, each sending ``GET /_ping`` back to back
  through one ``httpx.AsyncClient``: HTTPS HTTP/1.1 (a pool of 50 connections), HTTPS
  HTTP/2 (one connection), and GhostPanel's HTTP/3 transport (one QUIC connection):
  requests per second and each request's latency (p50, p99).

Targets (issue 8): ``/_ping`` adds <= 1 ms over HTTPS and over HTTP/3; list at 50
containers <= 1.2x direct; logs >= 0.8x direct.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import (
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)
from bench._report import load_average, percentile, run_line
from tests.agent_process import free_port

Call = Callable[[], Awaitable[Any]]

#: Seconds one agent may take to say it is ready.
_START_LIMIT = 30.0


# -- agents -------------------------------------------------------------------------


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ghostpanel_kernel.cli", "--home", str(home), *args]


@dataclass
class Agent:
    home: Path
    listen: str
    process: subprocess.Popen[bytes]

    @property
    def cafile(self) -> Path:
        return self.home / "agent" / "tls" / "agent.crt"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_agent(home: Path, engine_url: str, listen: str) -> Agent:
    output_path = home / f"agent-{len(list(home.glob('agent-*.log')))}.log"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            _cli(home, "agent", "--listen", listen, "--engine", engine_url),
            stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    deadline = time.monotonic() + _START_LIMIT
    while b"ghostpanel agent ready" not in output_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the agent did not start: "
                               f"{output_path.read_text(errors='replace')}")
        time.sleep(0.02)
    return Agent(home, listen, process)


def start_bare_hypercorn(home: Path, bind: str, *, tls: bool) -> subprocess.Popen[bytes]:
    """Hypercorn alone, serving a trivial ASGI app (``tests/unit/h3_server.py``: ``/_ping``
    answers "OK" at once): the floor of any ASGI server in this stack."""
    tls_dir = home / "agent" / "tls"
    command = [sys.executable, "-m", "hypercorn", "--bind", bind, "--log-level", "WARNING",
               "--keep-alive", "60"]
    if tls:
        command += ["--certfile", str(tls_dir / "agent.crt"),
                    "--keyfile", str(tls_dir / "agent.key")]
    process = subprocess.Popen([*command, "tests.unit.h3_server:app"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + _START_LIMIT
    while True:
        try:
            if bind.startswith("unix:"):
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(bind.removeprefix("unix:"))
            else:
                socket.create_connection(("127.0.0.1", int(bind.rpartition(":")[2])),
                                         1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare Hypercorn did not start") from None
            time.sleep(0.02)


# -- floors: HTTP/1.1 by hand -------------------------------------------------------


class RawPing:
    """``GET /_ping`` written and read by hand on one kept-alive connection: a unix
    socket, or TLS 1.3 to the agent."""

    def __init__(self, *, unix: str | None = None, port: int | None = None,
                 cafile: Path | None = None, token: str | None = None) -> None:
        self._unix, self._port, self._cafile = unix, port, cafile
        self.sock = self._connect()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = f"GET /_ping HTTP/1.1\r\nHost: engine\r\n{auth}\r\n".encode()

    def _connect(self) -> socket.socket:
        if self._unix is not None:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self._unix)
            return sock
        context = ssl.create_default_context(cafile=str(self._cafile))
        context.set_alpn_protocols(["http/1.1"])
        return context.wrap_socket(socket.create_connection(("127.0.0.1", self._port), 5),
                                   server_hostname="127.0.0.1")

    def ping(self) -> None:
        try:
            self._ping()
        except (BrokenPipeError, ConnectionResetError):
            # Hypercorn ends a kept-alive connection after 1,000 requests (its
            # keep_alive_max_requests); a client reconnects, and so does this one.
            self.sock.close()
            self.sock = self._connect()
            self._ping()

    def _ping(self) -> None:
        self.sock.sendall(self.request)
        data = b""
        while True:
            received = self.sock.recv(65536)
            if not received:
                raise ConnectionResetError("closed by the server")
            data += received
            head, separator, body = data.partition(b"\r\n\r\n")
            if not separator:
                continue
            if b"transfer-encoding: chunked" in head.lower():
                if body.endswith(b"0\r\n\r\n"):
                    break
            else:
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                if len(body) >= length:
                    break
        if not data.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"ping answered {data[:40]!r}")

    def close(self) -> None:
        self.sock.close()


# -- measuring ----------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    client: str
    unit: str
    samples: list[float] = field(default_factory=list)
    reference: str | None = None  # the client its ratio is taken against
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def _rotated(items: list[Any], round_no: int) -> list[Any]:
    shift = round_no % len(items)
    return items[shift:] + items[:shift]


async def _timed_calls(call: Call, seconds: float) -> tuple[int, float]:
    """Call ``call`` back to back for about ``seconds``; (calls, elapsed)."""
    count = 0
    began = time.perf_counter()
    while True:
        await call()
        count += 1
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return count, elapsed


async def per_call(rows: dict[str, Row], calls: dict[str, Call], rounds: int,
                   seconds: float, *, scale: float = 1000.0) -> None:
    """ms per call (``scale`` 1000) of each client, round-robin."""
    for call in calls.values():  # warm-up: connections, caches
        for _ in range(3):
            await call()
    for round_no in range(rounds):
        for name in _rotated(list(calls), round_no):
            gc.collect()
            try:
                count, elapsed = await _timed_calls(calls[name], seconds)
            except OSError as error:
                raise RuntimeError(f"{name}: {error}") from error
            rows[name].samples.append(elapsed / count * scale)


async def in_flight(client: httpx.AsyncClient, url: str, width: int, total: int
                    ) -> tuple[float, list[float]]:
    """``total`` requests by ``width`` concurrent callers; (req/s, latencies in ms)."""
    latencies: list[float] = []
    remaining = total

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            response = await client.get(url)
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(width)))
    return total / (time.perf_counter() - began), latencies


# -- the run ------------------------------------------------------------------------


@dataclass
class Figures:
    rows: list[Row]
    flight: dict[str, dict[str, list[float]]]
    lines: int
    containers: int
    width: int
    protocols: dict[str, str]


async def measure(engine: BenchEngine, home: Path, rounds: int, lines: int,
                  width: int, flight_total: int) -> Figures:
    from ghostpanel_kernel import connect
    from ghostpanel_kernel.engine import Endpoint, TLSConfig
    from ghostpanel_kernel.engine._h3_transport import H3Transport

    made = subprocess.run(_cli(home, "agent", "token", "create", "bench"),
                          capture_output=True, text=True, check=True)
    token = made.stdout.strip().splitlines()[-1]
    tcp = start_agent(home, engine.url, f"127.0.0.1:{free_port()}")
    unix = start_agent(home, engine.url, f"unix://{home / 'agent.sock'}")
    bare_port = free_port()
    bare = [start_bare_hypercorn(home, f"unix:{home / 'bare.sock'}", tls=False),
            start_bare_hypercorn(home, f"127.0.0.1:{bare_port}", tls=True)]
    envs: list[Any] = []
    raws: list[RawPing] = []
    try:
        https_url, h3_url = f"https://127.0.0.1:{tcp.port}", f"h3://127.0.0.1:{tcp.port}"
        direct = connect(engine.url, name="direct")
        https = connect(https_url, name="https", token=token,
                        tls=TLSConfig(ca_cert=str(tcp.cafile)))
        h3 = connect(h3_url, name="h3", token=token, tls=TLSConfig(ca_cert=str(tcp.cafile)))
        envs += [direct, https, h3]

        # -- ping ------------------------------------------------------------------
        log("ping")
        raw_direct = RawPing(unix=engine.socket_path)
        raw_unix_agent = RawPing(unix=str(home / "agent.sock"), token=token)
        raw_tls_agent = RawPing(port=tcp.port, cafile=tcp.cafile, token=token)
        raw_bare = RawPing(unix=str(home / "bare.sock"))
        raw_bare_tls = RawPing(port=bare_port, cafile=tcp.cafile)
        raws += [raw_direct, raw_unix_agent, raw_tls_agent, raw_bare, raw_bare_tls]

        def sync(call: Callable[[], None]) -> Call:
            async def run() -> None:
                call()
            return run

        ping_calls: dict[str, Call] = {
            "raw socket, direct": sync(raw_direct.ping),
            "raw socket, bare Hypercorn + trivial app (no TLS)": sync(raw_bare.ping),
            "raw TLS 1.3 socket, bare Hypercorn + trivial app": sync(raw_bare_tls.ping),
            "raw socket, agent on a unix socket (no TLS)": sync(raw_unix_agent.ping),
            "raw TLS 1.3 socket, agent HTTPS": sync(raw_tls_agent.ping),
            "ghostpanel, direct": direct.system.ping,
            "ghostpanel, agent HTTPS": https.system.ping,
            "ghostpanel, agent HTTP/3": h3.system.ping,
        }
        references = {
            "raw socket, bare Hypercorn + trivial app (no TLS)": "raw socket, direct",
            "raw TLS 1.3 socket, bare Hypercorn + trivial app": "raw socket, direct",
            "raw socket, agent on a unix socket (no TLS)": "raw socket, direct",
            "raw TLS 1.3 socket, agent HTTPS": "raw socket, direct",
            "ghostpanel, agent HTTPS": "ghostpanel, direct",
            "ghostpanel, agent HTTP/3": "ghostpanel, direct",
        }
        ping_rows = {name: Row("ping", name, "ms/call", reference=references.get(name))
                     for name in ping_calls}
        await per_call(ping_rows, ping_calls, rounds, 0.4)

        # -- list ------------------------------------------------------------------
        log("creating 50 containers")
        ids = await engine.create_containers(50)
        containers = len(await direct.containers.list(all=True))

        def lister(env: Any) -> Call:
            async def run() -> None:
                await env.containers.list(all=True)
            return run

        list_calls = {"ghostpanel, direct": lister(direct),
                      "ghostpanel, agent HTTPS": lister(https),
                      "ghostpanel, agent HTTP/3": lister(h3)}
        list_rows = {name: Row(f"list ({containers} containers)", name, "ms/call",
                               reference=None if name.endswith("direct")
                               else "ghostpanel, direct") for name in list_calls}
        log(f"list of {containers} containers")
        await per_call(list_rows, list_calls, rounds, 0.5)
        await engine.remove(ids)

        # -- logs ------------------------------------------------------------------
        log(f"a container printing {lines:,} lines")
        (cid,) = await engine.create_containers(1, command=["seq", "1", str(lines)])
        if await engine.start_and_wait(cid) != 0:
            raise RuntimeError("the log container failed")
        handles = {name: await env.containers.get(cid) for name, env in
                   (("ghostpanel, direct", direct), ("ghostpanel, agent HTTPS", https),
                    ("ghostpanel, agent HTTP/3", h3))}
        log_rows = {name: Row(f"logs ({lines:,} lines)", name, "lines/s",
                              reference=None if name.endswith("direct")
                              else "ghostpanel, direct") for name in handles}
        await handles["ghostpanel, direct"].logs()  # page cache
        for round_no in range(rounds):
            for name in _rotated(list(handles), round_no):
                gc.collect()
                began = time.perf_counter()
                got = len(await handles[name].logs())
                elapsed = time.perf_counter() - began
                if got != lines:
                    raise RuntimeError(f"{name} read {got} lines of {lines}")
                log_rows[name].samples.append(lines / elapsed)
        await engine.remove([cid])

        # -- 50 in flight ----------------------------------------------------------
        log(f"{width} in flight")
        verify = ssl.create_default_context(cafile=str(tcp.cafile))
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
        h3_transport = H3Transport(Endpoint.parse(h3_url,
                                                  tls=TLSConfig(ca_cert=str(tcp.cafile))))
        clients = {
            "HTTPS HTTP/1.1 (httpx, 50 connections)": httpx.AsyncClient(
                verify=verify, headers=headers, limits=limits, http2=False),
            "HTTPS HTTP/2 (httpx, 1 connection)": httpx.AsyncClient(
                verify=verify, headers=headers, limits=limits, http2=True),
            "HTTP/3 (ghostpanel's transport, 1 QUIC connection)": httpx.AsyncClient(
                transport=h3_transport, headers=headers),
        }
        protocols = {}
        flight: dict[str, dict[str, list[float]]] = {
            name: {"rps": [], "p50": [], "p99": []} for name in clients}
        url = f"https://127.0.0.1:{tcp.port}/_ping"
        try:
            for name, client in clients.items():  # warm-up: the pools fill
                await in_flight(client, url, width, width * 2)
                protocols[name] = (await client.get(url)).http_version
            for round_no in range(rounds):
                for name in _rotated(list(clients), round_no):
                    gc.collect()
                    rps, latencies = await in_flight(clients[name], url, width, flight_total)
                    flight[name]["rps"].append(rps)
                    flight[name]["p50"].append(percentile(latencies, 0.5))
                    flight[name]["p99"].append(percentile(latencies, 0.99))
        finally:
            for client in clients.values():
                await client.aclose()
        rows = [*ping_rows.values(), *list_rows.values(), *log_rows.values()]
        return Figures(rows, flight, lines, containers, width, protocols)
    finally:
        for raw in raws:
            raw.close()
        for env in envs:
            await env.aclose()
        tcp.stop()
        unix.stop()
        for process in bare:
            process.terminate()
            process.wait(30)


def _ratio(row: Row, by_name: dict[str, Row]) -> float | None:
    if row.reference is None:
        return None
    reference = by_name[row.reference]
    return statistics.median(a / b for a, b in zip(row.samples, reference.samples,
                                                    strict=False))


def report(figures: Figures, *, engine: str, elapsed: float, rounds: int) -> str:
    load = load_average()
    lines = [
        "### Agent passthrough and HTTP/3 vs HTTPS (`bench/agent_passthrough.py`)",
        "",
        run_line(engine),
        f"wall time {elapsed:.0f} s; load average at end {load}; {rounds} rounds, "
        "round-robin",
        "",
        "| scenario | client | median | unit | min..max | vs direct | added |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    by_name = {(row.scenario, row.client): row for row in figures.rows}
    for row in figures.rows:
        same = {client: r for (scenario, client), r in by_name.items()
                if scenario == row.scenario}
        ratio = _ratio(row, same)
        added = ""
        if row.reference is not None and row.unit == "ms/call":
            added = f"+{row.median - same[row.reference].median:.3f} ms"
        lines.append(f"| {row.scenario} | {row.client} | {row.median:,.3f} | {row.unit} | "
                     f"{min(row.samples):,.3f}..{max(row.samples):,.3f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}x'} | {added} |")
    lines += [
        "",
        f"{figures.width} requests in flight (`GET /_ping` through the agent, 50 "
        "concurrent callers on one `httpx.AsyncClient`):",
        "",
        "| transport | protocol seen | req/s | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for name, values in figures.flight.items():
        lines.append(f"| {name} | {figures.protocols.get(name, '?')} | "
                     f"{statistics.median(values['rps']):,.0f} | "
                     f"{statistics.median(values['p50']):.2f} | "
                     f"{statistics.median(values['p99']):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_engine_option(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per in-flight round")
    parser.add_argument("--update-results", action="store_true",
                        help="write the figures into bench/RESULTS.md (## Agent)")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    started = time.monotonic()
    engine = BenchEngine(args.engine)
    home = Path(tempfile.mkdtemp(prefix="gpb-agent-", dir="/tmp"))
    try:
        figures = measure_on(engine, lambda: asyncio.run(measure(
            engine, home, args.rounds, args.lines, args.in_flight, args.requests)))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if figures is None:
        return 130
    section = report(figures, engine=engine.label,
                     elapsed=time.monotonic() - started, rounds=args.rounds)
    publish_report(section, "bench/agent_passthrough.py", update=args.update_results,
                   section="Agent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
