"""Run the filesystem tools (``btrfs``, ``zfs``, ``findmnt``) without a shell.

Drivers take a :data:`Runner`, so that unit tests replay recorded output (ZFS, absent
on the test machine) and integration tests inject a failure into one real command.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._errors import SnapshotCommandError, UnsupportedFilesystem

__all__ = ["Mount", "Runner", "find_mount", "run_command"]

#: ``await runner(argv)`` returns the command's stdout, or raises SnapshotCommandError.
Runner = Callable[[Sequence[str]], Awaitable[str]]


async def run_command(argv: Sequence[str]) -> str:
    """Run ``argv`` (no shell), return its stdout; raise on a non-zero exit.

    Raises
    ------
    SnapshotCommandError
        Exit status not 0 (with its stderr), or the program is not installed (127).
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise SnapshotCommandError(argv, 127, f"{argv[0]}: command not found "
                                   "(install btrfs-progs or zfsutils)") from None
    stdout, stderr = await process.communicate()
    if process.returncode:
        raise SnapshotCommandError(argv, process.returncode,
                                   stderr.decode(errors="replace").strip())
    return stdout.decode(errors="replace")


@dataclass(frozen=True)
class Mount:
    """The mount a path lives on: filesystem type, mount point, source.

    For ZFS, ``source`` is the dataset (``tank/games``); for BTRFS, the block device.
    """

    filesystem: str
    target: str
    source: str


async def find_mount(path: str, run: Runner = run_command) -> Mount:
    """The mount that holds ``path`` (``findmnt -T``).

    Raises
    ------
    UnsupportedFilesystem
        The path does not exist (filesystem ``"missing"``).
    """
    if not os.path.lexists(path):
        # findmnt -T would walk up to the nearest existing parent and answer for it.
        raise UnsupportedFilesystem(f"{path} does not exist", path=path,
                                    filesystem="missing")
    try:
        text = await run(["findmnt", "--json", "--noheadings", "--output",
                          "FSTYPE,TARGET,SOURCE", "--target", path])
    except SnapshotCommandError as error:
        raise UnsupportedFilesystem(f"{path}: cannot find its filesystem: {error}",
                                    path=path, filesystem="unknown") from error
    entry = json.loads(text)["filesystems"][0]
    source = str(entry.get("source") or "")
    # findmnt shows a bind mount of a subdirectory as "/dev/loop0[/sub]".
    return Mount(str(entry["fstype"]), str(entry["target"]), source.split("[", 1)[0])
