"""The ``ghostpanel`` command group: global options, environment selection, command table.

Every command that talks to engines takes ``--env NAME`` (repeatable; ``all`` for every
environment; default: the default environment) and, when it lists things, ``--json``.
Listings (``ps``, ``images``...) fan out over the selected environments; commands about
one object (``logs web``, ``pull busybox``) need exactly one environment.

Each invocation runs the async library in one event loop (``asyncio.run``) and closes
the environments it opened. Tests replace how environments are opened by passing their
own :class:`CliContext` as ``obj`` to ``CliRunner.invoke``.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from ..engine import EngineConnectionError, Environment
from ._output import CommandError, EngineUnreachable, exit_codes_for_errors, warn

if TYPE_CHECKING:
    from ..environments import EnvironmentRegistry

__all__ = [
    "CliContext",
    "CommandGroup",
    "all_failed_error",
    "cli",
    "engine_time",
    "env_option",
    "filter_option",
    "gather_from_environments",
    "json_option",
    "one_env_option",
    "open_registered_environments",
    "parse_time",
    "pass_app",
    "time_option",
    "warn_environment_failed",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# -- the command table ---------------------------------------------------------------
#
# Command name -> "module:attribute" of its click command, loaded only when used (as
# ghostpanel_kernel/__init__.py loads its public names). A new command family registers
# here and nowhere else; its module imports what it shares from this one.
# To come, from their own modules:
#     "boltfile": "._boltfile:boltfile",    Boltfile commands (validate, plan, apply...)
#     "surge": "._surge:surge",             surge commands (plan, apply, status...)
_COMMANDS: dict[str, str] = {
    "boltfile": "._boltfile:boltfile",
    "env": "._env:env",
    "events": "._containers:events",
    "images": "._resources:images",
    "info": "._env:info",
    "inspect": "._containers:inspect",
    "lab": "._up:lab",
    "logs": "._containers:logs",
    "networks": "._resources:networks",
    "ps": "._containers:ps",
    "pull": "._resources:pull",
    "restart": "._containers:restart",
    "rm": "._containers:rm",
    "start": "._containers:start",
    "stats": "._containers:stats",
    "stop": "._containers:stop",
    "surge": "._surge:surge",
    "up": "._up:up",
    "version": "._env:version",
    "volumes": "._resources:volumes",
}


class CommandGroup(click.Group):
    """A click group whose commands report errors as one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command, mapping errors with :func:`exit_codes_for_errors`."""
        with exit_codes_for_errors():
            return super().invoke(ctx)


class LazyCommandGroup(CommandGroup):
    """A group whose commands come from a name -> ``"module:attribute"`` table.

    Parameters
    ----------
    lazy_commands
        The table; modules are relative to this package and imported on first use.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, for ``--help``."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, importing its module the first time."""
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(load_command(self.lazy_commands[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)


def load_command(location: str) -> click.Command:
    """Import the click command at ``"module:attribute"`` (module relative to this package)."""
    module_name, _, attribute = location.partition(":")
    command = getattr(importlib.import_module(module_name, __package__), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{location} is not a click command")
    return command


# -- environments --------------------------------------------------------------------

EnvironmentOpener = Callable[[Sequence[str]], list[Environment]]


def _default_registry() -> EnvironmentRegistry:
    from ..environments import EnvironmentRegistry  # SQLAlchemy: only when needed

    return EnvironmentRegistry()


def open_registered_environments(names: Sequence[str]) -> list[Environment]:
    """Open the registered environments ``names`` select (see ``EnvironmentRegistry.select``).

    Raises
    ------
    EnvironmentNotFound
        A name is unknown, or none is given and there is no default environment.
    """
    registry = _default_registry()
    try:
        return [spec.open() for spec in registry.select(list(names) or None)]
    finally:
        registry.close()


@dataclass
class CliContext:
    """What commands share in one invocation: how to reach the registry and engines.

    Parameters
    ----------
    open_environments
        Opens the environments that ``--env`` names select (``[]`` → the default one).
        Unit tests pass a function returning environments on ``httpx.MockTransport``.
    registry_factory
        Makes the environment registry the ``env`` commands change.

    Examples
    --------
    >>> runner.invoke(cli, ["ps"], obj=CliContext(open_environments=fake))  # doctest: +SKIP
    """

    open_environments: EnvironmentOpener = field(default=open_registered_environments)
    registry_factory: Callable[[], EnvironmentRegistry] = field(default=_default_registry)

    @asynccontextmanager
    async def environments(self, names: Sequence[str]) -> AsyncIterator[list[Environment]]:
        """The environments ``names`` select, open for the ``async with`` block."""
        opened = self.open_environments(names)
        try:
            yield opened
        finally:
            for environment in opened:
                await environment.aclose()

    @asynccontextmanager
    async def environment(self, names: Sequence[str]) -> AsyncIterator[Environment]:
        """The one environment ``names`` select (see :func:`one_env_option`)."""
        async with self.environments(names) as opened:
            if len(opened) != 1:
                raise CommandError(f"this command acts on one environment, but "
                                   f"{len(opened)} are selected: "
                                   f"{', '.join(env.name for env in opened)}")
            yield opened[0]


pass_app = click.make_pass_decorator(CliContext, ensure=True)


def warn_environment_failed(name: str, error: BaseException) -> None:
    """Print the one-line warning for an environment that failed among several."""
    warn(f"environment {name!r} failed: {str(error) or type(error).__name__}")


def all_failed_error(errors: Sequence[BaseException]) -> CommandError:
    """The error for a command whose environments all failed (each already warned of).

    :class:`EngineUnreachable` (exit 3) when none could be reached, else
    :class:`CommandError` (exit 1).
    """
    unreachable = all(isinstance(error, EngineConnectionError) for error in errors)
    error_class = EngineUnreachable if unreachable else CommandError
    return error_class(f"all {len(errors)} environments failed")


async def gather_from_environments(
        environments: Sequence[Environment],
        operation: Callable[[Environment], Awaitable[T]]) -> list[T]:
    """Run ``operation`` on every environment at once; the answers, in environment order.

    An environment that fails gets a one-line warning on stderr and the others still
    answer. With one environment its error is raised as it is; when several all fail,
    :func:`all_failed_error` is raised.
    """
    from ..environments import fan_out

    results = await fan_out(environments, operation)
    if len(results) == 1 and results[0].error is not None:
        raise results[0].error
    values: list[T] = []
    errors: list[BaseException] = []
    for result in results:
        if result.error is None:
            values.append(result.value)  # type: ignore[arg-type]  # None only on error
        else:
            errors.append(result.error)
            warn_environment_failed(result.environment, result.error)
    if errors and not values:
        raise all_failed_error(errors)
    return values


# -- options shared by commands ------------------------------------------------------


def env_option(function: F) -> F:
    """``--env NAME`` (repeatable) for commands that work across environments."""
    return click.option(
        "--env", "env_names", multiple=True, metavar="NAME",
        help="Environment to work on; repeat for several, 'all' for every one. "
             "Default: the default environment (ghostpanel env use).")(function)


def one_env_option(function: F) -> F:
    """``--env NAME`` for commands that act on one environment."""
    return click.option(
        "--env", "env_names", multiple=True, metavar="NAME",
        callback=_at_most_one_environment,
        help="Environment to act on. Default: the default environment "
             "(ghostpanel env use).")(function)


def _at_most_one_environment(ctx: click.Context, param: click.Parameter,
                             value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) > 1 or "all" in value:
        raise click.BadParameter(
            "this command acts on one environment; give --env once", ctx=ctx, param=param)
    return value[:1]


def json_option(function: F) -> F:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table.")(function)


def filter_option(function: F) -> F:
    """``--filter KEY=VALUE`` (repeatable), parsed into the engine's filters mapping."""
    return click.option(
        "--filter", "filters", multiple=True, metavar="KEY=VALUE", callback=_parse_filters,
        help="Engine filter, e.g. label=app=web or status=exited; repeatable.")(function)


def _parse_filters(ctx: click.Context, param: click.Parameter,
                   value: tuple[str, ...]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in value:
        key, sep, wanted = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        filters.setdefault(key, []).append(wanted)
    return filters


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_time(value: str, *, now: float | None = None) -> float:
    """Seconds since the epoch for a ``--since``/``--until`` value.

    Accepted: a duration ago (``90s``, ``10m``, ``1h30m``), a Unix time (``1764237600``,
    ``1764237600.5``) or an RFC 3339 / ISO 8601 time (``2026-11-27T10:00:00Z``; without
    an offset it is local time, as docker reads it).

    Raises
    ------
    ValueError
        None of these.

    Examples
    --------
    >>> parse_time("90s", now=1000.0), parse_time("2026-11-27T10:00:00Z")
    (910.0, 1795773600.0)
    """
    text = value.strip()
    if _DURATION.fullmatch(text):
        seconds = sum(float(amount) * _SECONDS_PER[unit]
                      for amount, unit in _DURATION_PART.findall(text))
        return (time.time() if now is None else now) - seconds
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{value!r} is not a time: use a Unix time, an RFC 3339 time "
                         "(2026-11-27T10:00:00Z) or a duration ago (10m, 1h30m)") from None


def engine_time(seconds: float | None) -> str | None:
    """A time as the Engine API takes it: ``seconds.nanoseconds`` since the epoch."""
    return None if seconds is None else f"{seconds:.9f}"


def time_option(name: str, meaning: str) -> Callable[[F], F]:
    """``--since``/``--until``, given to the command as seconds since the epoch."""

    def convert(ctx: click.Context, param: click.Parameter,
                value: str | None) -> float | None:
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None

    def decorate(function: F) -> F:
        return click.option(
            name, metavar="TIME", callback=convert,
            help=f"{meaning}: a Unix time, an RFC 3339 time, or a duration ago "
                 "such as 10m or 1h30m.")(function)

    return decorate


# -- the group -----------------------------------------------------------------------

_EPILOG = """\b
Exit status: 0 success; 1 an engine or GhostPanel error; 2 a usage error;
3 an engine could not be reached; 130 interrupted (Ctrl-C)."""


@click.group(cls=LazyCommandGroup, lazy_commands=_COMMANDS, epilog=_EPILOG,
             context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              envvar="GHOSTPANEL_HOME", show_envvar=True,
              help="GhostPanel's data directory (the environment registry lives there).")
@click.version_option(__version__, "--version", prog_name="ghostpanel",
                      message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """GhostPanel: containers on every Bolt host, from one command.

    Register engines with `ghostpanel env add`, then list and manage what runs on them:
    `ghostpanel ps --env all` shows the containers of every environment in one table.
    """
    if home is not None:
        os.environ["GHOSTPANEL_HOME"] = str(home)  # read by the registry's store
    ctx.ensure_object(CliContext)
