"""``ghostpanel agent``: start to first answered request, idle memory, and stop.

Run from the repository root (needs podman + runc + busybox-static, as ``bench/run.py``)::

    PYTHONPATH=. .venv/bin/python bench/agent_start.py                   # ~30 s
    PYTHONPATH=. .venv/bin/python bench/agent_start.py --update-results  # + RESULTS.md

Each round starts a real ``python -m ghostpanel_kernel.cli agent`` process on a free
loopback port against a private Podman engine (or ``--engine unix:///...``), with a
fresh GhostPanel home holding one token, and times, from ``Popen``:

* **first answer**: until ``GET /api/v1/health`` with the token is answered 200 over
  HTTPS (TLS 1.3, HTTP/1.1), the client retrying its connection every 5 ms; the
  health route pings the engine, so the figure covers the whole path; with the CPU
  time the agent process used until then (on a machine shared with other sessions,
  the wall time also counts the time it waited for a core);
* **idle RSS**: the process's resident memory (``VmRSS``) 2 s after that answer,
  after 100 more requests on one connection, nothing in flight, and after one HTTP/3
  request (the agent loads aioquic and ``cryptography`` for its first QUIC packet);
* **stop**: from SIGTERM to the process's exit (its status must be 0).

One more round listens on a unix socket (plain HTTP: no TLS, no HTTP/3), for the
share of the memory that TLS costs.

The first round of a home makes the self-signed certificate; it is reported on its
own ("first start"), the others reuse it ("restart"). Targets (issue 8): start to first
answered request < 1 s, idle RSS < 50 MB.
"""

from __future__ import annotations

import argparse
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
from bench._proc import cpu_seconds, rss_kib
from bench._report import load_average, run_line
from tests.agent_process import free_port

#: Seconds one agent may take to answer before the round fails.
_START_LIMIT = 30.0


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ghostpanel_kernel.cli", "--home", str(home), *args]


