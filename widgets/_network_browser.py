"""``NetworkBrowser``: an environment's networks, created (name, driver, subnet) and
removed, and containers connected to them or disconnected, from a notebook.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets

from ghostpanel_kernel.engine import Container, Environment, Network

from ._base import EngineWidget
from ._controls import Confirmation, RowList

__all__ = ["NetworkBrowser"]


class NetworkBrowser(EngineWidget):
    """The networks of an environment: create (name, driver, subnet), remove (after a
    confirmation), connect or disconnect a container picked from the environment's.

    Examples
    --------
    >>> browser = NetworkBrowser(env)                                    # doctest: +SKIP
    >>> await browser.create("backend", subnet="10.89.10.0/24")           # doctest: +SKIP
    >>> await browser.connect("backend", "web")                           # doctest: +SKIP
    """

    DRIVERS = ("bridge", "macvlan", "ipvlan")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.networks: list[Network] = []
        self.containers: list[Container] = []
        self.listing = RowList(["Name", "Id", "Driver", "Subnets", "Containers"],
                               empty="No networks.")
        self.details = ipywidgets.HTML()
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash")
        self.name_field = ipywidgets.Text(description="Name", placeholder="backend")
        self.driver_field = ipywidgets.Dropdown(options=self.DRIVERS, value="bridge",
                                                description="Driver")
        self.subnet_field = ipywidgets.Text(description="Subnet", placeholder="10.89.10.0/24")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary")
        self.container_field = ipywidgets.Dropdown(options=[], description="Container")
        self.connect_button = ipywidgets.Button(description="Connect", icon="link")
        self.disconnect_button = ipywidgets.Button(description="Disconnect", icon="unlink")
        self.confirmation = Confirmation()
        super().__init__(env, **kwargs)
        self.add_class("gp-network-browser")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.create_button.on_click(lambda _: self._start("Create", self._create_clicked))
        self.remove_button.on_click(lambda _: self._ask_remove())
        self.connect_button.on_click(lambda _: self._start("Connect", self.connect))
        self.disconnect_button.on_click(lambda _: self._start("Disconnect", self.disconnect))
        self.listing.select.observe(lambda _: self._show_details(), "value")
        self.children = [
            ipywidgets.HBox([self.refresh_button, self.remove_button]),
            self.confirmation, self.status, self.listing, self.details,
            ipywidgets.HBox([self.container_field, self.connect_button,
                             self.disconnect_button]),
            ipywidgets.HBox([self.name_field, self.driver_field, self.subnet_field,
                             self.create_button]),
        ]
        self._start("Refresh", self.refresh)

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.remove_button, self.create_button,
                self.connect_button, self.disconnect_button)

    @property
    def selected(self) -> Network | None:
        """The selected network, as last listed."""
        return next((n for n in self.networks if n.id == self.listing.value), None)

    async def refresh(self) -> list[Network] | None:
        """List the networks and the environment's containers again."""
        with self.status.reporting("Listing networks"):
            networks = await self.env.networks.list()
            containers = await self.env.containers.list(all=True)
            self.networks = sorted(networks, key=lambda n: n.name)
            self.containers = sorted(containers, key=lambda c: c.name)
            self.listing.show([(n.id, [n.name, n.short_id, n.driver, ", ".join(n.subnets),
                                       str(len(n.containers))]) for n in self.networks])
            previous = self.container_field.value
            names = [c.name for c in self.containers]
            # Not under hold_trait_notifications: a Dropdown validates the value held
            # against the options it had before.
            self.container_field.options = names
            self.container_field.value = previous if previous in names else (
                names[0] if names else None)
            self._show_details()
            self.status.clear()  # what it said is no longer current
            return self.networks
        return None

    def _show_details(self) -> None:
        network = self.selected
        if network is None:
            self.details.value = ""
            return
        names = sorted(str(entry.get("Name") or ident[:12])
                       for ident, entry in network.containers.items())
        self.details.value = (
            f"<b>{html.escape(network.name)}</b> ({html.escape(network.driver)}): "
            + (html.escape(", ".join(names)) if names else "<i>no containers attached</i>"))

    def _select(self, network: str) -> None:
        match = next((n for n in self.networks if network in (n.name, n.id)), None)
        if match is not None:
            self.listing.value = match.id

    async def _create_clicked(self) -> None:
        if await self.create(self.name_field.value, driver=self.driver_field.value,
                             subnet=self.subnet_field.value.strip() or None):
            self.name_field.value = ""
            self.subnet_field.value = ""

    async def create(self, name: str, *, driver: str = "bridge",
                     subnet: str | None = None) -> Network | None:
        """Create a network ``name`` (``subnet`` in CIDR form, or the engine picks one)."""
        name = name.strip()
        with self.status.reporting(f"Create network {name}".rstrip()):
            if not name:
                raise ValueError("type a name for the network first")
            network = await self.env.networks.create(name, driver=driver, subnet=subnet)
            if await self.refresh() is not None:
                self._select(network.id)
                self.status.success(f"Created network {network.name} ({network.driver}"
                                + (f", {', '.join(network.subnets)}" if network.subnets
                                   else "") + ").")
            return network
        return None

    def _selected_name(self) -> str:
        network = self.selected
        return network.name if network is not None else ""

    def _ask_remove(self) -> None:
        name = self._selected_name()
        if not name:
            self.status.warning("Select a network to remove first.")
            return
        self.confirmation.ask(f"Remove network {name}?",
                              lambda: self._start("Remove", lambda: self.remove(name)))

    async def remove(self, name: str | None = None) -> bool:
        """Remove the network ``name`` (default: the selected one)."""
        name = name or self._selected_name()
        with self.status.reporting(f"Remove network {name}".rstrip()):
            if not name:
                raise ValueError("select a network to remove first")
            await (await self.env.networks.get(name)).remove()
            if await self.refresh() is not None:
                self.status.success(f"Removed network {name}.")
            return True
        return False

    def _pair(self, network: str | None, container: str | None) -> tuple[str, str]:
        network = network or self._selected_name()
        container = container or self.container_field.value or ""
        if not network:
            raise ValueError("select a network first")
        if not container:
            raise ValueError("pick a container first")
        return network, container

    async def connect(self, network: str | None = None, container: str | None = None) -> bool:
        """Attach ``container`` to ``network`` (default: the selected ones)."""
        with self.status.reporting("Connect"):
            network, container = self._pair(network, container)
            await (await self.env.networks.get(network)).connect(container)
            if await self.refresh() is not None:
                self._select(network)
                self.status.success(f"Connected {container} to {network}.")
            return True
        return False

    async def disconnect(self, network: str | None = None,
                         container: str | None = None) -> bool:
        """Detach ``container`` from ``network`` (default: the selected ones)."""
        with self.status.reporting("Disconnect"):
            network, container = self._pair(network, container)
            await (await self.env.networks.get(network)).disconnect(container)
            if await self.refresh() is not None:
                self._select(network)
                self.status.success(f"Disconnected {container} from {network}.")
            return True
        return False
