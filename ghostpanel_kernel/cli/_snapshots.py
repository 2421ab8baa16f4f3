"""``ghostpanel snapshot``: snapshots of volumes, containers' data and paths.

TARGET is ``volume:NAME``, ``container:NAME`` (its volumes and bind mounts) or a path
that is a BTRFS subvolume or a ZFS dataset. ``volume:``/``container:`` targets use the
environment ``--env`` selects (default: the default environment); a path uses one only
when ``--env`` is given (then the containers that bind-mount it are stopped for a
restore and started again).

``snapshot run -f Boltfile`` snapshots the Boltfile's services' volumes once, or with
``--schedule`` whenever its ``[snapshots.triggers]`` fall due (see ``docs/snapshots.md``).

Exit statuses: 0 done; 1 the operation failed (a restore says which step, and that
everything was put back); 2 bad input: a TARGET that is not ``volume:``/``container:``/a
path, a path not on btrfs/zfs or not a subvolume/dataset, a snapshot that does not
exist, an invalid name or retention value; 3 the engine could not be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..snapshots import (
    RetentionPlan,
    SizeDiff,
    Snapshot,
    SnapshotExists,
    SnapshotManager,
    SnapshotNotFound,
    UnsupportedFilesystem,
    check_name,
    parse_target,
)
from ._app import CliContext, CommandGroup, json_option, one_env_option, pass_app
from ._output import CommandError, echo_json, human_size, render_table

if TYPE_CHECKING:
    from ..snapshots import RoundResult, SchedulePlan

__all__ = ["snapshot"]

T = TypeVar("T")

LS_HEADERS = ("NAME", "SOURCE", "CREATED", "SIZE", "TRIGGER", "KEEP", "DESCRIPTION")
DIFF_HEADERS = ("SOURCE", "A", "B", "SIZE A", "SIZE B", "CHANGE", "ONLY IN A", "ONLY IN B")
PLAN_HEADERS = ("ACTION", "NAME", "CREATED", "REASONS")
RETENTION_KEYS = ("keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
                  "keep_yearly", "max_total")


class BadInput(CommandError):
    """Input that cannot work whatever is retried (exit status 2, as a bad option)."""

    exit_code = 2


def _target(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_target(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            check_name(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


target_argument = click.argument("target", callback=_target)
snapshot_dir_option = click.option(
    "--snapshot-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Where BTRFS snapshots are kept (default: .ghostpanel-snapshots at the top of "
         "the source's filesystem; ZFS keeps them in the dataset).")


def _progress(name: str, index: int, total: int) -> None:
    click.echo(f"[{index + 1}/{total}] {name}", err=True)


def _run(app: CliContext, env_names: Sequence[str], target: str,
         snapshot_dir: Path | None,
         operation: Callable[[SnapshotManager], Awaitable[T]]) -> T:
    """Open the environment the target needs, run ``operation`` on a manager."""
    kind = parse_target(target).kind

    async def main() -> T:
        async with AsyncExitStack() as stack:
            env = None
            if kind != "path" or env_names:
                env = await stack.enter_async_context(app.environment(env_names))
            manager = SnapshotManager(env, snapshot_dir=str(snapshot_dir)
                                      if snapshot_dir else None)
            return await operation(manager)

    try:
        return asyncio.run(main())
    except (UnsupportedFilesystem, SnapshotNotFound, SnapshotExists, ValueError) as error:
        # The library raises ValueError only for a bad argument (a description a ZFS
        # property cannot hold): bad input too.
        raise BadInput(str(error)) from error


def _created(snapshot: Snapshot) -> str:
    return snapshot.created.strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group(cls=CommandGroup)
def snapshot() -> None:
    """Snapshots of a volume:NAME, a container:NAME's data, or a subvolume/dataset path."""


@snapshot.command("ls")
@target_argument
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def ls_command(app: CliContext, target: str, snapshot_dir: Path | None,
               env_names: tuple[str, ...], as_json: bool) -> None:
    """List the snapshots of TARGET, newest first."""
    found = _run(app, env_names, target, snapshot_dir, lambda m: m.list(target))
    if as_json:
        echo_json([s.to_json() for s in found])
        return
    if not found:
        click.echo(f"no snapshots of {target}", err=True)
        return
    click.echo(render_table(LS_HEADERS, [
        (s.name, s.source, _created(s), "-" if s.size is None else human_size(s.size),
         s.trigger, "forever" if s.keep_forever else "", s.description) for s in found]))


@snapshot.command("create")
@target_argument
@click.option("--name", callback=_name, help="The snapshot's name (default: "
              "bolt-YYYYmmdd-HHMMSS, UTC).")
