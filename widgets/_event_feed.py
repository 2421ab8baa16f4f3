"""``EventFeed``: the engine events of one or more environments, live, newest first.

This module also holds what every live widget shares: turning the ``environments``
argument into open :class:`~ghostpanel_kernel.engine.Environment` objects
(:func:`open_environments`), following one environment's event stream and coming back
after its engine went away (:func:`follow_events`), and saying which environments are
unreachable in a widget's :class:`~._status.StatusLine` (:class:`EnvironmentHealth`).

How a follower behaves: it asks for the events first, then runs its ``connect`` step (a
ping, or a listing for :class:`~._container_list.ContainerList`), so that nothing that
happens after the listing is missed; then it hands each event to the widget. When the
engine cannot be reached, or the stream breaks or ends, the widget's status line names
the environment and says when the next try is; tries are spaced 0.5 s, 1 s, 2 s... up
to ``retry_max`` seconds, and the first one that answers runs ``connect`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import count
from typing import TYPE_CHECKING, Any, Union

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import (
    EngineConnectionError,
    Environment,
    Event,
    GhostPanelError,
)

from ._panel import load_panel
from ._status import StatusLine, describe_error

if TYPE_CHECKING:
    import pandas as pd
    from panel.widgets import Tabulator

    from ghostpanel_kernel.environments import EnvironmentSpec

__all__ = [
    "EnvironmentHealth",
    "EventFeed",
    "close_later",
    "follow_events",
    "open_environments",
    "tabulator_view",
]

_log = logging.getLogger("ghostpanel_widgets")

#: What a live widget accepts as its environments.
EnvironmentsArg = Union["Environment", "EnvironmentSpec",
                        Iterable[Union["Environment", "EnvironmentSpec"]]]

#: What an engine that cannot be reached raises (a transport error is mapped to
#: ``EngineConnectionError``; an ``OSError`` can still come from TLS files and such).
UNREACHABLE = (GhostPanelError, OSError)

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
    delay: float | None = None
    while True:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(_pump(environment, filters,
                                         since() if since is not None else None, queue))
        try:
            await asyncio.sleep(_SUBSCRIBE_GRACE)
            if connect is not None:
                await connect(environment)
            else:
                await environment.ping()
            delay = None
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
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if environment.client.closed:  # closed by its owner: nothing to wait for
                on_down(environment, error, None)
                return
            if not isinstance(error, UNREACHABLE):  # a bug: say it, and try again later
                _log.exception("following %s failed", environment.name)
            first, most = retry_delays()
            delay = first if delay is None else min(delay * 2, most)
            on_down(environment, error, delay)
            await asyncio.sleep(delay)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


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
    the bundled stylesheet) and its ipywidget (``pn.ipywidget``)."""
    pn = load_panel("tabulator")
    css = _tabulator_stylesheet(pn)
    options.setdefault("pagination", "remote")
    options.setdefault("page_size", 25)
    table = pn.widgets.Tabulator(
        frame, show_index=False, disabled=True, layout="fit_data_stretch",
        sizing_mode="stretch_width", stylesheets=[css] if css else [], **options)
    return table, pn.ipywidget(table)


# -- the feed ------------------------------------------------------------------------

#: Object types the type filter offers (the engine may send others; "all" shows them).
EVENT_TYPES = ("container", "image", "volume", "network", "pod", "system")
COLUMNS = ("time", "environment", "type", "action", "name", "id")


