"""``NetworkBrowser``: an environment's networks as a grid (driver, subnets, gateways,
the containers attached), removed together after one confirmation, created (name,
driver, subnet), and containers connected to one or disconnected, from a notebook.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets

from ghostpanel_kernel.engine import Container, Environment, Network

from ._resource_grid import ResourceGrid

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NetworkBrowser"]


def _gateways(network: Network) -> list[str]:
    config = (network.attrs.get("IPAM") or {}).get("Config") or []
    return [str(entry["Gateway"]) for entry in config if entry.get("Gateway")]


class NetworkBrowser(ResourceGrid):
    """The networks of an environment: driver, subnets, gateways and the containers
    attached. Sort, filter, tick rows and remove them together (after a confirmation;
    what the engine refuses, e.g. its default network, is said and the others still
    go); create (name, driver, subnet); connect or disconnect a container picked from
    the environment's to the one ticked network.

    Examples
    --------
    >>> browser = NetworkBrowser(env)                                    # doctest: +SKIP
    >>> await browser.create("backend", subnet="10.89.10.0/24")           # doctest: +SKIP
    >>> await browser.connect("backend", "web")                           # doctest: +SKIP
    >>> browser.row(browser.selected[0])["containers"]                   # doctest: +SKIP
    'web'
    """

    NOUN = ("network", "networks")
    COLUMNS: ClassVar[Mapping[str, str]] = {
        "name": "Name", "id": "Id", "driver": "Driver", "subnets": "Subnets",
        "gateways": "Gateways", "containers": "Containers"}
    SEARCHED = ("name", "id", "driver", "subnets", "gateways", "containers")
    DRIVERS = ("bridge", "macvlan", "ipvlan")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.networks: list[Network] = []
        self.containers: list[Container] = []
        self.name_field = ipywidgets.Text(description="Name", placeholder="backend")
        self.driver_field = ipywidgets.Dropdown(options=self.DRIVERS, value="bridge",
                                                description="Driver")
        self.subnet_field = ipywidgets.Text(description="Subnet", placeholder="10.89.10.0/24")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary")
        self.container_field = ipywidgets.Dropdown(options=[], description="Container")
        self.connect_button = ipywidgets.Button(description="Connect", icon="link",
                                                tooltip="Connect the container to the "
                                                        "ticked network")
        self.disconnect_button = ipywidgets.Button(description="Disconnect", icon="unlink",
                                                   tooltip="Disconnect the container from "
                                                           "the ticked network")
        super().__init__(env, **kwargs)
        self.add_class("gp-network-browser")
        self.create_button.on_click(lambda _: self._start("Create", self._create_clicked))
        self.connect_button.on_click(lambda _: self._start("Connect", self.connect))
        self.disconnect_button.on_click(lambda _: self._start("Disconnect", self.disconnect))

    def _extras(self) -> list[ipywidgets.Widget]:
        return [ipywidgets.HBox([self.container_field, self.connect_button,
                                 self.disconnect_button]),
                ipywidgets.HBox([self.name_field, self.driver_field, self.subnet_field,
                                 self.create_button])]

    def _controls(self) -> tuple[ipywidgets.Widget, ...]:
        return (*super()._controls(), self.create_button, self.connect_button,
                self.disconnect_button)

    @property
    def selected_network(self) -> Network | None:
        """The ticked network, as last listed, when exactly one is ticked."""
        keys = self.selected
        if len(keys) != 1:
            return None
        return next((n for n in self.networks if n.id == keys[0]), None)

    async def _read(self) -> pd.DataFrame:
        import pandas as pd

        networks = await self.env.networks.list()
        containers = await self.env.containers.list(all=True)
        self.networks = sorted(networks, key=lambda n: n.name)
        self.containers = sorted(containers, key=lambda c: c.name)
        # Attached: what each network reports, and what each container's listing says
        # (an engine may leave a network's Containers empty in its listing).
        attached: dict[str, set[str]] = defaultdict(set)
        for network in self.networks:
            for ident, entry in network.containers.items():
                attached[network.id].add(str(entry.get("Name") or ident[:12]))
        by_name = {n.name: n.id for n in self.networks}
        by_id = {n.id: n.id for n in self.networks}
        for container in self.containers:
            settings = container.attrs.get("NetworkSettings") or {}
            for name, entry in (settings.get("Networks") or {}).items():
                found = by_id.get(str((entry or {}).get("NetworkID") or "")) or \
                    by_name.get(str(name))
                if found is not None:
                    attached[found].add(container.name)
        rows = [{"key": n.id, "name": n.name, "id": n.short_id, "driver": n.driver,
                 "subnets": ", ".join(n.subnets), "gateways": ", ".join(_gateways(n)),
                 "containers": ", ".join(sorted(attached.get(n.id, set())))}
                for n in self.networks]
        previous = self.container_field.value
        names = [c.name for c in self.containers]
        # Not under hold_trait_notifications: a Dropdown validates the value held
        # against the options it had before.
        self.container_field.options = names
        self.container_field.value = previous if previous in names else (
            names[0] if names else None)
        return pd.DataFrame(rows, columns=self._fields())

    async def _remove_one(self, key: str, *, force: bool) -> None:
        await self.env.networks.remove(key)

    def _select(self, network: str) -> None:
        match = next((n for n in self.networks if network in (n.name, n.id)), None)
        if match is not None:
            self.select([match.id])

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

    def _pair(self, network: str | None, container: str | None) -> tuple[str, str]:
        if not network:
            ticked = self.selected_network
            if ticked is None:
                raise ValueError("tick one network first")
            network = ticked.name
        container = container or self.container_field.value or ""
        if not container:
            raise ValueError("pick a container first")
        return network, container

    async def connect(self, network: str | None = None, container: str | None = None) -> bool:
        """Attach ``container`` to ``network`` (default: the ticked network and the
        picked container)."""
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
        """Detach ``container`` from ``network`` (default: the ticked network and the
        picked container)."""
        with self.status.reporting("Disconnect"):
            network, container = self._pair(network, container)
            await (await self.env.networks.get(network)).disconnect(container)
            if await self.refresh() is not None:
                self._select(network)
                self.status.success(f"Disconnected {container} from {network}.")
            return True
        return False
