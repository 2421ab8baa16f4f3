"""Client CPU per request, without an engine: the Python work ghostpanel does per call.

    PYTHONPATH=. .venv/bin/python bench/cpu_per_request.py [--candidate PACKAGE_DIR]

Against a real engine every number carries the kernel's and the engine's share, and on
a loaded 2-core machine that share is noisy (and grows when the client is slow: the
engine's threads go idle between requests and each wake-up costs more). Here the
engine is replaced by canned bytes: the connection's writer feeds Podman's recorded
answer straight into the ``asyncio.StreamReader`` the transport reads, so each call
runs every line of ghostpanel's request path (httpx request, transport, header parsing,
response, error mapping) and nothing else -- no syscall, no event-loop turn.

Prints microseconds per call (best and median of several rounds) for
``env.system.ping()``, ``env.containers.list(all=True)`` (empty list), and per line for a
200,000-line ``logs()`` / ``log_batches()`` read, next to the raw http.client floor on
the same bytes -- for the current code and, with ``--candidate``, a modified copy of the
package side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._clients import CANDIDATE_PACKAGE, load_candidate
from bench._raw import LineDemuxer

LOG_LINES = 200_000

# One entry of Podman 4.3.1's GET /containers/json?all=1, as recorded (created container).
_ENTRY = (
    '{"Id":"%064x","Names":["/bench_%d"],"Image":"localhost/busybox:latest","ImageID":"sha256:'
    'ffb84e7f00bcc027751fde949e870a1fc1beeb6fc542baf0cd2ad322a6f8dca3","Command":"true",'
    '"Created":1795815932,"Ports":[],"Labels":{"ghostpanel.bench":"78d1018c59f5"},'
    '"State":"created","Status":"Created","NetworkSettings":{"Networks":{"podman":'
    '{"IPAMConfig":null,"Links":null,"Aliases":["4e0a23491290"],"NetworkID":"podman",'
    '"EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",'
    '"GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"","DriverOpts":null}}},'
    '"Mounts":[],"Name":"","Config":null,"NetworkingConfig":null,"Platform":null,'
    '"AdjustCPUShares":false}')
LIST_SIZE = 500


def _list_answer(count: int) -> bytes:
    body = ("[" + ",".join(_ENTRY % (n, n) for n in range(count)) + "]\n").encode()
    return (b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body))


LIST500 = _list_answer(LIST_SIZE)


def _log_answer(lines: int) -> bytes:
    chunks = []
    for number in range(1, lines + 1):
        payload = b"%d\n" % number
        frame = b"\x01\x00\x00\x00" + len(payload).to_bytes(4, "big") + payload
        chunks.append(b"%x\r\n%b\r\n" % (len(frame), frame))
    return (b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/octet-stream"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n")


LOGS = _log_answer(LOG_LINES)

# Podman 4.3.1's answers, as recorded on the wire (only Date and X-Reference-Id vary).
_PODMAN_HEAD = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nBuilder-Version: \r\nBuildkit-Version: \r\n"
    b"Cache-Control: no-cache\r\nDocker-Experimental: true\r\nLibpod-Api-Version: 4.3.1\r\n"
    b"Libpod-Buildah-Version: 1.28.2\r\nPragma: no-cache\r\nServer: Libpod/4.3.1 (linux)\r\n"
    b"X-Reference-Id: 0xc000014198\r\nDate: Fri, 27 Nov 2026 21:02:54 GMT\r\n")
PING = _PODMAN_HEAD + b"Content-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOK"
LIST = (b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
        b"Libpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\n"
        b"X-Reference-Id: 0xc000014198\r\nDate: Fri, 27 Nov 2026 21:02:54 GMT\r\n"
        b"Content-Length: 3\r\n\r\n[]\n")


class _CannedTransport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0


class CannedWriter:
    """Stands in for ``asyncio.StreamWriter``: every request is answered at once."""

    def __init__(self, reader: asyncio.StreamReader, answer: bytes) -> None:
        self.reader = reader
        self.answer = answer
        self.transport = _CannedTransport()

    def write(self, data: bytes) -> None:
        self.reader.feed_data(self.answer)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.transport.closing = True


async def _measure(package: str, rounds: int, calls: int) -> dict[str, float]:
    engine = importlib.import_module(f"{package}.engine")
    transport_mod = importlib.import_module(f"{package}.engine._transport")
    env = engine.Environment("unix:///canned.sock")
    client = env.client
    # Negotiated already, as after a first request (the attribute moved between versions).
    client._version = engine.EngineVersion.from_attrs({"ApiVersion": "1.41",
                                                       "Components": [{"Name": "Podman"}]})
    if hasattr(client, "_api_version"):
        client._api_version = "1.41"
    transport = client._transport

    def connect(answer: bytes) -> None:
        reader = asyncio.StreamReader(limit=256 * 1024)
        conn = transport_mod._Connection(reader, CannedWriter(reader, answer))
        transport._idle[:] = [conn]

    async def timed(fn: Any) -> float:
        best = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                await fn()
            best.append((time.perf_counter() - start) / calls * 1e6)
        return min(best), statistics.median(best)

    async def timed_n(fn: Any, rounds_n: int, calls_n: int) -> tuple[float, float]:
        values = []
        for _ in range(rounds_n):
            start = time.perf_counter()
            for _ in range(calls_n):
                connect(LIST500)
                await fn()
            values.append((time.perf_counter() - start) / calls_n * 1e6)
        return min(values), statistics.median(values)

    out = {}
    connect(PING)
    assert await env.system.ping() is True
    out["env.system.ping()"] = await timed(env.system.ping)
    connect(LIST)

    async def list_all() -> None:
        assert await env.containers.list(all=True) == []

    out["env.containers.list(all=True)"] = await timed(list_all)

    connect(LIST500)

    async def list_500() -> None:
        assert len(await env.containers.list(all=True)) == LIST_SIZE

    best, median = await timed_n(list_500, max(3, rounds // 3), 20)
    out[f"env.containers.list(all=True), {LIST_SIZE}"] = (best, median)

    # Logs: 200,000 one-line frames, one chunk each, as Podman sends them. Reported as
    # us per line (best and median of a few whole reads).
    container = engine.Container(client, {"Id": "canned", "Config": {"Tty": False}})
    for label, read in (("container.logs(), per line", _read_logs),
                        ("container.log_batches(), per line", _read_batches)):
        values = []
        for _ in range(max(3, rounds // 3)):
            connect(LOGS)
            start = time.perf_counter()
            count = await read(container)
            values.append((time.perf_counter() - start) / LOG_LINES * 1e6)
            assert count == LOG_LINES, count
        out[label] = (min(values), statistics.median(values))
    return out


async def _read_logs(container: Any) -> int:
    return len(await container.logs())


async def _read_batches(container: Any) -> int:
    count = 0
    async for batch in container.log_batches():
        count += len(batch)
    return count


class _CannedSocket:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.answer), 65536)


def raw_http_client_list(rounds: int, calls: int = 20) -> tuple[float, float]:
    """The list floor's CPU on the same bytes: http.client + json.loads."""
    values = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            response = http.client.HTTPResponse(_CannedSocket(LIST500))  # type: ignore[arg-type]
            response.begin()
            assert len(json.loads(response.read())) == LIST_SIZE
        values.append((time.perf_counter() - start) / calls * 1e6)
    return min(values), statistics.median(values)


