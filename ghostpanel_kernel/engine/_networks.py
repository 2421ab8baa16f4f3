"""Networks: the model and the collection (``env.networks``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._arguments import check_name
from ._client import encode_filters, quote_id
from ._models import Model

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["Network", "NetworkCollection"]


class Network(Model):
    """A network on one engine."""

    @property
    def name(self) -> str:
        """The network's name."""
        return str(self.attrs.get("Name") or self.short_id)

    @property
    def driver(self) -> str:
        """Network driver (``bridge``, ``macvlan``...)."""
        return str(self.attrs.get("Driver", ""))

    @property
    def subnets(self) -> list[str]:
        """The network's subnets in CIDR form."""
        config = (self.attrs.get("IPAM") or {}).get("Config") or []
        return [str(c["Subnet"]) for c in config if c.get("Subnet")]

    @property
    def labels(self) -> dict[str, str]:
        """The network's labels."""
        return dict(self.attrs.get("Labels") or {})

    @property
    def containers(self) -> dict[str, Any]:
        """Attached containers by id, as the engine's inspect reports them."""
        return dict(self.attrs.get("Containers") or {})

    @property
    def _path(self) -> str:
        return f"/networks/{quote_id(self.id or self.name)}"

    async def _inspect(self) -> Mapping[str, Any]:
        attrs: Mapping[str, Any] = await self._client.get_json(self._path)
        return attrs

    async def connect(self, container: str, *, aliases: Sequence[str] | None = None) -> None:
        """Attach ``container`` (id or name) to this network."""
        endpoint: dict[str, Any] = {"Aliases": list(aliases)} if aliases else {}
        await self._client._request("POST", f"{self._path}/connect",
                                    json_body={"Container": container, "EndpointConfig": endpoint})

    async def disconnect(self, container: str, *, force: bool = False) -> None:
        """Detach ``container`` from this network."""
        await self._client._request("POST", f"{self._path}/disconnect",
                                    json_body={"Container": container, "Force": force})

    async def remove(self) -> None:
        """Remove the network."""
        await self._client._request("DELETE", self._path)


class NetworkCollection:
    """The networks of one engine (``env.networks``)."""

    _sync_wrap = True

    def __init__(self, client: EngineClient, *, environment: str = "") -> None:
        self._client = client
        self._environment = environment

    def _wrap(self, attrs: Mapping[str, Any]) -> Network:
        return Network(self._client, attrs, environment=self._environment)

    async def list(self, *, filters: Mapping[str, Any] | None = None) -> list[Network]:
        """Networks, e.g. ``filters={"label": "surge.project=shop"}``."""
        entries = await self._client.get_json(
            "/networks", params={"filters": encode_filters(filters)})
        return [self._wrap(entry) for entry in entries or []]

    async def get(self, id_or_name: str) -> Network:
        """The network with this id or name; :class:`NotFound` otherwise."""
        return self._wrap(await self._client.get_json(f"/networks/{quote_id(id_or_name)}"))

    async def create(self, name: str, *, driver: str = "bridge", internal: bool = False,
                     labels: Mapping[str, str] | None = None, subnet: str | None = None,
                     gateway: str | None = None,
                     options: Mapping[str, str] | None = None) -> Network:
        """Create a network; ``subnet``/``gateway`` in CIDR and address form."""
        check_name("network name", name, optional=False)
        if subnet is not None:
            try:
                ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                raise ValueError(f"subnet must be in CIDR form like 10.89.0.0/24, "
                                 f"got {subnet!r}") from None
        if gateway is not None:
            try:
                ipaddress.ip_address(gateway)
            except ValueError:
                raise ValueError(f"gateway must be an IP address, got {gateway!r}") from None
        body: dict[str, Any] = {"Name": name, "Driver": driver, "Internal": internal,
                                "Labels": dict(labels or {}), "Options": dict(options or {}),
                                "CheckDuplicate": True}
        if subnet is not None:
            pool: dict[str, str] = {"Subnet": subnet}
            if gateway is not None:
                pool["Gateway"] = gateway
            body["IPAM"] = {"Driver": "default", "Config": [pool]}
        created = await self._client.post_json("/networks/create", body=body)
        return await self.get(created["Id"])

    async def remove(self, id_or_name: str) -> None:
        """Remove the network with this id or name."""
        await self._client._request("DELETE", f"/networks/{quote_id(id_or_name)}")

    async def prune(self, *, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove networks no container uses: ``{"NetworksDeleted": [...]}``."""
        result: dict[str, Any] = await self._client.post_json(
            "/networks/prune", params={"filters": encode_filters(filters)},
            timeout=self._client.timeout)
        return result
