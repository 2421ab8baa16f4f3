"""Which container a process runs in, from ``/proc/PID/cgroup``.

NVML reports the PIDs that use a GPU; an operator wants the container. The engines put
each container in a cgroup whose path holds its 64-hex id: Docker
``/docker/<id>`` or ``/system.slice/docker-<id>.scope``, Podman
``/machine.slice/libpod-<id>.scope`` (also under a user's slice when rootless), and
cgroupfs managers ``/libpod_parent/libpod-<id>``. The last such id on a line wins: a
process of a nested container belongs to the inner one.
"""

from __future__ import annotations

import re

__all__ = ["container_id_from_cgroup", "container_of_pid"]

# 64 hex digits after a separator the engines use; "conmon" cgroups of Podman
# (libpod-conmon-<id>.scope) hold the monitor, not the container, and are skipped.
_ID = re.compile(r"(?:^|[/-])(?<!conmon-)([0-9a-f]{64})(?:\.scope)?(?=/|$)")


def container_id_from_cgroup(text: str) -> str | None:
    """The container id in the text of a ``/proc/PID/cgroup`` file, or None.

    Examples
    --------
    >>> container_id_from_cgroup("0::/machine.slice/libpod-" + "ab" * 32 + ".scope")[:8]
    'abababab'
    >>> container_id_from_cgroup("0::/user.slice/user-1000.slice/session-2.scope") is None
    True
    """
    found: str | None = None
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for match in _ID.finditer(path):
            found = match.group(1)
    return found


def container_of_pid(pid: int, *, proc: str = "/proc") -> str | None:
    """The id of the container process ``pid`` runs in; None on the host, or when the
    process ended or its cgroup cannot be read (another user's, without root)."""
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            return container_id_from_cgroup(handle.read())
    except OSError:
        return None
