"""Decoders for the engine's streaming bodies: multiplexed log frames and JSON lines.

Both are incremental: they take body pieces as they arrive and keep the unfinished tail,
so a follow stream yields each line as soon as its bytes are in, and memory stays bounded
by the longest line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, Final, Literal, NamedTuple

from .._exceptions import EngineProtocolError

__all__ = ["FrameDemuxer", "LogLine", "iter_json_lines", "iter_log_lines"]

StreamName = Literal["stdin", "stdout", "stderr"]
_STREAM_NAMES: Final[tuple[StreamName, ...]] = ("stdin", "stdout", "stderr")


class LogLine(NamedTuple):
    """One line a container wrote.

    Attributes
    ----------
    stream
        ``"stdout"`` or ``"stderr"`` (``"stdout"`` for TTY containers, which have one).
    text
        The line, without its trailing newline.
    timestamp
        The engine's RFC 3339 timestamp when asked for (``timestamps=True``), else None.
        Kept as the engine's text, unparsed: parsing 200,000 of them would dominate a log
        read. Stamps do *not* always sort as strings (Docker drops trailing zeros of the
        fraction, Podman stamps whole seconds): normalise them before merging by time,
        as ``ghostpanel_widgets.LogStream`` does.
    """

    stream: StreamName
    text: str
    timestamp: str | None = None

    def __str__(self) -> str:
        return self.text if self.timestamp is None else f"{self.timestamp} {self.text}"


class FrameDemuxer:
    """Split Docker's multiplexed stream (8-byte header + payload frames) incrementally.

    Each frame header is ``[stream, 0, 0, 0, size (4 bytes, big-endian)]``.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Consume ``data``; return the complete ``(stream number, payload)`` frames."""
        buffer = self._buffer + data if self._buffer else data
        frames: list[tuple[int, bytes]] = []
        append = frames.append
        pos = 0
        end = len(buffer)
        from_bytes = int.from_bytes
        while end - pos >= 8:
            size = from_bytes(buffer[pos + 4:pos + 8], "big")
            stop = pos + 8 + size
            if stop > end:
                break
            append((buffer[pos], buffer[pos + 8:stop]))
            pos = stop
        self._buffer = buffer[pos:]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back because their frame is not complete yet."""
        return len(self._buffer)


def _line(stream: StreamName, raw: bytes, timestamps: bool, crlf: bool) -> LogLine:
    if crlf and raw[-1:] == b"\r":  # a TTY's ONLCR turned each "\n" into "\r\n"
        raw = raw[:-1]
    text = raw.decode("utf-8", "replace")
    if timestamps:
        stamp, _, text = text.partition(" ")
        return LogLine(stream, text, stamp)
    return LogLine(stream, text)


def _split_payload(stream: StreamName, payload: bytes, timestamps: bool,
                   partial: list[bytes], crlf: bool = False) -> list[LogLine]:
    """Turn one payload into lines; an unterminated tail waits in ``partial``.

    Split as bytes, decode whole lines: a read may end inside a UTF-8 character.
    """
    if partial:
        payload = partial.pop() + payload
    parts = payload.split(b"\n")
    tail = parts.pop()
    if tail:
        partial.append(tail)
    return [_line(stream, part, timestamps, crlf) for part in parts]


async def iter_log_lines(body: AsyncIterable[bytes], *, multiplexed: bool,
                         timestamps: bool) -> AsyncGenerator[list[LogLine], None]:
    """Yield batches of :class:`LogLine` from a logs (or attach/exec) body.

    Batches follow the network reads, so a follow stream shows each line as it arrives
    and a bulk read pays the async machinery once per read, not once per line.
    """
    partials: dict[StreamName, list[bytes]] = {"stdout": [], "stderr": [], "stdin": []}
    if not multiplexed:
        async for piece in body:
            lines = _split_payload("stdout", piece, timestamps, partials["stdout"], crlf=True)
            if lines:
                yield lines
    else:
        # FrameDemuxer's loop, inlined: it runs once per log line, and building then
        # unpacking a list of (stream, payload) tuples per read is a tenth of a bulk read.
        buffer = b""
        from_bytes = int.from_bytes
        async for piece in body:
            data = buffer + piece if buffer else piece
            end = len(data)
            pos = 0
            batch: list[LogLine] = []
            append = batch.append
            while end - pos >= 8:
                stop = pos + 8 + from_bytes(data[pos + 4:pos + 8], "big")
                if stop > end:
                    break
                number = data[pos]
                payload = data[pos + 8:stop]
                pos = stop
                name = _STREAM_NAMES[number] if number < 3 else "stdout"
                partial = partials[name]
                # Fast path: engines send one whole line per frame.
                if payload and payload.find(b"\n") == len(payload) - 1 and not partial:
                    text = payload[:-1].decode("utf-8", "replace")
                    if timestamps:
                        stamp, _, text = text.partition(" ")
                        append(LogLine(name, text, stamp))
                    else:
                        append(LogLine(name, text))
                else:
                    batch += _split_payload(name, payload, timestamps, partial)
            buffer = data[pos:] if pos < end else b""
            if batch:
                yield batch
    # Output that ended without a newline is still output.
    for name, partial in partials.items():
        if partial:
            yield [_line(name, partial.pop(), timestamps, not multiplexed)]


async def iter_json_lines(body: AsyncIterable[bytes], *, endpoint: str = "the engine"
                          ) -> AsyncIterator[Any]:
    """Yield one decoded JSON value per line of a JSON-lines body (events, pulls, stats).

    A line that is not JSON raises :class:`EngineProtocolError` naming ``endpoint``.
    """
    tail = b""
    loads = json.loads
    async for piece in body:
        data = tail + piece if tail else piece
        lines = data.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.strip():
                try:
                    value = loads(line)
                except ValueError as exc:
                    raise _not_json(line, endpoint) from exc
                yield value
    if tail.strip():
        try:
            value = loads(tail)
        except ValueError as exc:
            raise _not_json(tail, endpoint) from exc
        yield value


def _not_json(line: bytes, endpoint: str) -> EngineProtocolError:
    return EngineProtocolError(f"the stream sent a line that is not JSON: {line[:80]!r}",
                               endpoint=endpoint)
