"""``ghostpanel surge``: deploy a Boltfile to one or many environments.

``plan``, ``apply``, ``destroy``, ``status``, ``scale`` and ``logs`` take the Boltfile as
``-f/--file FILE`` (default: ``./Boltfile.toml`` when it exists) and the environments as
``--env NAME`` (repeatable, ``all`` for every one; default: the default environment).
Every subcommand, ``logs`` included, takes ``-f FILE`` as the issue's command line has it;
``logs`` follows with ``-F/--follow``.

An invalid Boltfile prints the validator's errors (one per line, on stderr) and exits 1
with nothing touched. ``apply`` shows a progress bar on stderr and prints one summary
line per environment; when an environment fails, everything is rolled back and the
command prints one ``Error:`` line per failed environment and exits 1.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from ..bolt import Boltfile
from ..engine import Environment
from ..surge import (
    SurgeError,
    SurgeLogLine,
    SurgePlan,
    SurgeProgress,
    SurgeResult,
    SurgeStatus,
    apply_surge,
    destroy_surge,
    plan_surge,
    scale_surge,
    surge_logs,
    surge_status,
)
from ._app import (
    CliContext,
    CommandGroup,
    all_failed_error,
    env_option,
    json_option,
    pass_app,
    warn_environment_failed,
)
from ._output import CommandError, echo_json, one_line, render_table

__all__ = ["surge"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BOLTFILE = "Boltfile.toml"
PLAN_HEADERS = ("ACTION", "SERVICE", "CONTAINER", "REASON")
STATUS_HEADERS = ("ENVIRONMENT", "SERVICE", "DESIRED", "RUNNING", "HEALTH", "CONTAINERS")


# -- options -------------------------------------------------------------------------


def _boltfile_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    if value is not None:
        return value
    default = Path(DEFAULT_BOLTFILE)
    if not default.is_file():
        raise click.BadParameter(f"no ./{DEFAULT_BOLTFILE} here; give the Boltfile with "
                                 "--file FILE", ctx=ctx, param=param)
    return default


def _file_option(*names: str) -> Callable[[F], F]:
    return click.option(
        *names, "boltfile_path", type=click.Path(dir_okay=False, path_type=Path),
        callback=_boltfile_path, metavar="FILE",
        help=f"The Boltfile (default: ./{DEFAULT_BOLTFILE}).")


file_option = _file_option("-f", "--file")

timeout_option = click.option(
    "-t", "--timeout", "stop_timeout", type=click.IntRange(min=0), default=10,
    show_default=True, metavar="SECONDS",
    help="Seconds a container may take to stop before it is killed.")

health_timeout_option = click.option(
    "--health-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
    metavar="SECONDS", help="Seconds a service with a healthcheck may take to be healthy.")


# -- running the library -------------------------------------------------------------


def _run(app: CliContext, env_names: Sequence[str],
         operation: Callable[[list[Environment]], Awaitable[T]]) -> T:
    """Open the selected environments, run ``operation`` on them, report SurgeErrors."""

    async def main() -> T:
        async with app.environments(env_names) as environments:
            return await operation(environments)

    try:
        return asyncio.run(main())
    except SurgeError as error:
        for diagnostic in error.diagnostics:
            click.echo(f"{diagnostic}", err=True)
        raise CommandError(error.message) from error


class _ProgressBar:
    """A click progress bar on stderr fed by :class:`SurgeProgress` callbacks."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None
        self._step = 0

    def __call__(self, progress: SurgeProgress) -> None:
        if self._bar is None:
            if not progress.total:
                return
            self._bar = click.progressbar(length=progress.total, label=self._label,
                                          file=sys.stderr,
                                          show_pos=True)
            self._bar.__enter__()
        self._bar.label = f"{self._label} {progress.environment}: {progress.message}"
        if progress.step > self._step:
            self._bar.update(progress.step - self._step)
            self._step = progress.step
        else:
            self._bar.render_progress()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _report_result(result: SurgeResult, as_json: bool) -> None:
    """Print the summary; exit 1 with one line per failed environment."""
    if as_json:
        echo_json(result.to_dict())
    else:
        for line in result.summary():
            click.echo(line)
    for warning in result.warnings:
        click.echo(f"Warning: {one_line(warning)}", err=True)
    if result.ok:
        return
    for name, error in result.errors.items():
        click.echo(f"Error: environment {name!r}: {one_line(str(error)) or type(error).__name__}",
                   err=True)
    if result.rolled_back:
        click.echo("Error: every change of this run was rolled back", err=True)
    for failure in result.rollback_errors:
        click.echo(f"Error: rollback incomplete: {one_line(failure)}", err=True)
    raise click.exceptions.Exit(1)


