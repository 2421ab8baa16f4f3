"""Volumes: the model and the collection (``env.volumes``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._arguments import check_name
from ._client import encode_filters, quote_id
from ._models import Model

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["Volume", "VolumeCollection"]


class Volume(Model):
    """A named volume on one engine."""

    id_attribute = "Name"

    @property
    def name(self) -> str:
        """The volume's name (its id, for volumes)."""
        return self.id

    @property
    def short_id(self) -> str:
        """Volumes are known by name; the short id is the name."""
        return self.id

    @property
    def driver(self) -> str:
        """Volume driver, usually ``local``."""
        return str(self.attrs.get("Driver", ""))

    @property
    def mountpoint(self) -> str:
        """Where the volume lives on the host."""
        return str(self.attrs.get("Mountpoint", ""))

    @property
    def labels(self) -> dict[str, str]:
        """The volume's labels."""
        return dict(self.attrs.get("Labels") or {})

    async def _inspect(self) -> Mapping[str, Any]:
        attrs: Mapping[str, Any] = await self._client.get_json(f"/volumes/{quote_id(self.id)}")
        return attrs

    async def remove(self, *, force: bool = False) -> None:
        """Remove the volume (``force``: even while a container uses it)."""
        await self._client._request("DELETE", f"/volumes/{quote_id(self.id)}",
                                    params={"force": force})


class VolumeCollection:
    """The volumes of one engine (``env.volumes``)."""

    _sync_wrap = True

    def __init__(self, client: EngineClient, *, environment: str = "") -> None:
        self._client = client
        self._environment = environment

    def _wrap(self, attrs: Mapping[str, Any]) -> Volume:
        return Volume(self._client, attrs, environment=self._environment)

    async def list(self, *, filters: Mapping[str, Any] | None = None) -> list[Volume]:
        """Volumes, e.g. ``filters={"label": "app=web", "dangling": True}``."""
        result = await self._client.get_json(
            "/volumes", params={"filters": encode_filters(filters)})
        return [self._wrap(entry) for entry in (result or {}).get("Volumes") or []]

    async def get(self, name: str) -> Volume:
        """The volume called ``name``; :class:`NotFound` otherwise."""
        return self._wrap(await self._client.get_json(f"/volumes/{quote_id(name)}"))

    async def create(self, name: str | None = None, *, driver: str = "local",
                     driver_opts: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None) -> Volume:
        """Create a volume (the engine names it when ``name`` is None)."""
        check_name("volume name", name)
        body: dict[str, Any] = {"Driver": driver, "DriverOpts": dict(driver_opts or {}),
                                "Labels": dict(labels or {})}
        if name is not None:
            body["Name"] = name
        return self._wrap(await self._client.post_json("/volumes/create", body=body))

    async def remove(self, name: str, *, force: bool = False) -> None:
        """Remove the volume ``name`` (``force``: even while a container uses it)."""
        await self._client._request("DELETE", f"/volumes/{quote_id(name)}",
                                    params={"force": force})

    async def prune(self, *, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove volumes no container uses: ``{"VolumesDeleted": [...], ...}``."""
        result: dict[str, Any] = await self._client.post_json(
            "/volumes/prune", params={"filters": encode_filters(filters)},
            timeout=self._client.timeout)
        return result
