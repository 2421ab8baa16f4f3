"""Container resource samples, with CPU % computed the way ``docker stats`` does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StatsSample", "cpu_percent"]


def _cpu_totals(stats: Mapping[str, Any]) -> tuple[int, int]:
    cpu = stats.get("cpu_stats") or {}
    return (int((cpu.get("cpu_usage") or {}).get("total_usage") or 0),
            int(cpu.get("system_cpu_usage") or 0))


def _online_cpus(stats: Mapping[str, Any]) -> int:
    cpu = stats.get("cpu_stats") or {}
    online = int(cpu.get("online_cpus") or 0)
    if not online:
        online = len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return online


def cpu_percent(current: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> float:
    """CPU use in percent of one CPU, as ``docker stats`` computes it.

    ``(container CPU delta / system CPU delta) * online CPUs * 100``, the deltas taken
    against ``previous`` when given, else against the sample's own ``precpu_stats``.
    Returns 0.0 when there is no earlier reading to compare with (Podman's one-shot
    samples carry an empty ``precpu_stats``).
    """
    total, system = _cpu_totals(current)
    if previous is not None:
        prev_total, prev_system = _cpu_totals(previous)
    else:
        pre = current.get("precpu_stats") or {}
        prev_total = int((pre.get("cpu_usage") or {}).get("total_usage") or 0)
        prev_system = int(pre.get("system_cpu_usage") or 0)
    if not prev_system:
        return 0.0
    cpu_delta = total - prev_total
    system_delta = system - prev_system
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * _online_cpus(current) * 100.0


def has_precpu(stats: Mapping[str, Any]) -> bool:
    """Whether the sample carries its own earlier CPU reading."""
    return bool((stats.get("precpu_stats") or {}).get("system_cpu_usage"))


@dataclass(frozen=True)
class StatsSample:
    """One resource sample of one container.

    Attributes
    ----------
    container
        The container's name.
    read
        The engine's RFC 3339 time of the sample.
    cpu_percent
        CPU use in percent of one CPU (can exceed 100 on several CPUs).
    memory_usage, memory_limit
        Bytes in use (page cache excluded, as ``docker stats`` shows it) and the limit.
    memory_percent
        ``memory_usage / memory_limit * 100``.
    net_rx, net_tx
        Bytes received and sent, summed over the container's networks.
    block_read, block_write
        Bytes read and written on block devices.
    pids
        Processes in the container.
    attrs
        The raw sample.
    """

    container: str
    read: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    attrs: Mapping[str, Any]

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], *, container: str = "",
                   previous: Mapping[str, Any] | None = None) -> StatsSample:
        """Summarise a raw ``/containers/{id}/stats`` sample."""
        memory = attrs.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        # cgroup v1 reports page cache as total_inactive_file, v2 as inactive_file.
        cache = int(detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0)
        usage = max(int(memory.get("usage") or 0) - cache, 0)
        limit = int(memory.get("limit") or 0)
        rx = tx = 0
        for net in (attrs.get("networks") or {}).values():
            rx += int(net.get("rx_bytes") or 0)
            tx += int(net.get("tx_bytes") or 0)
        read_bytes = write_bytes = 0
        blkio = (attrs.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
        for entry in blkio:
            op = str(entry.get("op", "")).lower()
            if op == "read":
                read_bytes += int(entry.get("value") or 0)
            elif op == "write":
                write_bytes += int(entry.get("value") or 0)
        name = container or str(attrs.get("name", "")).lstrip("/")
        return cls(container=name, read=str(attrs.get("read", "")),
                   cpu_percent=cpu_percent(attrs, previous), memory_usage=usage,
                   memory_limit=limit,
                   memory_percent=usage / limit * 100.0 if limit else 0.0,
                   net_rx=rx, net_tx=tx, block_read=read_bytes, block_write=write_bytes,
                   pids=int((attrs.get("pids_stats") or {}).get("current") or 0),
                   attrs=attrs)
