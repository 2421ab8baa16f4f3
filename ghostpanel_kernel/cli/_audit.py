"""``ghostpanel audit``: read, check and export the gateway's audit log.

The log lives in GhostPanel's store, the same one every command uses (``--home`` /
``GHOSTPANEL_HOME``, or ``GHOSTPANEL_DATABASE_URL`` for a PostgreSQL shared by several
gateways); see ``docs/audit.md``.

Exit statuses: 0 done (``verify``: the chain holds); 1 ``verify`` found a row that was
edited, deleted, inserted or reordered (the message names the first), or the store
failed; 2 a bad option, or a store that cannot be opened as configured.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from ._app import CommandGroup, json_option, time_option
from ._output import CommandError, echo_json, render_table

if TYPE_CHECKING:
    from ..gateway._audit import AuditLog

__all__ = ["audit"]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _log() -> Iterator[AuditLog]:
    from ..gateway._audit import AuditLog
    from ..store import open_database

    engine = open_database()
    try:
        yield AuditLog(engine)
    finally:
        engine.dispose()


def _filters(function: F) -> F:
    """``--user``, ``--env``, ``--since`` and ``--until``: which rows."""
    function = time_option("--until", "Only rows written before this time")(function)
    function = time_option("--since", "Only rows written at or after this time")(function)
    function = click.option("--env", "environment", metavar="NAME",
                            help="Only rows about this environment.")(function)
    return click.option("--user", metavar="NAME", help="Only this user's rows.")(function)


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _shown_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group(cls=CommandGroup)
def audit() -> None:
    """The gateway's audit log: who did (or was refused) what, hash-chained.

    See docs/audit.md.
    """


@audit.command("ls")
@_filters
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show only the newest N matching rows (0: all).")
@json_option
def list_rows(user: str | None, environment: str | None, since: float | None,
              until: float | None, limit: int, as_json: bool) -> None:
    """List audit rows, oldest first.

    Shows the newest --limit rows of those that match.
    """
    with _log() as log:
        rows = log.entries(user=user, environment=environment, since=_moment(since),
                           until=_moment(until), limit=limit or None)
    if as_json:
        echo_json([row.as_dict() for row in rows])
        return
    click.echo(render_table(
        ["SEQ", "TIME", "USER", "ENV", "ACTION", "TARGET", "RESULT", "STATUS"],
        [[row.seq, _shown_time(row.time), row.user, row.environment or "-", row.action,
          row.target or "-", row.result, "-" if row.status is None else row.status]
         for row in rows]))


@audit.command("verify")
@json_option
def verify(as_json: bool) -> None:
    """Check the hash chain.

    Exits 0 when it holds; else exits 1 naming the first row that does not, and why
    (edited, deleted, reordered).
    """
    with _log() as log:
        result = log.verify()
    if as_json:
        echo_json({"ok": result.ok, "checked": result.checked,
                   "first_bad": result.first_bad, "reason": result.reason})
        if not result.ok:
            sys.exit(1)
        return
    if not result.ok:
        raise CommandError(f"the audit log is broken at row {result.first_bad}: "
                           f"{result.reason} ({result.checked} rows read)")
    click.echo(f"ok: {result.checked} rows, the chain holds")


@audit.command("export")
@click.option("--format", "kind", type=click.Choice(["csv"]), default="csv",
              show_default=True, help="The file format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write to FILE instead of standard output.")
@_filters
def export(kind: str, output: Path | None, user: str | None, environment: str | None,
           since: float | None, until: float | None) -> None:
    """Export audit rows as CSV.

    Every row, or those that match, oldest first, with every field.
    """
    with _log() as log:
        target: Path | TextIO = sys.stdout if output is None else output
        count = log.write_csv(target, user=user, environment=environment,
                              since=_moment(since), until=_moment(until))
    if output is not None:
        click.echo(f"exported {count} rows to {output}", err=True)
