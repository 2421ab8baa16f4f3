"""Container commands: ``ps``, ``logs``, ``start/stop/restart/rm``, ``inspect``, ``stats``,
``events``."""

from __future__ import annotations

import asyncio
import itertools
import math
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import click

from ..engine import Container, EngineAPIError, Environment, Event, LogLine, StatsSample
from ._app import (
    CliContext,
    all_failed_error,
    engine_time,
    env_option,
    filter_option,
    gather_from_environments,
    json_option,
    one_env_option,
    pass_app,
    time_option,
    warn_environment_failed,
)
from ._output import (
    CommandError,
    echo_json,
    echo_json_line,
    human_size,
    one_line,
    render_table,
)

if TYPE_CHECKING:
    from ..engine._image_updates import UpdateStatus

__all__ = ["events", "inspect", "logs", "ps", "restart", "rm", "start", "stats", "stop"]

Filters = Mapping[str, list[str]]

# -- ps ------------------------------------------------------------------------------

PS_HEADERS = ("NAME", "ENVIRONMENT", "IMAGE", "STATE", "STATUS", "PORTS", "ID")


def container_record(container: Container) -> dict[str, Any]:
    """The ``ps --json`` object for ``container`` (stable keys)."""
    return {"environment": container.environment, "id": container.id,
            "name": container.name, "image": container.image, "state": container.state,
            "status": container.status, "ports": container.ports,
            "labels": container.labels}


def container_row(container: Container) -> list[str]:
    """The ``ps`` table row for ``container``."""
    return [container.name, container.environment, container.image, container.state,
            container.status, ", ".join(container.ports), container.short_id]


async def _list_containers(app: CliContext, env_names: Sequence[str], *, show_all: bool,
                           filters: Filters) -> list[Container]:
    async def listing(environment: Environment) -> list[Container]:
        return await environment.containers.list(all=show_all, filters=filters)

    listings = await app.gather(env_names, listing)
    return list(itertools.chain.from_iterable(listings))


async def _list_with_updates(app: CliContext, env_names: Sequence[str], *, show_all: bool,
                             filters: Filters) -> list[tuple[Container, UpdateStatus]]:
    """The containers, each with whether its registry has a newer image (``--updates``)."""
    from ..engine._image_updates import check_updates

    async def listing(environment: Environment) -> list[tuple[Container, UpdateStatus]]:
        containers = await environment.containers.list(all=show_all, filters=filters)
        statuses = await check_updates(environment, containers) if containers else {}
        return [(container, statuses[container.id]) for container in containers]

    listings = await app.gather(env_names, listing)
    return list(itertools.chain.from_iterable(listings))


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True,
              help="Show every container (default: running ones only).")
@click.option("--updates", is_flag=True,
              help="Add an UPDATE column: whether the registry's tag now names a newer "
                   "image than the container runs (one registry request per image).")
@filter_option
@env_option
@json_option
@pass_app
def ps(app: CliContext, show_all: bool, updates: bool, filters: Filters,
       env_names: tuple[str, ...], as_json: bool) -> None:
    """List containers of the selected environments in one table.

    An environment that cannot answer gets a warning on stderr; the others are listed.
    """
    if updates:
        from ..engine._image_updates import update_cell

        checked = asyncio.run(_list_with_updates(app, env_names, show_all=show_all,
                                                 filters=filters))
        if as_json:
            echo_json([{**container_record(c), "update": status.to_dict()}
                       for c, status in checked])
        else:
            click.echo(render_table((*PS_HEADERS[:3], "UPDATE", *PS_HEADERS[3:]), [
                [*row[:3], update_cell(status), *row[3:]]
                for row, status in ((container_row(c), s) for c, s in checked)]))
        return
    containers = asyncio.run(_list_containers(app, env_names, show_all=show_all,
                                              filters=filters))
    if as_json:
        echo_json([container_record(container) for container in containers])
    else:
        click.echo(render_table(PS_HEADERS, [container_row(c) for c in containers]))


# -- logs ----------------------------------------------------------------------------


def _tail(ctx: click.Context, param: click.Parameter, value: str) -> int | Literal["all"]:
    if value == "all":
        return "all"
    try:
        lines = int(value)
    except ValueError:
        lines = -1
    if lines < 0:
        raise click.BadParameter(f"{value!r} is neither a line count nor 'all'",
                                 ctx=ctx, param=param)
    return lines