def raw_http_client_logs(rounds: int) -> tuple[float, float]:
    """The floor's CPU per line on the same bytes: http.client + the bench's demux."""
    values = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = http.client.HTTPResponse(_CannedSocket(LOGS))  # type: ignore[arg-type]
        response.begin()
        demux = LineDemuxer()
        lines: list[tuple[int, str]] = []  # kept, as logs() keeps them
        while data := response.read(256 * 1024):
            lines += demux.feed(data)
        values.append((time.perf_counter() - start) / LOG_LINES * 1e6)
        assert len(lines) == LOG_LINES
    return min(values), statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidate", metavar="PACKAGE_DIR")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    packages = ["ghostpanel_kernel"]
    if args.candidate:
        load_candidate(args.candidate)
        packages.append(CANDIDATE_PACKAGE)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(2):  # alternate, twice, so that drift hits every client alike
        for package in packages:
            for name, (best, median) in asyncio.run(
                    _measure(package, args.rounds // 2 + 1, args.calls)).items():
                results.setdefault((package, name), []).append((best, median))
        results.setdefault(("raw http.client", f"GET + json.loads, {LIST_SIZE} containers"),
                           []).append(raw_http_client_list(3))
        results.setdefault(("raw http.client", "read + demux, lines kept, per line"),
                           []).append(raw_http_client_logs(3))
    print("client CPU, us per call (per line for logs); the engine replaced by canned bytes;"
          " best / median of rounds")
    for (package, name), values in results.items():
        best = min(v[0] for v in values)
        median = statistics.median(v[1] for v in values)
        print(f"  {package:22s} {name:36s} best {best:7.2f}   median {median:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
