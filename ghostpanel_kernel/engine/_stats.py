"""Container resource samples, with CPU % as ``docker stats`` shows it, on any engine.

CPU % is the container's CPU time over the wall-clock time between two readings, in
percent of one CPU. ``docker stats`` computes it as ``container CPU delta / system CPU
delta * online CPUs * 100``, which is the same thing on Docker only because Docker's
``system_cpu_usage`` is ``/proc/stat``'s total (idle included): wall-clock time times
the CPUs. Podman's is not. Podman 4.3 puts the *busy* time of all cgroups there (the
root ``cpuacct.usage`` on cgroup v1, the top-level cgroups' ``usage_usec`` on v2), so on
a quiet host Docker's formula reads up to ``online_cpus`` times too high: one spinning
shell read 112-183 % on a 2-CPU host where it used 75-98 % of one CPU.

Both engines stamp each reading with the wall-clock time it was taken (``read``, and
``preread`` for the earlier reading in ``precpu_stats``), so the CPU time over those
stamps is right on both without knowing which engine answered. On Docker it agrees with
Docker's own figure to within ``/proc/stat``'s 10 ms ticks (and the steal time that
Docker leaves out of its total on a VM). Docker's formula is kept only for samples
without usable stamps.

Podman's *first* streamed sample compares with a reading taken a few milliseconds
before it: its CPU % is exact arithmetic over a very short window, so noisy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._times import engine_time_ns

__all__ = ["StatsSample", "cpu_percent"]


@dataclass(frozen=True)
class _CpuReading:
    """One reading of the CPU counters, and when the engine took it."""

    used: int  # the container's CPU time (ns): cpu_usage.total_usage
    system: int  # the engine's system_cpu_usage (ns); 0 when not reported
    at: int | None  # wall-clock time of the reading (ns since the epoch)


def _reading(cpu_stats: Mapping[str, Any] | None, stamp: object) -> _CpuReading:
    cpu = cpu_stats or {}
    return _CpuReading(used=int((cpu.get("cpu_usage") or {}).get("total_usage") or 0),
                       system=int(cpu.get("system_cpu_usage") or 0),
                       at=engine_time_ns(stamp))


def _earlier_reading(stats: Mapping[str, Any]) -> _CpuReading | None:
    """The sample's own earlier reading (``precpu_stats``), or None when it has none.

    Podman's one-shot samples and Docker's first streamed one carry a zeroed
    ``precpu_stats`` and a zero ``preread``.
    """
    before = _reading(stats.get("precpu_stats"), stats.get("preread"))
    if before.at is None and not before.system:
        return None
    return before


def _online_cpus(stats: Mapping[str, Any]) -> int:
    cpu = stats.get("cpu_stats") or {}
    online = int(cpu.get("online_cpus") or 0)
    if not online:
        online = len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return online


def _percent_between(now: _CpuReading, before: _CpuReading, online_cpus: int
                     ) -> float | None:
    """CPU % of one CPU from ``before`` to ``now``; None when they cannot be compared."""
    used = now.used - before.used
    if used < 0:  # the counter went back: the container restarted in between
        return None
    if now.at is not None and before.at is not None and now.at > before.at:
        return used / (now.at - before.at) * 100.0
    # No usable stamps: Docker's formula, right on Docker (its system time is wall time
    # times the CPUs), the best there is elsewhere.
    system = now.system - before.system
    if before.system and system > 0:
        return used / system * online_cpus * 100.0
    return None


def cpu_percent(current: Mapping[str, Any], previous: Mapping[str, Any] | None = None
                ) -> float:
    """CPU use of a raw sample in percent of one CPU, as ``docker stats`` shows it.

    The container's CPU time between two readings over the wall-clock time between
    them (the engine's ``read`` stamps), which is right on Docker and on Podman alike;
    see the module's docstring for why not Docker's own formula.

    Parameters
    ----------
    current
        A raw ``/containers/{id}/stats`` sample.
    previous
        An earlier raw sample of the same container. Without it, the sample's own
        earlier reading (``precpu_stats`` and ``preread``) is used.

    Returns
    -------
    float
        Can exceed 100 on several CPUs. NaN when it is not known: there is nothing to
        compare with (a Podman one-shot sample alone), or the counter went back (the
        container restarted in between). Not 0.0, which would read as an idle
        container: tables show NaN blank and charts as a gap, as
        :meth:`StatsSample.cpu_percent_since` gives it.

    Examples
    --------
    >>> before = {"read": "2024-05-01T10:00:00Z",
    ...           "cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}}}
    >>> now = {"read": "2024-05-01T10:00:02Z",
    ...        "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}}}
    >>> cpu_percent(now, before)
    75.0
    """
    now = _reading(current.get("cpu_stats"), current.get("read"))
    if previous is not None:
        before: _CpuReading | None = _reading(previous.get("cpu_stats"),
                                              previous.get("read"))
    else:
        before = _earlier_reading(current)
    if before is None:
        return math.nan
    percent = _percent_between(now, before, _online_cpus(current))
    return math.nan if percent is None else percent


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
        CPU use in percent of one CPU (can exceed 100 on several CPUs), over the
        sample's own window; NaN when it is not known: see :func:`cpu_percent`, and
        :meth:`cpu_percent_since` for the use since another sample.
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

    Examples
    --------
    >>> first = await container.stats(cpu_window=0)      # doctest: +SKIP
    >>> later = await container.stats(cpu_window=0)      # doctest: +SKIP
    >>> later.cpu_percent_since(first)                   # doctest: +SKIP
    99.2
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

    def cpu_percent_since(self, previous: StatsSample) -> float:
        """CPU use in percent of one CPU between ``previous`` and this sample.

        The container's CPU time between the two over the wall-clock time between
        their :attr:`read` stamps: what ``docker stats`` shows, on Docker and Podman.

        Parameters
        ----------
        previous
            An earlier sample of the same container.

        Returns
        -------
        float
            NaN when the two cannot be compared: the CPU counter went back (the
            container restarted in between), or neither times nor system counters
            tell the time between them. A chart shows a gap there, not a false 0 %.
        """
        now = _reading(self.attrs.get("cpu_stats"), self.read)
        before = _reading(previous.attrs.get("cpu_stats"), previous.read)
        percent = _percent_between(now, before, _online_cpus(self.attrs))
        return math.nan if percent is None else percent

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], *, container: str = "",
                   previous: Mapping[str, Any] | None = None) -> StatsSample:
        """Summarise a raw ``/containers/{id}/stats`` sample.

        ``previous``, an earlier raw sample of the same container, is what CPU % is
        measured against; without it, the sample's own ``precpu_stats``.
        """
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
