"""``VolumeBrowser``: an environment's named volumes, created (name, labels), removed
and pruned from a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets

from ghostpanel_kernel._labels import parse_labels_text
from ghostpanel_kernel.engine import Environment, Volume

from ._base import EngineWidget
from ._controls import Confirmation, RowList
from ._format import format_size, format_time, plural

__all__ = ["VolumeBrowser"]


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


class VolumeBrowser(EngineWidget):
    """The named volumes of an environment: create (name, labels), remove (after a
    confirmation), prune the unused ones.

    Examples
    --------
    >>> browser = VolumeBrowser(env)                                     # doctest: +SKIP
    >>> await browser.create("pgdata", labels={"app": "db"})              # doctest: +SKIP
    """

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.volumes: list[Volume] = []
        self.listing = RowList(["Name", "Driver", "Labels", "Created"], empty="No volumes.")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash")
        self.prune_button = ipywidgets.Button(description="Prune", icon="eraser",
                                              tooltip="Remove every volume no container uses")
        self.name_field = ipywidgets.Text(description="Name", placeholder="engine picks one")
        self.labels_field = ipywidgets.Text(description="Labels", placeholder="app=web, tier=db")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary")
        self.confirmation = Confirmation()
        super().__init__(env, **kwargs)
        self.add_class("gp-volume-browser")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.create_button.on_click(lambda _: self._start("Create", self._create_clicked))
        self.remove_button.on_click(lambda _: self._ask_remove())
        self.prune_button.on_click(lambda _: self.confirmation.ask(
            "Prune: remove every volume no container uses, with its data?",
            lambda: self._start("Prune", self.prune)))
        self.children = [
            ipywidgets.HBox([self.refresh_button, self.remove_button, self.prune_button]),
            self.confirmation, self.status, self.listing,
            ipywidgets.HBox([self.name_field, self.labels_field, self.create_button]),
        ]
        self._start("Refresh", self.refresh)

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.remove_button, self.prune_button, self.create_button)

    async def refresh(self) -> list[Volume] | None:
        """List the volumes again; ``None`` (and the error shown) if the engine failed."""
        with self.status.reporting("Listing volumes"):
            self.volumes = sorted(await self.env.volumes.list(), key=lambda v: v.name)
            self.listing.show([(v.name, [v.name, v.driver, _labels_text(v.labels),
                                         format_time(v.attrs.get("CreatedAt"))])
                               for v in self.volumes])
            self.status.clear()  # what it said is no longer current
            return self.volumes
        return None

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
                self.listing.value = volume.name
                self.status.success(f"Created volume {volume.name}.")
            return volume
        return None

    def _ask_remove(self) -> None:
        name = self.listing.value
        if name is None:
            self.status.warning("Select a volume to remove first.")
            return
        self.confirmation.ask(f"Remove volume {name} and its data?",
                              lambda: self._start("Remove", lambda: self.remove(str(name))))

    async def remove(self, name: str | None = None, *, force: bool = False) -> bool:
        """Remove the volume ``name`` (default: the selected one)."""
        name = name or (str(self.listing.value) if self.listing.value else "")
        with self.status.reporting(f"Remove volume {name}".rstrip()):
            if not name:
                raise ValueError("select a volume to remove first")
            await (await self.env.volumes.get(name)).remove(force=force)
            if await self.refresh() is not None:
                self.status.success(f"Removed volume {name}.")
            return True
        return False

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
