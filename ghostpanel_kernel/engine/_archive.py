"""Files in containers through the archive API: tar in, tar out."""

from __future__ import annotations

import base64
import io
import json
import posixpath
import stat
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FileEntry", "decode_path_stat", "entries_of_directory", "file_from_archive",
           "single_file_archive", "without_record_padding"]

# Two zero blocks end a tar archive; what a writer adds after them is record padding.
_END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory in a container.

    Attributes
    ----------
    name
        The entry's name inside its directory.
    path
        Its absolute path in the container.
    size
        Bytes (0 for directories).
    mode
        Permission bits, e.g. ``0o755``.
    kind
        ``"file"``, ``"dir"``, ``"symlink"`` or ``"other"``.
    mtime
        Modification time, seconds since the epoch.
    link_target
        Where a symlink points, else ``""``.
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


def entries_of_directory(archive: bytes, directory: str) -> list[FileEntry]:
    """List the direct children of ``directory`` from the engine's tar of it.

    The engine names members after the directory's base name (``etc/passwd`` for
    ``/etc``), so children are the members one level below that root.
    """
    entries: list[FileEntry] = []
    root: list[str] | None = None
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            parts = [p for p in member.name.split("/") if p and p != "."]
            if root is None:
                # The first member is the directory itself: "etc" for /etc, "/" for /.
                root = parts
                continue
            if len(parts) != len(root) + 1 or parts[:-1] != root:
                continue
            name = parts[-1]
            entries.append(FileEntry(
                name=name, path=posixpath.join(directory, name),
                size=member.size if member.isfile() else 0,
                mode=stat.S_IMODE(member.mode), kind=_kind(member), mtime=member.mtime,
                link_target=member.linkname if member.issym() else ""))
    entries.sort(key=lambda e: (not e.is_dir, e.name))
    return entries


def file_from_archive(archive: bytes, path: str) -> bytes:
    """Extract the single regular file the engine sent for ``path``."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    return extracted.read()
            if member.isdir():
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
    (containers/buildah#6573; about 1 upload in 100 here, on Podman 4.3). Sending no
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
    """Decode the ``X-Docker-Container-Path-Stat`` header (base64 JSON)."""
    if not header:
        return {}
    try:
        value = json.loads(base64.b64decode(header))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