@click.option("--keep-forever", is_flag=True, help="Never remove it by retention.")
@click.option("--description", default="", help="Free text kept with the snapshot.")
@click.option("--pause", is_flag=True, help="Pause the running containers that use the "
              "data while the snapshot is taken (default: they keep running).")
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def create_command(app: CliContext, target: str, name: str | None, keep_forever: bool,
                   description: str, pause: bool, snapshot_dir: Path | None,
                   env_names: tuple[str, ...], as_json: bool) -> None:
    """Snapshot TARGET (every volume and bind mount of a container); print its name."""
    made = _run(app, env_names, target, snapshot_dir, lambda m: m.create(
        target, name=name, keep_forever=keep_forever, description=description,
        pause=pause, progress=_progress))
    if as_json:
        echo_json([s.to_json() for s in made])
        return
    click.echo(made[0].name)


@snapshot.command("restore")
@target_argument
@click.argument("name")
@click.option("-t", "--timeout", "stop_timeout", type=click.IntRange(min=0), default=10,
              show_default=True, metavar="SECONDS",
              help="Seconds a container may take to stop before it is killed.")
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def restore_command(app: CliContext, target: str, name: str, stop_timeout: int,
                    snapshot_dir: Path | None, env_names: tuple[str, ...],
                    as_json: bool) -> None:
    """Restore TARGET to snapshot NAME; the current data is kept as a snapshot."""
    result = _run(app, env_names, target, snapshot_dir, lambda m: m.restore(
        target, name, stop_timeout=stop_timeout, progress=_progress))
    if as_json:
        echo_json({"restored": [s.to_json() for s in result.restored],
                   "safety": result.safety, "restarted": result.restarted})
        return
    kept = ", ".join(dict.fromkeys(result.safety))
    restarted = f"; restarted {', '.join(result.restarted)}" if result.restarted else ""
    click.echo(f"restored {target} to {name}; the data as it was is kept as {kept}"
               f"{restarted}")


@snapshot.command("rm")
@target_argument
@click.argument("name")
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def rm_command(app: CliContext, target: str, name: str, snapshot_dir: Path | None,
               env_names: tuple[str, ...], as_json: bool) -> None:
    """Delete snapshot NAME of TARGET."""
    deleted = _run(app, env_names, target, snapshot_dir, lambda m: m.delete(target, name))
    if as_json:
        echo_json([s.to_json() for s in deleted])
        return
    for snapshot_ in deleted:
        click.echo(f"deleted {snapshot_.name} of {snapshot_.source}")


@snapshot.command("diff")
@target_argument
@click.argument("a")
@click.argument("b")
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def diff_command(app: CliContext, target: str, a: str, b: str, snapshot_dir: Path | None,
                 env_names: tuple[str, ...], as_json: bool) -> None:
    """Compare the sizes of snapshots A and B of TARGET."""
    diffs: list[SizeDiff] = _run(app, env_names, target, snapshot_dir,
                                 lambda m: m.diff(target, a, b))
    if as_json:
        echo_json([{**d.__dict__, "delta": d.delta} for d in diffs])
        return

    def size(value: int | None) -> str:
        return "-" if value is None else human_size(value)

    click.echo(render_table(DIFF_HEADERS, [
        (d.source, d.a, d.b, size(d.size_a), size(d.size_b),
         ("+" if d.delta >= 0 else "-") + human_size(abs(d.delta)),
         size(d.exclusive_a), size(d.exclusive_b)) for d in diffs]))


def _policy(boltfile: Path | None, options: dict[str, int | None]) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if boltfile is not None:
        from ..bolt import Boltfile

        snapshots = Boltfile.load(boltfile).to_dict().get("snapshots") or {}
        policy.update(snapshots.get("retention") or {})
    policy.update({key: value for key, value in options.items() if value is not None})
    return policy


def _retention_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for key in reversed(RETENTION_KEYS):
        flag = "--" + key.replace("_", "-")
        meaning = ("keep only the newest N (keep_forever ones aside)" if key == "max_total"
                   else f"keep the newest snapshot of the last N {key[5:]} periods "
                        "(-1: all)")
        function = click.option(flag, key, type=int, metavar="N",
                                help=f"{meaning.capitalize()}; overrides the Boltfile."
                                )(function)
    return function


def _plan_rows(plan: RetentionPlan, snapshots: list[Snapshot]) -> list[tuple[str, ...]]:
    created = {s.name: _created(s) for s in snapshots}
    keep = [("keep", name, created.get(name, ""), ", ".join(plan.reasons[name]) or
             "no retention rule") for name in plan.keep]
    remove = [("remove", name, created.get(name, ""), "") for name in plan.remove]
    return sorted(keep + remove, key=lambda row: row[2], reverse=True)


@snapshot.command("prune")
@target_argument
@click.option("--dry-run", is_flag=True, help="Print the plan; delete nothing.")
@click.option("-f", "--file", "boltfile", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), metavar="FILE",
              help="Take [snapshots.retention] (and snapshot_path) from this Boltfile.")
