"""The processes of this machine, read from Linux's ``/proc``, in one place.

``ghostpanel up`` uses it to end what its server left running; the tests use the same
reader to find what their engines and servers left. Each read tolerates a process that
ends while it is being read (its files vanish): that process is simply not there.
Where there is no ``/proc`` (not Linux), there are no processes to see.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ProcessEntry",
    "command_line",
    "descendants",
    "is_running",
    "process_ids",
    "process_table",
    "read_process",
]

_PROC = "/proc"


@dataclass(frozen=True)
class ProcessEntry:
    """One process, from ``/proc/PID/stat``.

    Attributes
    ----------
    pid, parent
        Its id and its parent's.
    state
        The kernel's one-letter state: ``R`` running, ``S`` sleeping, ``Z`` zombie...
    started
        Its start time (clock ticks since boot), as text: with the PID, it tells a
        process from a later one that reuses the PID.
    """

    pid: int
    parent: int
    state: str
    started: str


def process_ids() -> Iterator[int]:
    """The PIDs in ``/proc`` now; none where there is no ``/proc``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(_PROC):
            if entry.name.isdigit():
                yield int(entry.name)


def read_process(pid: int) -> ProcessEntry | None:
    """``pid``'s entry, or None when it does not run (any more)."""
    try:
        with open(f"{_PROC}/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:  # ended while we looked, or never was
        return None
    # The command name (2nd field) may hold spaces and parentheses: fields start after
    # its last ")". Counted from there, state is the 1st, the parent the 2nd, the start
    # time the 20th (fields 3, 4 and 22 of proc(5)).
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return ProcessEntry(pid=pid, parent=int(fields[1]), state=fields[0], started=fields[19])


def process_table() -> dict[int, ProcessEntry]:
    """PID -> :class:`ProcessEntry` of every process."""
    table: dict[int, ProcessEntry] = {}
    for pid in process_ids():
        entry = read_process(pid)
        if entry is not None:
            table[pid] = entry
    return table


def descendants(pid: int) -> list[ProcessEntry]:
    """The processes below ``pid`` (children, their children...), parents first.

    Examples
    --------
    >>> descendants(os.getpid())                                 # doctest: +SKIP
    [ProcessEntry(pid=4242, parent=4200, state='S', started='912345')]
    """
    table = process_table()
    children: dict[int, list[int]] = {}
    for entry in table.values():
        children.setdefault(entry.parent, []).append(entry.pid)
    found: list[ProcessEntry] = []
    # Iterative: a deep chain of processes must not exhaust Python's stack.
    queue = sorted(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(table[child])
        queue.extend(sorted(children.get(child, [])))
    return found


def command_line(pid: int) -> list[str] | None:
    """``pid``'s arguments (``argv``), or None when it does not run.

    A zombie or a kernel thread has none: ``[]``. Bytes that are not UTF-8 are kept as
    surrogate escapes, so ``os.fsencode`` gives them back.
    """
    try:
        with open(f"{_PROC}/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    parts = raw.split(b"\0")
    if parts[-1] == b"":  # the usual terminating NUL; a process that rewrote its
        parts.pop()       # arguments may have left it out
    return [os.fsdecode(part) for part in parts] if raw else []


def is_running(pid: int) -> bool:
    """Whether ``pid`` runs: it exists and is not a zombie waiting to be reaped."""
    entry = read_process(pid)
    return entry is not None and entry.state not in ("Z", "X")
