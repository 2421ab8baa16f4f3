"""The metric names GhostPanel stores, and the two record shapes it stores.

Names are short and carry their unit as a suffix (``_bytes``, ``_seconds_total``,
``_cores``) so a reader of a CSV export or a DataFrame never has to guess the unit.
``_total`` marks a counter: it only grows while the container lives (and restarts at
zero when the container restarts), so rates come from differences, not values.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

#: CPU in use, in cores, averaged over the sampling interval (1.0 = one full core).
CPU_CORES = "cpu_cores"
#: CPU time consumed since the container started, in seconds (a counter).
CPU_USAGE_SECONDS_TOTAL = "cpu_usage_seconds_total"
#: Memory the kernel cannot reclaim without swapping (usage minus inactive file cache).
MEMORY_WORKING_SET_BYTES = "memory_working_set_bytes"
#: Memory charged to the container's cgroup, page cache included.
MEMORY_USAGE_BYTES = "memory_usage_bytes"
#: The container's memory limit; 0 means it has none.
MEMORY_LIMIT_BYTES = "memory_limit_bytes"
#: Bytes received on all of the container's interfaces (a counter).
NETWORK_RECEIVE_BYTES_TOTAL = "network_receive_bytes_total"
#: Bytes sent on all of the container's interfaces (a counter).
NETWORK_TRANSMIT_BYTES_TOTAL = "network_transmit_bytes_total"
#: Bytes read from block devices (a counter).
FS_READS_BYTES_TOTAL = "fs_reads_bytes_total"
#: Bytes written to block devices (a counter).
FS_WRITES_BYTES_TOTAL = "fs_writes_bytes_total"
#: Processes (tasks) in the container right now.
PIDS = "pids"

#: Every metric the sampler records, in a stable order.
METRICS: tuple[str, ...] = (
    CPU_CORES,
    CPU_USAGE_SECONDS_TOTAL,
    MEMORY_WORKING_SET_BYTES,
    MEMORY_USAGE_BYTES,
    MEMORY_LIMIT_BYTES,
    NETWORK_RECEIVE_BYTES_TOTAL,
    NETWORK_TRANSMIT_BYTES_TOTAL,
    FS_READS_BYTES_TOTAL,
    FS_WRITES_BYTES_TOTAL,
    PIDS,
)

#: Metrics that are counters (monotonic while the container lives).
COUNTERS: frozenset[str] = frozenset(name for name in METRICS if name.endswith("_total"))

EventKind = Literal["start", "die", "restart", "oom", "health", "destroy"]

#: Container lifecycle event kinds the sampler records.
EVENT_KINDS: tuple[str, ...] = ("start", "die", "restart", "oom", "health", "destroy")


class Sample(NamedTuple):
    """One value of one metric of one container at one moment.

    Attributes
    ----------
    time : float
        Unix seconds (UTC) at which the round that produced it started.
    environment : str
        The environment's name (``"local"`` for the agent's own engine).
    container : str
        The container's name, without the engine's leading ``/``.
    container_id : str
        The full container id (names can be reused; ids cannot).
    image : str
        The image the container was created from, as the engine reports it.
    metric : str
        One of :data:`METRICS`.
    value : float
        The value, in the unit the metric's name ends with.
    """

    time: float
    environment: str
    container: str
    container_id: str
    image: str
    metric: str
    value: float


class ContainerEvent(NamedTuple):
    """One lifecycle event of one container, as the engine's event stream told it.

    Attributes
    ----------
    time : float
        Unix seconds (UTC) of the event.
    environment : str
        The environment's name.
    container : str
        The container's name, without a leading ``/``.
    container_id : str
        The full container id.
    kind : str
        One of :data:`EVENT_KINDS`: ``start``, ``die``, ``restart``, ``oom``,
        ``health`` or ``destroy``.
    exit_code : int or None
        The exit code, for ``die`` (and ``restart`` where the engine gives it).
    health : str or None
        The new health status (``healthy``, ``unhealthy``, ``starting``) for ``health``.
    """

    time: float
    environment: str
    container: str
    container_id: str
    kind: str
    exit_code: int | None
    health: str | None
