"""Run a runbook: papermill executes a copy of the notebook with the parameters given.

Each run gets a folder, ``<home>/runbooks/runs/<run id>/``, holding the executed
notebook (outputs and the error, cell by cell, as papermill writes them after every
cell) and its HTML export (nbconvert's ``lab`` template, the page linked from the
history and the audit log). The kernel is ``python3`` of the Python running GhostPanel
(jupyter_client resolves that name to ``sys.executable``), so the notebook imports the
same ``ghostpanel_kernel``; it runs with the run's folder as its working directory and
``GHOSTPANEL_HOME`` set to the home the run is recorded in.

A cell that raises fails the run: the result's ``status`` is ``"failed"`` and ``error``
holds the exception and its traceback (ANSI colours removed). The run, failed or not,
is written to the history and to the audit log (``action="runbook run"``; its
``detail`` names the executed notebook and the HTML page).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ._catalog import Runbook, find_runbook
from ._history import RunHistory, RunRecord

__all__ = ["KERNEL_NAME", "ProgressCallback", "RunResult", "arun_runbook", "run_runbook"]

_log = logging.getLogger("ghostpanel.runbooks")

#: The kernel papermill starts: the native one, i.e. this very Python.
KERNEL_NAME: Final = "python3"
#: Called as ``progress(cells_done, cells_total)`` after each code cell.
ProgressCallback = Callable[[int, int], None]
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_home_lock: Final = threading.Lock()


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its history record, and the error's text when it failed."""

    record: RunRecord

    @property
    def ok(self) -> bool:
        """The run succeeded."""
        return self.record.status == "succeeded"

    @property
    def error(self) -> str | None:
        """The failed cell's exception and traceback, or why the run could not start."""
        return self.record.error


