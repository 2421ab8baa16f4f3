"""The agent's side of runbooks: ``ghostpanel agent --runbooks`` runs the schedules.

One background task, started with the agent and cancelled when it stops. A run under way
executes in a worker thread, which cancelling cannot interrupt: the agent's exit waits for
it to end (papermill then shuts its kernel down), and it is recorded as usual. Imported
only by an agent started with ``--runbooks``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ._history import RunHistory
from ._schedule import RunbookScheduler

__all__ = ["start_runbook_schedules"]

_log = logging.getLogger("ghostpanel.agent.runbooks")


def _ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("the runbook scheduler stopped: %s", task.exception())


def start_runbook_schedules(home: Path) -> asyncio.Task[None]:
    """Start the scheduler of the schedules stored under ``home``; the task."""
    history = RunHistory(home)
    count = len(history.schedules())
    _log.info("runbook schedules of %s: %d stored", history.path, count)
    task = asyncio.create_task(RunbookScheduler(history).run_forever(),
                               name="ghostpanel-runbook-schedules")
    task.add_done_callback(_ended)
    return task
