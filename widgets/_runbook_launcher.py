"""RunbookLauncher: pick a runbook, fill in its parameters, run it, read its history.

The form is made from the runbook's ``parameters`` cell (papermill's inspection): a
checkbox for a ``bool``, a text field for anything else, each with its help and, when
its value is not of the parameter's type, the reason next to it. Run executes the
notebook in a worker thread (:func:`ghostpanel_kernel.runbooks.arun_runbook`; the kernel's
loop stays free) with a progress bar over its cells. The history grid lists the runs,
newest first, with status and duration; picking a run shows its HTML export inline
(an ``iframe`` whose ``srcdoc`` is the page: no file needs to be served, in JupyterLab
or Voila) and offers it as a download.

>>> from ghostpanel_widgets import RunbookLauncher
>>> RunbookLauncher(runbook="health_report")                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets

from ghostpanel_kernel.runbooks import (
    Parameter,
    Runbook,
    RunHistory,
    RunRecord,
    RunResult,
    arun_runbook,
    list_runbooks,
)

from ._base import TaskBox
from ._live_table import running_loop
from ._status import StatusLine, describe_error

__all__ = ["RunbookLauncher"]

_STATUS_COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}
#: The tallest HTML export shown inline, in pixels (it scrolls inside).
_OUTPUT_HEIGHT = 480


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _field_text(parameter: Parameter) -> str:
    value = parameter.default_value
    return value if isinstance(value, str) else parameter.default


class _Field:
    """One parameter's input and the error shown beside it."""

    def __init__(self, parameter: Parameter) -> None:
        self.parameter = parameter
        kind = parameter.type_name if parameter.type_name != "None" else \
            type(parameter.default_value).__name__
        self.input: ipywidgets.Widget
        if kind == "bool":
            self.input = ipywidgets.Checkbox(value=bool(parameter.default_value),
                                             description=parameter.name, indent=True)
        else:
            self.input = ipywidgets.Text(value=_field_text(parameter),
                                         description=parameter.name)
        self.input.add_class(f"gp-runbook-param-{parameter.name}")
        self.help = ipywidgets.HTML(f'<span style="color: #666">'
                                    f'{html.escape(parameter.help)}</span>')
        self.error = ipywidgets.HTML("")
        self.error.add_class("gp-field-error")
        self.row = ipywidgets.HBox([self.input, self.help, self.error])

    def value(self) -> Any:
        """The parameter's value; ValueError (shown beside the field) when invalid."""
        self.error.value = ""
        if isinstance(self.input, ipywidgets.Checkbox):
            return bool(self.input.value)
        try:
            return self.parameter.coerce(str(self.input.value))
        except ValueError as error:
            self.error.value = (f'<span style="color: #c62828">'
                                f'{html.escape(str(error))}</span>')
            raise