def _when(event: Event) -> str:
    return datetime.fromtimestamp(event.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(actor_id: str) -> str:
    return actor_id[7:19] if actor_id.startswith("sha256:") else actor_id[:12]


def _frame(pd: Any, rows: Sequence[tuple[int, Event]]) -> pd.DataFrame:
    """The table's frame: one text column per field, the row ids as index.

    Explicit types: an empty frame would otherwise be all float, and the table keeps
    the column types (formatters) it was first made with.
    """
    index = pd.Index([ident for ident, _ in rows], dtype="int64")
    columns = {
        "time": [_when(event) for _, event in rows],
        "environment": [event.environment for _, event in rows],
        "type": [event.type for _, event in rows],
        "action": [event.action for _, event in rows],
        "name": [event.name for _, event in rows],
        "id": [_short(event.actor_id) for _, event in rows],
    }
    return pd.DataFrame({column: pd.Series(values, index=index, dtype="str")
                         for column, values in columns.items()}, index=index,
                        columns=COLUMNS)


class EventFeed(ipywidgets.VBox):
    """Engine events of one or more environments as they happen, newest first.

    Parameters
    ----------
    environments
        An :class:`~ghostpanel_kernel.engine.Environment`, an ``EnvironmentSpec``
        (opened here, closed by :meth:`close`), or a list of them.
    max_events
        How many events to keep; older ones are dropped.
    page_size
        Rows per page of the table.

    Rows are ordered by the engines' event times, newest first. The table updates at
    most ten times a second, however many events arrive. Pause
    keeps collecting events without changing the table, so that it can be read; resume
    shows what came meanwhile. When an engine goes away the status line names the
    environment; the feed re-connects when it answers again and asks for the events it
    missed since the last one it saw.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> feed = EventFeed([connect("unix:///run/podman/podman.sock", name="laptop")])
    ...                                                                # doctest: +SKIP
    >>> feed                                                           # doctest: +SKIP
    """

    paused = Bool(False, help="True: new events are kept but the table stays as it is."
                  ).tag(sync=True)
    event_type = Unicode("", help="Show only events of this object type ('' for all)."
                         ).tag(sync=True)
    max_events = Int(500, help="How many events are kept (the oldest are dropped)."
                     ).tag(sync=True)
    retry_max = Float(10.0, help="Most seconds between tries to reach an engine that went "
                      "away (tries start at 0.5 s and double).").tag(sync=True)
    received = Int(0, help="Events received since the feed started (kernel side).")
    revision = Int(0, help="Bumped each time the table changes (kernel side).")

    _FLUSH_EVERY = 0.1  # seconds: at most ten table updates a second

    def __init__(self, environments: EnvironmentsArg, *, max_events: int = 500,
                 page_size: int = 20, **kwargs: Any) -> None:
        import pandas as pd

        # What close() needs comes first: ipywidgets closes a widget when it is garbage
        # collected, even one whose __init__ raised.
        self._closed = False
        self._owned: list[Environment] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._environments, self._owned = open_environments(environments)
        self._events: deque[tuple[int, Event]] = deque(maxlen=max(int(max_events), 1))
        self._ids = count()
        self._recent: deque[tuple[float, str, str, str]] = deque(maxlen=64)
        self._last_time: dict[str, float] = {}
        self._connected: dict[str, asyncio.Event] = {}
        self._waiting = 0  # events that came while paused

        self.status = StatusLine()
        self.health = EnvironmentHealth(self.status)
        self.type_filter = ipywidgets.Dropdown(
            options=[("all types", ""), *[(t, t) for t in EVENT_TYPES]], value="",
            description="type", layout=ipywidgets.Layout(width="200px"))
        self.pause_button = ipywidgets.ToggleButton(
            value=False, description="Pause", icon="pause",
            tooltip="Keep the table still; events are still collected")
        self.clear_button = ipywidgets.Button(description="Clear", icon="trash",
                                              tooltip="Forget the events shown")
        self.count_label = ipywidgets.Label()
        self.table, self.table_view = tabulator_view(
            _frame(pd, []),
            page_size=page_size, hidden_columns=["id"],
            titles={"time": "Time", "environment": "Environment", "type": "Type",
                    "action": "Action", "name": "Name"})

        super().__init__(**kwargs)
        self.add_class("gp-event-feed")
        self.max_events = max(int(max_events), 1)
        self.type_filter.observe(lambda change: setattr(self, "event_type", change["new"]),
                                 "value")
        self.pause_button.observe(lambda change: setattr(self, "paused", change["new"]),
                                  "value")
        self.clear_button.on_click(lambda _: self.clear())
        toolbar = ipywidgets.HBox([self.type_filter, self.pause_button, self.clear_button,
                                   self.count_label])
        self.children = [toolbar, self.status, self.table_view]
        self._show_count()
        self.start()

    # -- traits
    @validate("max_events")
    def _valid_max_events(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"max_events must be 1 or more, not {value}")
        return value

    @validate("event_type")
    def _valid_event_type(self, proposal: dict[str, Any]) -> str:
        return str(proposal["value"]).strip().lower()

    @observe("max_events")
    def _max_events_changed(self, change: dict[str, Any]) -> None:
        if self._events.maxlen != change["new"]:
            self._events = deque(self._events, maxlen=change["new"])
            self._schedule_flush(now=True)

    @observe("event_type")
    def _event_type_changed(self, change: dict[str, Any]) -> None:
        if self.type_filter.value != change["new"]:
            known = [value for _, value in self.type_filter.options]
            if change["new"] not in known:
                self.type_filter.options = [*self.type_filter.options,
                                            (change["new"], change["new"])]
            self.type_filter.value = change["new"]
        self._schedule_flush(now=True)

    @observe("paused")
    def _paused_changed(self, change: dict[str, Any]) -> None:
        self.pause_button.value = change["new"]
        self.pause_button.description = "Resume" if change["new"] else "Pause"
        self.pause_button.icon = "play" if change["new"] else "pause"
        if not change["new"]:
            self._waiting = 0
            self._schedule_flush(now=True)
        self._show_count()

    # -- public API
    @property
    def environments(self) -> list[Environment]:
        """The environments followed."""
        return list(self._environments)

    @property
    def events(self) -> list[Event]:
        """The events kept, newest first (by the engines' clocks), whatever the type
        filter and pause."""
        return [event for _, event in self._newest_first()]

    def _newest_first(self) -> list[tuple[int, Event]]:
        # By event time: two engines deliver their events with different delays, and
        # events missed during an outage arrive after newer ones.
        return sorted(self._events, key=lambda item: item[1].time, reverse=True)

    @property
    def frame(self) -> pd.DataFrame:
        """The table as shown: newest first, the type filter applied (a copy)."""
        return self.table.value.copy()

    def start(self) -> None:
        """Follow every environment (done on construction when a loop runs)."""
        loop = running_loop("Following events", self.status)
        if loop is None or self._closed:
            return
        for environment in self._environments:
            self._connected.setdefault(environment.name, asyncio.Event())
            task = self._tasks.get(environment.name)
            if task is None or task.done():
                self._tasks[environment.name] = loop.create_task(self._follow(environment))

    async def ready(self, timeout: float | None = 30.0) -> None:
        """Wait until every environment's events are followed (or it was found
        unreachable)."""
        async with asyncio.timeout(timeout):
            for environment in self._environments:
                await self._connected.setdefault(environment.name, asyncio.Event()).wait()

    def clear(self) -> None:
        """Forget the events kept so far."""
        self._events.clear()
        self._waiting = 0
        self._schedule_flush(now=True)

    def set_environments(self, environments: EnvironmentsArg) -> None:
        """Follow other environments (an :class:`EnvironmentPicker` can drive this)."""
        new, opened = open_environments(environments)
        self._stop_following()
        self._close_owned()
        self.health.forget([environment.name for environment in self._environments])
        self._environments, self._owned = new, opened
        self._connected = {}
        self.status.clear()
        self.start()

    def close(self) -> None:
        """Stop following, close the environments opened here, close the views."""
        if self._closed or "table" not in self.__dict__:
            self._closed = True
            super().close()
            return
        self._closed = True
        self._stop_following()
        self._close_owned()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for child in (self.table_view, self.status, self.type_filter, self.pause_button,
                      self.clear_button, self.count_label):
            child.close()
        super().close()

    async def aclose(self) -> None:
        """:meth:`close`, and wait until the followers have ended."""
        tasks = list(self._tasks.values())
        owned = list(self._owned)
        self._owned = []
        self.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for environment in owned:
            await environment.aclose()

    # -- following
    def _stop_following(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks = {}

    def _close_owned(self) -> None:
        owned, self._owned = self._owned, []
        close_later(owned)

    async def _follow(self, environment: Environment) -> None:
        await follow_events(
            environment, filters=None, on_event=self._on_event, on_up=self._on_up,
            on_down=self._on_down,
            since=lambda: self._last_time.get(environment.name),
            retry_delays=lambda: (min(0.5, self.retry_max), self.retry_max))

    def _on_up(self, environment: Environment) -> None:
        self.health.came_up(environment, "; following its events again")
        self._connected.setdefault(environment.name, asyncio.Event()).set()

    def _on_down(self, environment: Environment, error: BaseException,
                 retry: float | None) -> None:
        self.health.went_down(environment, error, retry)
        self._connected.setdefault(environment.name, asyncio.Event()).set()

    def _on_event(self, environment: Environment, event: Event) -> None:
        key = (event.time, event.environment, event.actor_id, event.action)
        if key in self._recent:  # replayed after a re-connection
            return
        self._recent.append(key)
        last = self._last_time.get(environment.name)
        if last is None or event.time > last:
            self._last_time[environment.name] = event.time
        self._events.appendleft((next(self._ids), event))
        self.received += 1
        if self.paused:
            self._waiting += 1
            self._show_count()
            return
        self._schedule_flush()

    # -- the table
    def _schedule_flush(self, *, now: bool = False) -> None:
        if now:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._flush()
            return
        if self._flush_handle is not None:
            return
        loop = running_loop("Showing events")
        if loop is None:
            self._flush()
        else:
            self._flush_handle = loop.call_later(self._FLUSH_EVERY, self._flush)

    def _flush(self) -> None:
        import pandas as pd

        self._flush_handle = None
        if self._closed:
            return
        kind = self.event_type
        rows = [(ident, event) for ident, event in self._newest_first()
                if not kind or event.type == kind]
        self.table.value = _frame(pd, rows)
        self.revision += 1
        self._show_count()

    def _show_count(self) -> None:
        shown = len(self.table.value)
        text = f"{shown} event{'' if shown == 1 else 's'} shown"
        if self.paused:
            text += f"; paused, {self._waiting} new waiting"
        self.count_label.value = text
