"""``EventFeed``: the engine events of one or more environments, live, newest first.

Following the engines, coming back after one went away and saying so in the status line
is :class:`~._live_table.LiveTable`'s; the feed keeps the events, de-duplicates those an
engine replays after a re-connection (it asks for what it missed since the last event it
saw), and shows them filtered by type, at most ten table updates a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from itertools import count
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Environment, Event

from ._live_table import EnvironmentsArg, LiveTable, tabulator_view

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "EVENT_TYPES", "EventFeed"]

# -- the feed ------------------------------------------------------------------------

#: Object types the type filter offers (the engine may send others; "all" shows them).
EVENT_TYPES = ("container", "image", "volume", "network", "pod", "system")
COLUMNS = ("time", "environment", "type", "action", "name", "id")


def _when(event: Event) -> str:
    return datetime.fromtimestamp(event.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(actor_id: str) -> str:
    return actor_id[7:19] if actor_id.startswith("sha256:") else actor_id[:12]


def _frame(rows: Sequence[tuple[int, Event]]) -> pd.DataFrame:
    """The table's frame: one text column per field, the row ids as index.

    Explicit types: an empty frame would otherwise be all float, and the table keeps
    the column types (formatters) it was first made with.
    """
    import pandas as pd  # here: importing the package must not import pandas

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


class EventFeed(LiveTable):
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
    received = Int(0, help="Events received since the feed started (kernel side).")

    _FLUSH_DELAY = 0.1  # seconds: at most ten table updates a second

    def __init__(self, environments: EnvironmentsArg, *, max_events: int = 500,
                 page_size: int = 20, **kwargs: Any) -> None:
        self._open(environments)  # first: what close() needs; bad arguments build nothing
        self._events: deque[tuple[int, Event]] = deque(maxlen=max(int(max_events), 1))
        self._ids = count()
        self._recent: deque[tuple[float, str, str, str]] = deque(maxlen=64)
        self._last_time: dict[str, float] = {}
        self._waiting = 0  # events that came while paused

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
            _frame([]),
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
        shown: pd.DataFrame = self.table.value  # a Panel parameter: typed Any
        return shown.copy()

    def clear(self) -> None:
        """Forget the events kept so far."""
        self._events.clear()
        self._waiting = 0
        self._schedule_flush(now=True)

    # -- following
    def _since(self, environment: Environment) -> float | None:
        return self._last_time.get(environment.name)  # what was missed meanwhile

    def _up_detail(self, environment: Environment) -> str:
        return "; following its events again"

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
    def _update_table(self) -> None:
        kind = self.event_type
        rows = [(ident, event) for ident, event in self._newest_first()
                if not kind or event.type == kind]
        self.table.value = _frame(rows)
        self.revision += 1
        self._show_count()

    def _show_count(self) -> None:
        shown = len(self.table.value)
        text = f"{shown} event{'' if shown == 1 else 's'} shown"
        if self.paused:
            text += f"; paused, {self._waiting} new waiting"
        self.count_label.value = text
