"""One engine stats answer (``GET /containers/{id}/stats?stream=false``) to Samples.

Works on Docker's and Podman's shapes alike. CPU in cores comes from the CPU-time
counter's growth since the container's previous round over the engine's ``read``
stamps (Podman's one-shot answers carry no earlier reading of their own), so the first
round of a container has it unknown (NaN) rather than a made-up 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..engine._times import engine_time_ns
from . import _names as n
from ._names import Sample

__all__ = ["ContainerInfo", "CpuReading", "stats_samples"]


@dataclass(frozen=True)
class ContainerInfo:
    """The labels a container's samples carry."""

    environment: str
    name: str
    id: str
    image: str


@dataclass(frozen=True)
class CpuReading:
    """A container's CPU time (ns) and when the engine read it (ns since the epoch)."""

    used: int
    at: int


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _block_bytes(stats: Mapping[str, Any]) -> tuple[int, int]:
    read = write = 0
    entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    for entry in entries:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += _int(entry.get("value"))
        elif op == "write":
            write += _int(entry.get("value"))
    return read, write


def _memory(stats: Mapping[str, Any], host_memory: int) -> tuple[int, int, int]:
    """(working set, usage, limit) in bytes; limit 0 when the container has none."""
    memory = stats.get("memory_stats") or {}
    usage = _int(memory.get("usage"))
    detail = memory.get("stats") or {}
    # cAdvisor's working set: usage less the inactive file cache the kernel can drop
    # (cgroup v2 names it inactive_file, v1 total_inactive_file).
    inactive = _int(detail.get("inactive_file", detail.get("total_inactive_file")))
    working = max(usage - inactive, 0)
    limit = _int(memory.get("limit"))
    # Engines report the host's memory as the limit of an unlimited container.
    if limit <= 0 or (host_memory and limit >= host_memory) or limit >= 2**62:
        limit = 0
    return working, usage, limit


def stats_samples(stats: Mapping[str, Any], info: ContainerInfo, when: float,
                  previous: CpuReading | None, host_memory: int
                  ) -> tuple[list[Sample], CpuReading | None]:
    """The Samples of one stats answer, and its CPU reading for the next round.

    Parameters
    ----------
    stats
        The raw one-shot stats answer.
    info
        Whose it is.
    when
        The round's time (unix seconds): every sample of a round shares it.
    previous
        The container's reading of the previous round, if any.
    host_memory
        The host's memory in bytes (a limit that large means none); 0 if unknown.
    """
    cpu = stats.get("cpu_stats") or {}
    used = _int((cpu.get("cpu_usage") or {}).get("total_usage"))
    at = engine_time_ns(stats.get("read"))
    reading = CpuReading(used, at) if at is not None else None
    cores = math.nan
    if reading is not None and previous is not None and reading.at > previous.at \
            and reading.used >= previous.used:  # a counter that went back: restarted
        cores = (reading.used - previous.used) / (reading.at - previous.at)
    working, usage, limit = _memory(stats, host_memory)
    rx = tx = 0
    for network in (stats.get("networks") or {}).values():
        rx += _int(network.get("rx_bytes"))
        tx += _int(network.get("tx_bytes"))
    read, write = _block_bytes(stats)
    values = {
        n.CPU_CORES: cores,
        n.CPU_USAGE_SECONDS_TOTAL: used / 1e9,
        n.MEMORY_WORKING_SET_BYTES: float(working),
        n.MEMORY_USAGE_BYTES: float(usage),
        n.MEMORY_LIMIT_BYTES: float(limit),
        n.NETWORK_RECEIVE_BYTES_TOTAL: float(rx),
        n.NETWORK_TRANSMIT_BYTES_TOTAL: float(tx),
        n.FS_READS_BYTES_TOTAL: float(read),
        n.FS_WRITES_BYTES_TOTAL: float(write),
        n.PIDS: float(_int((stats.get("pids_stats") or {}).get("current"))),
    }
    samples = [Sample(when, info.environment, info.name, info.id, info.image, metric,
                      values[metric]) for metric in n.METRICS]
    return samples, reading
