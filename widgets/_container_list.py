"""``ContainerList``: the containers of one or more environments in one live table.

Layout, top to bottom: a toolbar (text filter, state filter, Start, Stop, Restart,
Remove, Refresh, and Open once :meth:`ContainerList.on_open` has a listener), the
confirmation row Remove asks through, the status line, the table. With a listener, a
click on a container's name (or Open, one row ticked) asks the listener to open it (the
dashboard shows its page).

The table is Panel's ``Tabulator`` inside ``pn.ipywidget`` (remote pagination: only the
page shown travels to the browser; header sort and the filters run in the kernel), so a
thousand rows stay responsive. How it stays current without listing again:

- one task per environment follows ``env.events(filters={"type": "container"})``
  (:class:`~._live_table.LiveTable`, the base it shares with the event feed). It asks
  for the events first, then lists that environment once;
- an event names one container: the widget inspects just that one
  (``env.containers.get``) and changes its row, adds it, or drops it (``remove``).
  Where the event itself says the new state (``start``, ``die``, ``pause``...), the
  row shows it at once, and the inspect fills in the rest (status, ports). Several
  events for the same container while its inspect is in flight cost one more inspect,
  not one each, and an answer that may predate the last event is not shown;
- row changes are gathered and applied once per turn of the event loop: one
  ``Tabulator.patch`` for changed cells, one new frame when rows come or go;
- with ``stats_interval``, a task samples CPU and memory of the running containers in
  the current view every ``stats_interval`` seconds, a few at a time.

When an engine goes away, the status line names the environment and the next try; the
follower tries again with backoff and lists that environment once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets
import param
from traitlets import TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Container, Environment, Event, NotFound

from ._follower import UNREACHABLE
from ._live_table import EnvironmentsArg, LiveTable, running_loop, tabulator_view
from ._status import describe_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "STATES", "ContainerList", "container_row"]

#: The table's columns; ``id`` is hidden (it tells rows apart), cpu is a percentage of
#: one CPU and memory is in MiB, both empty until sampled; update is empty until
#: :meth:`ContainerList.check_updates` asked the registries.
COLUMNS = ("name", "environment", "image", "state", "status", "ports", "update", "cpu",
           "memory", "id")
_TITLES = {"name": "Name", "environment": "Environment", "image": "Image",
           "state": "State", "status": "Status", "ports": "Ports", "update": "Update",
           "cpu": "CPU %", "memory": "Memory (MiB)"}
_DTYPES = {"cpu": "float64", "memory": "float64"}  # the others are text
# and id, by prefix
_TEXT_COLUMNS = ("name", "environment", "image", "status", "ports", "update")
# Columns a listing or an inspect does not fill: a row keeps them across its updates.
_KEPT_COLUMNS = ("update", "cpu", "memory")

#: The states the state filter offers (Docker's and Podman's).
STATES = ("running", "created", "exited", "paused", "restarting", "removing", "dead",
          "stopped")

# Events that say nothing about what a row shows (exec sessions, attachments, copies...).
_QUIET_ACTIONS = frozenset({
    "attach", "detach", "exec", "exec_create", "exec_start", "exec_die", "exec_died",
    "resize", "top", "copy", "archive-path", "extract-to-dir", "export", "commit",
    "mount", "unmount", "checkpoint", "cleanup", "sync",
})
_GONE_ACTIONS = frozenset({"remove", "destroy"})
# The state an event leaves a container in, where the event alone says it. The row shows
# it at once; the inspect that follows fills in the rest. An inspect can take ~100 ms
# while the engine tears a container down (Podman holds its lock meanwhile).
_STATE_AFTER = {"create": "created", "start": "running", "restart": "running",
                "unpause": "running", "pause": "paused", "die": "exited",
                "died": "exited", "stop": "exited"}

_MIB = 1024 * 1024


def container_row(container: Container) -> dict[str, Any]:
    """One table row for ``container`` (from a listing or an inspect), stats empty.

    Examples
    --------
    >>> from ghostpanel_kernel.engine import Container
    >>> c = Container(None, {"Id": "ab" * 32, "Names": ["/web"], "State": "running",
    ...                      "Status": "Up 2 minutes", "Image": "nginx",
    ...                      "Ports": [{"PrivatePort": 80, "PublicPort": 8080,
    ...                                 "Type": "tcp"}]}, environment="laptop")
    >>> row = container_row(c)
    >>> row["name"], row["state"], row["ports"]
    ('web', 'running', '0.0.0.0:8080->80/tcp')
    """
    return {"name": container.name, "environment": container.environment,
            "image": container.image, "state": container.state,
            "status": container.status, "ports": ", ".join(container.ports),
            "update": "", "cpu": math.nan, "memory": math.nan, "id": container.id}


def _same(old: Any, new: Any) -> bool:
    """Equal, NaN (a stat not sampled yet) equal to NaN."""
    return bool(old == new) or (old != old and new != new)


class _Criteria(param.Parameterized):
    """The filters, as parameters the Tabulator watches (it re-filters on a change)."""

    text = param.String(default="", doc="Case-insensitive text a row must contain.")
    state = param.String(default="", doc="The state a row must have ('' for any).")

def _filter_rows(frame: pd.DataFrame, text: str, state: str) -> pd.DataFrame:
    if state:
        frame = frame[frame["state"] == state]
    if text and len(frame):
        # An id is matched by its start, as the engine takes short ids: "c6" must not
        # find every id with those two hex digits somewhere.
        mask = frame["id"].str.startswith(text.lower())
        for column in _TEXT_COLUMNS:
            mask = mask | frame[column].str.contains(text, case=False, regex=False)
        frame = frame[mask]
    return frame


class ContainerList(LiveTable):
    """The containers of one or more environments: a live, sortable, filterable table
    with bulk start, stop, restart and remove.

    Parameters
    ----------
    environments
        An :class:`~ghostpanel_kernel.engine.Environment`, an ``EnvironmentSpec``
        (opened here, closed by :meth:`close`), or a list of them.
    show_all
        Include containers that are not running (``docker ps -a``).
    stats_interval
        Seconds between CPU/memory samples of the running containers in view; None
        leaves those columns empty.
    live
        Follow the engines' events (needs a running event loop, as a kernel has).
        False: the table changes only on :meth:`refresh` and the widget's own actions.
    page_size
        Rows per page.
    stop_timeout
        Seconds Stop and Restart give a container before killing it (engine default:
        10).

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> table = ContainerList([connect("unix:///run/podman/podman.sock", name="laptop"),
    ...                        connect("tcp://10.0.0.5:2375", name="us-east-1")])
    ...                                                                # doctest: +SKIP
    >>> table                                                          # doctest: +SKIP
    >>> table.select(["web"]); await table.stop_selected()             # doctest: +SKIP
    """

    text_filter = Unicode("", help="Show only rows containing this text (in the name, "
                          "image, environment, status or ports; or starting the id), "
                          "case-insensitive."
                          ).tag(sync=True)
    state_filter = Unicode("", help="Show only rows in this state ('' for any)."
                           ).tag(sync=True)

    _EVENT_FILTERS: ClassVar[Mapping[str, Any]] = {"type": ["container"]}
    _FOLLOWING = "Listing containers"

    # Engine requests in flight at once, per kind: stats samples hold theirs for the CPU
    # window (0.5 s), so they get their own, and never delay the inspects events ask for.
    _FETCHES = 8
    _ACTIONS = 8
    _SAMPLES = 4

    def __init__(self, environments: EnvironmentsArg, *, show_all: bool = True,
                 stats_interval: float | None = None, live: bool = True,
                 page_size: int = 25, stop_timeout: int | None = None,
                 **kwargs: Any) -> None:
        if stats_interval is not None and not stats_interval > 0:
            raise ValueError(f"stats_interval must be more than 0 seconds, not "
                             f"{stats_interval!r}")
        self._open(environments)  # first: what close() needs; bad arguments build nothing
        self._stats_task: asyncio.Task[None] | None = None
        self._fetching: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._fetch_again: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._show_all = bool(show_all)
        self._live = bool(live)
        self._stats_interval = stats_interval
        self.stop_timeout = stop_timeout

        # The rows: row id -> row dict (the frame is built from it), and the ways in.
        self._rows: dict[int, dict[str, Any]] = {}
        self._row_of: dict[tuple[str, str], int] = {}  # (environment, container id)
        self._containers: dict[int, Container] = {}
        self._ids = count()
        self._patches: dict[int, dict[str, Any]] = {}
        self._reshaped = False
        self._fetch_limit = asyncio.Semaphore(self._FETCHES)
        self._action_limit = asyncio.Semaphore(self._ACTIONS)
        self._sample_limit = asyncio.Semaphore(self._SAMPLES)
        self._pending_remove: list[tuple[int, Container]] = []

        self._criteria = _Criteria()  # type: ignore[no-untyped-call]  # param's is untyped

        self.text_field = ipywidgets.Text(
            placeholder="filter: name, image, port...", continuous_update=True,
            layout=ipywidgets.Layout(width="240px"))
        self.state_field = ipywidgets.Dropdown(
            options=[("any state", ""), *[(s, s) for s in STATES]], value="",
            layout=ipywidgets.Layout(width="130px"))
        self.start_button = ipywidgets.Button(description="Start", icon="play",
                                              tooltip="Start the selected containers")
        self.stop_button = ipywidgets.Button(description="Stop", icon="stop",
                                             tooltip="Stop the selected containers")
        self.restart_button = ipywidgets.Button(description="Restart", icon="refresh",
                                                tooltip="Restart the selected containers")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash",
                                               button_style="danger",
                                               tooltip="Remove the selected containers "
                                                       "(asks first)")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="sync",
                                                tooltip="List every environment again")
        self.updates_button = ipywidgets.Button(
            description="Check updates", icon="cloud-download",
            tooltip="Ask each image's registry whether its tag now names a newer image "
                    "(fills the Update column)")
        # Shown once something listens (on_open): alone in a notebook it would do nothing.
        self.open_button = ipywidgets.Button(
            description="Open", icon="external-link",
            tooltip="Open the ticked container's page (tick one row)",
            layout=ipywidgets.Layout(display="none"))
        self._open_callbacks: list[Callable[[str, str], None]] = []
        self.count_label = ipywidgets.Label()

        self.confirm_text = ipywidgets.HTML()
        self.force_box = ipywidgets.Checkbox(
            value=False, description="force (kill running ones)", indent=False,
            layout=ipywidgets.Layout(width="auto"))
        self.confirm_button = ipywidgets.Button(description="Remove", icon="trash",
                                                button_style="danger")
        self.cancel_button = ipywidgets.Button(description="Cancel")
        self.confirm_row = ipywidgets.HBox(
            [self.confirm_text, self.force_box, self.confirm_button, self.cancel_button],
            layout=ipywidgets.Layout(display="none", align_items="center"))

        from bokeh.models.widgets.tables import NumberFormatter

        self.table, self.table_view = tabulator_view(
            self._build_frame(), selectable="checkbox", page_size=page_size,
            hidden_columns=["id"], titles=_TITLES,
            formatters={"cpu": NumberFormatter(format="0.0", nan_format=""),
                        "memory": NumberFormatter(format="0.0", nan_format="")})
        self.table.on_click(self._cell_clicked, column="name")
        import panel as pn

        self.table.add_filter(pn.bind(_filter_rows, text=self._criteria.param.text,
                                      state=self._criteria.param.state))

        super().__init__(**kwargs)
        self.add_class("gp-container-list")
        self.text_field.observe(lambda c: setattr(self, "text_filter", c["new"]), "value")
        self.state_field.observe(lambda c: setattr(self, "state_filter", c["new"]), "value")
        self.start_button.on_click(lambda _: self._run("Start", self.start_selected))
        self.stop_button.on_click(lambda _: self._run("Stop", self.stop_selected))
        self.restart_button.on_click(lambda _: self._run("Restart", self.restart_selected))
        self.remove_button.on_click(lambda _: self.request_remove())
        self.confirm_button.on_click(lambda _: self._confirm_remove())
        self.cancel_button.on_click(lambda _: self.cancel_remove())
        self.refresh_button.on_click(lambda _: self._run("Refresh", self.refresh))
        self.updates_button.on_click(lambda _: self._run("Check updates", self.check_updates))
        self.open_button.on_click(lambda _: self.open_selected())
        self.table.param.watch(lambda _: self._selection_changed(), "selection")

        toolbar = ipywidgets.HBox(
            [self.text_field, self.state_field, self.start_button, self.stop_button,
             self.restart_button, self.remove_button, self.refresh_button,
             self.updates_button, self.open_button, self.count_label],
            layout=ipywidgets.Layout(flex_flow="row wrap"))
        self.children = [toolbar, self.confirm_row, self.status, self.table_view]
        self._selection_changed()
        self.start()

    # -- traits
    @validate("state_filter")
    def _valid_state_filter(self, proposal: dict[str, Any]) -> str:
        state = str(proposal["value"]).strip().lower()
        if state and state not in STATES:
            raise TraitError(f"state_filter must be '' or one of {', '.join(STATES)}, "
                             f"not {state!r}")
        return state

    @observe("text_filter")
    def _text_filter_changed(self, change: dict[str, Any]) -> None:
        self.text_field.value = change["new"]
        self.table.page = 1  # the rows found start there
        self._criteria.text = change["new"]
        self._show_count()

    @observe("state_filter")
    def _state_filter_changed(self, change: dict[str, Any]) -> None:
        self.state_field.value = change["new"]
        self.table.page = 1
        self._criteria.state = change["new"]
        self._show_count()

    # -- what it shows
    @property
    def show_all(self) -> bool:
        """Whether containers that are not running are listed."""
        return self._show_all

    @property
    def stats_interval(self) -> float | None:
        """Seconds between CPU/memory samples, or None."""
        return self._stats_interval

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as shown: filtered and sorted as the table is (a copy)."""
        view = self.table.current_view
        return (view if view is not None else self.table.value).copy()

    @property
    def data(self) -> pd.DataFrame:
        """Every row, whatever the filters (a copy)."""
        rows: pd.DataFrame = self.table.value  # a Panel parameter: typed Any
        return rows.copy()

    @property
    def selected(self) -> list[tuple[str, str]]:
        """The selected rows as ``(environment, container name)``."""
        return [(self._rows[ident]["environment"], self._rows[ident]["name"])
                for ident in self._selected_ids() if ident in self._rows]

    def select(self, names: Iterable[str | tuple[str, str]]) -> None:
        """Select the rows of these containers (and only them).

        Parameters
        ----------
        names
            Container names (in any environment) or ``(environment, name)`` pairs.

        Raises
        ------
        KeyError
            A name matches no row.
        """
        wanted = list(names)
        positions: list[int] = []
        missing = []
        index = self.table.value.index
        for item in wanted:
            found = [ident for ident, row in self._rows.items()
                     if (row["name"] == item if isinstance(item, str)
                         else (row["environment"], row["name"]) == tuple(item))]
            if not found:
                missing.append(item if isinstance(item, str) else "/".join(item))
            positions += [index.get_loc(ident) for ident in found if ident in index]
        if missing:
            raise KeyError(f"no container {', '.join(map(repr, missing))} in this list")
        self.table.selection = sorted(set(positions))

    # -- lifecycle
    def _started(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._live and self._task is None:
            self._run("Refresh", self.refresh)
        if self._stats_interval is not None and (self._stats_task is None
                                                 or self._stats_task.done()):
            self._stats_task = loop.create_task(self._sample_stats())

    async def ready(self, timeout: float | None = 30.0) -> None:
        """Wait until every environment was listed once (or found unreachable)."""
        async with asyncio.timeout(timeout):
            if not self._live and self._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self._task)
            await super().ready(None)

    def _environments_changed(self) -> None:
        self._rows.clear()
        self._row_of.clear()
        self._containers.clear()
        self._reshaped = True
        self._flush()

    def _running_tasks(self) -> list[asyncio.Task[Any]]:
        return [*super()._running_tasks(), *self._fetching.values(),
                *(task for task in (self._stats_task, self._task) if task is not None)]

    def _stop_tasks(self) -> None:
        super()._stop_tasks()
        for task in self._running_tasks():
            task.cancel()
        self._fetching, self._stats_task = {}, None
        self._fetch_again.clear()

    # -- listing
    async def refresh(self) -> None:
        """List every environment again (all at once), and show what each has.

        An environment that cannot be listed keeps its rows, and the status line says
        why; the others are still refreshed.
        """
        from ghostpanel_kernel.environments import fan_out

        results = await fan_out(self._environments, self._list_containers)
        for environment, result in zip(self._environments, results, strict=True):
            if result.ok and result.value is not None:
                self._show_listing(environment, result.value)
                self.health.came_up(environment, self._up_detail(environment))
            elif result.error is not None:
                self.health.went_down(environment, result.error, None)
            self._ready_event(environment.name).set()
        if not self.health.down:
            rows = len(self._rows)
            self.status.success(f"Listed {rows} container{'' if rows == 1 else 's'} in "
                                f"{len(self._environments)} environment"
                                f"{'' if len(self._environments) == 1 else 's'}.")

    def _list_containers(self, environment: Environment) -> Awaitable[list[Container]]:
        return environment.containers.list(all=self._show_all)

    async def _connect(self, environment: Environment) -> None:
        self._show_listing(environment, await self._list_containers(environment))

    def _show_listing(self, environment: Environment, containers: Sequence[Container]) -> None:
        """Make ``environment``'s rows the containers of a fresh listing."""
        name = environment.name
        seen: set[int] = set()
        for container in containers:
            ident = self._put(environment, container, defer=True)
            if ident is not None:
                seen.add(ident)
        for key, ident in list(self._row_of.items()):
            if key[0] == name and ident not in seen:
                self._drop(key, defer=True)
        self._reshaped = True
        self._flush()

    def _up_detail(self, environment: Environment) -> str:
        rows = sum(1 for key in self._row_of if key[0] == environment.name)
        return f" ({rows} container{'' if rows == 1 else 's'})"

    # -- following the engines
    def _on_event(self, environment: Environment, event: Event) -> None:
        if event.type != "container" or not event.actor_id:
            return
        action = event.action.split(":", 1)[0]  # Docker: "exec_start: sh", "health_status: ..."
        if action in _QUIET_ACTIONS:
            return
        key = (environment.name, event.actor_id)
        if action in _GONE_ACTIONS:
            self._drop(key)
            return
        state = _STATE_AFTER.get(action)
        if state is not None:
            self._show_state(environment, event, state)
        self._fetch(environment, event.actor_id)

    def _show_state(self, environment: Environment, event: Event, state: str) -> None:
        """Show the state an event says, before the inspect that completes the row."""
        key = (environment.name, event.actor_id)
        ident = self._row_of.get(key)
        if not self._show_all and state != "running":
            if ident is not None:
                self._drop(key)
            return
        if ident is not None:
            self._set_cells(ident, {"state": state})
            return
        ident = next(self._ids)
        self._row_of[key] = ident
        self._rows[ident] = {"name": event.name, "environment": environment.name,
                             "image": str(event.attributes.get("image", "")),
                             "state": state, "status": "", "ports": "", "update": "",
                             "cpu": math.nan, "memory": math.nan, "id": event.actor_id}
        self._reshaped = True
        self._schedule_flush()

    def _fetch(self, environment: Environment, container_id: str) -> None:
        """Inspect one container and show it; one inspect in flight per container."""
        key = (environment.name, container_id)
        if key in self._fetching:
            self._fetch_again.add(key)
            return
        loop = running_loop("Updating a row")
        if loop is None:
            return
        self._fetching[key] = loop.create_task(self._fetch_row(environment, container_id))

    async def _fetch_row(self, environment: Environment, container_id: str) -> None:
        key = (environment.name, container_id)
        try:
            while True:
                self._fetch_again.discard(key)
                try:
                    async with self._fetch_limit:
                        container = await environment.containers.get(container_id)
                except NotFound:
                    self._drop(key)
                except UNREACHABLE:
                    break  # the follower sees the engine go and says so
                else:
                    if key in self._fetch_again:
                        continue  # an event came meanwhile: this answer may predate it
                    self._put(environment, container)
                if key not in self._fetch_again:
                    break
        finally:
            self._fetching.pop(key, None)

    # -- rows
    def _put(self, environment: Environment, container: Container, *,
             defer: bool = False) -> int | None:
        """Show ``container`` in its row (added if new); its row id, or None when it is
        not to be listed (stopped, without ``show_all``)."""
        key = (environment.name, container.id)
        ident = self._row_of.get(key)
        if not self._show_all and container.state != "running":
            if ident is not None:
                self._drop(key, defer=defer)
            return None
        row = container_row(container)
        if ident is None:
            ident = next(self._ids)
            self._row_of[key] = ident
            self._rows[ident] = row
            self._reshaped = True
        else:
            old = self._rows[ident]
            row.update({column: old[column] for column in _KEPT_COLUMNS})
            changed = {column: value for column, value in row.items()
                       if not _same(old[column], value)}
            if changed:
                old.update(changed)
                self._patches.setdefault(ident, {}).update(changed)
        self._containers[ident] = container
        if not defer:
            self._schedule_flush()
        return ident

    def _drop(self, key: tuple[str, str], *, defer: bool = False) -> None:
        ident = self._row_of.pop(key, None)
        if ident is None:
            return
        self._rows.pop(ident, None)
        self._containers.pop(ident, None)
        self._patches.pop(ident, None)
        self._reshaped = True
        if not defer:
            self._schedule_flush()

    def _set_cells(self, ident: int, cells: dict[str, Any]) -> None:
        row = self._rows.get(ident)
        if row is None:
            return
        changed = {column: value for column, value in cells.items()
                   if not _same(row[column], value)}
        if changed:
            row.update(changed)
            self._patches.setdefault(ident, {}).update(changed)
            self._schedule_flush()

    def _build_frame(self) -> pd.DataFrame:
        # Explicit types: an empty frame would otherwise be all float, and the table
        # keeps the column types (formatters) it was first made with.
        import pandas as pd
        rows = self._rows
        index = pd.Index(list(rows), dtype="int64")
        return pd.DataFrame(
            {column: pd.Series([row[column] for row in rows.values()], index=index,
                               dtype=_DTYPES.get(column, "str"))
             for column in COLUMNS}, index=index, columns=COLUMNS)

    def _update_table(self) -> None:
        table = self.table
        if self._reshaped:
            selected = self._selected_ids()
            frame = self._build_frame()
            table.value = frame
            # Remote pagination clears the selection when the frame is replaced: keep the
            # rows that are still there selected.
            position = {ident: row for row, ident in enumerate(frame.index)}
            table.selection = [position[ident] for ident in selected if ident in position]
            page_size = table.page_size or table.initial_page_size
            pages = max(math.ceil(len(table.current_view) / page_size), 1)
            if table.page > pages:
                table.page = pages
        elif self._patches:
            patch: dict[str, list[tuple[int, Any]]] = {}
            for ident, cells in self._patches.items():
                for column, value in cells.items():
                    patch.setdefault(column, []).append((ident, value))
            table.patch(patch)  # type: ignore[no-untyped-call]  # Panel leaves it untyped
        else:
            return
        self._reshaped = False
        self._patches = {}
        self.revision += 1
        self._show_count()

    def _selected_ids(self) -> list[int]:
        index = self.table.value.index
        return [int(index[position]) for position in self.table.selection
                if position < len(index)]

    def _show_count(self) -> None:
        total = len(self._rows)
        view = self.table.current_view
        shown = total if view is None else len(view)
        chosen = len(self.table.selection)
        text = f"{shown} of {total} shown" if shown != total else f"{total} containers"
        self.count_label.value = text + (f", {chosen} selected" if chosen else "")

    def _selection_changed(self) -> None:
        nothing = not self.table.selection
        for button in (self.start_button, self.stop_button, self.restart_button,
                       self.remove_button):
            button.disabled = nothing or (self._task is not None and not self._task.done())
        self.open_button.disabled = len(self.table.selection) != 1
        self._show_count()

    # -- opening a container
    def on_open(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(environment, container name)`` when a row's name is clicked,
        or Open is pressed with one row ticked (shown from now on).

        Examples
        --------
        >>> table.on_open(lambda env, name: print(f"open {env}/{name}"))  # doctest: +SKIP
        """
        self._open_callbacks.append(callback)
        self.open_button.layout.display = "flex"

    def open_row(self, environment: str, name: str) -> None:
        """Tell the ``on_open`` callbacks to open container ``name`` of ``environment``
        (what a click on its name does); a callback's error goes to the status line."""
        for callback in list(self._open_callbacks):
            try:
                callback(environment, name)
            except Exception as error:  # the table stays usable
                self.status.error(f"Opening {environment}/{name} failed: "
                                  f"{describe_error(error)}")

    def open_selected(self) -> None:
        """Open the one ticked row (the Open button)."""
        chosen = self.selected
        if len(chosen) != 1:
            self.status.warning("Open: tick one row.")
            return
        self.open_row(*chosen[0])

    def _cell_clicked(self, event: Any) -> None:
        # Panel has made event.row the row's position in table.value (paged, sorted and
        # filtered views taken into account).
        index = self.table.value.index
        if not 0 <= event.row < len(index):
            return
        row = self._rows.get(int(index[event.row]))
        if row is not None:
            self.open_row(row["environment"], row["name"])

    # -- stats
    async def _sample_stats(self) -> None:
        assert self._stats_interval is not None
        while True:
            view = self.table.current_view
            idents = [] if view is None else [
                int(ident) for ident, state in zip(view.index, view["state"], strict=True)
                if state == "running"]
            targets = [(ident, self._containers[ident]) for ident in idents
                       if ident in self._containers
                       and not self.health.is_down(self._containers[ident].environment)]
            await asyncio.gather(*(self._sample_one(ident, container)
                                   for ident, container in targets))
            await asyncio.sleep(self._stats_interval)

    async def _sample_one(self, ident: int, container: Container) -> None:
        try:
            async with self._sample_limit:
                sample = await container.stats(cpu_window=0.5)
        except UNREACHABLE:
            return  # gone meanwhile, or its engine: the follower says so
        self._set_cells(ident, {"cpu": round(sample.cpu_percent, 1),
                                "memory": round(sample.memory_usage / _MIB, 1)})

    # -- actions
    def _run(self, action: str, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` as a task on the kernel's loop, its errors in the status line."""
        if self._task is not None and not self._task.done():
            self.status.warning(f"{action}: wait until the running action ends.")
            return
        loop = running_loop(action, self.status)
        if loop is None:
            return

        async def run() -> None:
            try:
                with self.status.reporting(action):
                    await work()
            finally:
                self._selection_changed()

        self._task = loop.create_task(run())
        self._selection_changed()  # buttons greyed at once: no second click meanwhile

    async def check_updates(self) -> dict[tuple[str, str], str]:
        """Fill the Update column: for each listed container, whether its registry now
        has a newer image under the same tag (:func:`ghostpanel_kernel.engine.
        check_updates`: one request per distinct image, asked again each time).

        An environment whose check fails gets ``unknown`` cells and the error in the
        status line; the others are filled all the same.

        Returns
        -------
        dict
            The cell shown, by ``(environment, container name)``.
        """
        from ghostpanel_kernel.engine._image_updates import update_cells

        async def one(environment: Environment) -> dict[str, str]:
            listed = [self._containers[ident] for (name, _), ident in self._row_of.items()
                      if name == environment.name and ident in self._containers]
            try:
                # Asked for now: a registry answer kept from before a push must not hide it.
                return await update_cells(environment, listed, max_age=0)
            except Exception as error:  # any failure: that environment's cells say so
                self.status.warning(f"Check updates on {environment.name}: "
                                    f"{describe_error(error)}")
                return {container.id: "unknown" for container in listed}

        environments = list(self._environments)
        answers = await asyncio.gather(*(one(environment) for environment in environments))
        shown: dict[tuple[str, str], str] = {}
        for environment, cells in zip(environments, answers, strict=True):
            for container_id, cell in cells.items():
                ident = self._row_of.get((environment.name, container_id))
                if ident is not None:
                    self._set_cells(ident, {"update": cell})
                    shown[(environment.name, self._rows[ident]["name"])] = cell
        return shown

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The action a button started last (``await`` it to wait for it)."""
        return self._task

    def _targets(self) -> list[tuple[int, Container]]:
        return [(ident, self._containers[ident]) for ident in self._selected_ids()
                if ident in self._containers]

    async def _act(self, verb: str, done: str, targets: Sequence[tuple[int, Container]],
                   operation: Callable[[Container], Awaitable[None]]
                   ) -> dict[tuple[str, str], BaseException]:
        if not targets:
            self.status.warning(f"{verb}: select containers first (tick their rows).")
            return {}

        async def one(container: Container) -> BaseException | None:
            try:
                async with self._action_limit:
                    await operation(container)
            except UNREACHABLE as error:
                return error
            return None

        self.status.info(f"{verb}: {len(targets)} container"
                         f"{'' if len(targets) == 1 else 's'}...")
        outcomes = await asyncio.gather(*(one(container) for _, container in targets))
        failed: dict[tuple[str, str], BaseException] = {}
        for (_, container), error in zip(targets, outcomes, strict=True):
            environment = next((e for e in self._environments
                                if e.name == container.environment), None)
            if error is None and verb == "Remove":
                self._drop((container.environment, container.id))
            elif environment is not None:
                self._fetch(environment, container.id)  # events may be off or late
            if error is not None:
                failed[(container.environment, container.name)] = error
        names = ", ".join(f"{c.environment}/{c.name}" for _, c in targets)
        if failed:
            self.status.error(f"{verb} failed on {len(failed)} of {len(targets)}: " + "; ".join(
                f"{env}/{name}: {describe_error(error)}"
                for (env, name), error in failed.items()))
        else:
            self.status.success(f"{done} {len(targets)} container"
                                f"{'' if len(targets) == 1 else 's'}: {names}.")
        return failed

    async def start_selected(self) -> dict[tuple[str, str], BaseException]:
        """Start the selected containers.

        Returns
        -------
        dict
            ``{(environment, name): error}`` for those that failed (also shown in the
            status line); empty when all of them started.
        """
        return await self._act("Start", "Started", self._targets(),
                               lambda c: c.start())

    async def stop_selected(self) -> dict[tuple[str, str], BaseException]:
        """Stop the selected containers (``stop_timeout`` seconds, then killed); failures
        as :meth:`start_selected` returns them."""
        return await self._act("Stop", "Stopped", self._targets(),
                               lambda c: c.stop(timeout=self.stop_timeout))

    async def restart_selected(self) -> dict[tuple[str, str], BaseException]:
        """Restart the selected containers; failures as :meth:`start_selected`."""
        return await self._act("Restart", "Restarted", self._targets(),
                               lambda c: c.restart(timeout=self.stop_timeout))

    async def remove_selected(self, *, force: bool = False
                              ) -> dict[tuple[str, str], BaseException]:
        """Remove the selected containers at once, without asking (the Remove button
        asks first); ``force`` kills running ones. Failures as :meth:`start_selected`."""
        return await self._remove(self._targets(), force=force)

    async def _remove(self, targets: Sequence[tuple[int, Container]], *, force: bool
                      ) -> dict[tuple[str, str], BaseException]:
        return await self._act("Remove", "Removed", targets,
                               lambda c: c.remove(force=force))

    @property
    def confirming(self) -> bool:
        """True while the Remove confirmation row is shown."""
        return bool(self.confirm_row.layout.display != "none")

    def request_remove(self) -> None:
        """Ask, in the confirmation row, before removing the selected containers."""
        targets = self._targets()
        if not targets:
            self.status.warning("Remove: select containers first (tick their rows).")
            return
        self._pending_remove = targets
        running = sum(1 for _, c in targets if c.state == "running")
        names = ", ".join(f"{c.environment}/{c.name}" for _, c in targets)
        note = (f" {running} of them {'is' if running == 1 else 'are'} running: tick "
                "force to kill them." if running else "")
        import html

        self.confirm_text.value = (
            f'<span style="color: #b00020">Remove {len(targets)} container'
            f"{'' if len(targets) == 1 else 's'} ({html.escape(names)})? This cannot be "
            f"undone.{html.escape(note)}</span>")
        self.force_box.value = False
        self.confirm_row.layout.display = "flex"

    def cancel_remove(self) -> None:
        """Close the confirmation row without removing anything."""
        if self.confirming:
            self.status.info("Remove cancelled.")
        self._pending_remove = []
        self.confirm_row.layout.display = "none"

    def _confirm_remove(self) -> None:
        targets, self._pending_remove = self._pending_remove, []
        force = self.force_box.value
        self.confirm_row.layout.display = "none"
        self._run("Remove", lambda: self._remove(targets, force=force))
