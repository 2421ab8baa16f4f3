"""Reading the engine's tar as it arrives, ``stat_path``, and closing a body early.

The reader is checked against Python's own :mod:`tarfile` on archives in every format
it writes (ustar, GNU long names, pax records and global headers), fed in pieces cut
everywhere. The container methods are checked through the canned engine; that a body
closed early drops its connection is checked on a real socket with the engine
transport, against a small HTTP server that counts its connections.
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import random
import shutil
import tarfile
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import EngineAPIError, FileEntry, NotFound
from ghostpanel_kernel.engine._archive import (
    MAX_EXTENSION_SIZE,
    TarStreamReader,
    entries_of_members,
    entry_of_path_stat,
    file_of_members,
    first_file_only,
    read_tar,
)
from ghostpanel_kernel.engine._client import EngineClient
from ghostpanel_kernel.engine._containers import Container
from tests.unit.fake_engine import (
    WEB_ID,
    WEB_INSPECT,
    Body,
    json_answer,
    open_web,
    web_engine,
    web_environment,
)
from tests.unit.tar_fixtures import MTIME, path_stat_value, tar_archive

LONG_DIR = "a-directory-name-long-enough-" * 3  # > 100 bytes with its children
UNICODE = "répertoire-ü/fichier-ß.txt"


# The engine's own member mode for files here.
archive = functools.partial(tar_archive, file_mode=0o640)


TREE = [
    ("etc", "dir", b""), ("etc/passwd", "file", b"root:x:0:0::/root:/bin/sh\n"),
    ("etc/empty", "file", b""), ("etc/block", "file", bytes(range(256)) * 2),  # 512 bytes
    ("etc/mtab", "symlink", "/proc/mounts"),
    (f"etc/{LONG_DIR}", "dir", b""), (f"etc/{LONG_DIR}/{LONG_DIR}.conf", "file", b"x" * 700),
    (f"etc/{LONG_DIR}/link", "symlink", f"/etc/{LONG_DIR}/{LONG_DIR}.conf"),
    (f"etc/{UNICODE}", "file", "é".encode() * 300),
]


def tarfile_view(data: bytes) -> list[tuple[Any, ...]]:
    """What Python's tarfile reads from ``data``: the reference."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        view = []
        for member in tar:
            extracted = tar.extractfile(member) if member.isreg() else None
            view.append((member.name, member.type, member.size, member.mode, member.mtime,
                         member.linkname, extracted.read() if extracted else None))
        return view


def reader_view(pieces: Iterable[bytes], *, keep: bool = True) -> list[tuple[Any, ...]]:
    reader = TarStreamReader(keep=(lambda info: True) if keep else None)
    members = [member for piece in pieces for member in reader.feed(piece)]
    assert reader.done
    return [(m.info.name, m.info.type, m.info.size, m.info.mode, m.info.mtime,
             m.info.linkname, m.data) for m in members]


