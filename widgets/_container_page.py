"""``ContainerPage``: one container's page, as an operator opens it from a list.

Layout, top to bottom: "← Containers" and the header (name, state badge, health,
image), the lifecycle buttons (Start, Stop, Restart, Pause/Unpause, Kill, Remove), the
question Remove asks first, the status line, and the tabs Overview, Logs, Stats, Exec,
Files and Inspect.

- Overview is made from the container's inspect (:mod:`._container_overview`); the
  other tabs are the views that exist on their own (``LogStream``, ``StatsMonitor``,
  ``ExecConsole``, ``FileBrowser``, ``ContainerInspector``), each built the first time
  its tab is shown: a tab never opened streams nothing and costs nothing. They are
  closed with the page.
- The page follows the engine's events for this one container (by id): an event that
  says the new state (``start``, ``die``, ``pause``...) shows it at once, and an
  inspect that follows fills in the rest (health, ports, times). Several events while
  that inspect is in flight cost one more inspect, not one each. ``remove`` says the
  container is gone and disables the buttons. When the engine goes away the status
  line says so and the follower tries again with backoff, inspecting afresh once the
  engine answers.
- Which buttons are enabled follows the state (:func:`allowed_actions`), and none is
  while an action runs.

Panel (the Stats chart and the Exec terminal are Panel views) is loaded when the page
is made in a notebook cell: its browser side must be displayed by a cell before any
Panel view is drawn, and a tab opened later by a click runs in a comm callback, whose
outputs no page shows (see :mod:`._panel`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import ipywidgets
from traitlets import Bool, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Container, Environment, Event, NotFound
from ghostpanel_kernel.engine._times import engine_time_ns

from ._base import EngineWidget
from ._container_list import _GONE_ACTIONS, _QUIET_ACTIONS, _STATE_AFTER
from ._container_overview import header_html, overview_html
from ._controls import Confirmation
from ._follower import UNREACHABLE
from ._live_table import follow_events, running_loop
from ._status import describe_error

__all__ = ["ACTIONS", "TABS", "ContainerPage", "allowed_actions"]

#: The page's tabs, in order.
TABS = ("Overview", "Logs", "Stats", "Exec", "Files", "Inspect")

#: The lifecycle actions, in the order of their buttons (Pause and Unpause share one).
ACTIONS = ("start", "stop", "restart", "pause", "unpause", "kill", "remove")

_DONE = {"start": "Started", "stop": "Stopped", "restart": "Restarted", "pause": "Paused",
         "unpause": "Unpaused", "kill": "Killed", "remove": "Removed"}
_STOPPED = frozenset({"created", "exited", "stopped", "dead", "configured", "initialized"})
# Podman says "stopped" between a container's death and its clean-up, and an inspect
# asked for on the ``kill`` or ``die`` event can still see it: the ``cleanup`` event,
# quiet for the container list, is what tells the page that "exited" is now final.
_QUIET = _QUIET_ACTIONS - {"cleanup"}


def allowed_actions(state: str) -> frozenset[str]:
    """The lifecycle actions that make sense for a container in ``state``.

    Remove is always offered for a container that exists (a running one is stopped
    first: the question says so); nothing is for a removed one, or one whose state is
    not known yet.

    Examples
    --------
    >>> sorted(allowed_actions("running"))
    ['kill', 'pause', 'remove', 'restart', 'stop']
    >>> sorted(allowed_actions("exited")), sorted(allowed_actions("removed"))
    (['remove', 'restart', 'start'], [])
    """
    if state == "running":
        return frozenset({"stop", "restart", "pause", "kill", "remove"})
    if state == "paused":
        return frozenset({"unpause", "kill", "remove"})
    if state == "restarting":
        return frozenset({"stop", "kill", "remove"})
    if state in _STOPPED:
        return frozenset({"start", "restart", "remove"})
    if state in ("", "removed", "removing"):
        return frozenset()
    return frozenset({"remove"})  # a state this page does not know: removal still works


def _canonical_tab(value: str) -> str:
    for tab in TABS:
        if tab.lower() == value.strip().lower():
            return tab
    raise TraitError(f"tab must be one of {', '.join(TABS)}, not {value!r}")


class ContainerPage(EngineWidget):
    """One container: header, lifecycle buttons and the tabs Overview, Logs, Stats,
    Exec, Files and Inspect, kept current by the engine's events.

    Parameters
    ----------
    environment
        The environment (``ghostpanel_kernel.connect(...)``, the async one).
    container
        The container's name or id (or a :class:`~ghostpanel_kernel.engine.Container`).
    tab
        The tab shown first, one of :data:`TABS` (case does not matter).
    stats_interval
        Seconds between two samples of the Stats tab.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> env = connect("unix:///run/podman/podman.sock", name="laptop")  # doctest: +SKIP
    >>> page = ContainerPage(env, "web", tab="Logs")                     # doctest: +SKIP
    >>> page                                                             # doctest: +SKIP
    >>> await page.act("restart")                                        # doctest: +SKIP
    True
    """

    container = Unicode("", help="The container shown, its name or id; set it to show "
                        "another.").tag(sync=True)
    tab = Unicode("Overview", help=f"The tab shown: one of {', '.join(TABS)}.").tag(
        sync=True)
    state = Unicode("", read_only=True, help="The container's state as last known "
                    "(running, exited...; removed; empty when not known).").tag(sync=True)
    health = Unicode("", read_only=True, help="healthy, unhealthy, starting, or empty "
                     "without a healthcheck.").tag(sync=True)
    removed = Bool(False, read_only=True,
                   help="Whether the container was removed while shown.").tag(sync=True)

    _LABELS: ClassVar[dict[str, tuple[str, str, str]]] = {  # description, icon, style
        "start": ("Start", "play", "success"), "stop": ("Stop", "stop", "warning"),
        "restart": ("Restart", "refresh", ""), "pause": ("Pause", "pause", ""),
        "kill": ("Kill", "bolt", "danger"), "remove": ("Remove", "trash", "danger")}

    def __init__(self, environment: Environment, container: str | Container, *,
                 tab: str = "Overview", stats_interval: float = 2.0, **kwargs: Any) -> None:
        if isinstance(container, Container):
            ident = container.name or container.id
        elif isinstance(container, str) and container.strip():
            ident = container.strip()
        else:
            raise ValueError(f"ContainerPage needs a container name or id, not {container!r}")
        tab = _canonical_tab(tab)  # before any widget is made: a refusal leaves none open
        if not float(stats_interval) > 0:
            raise ValueError(f"stats_interval must be a positive number of seconds, "
                             f"not {stats_interval}")
        self._stats_interval = float(stats_interval)
        self._ready = False  # observers wait until the page is whole
        self._generation = 0  # bumped when another container is shown: late answers drop
        self._object: Container | None = None
        self._follower: asyncio.Task[Any] | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._fetch_again = False
        self._back_callbacks: list[Callable[[], None]] = []
        self.attrs: dict[str, Any] = {}
        #: The tabs' views built so far, by tab name (Overview is :attr:`overview`).
        self.views: dict[str, ipywidgets.Widget] = {}

        self.back_button = ipywidgets.Button(description="\u2190 Containers",
                                             tooltip="Back to the container list",
                                             layout=ipywidgets.Layout(width="auto"))
        self.title = ipywidgets.HTML()
        self.buttons: dict[str, ipywidgets.Button] = {}
        for action, (description, icon, style) in self._LABELS.items():
            self.buttons[action] = ipywidgets.Button(
                description=description, icon=icon, button_style=style, disabled=True,
                layout=ipywidgets.Layout(width="auto"))
        self.confirmation = Confirmation()
        self.overview = ipywidgets.HTML(layout=ipywidgets.Layout(width="100%"))
        self.overview.add_class("gp-container-overview")
        self._boxes = {name: ipywidgets.VBox() for name in TABS}
        self._boxes["Overview"].children = [self.overview]
        self.tabs = ipywidgets.Tab(children=[self._boxes[name] for name in TABS],
                                   titles=TABS)
        super().__init__(environment, **kwargs)
        self.add_class("gp-container-page")

        self.back_button.on_click(lambda _: self._back_clicked())
        for action in ("start", "stop", "restart", "kill"):
            self.buttons[action].on_click(lambda _, action=action: self._clicked(action))
        self.buttons["pause"].on_click(
            lambda _: self._clicked("unpause" if self.state == "paused" else "pause"))
        self.buttons["remove"].on_click(lambda _: self.request_remove())
        self.tabs.observe(self._tab_selected, "selected_index")
        self.children = [
            ipywidgets.HBox([self.back_button, self.title],
                            layout=ipywidgets.Layout(align_items="center")),
            ipywidgets.HBox(list(self.buttons.values()),
                            layout=ipywidgets.Layout(flex_flow="row wrap")),
            self.confirmation, self.status, self.tabs,
        ]
        self.tab = tab
        self.container = ident
        self._load_panel_for_later_tabs()
        self._ready = True
        self._open()

    # -- traits
    @validate("tab")
    def _valid_tab(self, proposal: dict[str, Any]) -> str:
        return _canonical_tab(str(proposal["value"]))

    @validate("container")
    def _valid_container(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if not value:
            raise TraitError("container must be a container's name or id, not empty")
        return value

    @observe("tab")
    def _tab_changed(self, change: dict[str, Any]) -> None:
        index = TABS.index(change["new"])
        if self.tabs.selected_index != index:
            self.tabs.selected_index = index
        if self._ready:
            self._build(change["new"])

    @observe("container")
    def _container_changed(self, change: dict[str, Any]) -> None:
        if self._ready and change["old"] != change["new"]:
            self._open()

    def _tab_selected(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.tab = TABS[change["new"]]

    @staticmethod
    def _load_panel_for_later_tabs() -> None:
        from ._panel_loader import in_cell

        if in_cell():
            from ._panel import load_panel

            load_panel()

    # -- what the page shows
    @property
    def name(self) -> str:
        """The container's name as the engine says it (what was given until then)."""
        if self._object is not None and self._object.name:
            return self._object.name
        return self.container

    def on_back(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when "← Containers" is clicked."""
        self._back_callbacks.append(callback)

    def _back_clicked(self) -> None:
        for callback in list(self._back_callbacks):
            with self.status.reporting("Back"):
                callback()

    def _set_state(self, state: str, health: str | None = None) -> None:
        self.set_trait("state", state)
        if health is not None:
            self.set_trait("health", health)
        self._render()

    def _render(self) -> None:
        if self._closed:
            return
        self.title.value = header_html(self.name, self.attrs, state=self.state)
        if self.attrs:
            self.overview.value = overview_html(self.attrs, engine_url=self.env.url,
                                                state=self.state)
        self._update_buttons()

    def _update_buttons(self) -> None:
        allowed = frozenset() if self.busy or self.removed else allowed_actions(self.state)
        for action, button in self.buttons.items():
            if action == "pause":
                paused = self.state == "paused"
                button.description = "Unpause" if paused else "Pause"
                button.icon = "play-circle" if paused else "pause"
                button.disabled = not allowed & {"pause", "unpause"}
            else:
                button.disabled = action not in allowed

    def _set_busy(self, busy: bool, action: str = "") -> None:
        super()._set_busy(busy, action)
        if not self._closed:
            self._update_buttons()

    def _show(self, container: Container) -> None:
        self._object = container
        self.attrs = dict(container.attrs)
        self.set_trait("removed", False)
        self._set_state(container.state, container.health)

    def _show_removed(self) -> None:
        if self.removed:
            return
        self.set_trait("removed", True)
        self.confirmation.dismiss()
        self._set_state("removed", "")
        self.status.warning(f"Container {self.name} was removed from {self.env.name}.")
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()  # the id is gone for good: no event can come

    def _show_unknown(self) -> None:
        self.attrs = {}
        self._set_state("")
        message = (f"No container {self.container!r} on {self.env.name}: check its name, "
                   "or it was removed.")
        self.status.error(message)
        self.overview.value = f'<div class="gp-page-unknown"><i>{message}</i></div>'

    # -- tabs
    def _build(self, tab: str) -> None:
        """Make the view of ``tab`` the first time it is shown."""
        if tab == "Overview" or tab in self.views or self._closed:
            return
        env, name = self.env, self.name
        with self.status.reporting(f"Open the {tab} tab"):
            view: ipywidgets.Widget
            if tab == "Logs":
                from ._log_stream import LogStream

                view = LogStream(env, name, tail=200)
            elif tab == "Stats":
                from ._stats_monitor import StatsMonitor

                view = StatsMonitor(env, name, interval=self._stats_interval)
            elif tab == "Exec":
                from ._exec_console import ExecConsole

                view = ExecConsole(env, name)
            elif tab == "Files":
                from ._file_browser import FileBrowser

                view = FileBrowser(env, name)
            else:
                from ._container_inspector import ContainerInspector

                view = ContainerInspector(env, name)
            self.views[tab] = view
            self._boxes[tab].children = [view]

    def _close_views(self) -> None:
        for tab, view in list(self.views.items()):
            self._boxes[tab].children = []
            view.close()
        self.views.clear()

    # -- following the container
    def _open(self) -> None:
        """Show :attr:`container` afresh: inspect it, then follow its events."""
        self._generation += 1
        for task in (self._follower, self._fetching):
            if task is not None:
                task.cancel()
        self._follower = self._fetching = None
        self._close_views()
        self._object = None
        self.attrs = {}
        self.set_trait("removed", False)
        self.confirmation.dismiss()
        self.overview.value = f"<i>Inspecting {self.container}\u2026</i>"
        self._set_state("", "")
        self._build(self.tab)
        if running_loop("Opening a container page", self.status) is None:
            return
        self._task = self._spawn(self._first_look(self._generation),
                                 f"ghostpanel ContainerPage: open {self.container}")

    async def _first_look(self, generation: int) -> None:
        self.status.clear()
        try:
            container = await self.env.containers.get(self.container)
        except NotFound:
            if generation == self._generation:
                self._show_unknown()
            return
        except UNREACHABLE as error:
            if generation == self._generation:
                self.status.error(f"Inspect {self.container} failed: {describe_error(error)}"
                                  " (trying again)")
                self._follower = self._spawn(self._follow(generation, self.container))
            return
        if generation != self._generation:
            return
        self._show(container)
        self._follower = self._spawn(self._follow(generation, container.id))

    async def _follow(self, generation: int, ident: str) -> None:
        lost = False

        def on_down(_: Environment, error: BaseException, retry: float | None) -> None:
            nonlocal lost
            if retry is not None and generation == self._generation and not self.removed:
                lost = True
                self.status.error(f"Lost {self.env.name}'s events: {describe_error(error)};"
                                  f" trying again in {retry:g} s.")

        def on_up(_: Environment) -> None:
            nonlocal lost
            if lost and generation == self._generation and not self.removed:
                lost = False
                self.status.success(f"{self.env.name} answers again.")

        async def connect(_: Environment) -> None:
            # After each (re)connection: what changed while nobody listened.
            await self._inspect(generation)

        await follow_events(
            self.env, filters={"type": ["container"], "container": [ident]},
            on_event=lambda _, event: self._on_event(generation, event),
            on_up=on_up, on_down=on_down, connect=connect)

    def _on_event(self, generation: int, event: Event) -> None:
        if generation != self._generation or event.type != "container" or self.removed:
            return
        if self._object is not None and event.actor_id != self._object.id:
            return
        action = event.action.split(":", 1)[0]  # Docker: "health_status: healthy"
        if action in _QUIET:
            return
        if action in _GONE_ACTIONS:
            self._show_removed()
            return
        state = _STATE_AFTER.get(action)
        if state is not None and state != self.state and not self._predates_shown(event):
            self._set_state(state)  # at once; the inspect below fills in the rest
        self._refetch(generation)

    def _predates_shown(self, event: Event) -> bool:
        """Whether ``event`` is older than the last start or stop the page shows.

        Events can lag behind an action's own inspect (the page inspects as soon as
        the engine answered the action): a late ``start`` of a restart must not show
        "running" over the "exited" of the stop that came after it.
        """
        state = self.attrs.get("State")
        if not isinstance(state, dict):
            return False
        stamps = [engine_time_ns(state.get(key)) for key in ("StartedAt", "FinishedAt")]
        latest = max((stamp for stamp in stamps if stamp is not None), default=None)
        return latest is not None and event.time * 1e9 < latest - 1e6  # 1 ms of slack

    def _refetch(self, generation: int) -> None:
        """Inspect again; one inspect in flight, and one more if events came meanwhile."""
        if self._fetching is not None and not self._fetching.done():
            self._fetch_again = True
            return
        self._fetching = self._spawn(self._fetch_loop(generation))

    async def _fetch_loop(self, generation: int) -> None:
        while True:
            self._fetch_again = False
            try:
                await self._inspect(generation)
            except UNREACHABLE:
                return  # the follower sees the engine go, says so and inspects on return
            if not self._fetch_again:
                return

    async def _inspect(self, generation: int) -> None:
        ident = self._object.id if self._object is not None else self.container
        try:
            container = await self.env.containers.get(ident)
        except NotFound:
            if generation == self._generation:
                if self._object is None:
                    self._show_unknown()
                else:
                    self._show_removed()
            return
        if generation == self._generation and not self._fetch_again and not self.removed:
            self._show(container)

    # -- lifecycle
    def _clicked(self, action: str) -> None:
        self._start(action.capitalize(), lambda: self.act(action))

    async def act(self, action: str) -> bool:
        """Run a lifecycle action on the container: one of :data:`ACTIONS`.

        ``remove`` stops a running container first (the button asks before). The
        header follows at once, without waiting for the engine's event. Errors are
        shown in the status line; returns whether the action succeeded.
        """
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        generation = self._generation
        with self.status.reporting(f"{action.capitalize()} {self.name}"):
            container = self._object
            if container is None:
                container = await self.env.containers.get(self.container)
            if action == "remove":
                await container.remove(force=self.state in ("running", "paused",
                                                            "restarting"))
                if generation == self._generation:
                    self._show_removed()
                    self.status.success(f"Removed {self.name}.")
                return True
            await getattr(container, action)()
            if generation == self._generation:
                await self._inspect(generation)
                self.status.success(f"{_DONE[action]} {self.name}.")
            return True
        return False

    def request_remove(self) -> None:
        """Ask before removing the container (Confirm removes it)."""
        if self.removed or not allowed_actions(self.state) & {"remove"}:
            return
        running = self.state in ("running", "paused", "restarting")
        question = (f"Remove container {self.name}?"
                    + (" It is running: it will be stopped first." if running else ""))
        self.confirmation.ask(question, lambda: self._start("Remove",
                                                            lambda: self.act("remove")))

    async def wait_idle(self) -> None:
        """Wait until the page's first look, the action running and the inspects in
        flight have ended (the events follower aside: it ends with the page)."""
        pending = [task for task in self._tasks if task is not self._follower]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # -- lifecycle of the widget
    def _release(self) -> None:
        self._back_callbacks.clear()
        self._generation += 1  # whatever is still in flight shows nothing

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the page's tasks and its tabs' readers ended."""
        for view in list(self.views.values()):
            closing = getattr(view, "aclose", None)
            if closing is not None:
                await closing()
        tasks = list(self._tasks)
        self.close()
        await asyncio.gather(*tasks, return_exceptions=True)