def _run_id(runbook: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{runbook}-{secrets.token_hex(3)}"


def _failure_text(error: BaseException) -> str:
    """The error to show and keep: papermill's has the cell's exception and traceback."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        lines = [f"cell {error.exec_count}: {error.ename}: {error.evalue}",
                 *(_ANSI.sub("", line) for line in error.traceback)]
        return "\n".join(lines)
    return f"{type(error).__name__}: {error}"


def export_html(notebook: Path) -> Path:
    """Write ``notebook``'s HTML page next to it (same name, ``.html``); its path."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")  # type: ignore[no-untyped-call]
    body, _ = exporter.from_notebook_node(
        nbformat.read(notebook, as_version=4))  # type: ignore[no-untyped-call]
    page = notebook.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page


def _audit(record: RunRecord, home: Path) -> int | None:
    """Append the run to the audit log of ``home``'s store (``GHOSTPANEL_DATABASE_URL``
    when set); its ``seq``, or None when the store failed (the run itself stands: the
    history has it)."""
    try:
        from ..gateway._audit import AuditLog
        from ..store import open_database

        engine = open_database(os.environ.get("GHOSTPANEL_DATABASE_URL")
                               or f"sqlite:///{home / 'ghostpanel.db'}")
        try:
            return AuditLog(engine).record(
                user=getpass.getuser(), environment=record.environment,
                action="runbook run", target=record.runbook,
                result="allowed" if record.status == "succeeded" else "failed",
                status=None, request_id=record.id,
                detail={"status": record.status, "trigger": record.trigger,
                        "duration_s": None if record.duration is None
                        else round(record.duration, 3),
                        "parameters": record.parameters, "notebook": record.notebook,
                        "html": record.html,
                        "error": (record.error or "").splitlines()[0] if record.error
                        else None})
        finally:
            engine.dispose()
    except Exception as error:  # the store's own errors, or a home that cannot be opened
        _log.warning("run %s not written to the audit log: %s", record.id, error)
        return None


def _code_cells(runbook: Runbook) -> int:
    cells = json.loads(runbook.path.read_text(encoding="utf-8")).get("cells", [])
    return sum(cell.get("cell_type") == "code" for cell in cells)


def run_runbook(runbook: str | Path | Runbook, parameters: Mapping[str, Any] | None = None,
                *, environment: str | None = None, trigger: str = "manual",
                home: Path | None = None, progress: ProgressCallback | None = None,
                timeout: float | None = None, audit: bool = True) -> RunResult:
    """Execute ``runbook`` with ``parameters``; blocks until it ends (see the module notes).

    Parameters
    ----------
    runbook
        A runbook's name (:func:`list_runbooks`), a notebook's path, or a
        :class:`Runbook`.
    parameters
        Values for its ``parameters`` cell; names it does not declare are refused.
    environment
        The environment to work on, given to the notebook as its ``environment``
        parameter (when it declares one) and recorded with the run.
    trigger
        Why it ran: ``"manual"``, ``"schedule:<id>"``...
    home
        GhostPanel's home for the run's files, history and audit; default the current.
    progress
        Called after each code cell as ``progress(done, total)``.
    timeout
        Seconds one cell may run; None: no limit.
    audit
        Write the audit log row (tests of the history alone turn it off).

    Returns
    -------
    RunResult
        Also for a failed run: failures are results, not exceptions.

    Raises
    ------
    RunbookNotFound
        No such runbook.
    ValueError
        A parameter the runbook does not declare.
    """
    import papermill

    book = runbook if isinstance(runbook, Runbook) else find_runbook(runbook)
    values = dict(parameters or {})
    declared = {parameter.name for parameter in book.parameters()}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ValueError(f"runbook {book.name!r} has no parameter "
                         f"{', '.join(map(repr, unknown))} (it takes: "
                         f"{', '.join(sorted(declared)) or 'none'})")
    if environment is not None and "environment" in declared:
        values["environment"] = environment
    history = RunHistory(home)
    run_id = _run_id(book.name)
    folder = history.folder / "runs" / run_id
    folder.mkdir(parents=True)
    output = folder / f"{book.name}.ipynb"
    started = time.time()
    history.start(RunRecord(run_id, book.name, values, environment, trigger, "running",
                            started, None, None, str(output), None))
    total = _code_cells(book) + (1 if values else 0)  # papermill adds a cell for values
    done = 0

    def cell_done(**_: Any) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, total), total)

    error_text: str | None = None
    run_home = str(history.folder.parent)
    # The kernel inherits this process's environment, so the notebook opens the same
    # registry and store as the run is recorded in. Changing the environment is
    # process-wide: runs for another home than the current one take turns.
    with _home_lock if os.environ.get("GHOSTPANEL_HOME") != run_home else nullcontext():
        saved_home = os.environ.get("GHOSTPANEL_HOME")
        os.environ["GHOSTPANEL_HOME"] = run_home
        try:
            papermill.execute_notebook(
                str(book.path), str(output), parameters=values, kernel_name=KERNEL_NAME,
                language="python", progress_bar=False, cwd=str(folder),
                execution_timeout=timeout,
                on_cell_executed=cell_done)
        except Exception as error:  # a failed cell, a dead kernel, a bad notebook
            error_text = _failure_text(error)
        finally:
            if saved_home is None:
                os.environ.pop("GHOSTPANEL_HOME", None)
            else:
                os.environ["GHOSTPANEL_HOME"] = saved_home
    html: str | None = None
    if output.exists():
        try:
            html = str(export_html(output))
        except Exception as error:  # the run's outcome stands without its page
            _log.warning("HTML export of %s failed: %s", output, error)
    status = "failed" if error_text is not None else "succeeded"
    history.finish(run_id, status=status, error=error_text, html=html)
    record = history.get(run_id)
    if audit:
        seq = _audit(record, history.folder.parent)
        if seq is not None:
            history.link_audit(run_id, seq)
            record = history.get(run_id)
    return RunResult(record)


async def arun_runbook(runbook: str | Path | Runbook,
                       parameters: Mapping[str, Any] | None = None,
                       **options: Any) -> RunResult:
    """:func:`run_runbook` in a worker thread, for event loops (the agent, widgets).

    ``progress`` is then called from that thread.
    """
    return await asyncio.to_thread(_run_in_worker, runbook, parameters, options)


def _run_in_worker(runbook: str | Path | Runbook, parameters: Mapping[str, Any] | None,
                   options: dict[str, Any]) -> RunResult:
    try:
        return run_runbook(runbook, parameters, **options)
    finally:
        # nbclient runs its coroutines on an event loop that jupyter_core makes for the
        # thread (and sets as its loop) but never closes: the executor's thread would
        # keep it, unclosed, until it is collected (a ResourceWarning then).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                loop = asyncio.get_event_loop_policy().get_event_loop()
            except RuntimeError:  # none was set in this thread
                loop = None
        if loop is not None and not loop.is_running():
            loop.close()
            asyncio.set_event_loop(None)
