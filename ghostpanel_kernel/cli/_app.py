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
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from .._labels import split_key_value
from .._units import parse_duration_ns
from ..engine import EngineConnectionError, Environment, GhostPanelError
from ..engine._times import api_time
from ._output import CommandError, EngineUnreachable, exit_codes_for_errors, warn

if TYPE_CHECKING:
    from ..environments import EnvironmentRegistry, FanOutResult
    from ..store import StoreError

__all__ = [
    "FAN_OUT_CONNECT_TIMEOUT",
    "FAN_OUT_RESPONSE_TIMEOUT",
    "CliContext",
    "CommandGroup",
    "ConfigurationError",
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
    "agent": "._agent:agent",
    "alerts": "._alerts:alerts",
    "audit": "._audit:audit",
    "boltfile": "._boltfile:boltfile",
    "env": "._env:env",
    "gateway": "._gateway:gateway",
    "gpu": "._gpus:gpu",
    "hub": "._hub:hub",
    "events": "._containers:events",
    "images": "._resources:images",
    "info": "._env:info",
    "inspect": "._containers:inspect",
    "lab": "._up:lab",
    "logs": "._containers:logs",
    "metrics": "._metrics:metrics",
    "networks": "._resources:networks",
    "ps": "._containers:ps",
    "pull": "._resources:pull",
    "restart": "._containers:restart",
    "rm": "._containers:rm",
    "runbook": "._runbook:runbook",
    "snapshot": "._snapshots:snapshot",
    "start": "._containers:start",
    "stats": "._containers:stats",
    "stop": "._containers:stop",
    "surge": "._surge:surge",
    "template": "._template:template",
    "up": "._up:up",
    "version": "._env:version",
    "volumes": "._resources:volumes",
}


class ConfigurationError(CommandError):
    """A setting GhostPanel reads cannot work (``GHOSTPANEL_DATABASE_URL``, the home
    directory): exit status 2, as for a bad option, since retrying will not help."""

    exit_code = 2


def _as_configuration_error(error: GhostPanelError) -> ConfigurationError | None:
    """The :class:`ConfigurationError` for a registry that cannot be opened, else None."""
    # The store (and SQLAlchemy) is imported only by commands that use the registry;
    # if it is not imported, this error cannot come from it.
    store = sys.modules.get(f"{__package__.rpartition('.')[0]}.store")
    if store is not None and isinstance(error, store.StoreConfigurationError):
        return ConfigurationError(str(error))
    return None


class CommandGroup(click.Group):
    """A click group whose commands report errors as one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command, mapping errors with :func:`exit_codes_for_errors`
        (and a registry that cannot be opened to :class:`ConfigurationError`)."""
        with exit_codes_for_errors():
            try:
                return super().invoke(ctx)
            except GhostPanelError as error:
                configuration = _as_configuration_error(error)
                if configuration is None:
                    raise
                raise configuration from error


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
    # SQLAlchemy: only when needed. In a JupyterHub session: the gateway's environments.
    from ..environments import session_registry

    return session_registry()


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


#: Seconds a fan-out command gives each environment to accept the connection, and then
#: to start answering a request (the head of the answer: Podman's slowest, /version,
#: takes ~0.5 s). A host that never completes the TCP handshake, or accepts and stays
#: silent, costs one of these rather than the library's defaults, and then its health
#: record skips it for 30 s (--retry forces). Chosen so that a listing over many hosts
#: with dead ones among them answers within 3.5 s.
FAN_OUT_CONNECT_TIMEOUT = 2.0
FAN_OUT_RESPONSE_TIMEOUT = 2.5


