"""``ghostpanel surge``: deploy a Boltfile to one or many environments.

``plan``, ``apply``, ``destroy``, ``status``, ``scale`` and ``logs`` take the Boltfile as
``-f/--file FILE`` (default: ``./Boltfile.toml`` when it exists) and the environments as
``--env NAME`` (repeatable, ``all`` for every one; default: the default environment).
Every subcommand, ``logs`` included, takes ``-f FILE`` as the issue's command line has it;
``logs`` follows with ``-F/--follow``.

An invalid Boltfile prints the validator's errors (one per line, on stderr) and exits 1
with nothing touched. ``apply`` shows a progress bar on stderr and prints one summary
line per environment; when an environment fails, everything is rolled back and the
command prints one ``Error:`` line per failed environment, then how the run ended, said
once: "every change of this run was rolled back", or one "rollback incomplete" line per
change that could not be undone. Exits 1.

``apply``, ``scale`` and ``destroy`` hold the project's lock on each environment while
they run (a second run fails naming the holder); ``--break-lock`` takes a lock whose
holder is gone. Ctrl-C, SIGTERM and SIGHUP stop them the same way: the apply or scale
rolls back, the command says what it left, and exits 128 + the signal's number (130,
143, 129). A second SIGTERM or SIGHUP is ignored while the rollback runs (a second
Ctrl-C abandons it).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import click

from ..bolt import Boltfile
from ..engine import Environment
from ..surge import (
    CancelCallback,
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

break_lock_option = click.option(
    "--break-lock", is_flag=True,
    help="Take the project's lock even where another run holds it (for a lock whose "
         "holder is gone: the error names it).")

health_timeout_option = click.option(
    "--health-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
    metavar="SECONDS", help="Seconds a service with a healthcheck may take to be healthy.")


# -- running the library -------------------------------------------------------------


#: Signals that stop a changing command as Ctrl-C does (asyncio.run handles SIGINT).
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class _Interrupted(Exception):
    """The command was stopped by ``signum`` (its operation cancelled and unwound)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _cancel_on_stop_signals(received: list[int]) -> None:
    """Make SIGTERM and SIGHUP cancel the running main task, as Ctrl-C does.

    Only the first one cancels: the task is then rolling back, and cancelling it again
    would abandon the rollback half-way. The handlers go with the event loop. Outside
    the main thread (the command called from a program's worker thread) Python lets no
    one handle signals, and the command runs without.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        if not received:
            task.cancel()
        received.append(signum)

    for stop_signal in _STOP_SIGNALS:
        loop.add_signal_handler(stop_signal, stop, stop_signal)


def _run(app: CliContext, env_names: Sequence[str],
         operation: Callable[[list[Environment]], Awaitable[T]], *,
         interruptible: bool = False) -> T:
    """Open the selected environments, run ``operation`` on them, report SurgeErrors.

    ``interruptible``: Ctrl-C, SIGTERM and SIGHUP cancel ``operation`` (which unwinds)
    and raise :class:`_Interrupted`.
    """
    received: list[int] = []

    async def main() -> T:
        if interruptible:
            _cancel_on_stop_signals(received)
        async with app.environments(env_names) as environments:
            return await operation(environments)

    try:
        return asyncio.run(main())
    except SurgeError as error:
        for diagnostic in error.diagnostics:
            click.echo(f"{diagnostic}", err=True)
        raise CommandError(error.message) from error
    except KeyboardInterrupt:
        if interruptible:
            raise _Interrupted(signal.SIGINT) from None
        raise
    except asyncio.CancelledError:
        if received:
            raise _Interrupted(received[0]) from None
        raise


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


def _print_result(result: SurgeResult, as_json: bool) -> None:
    """The summary (stdout), warnings, errors and :meth:`SurgeResult.conclusion`."""
    if as_json:
        echo_json(result.to_dict())
    else:
        for line in result.summary():
            click.echo(line)
    for warning in result.warnings:
        click.echo(f"Warning: {one_line(warning)}", err=True)
    for name, error in result.errors.items():
        click.echo(f"Error: environment {name!r}: {one_line(str(error)) or type(error).__name__}",
                   err=True)
    for line in result.conclusion():
        click.echo(f"Error: {one_line(line)}", err=True)


def _report_result(result: SurgeResult, as_json: bool) -> None:
    """Print the result; exit 1 unless it succeeded."""
    _print_result(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(1)


def _report_interrupted(stop: _Interrupted, left: Sequence[SurgeResult], what: str,
                        as_json: bool) -> NoReturn:
    """Say what an interrupted run left, then exit 128 + the signal's number."""
    click.echo(f"Error: {what} interrupted by {signal.Signals(stop.signum).name}", err=True)
    if left:
        _print_result(left[0], as_json)
    else:
        click.echo("Error: it stopped where it was: `ghostpanel surge plan` shows what "
                   "runs now", err=True)
    raise click.exceptions.Exit(128 + stop.signum)


