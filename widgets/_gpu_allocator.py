"""``GpuAllocator``: the NVIDIA GPUs of a host as live cards (utilisation, memory,
temperature, who holds each), with assign and release of reservations.

A view over :mod:`ghostpanel_kernel.gpus` (docs/gpus.md): the inventory is read again
every ``interval`` seconds through NVML (or the simulation ``GHOSTPANEL_GPU_SIMULATE``
names, and then every card says "simulated"); reservations go through the kernel's
allocator, so the widget, ``ghostpanel gpu`` and Surge see the same ones. A host with
no driver or no GPU is one message card, never a traceback. On an agent's environment
(``https://`` or ``h3://`` with a token) the cards are the agent host's, read and
reserved through its ``/api/v1/gpus`` routes. The widget is described in
docs/widgets-snapshots-gpus.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import ipywidgets
from traitlets import Bool, Unicode

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gpus import (
    POLICIES,
    Allocation,
    GpuRequest,
    GpuUnavailable,
    Inventory,
    read_inventory,
)
from ghostpanel_kernel.gpus import GpuAllocator as Reservations
from ghostpanel_kernel.gpus._agent_client import AgentGpus, holders_of, is_agent

from ._base import close_widget_tree
from ._gpu_cards import Unit, card_html, message_card_html, units_of
from ._status import StatusLine

__all__ = ["GpuAllocator"]

_log = logging.getLogger("ghostpanel_widgets")
_LOCAL_SCHEMES = ("unix://", "npipe://")
_TITLES = {"no-driver": "No NVIDIA driver", "no-gpu": "No NVIDIA GPU",
           "error": "The GPUs cannot be read"}


def _width(width: str) -> ipywidgets.Layout:
    """A fixed width that a flex row does not shrink."""
    return ipywidgets.Layout(width=width, flex="0 0 auto")


class GpuAllocator(ipywidgets.VBox):
    """The GPUs of a host: a live card per GPU (or MIG device), assign and release.

    Parameters
    ----------
    env
        The environment whose host's GPUs to show. None or a local engine (a ``unix://``
        socket): this machine's, read through NVML. A GhostPanel agent: its host's,
        through the agent's ``/api/v1/gpus``. Another remote engine: a card saying they
        are read where it runs.
    host
        The host's name in the title (default: what the inventory says).
    interval
        Seconds between two readings (0: read once, then on Refresh only).
    history
        Utilisation samples each card's sparkline spans.
    database_url
        The store the reservations are kept in (default: GhostPanel's own).
    reader
        Reads the inventory (default :func:`~ghostpanel_kernel.gpus.read_inventory`;
        tests give a double).

    Examples
    --------
    >>> view = GpuAllocator(interval=2)                                 # doctest: +SKIP
    >>> await view.assign("steam", policy="exclusive")                   # doctest: +SKIP
    >>> await view.release("steam")                                      # doctest: +SKIP
    """

    state = Unicode("", read_only=True, help="The inventory's state: ok, no-driver, "
                    "no-gpu, error, remote (an engine on another host).").tag(sync=True)
    simulated = Bool(False, read_only=True,
                     help="The GPUs are simulated (GHOSTPANEL_GPU_SIMULATE).").tag(sync=True)
    busy = Bool(False, read_only=True, help="Whether an action runs.").tag(sync=True)

    def __init__(self, env: Environment | None = None, *, host: str | None = None,
                 interval: float = 2.0, history: int = 30, database_url: str | None = None,
                 reader: Callable[[], Inventory] = read_inventory, **kwargs: Any) -> None:
        if env is not None and not isinstance(env, Environment):
            raise TypeError(f"GpuAllocator needs an Environment or None, not "
                            f"{type(env).__name__}")
        if interval < 0:
            raise ValueError(f"interval must be 0 (no refresh) or more, not {interval}")
        self.env = env
        self.host = host
        self.interval = interval
        self.inventory: Inventory | None = None
        self.reservations: Reservations | None = None
        self._database_url = database_url
        #: The agent's GPU routes, when the environment is an agent.
        self.agent = AgentGpus(env) if env is not None and is_agent(env) else None
        self._reader = reader
        self._history: dict[str, deque[float | None]] = {}
        self._history_size = max(2, history)
        self._cards: dict[str, ipywidgets.HTML] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.task: asyncio.Task[Any] | None = None
        self.title = ipywidgets.HTML()
        self.status = StatusLine()
        self.cards = ipywidgets.HBox(layout=ipywidgets.Layout(flex_flow="row wrap"))
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.workload_field = ipywidgets.Text(description="Workload",
                                              placeholder="container or service name",
                                              layout=_width("300px"))
        self.policy_field = ipywidgets.Dropdown(options=list(POLICIES), value="exclusive",
                                                description="Policy", layout=_width("220px"))
        self.count_field = ipywidgets.BoundedIntText(value=1, min=1, max=64,
                                                     description="Count",
                                                     layout=ipywidgets.Layout(width="140px"))
        self.unit_field = ipywidgets.Dropdown(options=[("any free", "")], value="",
                                              description="GPU", layout=_width("320px"))
        self.assign_button = ipywidgets.Button(description="Assign", icon="plus",
                                               button_style="primary", layout=_width("110px"))
        self.release_field = ipywidgets.Dropdown(options=[], description="Holder",
                                                 layout=_width("300px"))
        self.release_button = ipywidgets.Button(description="Release", icon="times",
                                                layout=_width("110px"))
        super().__init__(**kwargs)
        self.add_class("gp-gpu-allocator")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.assign_button.on_click(lambda _: self._start("Assign", self._assign_clicked))
        self.release_button.on_click(lambda _: self._start("Release", self._release_clicked))
        self.form = ipywidgets.VBox([
            # Wraps on a narrow page rather than squeezing the button to nothing.
            ipywidgets.HBox([self.workload_field, self.policy_field, self.count_field,
                             self.unit_field, self.assign_button],
                            layout=ipywidgets.Layout(flex_flow="row wrap")),
            ipywidgets.HBox([self.release_field, self.release_button])])
        self.children = [ipywidgets.HBox([self.title, self.refresh_button]), self.status,
                         self.cards, self.form]
        self._start("Read the GPUs", self._run)

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.assign_button, self.release_button)

    # -- tasks ---------------------------------------------------------------------

    def _start(self, action: str, work: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any] | None:
        """Run ``work()`` as a task on the kernel's loop, its errors in the status line."""
        if self._closed:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.status.error(f"{action} needs a running asyncio event loop; a Jupyter "
                              "kernel has one, a plain script does not.")
            return None
        if self.busy and action != "Read the GPUs":
            self.status.warning(f"{action}: wait until the action running now ends.")
            return None

        async def run() -> None:
            with self.status.reporting(action):
                await work()

        task = loop.create_task(run(), name=f"ghostpanel GpuAllocator: {action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.task = task
        return task

    async def _run(self) -> None:
        """Read now, then every ``interval`` seconds until closed (0: once)."""
        while not self._closed:
            await self.refresh()
            if not self.interval or self.state == "remote":
                return
            await asyncio.sleep(self.interval)

    def _set_busy(self, busy: bool) -> None:
        self.set_trait("busy", busy)
        for control in self._controls():
            control.disabled = busy

    # -- reading -------------------------------------------------------------------

    def _remote(self) -> bool:
        """An engine elsewhere that is no agent: nothing here can read its GPUs."""
        return self.agent is None and self.env is not None and \
            not self.env.url.startswith(_LOCAL_SCHEMES)

    async def _read(self) -> tuple[Inventory, dict[str, list[Allocation]] | None]:
        """The inventory, and the holders when they are known already (an agent's)."""
        if self.agent is not None:
            inventory, allocations = await self.agent.read()
            return inventory, holders_of(allocations)
        # NVML calls block: off the kernel's event loop, which drives every widget.
        return await asyncio.to_thread(self._reader), None

    async def refresh(self) -> Inventory | None:
        """Read the GPUs and the reservations again and redraw the cards; ``None`` (the
        error shown) if that failed."""
        with self.status.reporting("Reading the GPUs"):
            if self._remote():
                assert self.env is not None
                self.set_trait("state", "remote")
                self._show_message(
                    "GPUs of another host",
                    f"{self.env.name} ({self.env.url}) is not this machine: its GPUs are "
                    "read where its engine runs (ghostpanel gpu ls there).", "info")
                return None
            inventory, holders = await self._read()
            self.inventory = inventory
            self.set_trait("state", inventory.state)
            self.set_trait("simulated", inventory.simulated)
            self._show_title(inventory)
            if inventory.state != "ok":
                self._show_message(_TITLES.get(inventory.state, "No GPUs"),
                                   inventory.message or f"no GPUs on {inventory.host}")
                return inventory
            if holders is None:  # this machine: the reservations are in the local store
                if self.reservations is None:
                    self.reservations = Reservations(inventory,
                                                     database_url=self._database_url)
                self.reservations.inventory = inventory
                holders = self.reservations.holders()
            self._draw(inventory, holders)
            if self.status.level == "error" and self.status.message.startswith("Reading"):
                self.status.clear()  # the GPUs answer again
            return inventory
        return None

    def _show_title(self, inventory: Inventory) -> None:
        host = html.escape(self.host or inventory.host)
        parts = [f"<b>GPUs of {host}</b>"]
        if self.agent is not None and self.env is not None:
            parts.append(f"through the agent <code>{html.escape(self.env.name)}</code>")
        if inventory.driver_version:
            parts.append(f"driver {html.escape(inventory.driver_version)}")
        if inventory.simulated:
            parts.append('<span class="gp-gpu-simulated" style="background: #6a1b9a; '
                         'color: white; border-radius: 3px; padding: 0 4px">simulated</span>'
                         f" from <code>{html.escape(inventory.source or '')}</code>")
        self.title.value = " \u00b7 ".join(parts)

    def _show_message(self, title: str, message: str, level: str = "warning") -> None:
        self._forget_cards()
        card = ipywidgets.HTML(message_card_html(title, message, level=level))
        self._cards[""] = card
        self.cards.children = [card]
        self.form.layout.display = "none"  # nothing to assign

    def _forget_cards(self) -> None:
        old = list(self._cards.values())
        self._cards.clear()
        self.cards.children = []
        for card in old:
            close_widget_tree(card)

    def _draw(self, inventory: Inventory, holders: dict[str, list[Allocation]]) -> None:
        units = units_of(inventory)
        for gpu in inventory.gpus:
            samples = self._history.setdefault(gpu.uuid, deque(maxlen=self._history_size))
            samples.append(None if gpu.utilization_gpu_percent is None
                           else float(gpu.utilization_gpu_percent))
        if "" in self._cards or set(self._cards) != {u.uuid for u in units}:
            # The GPUs changed (or a message card was shown): new cards, in order.
            self._forget_cards()
            self._cards = {u.uuid: ipywidgets.HTML() for u in units}
            self.cards.children = [self._cards[u.uuid] for u in units]
        for unit in units:
            value = card_html(unit, holders.get(unit.uuid, []),
                              list(self._history[unit.gpu.uuid]),
                              simulated=inventory.simulated)
            if self._cards[unit.uuid].value != value:  # unchanged cards send nothing
                self._cards[unit.uuid].value = value
        self.form.layout.display = ""
        self._offer_units(units)
        workloads = sorted({a.workload for held in holders.values() for a in held})
        if list(self.release_field.options) != workloads:
            self.release_field.options = workloads

    def _offer_units(self, units: Sequence[Unit]) -> None:
        options = [("any free", ""), *((u.title, u.uuid) for u in units)]
        if list(self.unit_field.options) != options:
            current = self.unit_field.value
            self.unit_field.options = options
            self.unit_field.value = current if current in {v for _, v in options} else ""

    # -- assign and release ----------------------------------------------------------

    async def _assign_clicked(self) -> None:
        unit = self.unit_field.value
        made = await self.assign(self.workload_field.value.strip(),
                                 policy=self.policy_field.value,
                                 count=None if unit else self.count_field.value,
                                 gpus=[unit] if unit else None)
        if made:
            self.workload_field.value = ""

    async def assign(self, workload: str, *, policy: str = "exclusive", count: int | None = 1,
                     gpus: Sequence[str] | None = None,
                     tenants: int | None = None) -> list[Allocation] | None:
        """Reserve GPUs for ``workload`` (a container or Surge service, by name).

        Parameters
        ----------
        policy
            ``exclusive``, ``shared``, ``time-sliced`` or ``mig``.
        count
            How many GPUs (MIG devices under ``mig``) when ``gpus`` names none.
        gpus
            Which: indices or UUIDs (``MIG-...`` for one MIG device).

        Returns
        -------
        list of Allocation or None
            What it holds now; ``None`` when it could not be reserved (the status line
            says why and who holds what).
        """
        with self.status.reporting(f"Assign to {workload}".rstrip()):
            self._set_busy(True)
            try:
                request = GpuRequest(count=None if gpus else count, gpus=tuple(gpus or ()),
                                     policy=GpuRequest.parse_policy(policy), tenants=tenants)
                try:
                    if self.agent is not None:  # the agent checks the workload and host
                        made = await self.agent.allocate(workload, request)
                    else:
                        made = (await self._ready()).allocate(workload, request)
                except GpuUnavailable:
                    # The refusal names holders the cards may not show yet (another
                    # client took the GPU since the last reading): draw them first.
                    await self.refresh()
                    raise
            finally:
                self._set_busy(False)
            await self.refresh()
            units = ", ".join(a.label for a in made)
            self.status.success(f"{workload} holds {units} ({made[0].policy})."
                                if made else f"{workload} holds nothing.")
            return made
        return None

    async def _release_clicked(self) -> None:
        workload = self.release_field.value
        if not workload:
            self.status.warning("No workload holds a GPU: nothing to release.")
            return
        await self.release(str(workload))

    async def release(self, workload: str) -> list[Allocation] | None:
        """Release everything ``workload`` holds; what was released."""
        with self.status.reporting(f"Release of {workload}"):
            self._set_busy(True)
            try:
                released = (await self.agent.release(workload) if self.agent is not None
                            else (await self._ready()).release(workload))
            finally:
                self._set_busy(False)
            await self.refresh()
            if released:
                self.status.success(f"Released {', '.join(a.label for a in released)} "
                                    f"held by {workload}.")
            else:
                self.status.info(f"{workload} held no GPU.")
            return released
        return None

    async def _ready(self) -> Reservations:
        if self.reservations is None or self.inventory is None or self.inventory.state != "ok":
            await self.refresh()
        if self.reservations is None or self.inventory is None or \
                self.inventory.state != "ok":
            message = self.inventory.message if self.inventory else "the GPUs were not read"
            raise ValueError(f"no GPU to assign: {message}")
        return self.reservations

    def close(self) -> None:
        """Stop reading, release the store and close every widget inside."""
        if getattr(self, "_closed", True):
            super().close()
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self.reservations is not None:
            with contextlib.suppress(Exception):
                self.reservations.close()
        close_widget_tree(self)
