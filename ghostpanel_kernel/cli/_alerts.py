"""``ghostpanel alerts``: list, acknowledge and silence alerts; check rules files.

With ``--env NAME`` the environment's agent answers (``/api/v1/alerts``); an
environment that is a plain engine, or ``--local``, reads this machine's alert state
next to the metrics store (``ghostpanel metrics collect``). See ``docs/alerts.md``.

Exit statuses: 0 done; 1 a failed call or a rules file with errors; 2 a bad option.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._app import CliContext, CommandGroup, json_option, one_env_option, pass_app
from ._output import CommandError, echo_json, render_table

if TYPE_CHECKING:
    from ..metrics._alert_client import AgentAlertClient, LocalAlertClient

__all__ = ["alerts"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _local_option(function: F) -> F:
    return click.option("--local", is_flag=True,
                        help="This machine's alert state (ghostpanel metrics collect), "
                             "not an environment's agent.")(function)


def _with_client(app: CliContext, env_names: tuple[str, ...], local: bool,
                 action: Callable[[AgentAlertClient | LocalAlertClient], Awaitable[T]]) -> T:
    """Run ``action`` with the alert client of the chosen environment (or the local
    state), closing everything after."""
    from .._exceptions import GhostPanelError
    from ..metrics._alert_client import LocalAlertClient, alert_client_for

    async def run() -> T:
        if local:
            client: AgentAlertClient | LocalAlertClient = LocalAlertClient()
            try:
                return await action(client)
            finally:
                await client.aclose()
        async with app.environment(env_names) as environment:
            client = alert_client_for(environment)
            try:
                return await action(client)
            finally:
                await client.aclose()

    try:
        return asyncio.run(run())
    except GhostPanelError as error:
        raise CommandError(str(error)) from error


@click.group(cls=CommandGroup)
def alerts() -> None:
    """Alerts: list, acknowledge, silence; check rules files (docs/alerts.md)."""


@alerts.command("ls")
@one_env_option
@_local_option
@click.option("--all", "show_all", is_flag=True, help="Also resolved alerts.")
@json_option
@pass_app
def list_alerts(app: CliContext, env_names: tuple[str, ...], local: bool, show_all: bool,
                as_json: bool) -> None:
    """Firing and pending alerts (with --all, recently resolved ones too)."""

    async def read(client: AgentAlertClient | LocalAlertClient) -> Any:
        return await client.read()

    found = _with_client(app, env_names, local, read)
    shown = [a for a in found.alerts if show_all or a["state"] != "resolved"]
    if as_json:
        echo_json({"enabled": found.enabled, "seq": found.seq, "alerts": shown,
                   "silences": found.silences})
        return
    if not found.enabled:
        click.echo("no alert rules are evaluated there (ghostpanel agent --alert-rules)")
        return
    click.echo(render_table(
        ["ID", "STATE", "SEVERITY", "RULE", "CONTAINER", "SINCE", "FLAGS", "MESSAGE"],
        [[a["id"], a["state"], a["severity"], a["rule"], a["container"],
          a["fired_at"] or a["started_at"], _flags(a), a["message"]] for a in shown]))


def _flags(alert: dict[str, Any]) -> str:
    return ",".join(name for name in ("acked", "silenced") if alert[name]) or "-"


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", metavar="NAME", help="Who acknowledges (default: your user name).")
@one_env_option
@_local_option
@json_option
@pass_app
def acknowledge(app: CliContext, alert_id: int, by: str | None, env_names: tuple[str, ...],
                local: bool, as_json: bool) -> None:
    """Acknowledge alert ALERT_ID: it is not notified again (its resolution is)."""

    async def ack(client: AgentAlertClient | LocalAlertClient) -> dict[str, Any]:
        return await client.acknowledge(alert_id, by=by)

    alert = _with_client(app, env_names, local, ack)
    if as_json:
        echo_json(alert)
    else:
        click.echo(f"alert {alert['id']} ({alert['rule']} on {alert['container']}) "
                   f"acknowledged by {alert['acked_by']}")


def _matchers(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
              ) -> dict[str, str]:
    matchers: dict[str, str] = {}
    for item in value:
        key, equals, pattern = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not LABEL=GLOB", ctx=ctx, param=param)
        matchers[key] = pattern
    return matchers


@alerts.command("silence")
@click.option("--match", "matchers", multiple=True, required=True, metavar="LABEL=GLOB",
              callback=_matchers,
              help="Silence alerts whose label matches (alertname, container, "
                   "environment, severity or a rule's label); repeat to narrow.")
@click.option("--for", "duration", required=True, metavar="DURATION",
              help="How long, e.g. 30m, 2h, 1d.")
@click.option("--comment", default="", help="Why.")
@one_env_option
@_local_option
@json_option
@pass_app
def silence(app: CliContext, matchers: dict[str, str], duration: str, comment: str,
            env_names: tuple[str, ...], local: bool, as_json: bool) -> None:
    """Hold back the notifications of the alerts matching every --match."""
    from ..metrics._alert_rules import RuleError, parse_duration

    try:
        parse_duration(duration, what="--for")
    except RuleError as error:
        raise click.BadParameter(str(error), param_hint="--for") from None

    async def add(client: AgentAlertClient | LocalAlertClient) -> dict[str, Any]:
        return await client.silence(matchers, duration=duration, comment=comment)

    made = _with_client(app, env_names, local, add)
    if as_json:
        echo_json(made)
    else:
        click.echo(f"silence {made['id']} until {made['ends_at']}")


@alerts.group(cls=CommandGroup)
def rules() -> None:
    """Alert rules files."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Read each rules file (or Boltfile's [alerts]) as the agent would; exit 1 if one
    cannot be read. Python predicates are not imported."""
    import tomllib

    from ..metrics._alert_rules import RuleError, parse_rules

    failed = 0
    for file in files:
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
            if "services" in document or "project" in document:  # a Boltfile
                document = document.get("alerts", {})
            found = parse_rules(document, import_predicates=False)
        except (RuleError, tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:
            failed += 1
            click.echo(f"{file}: {error}", err=True)
            continue
        kinds = ", ".join(f"{r.name} ({r.kind})" for r in found.rules) or "no rules"
        hook = f"; webhook {found.webhook}" if found.webhook else ""
        click.echo(f"{file}: {len(found.rules)} rule(s): {kinds}{hook}")
    if failed:
        raise CommandError(f"{failed} of {len(files)} file(s) have errors")