# -- the group -----------------------------------------------------------------------


@click.group(cls=CommandGroup)
def surge() -> None:
    """Deploy a Boltfile to one or many environments (Bolt's surge, for real).

    Services run as containers {project}_{service} (replicas {project}_{service}_{i}),
    replicas spread over environments by their region label, and an apply that fails
    anywhere is rolled back everywhere.
    """


@surge.command()
@file_option
@env_option
@click.option("--pull", is_flag=True,
              help="Also compare each container's image with what its reference names on "
                   "the engine now (what apply --pull does after pulling).")
@json_option
@pass_app
def plan(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], pull: bool,
         as_json: bool) -> None:
    """Show what apply would do, per environment; changes nothing."""
    boltfile = Boltfile.load(boltfile_path)
    result: SurgePlan = _run(app, env_names,
                             lambda envs: plan_surge(boltfile, envs, pull=pull))
    if as_json:
        echo_json(result.to_dict())
    else:
        for index, env_plan in enumerate(result.environments):
            if index:
                click.echo()
            click.echo(f"{env_plan.environment}:")
            if env_plan.error is not None:
                click.echo(f"  cannot plan: {one_line(str(env_plan.error))}")
                continue
            rows = [[a.kind, a.service or "-",
                     a.container if a.resource == "container"
                     else f"{a.container} ({a.resource})", a.reason]
                    for a in env_plan.actions]
            click.echo(render_table(PLAN_HEADERS, rows))
    failed = [p for p in result.environments if p.error is not None]
    for env_plan in failed:
        assert env_plan.error is not None
        warn_environment_failed(env_plan.environment, env_plan.error)
    if failed:
        raise click.exceptions.Exit(1)


@surge.command()
@file_option
@env_option
@click.option("--pull", is_flag=True,
              help="Pull every image first and recreate the containers whose image "
                   "changed (redeploy with the latest images).")
@timeout_option
@health_timeout_option
@json_option
@pass_app
def apply(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], pull: bool,
          stop_timeout: int, health_timeout: float, as_json: bool) -> None:
    """Make the environments run the Boltfile; all or nothing."""
    boltfile = Boltfile.load(boltfile_path)
    bar = _ProgressBar("applying")
    try:
        result: SurgeResult = _run(app, env_names, lambda envs: apply_surge(
            boltfile, envs, pull=pull, progress=bar, stop_timeout=stop_timeout,
            health_timeout=health_timeout))
    finally:
        bar.close()
    _report_result(result, as_json)


@surge.command()
@file_option
@env_option
@click.option("-v", "--volumes", is_flag=True,
              help="Also remove the project's named volumes (their data is lost).")
@timeout_option
@json_option
@pass_app
def destroy(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], volumes: bool,
            stop_timeout: int, as_json: bool) -> None:
    """Remove the project's containers and networks (and volumes with -v)."""
    boltfile = Boltfile.load(boltfile_path)
    result: SurgeResult = _run(app, env_names, lambda envs: destroy_surge(
        boltfile, envs, volumes=volumes, stop_timeout=stop_timeout))
    _report_result(result, as_json)


