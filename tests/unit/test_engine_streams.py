"""Incremental decoders of engine bodies: chunked transfer coding, log frames, JSON lines.

Each decoder must give the same result however the network cuts the bytes, so the tests
feed the same wire bytes split at every position (and one byte at a time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from ghostpanel_kernel.engine._streams import FrameDemuxer, iter_json_lines
from ghostpanel_kernel.engine._transport import ChunkedDecoder


def chunked(*payloads: bytes, extension: bytes = b"") -> bytes:
    """Encode payloads as an HTTP/1.1 chunked body, terminating chunk included."""
    wire = b"".join(b"%x%b\r\n%b\r\n" % (len(p), extension, p) for p in payloads)
    return wire + b"0\r\n\r\n"


def decode_in_pieces(wire: bytes, cuts: Iterable[int]) -> tuple[bytes, bool]:
    decoder = ChunkedDecoder()
    out = []
    start = 0
    for cut in [*cuts, len(wire)]:
        out.append(decoder.feed(wire[start:cut]))
        start = cut
    return b"".join(out), decoder.done


# -- ChunkedDecoder ----------------------------------------------------------------------


def test_chunked_one_chunk_split_at_every_byte_position() -> None:
    wire = chunked(b"hello, engine\n")
    for cut in range(len(wire) + 1):
        assert decode_in_pieces(wire, [cut]) == (b"hello, engine\n", True), cut


def test_chunked_several_chunks_split_at_every_pair_of_positions() -> None:
    payloads = [b"a", b"0123456789abcdef", b"\r\n", b"x" * 17]
    wire = chunked(*payloads)
    expected = b"".join(payloads)
    for first in range(len(wire) + 1):
        for second in range(first, len(wire) + 1):
            assert decode_in_pieces(wire, [first, second]) == (expected, True), (first, second)


def test_chunked_fed_one_byte_at_a_time() -> None:
    payloads = [b"line %d\n" % i for i in range(20)]
    wire = chunked(*payloads)
    assert decode_in_pieces(wire, range(1, len(wire))) == (b"".join(payloads), True)


def test_chunked_many_chunks_in_one_feed() -> None:
    # Podman sends one chunk per log line: a single read holds hundreds of them.
    payloads = [b"%04d\n" % i for i in range(500)]
    decoder = ChunkedDecoder()
    assert decoder.feed(chunked(*payloads)) == b"".join(payloads)
    assert decoder.done


def test_chunked_not_done_until_the_terminating_chunk() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n") == b"abc"
    assert not decoder.done
    assert decoder.feed(b"0\r\n") == b""
    assert decoder.done
    assert decoder.feed(b"\r\ngarbage after the end") == b""


def test_chunked_uppercase_hex_and_large_chunk() -> None:
    payload = bytes(range(256)) * 300  # 76,800 bytes, size written "12C00"
    wire = b"12C00\r\n" + payload + b"\r\n0\r\n\r\n"
    assert decode_in_pieces(wire, range(0, len(wire), 4096)) == (payload, True)


def test_chunked_extensions_are_ignored() -> None:
    wire = chunked(b"hello", b"world", extension=b";name=value;flag")
    for cut in range(len(wire) + 1):
        assert decode_in_pieces(wire, [cut]) == (b"helloworld", True), cut


@pytest.mark.parametrize("size_line", [b"zz", b"", b"-5", b"0x5", b"+5", b"5_0", b"1 2"])
def test_chunked_malformed_size_is_a_remote_protocol_error(size_line: bytes) -> None:
    # RFC 9112: chunk-size = 1*HEXDIG. Python's int(_, 16) also takes signs, "0x" and "_".
    decoder = ChunkedDecoder()
    with pytest.raises(httpx.RemoteProtocolError, match="chunk size"):
        decoder.feed(size_line + b"\r\nhello\r\n0\r\n\r\n")


def test_chunked_negative_size_does_not_hang() -> None:
    # A size of -6 used to rewind the parser onto its own size line: an endless loop.
    # Run in a child process so that a regression fails the test instead of hanging it.
    code = textwrap.dedent("""
        import httpx
        from ghostpanel_kernel.engine._transport import ChunkedDecoder
        try:
            ChunkedDecoder().feed(b"-6\\r\\nhello!\\r\\n0\\r\\n\\r\\n")
        except httpx.RemoteProtocolError:
            print("raised")
        else:
            print("accepted")
    """)
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail("ChunkedDecoder loops forever on the chunk size '-6'")
    assert result.stdout.strip() == "raised", result.stderr


# -- FrameDemuxer ------------------------------------------------------------------------


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


FRAMES = [(1, b"out1\n"), (2, b"err1\n"), (1, b""), (1, b"h\xc3\xa9llo\n"), (2, b"x" * 300)]
WIRE = b"".join(frame(s, p) for s, p in FRAMES)


def test_demuxer_whole_stream_in_one_feed() -> None:
    demuxer = FrameDemuxer()
    assert demuxer.feed(WIRE) == FRAMES
    assert demuxer.pending == 0


def test_demuxer_split_at_every_byte_position() -> None:
    for cut in range(len(WIRE) + 1):
        demuxer = FrameDemuxer()
        frames = demuxer.feed(WIRE[:cut])
        frames += demuxer.feed(WIRE[cut:])
        assert frames == FRAMES, cut
        assert demuxer.pending == 0


def test_demuxer_fed_one_byte_at_a_time_holds_back_partial_frames() -> None:
    demuxer = FrameDemuxer()
    frames = []
    for i in range(len(WIRE)):
        frames += demuxer.feed(WIRE[i:i + 1])
        assert demuxer.pending < 8 + 300
    assert frames == FRAMES
    assert demuxer.pending == 0


def test_demuxer_reports_pending_bytes_of_an_unfinished_frame() -> None:
    demuxer = FrameDemuxer()
    assert demuxer.feed(frame(1, b"complete\n") + frame(2, b"partial")[:11]) == [
        (1, b"complete\n")]
    assert demuxer.pending == 11


def test_demuxer_reads_the_size_as_four_big_endian_bytes() -> None:
    payload = b"y" * 70_000  # needs the third size byte
    demuxer = FrameDemuxer()
    assert demuxer.feed(frame(1, payload)) == [(1, payload)]


# -- iter_json_lines ---------------------------------------------------------------------


async def pieces(data: bytes, cuts: Iterable[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*cuts, len(data)]:
        yield data[start:cut]
        start = cut


async def collect(body: AsyncIterator[bytes]) -> list[object]:
    return [value async for value in iter_json_lines(body)]


EVENTS = [{"status": "Pulling fs layer", "id": "a1"}, {"Type": "container", "Action": "start"},
          [1, 2, 3], "text", 42]
JSON_LINES = b"\n".join(json.dumps(e).encode() for e in EVENTS) + b"\n"


async def test_json_lines_split_at_every_position() -> None:
    for cut in range(len(JSON_LINES) + 1):
        assert await collect(pieces(JSON_LINES, [cut])) == EVENTS, cut


async def test_json_lines_one_byte_at_a_time() -> None:
    assert await collect(pieces(JSON_LINES, range(1, len(JSON_LINES)))) == EVENTS


async def test_json_lines_skip_blank_lines() -> None:
    body = b'\n{"a": 1}\n\n   \n\r\n{"b": 2}\n\n'
    assert await collect(pieces(body, [3, 9])) == [{"a": 1}, {"b": 2}]


async def test_json_lines_last_line_without_newline_is_kept() -> None:
    body = b'{"a": 1}\n{"b": 2}'
    for cut in range(len(body) + 1):
        assert await collect(pieces(body, [cut])) == [{"a": 1}, {"b": 2}], cut


async def test_json_lines_crlf_line_ends() -> None:
    body = b'{"a": 1}\r\n{"b": 2}\r\n'
    assert await collect(pieces(body, [9])) == [{"a": 1}, {"b": 2}]


async def test_json_lines_empty_body() -> None:
    assert await collect(pieces(b"", [])) == []