def write_log_lines(lines: Sequence[LogLine]) -> None:
    """Print log lines, stdout lines on stdout and stderr lines on stderr.

    Consecutive lines of one stream are written at once: a log of 100,000 lines is a
    few writes per network read, not one per line.
    """
    for stream, run in itertools.groupby(lines, key=lambda line: line.stream):
        click.echo("\n".join(str(line) for line in run), err=stream == "stderr")


async def _print_logs(app: CliContext, env_names: Sequence[str], name: str, *,
                      follow: bool, tail: int | Literal["all"], since: float | None,
                      until: float | None, timestamps: bool) -> None:
    async with app.environment(env_names) as environment:
        container = await environment.containers.get(name)
        async for batch in container.log_batches(
                follow=follow, tail=tail, since=engine_time(since), until=engine_time(until),
                timestamps=timestamps):
            write_log_lines(batch)


@click.command()
@click.argument("container")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until the container stops (or Ctrl-C).")
@click.option("--tail", default="all", show_default=True, metavar="N", callback=_tail,
              help="Only the last N lines ('all' for every line).")
@time_option("--since", "Only lines written after this time")
@time_option("--until", "Only lines written before this time")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@one_env_option
@pass_app
def logs(app: CliContext, container: str, follow: bool, tail: int | Literal["all"],
         since: float | None, until: float | None, timestamps: bool,
         env_names: tuple[str, ...]) -> None:
    """Print the log of CONTAINER (its stderr lines on stderr)."""
    asyncio.run(_print_logs(app, env_names, container, follow=follow, tail=tail, since=since,
                            until=until, timestamps=timestamps))


# -- start / stop / restart / rm -----------------------------------------------------

ContainerAction = Callable[[Container], Awaitable[None]]


async def _act_on_containers(app: CliContext, env_names: Sequence[str],
                             names: Sequence[str], action: ContainerAction) -> None:
    """Run ``action`` on each named container at once; print each name done, as docker does.

    A container the engine refuses (unknown, in the wrong state) gets an ``Error:`` line
    and the others go on; the exit status is then 1. An unreachable engine stops all.
    """

    async def act(name: str) -> None:
        await action(await environment.containers.get(name))

    async with app.environment(env_names) as environment:
        outcomes = await asyncio.gather(*(act(name) for name in names),
                                        return_exceptions=True)
    refused: list[EngineAPIError] = []
    for name, outcome in zip(names, outcomes, strict=True):
        if outcome is None:
            click.echo(name)
        elif isinstance(outcome, EngineAPIError):
            refused.append(outcome)
        else:
            raise outcome
    if len(names) == 1 and refused:
        raise refused[0]
    for error in refused:
        click.echo(f"Error: {one_line(str(error))}", err=True)
    if refused:
        raise click.exceptions.Exit(1)


_CONTAINERS_ARGUMENT = click.argument("names", metavar="CONTAINER...", nargs=-1,
                                      required=True)
_STOP_TIMEOUT_OPTION = click.option(
    "-t", "--time", "timeout", type=click.IntRange(min=0), metavar="SECONDS",
    help="Seconds to wait for the container to stop before killing it "
         "(default: the engine's, 10).")


@click.command()
@_CONTAINERS_ARGUMENT
@one_env_option
@pass_app
def start(app: CliContext, names: tuple[str, ...], env_names: tuple[str, ...]) -> None:
    """Start one or more containers."""

    async def action(container: Container) -> None:
        await container.start()

    asyncio.run(_act_on_containers(app, env_names, names, action))


@click.command()
@_CONTAINERS_ARGUMENT
@_STOP_TIMEOUT_OPTION
@one_env_option
@pass_app
def stop(app: CliContext, names: tuple[str, ...], timeout: int | None,
         env_names: tuple[str, ...]) -> None:
    """Stop one or more containers (SIGTERM, then SIGKILL after --time seconds)."""

    async def action(container: Container) -> None:
        await container.stop(timeout=timeout)

    asyncio.run(_act_on_containers(app, env_names, names, action))


@click.command()
@_CONTAINERS_ARGUMENT
@_STOP_TIMEOUT_OPTION
@one_env_option
@pass_app
def restart(app: CliContext, names: tuple[str, ...], timeout: int | None,
            env_names: tuple[str, ...]) -> None:
    """Restart one or more containers."""

    async def action(container: Container) -> None:
        await container.restart(timeout=timeout)

    asyncio.run(_act_on_containers(app, env_names, names, action))


@click.command()
@_CONTAINERS_ARGUMENT
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True,
              help="Remove the container's anonymous volumes too.")
@one_env_option
@pass_app
def rm(app: CliContext, names: tuple[str, ...], force: bool, volumes: bool,
       env_names: tuple[str, ...]) -> None:
    """Remove one or more containers."""

    async def action(container: Container) -> None:
        await container.remove(force=force, volumes=volumes)

    asyncio.run(_act_on_containers(app, env_names, names, action))


