"""Runbooks: parameterised notebooks run by papermill, with a history and schedules.

>>> from ghostpanel_kernel.runbooks import list_runbooks, run_runbook, RunHistory
>>> [book.name for book in list_runbooks()]                          # doctest: +SKIP
['bulk_redeploy', 'health_report', 'image_prune', 'volume_backup']
>>> result = run_runbook("health_report", {"environment": "prod"})    # doctest: +SKIP
>>> result.ok, result.record.html                                     # doctest: +SKIP
(True, '/home/ada/.local/share/ghostpanel/runbooks/runs/2026...-health_report-.../...html')

The modules: ``_catalog`` (where runbooks are, their parameters), ``_run`` (papermill,
the HTML export, history and audit), ``_history`` (runs and schedules, SQLite),
``_cron`` (cron expressions), ``_schedule`` (the scheduler the agent runs). See
``docs/runbooks.md``.
"""

from ._catalog import (
    RUNBOOKS_VARIABLE,
    Parameter,
    Runbook,
    RunbookNotFound,
    coerce_parameters,
    find_runbook,
    list_runbooks,
    runbook_folders,
)
from ._cron import CronError, CronSchedule, parse_cron
from ._history import STATUSES, RunHistory, RunRecord, ScheduleRecord, runbooks_home
from ._run import KERNEL_NAME, RunResult, arun_runbook, export_html, run_runbook
from ._schedule import RunbookScheduler

__all__ = [
    "KERNEL_NAME",
    "RUNBOOKS_VARIABLE",
    "STATUSES",
    "CronError",
    "CronSchedule",
    "Parameter",
    "RunHistory",
    "RunRecord",
    "RunResult",
    "Runbook",
    "RunbookNotFound",
    "RunbookScheduler",
    "ScheduleRecord",
    "arun_runbook",
    "coerce_parameters",
    "export_html",
    "find_runbook",
    "list_runbooks",
    "parse_cron",
    "run_runbook",
    "runbook_folders",
    "runbooks_home",
]
