"""What a process has used so far, read from ``/proc`` (Linux): CPU time and RSS.

Several scripts measure the agent, the gateway or the engine from outside; they read
the same two files the same way, here.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` used so far (``/proc/PID/stat``).

    Parameters
    ----------
    pid : int
        The process.

    Returns
    -------
    float
        ``utime + stime`` in seconds.
    """
    # The command name in parentheses may hold spaces: count fields after its ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """The resident set of process ``pid`` in KiB (``VmRSS`` of ``/proc/PID/status``).

    Parameters
    ----------
    pid : int
        The process.

    Returns
    -------
    int
        The resident set size, KiB.

    Raises
    ------
    RuntimeError
        When the status has no ``VmRSS`` line (a kernel thread, a zombie).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
