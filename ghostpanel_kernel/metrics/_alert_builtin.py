"""The conditions of the built-in rule kinds, over one :class:`Observation`.

Each kind is a function ``(rule, observation) -> list[Finding]``: the subjects
(containers, or ``volume:NAME``) for which the condition holds *now*. Whether that has
lasted the rule's ``for`` is the state machine's business (``_alert_state``), not
theirs. Pure functions over plain data, no I/O and no pandas (except ``python`` rules,
whose predicates take a DataFrame by contract), so they are tested without an engine.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._alert_rules import OPERATORS, AlertRule
from ._names import CPU_CORES, MEMORY_WORKING_SET_BYTES, ContainerEvent, Sample

__all__ = ["CONDITIONS", "ContainerInfo", "Finding", "Observation", "VolumeUsage",
           "findings", "robust_slope", "slope"]

_EXITED = re.compile(r"exited \((-?[0-9]+)\)", re.IGNORECASE)


@dataclass(frozen=True)
class ContainerInfo:
    """What the engine's listing says of one container."""

    name: str
    container_id: str
    image: str
    state: str
    health: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    status: str = ""

    @property
    def exit_code(self) -> int | None:
        """The exit code in the status text (``Exited (1) 3 seconds ago``), if any."""
        match = _EXITED.search(self.status)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class VolumeUsage:
    """One volume's size (``system df``) and, where the agent can see it, the capacity
    and free space of the filesystem holding it."""

    name: str
    size_bytes: float
    capacity_bytes: float | None = None
    free_bytes: float | None = None

    @property
    def filesystem_fraction(self) -> float | None:
        """How full the volume's filesystem is (0 to 1), if known."""
        if not self.capacity_bytes or self.free_bytes is None:
            return None
        return (self.capacity_bytes - self.free_bytes) / self.capacity_bytes


@dataclass
class Observation:
    """Everything one evaluation round looks at.

    Attributes
    ----------
    now
        Unix seconds of the round.
    environment
        The environment's name.
    containers
        Every container of the listing (stopped ones too).
    samples
        Stored samples of the longest window any rule reads.
    events
        Stored lifecycle events of that window.
    health
        The last health status seen in events, per container id (older than the
        window too): Podman's listing does not carry health.
    volumes
        Volume sizes with their history (unix seconds, bytes), oldest first; None when
        no rule reads them.
    cpu_limits
        CPU limits in cores per container name (containers without one absent).
    host_cores
        The host's CPUs: the capacity of a container without a CPU limit.
    """

    now: float
    environment: str
    containers: Sequence[ContainerInfo]
    samples: Sequence[Sample] = ()
    events: Sequence[ContainerEvent] = ()
    health: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, Sequence[tuple[float, VolumeUsage]]] | None = None
    cpu_limits: Mapping[str, float] = field(default_factory=dict)
    host_cores: float = 1.0

    def selected(self, rule: AlertRule) -> list[ContainerInfo]:
        """The containers ``rule`` watches."""
        return [c for c in self.containers if rule.selects(c.name, c.labels)]

    def series(self, metric: str, since: float) -> dict[str, list[tuple[float, float]]]:
        """``metric``'s (time, value) points per container since ``since``, in time order."""
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for sample in self.samples:
            if sample.metric == metric and sample.time >= since:
                points[sample.container].append((sample.time, sample.value))
        for values in points.values():
            values.sort()
        return points


