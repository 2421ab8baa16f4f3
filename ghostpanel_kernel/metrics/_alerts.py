"""The alert evaluator: :class:`AlertEvaluator` looks at an environment and its stored
metrics, moves the alerts' state on, and hands notifications to the deliveries.

One round::

    containers (engine listing) + samples and events (MetricsStore, the rules' longest
    window) + volume sizes (system df, only when a disk rule exists)
        -> Observation -> each rule's condition (_alert_builtin) -> findings
        -> AlertState.apply (pending / firing / resolved, silences, acks)
        -> notifications -> webhook, audit log (in a task) and the feed's waiters

The agent runs it after its sampler (``AgentSettings.alert_rules``); a notebook can
run rounds itself with :meth:`AlertEvaluator.evaluate`. No pandas unless a ``python``
rule needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import GhostPanelError
from ._alert_builtin import ContainerInfo, Finding, Observation, VolumeUsage, findings
from ._alert_delivery import AuditDelivery, Delivery, WebhookDelivery
from ._alert_rules import RuleSet
from ._alert_state import AlertState, Notification
from ._names import CPU_CORES, MEMORY_WORKING_SET_BYTES, ContainerEvent, Sample

if TYPE_CHECKING:
    from ..engine import Environment
    from ._store import MetricsStore

__all__ = ["AlertEvaluator", "default_deliveries"]

_log = logging.getLogger("ghostpanel.alerts")

#: How far back a health event still tells a container's health (Podman's listing does
#: not carry it): a day, beyond any sane healthcheck interval.
_HEALTH_MEMORY = 86400.0


def default_deliveries(rules: RuleSet, *, database_url: str | None = None
                       ) -> list[Delivery]:
    """The audit log, and the rules' webhook if they name one."""
    out: list[Delivery] = [AuditDelivery(database_url)]
    if rules.webhook:
        out.append(WebhookDelivery(rules.webhook))
    return out


def _cpu_limit(attrs: dict[str, Any]) -> float | None:
    """Cores a container may use from its inspect (``--cpus`` or quota/period)."""
    host = attrs.get("HostConfig") or {}
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
    return quota / period if quota > 0 and period > 0 else None


def _metrics_read(rules: RuleSet) -> list[str] | None:
    """The metrics the rules read (a round fetches only those); None: all of them, for
    python rules, whose predicates may read any."""
    wanted: set[str] = set()
    for rule in rules.rules:
        if rule.kind == "python":
            return None
        wanted.update({"memory_growth": [MEMORY_WORKING_SET_BYTES],
                       "cpu_saturated": [CPU_CORES],
                       "threshold": [str(rule.params.get("metric"))]}.get(rule.kind, []))
    return sorted(wanted)


