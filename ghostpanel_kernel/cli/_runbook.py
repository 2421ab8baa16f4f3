"""``ghostpanel runbook``: list, run and schedule runbooks; read their history.

Runbooks are notebooks (``runbooks/`` and ``$GHOSTPANEL_RUNBOOKS``, see
``docs/runbooks.md``) run by papermill. ``run`` exits 0 when every cell ran, 1 when one
failed (the exception and its traceback are printed on stderr) and 2 for a bad
option, an unknown runbook or parameter.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from .._labels import split_key_value
from ._app import CommandGroup, json_option
from ._output import CommandError, echo_json, render_table

if TYPE_CHECKING:
    from ..runbooks import Runbook

__all__ = ["runbook"]


def _parse_pairs(ctx: click.Context, param: click.Parameter,
                 value: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in value:
        try:
            key, text = split_key_value(item, what="parameter")
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        pairs[key] = text
    return pairs


_PARAMETER = click.option(
    "-p", "--parameter", "pairs", multiple=True, metavar="NAME=VALUE", callback=_parse_pairs,
    help="A value for the runbook's parameters cell; repeatable (see `runbook ls`).")
_ENV = click.option("--env", "environment", metavar="NAME",
                    help="The environment the runbook works on (its `environment` "
                         "parameter). Default: the runbook's own default.")


def _find(name: str) -> Runbook:
    from ..runbooks import RunbookNotFound, find_runbook

    try:
        return find_runbook(name)
    except RunbookNotFound as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None


def _values(book: Runbook, pairs: dict[str, str]) -> dict[str, Any]:
    from ..runbooks import coerce_parameters

    try:
        return coerce_parameters(book, pairs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="-p") from None


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


@click.group(cls=CommandGroup)
def runbook() -> None:
    """Runbooks: parameterised notebooks run by papermill, with history and schedules.

    See docs/runbooks.md.
    """


@runbook.command("ls")
@json_option
def list_command(as_json: bool) -> None:
    """List the runbooks and their parameters."""
    from ..runbooks import list_runbooks

    books = list_runbooks()
    rows: list[dict[str, Any]] = []
    for book in books:
        parameters = book.parameters()
        rows.append({"name": book.name, "title": book.title, "path": str(book.path),
                     "description": book.description,
                     "parameters": [{"name": p.name, "type": p.type_name,
                                     "default": p.default, "help": p.help}
                                    for p in parameters]})
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(
        ["NAME", "TITLE", "PARAMETERS"],
        [[row["name"], row["title"],
          " ".join(f"{p['name']}={p['default']}" for p in row["parameters"])]
         for row in rows]))


@runbook.command("run")
@click.argument("name")
@_PARAMETER
@_ENV
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Fail the run when one cell takes longer.")
@json_option
def run_command(name: str, pairs: dict[str, str], environment: str | None,
                timeout: float | None, as_json: bool) -> None:
    """Run the runbook NAME (or a notebook's path) with -p NAME=VALUE parameters.

    Progress goes to stderr; the executed notebook and its HTML page are kept and
    printed. A failed cell fails the run (exit 1) with its traceback.
    """
    from ..runbooks import run_runbook

    book = _find(name)
    values = _values(book, pairs)

    def progress(done: int, total: int) -> None:
        click.echo(f"{book.name}: cell {done}/{total}", err=True)

    started = time.monotonic()
    result = run_runbook(book, values, environment=environment, progress=progress,
                         timeout=timeout)
    record = result.record
    if as_json:
        echo_json(record.as_dict())
    else:
        click.echo(f"run {record.id}: {record.status} in {time.monotonic() - started:.1f}s")
        click.echo(f"notebook: {record.notebook}")
        if record.html is not None:
            click.echo(f"html: {record.html}")
    if not result.ok:
        # The whole traceback first (CommandError's message is one line).
        click.echo(result.error, err=True)
        first = (result.error or "").splitlines()[:1]
        raise CommandError(f"runbook {book.name} failed: {first[0] if first else 'no reason'}"
                           f" (see {record.html or record.notebook})")


@runbook.command("history")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Show only the newest N runs (0: all).")
@json_option
def history_command(name: str | None, limit: int, as_json: bool) -> None:
    """The runs, newest first (of the runbook NAME only, when given)."""
    from ..runbooks import RunHistory

    runs = RunHistory().runs(name, limit=limit or None)
    if as_json:
        echo_json([run.as_dict() for run in runs])
        return
    click.echo(render_table(
        ["RUN", "RUNBOOK", "STATUS", "STARTED", "DURATION", "TRIGGER", "HTML"],
        [[run.id, run.runbook, run.status, _when(run.started), _duration(run.duration),
          run.trigger, run.html or "-"] for run in runs]))
    for run in runs:
        if run.status == "failed" and run.error:
            click.echo(f"{run.id}: {run.error.splitlines()[0]}")


@runbook.group("schedule", cls=CommandGroup)
def schedule() -> None:
    """Cron schedules, run by an agent started with --runbooks."""


@schedule.command("add")
@click.argument("name")
@click.argument("cron")
@_PARAMETER
@_ENV
def schedule_add(name: str, cron: str, pairs: dict[str, str],
                 environment: str | None) -> None:
    """Run the runbook NAME (or a notebook's path) on the schedule CRON ("0 3 * * *",
    "@daily", "@every 10m"; UTC)."""
    from ..runbooks import CronError, RunHistory, parse_cron

    book = _find(name)
    values = _values(book, pairs)
    try:
        first = parse_cron(cron).next_after(datetime.now(UTC))
    except CronError as error:
        raise click.BadParameter(str(error), param_hint="CRON") from None
    # A notebook given by path is scheduled by its path (the agent may not search the
    # folder it is in); a named runbook by its name, found again at each run.
    reference = str(book.path) if name.endswith(".ipynb") else book.name
    record = RunHistory().add_schedule(reference, cron, values, environment)
    click.echo(f"schedule {record.id}: {book.name} at {cron!r} (next after now: "
               f"{first:%Y-%m-%d %H:%M:%S} UTC, when an agent runs with --runbooks)")


@schedule.command("ls")
@json_option
def schedule_ls(as_json: bool) -> None:
    """List the schedules."""
    from ..runbooks import RunHistory

    schedules = RunHistory().schedules()
    if as_json:
        echo_json([item.as_dict() for item in schedules])
        return
    click.echo(render_table(
        ["ID", "RUNBOOK", "CRON", "ENV", "PARAMETERS"],
        [[item.id, item.runbook, item.cron, item.environment or "-",
          " ".join(f"{key}={value!r}" for key, value in item.parameters.items()) or "-"]
         for item in schedules]))


@schedule.command("rm")
@click.argument("schedule_id", metavar="ID", type=int)
def schedule_rm(schedule_id: int) -> None:
    """Remove the schedule ID (see `runbook schedule ls`)."""
    from ..runbooks import RunHistory

    if not RunHistory().remove_schedule(schedule_id):
        raise CommandError(f"no schedule {schedule_id}")
    click.echo(f"schedule {schedule_id} removed")