@dataclass(frozen=True)
class Finding:
    """A subject for which a rule's condition holds now."""

    subject: str
    value: float | None
    message: str


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``(x, y)`` points (units of y per unit of x); 0 for
    fewer than two distinct x.

    Examples
    --------
    >>> slope([(0, 1.0), (1, 3.0), (2, 5.0)])
    2.0
    """
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def robust_slope(points: Sequence[tuple[float, float]]) -> float:
    """A robust slope of ``(x, y)`` points in time order: the median of the slopes from
    each point to the one half the series later (Theil-Sen over those pairs). Unlike
    least squares, a few spikes (a garbage collection, a transient copy) cannot tilt
    it, since each point is in one pair only; and it costs O(n log n), not Theil-Sen's
    O(n^2), at a 30-minute window of 100 containers every round.

    Examples
    --------
    >>> robust_slope([(0, 0.0), (1, 1.0), (2, 2.0), (3, 50.0), (4, 4.0)])
    1.0
    """
    half = len(points) // 2
    slopes = sorted((y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2)
                    in zip(points, points[half:], strict=False) if x2 != x1)
    if not slopes:
        return 0.0
    middle = len(slopes) // 2
    return slopes[middle] if len(slopes) % 2 else (slopes[middle - 1] + slopes[middle]) / 2


def _mib(value: float) -> str:
    return f"{value / 1024 ** 2:.1f} MiB"


def _down(rule: AlertRule, seen: Observation) -> list[Finding]:
    out = []
    for container in seen.selected(rule):
        if container.state in ("running", "paused"):
            continue
        code = container.exit_code
        # A job that finished cleanly is not down; one that failed, or a container
        # named outright by the rule, is expected to run.
        if code == 0 and container.name not in rule.exact_names:
            continue
        if container.state == "created" and container.name not in rule.exact_names:
            continue
        how = f"exited with code {code}" if code is not None else f"is {container.state}"
        out.append(Finding(container.name, None if code is None else float(code),
                           f"{container.name} {how}"))
    present = {c.name for c in seen.containers}
    out.extend(Finding(name, None, f"{name} does not exist")
               for name in rule.exact_names if name not in present)
    return out


def _unhealthy(rule: AlertRule, seen: Observation) -> list[Finding]:
    return [Finding(c.name, None, f"{c.name} is unhealthy")
            for c in seen.selected(rule)
            if c.state == "running"
            and (c.health or seen.health.get(c.container_id, "")) == "unhealthy"]


def _restart_loop(rule: AlertRule, seen: Observation) -> list[Finding]:
    since = seen.now - rule.params["window"]
    dies: dict[str, int] = defaultdict(int)
    restarts: dict[str, int] = defaultdict(int)
    for event in seen.events:
        if event.time >= since and event.kind == "die":
            dies[event.container] += 1
        elif event.time >= since and event.kind == "restart":
            restarts[event.container] += 1
    out = []
    for container in seen.selected(rule):
        # An engine may send "die" and "restart" for one crash, or only one of them:
        # the larger count is the number of restarts, never their sum.
        count = max(dies[container.name], restarts[container.name])
        if count >= rule.params["restarts"]:
            out.append(Finding(container.name, float(count),
                               f"{container.name} restarted {count} times in "
                               f"{rule.params['window']:g} s"))
    return out


def _memory_growth(rule: AlertRule, seen: Observation) -> list[Finding]:
    window = rule.params["window"]
    points = seen.series(MEMORY_WORKING_SET_BYTES, seen.now - window)
    out = []
    for container in seen.selected(rule):
        if container.state != "running":
            continue  # a stopped container leaks nothing, whatever its last samples
        series = points.get(container.name, [])
        # Too few points, or points over too little of the window, say nothing of a
        # trend: a container that just started always grows at first.
        if (len(series) < rule.params["min_samples"]
                or series[-1][0] - series[0][0] < window / 2):
            continue
        rate = robust_slope(series)
        if rate >= rule.params["min_rate"]:
            out.append(Finding(container.name, rate,
                               f"{container.name}'s working set grows {_mib(rate * 3600)}"
                               f"/h (now {_mib(series[-1][1])})"))
    return out


def _cpu_saturated(rule: AlertRule, seen: Observation) -> list[Finding]:
    latest = {name: values[-1][1] for name, values
              in seen.series(CPU_CORES, seen.now - 3600).items()}
    out = []
    for container in seen.selected(rule):
        if container.name not in latest or container.state != "running":
            continue
        capacity = (rule.params["cores"] or seen.cpu_limits.get(container.name)
                    or seen.host_cores)
        used = latest[container.name]
        if used >= rule.params["fraction"] * capacity:
            out.append(Finding(container.name, used,
                               f"{container.name} uses {used:.2f} of {capacity:g} cores"))
    return out


def _disk_filling(rule: AlertRule, seen: Observation) -> list[Finding]:
    out: list[Finding] = []
    patterns: Sequence[str] | None = rule.params["volumes"]
    limit, fraction = rule.params["max_bytes"], rule.params["fraction"]
    for name, history in (seen.volumes or {}).items():
        if not history or (patterns is not None and not _glob_any(name, patterns)):
            continue
        usage = history[-1][1]
        subject = f"volume:{name}"
        full = usage.filesystem_fraction
        if limit is not None and usage.size_bytes >= limit:
            out.append(Finding(subject, usage.size_bytes,
                               f"volume {name} holds {_mib(usage.size_bytes)} "
                               f"(bound {_mib(limit)})"))
        elif fraction is not None and full is not None and full >= fraction:
            out.append(Finding(subject, full,
                               f"the filesystem of volume {name} is {full:.0%} full"))
        elif rule.params["time_to_full"] is not None:
            # Full: the bound if the rule sets one, else when the free space is gone.
            bound = limit if limit is not None else (
                None if usage.free_bytes is None else usage.size_bytes + usage.free_bytes)
            left = _time_to_full(history, seen.now - rule.params["window"], bound)
            if left is not None and left <= rule.params["time_to_full"]:
                out.append(Finding(subject, left,
                                   f"volume {name} is full in about {left / 60:.0f} min"))
    return out


def _time_to_full(history: Sequence[tuple[float, VolumeUsage]], since: float,
                  bound: float | None) -> float | None:
    """Seconds until the volume reaches ``bound`` at its growth rate (least squares over
    the window), None if it does not grow or there is no bound."""
    points = [(t, usage.size_bytes) for t, usage in history if t >= since]
    rate = slope(points)
    if bound is None or rate <= 0 or len(points) < 2:
        return None
    return max(0.0, (bound - points[-1][1]) / rate)


def _glob_any(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


_AGGREGATE: Final[dict[str, Callable[[Sequence[float]], float]]] = {
    "last": lambda values: values[-1], "mean": lambda values: sum(values) / len(values),
    "max": max, "min": min}


def _threshold(rule: AlertRule, seen: Observation) -> list[Finding]:
    params = rule.params
    points = seen.series(params["metric"], seen.now - params["window"])
    compare = OPERATORS[params["op"]]
    out = []
    for container in seen.selected(rule):
        series = points.get(container.name)
        if not series:
            continue
        value = _AGGREGATE[params["aggregate"]]([v for _, v in series])
        if compare(value, params["value"]):
            out.append(Finding(container.name, value,
                               f"{container.name}: {params['aggregate']} {params['metric']}"
                               f" = {value:g} {params['op']} {params['value']:g}"))
    return out


def _python(rule: AlertRule, seen: Observation) -> list[Finding]:
    # pandas only here: a rules file without python rules keeps the agent free of it.
    import pandas as pd

    since = seen.now - rule.params["window"]
    rows = [s for s in seen.samples if s.time >= since]
    frame = pd.DataFrame({
        "time": pd.to_datetime([s.time for s in rows], unit="s", utc=True),
        "environment": [s.environment for s in rows],
        "container": [s.container for s in rows],
        "metric": [s.metric for s in rows],
        "value": [s.value for s in rows]})
    assert rule.predicate is not None
    result: Any = rule.predicate(frame)
    values: Mapping[Any, Any] = (result if isinstance(result, Mapping)
                                 else dict.fromkeys(result if result is not None else ()))
    selected = {c.name for c in seen.selected(rule)}
    out = []
    for name, value in values.items():
        if str(name) not in selected:
            continue
        number = None if value is None or not math.isfinite(float(value)) else float(value)
        out.append(Finding(str(name), number, f"{name}: {rule.name} holds"))
    return out


#: The condition of each kind.
CONDITIONS: Final[dict[str, Callable[[AlertRule, Observation], list[Finding]]]] = {
    "down": _down, "unhealthy": _unhealthy, "restart_loop": _restart_loop,
    "memory_growth": _memory_growth, "cpu_saturated": _cpu_saturated,
    "disk_filling": _disk_filling, "threshold": _threshold, "python": _python,
}


def findings(rule: AlertRule, seen: Observation) -> list[Finding]:
    """The subjects for which ``rule``'s condition holds in ``seen``."""
    return CONDITIONS[rule.kind](rule, seen)