class RunbookLauncher(TaskBox):
    """Runbooks as a form, a Run button with progress, and the runs' history.

    Parameters
    ----------
    runbook
        The runbook picked first (default: the first by name).
    home
        GhostPanel's home the runs are recorded in (default: the current one).
    history_limit
        Runs shown in the history grid, newest first.

    Attributes
    ----------
    picker : ipywidgets.Dropdown
        The runbooks.
    fields : dict[str, _Field]
        The current runbook's parameter inputs, by name (``.input``, ``.error``).
    run_button : ipywidgets.Button
    progress : ipywidgets.IntProgress
        Cells executed of the run under way.
    history : ipywidgets.HTML
        The grid of runs (a table, class ``gp-runbook-history``).
    run_picker : ipywidgets.Dropdown
        Picks the run whose HTML export :attr:`output` shows.
    output : ipywidgets.HTML
        The picked run's page, and its download link.
    status : StatusLine
        What happened last; every error goes here.
    """

    def __init__(self, *, runbook: str | None = None, home: Path | None = None,
                 history_limit: int = 20, **kwargs: Any) -> None:
        self._tasks = set()
        self._closed = False
        self._home = home
        self._history = RunHistory(home)
        self._limit = history_limit
        self._runbooks: dict[str, Runbook] = {}
        self.fields: dict[str, _Field] = {}
        self.status = StatusLine()
        self.picker = ipywidgets.Dropdown(description="Runbook")
        self.description = ipywidgets.HTML()
        self.form = ipywidgets.VBox()
        self.run_button = ipywidgets.Button(description="Run", icon="play",
                                            button_style="primary")
        self.run_button.add_class("gp-runbook-run")
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="Cells")
        self.history = ipywidgets.HTML()
        self.history.add_class("gp-runbook-history")
        self.run_picker = ipywidgets.Dropdown(description="Output of")
        self.output = ipywidgets.HTML()
        self.output.add_class("gp-runbook-output")
        super().__init__([
            ipywidgets.HBox([self.picker, self.run_button, self.progress]),
            self.description, self.form, self.status,
            ipywidgets.HTML("<b>History</b>"), self.history, self.run_picker, self.output,
        ], **kwargs)
        self.add_class("gp-runbook-launcher")
        self.run_button.on_click(lambda _: self._start_run())
        self.picker.observe(lambda _: self._show_runbook(), names="value")
        self.run_picker.observe(lambda _: self.show_output(), names="value")
        with self.status.reporting("Reading the runbooks"):
            self._runbooks = {book.name: book for book in list_runbooks()}
            self.picker.options = [(f"{book.title} ({book.name})", book.name)
                                   for book in self._runbooks.values()]
            if runbook is not None and runbook not in self._runbooks:
                self.status.error(f"no runbook named {runbook!r}")
            elif runbook is not None:
                self.picker.value = runbook
        if self.picker.value is not None and not self.fields:
            self._show_runbook()
        self.refresh_history()

    # -- the form ------------------------------------------------------------------------

    def _show_runbook(self) -> None:
        book = self._runbooks.get(self.picker.value or "")
        for field in self.fields.values():
            field.row.close()
        self.fields = {}
        if book is None:
            self.form.children = ()
            return
        self.description.value = f"<i>{html.escape(book.description)}</i>"
        with self.status.reporting(f"Reading the parameters of {book.name}"):
            self.fields = {parameter.name: _Field(parameter)
                           for parameter in book.parameters()}
        self.form.children = tuple(field.row for field in self.fields.values())

    def values(self) -> dict[str, Any] | None:
        """The form's values as the parameters' types; None (errors beside the fields)
        when one is not valid."""
        values: dict[str, Any] = {}
        bad = []
        for name, field in self.fields.items():
            try:
                values[name] = field.value()
            except ValueError:
                bad.append(name)
        if bad:
            self.status.error(f"fix {', '.join(bad)} first")
            return None
        return values

    # -- running -------------------------------------------------------------------------

    def _start_run(self) -> None:
        if running_loop("Run", self.status) is not None:
            self._spawn(self.run(), name="ghostpanel-runbook-run")

    async def run(self) -> RunResult | None:
        """Run the picked runbook with the form's values (what Run does); the result,
        or None when the form is invalid or the run could not start."""
        name = self.picker.value
        values = self.values()
        if name is None or values is None:
            return None
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:  # called from the worker thread
            loop.call_soon_threadsafe(self._set_progress, done, total)

        self.run_button.disabled = True
        self.progress.value = 0
        self.status.info(f"Running {name}…")
        try:
            result = await arun_runbook(name, values, home=self._home, progress=progress)
        except Exception as error:  # a parameter refused, the history not writable...
            self.status.error(f"Running {name} failed: {describe_error(error)}")
            return None
        finally:
            self.run_button.disabled = False
        record = result.record
        duration = f"{record.duration:.1f} s" if record.duration is not None else "-"
        if result.ok:
            self.status.success(f"{name} succeeded in {duration} (run {record.id})")
        else:
            self.status.error(f"{name} failed after {duration}: {result.error}")
        self.refresh_history(select=record.id)
        return result

    def _set_progress(self, done: int, total: int) -> None:
        if not self._closed:
            self.progress.max = max(total, 1)
            self.progress.value = done

    # -- the history ---------------------------------------------------------------------

    def refresh_history(self, select: str | None = None) -> list[RunRecord]:
        """Read the runs again into the grid; they, newest first."""
        runs: list[RunRecord] = []
        with self.status.reporting("Reading the run history"):
            runs = self._history.runs(limit=self._limit)
        rows = []
        for run in runs:
            colour = _STATUS_COLOURS.get(run.status, "inherit")
            duration = "-" if run.duration is None else f"{run.duration:.1f} s"
            error = html.escape((run.error or "").splitlines()[0]) if run.error else ""
            page = html.escape(Path(run.html).name) if run.html else "-"
            rows.append(
                f'<tr data-run="{html.escape(run.id)}"><td>{html.escape(run.runbook)}</td>'
                f'<td class="gp-run-status" style="color: {colour}">{run.status}</td>'
                f"<td>{_when(run.started)}</td><td>{duration}</td>"
                f"<td>{html.escape(run.trigger)}</td><td>{page}</td><td>{error}</td></tr>")
        self.history.value = (
            '<table class="gp-runbook-runs" style="border-collapse: collapse">'
            "<tr><th>Runbook</th><th>Status</th><th>Started</th><th>Duration</th>"
            "<th>Trigger</th><th>Output</th><th>Error</th></tr>" + "".join(rows)
            + "</table>" if runs else "<i>No runs yet.</i>")
        options = [(f"{run.runbook} {_when(run.started)} ({run.status})", run.id)
                   for run in runs if run.html]
        values = [value for _, value in options]
        keep = select if select in values else self.run_picker.value
        self.run_picker.options = options
        # The run asked for, else the one shown before, else the newest: shown below.
        self.run_picker.value = keep if keep in values else (values[0] if values else None)
        self.show_output()
        return runs

    def show_output(self) -> None:
        """Show the picked run's HTML export inline, with a download link."""
        run_id = self.run_picker.value
        if not run_id:
            self.output.value = ""
            return
        with self.status.reporting("Showing the run's output"):
            run = self._history.get(run_id)
            if run.html is None:
                self.output.value = "<i>This run has no HTML export.</i>"
                return
            page = Path(run.html).read_bytes()
            encoded = base64.b64encode(page).decode("ascii")
            self.output.value = (
                f'<a download="{html.escape(Path(run.html).name)}" '
                f'href="data:text/html;base64,{encoded}">Download {html.escape(run.id)}.html'
                f"</a> · executed notebook: <code>{html.escape(run.notebook)}</code><br>"
                f'<iframe class="gp-runbook-page" style="width: 100%; '
                f'height: {_OUTPUT_HEIGHT}px; border: 1px solid #ccc" '
                f'srcdoc="{html.escape(page.decode("utf-8", "replace"), quote=True)}">'
                f"</iframe>")

    def _release(self) -> None:
        for field in self.fields.values():
            field.row.close()
