"""The agent's runbook scheduler: runs each stored schedule when its cron expression is due.

:class:`RunbookScheduler` reads the schedules from the history store at every tick, so
``ghostpanel runbook schedule add`` and ``rm`` take effect on a running agent within a
tick. Each schedule's next due time is computed after the scheduler's start (a time
missed while the agent was down is not caught up: cron's own rule). A run that fails is
recorded as failed, and its schedule's next time is due as usual: failures never stop
the loop. One run of a schedule at a time: a run still going when its next time comes
makes that time skipped (and logged).

The clock and the sleep are injectable: tests drive a schedule every minute with a fake
clock in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ._cron import CronError, parse_cron
from ._history import RunHistory, ScheduleRecord

__all__ = ["Clock", "RunbookScheduler", "ScheduleRunner"]

_log = logging.getLogger("ghostpanel.runbooks.schedule")

Clock = Callable[[], datetime]
#: Runs one schedule's runbook; what it returns is ignored, what it raises is logged.
ScheduleRunner = Callable[[ScheduleRecord], Awaitable[object]]
#: The longest sleep between two looks at the store (new schedules appear this fast).
DEFAULT_TICK: Final = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RunbookScheduler:
    """Runs the schedules stored in ``history`` (see the module notes).

    Parameters
    ----------
    history
        Where the schedules are read (and, by the default runner, runs recorded).
    runner
        Runs one schedule; default :meth:`run_schedule` (papermill in a worker thread).
    clock
        Now, as an aware datetime; default UTC wall time.
    sleep
        Waits a number of seconds; default :func:`asyncio.sleep`.
    tick
        Seconds between two readings of the store at most.
    """

    def __init__(self, history: RunHistory, *, runner: ScheduleRunner | None = None,
                 clock: Clock = _utc_now,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 tick: float = DEFAULT_TICK) -> None:
        self.history = history
        self._runner = runner or self.run_schedule
        self._clock = clock
        self._sleep = sleep
        self._tick = tick
        self._due: dict[int, tuple[str, datetime]] = {}  # id -> (cron text, next time)
        self._running: dict[int, asyncio.Task[None]] = {}
        self.fired: list[tuple[int, datetime]] = []  # what was started, for status/tests

    async def run_schedule(self, schedule: ScheduleRecord) -> object:
        """The default runner: the schedule's runbook through papermill."""
        from ._run import arun_runbook

        home: Path = self.history.folder.parent
        return await arun_runbook(schedule.runbook, schedule.parameters,
                                  environment=schedule.environment,
                                  trigger=f"schedule:{schedule.id}", home=home)

    def _refresh(self, now: datetime) -> list[ScheduleRecord]:
        schedules = self.history.schedules()
        current = {schedule.id for schedule in schedules}
        for gone in set(self._due) - current:
            del self._due[gone]
        for schedule in schedules:
            known = self._due.get(schedule.id)
            if known is not None and known[0] == schedule.cron:
                continue
            try:
                self._due[schedule.id] = (schedule.cron,
                                          parse_cron(schedule.cron).next_after(now))
            except CronError as error:
                _log.error("schedule %d (%s) is not valid and never runs: %s",
                           schedule.id, schedule.runbook, error)
                self._due.pop(schedule.id, None)
        return schedules

    async def step(self) -> float:
        """Start what is due now; the seconds to sleep until the next look."""
        now = self._clock()
        try:
            schedules = {schedule.id: schedule for schedule in self._refresh(now)}
        except Exception as error:  # a store that cannot be read now may be later
            _log.error("runbook schedules not readable: %s", error)
            return self._tick
        for schedule_id, (cron, due) in list(self._due.items()):
            if due > now:
                continue
            self._due[schedule_id] = (cron, parse_cron(cron).next_after(now))
            schedule = schedules[schedule_id]
            if schedule_id in self._running:
                _log.warning("schedule %d (%s): the previous run is still going; the run "
                             "due at %s is skipped", schedule_id, schedule.runbook, due)
                continue
            self.fired.append((schedule_id, due))
            task = asyncio.create_task(self._guarded(schedule),
                                       name=f"ghostpanel-runbook-{schedule_id}")
            self._running[schedule_id] = task
            task.add_done_callback(self._forget)
        if not self._due:
            return self._tick
        soonest = min(due for _, due in self._due.values())
        return max(0.0, min(self._tick, (soonest - now).total_seconds()))

    def _forget(self, task: asyncio.Task[None]) -> None:
        for key, running in list(self._running.items()):
            if running is task:
                del self._running[key]

    async def _guarded(self, schedule: ScheduleRecord) -> None:
        _log.info("schedule %d: running %s", schedule.id, schedule.runbook)
        try:
            result = await self._runner(schedule)
        except Exception as error:
            _log.error("schedule %d (%s) failed to run: %s", schedule.id, schedule.runbook,
                       error)
            return
        if getattr(result, "ok", True) is False:
            _log.error("schedule %d (%s) run failed: %s", schedule.id, schedule.runbook,
                       (getattr(result, "error", "") or "").splitlines()[:1])

    async def run_forever(self) -> None:
        """Step and sleep until cancelled; runs under way are cancelled with it."""
        try:
            while True:
                await self._sleep(await self.step())
        finally:
            for task in list(self._running.values()):
                task.cancel()
