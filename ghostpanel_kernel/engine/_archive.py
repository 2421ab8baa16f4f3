"""Files in containers through the archive API: tar in, tar out.

Tars from the engine are read as they arrive (:class:`TarStreamReader`), so listing a
directory never holds its files' contents; the ``X-Docker-Container-Path-Stat`` header
(``HEAD`` or ``GET /containers/{id}/archive``) describes a path without its tar.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import stat
import tarfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._times import engine_time

__all__ = ["PATH_STAT_HEADER", "FileEntry", "TarMember", "TarStreamReader",
           "decode_path_stat", "entries_of_members", "entry_of_member",
           "entry_of_path_stat", "file_of_members", "first_file_only", "path_stat_is_dir",
           "path_stat_kind", "read_tar", "single_file_archive", "without_record_padding"]

#: The archive endpoints' header that describes the path asked for (base64 JSON).
PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"

# Two zero blocks end a tar archive; what a writer adds after them is record padding.
_END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory in a container, or one path (``Container.stat_path``).

    Attributes
    ----------
    name
        The entry's name inside its directory.
    path
        Its absolute path in the container.
    size
        Bytes of a regular file (0 for directories, symlinks and others).
    mode
        Permission bits, e.g. ``0o755``.
    kind
        ``"file"``, ``"dir"``, ``"symlink"`` or ``"other"``.
    mtime
        Modification time, seconds since the epoch.
    link_target
        Where a symlink points, else ``""``: in a listing, the link's own text (maybe
        relative); from ``stat_path``, the absolute path the engine resolved it to.
    """

    name: str
    path: str
    size: int
    mode: int
    kind: str
    mtime: float
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        """Whether this entry is a directory."""
        return self.kind == "dir"


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.isfile() or member.islnk():
        return "file"
    return "other"


def _parts(name: str) -> list[str]:
    return [part for part in name.split("/") if part and part != "."]


def _normalize(path: str) -> str:
    normalized = posixpath.normpath(path or "/")
    return "/" + normalized.lstrip("/") if normalized.startswith("/") else normalized


def entry_of_member(member: tarfile.TarInfo, path: str) -> FileEntry:
    """The :class:`FileEntry` a tar member describes, found at ``path``."""
    path = _normalize(path)
    return FileEntry(
        name=posixpath.basename(path) or "/", path=path,
        size=member.size if member.isfile() else 0, mode=stat.S_IMODE(member.mode),
        kind=_kind(member), mtime=float(member.mtime),
        link_target=member.linkname if member.issym() else "")


# -- reading a tar as it arrives ---------------------------------------------------------

#: The largest GNU long name or pax header accepted (Go's archive/tar allows 1 MiB).
MAX_EXTENSION_SIZE = 1024 * 1024
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
_LONG_NAME_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE)
# pax keywords GhostPanel reads, and the TarInfo attribute each sets.
_PAX_FIELDS = {"path": "name", "linkpath": "linkname", "size": "size", "mtime": "mtime",
               "uid": "uid", "gid": "gid", "uname": "uname", "gname": "gname"}
