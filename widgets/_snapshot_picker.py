"""``SnapshotPicker``: the snapshots of one source (a volume, a container's data or a
host path on BTRFS or ZFS) as a timeline, with create, restore, delete and a retention
preview before a prune.

A thin view over :class:`ghostpanel_kernel.snapshots.SnapshotManager`: what it does
and how a restore keeps the original is in docs/snapshots.md; the widget is described
in docs/widgets-snapshots-gpus.md.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets
from traitlets import Unicode

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.snapshots import (
    PruneResult,
    RestoreResult,
    RetentionPlan,
    Snapshot,
    SnapshotManager,
    parse_target,
)
from ghostpanel_kernel.snapshots._targets import users_of

from ._base import EngineWidget
from ._controls import Confirmation, RowList
from ._format import format_size, plural
from ._retention_panel import RetentionPanel
from ._snapshot_timeline import timeline_svg

__all__ = ["SnapshotPicker", "group_snapshots"]

_COLUMNS = ["Name", "Created", "Size", "Trigger", "Keep", "Description"]


def group_snapshots(snapshots: Sequence[Snapshot]) -> list[tuple[str, list[Snapshot]]]:
    """Snapshots by name, newest first: a container's sources share one name, and a
    name is what is restored or deleted, for all of them together."""
    groups: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot.name, []).append(snapshot)
    return sorted(groups.items(), key=lambda item: (min(s.created for s in item[1]),
                                                    item[0]), reverse=True)


def _row(name: str, group: Sequence[Snapshot]) -> list[str]:
    sizes = [s.size for s in group]
    size = "?" if any(v is None for v in sizes) else format_size(sum(v or 0 for v in sizes))
    first = min(group, key=lambda s: s.created)
    return [name, first.created.strftime("%Y-%m-%d %H:%M:%S UTC"), size,
            ", ".join(sorted({s.trigger for s in group})),
            "forever" if any(s.keep_forever for s in group) else "",
            next((s.description for s in group if s.description), "")]


class SnapshotPicker(EngineWidget):
    """The snapshots of one source: a timeline (name, created, size, trigger,
    keep_forever, description), create, restore and delete with a confirmation that says
    what will happen, and the retention plan shown before a prune.

    Parameters
    ----------
    env
        The environment whose volumes and containers ``source`` names (its host must
        be this one: the data paths are read here).
    source
        ``volume:NAME``, ``container:NAME`` or a host path (a BTRFS subvolume or ZFS
        dataset); a bare name that is none of these is read as a volume's. Empty: pick
        one in the source field.
    manager
        The :class:`SnapshotManager` to use (default: one on ``env``; pass one to set
        ``snapshot_dir``).
    snapshot_dir
        Where BTRFS snapshots go (the Boltfile's ``snapshot_path``), when no
        ``manager`` is given.

    Examples
    --------
    >>> picker = SnapshotPicker(env, "volume:mc-world")                 # doctest: +SKIP
    >>> await picker.create(description="before the update")            # doctest: +SKIP
    """

    source = Unicode("", read_only=True, help="The target shown: volume:NAME, "
                     "container:NAME or a path.").tag(sync=True)

    def __init__(self, env: Environment, source: str = "", *,
                 manager: SnapshotManager | None = None, snapshot_dir: str | None = None,
                 **kwargs: Any) -> None:
        self.manager = manager or SnapshotManager(env, snapshot_dir=snapshot_dir)
        self.snapshots: list[Snapshot] = []
        self.source_field = ipywidgets.Combobox(
            placeholder="volume:NAME, container:NAME or /path", description="Source",
            ensure_option=False, layout=ipywidgets.Layout(width="420px"))
        self.open_button = ipywidgets.Button(description="Open", icon="folder-open",
                                             tooltip="List the snapshots of this source")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.timeline = RowList(_COLUMNS, empty="No snapshots of this source yet.")
        self.timeline_strip = ipywidgets.HTML()
        self.description_field = ipywidgets.Text(description="Description",
                                                 placeholder="before the 1.21 update")
        self.keep_forever_box = ipywidgets.Checkbox(description="Keep forever", indent=False)
        self.pause_box = ipywidgets.Checkbox(
            description="Pause containers", indent=False,
            tooltip="Pause the containers that use the data while it is snapshotted "
                    "(a consistent copy of a running database)")
        self.create_button = ipywidgets.Button(description="Snapshot now", icon="camera",
                                               button_style="primary")
        self.restore_button = ipywidgets.Button(description="Restore", icon="undo")
        self.delete_button = ipywidgets.Button(description="Delete", icon="trash")
        self.confirmation = Confirmation()
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="Restore",
                                               layout=ipywidgets.Layout(display="none"))
        self.progress_label = ipywidgets.HTML()
        self.retention = RetentionPanel()
        super().__init__(env, **kwargs)
        self.add_class("gp-snapshot-picker")
        self.open_button.on_click(lambda _: self._open_clicked())
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.create_button.on_click(lambda _: self._start("Snapshot", self._create_clicked))
        self.restore_button.on_click(lambda _: self._start("Restore", self._ask_restore))
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.retention.preview_button.on_click(
            lambda _: self._start("Preview", lambda: self.preview(self.retention.policy)))
        self.retention.prune_button.on_click(lambda _: self._ask_prune())
        self.children = [
            ipywidgets.HBox([self.source_field, self.open_button, self.refresh_button]),
            self.confirmation, self.status,
            ipywidgets.HBox([self.progress, self.progress_label]),
            self.timeline_strip, self.timeline,
            ipywidgets.HBox([self.restore_button, self.delete_button]),
            ipywidgets.HBox([self.description_field, self.keep_forever_box, self.pause_box,
                             self.create_button]),
            self.retention,
        ]
        self._start("Load", lambda: self._load(source))

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.open_button, self.refresh_button, self.create_button,
                self.restore_button, self.delete_button, self.retention.preview_button)

    # -- source --------------------------------------------------------------------

    async def _load(self, source: str) -> None:
        await self._offer_sources()
        if source.strip():
            await self.open_source(source)
        else:
            self.status.info("Pick a volume or container (or type a path), then Open.")

    async def _offer_sources(self) -> None:
        """Offer the environment's volumes and containers in the source field."""
        with self.status.reporting("Listing volumes and containers"):
            volumes = sorted(v.name for v in await self.env.volumes.list())
            containers = sorted(c.name for c in await self.env.containers.list(all=True))
            self.source_field.options = ([f"volume:{n}" for n in volumes]
                                         + [f"container:{n}" for n in containers])

    def _open_clicked(self) -> None:
        self._start("Open", lambda: self.open_source(self.source_field.value))

    async def open_source(self, source: str) -> list[Snapshot] | None:
        """Show the snapshots of ``source`` (see the class); ``None`` if that failed."""
        text = source.strip()
        with self.status.reporting(f"Open {text}".rstrip()):
            if not text:
                raise ValueError("type a source first: volume:NAME, container:NAME or a path")
            if not (text.startswith(("volume:", "container:", "/", "."))):
                text = f"volume:{text}"  # what the source list offers first
            parse_target(text)  # a bad target is refused before anything is run
            # Listed before it is shown: a source that cannot be snapshotted leaves the
            # one shown before in place, and the message says why.
            snapshots = await self.manager.list(text)
            self.set_trait("source", text)
            self.source_field.value = text
            self.pause_box.layout.display = "" if text.startswith("container:") else "none"
            self.retention.forget_preview()
            self.retention.plan_view.value = ""
            self._show(snapshots)
            return snapshots
        return None

    def _require_source(self) -> str:
        if not self.source:
            raise ValueError("open a source first")
        return self.source

    # -- listing -------------------------------------------------------------------

    async def refresh(self) -> list[Snapshot] | None:
        """List the source's snapshots again; ``None`` (the error shown) if it failed."""
        with self.status.reporting(f"Listing the snapshots of {self.source}"):
            self._show(await self.manager.list(self._require_source()))
            return self.snapshots
        return None

    def _show(self, snapshots: list[Snapshot]) -> None:
        self.snapshots = snapshots
        groups = group_snapshots(snapshots)
        self.timeline.show([(name, _row(name, group)) for name, group in groups])
        self.timeline_strip.value = timeline_svg(groups)
        self.status.info(f"{plural(len(groups), 'snapshot')} of {self.source}.")

    def _selected(self) -> str:
        name = self.timeline.value
        if name is None:
            raise ValueError("select a snapshot in the list first")
        return str(name)

    # -- create --------------------------------------------------------------------

    async def _create_clicked(self) -> None:
        made = await self.create(description=self.description_field.value.strip(),
                                 keep_forever=self.keep_forever_box.value,
                                 pause=self.pause_box.value)
        if made:
            self.description_field.value = ""
            self.keep_forever_box.value = False

    async def create(self, *, name: str | None = None, description: str = "",
                     keep_forever: bool = False, pause: bool = False) -> list[Snapshot] | None:
        """Snapshot the source now (every source of a container under one name).

        Parameters
        ----------
        name
            Default: ``bolt-YYYYmmdd-HHMMSS`` (UTC).
        pause
            Pause the containers that use the data while it is taken (containers only).
        """
        with self.status.reporting(f"Snapshot of {self.source}"):
            made = await self.manager.create(self._require_source(), name=name,
                                             description=description,
                                             keep_forever=keep_forever, pause=pause)
            if await self.refresh() is not None and made:
                self.timeline.value = made[0].name
                self.status.success(f"Took snapshot {made[0].name} of {self.source}"
                                    f"{' (kept forever)' if keep_forever else ''}.")
            return made
        return None

    # -- restore -------------------------------------------------------------------

    async def restore_question(self, name: str) -> str:
        """What restoring ``name`` will do, in the words the confirmation shows."""
        target = self._require_source()
        users = await users_of(self.env, await self.manager.sources(target))
        running = sorted(c.name for c in users if c.state in ("running", "paused",
                                                              "restarting"))
        stopped = (f"stops {', '.join(running)} while the data is swapped, then starts "
                   f"{'it' if len(running) == 1 else 'them'} again"
                   if running else "stops no container (none running uses the data)")
        return (f"Restore {target} to {name}? This {stopped}; the current data is kept as a "
                "read-only pre-restore safety snapshot.")

    async def _ask_restore(self) -> None:
        name = self._selected()
        question = await self.restore_question(name)
        self.confirmation.ask(question, lambda: self._start(
            "Restore", lambda: self.restore(name)))

    def _restore_progress(self, step: str, index: int, total: int) -> None:
        self.progress.max = total
        self.progress.value = index
        self.progress_label.value = (f"[{index + 1}/{total}] <code>{html.escape(step)}"
                                     "</code>")

    async def restore(self, name: str | None = None) -> RestoreResult | None:
        """Restore snapshot ``name`` (default: the selected one), showing each step.

        Without the confirmation: the button asks first, a notebook call does not.
        """
        self.progress.layout.display = ""
        self.progress.value = 0
        self.progress_label.value = ""
        with self.status.reporting(f"Restore of {self.source} to {name or ''}".rstrip()):
            name = name or self._selected()
            result = await self.manager.restore(self._require_source(), name,
                                                progress=self._restore_progress)
            self.progress.value = self.progress.max
            self.progress_label.value = "done"
            if await self.refresh() is not None:
                restarted = (f" Restarted {', '.join(result.restarted)}."
                             if result.restarted else "")
                self.status.success(f"Restored {self.source} to {name}; the previous data "
                                    f"is kept as {', '.join(result.safety)}.{restarted}")
            return result
        self.progress_label.value = "failed: see the message above"
        return None

    # -- delete --------------------------------------------------------------------

    def _ask_delete(self) -> None:
        with self.status.reporting("Delete"):
            name = self._selected()
            forever = any(s.keep_forever for s in self.snapshots if s.name == name)
            note = " It is marked keep forever." if forever else ""
            self.confirmation.ask(f"Delete snapshot {name} of {self.source}?{note} This "
                                  "cannot be undone.",
                                  lambda: self._start("Delete", lambda: self.delete(name)))

    async def delete(self, name: str | None = None) -> bool:
        """Delete snapshot ``name`` (default: the selected one), without asking."""
        with self.status.reporting(f"Delete of {name or 'the snapshot'}"):
            name = name or self._selected()
            await self.manager.delete(self._require_source(), name)
            if await self.refresh() is not None:
                self.status.success(f"Deleted snapshot {name} of {self.source}.")
            return True
        return False

    # -- retention -----------------------------------------------------------------

    async def preview(self, policy: Mapping[str, Any] | None = None) -> RetentionPlan | None:
        """Show what ``policy`` (default: the panel's fields) keeps and removes, and
        why; nothing is deleted."""
        with self.status.reporting("Retention preview"):
            policy = dict(self.retention.policy if policy is None else policy)
            plan, snapshots = await self.manager.plan_prune(self._require_source(), policy)
            if policy != self.retention.policy:  # the kernel checked it: now show it
                self.retention.policy = policy
            self.retention.show_plan(plan, snapshots, policy)
            self.status.info(f"The policy would delete {plural(len(plan.remove), 'snapshot')}"
                             f" and keep {len(plan.keep)}." if policy else
                             "An empty policy deletes nothing: set at least one rule.")
            return plan
        return None

    def _ask_prune(self) -> None:
        policy = self.retention.previewed
        if policy is None:
            self.status.warning("Press Preview first: Prune deletes what the plan shows.")
            return
        self.confirmation.ask(
            f"Prune {self.source}: delete the snapshots the plan marks remove?",
            lambda: self._start("Prune", lambda: self.prune(policy)))

    async def prune(self, policy: Mapping[str, Any]) -> PruneResult | None:
        """Delete what ``policy`` removes (the plan is worked out again now)."""
        with self.status.reporting(f"Prune of {self.source}"):
            result = await self.manager.prune(self._require_source(), dict(policy))
            if await self.refresh() is not None:
                self.retention.show_plan(result.plan, result.snapshots, dict(policy))
                self.retention.prune_button.disabled = True
                self.status.success(f"Pruned {plural(len(result.plan.remove), 'snapshot')}"
                                    f", kept {len(result.plan.keep)}.")
            return result
        return None