@_retention_options
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def prune_command(app: CliContext, /, target: str, dry_run: bool, boltfile: Path | None,
                  snapshot_dir: Path | None, env_names: tuple[str, ...], as_json: bool,
                  **options: int | None) -> None:
    """Apply a retention policy to TARGET's snapshots (restic's forget rules)."""
    try:
        policy = _policy(boltfile, options)
        if snapshot_dir is None and boltfile is not None:
            from ..bolt import Boltfile

            configured = (Boltfile.load(boltfile).to_dict().get("snapshots") or {}
                          ).get("snapshot_path")
            snapshot_dir = Path(configured) if configured else None
        # Checked before anything is listed: a bad policy is bad input, exit 2.
        from ..snapshots import plan_retention

        plan_retention([], policy)
    except ValueError as error:
        raise BadInput(str(error)) from error
    result = _run(app, env_names, target, snapshot_dir, lambda m: m.prune(
        target, policy, dry_run=dry_run, progress=None if dry_run else _progress))
    plan = result.plan
    if as_json:
        echo_json({"dry_run": dry_run, "policy": policy, "keep": plan.keep,
                   "remove": plan.remove, "reasons": plan.reasons,
                   "deleted": [s.to_json() for s in result.deleted]})
        return
    click.echo(render_table(PLAN_HEADERS, _plan_rows(plan, result.snapshots)))
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(plan.remove)} snapshot(s), kept {len(plan.keep)}",
               err=True)


# -- schedules -------------------------------------------------------------------------


def _schedule_plan(boltfile: Path) -> SchedulePlan:
    """The Boltfile's schedule plan; a bad trigger or a disabled table is bad input."""
    from ..bolt import Boltfile
    from ..snapshots import schedule_plan

    try:
        plan = schedule_plan(Boltfile.load(boltfile))
    except ValueError as error:  # ScheduleError: names the key and what to write
        raise BadInput(str(error)) from error
    if not plan.enabled:
        raise BadInput(f"{boltfile}: [snapshots] enabled = false: nothing is taken")
    if not plan.all_targets:
        raise BadInput(f"{boltfile}: no service has a volume to snapshot")
    return plan


def _print_round(result: RoundResult, as_json: bool) -> None:
    if as_json:
        echo_json({"trigger": result.trigger,
                   "snapshots": [s.to_json() for s in result.snapshots],
                   "pruned": [s.to_json() for s in result.pruned],
                   "errors": [{"target": t, "error": e} for t, e in result.errors]})
    else:
        for snap in result.snapshots:
            click.echo(f"{_created(snap)}  {result.trigger:<8} {snap.name}  {snap.source}")
        for snap in result.pruned:
            click.echo(f"pruned {snap.name} of {snap.source}", err=True)
    for target, error in result.errors:
        click.echo(f"Error: {result.trigger} snapshot of {target} failed: {error}", err=True)


async def _until_stopped(operation: Awaitable[None], ready: Callable[[], None]) -> bool:
    """Run ``operation`` until it ends or SIGINT/SIGTERM; True when a signal ended it.

    ``ready`` is called once the signals are handled (what it prints tells a script
    that a signal now ends the run cleanly).
    """
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(operation)
    stopped: list[int] = []

    def stop(signum: int) -> None:
        stopped.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    ready()
    try:
        await task
    except asyncio.CancelledError:
        if not stopped:
            raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return bool(stopped)


@snapshot.command("run")
@click.option("-f", "--file", "boltfile", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="The Boltfile: its services' volumes, [snapshots.triggers], retention "
                   "and snapshot_path.")
@click.option("--schedule", is_flag=True,
              help="Stay in the foreground and take each snapshot when its trigger is "
                   "due (UTC) until Ctrl-C; without it: one round now.")
@snapshot_dir_option
@one_env_option
@json_option
@pass_app
def run_command(app: CliContext, boltfile: Path, schedule: bool, snapshot_dir: Path | None,
                env_names: tuple[str, ...], as_json: bool) -> None:
    """Snapshot the Boltfile's services' volumes now, or on its schedule (--schedule).

    Each snapshot taken is printed (time, trigger, name, source); retention
    ([snapshots.retention]) prunes each volume after its snapshot. A volume that fails
    is reported and retried at the next due time; the schedule goes on.
    """
    from ..snapshots import ScheduleRunner

    plan = _schedule_plan(boltfile)
    if schedule and plan.schedule.next_due(datetime.now(UTC)) is None:
        raise BadInput(f"{boltfile}: [snapshots.triggers] sets no hourly, daily, weekly "
                       'or monthly trigger: add e.g. daily = "02:00"')
    folder = str(snapshot_dir) if snapshot_dir else plan.snapshot_dir
    failed: list[bool] = []

    def report(result: RoundResult) -> None:
        _print_round(result, as_json)
        failed.append(not result.ok)

    async def main() -> bool:
        async with app.environment(env_names) as env:
            runner = ScheduleRunner(SnapshotManager(env, snapshot_dir=folder), plan,
                                    report=report)
            if not schedule:
                await runner.run_round("manual")
                return False
            due = plan.schedule.next_due(datetime.now(UTC))
            assert due is not None
            return await _until_stopped(runner.run_forever(), lambda: click.echo(
                f"next: {due[1]} at {due[0]:%Y-%m-%d %H:%M} UTC; Ctrl-C stops", err=True))

    if asyncio.run(main()):
        click.echo("stopped", err=True)
        return
    if failed and failed[-1]:
        raise click.exceptions.Exit(1)