_PAX_NUMBERS = {"size": int, "uid": int, "gid": int, "mtime": float}


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``key=value`` records of a pax extended header (``"%d %s=%s\\n"`` each)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos]:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[space + 1:pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise tarfile.ReadError(f"malformed pax record at byte {pos} of its header")
        key, _, value = record[:-1].partition(b"=")
        records[_text(key)] = _text(value)
        pos += length
    return records


@dataclass(frozen=True)
class TarMember:
    """One member read off a tar stream.

    Attributes
    ----------
    info
        Its header, with GNU long names and pax records applied.
    data
        Its content when the reader was asked to keep it, else ``None``.
    """

    info: tarfile.TarInfo
    data: bytes | None = None


class TarStreamReader:
    """Read a tar as its bytes arrive: member headers out, contents skipped or kept.

    Python's :mod:`tarfile` reads from a blocking file object; an HTTP body arrives
    as chunks on an event loop. This reader is fed the chunks (:meth:`feed`) and keeps
    only what the next header needs, so a directory's listing costs one chunk of
    memory however large its files: contents run past uncopied unless ``keep`` asks
    for them. Each 512-byte header is decoded by :meth:`tarfile.TarInfo.frombuf`
    (ustar, GNU and base-256 numbers, checksum); GNU long names (``L``, ``K``) and pax
    headers (``x``, ``g``), which Go's ``archive/tar`` writes for long or non-ASCII
    names, are applied to the member they precede.

    Parameters
    ----------
    keep
        Which members' contents to keep (``TarMember.data``); none when ``None``.

    Examples
    --------
    >>> reader = TarStreamReader()
    >>> members = [m for chunk in chunks for m in reader.feed(chunk)]   # doctest: +SKIP
    """

    def __init__(self, *, keep: Callable[[tarfile.TarInfo], bool] | None = None) -> None:
        self._keep = keep
        self._buffer = bytearray()
        self._want = tarfile.BLOCKSIZE  # bytes the next header (or extension) needs
        self._extension: tarfile.TarInfo | None = None  # an L/K/x/g header whose data comes
        self._skip = 0  # content and padding still to pass over
        self._kept: tuple[tarfile.TarInfo, bytearray, int] | None = None
        self._long: dict[bytes, str] = {}
        self._pax: dict[str, str] = {}
        self._global_pax: dict[str, str] = {}
        self.done = False
        self.offset = 0

    @property
    def between_members(self) -> bool:
        """Whether the bytes fed so far end exactly between two members."""
        return not (self._buffer or self._skip or self._kept or self._extension
                    or self._long or self._pax)

    def feed(self, data: bytes) -> list[TarMember]:
        """Consume the next bytes of the tar; return the members they complete.

        A member without kept content is returned as soon as its header is read.
        After the end-of-archive marker, :attr:`done` is true and the rest is ignored.
        """
        members: list[TarMember] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
            elif self._kept is not None:
                step = self._keep_data(view[pos:end], members)
            else:
                step = min(self._want - len(self._buffer), end - pos)
                self._buffer += view[pos:pos + step]
                if len(self._buffer) == self._want:
                    block = bytes(self._buffer)
                    self._buffer.clear()
                    self._on_block(block, members)
            pos += step
            self.offset += step
        return members

    def _keep_data(self, piece: memoryview, members: list[TarMember]) -> int:
        assert self._kept is not None
        info, data, padding = self._kept
        step = min(info.size - len(data), len(piece))
        data += piece[:step]
        if len(data) == info.size:
            members.append(TarMember(info, bytes(data)))
            self._kept = None
            self._skip = padding
        return step

    def _on_block(self, block: bytes, members: list[TarMember]) -> None:
        if self._extension is not None:
            self._on_extension(self._extension, block)
            self._extension = None
            self._want = tarfile.BLOCKSIZE
            return
        if block == _ZERO_BLOCK:  # end of archive (tarfile stops at the first one too)
            self.done = True
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as error:
            raise tarfile.ReadError(f"bad tar header at byte {self.offset}: {error}") from None
        if info.type in _LONG_NAME_TYPES or info.type in _PAX_TYPES:
            if info.size > MAX_EXTENSION_SIZE:
                raise tarfile.ReadError(f"tar extension header of {info.size} bytes")
            self._extension = info
            self._want = _padded(info.size)
            if not self._want:
                self._on_block(b"", members)
            return
        if info.type == tarfile.GNUTYPE_SPARSE:
            # Go's archive/tar, which engines write with, never writes these.
            raise tarfile.ReadError(f"GNU sparse member {info.name!r} is not supported")
        self._on_member(info, members)

    def _on_extension(self, header: tarfile.TarInfo, block: bytes) -> None:
        data = block[:header.size]
        if header.type in _LONG_NAME_TYPES:
            self._long[header.type] = _text(data.split(b"\0", 1)[0])
        elif header.type == tarfile.XGLTYPE:
            self._global_pax.update(_pax_records(data))
        else:
            self._pax.update(_pax_records(data))

    def _on_member(self, info: tarfile.TarInfo, members: list[TarMember]) -> None:
        if tarfile.GNUTYPE_LONGNAME in self._long:
            info.name = self._long[tarfile.GNUTYPE_LONGNAME]
        if tarfile.GNUTYPE_LONGLINK in self._long:
            info.linkname = self._long[tarfile.GNUTYPE_LONGLINK]
        pax = {**self._global_pax, **self._pax}
        for key, attribute in _PAX_FIELDS.items():
            if pax.get(key):
                value = pax[key]
                try:
                    setattr(info, attribute, _PAX_NUMBERS.get(key, str)(value))
                except ValueError:
                    raise tarfile.ReadError(f"bad pax {key} {value!r}") from None
        info.pax_headers = pax
        self._long.clear()
        self._pax.clear()
        if info.isdir():
            info.name = info.name.rstrip("/")
        # As tarfile: only regular files (and unknown types) have content blocks.
        size = info.size if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES else 0
        if self._keep is not None and info.isreg() and self._keep(info):
            self._kept = (info, bytearray(), _padded(size) - size)
            if not size:
                self._keep_data(memoryview(b""), members)
            return
        members.append(TarMember(info))
        self._skip = _padded(size)


async def read_tar(body: AsyncIterator[bytes], *,
                   keep: Callable[[tarfile.TarInfo], bool] | None = None
                   ) -> AsyncGenerator[TarMember, None]:
    """The members of the tar that ``body`` streams, as they arrive (see
    :class:`TarStreamReader`); stops at the end-of-archive marker.

    Raises
    ------
    tarfile.ReadError
        The body is not a tar, or ends in the middle of a member.
    """
    reader = TarStreamReader(keep=keep)
    async for chunk in body:
        if reader.done:
            continue  # the rest of the end marker, and record padding: read to the end,
            # so that the connection can carry the next request
        for member in reader.feed(chunk):
            yield member
    if reader.done:
        return
    # Like tarfile, accept a tar without its end marker, not one cut inside a member.
    if not reader.between_members:
        raise tarfile.ReadError(f"the tar ends inside a member, at byte {reader.offset}")


async def entries_of_members(members: AsyncIterator[TarMember], directory: str
                             ) -> list[FileEntry]:
    """List the direct children of ``directory`` from the members of the engine's tar.

    The engine names members after the directory's base name (``etc/passwd`` for
    ``/etc``; Podman: ``/bin`` for ``/``), so children are the members one level
    below the first member, the directory itself.

    Raises
    ------
    NotADirectoryError
        The first member is not a directory.
    """
    entries: list[FileEntry] = []
    root: list[str] | None = None
    async for member in members:
        info = member.info
        parts = _parts(info.name)
        if root is None:
            if not info.isdir():
                raise NotADirectoryError(f"{directory} is not a directory in the container")
            root = parts
        elif len(parts) == len(root) + 1 and parts[:-1] == root:
            entries.append(entry_of_member(info, posixpath.join(directory, parts[-1])))
    entries.sort(key=lambda e: (not e.is_dir, e.name))
    return entries


def first_file_only() -> Callable[[tarfile.TarInfo], bool]:
    """A ``keep`` predicate for :func:`read_tar` that keeps the first regular file only."""
    kept = False

    def keep(info: tarfile.TarInfo) -> bool:
        nonlocal kept
        first, kept = not kept, True
        return first

    return keep


async def file_of_members(members: AsyncIterator[TarMember], path: str) -> bytes:
    """The content of the single regular file the engine's tar holds for ``path``.

    ``members`` must keep that file's content (``read_tar(body, keep=first_file_only())``).
    """
    async for member in members:
        if member.data is not None:
            return member.data
        if member.info.isdir():
            raise IsADirectoryError(f"{path} is a directory in the container")
    raise FileNotFoundError(f"{path} is not a regular file in the container")


def single_file_archive(name: str, data: bytes, *, mode: int = 0o644) -> bytes:
    """A tar holding one file ``name`` with ``data``, for ``PUT /archive``."""
    if "/" in name or not name:
        raise ValueError(f"file name must be a plain name, got {name!r}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
        end = tar.offset
    return buffer.getvalue()[:end] + _END_OF_ARCHIVE


def without_record_padding(archive: bytes) -> bytes:
    """``archive`` cut right after its end-of-archive marker.

    Python's ``tarfile`` (and GNU tar) pad an archive to a 10 KiB record. Podman's
    copier reads a ``PUT /archive`` body only up to the end marker, then its subprocess
    exits; when the padding is still being written into the pipe at that moment, the
    engine answers 500 "passing bulk input to subprocess: write |1: broken pipe"
    (buildah issue #6573; about 1 upload in 100 here, on Podman 4.3). Sending no
    padding closes that race. The archive is parsed to find its end, because trailing
    zero bytes may belong to a member's data; one that does not parse is returned
    unchanged, for the engine to judge.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            tar.getmembers()
            end = tar.offset
    except tarfile.TarError:
        return archive
    if len(archive) <= end + len(_END_OF_ARCHIVE):
        return archive
    return archive[:end] + _END_OF_ARCHIVE


def decode_path_stat(header: str | None) -> Mapping[str, Any]:
    """Decode the ``X-Docker-Container-Path-Stat`` header (base64 JSON).

    Podman 4.3 sends ``{"name", "size", "mode", "mtime", "isDir", "linkTarget"}``;
    ``mode`` is Go's ``os.FileMode`` (type bits high, see :func:`entry_of_path_stat`).
    """
    if not header:
        return {}
    try:
        value = json.loads(base64.b64decode(header))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# Go's os.FileMode keeps the type in high bits, not in S_IFMT's.
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
_GO_MODE_OTHER = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)  # device,
# named pipe, socket, char device, irregular
_GO_SPECIAL_BITS = ((1 << 23, stat.S_ISUID), (1 << 22, stat.S_ISGID), (1 << 20, stat.S_ISVTX))


def path_stat_kind(path_stat: Mapping[str, Any]) -> str:
    """``"dir"``, ``"symlink"``, ``"file"`` or ``"other"`` from a decoded path stat."""
    mode = int(path_stat.get("mode") or 0)
    if mode & _GO_MODE_DIR:
        return "dir"
    if mode & _GO_MODE_SYMLINK:
        return "symlink"
    return "other" if mode & _GO_MODE_OTHER else "file"


def path_stat_is_dir(path_stat: Mapping[str, Any]) -> bool:
    """Whether a decoded path stat is of a directory, or of a symlink to one.

    Podman 4.3 sets ``isDir`` for a symlink to a directory (its ``mode`` is the
    link's) and its archive follows such a link; Docker sends no ``isDir`` and
    archives the link itself.
    """
    return path_stat_kind(path_stat) == "dir" or path_stat.get("isDir") is True


def entry_of_path_stat(path_stat: Mapping[str, Any], path: str) -> FileEntry:
    """The :class:`FileEntry` for ``path`` from the engine's decoded path stat.

    The name is the last part of ``path``, not the stat's ``name``: for a symlink
    Podman 4.3 names its target (``busybox`` for ``/bin/sh``), and ``.`` for ``/``.
    The stat describes the path itself, not what a symlink points to; ``linkTarget``
    is the absolute path it resolves to, kept for symlinks only (Podman fills it in
    for every path). Sizes are of regular files only, as in a listing.
    """
    mode = int(path_stat.get("mode") or 0)
    permissions = mode & 0o777
    for go_bit, bit in _GO_SPECIAL_BITS:
        if mode & go_bit:
            permissions |= bit
    kind = path_stat_kind(path_stat)
    moment = engine_time(path_stat.get("mtime"))
    path = _normalize(path)
    return FileEntry(
        name=posixpath.basename(path) or "/", path=path,
        size=int(path_stat.get("size") or 0) if kind == "file" else 0, mode=permissions,
        kind=kind, mtime=moment.timestamp() if moment is not None else 0.0,
        link_target=str(path_stat.get("linkTarget") or "") if kind == "symlink" else "")