@surge.command()
@click.argument("service")
@click.argument("replicas", type=click.IntRange(min=0))
@file_option
@env_option
@timeout_option
@health_timeout_option
@json_option
@pass_app
def scale(app: CliContext, service: str, replicas: int, boltfile_path: Path,
          env_names: tuple[str, ...], stop_timeout: int, health_timeout: float,
          as_json: bool) -> None:
    """Run REPLICAS containers of SERVICE (until the next apply; edit `replicas` to keep)."""
    boltfile = Boltfile.load(boltfile_path)
    bar = _ProgressBar(f"scaling {service}")
    try:
        result: SurgeResult = _run(app, env_names, lambda envs: scale_surge(
            boltfile, envs, service=service, replicas=replicas, progress=bar,
            stop_timeout=stop_timeout, health_timeout=health_timeout))
    finally:
        bar.close()
    _report_result(result, as_json)


@surge.command()
@file_option
@env_option
@click.option("--no-check", "no_check", is_flag=True,
              help="Read the health the engine recorded instead of running healthchecks "
                   "where the engine does not (Podman without systemd).")
@json_option
@pass_app
def status(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], no_check: bool,
           as_json: bool) -> None:
    """Desired and running replicas, health and containers, per environment and service."""
    boltfile = Boltfile.load(boltfile_path)
    result: SurgeStatus = _run(app, env_names, lambda envs: surge_status(
        boltfile, envs, check_health=not no_check))
    for name, error in result.errors.items():
        warn_environment_failed(name, error)
    if result.errors and not result.services:
        raise all_failed_error(list(result.errors.values()))
    if as_json:
        echo_json([entry.to_dict() for entry in result.services])
        return
    click.echo(render_table(STATUS_HEADERS, [
        [s.environment, s.service, s.desired, s.running, s.health or "-",
         ", ".join(s.containers) or "-"] for s in result.services]))


def _tail(ctx: click.Context, param: click.Parameter, value: str) -> int | Literal["all"]:
    if value == "all":
        return "all"
    if not value.isdigit():
        raise click.BadParameter(f"{value!r} is neither a line count nor 'all'",
                                 ctx=ctx, param=param)
    return int(value)


def _write(entries: Sequence[SurgeLogLine], *, with_environment: bool,
           timestamps: bool) -> None:
    for stream, run in itertools.groupby(entries, key=lambda entry: entry.line.stream):
        lines = []
        for entry in run:
            where = f"{entry.environment}/{entry.container}" if with_environment \
                else entry.container
            stamp = f"{entry.line.timestamp} " if timestamps and entry.line.timestamp else ""
            lines.append(f"{where} | {stamp}{entry.line.text}")
        click.echo("\n".join(lines), err=stream == "stderr")


@surge.command()
@click.argument("service", required=False)
@file_option
@env_option
@click.option("-F", "--follow", is_flag=True,
              help="Keep printing new lines until the containers stop (or Ctrl-C).")
@click.option("--tail", default="all", show_default=True, metavar="N", callback=_tail,
              help="Only the last N lines of each container ('all' for every line).")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@pass_app
def logs(app: CliContext, service: str | None, boltfile_path: Path,
         env_names: tuple[str, ...], follow: bool, tail: int | Literal["all"],
         timestamps: bool) -> None:
    """Print the merged logs of the project's containers (of SERVICE), lines prefixed
    with their container."""
    boltfile = Boltfile.load(boltfile_path)

    async def read(environments: list[Environment]) -> None:
        several = len(environments) > 1
        stream = surge_logs(boltfile, environments, service=service, follow=follow,
                            tail=tail)
        batch: list[SurgeLogLine] = []
        async for entry in stream:
            batch.append(entry)
            if follow:
                _write(batch, with_environment=several, timestamps=timestamps)
                batch = []
        if batch:
            _write(batch, with_environment=several, timestamps=timestamps)

    _run(app, env_names, read)