def pieces_of(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


# -- the reader against tarfile ----------------------------------------------------------


@pytest.mark.parametrize("name", ["gnu", "pax"])
def test_reader_reads_what_tarfile_reads_in_one_piece(name: str) -> None:
    data = archive(TREE, format=FORMATS[name])
    assert reader_view([data]) == tarfile_view(data)


def test_reader_reads_ustar_short_names() -> None:
    data = archive(TREE[:5], format=tarfile.USTAR_FORMAT)
    assert reader_view([data]) == tarfile_view(data)


@pytest.mark.parametrize("name", ["gnu", "pax"])
def test_reader_split_around_every_block_edge_and_throughout(name: str) -> None:
    data = archive(TREE, format=FORMATS[name], padding=False)
    expected = tarfile_view(data)
    # Every cut within 3 bytes of a block edge (where headers, extensions, contents and
    # padding meet), and every 11th byte between.
    cuts = [cut for cut in range(1, len(data))
            if cut % tarfile.BLOCKSIZE in (0, 1, 2, 3, 509, 510, 511) or cut % 11 == 0]
    for cut in cuts:
        assert reader_view([data[:cut], data[cut:]]) == expected, f"cut at byte {cut}"


def test_reader_one_byte_at_a_time_and_random_pieces() -> None:
    data = archive(TREE, format=tarfile.PAX_FORMAT)
    expected = tarfile_view(data)
    assert reader_view([data[i:i + 1] for i in range(len(data))]) == expected
    rng = random.Random(7)
    for _ in range(50):
        cuts = rng.sample(range(1, len(data)), rng.randint(1, 40))
        assert reader_view(pieces_of(data, cuts)) == expected


def test_pax_global_header_applies_to_every_member() -> None:
    data = archive(TREE[:3], format=tarfile.PAX_FORMAT, pax_headers={"comment": "engine"})
    expected = tarfile_view(data)
    reader = TarStreamReader()
    members = reader.feed(data)
    assert [m.info.name for m in members] == [row[0] for row in expected]
    assert all(m.info.pax_headers.get("comment") == "engine" for m in members)


def test_pax_records_override_the_header_fields() -> None:
    # Go's archive/tar writes a pax "size" for files over 8 GiB, and pax "path" and
    # "mtime" for long names and sub-second times; the ustar fields then mean nothing.
    info = tarfile.TarInfo("short")
    info.size, info.mtime = 3, 1
    info.pax_headers = {"path": "etc/a-much-longer-name", "mtime": "1714557600.5",
                        "size": "5"}
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    data = header + b"12345".ljust(512, b"\0") + bytes(1024)
    [member] = TarStreamReader(keep=lambda info: True).feed(data)
    assert (member.info.name, member.info.mtime, member.info.size, member.data) == (
        "etc/a-much-longer-name", 1714557600.5, 5, b"12345")


def test_contents_are_skipped_unless_kept() -> None:
    data = archive(TREE, format=tarfile.PAX_FORMAT)
    skipped = reader_view([data], keep=False)
    assert [row[:6] for row in skipped] == [row[:6] for row in tarfile_view(data)]
    assert all(row[6] is None for row in skipped)


def test_a_member_without_kept_content_comes_with_its_header() -> None:
    data = archive([("big.bin", "file", b"z" * 5000)], padding=False)
    reader = TarStreamReader()
    [member] = reader.feed(data[:512])  # the header alone: out at once
    assert member.info.name == "big.bin" and member.data is None
    assert not reader.between_members  # its content is still to come
    assert reader.feed(data[512:]) == [] and reader.done


def test_only_the_first_file_is_kept() -> None:
    data = archive([("a", "file", b"first"), ("b", "file", b"second")])
    members = TarStreamReader(keep=first_file_only()).feed(data)
    assert [(m.info.name, m.data) for m in members] == [("a", b"first"), ("b", None)]


def test_skipping_content_keeps_memory_flat() -> None:
    data = archive([("dir", "dir", b""), ("dir/big.bin", "file", random.randbytes(8 << 20))],
                   padding=False)
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    reader = TarStreamReader()
    tracemalloc.start()
    try:
        names = [m.info.name for piece in pieces for m in reader.feed(piece)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert names == ["dir", "dir/big.bin"] and reader.done
    assert peak < 64 * 1024, f"{peak} bytes traced while skipping 8 MiB"


def test_bytes_after_the_end_marker_are_ignored() -> None:
    data = archive([("a", "file", b"x")], padding=False)
    reader = TarStreamReader()
    assert [m.info.name for m in reader.feed(data + b"garbage" * 100)] == ["a"]
    assert reader.done and reader.feed(b"more") == []


def test_a_bad_header_is_a_read_error() -> None:
    with pytest.raises(tarfile.ReadError, match="bad tar header at byte 0"):
        TarStreamReader().feed(b"not a tar".ljust(512, b"!"))


def test_a_malformed_pax_record_is_a_read_error() -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 11
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    with pytest.raises(tarfile.ReadError, match="malformed pax record"):
        TarStreamReader().feed(header + b"99 path=x\n".ljust(512, b"\0"))


def test_gnu_sparse_and_oversized_extensions_are_refused() -> None:
    sparse = tarfile.TarInfo("holes.bin")
    sparse.type = tarfile.GNUTYPE_SPARSE
    with pytest.raises(tarfile.ReadError, match="sparse"):
        TarStreamReader().feed(sparse.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    huge = tarfile.TarInfo("././@LongLink")
    huge.type, huge.size = tarfile.GNUTYPE_LONGNAME, MAX_EXTENSION_SIZE + 1
    with pytest.raises(tarfile.ReadError, match="extension header"):
        TarStreamReader().feed(huge.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))


# -- async: members, listings, files -----------------------------------------------------


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_read_tar_yields_members_as_chunks_arrive() -> None:
    data = archive(TREE, format=tarfile.GNU_FORMAT)
    names = [m.info.name async for m in read_tar(chunks(data))]
    assert names == [row[0] for row in tarfile_view(data)]


async def test_read_tar_accepts_a_tar_without_its_end_marker_not_a_cut_one() -> None:
    whole = archive([("a", "file", b"x" * 600)], padding=False)
    unmarked = whole[:-1024]
    assert [m.info.name async for m in read_tar(chunks(unmarked))] == ["a"]
    with pytest.raises(tarfile.ReadError, match="ends inside a member"):
        async for _ in read_tar(chunks(unmarked[:-100])):
            pass


async def test_entries_of_members_lists_direct_children_directories_first() -> None:
    data = archive(TREE)
    entries = await entries_of_members(read_tar(chunks(data)), "/etc")
    # Deeper members (etc/répertoire-ü/fichier-ß.txt, whose directory has no member of
    # its own, and those below LONG_DIR) are not children.
    assert [(e.name, e.kind) for e in entries] == [
        (LONG_DIR, "dir"), ("block", "file"), ("empty", "file"), ("mtab", "symlink"),
        ("passwd", "file")]
    by_name = {e.name: e for e in entries}
    assert by_name[LONG_DIR].path == f"/etc/{LONG_DIR}"
    assert by_name["block"].size == 512 and by_name["block"].mode == 0o640
    assert by_name["mtab"].link_target == "/proc/mounts"
    assert by_name["passwd"].mtime == MTIME


async def test_entries_of_members_refuses_a_tar_of_a_file() -> None:
    with pytest.raises(NotADirectoryError, match="/etc/passwd"):
        await entries_of_members(read_tar(chunks(archive([("passwd", "file", b"x")]))),
                                 "/etc/passwd")


async def test_file_of_members() -> None:
    data = archive([("passwd", "file", b"root\n")])
    assert await file_of_members(read_tar(chunks(data), keep=first_file_only()),
                                 "/etc/passwd") == b"root\n"
    with pytest.raises(IsADirectoryError):
        await file_of_members(read_tar(chunks(archive(TREE)), keep=first_file_only()), "/etc")
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        await file_of_members(read_tar(chunks(archive([("mtab", "symlink", "/x")])),
                                       keep=first_file_only()), "/etc/mtab")


# -- the engine's path stat ----------------------------------------------------------------

# X-Docker-Container-Path-Stat as Podman 4.3.1 sent them (decoded).
PODMAN_STATS = {
    "/etc": {"name": "etc", "size": 4096, "mode": 2147484141,
             "mtime": "2026-11-28T00:10:37.006497807Z", "isDir": True, "linkTarget": "/etc"},
    "/bin/sh": {"name": "busybox", "size": 7, "mode": 134218239, "mtime": "1970-01-01T00:00:00Z",
                "isDir": False, "linkTarget": "/bin/busybox"},
    "/dev/null": {"name": "null", "size": 0, "mode": 69206454,
                  "mtime": "2026-11-28T00:10:37.013738808Z", "isDir": False,
                  "linkTarget": "/dev/null"},
    "/": {"name": ".", "size": 4096, "mode": 2147484013,
          "mtime": "2026-11-28T00:10:37.004089009Z", "isDir": True, "linkTarget": "/."},
    "/etc/passwd": {"name": "passwd", "size": 75, "mode": 420,
                    "mtime": "1970-01-01T00:00:00Z", "isDir": False,
                    "linkTarget": "/etc/passwd"},
    "/tmp": {"name": "tmp", "size": 4096, "mode": 2148532735,
             "mtime": "2026-11-28T00:22:27.256869372Z", "isDir": True, "linkTarget": "/tmp"},
    "/bin/su-copy": {"name": "su-copy", "size": 1982256, "mode": 8389101,  # chmod 4755
                     "mtime": "2026-11-28T00:22:27.252869372Z", "isDir": False,
                     "linkTarget": "/bin/su-copy"},
    "/tmp/fifo": {"name": "fifo", "size": 0, "mode": 33554852,  # mkfifo
                  "mtime": "2026-11-28T00:22:27.256869372Z", "isDir": False,
                  "linkTarget": "/tmp/fifo"},
}


def test_entry_of_path_stat_reads_gos_file_modes() -> None:
    entries = {path: entry_of_path_stat(stat, path) for path, stat in PODMAN_STATS.items()}
    assert {path: (e.kind, e.mode) for path, e in entries.items()} == {
        "/etc": ("dir", 0o755), "/bin/sh": ("symlink", 0o777), "/dev/null": ("other", 0o666),
        "/": ("dir", 0o555), "/etc/passwd": ("file", 0o644), "/tmp": ("dir", 0o1777),
        "/bin/su-copy": ("file", 0o4755), "/tmp/fifo": ("other", 0o644)}
    # Names come from the path asked for: Podman names a symlink's target, and "/" ".".
    assert [e.name for e in entries.values()] == [
        "etc", "sh", "null", "/", "passwd", "tmp", "su-copy", "fifo"]
    assert entries["/bin/sh"].link_target == "/bin/busybox" and entries["/etc"].link_target == ""
    assert entries["/etc/passwd"].size == 75
    assert entries["/etc"].size == entries["/bin/sh"].size == 0  # as a listing has them
    assert entries["/etc"].mtime == pytest.approx(1795824637.006497)
    assert entries["/etc/passwd"].mtime == 0.0


def path_stat_header(stat: dict[str, Any]) -> dict[str, str]:
    return {"X-Docker-Container-Path-Stat": path_stat_value(**stat)}


def podman_404(message: str) -> httpx.Response:
    return httpx.Response(404, json={"cause": message, "message": message, "response": 404})


async def test_stat_path_is_one_head_request() -> None:
    engine = web_engine({("HEAD", f"/containers/{WEB_ID}/archive"): lambda request: httpx.Response(
        200, headers=path_stat_header(PODMAN_STATS["/etc/passwd"]))})
    env, container = await open_web(engine)
    entry = await container.stat_path("/etc/passwd")
    assert entry == FileEntry("passwd", "/etc/passwd", 75, 0o644, "file", 0.0)
    assert engine.calls == [("HEAD", f"/containers/{WEB_ID}/archive", {"path": "/etc/passwd"})]
    await env.aclose()


async def test_stat_path_of_a_missing_path_names_it_in_the_engines_words() -> None:
    # Podman 4.3.1 answers HEAD with a bare 404 (no body): only a GET says why.
    engine = web_engine({
        ("HEAD", f"/containers/{WEB_ID}/archive"): lambda request: httpx.Response(404),
        ("GET", f"/containers/{WEB_ID}/archive"): lambda request: podman_404(
            "no such file or directory")})
    env, container = await open_web(engine)
    with pytest.raises(NotFound) as raised:
        await container.stat_path("/nope")
    assert raised.value.message == "/nope: no such file or directory"
    assert str(raised.value) == (f"[404] /nope: no such file or directory "
                                 f"(GET /v1.41/containers/{WEB_ID}/archive)")
    assert [call[0] for call in engine.calls] == ["HEAD", "GET"]
    await env.aclose()


async def test_stat_path_in_a_missing_container_says_which() -> None:
    message = 'no container with name or ID "gone" found: no such container'
    engine = web_engine({
        ("GET", "/containers/gone/json"): json_answer({"Id": "gone", "Name": "/gone"}),
        ("HEAD", "/containers/gone/archive"): lambda request: httpx.Response(404),
        ("GET", "/containers/gone/archive"): lambda request: podman_404(message)})
    env = web_environment(engine)
    container = await env.containers.get("gone")
    with pytest.raises(NotFound, match=f"/etc: {message}"):
        await container.stat_path("/etc")
    await env.aclose()


async def test_stat_path_falls_back_to_get_for_an_engine_without_head() -> None:
    bodies: list[Body] = []

    def get(request: httpx.Request) -> httpx.Response:
        body = Body([archive([("etc", "dir", b"")], padding=False)[:512]], then_wait=True)
        bodies.append(body)
        return httpx.Response(200, headers=path_stat_header(PODMAN_STATS["/etc"]), stream=body)

    engine = web_engine({
        ("HEAD", f"/containers/{WEB_ID}/archive"): lambda request: httpx.Response(405),
        ("GET", f"/containers/{WEB_ID}/archive"): get})
    env, container = await open_web(engine)
    async with asyncio.timeout(5):  # the body never ends: the stat must not wait for it
        entry = await container.stat_path("/etc")
    assert (entry.kind, entry.path) == ("dir", "/etc")
    assert bodies[0].closed
    await env.aclose()


async def test_stat_path_without_any_stat_header_reads_the_first_member() -> None:
    data = archive([("passwd", "file", b"root\n")])
    engine = web_engine({
        ("HEAD", f"/containers/{WEB_ID}/archive"): lambda request: httpx.Response(200),
        ("GET", f"/containers/{WEB_ID}/archive"):
            lambda request: httpx.Response(200, content=data)})
    env, container = await open_web(engine)
    entry = await container.stat_path("/etc/passwd")
    assert (entry.name, entry.kind, entry.size, entry.mode, entry.mtime) == (
        "passwd", "file", 5, 0o640, MTIME)
    await env.aclose()


# -- list_files, read_file: streamed -------------------------------------------------------


def streamed_archive(data: bytes, stat: dict[str, Any], bodies: list[Body], *,
                     piece: int = 300, then_wait: bool = False) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        body = Body([data[i:i + piece] for i in range(0, len(data), piece)],
                    then_wait=then_wait)
        bodies.append(body)
        return httpx.Response(200, headers={"Content-Type": "application/x-tar",
                                            **path_stat_header(stat)}, stream=body)
    return answer


async def test_list_files_reads_the_tar_as_it_arrives() -> None:
    bodies: list[Body] = []
    data = archive(TREE, format=tarfile.GNU_FORMAT)
    engine = web_engine({("GET", f"/containers/{WEB_ID}/archive"): streamed_archive(
        data, PODMAN_STATS["/etc"], bodies, piece=97)})
    env, container = await open_web(engine)
    entries = await container.list_files("/etc")
    assert {e.name for e in entries} == {LONG_DIR, "block", "empty", "mtab", "passwd"}
    assert all(e.path == f"/etc/{e.name}" for e in entries)
    assert bodies[0].closed
    await env.aclose()


async def test_list_files_of_a_file_stops_at_the_header() -> None:
    bodies: list[Body] = []
    head = archive([("blob.bin", "file", b"b" * 4096)], padding=False)[:1024]
    engine = web_engine({("GET", f"/containers/{WEB_ID}/archive"): streamed_archive(
        head, PODMAN_STATS["/etc/passwd"], bodies, then_wait=True)})
    env, container = await open_web(engine)
    async with asyncio.timeout(5):  # the rest never comes: it must not be waited for
        with pytest.raises(NotADirectoryError, match=r"^/big/blob\.bin is not a directory in web$"):
            await container.list_files("/big/blob.bin")
    assert bodies[0].closed
    await env.aclose()


async def test_read_file_of_a_directory_stops_at_the_header() -> None:
    bodies: list[Body] = []
    engine = web_engine({("GET", f"/containers/{WEB_ID}/archive"): streamed_archive(
        archive(TREE)[:2048], PODMAN_STATS["/etc"], bodies, then_wait=True)})
    env, container = await open_web(engine)
    async with asyncio.timeout(5):
        with pytest.raises(IsADirectoryError, match="/etc is a directory"):
            await container.read_file("/etc")
    assert bodies[0].closed
    await env.aclose()


async def test_read_file_streams_the_file() -> None:
    bodies: list[Body] = []
    content = random.randbytes(70_000)
    engine = web_engine({("GET", f"/containers/{WEB_ID}/archive"): streamed_archive(
        archive([("blob.bin", "file", content)]), PODMAN_STATS["/etc/passwd"], bodies,
        piece=4096)})
    env, container = await open_web(engine)
    assert await container.read_file("/big/blob.bin") == content
    await env.aclose()


async def test_archive_errors_name_the_path() -> None:
    engine = web_engine({
        ("GET", f"/containers/{WEB_ID}/archive"): lambda request: podman_404(
            "no such file or directory"),
        ("PUT", f"/containers/{WEB_ID}/archive"): lambda request: podman_404(
            "no such file or directory")})
    env, container = await open_web(engine)
    for call in (container.list_files("/srv"), container.read_file("/srv/a"),
                 container.get_archive("/srv"), container.write_file("/srv/a", b"x")):
        with pytest.raises(NotFound, match=r"^\[404\] /srv(/a)?: no such file or directory"):
            await call
    await env.aclose()


async def test_an_engine_message_that_names_the_path_is_kept() -> None:
    # Docker's own words already name it.
    message = "Could not find the file /srv in container web"
    engine = web_engine({("GET", f"/containers/{WEB_ID}/archive"): lambda request: podman_404(
        message)})
    env, container = await open_web(engine)
    with pytest.raises(EngineAPIError) as raised:
        await container.list_files("/srv")
    assert raised.value.message == message
    await env.aclose()


# -- closing early on a real socket --------------------------------------------------------


class CountingEngine:
    """A tiny HTTP/1.1 server on a unix socket: ``_ping``, and an endless chunked tar.

    It records each connection and whether the client closed it.
    """

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.connections = 0
        self.closed_by_client = 0
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> CountingEngine:
        self.server = await asyncio.start_unix_server(self.serve, path=str(self.socket_path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                target = head.split(b" ", 2)[1]
                if target == b"/_ping":
                    writer.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n"
                                 b"Server: Libpod/4.3.1 (linux)\r\nContent-Length: 2\r\n\r\nOK")
                    await writer.drain()
                    continue
                stat = path_stat_header(PODMAN_STATS["/etc/passwd"])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
                             b"X-Docker-Container-Path-Stat: "
                             + stat["X-Docker-Container-Path-Stat"].encode()
                             + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                header = archive([("blob.bin", "file", b"")], padding=False)[:512]
                writer.write(b"%x\r\n%b\r\n" % (len(header), header))
                while True:  # content without end, as a huge file would be
                    writer.write(b"%x\r\n%b\r\n" % (65536, bytes(65536)))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client += 1
        finally:
            writer.close()


@pytest.fixture
def socket_dir() -> Iterable[Path]:
    folder = Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp"))  # short: a socket path
    yield folder
    shutil.rmtree(folder)


async def test_a_body_closed_early_drops_its_connection(socket_dir: Path) -> None:
    async with CountingEngine(socket_dir / "engine.sock") as engine:
        client = EngineClient(f"unix://{engine.socket_path}")
        container = Container(client, {**WEB_INSPECT})
        try:
            for attempt in range(1, 4):
                async with asyncio.timeout(5):  # the file never ends: it must not be read
                    with pytest.raises(NotADirectoryError):
                        await container.list_files("/big/blob.bin")
                    # Closed at once, not kept in the pool until some later request
                    # trips over the rest of the file.
                    while engine.closed_by_client < attempt:
                        await asyncio.sleep(0.01)
                # The listing took the pooled connection: the next request opens a new one.
                await client._request("GET", "/_ping", versioned=False)
                assert engine.connections == attempt + 1
        finally:
            await client.aclose()
