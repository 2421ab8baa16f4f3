"""``VolumeBrowser``: an environment's named volumes as a grid (driver, mountpoint,
size where the engine reports it, the containers using each), removed together after
one confirmation, created (name, labels) and pruned from a notebook.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets

from ghostpanel_kernel._labels import parse_labels_text
from ghostpanel_kernel.engine import EngineAPIError, Environment, Volume

from ._format import format_size, format_time, plural
from ._resource_grid import ResourceGrid

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["VolumeBrowser"]


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


class VolumeBrowser(ResourceGrid):
    """The named volumes of an environment: driver, mountpoint, size (from the
    engine's disk usage report, where it gives one), the containers using each (running
    or not), labels. Sort, filter, tick rows and remove them together (after a
    confirmation; a volume in use is refused by the engine and said so, the others
    still go); create (name, labels); prune the unused ones.

    Examples
    --------
    >>> browser = VolumeBrowser(env)                                     # doctest: +SKIP
    >>> await browser.create("pgdata", labels={"app": "db"})              # doctest: +SKIP
    >>> browser.row("pgdata")["containers"]                              # doctest: +SKIP
    ''
    """

    NOUN = ("volume", "volumes")
    COLUMNS: ClassVar[Mapping[str, str]] = {
        "name": "Name", "driver": "Driver", "mountpoint": "Mountpoint", "size": "Size",
        "containers": "Used by", "labels": "Labels", "created": "Created"}
    SEARCHED = ("name", "driver", "mountpoint", "containers", "labels")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.volumes: list[Volume] = []
        self.prune_button = ipywidgets.Button(description="Prune", icon="eraser",
                                              tooltip="Remove every volume no container uses")
        self.name_field = ipywidgets.Text(description="Name", placeholder="engine picks one")
        self.labels_field = ipywidgets.Text(description="Labels", placeholder="app=web, tier=db")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary")
        super().__init__(env, **kwargs)
        self.add_class("gp-volume-browser")
        self.create_button.on_click(lambda _: self._start("Create", self._create_clicked))
        self.prune_button.on_click(lambda _: self.confirmation.ask(
            "Prune: remove every volume no container uses, with its data?",
            lambda: self._start("Prune", self.prune)))

    def _formatters(self) -> dict[str, Any]:
        from bokeh.models.widgets.tables import NumberFormatter

        return {"size": NumberFormatter(format="0.0 b", nan_format="")}

    def _tools(self) -> list[ipywidgets.Widget]:
        return [self.prune_button]

    def _extras(self) -> list[ipywidgets.Widget]:
        return [ipywidgets.HBox([self.name_field, self.labels_field, self.create_button])]

    def _controls(self) -> tuple[ipywidgets.Widget, ...]:
        return (*super()._controls(), self.prune_button, self.create_button)

    async def _sizes(self) -> dict[str, float]:
        """Each volume's size in bytes, from the engine's disk usage report (``system
        df``); a volume it does not measure (-1, or no report) is left out."""
        try:
            usage = await self.env.system.df()
        except EngineAPIError:  # sizes are a plus: the listing goes on without them
            return {}
        sizes: dict[str, float] = {}
        for entry in usage.get("Volumes") or []:
            size = (entry.get("UsageData") or {}).get("Size")
            if isinstance(size, (int, float)) and size >= 0 and entry.get("Name"):
                sizes[str(entry["Name"])] = float(size)
        return sizes

    async def _read(self) -> pd.DataFrame:
        import pandas as pd

        self.volumes = sorted(await self.env.volumes.list(), key=lambda v: v.name)
        containers = await self.env.containers.list(all=True)
        sizes = await self._sizes()
        users: dict[str, list[str]] = defaultdict(list)
        for container in containers:
            for mount in container.attrs.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name"):
                    users[str(mount["Name"])].append(container.name)
        rows = [{"key": v.name, "name": v.name, "driver": v.driver,
                 "mountpoint": v.mountpoint, "size": sizes.get(v.name, float("nan")),
                 "containers": ", ".join(sorted(users.get(v.name, []))),
                 "labels": _labels_text(v.labels),
                 "created": format_time(v.attrs.get("CreatedAt"))} for v in self.volumes]
        return pd.DataFrame(rows, columns=self._fields()).astype({"size": "float64"})

    async def _remove_one(self, key: str, *, force: bool) -> None:
        await self.env.volumes.remove(key, force=force)

    async def _create_clicked(self) -> None:
        with self.status.reporting("Create volume"):
            labels = parse_labels_text(self.labels_field.value)
            if await self.create(self.name_field.value.strip() or None, labels=labels):
                self.name_field.value = ""
                self.labels_field.value = ""

    async def create(self, name: str | None = None, *,
                     labels: Mapping[str, str] | None = None) -> Volume | None:
        """Create a volume (the engine names it when ``name`` is None)."""
        with self.status.reporting(f"Create volume {name or ''}".rstrip()):
            volume = await self.env.volumes.create(name, labels=labels)
            if await self.refresh() is not None:
                self.select([volume.name])
                self.status.success(f"Created volume {volume.name}.")
            return volume
        return None

    async def prune(self) -> dict[str, Any] | None:
        """Remove every volume no container uses; the engine's report."""
        with self.status.reporting("Prune volumes"):
            result = await self.env.volumes.prune()
            deleted = result.get("VolumesDeleted") or []
            if await self.refresh() is not None:
                self.status.success(f"Pruned {plural(len(deleted), 'volume')}, reclaimed "
                                f"{format_size(result.get('SpaceReclaimed') or 0)}.")
            return result
        return None
