"""What the live tables share: :class:`LiveTable`, the base of
:class:`~._container_list.ContainerList` and :class:`~._event_feed.EventFeed`, and the
pieces it is made of.

- :func:`open_environments` turns a widget's ``environments`` argument into open
  :class:`~ghostpanel_kernel.engine.Environment` objects, and says which of them the
  widget opened (and must close);
- :func:`follow_events` follows one environment's event stream and comes back after its
  engine went away (with :func:`~._follower.keep_following`, as the log stream does);
- :class:`EnvironmentHealth` says which environments are unreachable in a widget's
  :class:`~._status.StatusLine`;
- :func:`tabulator_view` makes the read-only Panel ``Tabulator`` both tables are, offline.

How a follower behaves: it asks for the events first, then runs its ``connect`` step (a
ping, or a listing for ``ContainerList``), so that nothing that happens after the
listing is missed; then it hands each event to the widget. When the engine cannot be
reached, or the stream breaks or ends, the widget's status line names the environment
and says when the next try is; tries are spaced 0.5 s, 1 s, 2 s... up to ``retry_max``
seconds, and the first one that answers runs ``connect`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Union

import ipywidgets
from traitlets import Float, Int, TraitError, validate

from ghostpanel_kernel.engine import EngineConnectionError, Environment, Event

from ._base import close_widget_tree
from ._follower import Backoff, Tasks, keep_following, wait_ended
from ._panel import load_panel
from ._status import StatusLine, describe_error

if TYPE_CHECKING:
    import pandas as pd
    from panel.widgets import Tabulator

    from ghostpanel_kernel.environments import EnvironmentSpec

__all__ = [
    "EnvironmentHealth",
    "EnvironmentsArg",
    "LiveTable",
    "close_later",
    "follow_events",
    "open_environments",
    "running_loop",
    "tabulator_view",
]

_log = logging.getLogger("ghostpanel_widgets")

#: What a live widget accepts as its environments.
EnvironmentsArg = Union["Environment", "EnvironmentSpec",
                        Iterable[Union["Environment", "EnvironmentSpec"]]]

# Time for the events request to reach the engine before ``connect`` reads the state
# the events will then keep up to date (a listing): what changes in between is missed.
_SUBSCRIBE_GRACE = 0.02

_END = object()  # the engine closed the events stream


def open_environments(environments: EnvironmentsArg) -> tuple[list[Environment],
                                                               list[Environment]]:
    """The environments a widget shows, and those of them it opened (and must close).

    ``environments`` is an :class:`Environment`, an ``EnvironmentSpec`` (opened here), or
    an iterable of them; names must be unique, since rows and events are told apart by
    environment name.

    Raises
    ------
    TypeError
        Something else was given.
    ValueError
        No environment, or two with the same name.
    """
    from ghostpanel_kernel.environments import EnvironmentSpec

    items: list[Any]
    if isinstance(environments, (Environment, EnvironmentSpec)):
        items = [environments]
    elif isinstance(environments, (str, bytes)) or not isinstance(environments, Iterable):
        raise TypeError("environments must be an Environment, an EnvironmentSpec or a list "
                        f"of them, not {type(environments).__name__}")
    else:
        items = list(environments)
    opened: list[Environment] = []
    result: list[Environment] = []
    for item in items:
        if isinstance(item, EnvironmentSpec):
            environment = item.open()
            opened.append(environment)
            result.append(environment)
        elif isinstance(item, Environment):
            result.append(item)
        else:
            raise TypeError("environments must be Environment or EnvironmentSpec objects, "
                            f"not {type(item).__name__}")
    names = [environment.name for environment in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two environments are named {', '.join(map(repr, duplicates))}: "
                         "rows are told apart by environment name")
    return result, opened


# Tasks started by close() that nobody awaits: referenced here until they end, or the
# loop could collect them half-way ("Task was destroyed but it is pending").
_closing: set[asyncio.Task[None]] = set()


def close_later(environments: Iterable[Environment]) -> None:
    """Close ``environments`` on the running loop, without waiting (for ``close()``,
    which is synchronous as ipywidgets defines it); nothing to do without a loop."""
    loop = running_loop("Closing environments")
    if loop is None:
        return
    for environment in environments:
        task = loop.create_task(environment.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


def running_loop(action: str, status: StatusLine | None = None) -> asyncio.AbstractEventLoop | None:
    """The running event loop (a kernel's own), or None, said in ``status`` if given."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        if status is not None:
            status.error(f"{action} needs a running asyncio event loop; a Jupyter kernel "
                         "has one, a plain script does not.")
        return None


async def _pump(environment: Environment, filters: Mapping[str, Any] | None,
                since: float | None, queue: asyncio.Queue[Any]) -> None:
    try:
        async with contextlib.aclosing(
                environment.events(filters=filters, since=since)) as events:  # type: ignore[type-var]
            async for event in events:
                queue.put_nowait(event)
        queue.put_nowait(_END)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # handed to the follower, which decides
        queue.put_nowait(error)


async def follow_events(
        environment: Environment, *,
        filters: Mapping[str, Any] | None,
        on_event: Callable[[Environment, Event], None],
        on_up: Callable[[Environment], None],
        on_down: Callable[[Environment, BaseException, float | None], None],
        connect: Callable[[Environment], Awaitable[Any]] | None = None,
        since: Callable[[], float | None] | None = None,
        retry_delays: Callable[[], tuple[float, float]] = lambda: (0.5, 10.0)) -> None:
    """Follow ``environment``'s events until cancelled, re-connecting with backoff.

    Parameters
    ----------
    filters
        Engine event filters, e.g. ``{"type": ["container"]}``.
    on_event
        Called with each event, in order. What it raises is logged, not fatal.
    on_up
        Called once the engine answered ``connect`` (first time, and after each outage).
    on_down
        Called with the error and the seconds until the next try when the engine cannot
        be reached or the stream broke; with None when the environment was closed (the
        follower then ends).
    connect
        Run after the events request went out: read the state the events then keep up
        to date (a listing). ``env.ping()`` when None.
    since
        Called before each (re)connection: the engine time to replay events from (the
        time of the last event seen), or None for live events only.
    retry_delays
        ``(first, most)`` seconds between tries, read before each wait.
    """
    async def session(backoff: Backoff) -> float | None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(_pump(environment, filters,
                                         since() if since is not None else None, queue))
        try:
            await asyncio.sleep(_SUBSCRIBE_GRACE)
            if connect is not None:
                await connect(environment)
            else:
                await environment.ping()
            backoff.reset()
            on_up(environment)
            while True:
                item = await queue.get()
                if item is _END:
                    raise EngineConnectionError("the engine ended its events stream",
                                                endpoint=environment.url)
                if isinstance(item, BaseException):
                    raise item
                try:
                    on_event(environment, item)
                except Exception:  # a widget bug must not stop the feed
                    _log.exception("handling %s event %s %s failed", environment.name,
                                   item.type, item.action)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    await keep_following(
        session, what=environment.name, retry_delays=retry_delays,
        on_down=lambda error, retry: on_down(environment, error, retry),
        closed=lambda: environment.client.closed)  # by its owner: nothing to wait for


class EnvironmentHealth:
    """Which environments answer, said in a status line.

    While one or more cannot be reached the line is red and names each one with the
    engine's error and the next try; when one comes back the line says so in green.
    """

    def __init__(self, status: StatusLine) -> None:
        self._status = status
        self._down: dict[str, str] = {}

    @property
    def down(self) -> list[str]:
        """Names of the environments that cannot be reached now."""
        return list(self._down)

    def is_down(self, name: str) -> bool:
        return name in self._down

    def went_down(self, environment: Environment, error: BaseException,
                  retry: float | None) -> None:
        """Say that ``environment`` cannot be reached (and the next try in ``retry`` s)."""
        then = f"; retrying in {retry:g} s" if retry is not None else ""
        self._down[environment.name] = (f"environment {environment.name!r} is unreachable: "
                                        f"{describe_error(error)}{then}")
        self.render()

    def came_up(self, environment: Environment, detail: str = "") -> bool:
        """Note that ``environment`` answers; True when it had been down."""
        was_down = self._down.pop(environment.name, None) is not None
        if was_down:
            if self._down:
                self.render()
            else:
                self._status.success(f"Environment {environment.name!r} is back{detail}.")
        return was_down

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            self._down.pop(name, None)

    def render(self) -> None:
        if self._down:
            text = "; ".join(self._down.values())
            self._status.error(text[0].upper() + text[1:] + ".")


# -- Panel's Tabulator, offline -----------------------------------------------------

_tabulator_css: str | None = None


def _tabulator_stylesheet(pn: Any) -> str:
    """Tabulator's ``simple`` theme from the copy bundled with Panel: the theme Panel
    links by default comes from a CDN, which a Bolt host's notebook cannot reach."""
    global _tabulator_css
    if _tabulator_css is None:
        from pathlib import Path

        folder = Path(pn.__file__).parent / "dist" / "bundled" / "datatabulator"
        found = sorted(folder.glob("tabulator-tables@*/dist/css/tabulator_simple.min.css"))
        _tabulator_css = found[-1].read_text(encoding="utf-8") if found else ""
    return _tabulator_css


def tabulator_view(frame: pd.DataFrame, **options: Any) -> tuple[Tabulator, Any]:
    """A read-only Panel ``Tabulator`` over ``frame`` (remote pagination, header sort,
    the bundled stylesheet) and its ipywidget, which holds the table's changes until a
    browser shows it (:func:`~._panel.panel_ipywidget`)."""
    pn = load_panel("tabulator")
    css = _tabulator_stylesheet(pn)
    options.setdefault("pagination", "remote")
    options.setdefault("page_size", 25)
    # Draw every row of the page: Tabulator's default (virtual) renderer draws only the
    # rows its box can show, and a table that gets its rows while its box has no height
    # (a JupyterLab cell off screen, laid out lazily) draws none, and stays empty.
    options.setdefault("configuration", {"renderVertical": "basic"})
    table = pn.widgets.Tabulator(
        frame, show_index=False, disabled=True, layout="fit_data_stretch",
        sizing_mode="stretch_width", stylesheets=[css] if css else [], **options)
    return table, pn.ipywidget(table)



# -- the base ------------------------------------------------------------------------


class LiveTable(ipywidgets.VBox):
    """Base of the tables kept current by the engines' events.

    It holds the environments (those given as specs are opened here and closed by
    :meth:`close`), one follower task per environment (:func:`follow_events`), the
    status line and its :class:`EnvironmentHealth`, and the table's updates: changes
    are gathered and applied together, ``_FLUSH_DELAY`` seconds later at most.

    A subclass's ``__init__`` calls :meth:`_open` first (what :meth:`close` needs, and
    the environments: bad arguments build nothing), then builds its table and controls,
    calls ``super().__init__(**kwargs)`` (trait values given as keyword arguments may
    touch those controls) and :meth:`start`. It defines :meth:`_on_event` and
    :meth:`_update_table`, and may override :meth:`_connect` (what is read once the
    events were asked for), :meth:`_since`, :meth:`_up_detail`, :meth:`_started`,
    :meth:`_stop_tasks`, :meth:`_running_tasks` and :meth:`_environments_changed`.

    Examples
    --------
    >>> class Actions(LiveTable):                                        # doctest: +SKIP
    ...     def __init__(self, environments, **kwargs):
    ...         self._open(environments)
    ...         self.seen = []
    ...         super().__init__(**kwargs)
    ...         self.children = [self.status]
    ...         self.start()
    ...
    ...     def _on_event(self, environment, event):
    ...         self.seen.append(event.action)
    """

    retry_max = Float(10.0, help="Most seconds between tries to reach an engine that went "
                      "away (tries start at 0.5 s and double).").tag(sync=True)
    revision = Int(0, help="Bumped each time the table changes (kernel side).")

    #: Engine event filters (``{"type": ["container"]}``); None for every event.
    _EVENT_FILTERS: ClassVar[Mapping[str, Any] | None] = None
    #: What following is called when the status line says it needs an event loop.
    _FOLLOWING: ClassVar[str] = "Following events"
    #: Seconds a change waits for others to be applied with it; 0: until the end of
    #: this turn of the event loop.
    _FLUSH_DELAY: ClassVar[float] = 0.0
    #: Whether :meth:`start` follows the engines' events.
    _live = True

    def _open(self, environments: EnvironmentsArg) -> None:
        """Take ``environments`` (opening the specs among them), make the status line."""
        self._followers = Tasks()  # one per environment, by name
        self._ready: dict[str, asyncio.Event] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._environments, self._owned = open_environments(environments)
        self.status = StatusLine()
        self.health = EnvironmentHealth(self.status)

    def __init__(self, **kwargs: Any) -> None:
        if "_environments" not in self.__dict__:
            raise TypeError(f"{type(self).__name__}.__init__ must call self._open("
                            "environments) before LiveTable.__init__")
        super().__init__(**kwargs)
        # Only now has close() something to undo; until then it leaves the widget to
        # ipywidgets, which closes even a widget whose __init__ raised (at collection).
        self._closed = False

    @validate("retry_max")
    def _valid_retry_max(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if not seconds > 0:
            raise TraitError(f"retry_max must be more than 0 seconds, not {seconds}")
        return seconds

    @property
    def environments(self) -> list[Environment]:
        """The environments shown."""
        return list(self._environments)

    # -- lifecycle
    def start(self) -> None:
        """Follow every environment's events (done on construction when a loop runs)."""
        loop = running_loop(self._FOLLOWING, self.status)
        if loop is None or self._closed:
            return
        for environment in self._environments:
            self._ready_event(environment.name)
            if self._live:
                if not self._followers.running(environment.name):
                    self._followers.start(environment.name, self._follow(environment),
                                          name=f"{type(self).__name__} {environment.name}")
        self._started(loop)

    async def ready(self, timeout: float | None = 30.0) -> None:
        """Wait until every environment answered once (or was found unreachable)."""
        async with asyncio.timeout(timeout):
            for environment in self._environments:
                await self._ready_event(environment.name).wait()

    def set_environments(self, environments: EnvironmentsArg) -> None:
        """Show other environments (an :class:`EnvironmentPicker` can drive this); the
        ones opened here before are closed."""
        new, opened = open_environments(environments)
        self._stop_tasks()
        self._close_owned()
        self.health.forget([environment.name for environment in self._environments])
        self._environments, self._owned = new, opened
        self._ready = {}
        self._environments_changed()
        self.status.clear()
        self.start()

    def close(self) -> None:
        """Stop every task, close the environments opened here, close the views."""
        if getattr(self, "_closed", True):  # close_widget_tree(self) comes back here
            super().close()
            return
        self._closed = True
        self._stop_tasks()
        self._close_owned()
        self._cancel_flush()
        close_widget_tree(self)

    async def aclose(self) -> None:
        """:meth:`close`, and wait until its tasks have ended and the environments
        opened here are closed."""
        tasks = self._running_tasks()
        owned, self._owned = self._owned, []
        self.close()
        for task in tasks:
            task.cancel()
        await wait_ended(tasks)
        for environment in owned:
            await environment.aclose()

    def _started(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start what else the widget runs; :meth:`start` calls it with the loop."""

    def _running_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks :meth:`aclose` waits for."""
        return self._followers.tasks()

    def _stop_tasks(self) -> None:
        """Cancel the widget's tasks (and forget them)."""
        self._followers.cancel()

    def _environments_changed(self) -> None:
        """Forget what was shown of the environments :meth:`set_environments` replaced."""

    def _close_owned(self) -> None:
        owned, self._owned = self._owned, []
        close_later(owned)

    # -- following the engines
    def _ready_event(self, name: str) -> asyncio.Event:
        return self._ready.setdefault(name, asyncio.Event())

    async def _follow(self, environment: Environment) -> None:
        await follow_events(
            environment, filters=self._EVENT_FILTERS, connect=self._connect,
            on_event=self._on_event, on_up=self._on_up, on_down=self._on_down,
            since=lambda: self._since(environment),
            retry_delays=lambda: (min(0.5, self.retry_max), self.retry_max))

    async def _connect(self, environment: Environment) -> None:
        """Read what the events keep current, once they were asked for (a ping here)."""
        await environment.ping()

    def _since(self, environment: Environment) -> float | None:
        """The engine time to replay ``environment``'s events from on a (re)connection;
        None: live events only."""
        return None

    def _up_detail(self, environment: Environment) -> str:
        """What the status line adds when ``environment`` is back (", 3 containers")."""
        return ""

    def _on_up(self, environment: Environment) -> None:
        self.health.came_up(environment, self._up_detail(environment))
        self._ready_event(environment.name).set()

    def _on_down(self, environment: Environment, error: BaseException,
                 retry: float | None) -> None:
        self.health.went_down(environment, error, retry)
        self._ready_event(environment.name).set()

    def _on_event(self, environment: Environment, event: Event) -> None:
        """Take one event of ``environment`` in (what it raises is logged)."""
        raise NotImplementedError

    # -- the table
    def _schedule_flush(self, *, now: bool = False) -> None:
        """Apply the changes gathered so far soon (``_FLUSH_DELAY``), or ``now``."""
        if now:
            self._flush()
            return
        if self._flush_handle is not None:
            return
        loop = running_loop("Updating the table")
        if loop is None:
            self._flush()
        elif self._FLUSH_DELAY > 0:
            self._flush_handle = loop.call_later(self._FLUSH_DELAY, self._flush)
        else:
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._cancel_flush()
        if not getattr(self, "_closed", True):
            self._update_table()

    def _cancel_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def _update_table(self) -> None:
        """Show the changes gathered since the last update in the table."""
        raise NotImplementedError