# -- inspect -------------------------------------------------------------------------


async def _inspect_containers(app: CliContext, env_names: Sequence[str],
                              names: Sequence[str]) -> list[dict[str, Any]]:
    async with app.environment(env_names) as environment:
        found = await asyncio.gather(*(environment.containers.get(name) for name in names))
    return [container.attrs for container in found]


@click.command()
@_CONTAINERS_ARGUMENT
@one_env_option
@pass_app
def inspect(app: CliContext, names: tuple[str, ...], env_names: tuple[str, ...]) -> None:
    """Print the engine's JSON description of containers (a list, as docker does)."""
    echo_json(asyncio.run(_inspect_containers(app, env_names, names)))


# -- stats ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerStats:
    """One stats sample and where it comes from."""

    environment: str
    id: str
    sample: StatsSample


STATS_HEADERS = ("NAME", "ENVIRONMENT", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                 "BLOCK I/O", "PIDS")


def stats_row(stats: ContainerStats) -> list[str]:
    """The ``stats`` table row, sizes as ``docker stats`` prints them."""
    sample = stats.sample
    memory = (f"{human_size(sample.memory_usage, binary=True)} / "
              f"{human_size(sample.memory_limit, binary=True)}")
    # Unknown CPU (NaN: nothing to compare with) is "--", as docker stats shows unknowns.
    cpu = f"{sample.cpu_percent:.2f}%" if math.isfinite(sample.cpu_percent) else "--"
    return [sample.container, stats.environment, cpu, memory,
            f"{sample.memory_percent:.2f}%",
            f"{human_size(sample.net_rx)} / {human_size(sample.net_tx)}",
            f"{human_size(sample.block_read)} / {human_size(sample.block_write)}",
            str(sample.pids)]


def stats_record(stats: ContainerStats) -> dict[str, Any]:
    """The ``stats --json`` object (stable keys, sizes in bytes)."""
    sample = stats.sample
    return {"environment": stats.environment, "id": stats.id, "name": sample.container,
            "read": sample.read,  # unknown CPU is null: NaN is not JSON
            "cpu_percent": sample.cpu_percent if math.isfinite(sample.cpu_percent) else None,
            "memory_usage": sample.memory_usage, "memory_limit": sample.memory_limit,
            "memory_percent": sample.memory_percent, "net_rx": sample.net_rx,
            "net_tx": sample.net_tx, "block_read": sample.block_read,
            "block_write": sample.block_write, "pids": sample.pids}


async def _sample(containers: Sequence[Container], *,
                  skip_refused: bool) -> list[ContainerStats]:
    """One sample of each container, taken at once.

    With ``skip_refused``, a container the engine refuses to sample (it stopped since it
    was listed) is left out instead of failing the command.
    """
    outcomes = await asyncio.gather(*(container.stats() for container in containers),
                                    return_exceptions=True)
    samples = []
    for container, outcome in zip(containers, outcomes, strict=True):
        if isinstance(outcome, EngineAPIError) and skip_refused:
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        samples.append(ContainerStats(container.environment, container.id, outcome))
    return samples


async def _stats_round(environments: Sequence[Environment], names: Sequence[str],
                       filters: Filters) -> list[ContainerStats]:
    if names:
        if len(environments) != 1:
            raise CommandError("stats of named containers needs one environment (--env)")
        environment = environments[0]
        found = await asyncio.gather(*(environment.containers.get(n) for n in names))
        return await _sample(found, skip_refused=False)

    async def running(environment: Environment) -> list[ContainerStats]:
        containers = await environment.containers.list(filters=filters)
        return await _sample(containers, skip_refused=True)

    rounds = await gather_from_environments(environments, running)
    return list(itertools.chain.from_iterable(rounds))


def _show_stats(samples: Sequence[ContainerStats], *, as_json: bool, stream: bool,
                first: bool) -> None:
    if as_json and stream:
        for stats in samples:
            echo_json_line(stats_record(stats))
    elif as_json:
        echo_json([stats_record(stats) for stats in samples])
    else:
        if stream and sys.stdout.isatty():
            click.clear()  # redraw in place
        elif not first:
            click.echo()  # a pipe gets one table after another, a blank line apart
        click.echo(render_table(STATS_HEADERS, [stats_row(stats) for stats in samples]))