@dataclass
class CliContext:
    """What commands share in one invocation: how to reach the registry and engines.

    Parameters
    ----------
    open_environments
        Opens the environments that ``--env`` names select (``[]`` → the default one).
        Unit tests pass a function returning environments on ``httpx.MockTransport``.
        None (the default) means the registry's environments: fan-out commands then
        open each one inside its own isolation (see :meth:`gather`) and keep their
        health in the registry.
    registry_factory
        Makes the environment registry the ``env`` commands change.
    retry
        Fan-out commands try environments that failed moments ago too (``--retry``).

    Examples
    --------
    >>> runner.invoke(cli, ["ps"], obj=CliContext(open_environments=fake))  # doctest: +SKIP
    """

    open_environments: EnvironmentOpener | None = None
    registry_factory: Callable[[], EnvironmentRegistry] = field(default=_default_registry)
    retry: bool = False

    async def gather(self, names: Sequence[str],
                     operation: Callable[[Environment], Awaitable[T]]) -> list[T]:
        """Run ``operation`` on every environment ``names`` select; their answers.

        As :func:`gather_from_environments` reports failures. With the registry's
        environments each is opened inside the fan-out, so one that cannot even be
        opened (a deleted CA file) is that environment's failure, not the command's;
        one that failed within the last 30 s is skipped with a warning saying since
        when and why, unless :attr:`retry` is set; and every outcome is recorded.
        """
        if self.open_environments is not None:
            async with self.environments(names) as environments:
                return await gather_from_environments(environments, operation)
        from ..environments import fan_out_with_health

        registry = self.registry_factory()
        try:
            specs = registry.select(list(names) or None)
            # The timeouts are given to each environment as it is opened, so that a
            # dead host costs its connect (or first-answer) timeout, once.
            targets = [spec.with_timeouts(connect=FAN_OUT_CONNECT_TIMEOUT,
                                          response=FAN_OUT_RESPONSE_TIMEOUT)
                       for spec in specs]
            results = await fan_out_with_health(registry, targets, operation,
                                                retry=self.retry,
                                                on_store_error=_warn_health_not_recorded)
        finally:
            registry.close()
        return collect_fan_out(results)

    @asynccontextmanager
    async def environments(self, names: Sequence[str]) -> AsyncIterator[list[Environment]]:
        """The environments ``names`` select, open for the ``async with`` block."""
        opener = self.open_environments or open_registered_environments
        opened = opener(names)
        try:
            yield opened
        finally:
            for environment in opened:
                await environment.aclose()

    @asynccontextmanager
    async def available_environments(self, names: Sequence[str]
                                     ) -> AsyncIterator[list[Environment]]:
        """:meth:`environments`, less those that cannot be opened, for streaming
        commands over several environments (``stats``, ``events``).

        Each environment is opened on its own: one that cannot be (a deleted CA file)
        gets a warning and is left out while the others stream. Its error is raised
        when it was the only one selected; :func:`all_failed_error` when none opened.
        """
        if self.open_environments is not None:
            async with self.environments(names) as given:
                yield given
            return
        registry = self.registry_factory()
        try:
            specs = registry.select(list(names) or None)
        finally:
            registry.close()
        opened: list[Environment] = []
        errors: list[BaseException] = []
        try:
            for spec in specs:
                try:
                    opened.append(spec.open())
                except (GhostPanelError, ValueError, OSError) as error:
                    if len(specs) == 1:
                        raise
                    errors.append(error)
                    warn_environment_failed(spec.name, error)
            if not opened:
                raise all_failed_error(errors)
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
    """Print the one-line warning for an environment that failed among several.

    One that was skipped for a recent failure says so, since when and why, and how to
    try it anyway.
    """
    from ..environments import EnvironmentSkipped  # imported already if one was skipped

    if isinstance(error, EnvironmentSkipped):
        warn(f"environment {name!r} {error}; --retry tries it now")
        return
    warn(f"environment {name!r} failed: {str(error) or type(error).__name__}")


def all_failed_error(errors: Sequence[BaseException]) -> CommandError:
    """The error for a command whose environments all failed (each already warned of).

    :class:`EngineUnreachable` (exit 3) when none could be reached, else
    :class:`CommandError` (exit 1).
    """
    unreachable = all(isinstance(error, EngineConnectionError) for error in errors)
    error_class = EngineUnreachable if unreachable else CommandError
    return error_class(f"all {len(errors)} environments failed")


def _warn_health_not_recorded(error: StoreError) -> None:
    warn(f"environment health not recorded: {error}")


async def gather_from_environments(
        environments: Sequence[Environment],
        operation: Callable[[Environment], Awaitable[T]]) -> list[T]:
    """Run ``operation`` on every environment at once; the answers, in environment order.

    An environment that fails gets a one-line warning on stderr and the others still
    answer. With one environment its error is raised as it is; when several all fail,
    :func:`all_failed_error` is raised. (:meth:`CliContext.gather` does the same for
    environments selected by name, with health.)
    """
    from ..environments import fan_out

    return collect_fan_out(await fan_out(environments, operation))


def collect_fan_out(results: Sequence[FanOutResult[T]]) -> list[T]:
    """The values of a fan-out's results; each failure warned of (see
    :func:`gather_from_environments`)."""
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
    """``--env NAME`` (repeatable) and ``--retry`` for commands that work across
    environments.

    ``--retry`` reaches the command through :attr:`CliContext.retry`, not as an
    argument: every fan-out command has it without a parameter of its own.
    """
    retry = click.option(
        "--retry", is_flag=True, expose_value=False, callback=_set_retry,
        help="Also try environments that failed in the last 30 s (skipped otherwise).")
    return retry(click.option(
        "--env", "env_names", multiple=True, metavar="NAME",
        help="Environment to work on; repeat for several, 'all' for every one. "
             "Default: the default environment (ghostpanel env use).")(function))


def _set_retry(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliContext).retry = True


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
        try:
            key, wanted = split_key_value(item, what="filter")
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        filters.setdefault(key, []).append(wanted)
    return filters


def parse_time(value: str, *, now: float | None = None) -> float:
    """Seconds since the epoch for a ``--since``/``--until`` value.

    Accepted: a duration ago (``90s``, ``10m``, ``1h30m``, ``500ms``: Go's units), a Unix
    time (``1764237600``, ``1764237600.5``) or an RFC 3339 / ISO 8601 time
    (``2026-11-27T10:00:00Z``; without an offset it is local time, as docker reads it).

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
    # A duration as Go reads it (docker's --since too), but "0" stays a Unix time.
    if text != "0":
        try:
            seconds = parse_duration_ns(text) / 1e9
        except ValueError:
            pass
        else:
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
    return api_time(seconds)  # the library's one conversion


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
Exit status: 0 success; 1 an engine or GhostPanel error; 2 a usage error or a
setting that cannot work (GHOSTPANEL_DATABASE_URL, GHOSTPANEL_HOME or --home);
3 an engine could not be reached or is not an engine; 130 interrupted (Ctrl-C;
surge apply and scale roll back, and exit 129 after SIGHUP, 143 after SIGTERM)."""


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
