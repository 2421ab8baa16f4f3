"""``HomeView``: one card per environment, refreshed live; a click opens that environment.

>>> home = HomeView()                                                   # doctest: +SKIP
>>> home.on_open(lambda name: print("open", name))                      # doctest: +SKIP

Each environment is read by a task of its own (:class:`SummaryReader`, each read
within ``timeout`` seconds), every ``refresh`` seconds and soon after the engine reports
a container, image or volume event: a dead or silent host never holds up the other
cards, and its own card says why it cannot be reached (docs/home.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.environments._summary import EnvironmentSummary, SummaryReader

from ._base import TaskBox
from ._home_card import HomeCard
from ._live_table import close_later, open_environments, running_loop
from ._status import StatusLine, describe_error

if TYPE_CHECKING:
    from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec

__all__ = ["HomeView"]

_log = logging.getLogger("ghostpanel_widgets")

#: The engine events that change what a card counts.
_EVENT_FILTERS = {"type": ["container", "image", "volume"]}
#: Seconds an event waits for the others of its burst (``compose up`` starts ten
#: containers at once: one read, not ten).
_EVENT_SETTLE = 0.3
#: After an event, a read waits at least this many times the last read's duration: an
#: engine whose containers change all the time spends at most a fifth of its time on
#: the card (a read takes 20 ms at 3 containers, over a second at 100 on a busy host).
_EVENT_SPACING = 4.0


class _Slot:
    """What the view holds for one environment: its card and its tasks."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.card = HomeCard(environment.name, environment.url)
        self.changed = asyncio.Event()  # an engine event arrived since the last read
        self.lock = asyncio.Lock()  # one read at a time: CPU is measured between reads
        self.loop: asyncio.Task[None] | None = None
        self.watcher: asyncio.Task[None] | None = None