async def _print_stats(app: CliContext, env_names: Sequence[str], names: Sequence[str], *,
                       filters: Filters, stream: bool, interval: float,
                       as_json: bool) -> None:
    # Named containers live in one environment; without names, every environment that
    # can be opened is sampled and one that cannot is only warned about.
    opening = app.environments if names else app.available_environments
    async with opening(env_names) as environments:
        for round_number in itertools.count():
            samples = await _stats_round(environments, names, filters)
            _show_stats(samples, as_json=as_json, stream=stream, first=round_number == 0)
            if not stream:
                return
            await asyncio.sleep(interval)


@click.command()
@click.argument("names", metavar="[CONTAINER]...", nargs=-1)
@click.option("--stream", is_flag=True,
              help="Keep sampling and redrawing until Ctrl-C (--json: one line per sample).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              metavar="SECONDS", help="With --stream, seconds between samples.")
@filter_option
@env_option
@json_option
@pass_app
def stats(app: CliContext, names: tuple[str, ...], stream: bool, interval: float,
          filters: Filters, env_names: tuple[str, ...], as_json: bool) -> None:
    """Show CPU, memory, network and disk use of containers (default: all running ones).

    Named containers must be in one environment; without names every running container
    of the selected environments is sampled.
    """
    asyncio.run(_print_stats(app, env_names, names, filters=filters, stream=stream,
                             interval=interval, as_json=as_json))


# -- events --------------------------------------------------------------------------


def event_record(event: Event) -> dict[str, Any]:
    """The ``events --json`` object (stable keys; time in seconds since the epoch)."""
    return {"environment": event.environment, "time": event.time, "type": event.type,
            "action": event.action, "id": event.actor_id, "name": event.name,
            "attributes": dict(event.attributes)}


def event_line(event: Event) -> str:
    """``TIME ENVIRONMENT TYPE ACTION ID (key=value, ...)``, as ``docker events`` prints."""
    when = datetime.fromtimestamp(event.time, tz=UTC).isoformat(timespec="microseconds")
    attributes = ", ".join(f"{key}={value}" for key, value in sorted(event.attributes.items()))
    actor = event.actor_id[:12] if len(event.actor_id) == 64 else event.actor_id
    return f"{when} {event.environment} {event.type} {event.action} {actor} ({attributes})"


@dataclass(frozen=True)
class _StreamEnded:
    """Sent by an environment's event reader when its stream ends or breaks."""

    environment: str
    error: Exception | None


async def _read_events(environment: Environment, queue: asyncio.Queue[Event | _StreamEnded],
                       *, filters: Filters, since: float | None, until: float | None) -> None:
    error: Exception | None = None
    try:
        async for event in environment.events(filters=filters, since=engine_time(since),
                                              until=engine_time(until)):
            await queue.put(event)
    except Exception as failure:  # reported by the printer, which knows the other streams
        error = failure
    await queue.put(_StreamEnded(environment.name, error))


async def _print_merged_events(queue: asyncio.Queue[Event | _StreamEnded], streams: int, *,
                               as_json: bool) -> None:
    """Print events from ``streams`` readers as they come, until every stream ended."""
    errors: list[Exception] = []
    ended = 0
    while ended < streams:
        item = await queue.get()
        if isinstance(item, Event):
            if as_json:
                echo_json_line(event_record(item))
            else:
                click.echo(event_line(item))
            continue
        ended += 1
        if item.error is not None:
            if streams == 1:
                raise item.error
            errors.append(item.error)
            warn_environment_failed(item.environment, item.error)
    if errors and len(errors) == streams:
        raise all_failed_error(errors)


async def _stream_events(app: CliContext, env_names: Sequence[str], *, filters: Filters,
                         since: float | None, until: float | None, as_json: bool) -> None:
    async with app.available_environments(env_names) as environments:
        queue: asyncio.Queue[Event | _StreamEnded] = asyncio.Queue()
        readers = [asyncio.create_task(_read_events(env, queue, filters=filters, since=since,
                                                    until=until))
                   for env in environments]
        try:
            await _print_merged_events(queue, len(readers), as_json=as_json)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


@click.command()
@time_option("--since", "Show events from this time on (default: now)")
@time_option("--until", "Stop at this time (default: stream until Ctrl-C)")
@filter_option
@env_option
@json_option
@pass_app
def events(app: CliContext, since: float | None, until: float | None, filters: Filters,
           env_names: tuple[str, ...], as_json: bool) -> None:
    """Stream engine events (container create, start, die...) of the selected environments.

    Events of several environments are printed as they arrive. --json prints one JSON
    object per line.
    """
    asyncio.run(_stream_events(app, env_names, filters=filters, since=since, until=until,
                               as_json=as_json))
