"""The raw floors: HTTP/1.1 over the engine's unix socket written by hand.

Nothing here is a client library. These are the cheapest ways Python has to ask the
engine something, and every library is compared with them:

* :class:`UnixHTTPConnection` -- blocking ``http.client`` over ``AF_UNIX``, keep-alive
  (one connection reused for every request).
* :func:`raw_ping_socket` -- a bare ``socket`` sending a prebuilt ``GET /_ping`` and
  reading the fixed-size answer: the floor under ``http.client`` itself.
* :class:`AsyncRawConnection` -- asyncio streams, the request written by hand and the
  response parsed by hand (``Content-Length`` or chunked): the floor for async callers
  and for requests in flight.
* :class:`LineDemuxer` -- an incremental demux of Docker's multiplexed log frames that
  turns every frame into ``(stream, text)`` lines, the work every log reader must do.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from typing import Any

HOST = "d"


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a unix socket; keep-alive is http.client's own."""

    def __init__(self, socket_path: str, timeout: float = 120.0) -> None:
        super().__init__(HOST, timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class RawSync:
    """The blocking floor: one keep-alive ``http.client`` connection."""

    def __init__(self, socket_path: str, api: str) -> None:
        self.socket_path = socket_path
        self.api = api
        self.conn = UnixHTTPConnection(socket_path)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self.conn
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def ping(self) -> bytes:
        self.conn.request("GET", "/_ping")
        return self.conn.getresponse().read()

    def list_all(self) -> int:
        self.conn.request("GET", f"/v{self.api}/containers/json?all=1")
        return len(json.loads(self.conn.getresponse().read()))

    def logs(self, cid: str) -> int:
        """Read a whole log with ``http.client`` and demux it incrementally; count lines."""
        conn = self.conn
        conn.request("GET", f"/v{self.api}/containers/{cid}/logs?stdout=1&stderr=1")
        response = conn.getresponse()
        demux = LineDemuxer()
        count = 0
        read = response.read
        while data := read(256 * 1024):
            count += len(demux.feed(data))
        return count + len(demux.finish())

    def logs_kept(self, cid: str) -> int:
        """As :meth:`logs`, keeping every line in one list (what ``logs()`` returns)."""
        conn = self.conn
        conn.request("GET", f"/v{self.api}/containers/{cid}/logs?stdout=1&stderr=1")
        response = conn.getresponse()
        demux = LineDemuxer()
        lines: list[tuple[int, str]] = []
        read = response.read
        while data := read(256 * 1024):
            lines += demux.feed(data)
        lines += demux.finish()
        return len(lines)

    def close(self) -> None:
        self.conn.close()


class RawSocketPing:
    """The floor under http.client: prebuilt request bytes, one recv per answer."""

    REQUEST = f"GET /_ping HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()

    def __init__(self, socket_path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.buffer = b""
        # Learn the size of the (fixed) answer once, so each ping is send + recv.
        self.sock.sendall(self.REQUEST)
        if not self._read_answer().endswith(b"\r\n\r\nOK"):
            raise RuntimeError("unexpected /_ping answer")

    def _read_answer(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += self.sock.recv(65536)
        return head + b"\r\n\r\n" + body

    def ping(self) -> bytes:
        sock = self.sock
        sock.sendall(self.REQUEST)
        data = sock.recv(65536)
        # The answer's body is "OK" (Content-Length: 2); headers vary a little in size.
        while not (data.endswith(b"\r\n\r\nOK")):
            data += sock.recv(65536)
        return data

    def close(self) -> None:
        self.sock.close()


class AsyncRawConnection:
    """asyncio streams, HTTP/1.1 by hand: the floor for async callers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, socket_path: str) -> AsyncRawConnection:
        reader, writer = await asyncio.open_unix_connection(socket_path, limit=256 * 1024)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if chunked:
            pieces = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                pieces.append(await self.reader.readexactly(size + 2))
            return status, b"".join(p[:-2] for p in pieces)
        if length is None:
            return status, b""
        return status, await self.reader.readexactly(length) if length else b""

    async def ping(self) -> bytes:
        # Hand-written for the ping floor: prebuilt bytes, Content-Length only.
        self.writer.write(RawSocketPing.REQUEST)
        head = await self.reader.readuntil(b"\r\n\r\n")
        start = head.find(b"Content-Length: ")
        length = int(head[start + 16:head.find(b"\r\n", start)])
        return await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


class LineDemuxer:
    """Incremental demux of multiplexed log frames into ``(stream, text)`` lines.

    Handles frames split across reads and payloads holding several lines (or part of
    one), like a real reader must; the fast path is one line per frame, which is what
    Podman sends.
    """

    __slots__ = ("buffer", "partial")

    def __init__(self) -> None:
        self.buffer = b""
        self.partial: dict[int, str] = {}

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        buffer = self.buffer + data if self.buffer else data
        end = len(buffer)
        pos = 0
        lines: list[tuple[int, str]] = []
        append = lines.append
        from_bytes = int.from_bytes
        partial = self.partial
        while end - pos >= 8:
            stop = pos + 8 + from_bytes(buffer[pos + 4:pos + 8], "big")
            if stop > end:
                break
            stream = buffer[pos]
            payload = buffer[pos + 8:stop]
            pos = stop
            if payload[-1:] == b"\n" and not partial and payload.count(b"\n") == 1:
                append((stream, payload[:-1].decode("utf-8", "replace")))
                continue
            text = partial.pop(stream, "") + payload.decode("utf-8", "replace")
            parts = text.split("\n")
            tail = parts.pop()
            if tail:
                partial[stream] = tail
            lines += [(stream, part) for part in parts]
        self.buffer = buffer[pos:]
        return lines

    def finish(self) -> list[tuple[int, str]]:
        lines = [(stream, text) for stream, text in self.partial.items() if text]
        self.partial.clear()
        return lines


def socket_logs(socket_path: str, api: str, cid: str) -> int:
    """Read a whole log over a bare socket: chunked decoding and demux by hand.

    A floor under :meth:`RawSync.logs` (whose cost is mostly ``http.client`` reading
    Podman's one-chunk-per-line body chunk by chunk); reported for reference.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        sock.sendall(f"GET /v{api}/containers/{cid}/logs?stdout=1&stderr=1 HTTP/1.1\r\n"
                     f"Host: {HOST}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(262144)
        head, _, buffer = data.partition(b"\r\n\r\n")
        if b"chunked" not in head.lower():
            raise RuntimeError("expected a chunked log body")
        demux = LineDemuxer()
        count = 0
        remaining = 0  # payload bytes left in the current chunk
        crlf = False  # the CRLF after a chunk's payload is still to skip
        done = False
        while not done:
            pieces = []
            pos = 0
            end = len(buffer)
            while True:
                if remaining:
                    take = min(remaining, end - pos)
                    pieces.append(buffer[pos:pos + take])
                    pos += take
                    remaining -= take
                    if remaining:
                        break
                    crlf = True
                if crlf:
                    if end - pos < 2:
                        break
                    pos += 2
                    crlf = False
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buffer[pos:eol], 16)
                pos = eol + 2
                if size == 0:
                    done = True
                    break
                remaining = size
            buffer = buffer[pos:]
            if pieces:
                count += len(demux.feed(b"".join(pieces)))
            if not done:
                more = sock.recv(262144)
                if not more:
                    raise RuntimeError("log body ended early")
                buffer += more
        return count + len(demux.finish())
    finally:
        sock.close()