class AlertEvaluator:
    """Evaluates ``rules`` over ``env`` and the samples in ``store``.

    Parameters
    ----------
    env
        The environment whose containers are watched.
    store
        Where the sampler writes (read with ``rows``/``event_rows``: no pandas).
    rules
        The rules (:func:`~._alert_rules.load_rules`).
    state
        The alerts' state; by default ``alerts.sqlite3`` next to the store's file.
    deliveries
        Where notifications go; by default :func:`default_deliveries`.
    environment
        The environment name samples are stored under; by default ``env.name``.
    """

    def __init__(self, env: Environment, store: MetricsStore, rules: RuleSet, *,
                 state: AlertState | None = None,
                 deliveries: Sequence[Delivery] | None = None,
                 environment: str | None = None) -> None:
        self.env = env
        self.store = store
        self.rules = rules
        self.environment = environment or env.name
        self.state = state if state is not None else AlertState(
            store.file.parent / "alerts.sqlite3")
        self.deliveries = list(deliveries if deliveries is not None
                               else default_deliveries(rules))
        self._volumes: dict[str, deque[tuple[float, VolumeUsage]]] = {}
        self._cpu_limits: dict[str, float | None] = {}  # by container id: limits stay
        self._metrics = _metrics_read(rules)
        self._changed = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- observing ------------------------------------------------------------------------

    async def observe(self, now: float | None = None) -> Observation:
        """What one round looks at (see the module notes)."""
        moment = time.time() if now is None else now
        listed = await self.env.containers.list(all=True)
        containers = [ContainerInfo(c.name, c.id, c.image, c.state, c.health, c.labels,
                                    c.status) for c in listed]
        kinds = {rule.kind for rule in self.rules.rules}
        since = moment - max(self.rules.longest_window, 3600.0 if "cpu_saturated" in kinds
                             else 0.0)
        rows, events, health = await asyncio.to_thread(self._stored, since, moment)
        seen = Observation(now=moment, environment=self.environment,
                           containers=containers, samples=rows, events=events,
                           health=health, host_cores=float(os.cpu_count() or 1))
        if any(r.kind == "cpu_saturated" and not r.params["cores"] for r in self.rules.rules):
            seen.cpu_limits = await self._limits(listed)  # only rules without `cores`
        if "disk_filling" in kinds:
            seen.volumes = await self._volume_history(moment)
        return seen

    def _stored(self, since: float, now: float
                ) -> tuple[list[Sample], list[ContainerEvent], dict[str, str]]:
        """Samples and events of the window, and each container's last health, from the
        store (in a worker thread: SQLite reads block)."""
        rows = [Sample(when, environment, container, "", "", metric, value)
                for when, environment, container, metric, value in self.store.rows(
                    environments=self.environment, metrics=self._metrics, since=since,
                    until=now + 1)
                if value is not None]
        events = self.store.event_rows(environments=self.environment, since=since)
        health: dict[str, str] = {}
        for event in self.store.event_rows(environments=self.environment, kinds="health",
                                           since=now - _HEALTH_MEMORY):
            if event.health:  # by id: a new container of the same name starts afresh
                health[event.container_id] = event.health
        return rows, events, health

    async def _limits(self, listed: Sequence[Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for container in listed:
            if container.state != "running":
                continue
            if container.id not in self._cpu_limits:
                try:
                    attrs = await self.env.client.get_json(f"/containers/{container.id}/json")
                except GhostPanelError:
                    continue
                self._cpu_limits[container.id] = _cpu_limit(attrs)
            limit = self._cpu_limits[container.id]
            if limit:
                out[container.name] = limit
        return out

    async def _volume_history(self, now: float) -> dict[str, list[tuple[float, VolumeUsage]]]:
        df = await self.env.system.df()
        keep = max((float(r.params["window"]) for r in self.rules.rules
                    if r.kind == "disk_filling"), default=3600.0)
        seen: set[str] = set()
        for volume in df.get("Volumes") or []:
            name = str(volume.get("Name", ""))
            size = float((volume.get("UsageData") or {}).get("Size") or 0)
            capacity = free = None
            with contextlib.suppress(OSError):
                # The agent runs on the engine's host: the volume's filesystem is here
                # (a rootless engine's volumes are the user's own files).
                stat = os.statvfs(str(volume.get("Mountpoint") or ""))
                capacity = float(stat.f_blocks * stat.f_frsize)
                free = float(stat.f_bavail * stat.f_frsize)
            history = self._volumes.setdefault(name, deque())
            history.append((now, VolumeUsage(name, size, capacity, free)))
            while history and history[0][0] < now - keep:
                history.popleft()
            seen.add(name)
        for gone in set(self._volumes) - seen:
            del self._volumes[gone]
        return {name: list(history) for name, history in self._volumes.items()}

    # -- evaluating -----------------------------------------------------------------------

    def judge(self, seen: Observation) -> dict[str, list[Finding]]:
        """Each rule's findings in ``seen``; a rule that fails is logged and skipped
        (its alerts keep their state rather than resolve)."""
        out: dict[str, list[Finding]] = {}
        for rule in self.rules.rules:
            try:
                out[rule.name] = findings(rule, seen)
            except Exception as error:  # a python predicate may fail in any way
                _log.warning("alert rule %r failed: %s: %s", rule.name,
                             type(error).__name__, error)
        return out

    async def evaluate(self, now: float | None = None) -> list[Notification]:
        """One round: observe, judge, move the state on, deliver (in the background).

        Returns
        -------
        list of Notification
            What this round notified.
        """
        seen = await self.observe(now)
        found = self.judge(seen)
        failed = {rule.name for rule in self.rules.rules} - set(found)
        # A failed rule's alerts must not resolve because it found nothing: hand the
        # state machine their current subjects as still holding.
        for name in failed:
            found[name] = [Finding(alert["container"], alert["value"], alert["message"])
                           for alert in self.state.alerts(states=("pending", "firing"))
                           if alert["rule"] == name
                           and alert["environment"] == self.environment]
        before = self.state.seq
        notes = self.state.apply(self.rules.rules, self.environment, found, seen.now)
        if self.state.seq != before:
            self.changed()
        if notes and self.deliveries:
            task = asyncio.create_task(self._deliver(notes))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return notes

    async def _deliver(self, notes: Sequence[Notification]) -> None:
        await asyncio.gather(*(delivery.deliver(self.environment, notes)
                               for delivery in self.deliveries))

    # -- the feed -------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake the feed's waiters (an alert, an ack or a silence changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, after: int, timeout: float) -> None:
        """Return once :attr:`AlertState.seq` passes ``after``, or after ``timeout``."""
        if self.state.seq > after:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    # -- running --------------------------------------------------------------------------

    async def run(self, interval: float) -> None:
        """Evaluate every ``interval`` seconds until cancelled; a failed round is logged."""
        while True:
            started = time.monotonic()
            try:
                await self.evaluate()
            except (GhostPanelError, OSError) as error:
                _log.warning("alert evaluation failed: %s", error)
            except Exception:  # a bug must not end alerting for the agent's lifetime
                _log.exception("alert evaluation failed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    def start(self, interval: float) -> None:
        """Run :meth:`run` in a task (see :meth:`aclose`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(interval))

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout`` seconds) for the deliveries under way."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)

    async def aclose(self, *, grace: float = 5.0) -> None:
        """Stop running, give deliveries under way ``grace`` seconds, close the state."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace)
        for pending in set(self._sending):
            pending.cancel()
        self.state.close()