def _changing(app: CliContext, env_names: Sequence[str], what: str, as_json: bool,
              bar: _ProgressBar | None,
              operation: Callable[[list[Environment], CancelCallback], Awaitable[SurgeResult]]
              ) -> None:
    """Run an apply, scale or destroy: interruptible, reported, its exit status."""
    left: list[SurgeResult] = []
    try:
        result = _run(app, env_names, lambda envs: operation(envs, left.append),
                      interruptible=True)
    except _Interrupted as stop:
        if bar is not None:
            bar.close()
        _report_interrupted(stop, left, what, as_json)
    finally:
        if bar is not None:
            bar.close()
    _report_result(result, as_json)


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
                     else f"{a.container} ({a.resource})",
                     f"{a.reason} (GPUs: {a.gpus})" if a.gpus else a.reason]
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
@click.option("--no-snapshot", is_flag=True,
              help="Do not take the before_surge_up snapshots the Boltfile's "
                   "[snapshots.triggers] asks for.")
@timeout_option
@health_timeout_option
@break_lock_option
@json_option
@pass_app
def apply(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], pull: bool,
          no_snapshot: bool, stop_timeout: int, health_timeout: float, break_lock: bool,
          as_json: bool) -> None:
    """Make the environments run the Boltfile; all or nothing.

    With before_surge_up = true in [snapshots.triggers], the volumes of each service
    to recreate are snapshotted first; a snapshot that fails stops the apply with
    nothing changed (--no-snapshot skips them).
    """
    boltfile = Boltfile.load(boltfile_path)
    hook = None if no_snapshot else _before_surge_up(boltfile)
    bar = _ProgressBar("applying")
    _changing(app, env_names, "apply", as_json, bar, lambda envs, on_cancel: apply_surge(
        boltfile, envs, pull=pull, progress=bar, stop_timeout=stop_timeout,
        health_timeout=health_timeout, break_lock=break_lock, on_cancel=on_cancel,
        before_recreate=hook))


def _before_surge_up(boltfile: Boltfile) -> Any:
    """The Boltfile's before_surge_up hook, or None; snapshots imported only then."""
    from ..snapshots import boltfile_before_surge_up

    try:
        return boltfile_before_surge_up(boltfile, taken=lambda snap: click.echo(
            f"snapshot {snap.name} of {snap.source} (before_surge_up)", err=True))
    except ValueError as error:  # a trigger that cannot be scheduled: as an invalid file
        raise CommandError(str(error)) from None


@surge.command()
@file_option
@env_option
@click.option("-v", "--volumes", is_flag=True,
              help="Also remove the project's named volumes (their data is lost).")
@timeout_option
@break_lock_option
@json_option
@pass_app
def destroy(app: CliContext, boltfile_path: Path, env_names: tuple[str, ...], volumes: bool,
            stop_timeout: int, break_lock: bool, as_json: bool) -> None:
    """Remove the project's containers and networks (and volumes with -v)."""
    boltfile = Boltfile.load(boltfile_path)
    # A removal cannot be undone: interrupted, destroy stops where it is (on_cancel unused).
    _changing(app, env_names, "destroy", as_json, None, lambda envs, on_cancel: destroy_surge(
        boltfile, envs, volumes=volumes, stop_timeout=stop_timeout, break_lock=break_lock))


@surge.command()
@click.argument("service")
@click.argument("replicas", type=click.IntRange(min=0))
@file_option
@env_option
@timeout_option
@health_timeout_option
@break_lock_option
@json_option
@pass_app
def scale(app: CliContext, service: str, replicas: int, boltfile_path: Path,
          env_names: tuple[str, ...], stop_timeout: int, health_timeout: float,
          break_lock: bool, as_json: bool) -> None:
    """Run REPLICAS containers of SERVICE (until the next apply; edit `replicas` to keep)."""
    boltfile = Boltfile.load(boltfile_path)
    bar = _ProgressBar(f"scaling {service}")
    _changing(app, env_names, "scale", as_json, bar, lambda envs, on_cancel: scale_surge(
        boltfile, envs, service=service, replicas=replicas, progress=bar,
        stop_timeout=stop_timeout, health_timeout=health_timeout, break_lock=break_lock,
        on_cancel=on_cancel))


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
