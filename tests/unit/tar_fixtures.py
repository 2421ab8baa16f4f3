"""Tar archives and path-stat headers as the engines send them, for the archive tests."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Iterable
from typing import Any

__all__ = ["MTIME", "path_stat_value", "tar_archive"]

MTIME = 1714557600  # every member's modification time


def tar_archive(members: Iterable[tuple[str, str, bytes | str]], *, file_mode: int = 0o644,
                format: int = tarfile.PAX_FORMAT, pax_headers: dict[str, str] | None = None,
                padding: bool = True) -> bytes:
    """A tar of ``members``: (name, ``"dir"``/``"symlink"``/``"file"``, data or link target).

    ``padding=False`` cuts it right after the end-of-archive marker, where ``tarfile``
    (like GNU tar) pads it to a 10 KiB record.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format,
                      pax_headers=pax_headers or {}) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, str(data)
                tar.addfile(info)
            else:
                assert isinstance(data, bytes)
                info.size, info.mode = len(data), file_mode
                tar.addfile(info, io.BytesIO(data))
        end = tar.offset + 2 * tarfile.BLOCKSIZE
    return buffer.getvalue() if padding else buffer.getvalue()[:end]


def path_stat_value(**stat: Any) -> str:
    """The ``X-Docker-Container-Path-Stat`` header's value: base64 of the stat's JSON."""
    return base64.b64encode(json.dumps(stat).encode()).decode()