class HomeView(TaskBox):
    """A grid of cards, one per environment: reachable or not (and why), engine and
    version, containers running / stopped / unhealthy, images, volumes, CPU and memory
    in use, and the time of the last refresh.

    Parameters
    ----------
    environments
        :class:`~ghostpanel_kernel.engine.Environment` or ``EnvironmentSpec`` objects
        (specs are opened here and closed by :meth:`close`); None: every environment
        of ``registry``.
    registry
        Where to find the environments when ``environments`` is None; the session's
        (:func:`~ghostpanel_kernel.environments.session_registry`) when None.
    refresh
        Seconds between two reads of an environment (engine events bring a read
        sooner).
    timeout
        Seconds one read of one environment may take; past it, its card says that the
        engine did not answer in time.
    events
        Read again soon after the engine reports a container, image or volume event.

    Examples
    --------
    >>> home = HomeView(refresh=10)                                   # doctest: +SKIP
    >>> home.on_open(lambda name: dashboard.show_environment(name))   # doctest: +SKIP
    >>> await home.refresh()                                          # doctest: +SKIP
    [EnvironmentSummary(name='local', ...), ...]
    """

    opened = Unicode("", help="The environment whose card was clicked last.").tag(sync=True)
    refresh_interval = Float(5.0, help="Seconds between two reads of an environment."
                             ).tag(sync=True)
    live = Bool(True, help="Keep reading the environments.").tag(sync=True)
    revision = Int(0, help="Bumped each time a card changes (kernel side).")

    def __init__(self, environments: Iterable[Environment | EnvironmentSpec] |
                 Environment | EnvironmentSpec | None = None, *,
                 registry: EnvironmentRegistry | None = None, refresh: float = 5.0,
                 timeout: float = 5.0, events: bool = True, **kwargs: Any) -> None:
        if not float(refresh) > 0:
            raise ValueError(f"refresh must be a positive number of seconds, not {refresh!r}")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._owned: list[Environment] = []
        self._callbacks: list[Callable[[str], None]] = []
        self._reader = SummaryReader(timeout=timeout)
        self._events = events
        registry_error = ""
        if environments is None:
            environments, registry_error = _registry_environments(registry)
        shown, self._owned = open_environments(environments)  # bad arguments: no widget made
        self.status = StatusLine()
        self._slots = {environment.name: _Slot(environment) for environment in shown}
        for name, slot in self._slots.items():
            slot.card.open_button.on_click(lambda _, name=name: self.open_environment(name))
        self.grid = ipywidgets.GridBox(
            [slot.card for slot in self._slots.values()],
            layout=ipywidgets.Layout(
                grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))",
                grid_gap="12px", width="100%"))
        self.grid.add_class("gp-home-grid")
        self.refresh_button = ipywidgets.Button(
            description="Refresh", icon="sync", tooltip="Read every environment now")
        self.refresh_button.on_click(lambda _: self._refresh_clicked())
        self.live_toggle = ipywidgets.ToggleButton(
            value=True, description="Live", icon="pause",
            tooltip="Read the environments again every few seconds")
        self.live_toggle.observe(lambda change: setattr(self, "live", change["new"]),
                                 "value")
        header = ipywidgets.HTML("<h3 style='margin: 4px 0'>Environments</h3>")
        super().__init__(**kwargs)
        self.refresh_interval = refresh
        self.add_class("gp-home")
        self.children = [ipywidgets.HBox([header, self.refresh_button, self.live_toggle]),
                         self.status, self.grid]
        if registry_error:
            self.status.error(f"Cannot read the environments: {registry_error}")
        elif not self._slots:
            self.status.warning("No environment is registered and no local engine "
                                "answered: run `ghostpanel env add NAME URL`, or start an "
                                "engine.")
        self._start_loops()

    # -- traits -----------------------------------------------------------------------

    @validate("refresh_interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"refresh must be a positive number of seconds, not {value}")
        return value

    @observe("live")
    def _live_changed(self, change: dict[str, Any]) -> None:
        self.live_toggle.value = change["new"]
        self.live_toggle.icon = "pause" if change["new"] else "play"
        if change["new"]:
            self._start_loops()
        else:
            for slot in self._slots.values():
                for task in (slot.loop, slot.watcher):
                    if task is not None:
                        task.cancel()
                slot.loop = slot.watcher = None

    # -- public API -------------------------------------------------------------------

    @property
    def environments(self) -> list[Environment]:
        """The environments shown, in card order."""
        return [slot.environment for slot in self._slots.values()]

    @property
    def cards(self) -> dict[str, HomeCard]:
        """The cards, by environment name."""
        return {name: slot.card for name, slot in self._slots.items()}

    @property
    def summaries(self) -> dict[str, EnvironmentSummary | None]:
        """Each environment's latest summary (None before its first read ended)."""
        return {name: slot.card.summary for name, slot in self._slots.items()}

    def on_open(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` each time the card of environment ``name`` is clicked
        (also when it was the one opened already, unlike an observer of ``opened``)."""
        self._callbacks.append(callback)

    def open_environment(self, name: str) -> None:
        """Open environment ``name``, as a click on its card's button does.

        Raises
        ------
        KeyError
            No card of that name.
        """
        if name not in self._slots:
            raise KeyError(f"no environment {name!r} on the home view "
                           f"(known: {', '.join(self._slots) or 'none'})")
        self.opened = name
        for callback in list(self._callbacks):
            try:
                callback(name)
            except Exception as error:  # a caller's bug: said, and the others still run
                self.status.error(f"Opening {name} failed: {type(error).__name__}: "
                                  f"{describe_error(error)}")
                _log.exception("on_open callback for %s failed", name)

    async def refresh(self) -> list[EnvironmentSummary]:
        """Read every environment now, at once; their summaries, in card order.

        Each read keeps within the view's ``timeout``; a card shows its summary as soon
        as it arrives, whatever the others do.
        """
        return list(await asyncio.gather(*(self._read(slot)
                                           for slot in self._slots.values())))

    # -- reading ----------------------------------------------------------------------

    async def _read(self, slot: _Slot) -> EnvironmentSummary:
        async with slot.lock:
            slot.changed.clear()
            summary = await self._reader.read(slot.environment)
            if self._closed:
                return summary
            slot.card.show(summary)
            self.revision += 1
            if summary.reachable and self._events and self.live and (
                    slot.watcher is None or slot.watcher.done()):
                slot.watcher = self._spawn(self._watch(slot),
                                           f"ghostpanel HomeView events {slot.environment.name}")
            return summary

    async def _follow(self, slot: _Slot) -> None:
        """Read ``slot`` every ``refresh_interval`` seconds, and soon after an event."""
        first = True
        while not self._closed:
            elapsed = 0.0
            try:
                summary = await self._read(slot)
                # The first read also pays once-only costs (the engine's version, the
                # host's /info): it says little of what the next reads cost.
                elapsed = 0.0 if first else summary.elapsed
            except Exception as error:  # a bug: said, and the card keeps being read
                self.status.error(f"Showing {slot.environment.name} failed: "
                                  f"{type(error).__name__}: {describe_error(error)}")
                _log.exception("HomeView read of %s failed", slot.environment.name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh_interval):
                    await slot.changed.wait()
            if slot.changed.is_set():
                await asyncio.sleep(max(_EVENT_SETTLE, _EVENT_SPACING * elapsed))
            first = False

    async def _watch(self, slot: _Slot) -> None:
        """Flag the card as changed on each event, until the stream ends or breaks (the
        next read that reaches the engine follows it again)."""
        try:
            async with contextlib.aclosing(slot.environment.events(  # type: ignore[type-var]
                    filters=_EVENT_FILTERS)) as events:
                async for _ in events:
                    slot.changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the card's reads say what is wrong with the engine
            _log.debug("events of %s ended: %s", slot.environment.name, error)

    def _refresh_clicked(self) -> None:
        if not self._closed and running_loop("Refresh", self.status) is not None:
            self._spawn(self.refresh(), "ghostpanel HomeView refresh")

    def _start_loops(self) -> None:
        if self._closed or not self._slots:
            return
        if running_loop("Reading the environments", self.status) is None:
            return
        for name, slot in self._slots.items():
            if slot.loop is None or slot.loop.done():
                slot.loop = self._spawn(self._follow(slot), f"ghostpanel HomeView {name}")

    def _release(self) -> None:
        close_later(self._owned)
        self._owned = []


def _registry_environments(registry: EnvironmentRegistry | None
                           ) -> tuple[list[EnvironmentSpec], str]:
    """The registry's environments, and why they could not be read ('' if they were)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ghostpanel_kernel.engine import GhostPanelError
    from ghostpanel_kernel.environments import session_registry

    owned = registry is None
    try:
        if registry is None:
            registry = session_registry()
        return registry.list(), ""
    except (SQLAlchemyError, GhostPanelError, OSError, ValueError) as error:
        return [], describe_error(error)
    finally:
        if owned and registry is not None:
            registry.close()