class _Client:
    """HTTP/1.1 over TLS (or over a unix socket) on one kept-alive connection, with the
    least parsing."""

    def __init__(self, port: int, token: str, cafile: Path, *,
                 unix_socket: Path | None = None) -> None:
        self._tls: socket.socket
        if unix_socket is not None:
            self._tls = socket.socket(socket.AF_UNIX)
            self._tls.settimeout(5)
            self._tls.connect(str(unix_socket))
            self.tls_version: str | None = None
        else:
            context = ssl.create_default_context(cafile=str(cafile))
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context.wrap_socket(
                socket.create_connection(("127.0.0.1", port), 5), server_hostname="127.0.0.1")
            self.tls_version = self._tls.version()
        self._request = (f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n").encode()

    def health(self) -> int:
        self._tls.sendall(self._request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._tls.recv(65536)
            if not chunk:
                raise ConnectionError("the agent closed the connection")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += self._tls.recv(65536)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self._tls.close()


@dataclass
class Round:
    first_answer_s: float
    cpu_to_first_answer_s: float
    rss_idle_mb: float
    rss_after_100_mb: float
    rss_after_http3_mb: float | None
    stop_s: float
    exit_status: int
    tls_version: str | None


@dataclass
class Figures:
    first: Round | None = None
    restarts: list[Round] = field(default_factory=list)
    unix: Round | None = None


def one_round(home: Path, engine_url: str, token: str, *, unix: bool = False) -> Round:
    port = free_port()
    cafile = home / "agent" / "tls" / "agent.crt"
    unix_socket = home / "agent.sock" if unix else None
    listen = f"unix://{unix_socket}" if unix_socket else f"127.0.0.1:{port}"
    with open(home / "agent.log", "ab") as output:
        started = time.monotonic()
        process = subprocess.Popen(
            _cli(home, "agent", "--listen", listen, "--engine", engine_url),
            stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    client = None
    try:
        while client is None:
            if process.poll() is not None:
                raise RuntimeError(f"the agent exited with {process.returncode}: see "
                                   f"{home / 'agent.log'}")
            if time.monotonic() - started > _START_LIMIT:
                raise RuntimeError(f"no answer in {_START_LIMIT} s")
            try:
                client = _Client(port, token, cafile, unix_socket=unix_socket)
                status = client.health()
            except (OSError, ssl.SSLError):
                if client is not None:
                    client.close()
                client = None
                time.sleep(0.005)
        first_answer = time.monotonic() - started
        cpu_to_first_answer = cpu_seconds(process.pid)
        if status != 200:
            raise RuntimeError(f"GET /api/v1/health answered {status}")
        time.sleep(2)
        rss_idle = rss_kib(process.pid) / 1024
        for _ in range(100):
            client.health()
        time.sleep(1)
        rss_after = rss_kib(process.pid) / 1024
        rss_http3 = None
        if unix_socket is None:
            _http3_health(port, token, cafile)
            time.sleep(1)
            rss_http3 = rss_kib(process.pid) / 1024
        tls_version = client.tls_version
    finally:
        if client is not None:
            client.close()
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
    return Round(first_answer, cpu_to_first_answer, rss_idle, rss_after, rss_http3,
                 time.monotonic() - stopping, status, tls_version)


def _http3_health(port: int, token: str, cafile: Path) -> None:
    """One ``GET /api/v1/health`` over HTTP/3 (GhostPanel's own h3 transport)."""
    import asyncio

    import httpx

    from ghostpanel_kernel.engine import Endpoint, TLSConfig
    from ghostpanel_kernel.engine._h3_transport import H3Transport

    async def get() -> int:
        endpoint = Endpoint.parse(f"h3://127.0.0.1:{port}",
                                  tls=TLSConfig(ca_cert=str(cafile)))
        transport = H3Transport(endpoint, connect_timeout=10)
        try:
            request = httpx.Request("GET", f"https://127.0.0.1:{port}/api/v1/health",
                                    headers={"Authorization": f"Bearer {token}"},
                                    extensions={"timeout": {"connect": 10, "read": 10}})
            response = await transport.handle_async_request(request)
            return response.status_code
        finally:
            await transport.aclose()

    status = asyncio.run(get())
    if status != 200:
        raise RuntimeError(f"GET /api/v1/health over HTTP/3 answered {status}")


def measure(engine_url: str, rounds: int) -> Figures:
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="gpb-agent-") as directory:
        home = Path(directory)
        made = subprocess.run(_cli(home, "agent", "token", "create", "bench"),
                              capture_output=True, text=True, check=True)
        token = made.stdout.strip().splitlines()[-1]
        for index in range(rounds + 1):
            result = one_round(home, engine_url, token)
            log(f"round {index}: first answer {result.first_answer_s * 1000:.0f} ms "
                f"(CPU {result.cpu_to_first_answer_s * 1000:.0f} ms), "
                f"idle RSS {result.rss_idle_mb:.1f} MB, stop {result.stop_s * 1000:.0f} ms, "
                f"exit {result.exit_status}")
            if index == 0:
                figures.first = result
            else:
                figures.restarts.append(result)
        figures.unix = one_round(home, engine_url, token, unix=True)
        log(f"unix socket: idle RSS {figures.unix.rss_idle_mb:.1f} MB")
    return figures


def _row(name: str, values: list[float], unit: str, target: str) -> str:
    median = statistics.median(values)
    return (f"| {name} | {median:,.{3 if unit == 's' else 1}f} | {unit} | "
            f"{min(values):,.3f}..{max(values):,.3f} | {target} |")


def report(figures: Figures, *, engine: str, elapsed: float) -> str:
    assert figures.first is not None
    restarts = figures.restarts
    load = load_average()
    lines = [
        "### Agent start and idle memory (`bench/agent_start.py`)",
        "",
        f"{run_line(engine)}  "
        f"TLS={restarts[0].tls_version if restarts else figures.first.tls_version}",
        f"wall time {elapsed:.0f} s; load average at end {load}; {len(restarts)} restarts "
        "after one first start",
        "",
        "| measure | median | unit | min..max | target |",
        "|---|---:|---|---|---|",
        _row("first start (certificate made): start to first answered request",
             [figures.first.first_answer_s], "s", "< 1 s"),
        _row("restart (certificate kept): start to first answered request",
             [r.first_answer_s for r in restarts], "s", "< 1 s"),
        _row("restart: CPU time the agent used until that answer (user + system)",
             [r.cpu_to_first_answer_s for r in restarts], "s",
             "(a quiet machine's wall time approaches it)"),
        _row("idle RSS, 2 s after the first answer",
             [r.rss_idle_mb for r in restarts], "MB", "< 50 MB"),
        _row("idle RSS after 100 more requests",
             [r.rss_after_100_mb for r in restarts], "MB", "< 50 MB"),
        _row("idle RSS after one HTTP/3 request as well (aioquic, cryptography loaded)",
             [r.rss_after_http3_mb for r in restarts if r.rss_after_http3_mb is not None],
             "MB", "< 50 MB"),
        _row("SIGTERM to exit", [r.stop_s for r in [figures.first, *restarts]], "s", ""),
        _row("for comparison: idle RSS on a unix socket (no TLS, no HTTP/3)",
             [figures.unix.rss_idle_mb] if figures.unix else [0.0], "MB", ""),
        "",
        f"Every stop exited with status "
        f"{sorted({r.exit_status for r in [figures.first, *restarts]})}.",
        "The machine is shared (2 cores, other sessions' suites beside it): start times "
        "vary with its load.",
        "The unix-socket row is the same agent without TLS and HTTP/3. HTTP/3's share "
        "(aioquic, and cryptography, whose extension carries its own OpenSSL) is loaded "
        "with the first QUIC packet, not at start: the HTTP/3 row shows it.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_engine_option(parser)
    parser.add_argument("--rounds", type=int, default=5, help="restarts measured")
    parser.add_argument("--update-results", action="store_true",
                        help="write the figures into bench/RESULTS.md (## Agent)")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    started = time.monotonic()
    engine = BenchEngine(args.engine)
    figures = measure_on(engine, lambda: measure(engine.url, args.rounds))
    if figures is None:
        return 130
    section = report(figures, engine=engine.label,
                     elapsed=time.monotonic() - started)
    publish_report(section, "bench/agent_start.py", update=args.update_results,
                   section="Agent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
