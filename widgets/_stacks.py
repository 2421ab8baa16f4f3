"""``StacksView``: the Surge projects (and Bolt CLI stacks) on a set of environments.

Top to bottom: a toolbar (Refresh, Check updates), the status line, the grid -- one
row per stack: project, services, replicas per environment (running/desired), state,
drift from its Boltfile, the Boltfile, whether newer images wait under its tags -- and
the selected stack's panel: its containers, then

- for a **Surge project**: its Boltfile (from the containers' labels, or a path typed
  here), *Open Boltfile* (a :class:`~._boltfile_editor.BoltfileEditor` below),
  *Plan* (the plan table), *Apply* (a progress bar and a log of Surge's progress
  events), *Redeploy latest images* (pull, recreate only the containers whose image
  changed; refused while the Boltfile has changes of its own) and *Destroy*, which
  asks for the project's name to be typed first;
- for a **Bolt stack** (containers Bolt's CLI named, without Surge's labels): *Preview
  adoption* writes the Boltfile that runs it as it runs and shows the plan that
  adopting carries out (each container recreated to carry Surge's labels, see
  :mod:`ghostpanel_kernel.surge._adopt`); *Adopt* saves that Boltfile and applies it.

The drift of a project is Surge's plan for its Boltfile on the environments the
project has containers on (a plan changes nothing); "in sync" when it is empty. The
grid is read on construction (in a kernel), on Refresh and after each action; nothing
polls the engines meanwhile.

The Updates column is filled by a second pass after each listing (``checking…``
meanwhile), so a slow or unreachable registry never holds the grid back: the stacks
show as soon as the engines answer, and a registry that does not answer in time makes
the cell say so (:mod:`._stacks_updates`). That pass reuses the registries' answers
for a minute (a Refresh right after an action asks no registry twice); *Check
updates* asks them again.

Every action's errors go to the status line; the public ``async`` methods (what the
buttons run) return ``None`` when they failed, so a notebook can ``await`` them.
"""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Environment, GhostPanelError
from ghostpanel_kernel.engine._image_updates import DEFAULT_MAX_AGE
from ghostpanel_kernel.surge import (
    Adoption,
    StackProject,
    SurgeError,
    SurgePlan,
    SurgeProgress,
    SurgeResult,
    adopt_stack,
    apply_surge,
    describe_adoption,
    destroy_surge,
    discover_stacks,
    plan_adoption,
    plan_surge,
)
from ghostpanel_kernel.surge import redeploy_latest as surge_redeploy_latest
from ghostpanel_kernel.surge._projects import desired_replicas

from ._base import TaskBox, close_widget_tree
from ._boltfile_editor import plan_html, plan_rows
from ._controls import RowList
from ._format import plural
from ._live_table import EnvironmentsArg, close_later, open_environments, running_loop
from ._stacks_rows import CHECKING, COLUMNS, StackInfo, services_html, stack_row
from ._stacks_updates import stack_updates
from ._status import StatusLine, describe_error
from ._surge_log import SurgeRunLog

if TYPE_CHECKING:
    from ghostpanel_kernel.environments import EnvironmentRegistry

    from ._boltfile_editor import BoltfileEditor

__all__ = ["StacksView"]

_LOG_LINES = 200


def _button(description: str, icon: str, tooltip: str, style: str = "") -> ipywidgets.Button:
    return ipywidgets.Button(description=description, icon=icon, tooltip=tooltip,
                             button_style=style)


class StacksView(TaskBox):
    """The stacks on ``environments``: Surge projects found by their labels, and the
    stacks Bolt's CLI started, which can be adopted.

    Parameters
    ----------
    environments
        Open :class:`~ghostpanel_kernel.engine.Environment` objects or
        ``EnvironmentSpec`` objects (opened here, closed by :meth:`close`), or None for
        every environment of the registry.
    registry
        The registry read when ``environments`` is None (default: the session's).

    Examples
    --------
    >>> from ghostpanel_widgets import StacksView
    >>> view = StacksView()                  # every registered environment  # doctest: +SKIP
    >>> view                                                            # doctest: +SKIP
    >>> view.project = "shop"                # select a project          # doctest: +SKIP
    >>> await view.plan()                                               # doctest: +SKIP
    """

    project = Unicode("", help="The selected stack's name ('' for none); set it to select "
                      "one.").tag(sync=True)
    busy = Bool(False, read_only=True,
                help="Whether an action started from the page is running.").tag(sync=True)
    action = Unicode("", read_only=True, help="The action running now, or that ran last."
                     ).tag(sync=True)
    stop_timeout = Int(10, help="Seconds a container that Apply, Redeploy, Destroy or "
                       "Adopt replaces or removes may take to stop before it is killed."
                       ).tag(sync=True)
    check_images = Bool(True, help="Fill the Updates column after each listing (asks the "
                        "images' registries, answers kept a minute); False leaves it empty "
                        "until Check updates.").tag(sync=True)

    def __init__(self, environments: EnvironmentsArg | None = None, *,
                 registry: EnvironmentRegistry | None = None, **kwargs: Any) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._environments, self._owned = open_environments(
            environments if environments is not None else _registry_specs(registry))
        self._infos: dict[tuple[str, str], StackInfo] = {}
        self._boltfiles: dict[str, str] = {}  # typed on the page, by project
        self._errors: dict[str, BaseException] = {}
        self._adoption: Adoption | None = None
        self._editor: BoltfileEditor | None = None
        self._task: asyncio.Task[None] | None = None
        # Bumped by every listing: an Updates pass for an older one is dropped.
        self._listing = 0
        self._updates_task: asyncio.Task[Any] | None = None

        self.status = StatusLine()
        self.refresh_button = _button("Refresh", "refresh", "Read the stacks again")
        self.updates_button = _button("Check updates", "cloud-download",
                                      "Ask the registries again whether newer images wait "
                                      "under the stacks' tags")
        self.grid = RowList(COLUMNS, empty="No Surge project or Bolt stack on these "
                            "environments.", rows=10)
        self.title = ipywidgets.HTML()
        self.services_view = ipywidgets.HTML()
        # A Surge project's controls.
        self.boltfile_field = ipywidgets.Text(
            description="Boltfile", placeholder="path of the project's Boltfile",
            layout=ipywidgets.Layout(flex="1 1 auto"))
        self.use_button = _button("Use", "check", "Read this Boltfile for the project")
        self.open_button = _button("Open Boltfile", "edit", "Edit it in a BoltfileEditor")
        self.plan_button = _button("Plan", "list", "What Surge would change")
        self.apply_button = _button("Apply", "play", "Make the engines run the Boltfile",
                                    "warning")
        self.redeploy_button = _button("Redeploy latest images", "cloud-download",
                                       "Pull the images and recreate only the containers "
                                       "whose image changed", "warning")
        self.destroy_button = _button("Destroy", "trash", "Remove the project", "danger")
        self.confirm_name = ipywidgets.Text(placeholder="type the project name")
        self.remove_volumes = ipywidgets.Checkbox(description="also its named volumes",
                                                  indent=False,
                                                  layout=ipywidgets.Layout(width="auto"))
        self.confirm_destroy_button = _button("Destroy project", "trash",
                                              "Remove every container and network of it",
                                              "danger")
        self.cancel_destroy_button = _button("Cancel", "times", "Keep the project")
        self.confirm_label = ipywidgets.HTML()
        self.destroy_box = ipywidgets.HBox([self.confirm_label, self.confirm_name,
                                            self.remove_volumes, self.confirm_destroy_button,
                                            self.cancel_destroy_button],
                                           layout=ipywidgets.Layout(display="none"))
        self.managed_box = ipywidgets.VBox([
            ipywidgets.HBox([self.boltfile_field, self.use_button]),
            ipywidgets.HBox([self.open_button, self.plan_button, self.apply_button,
                             self.redeploy_button, self.destroy_button]),
            self.destroy_box])
        # A Bolt stack's controls.
        self.adopt_environment = ipywidgets.Dropdown(description="on", options=[])
        self.adopt_project = ipywidgets.Text(description="project")
        self.adopt_path = ipywidgets.Text(description="save to",
                                          layout=ipywidgets.Layout(flex="1 1 auto"))
        self.preview_button = _button("Preview adoption", "search",
                                      "Write its Boltfile and plan the adoption")
        self.adopt_button = _button("Adopt", "download", "Save the Boltfile and let Surge "
                                    "manage the stack", "warning")
        self.adopt_button.disabled = True
        self.adoption_view = ipywidgets.HTML()
        self.bolt_box = ipywidgets.VBox([
            ipywidgets.HTML("<i>Started by Bolt's CLI: Surge does not manage it yet.</i>"),
            ipywidgets.HBox([self.adopt_environment, self.adopt_project]),
            ipywidgets.HBox([self.adopt_path, self.preview_button, self.adopt_button]),
            self.adoption_view])
        # What every action shows.
        self.plan_view = ipywidgets.HTML()
        self._run_log = SurgeRunLog("gp-stack-log", limit=_LOG_LINES)
        self.progress = self._run_log.progress
        self.log_view = self._run_log.log_view
        self.editor_box = ipywidgets.VBox()
        self.detail = ipywidgets.VBox(
            [self.title, self.services_view, self.managed_box, self.bolt_box, self.plan_view,
             self.progress, self.log_view, self.editor_box],
            layout=ipywidgets.Layout(display="none"))
        self._updating = False

        super().__init__(**kwargs)
        self.add_class("gp-stacks")
        # Classes a page (and a browser test) finds the parts by.
        for widget, name in ((self.grid, "gp-stacks-grid"), (self.detail, "gp-stack-detail"),
                             (self.plan_button, "gp-stack-plan"),
                             (self.apply_button, "gp-stack-apply"),
                             (self.redeploy_button, "gp-stack-redeploy"),
                             (self.updates_button, "gp-stacks-check-updates"),
                             (self.destroy_button, "gp-stack-destroy"),
                             (self.preview_button, "gp-stack-preview"),
                             (self.adopt_button, "gp-stack-adopt"),
                             (self.open_button, "gp-stack-open")):
            widget.add_class(name)
        self.children = [ipywidgets.HBox([self.refresh_button, self.updates_button]),
                         self.status, self.grid, self.detail]
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.updates_button.on_click(lambda _: self._start("Check updates",
                                                           self.check_updates))
        self.grid.select.observe(self._row_selected, "value")
        self.use_button.on_click(lambda _: self._start(
            "Use Boltfile", lambda: self.use_boltfile(self.boltfile_field.value)))
        self.open_button.on_click(lambda _: self._open_clicked())
        self.plan_button.on_click(lambda _: self._start("Plan", self.plan))
        self.apply_button.on_click(lambda _: self._start("Apply", self.apply))
        self.redeploy_button.on_click(lambda _: self._start("Redeploy latest images",
                                                            self.redeploy_latest))
        self.destroy_button.on_click(lambda _: self.ask_destroy())
        self.confirm_destroy_button.on_click(lambda _: self._start(
            "Destroy", lambda: self.destroy(self.confirm_name.value)))
        self.cancel_destroy_button.on_click(lambda _: self.cancel_destroy())
        self.preview_button.on_click(lambda _: self._start("Preview adoption",
                                                           self.preview_adoption))
        self.adopt_button.on_click(lambda _: self._start("Adopt", self.adopt))
        if running_loop("Reading the stacks") is not None:
            self._start("Refresh", self.refresh)
        else:
            self.status.info("Press Refresh to read the stacks (it needs a running event "
                             "loop, as a kernel has).")

    @validate("stop_timeout")
    def _valid_stop_timeout(self, proposal: dict[str, Any]) -> int:
        seconds = int(proposal["value"])
        if seconds < 0:
            raise TraitError(f"stop_timeout must be 0 seconds or more, not {seconds}")
        return seconds

    # -- properties
    @property
    def environments(self) -> list[Environment]:
        """The environments shown."""
        return list(self._environments)

    @property
    def stacks(self) -> list[StackInfo]:
        """The stacks in the grid, in its order."""
        return list(self._infos.values())

    @property
    def rows(self) -> list[list[str]]:
        """The grid's cells as plain text (see :data:`~._stacks_rows.COLUMNS`)."""
        return self.grid.rows

    @property
    def selected(self) -> StackInfo | None:
        """The selected stack, or None."""
        key = self.grid.value
        return self._infos.get(key) if isinstance(key, tuple) else None

    @property
    def editor(self) -> BoltfileEditor | None:
        """The BoltfileEditor Open Boltfile made (None before)."""
        return self._editor

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The action a button started last (``await`` it to wait for it to end)."""
        return self._task

    @property
    def updates_task(self) -> asyncio.Task[Any] | None:
        """The Updates pass the last listing started (``await`` it for the column)."""
        return self._updates_task

    # -- running actions
    def _controls(self) -> list[ipywidgets.Widget]:
        return [self.refresh_button, self.updates_button, self.use_button, self.plan_button,
                self.apply_button, self.redeploy_button, self.destroy_button,
                self.confirm_destroy_button, self.preview_button]

    def _set_busy(self, busy: bool, action: str = "") -> None:
        self.set_trait("busy", busy)
        if action:
            self.set_trait("action", action)
        if self._closed:
            return
        for control in self._controls():
            control.disabled = busy
        self.adopt_button.disabled = busy or self._adoption is None

    def _start(self, action: str, work: Callable[[], Awaitable[Any]]
               ) -> asyncio.Task[None] | None:
        """Run ``work()`` as a task, its errors in the status line; one at a time."""
        if self._closed:
            return None
        if self.busy:
            self.status.warning(f"{action}: wait until {self.action.lower()} ends.")
            return None
        if running_loop(action, self.status) is None:
            return None

        async def run() -> None:
            try:
                with self.status.reporting(action):
                    await work()
            finally:
                self._set_busy(False)

        self._set_busy(True, action)
        self._task = self._spawn(run(), f"ghostpanel StacksView: {action}")
        return self._task

    async def wait_idle(self) -> None:
        """Wait for the actions started so far."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- reading the stacks
    async def refresh(self) -> list[StackInfo]:
        """Read the stacks and their drift again, and show them.

        Returns
        -------
        list of StackInfo
            The stacks, in the grid's order.
        """
        discovery = await discover_stacks(self._environments)
        infos = await asyncio.gather(*(self._info(project) for project in discovery.projects))
        self._errors = dict(discovery.errors)
        self._infos = {info.key: info for info in infos}
        if self.check_images:
            self._start_updates(DEFAULT_MAX_AGE)
        else:
            self._drop_updates()
        self._show_grid()
        found = (f"{plural(sum(i.project.managed for i in infos), 'Surge project')}, "
                 f"{plural(sum(not i.project.managed for i in infos), 'Bolt stack')} on "
                 f"{plural(len(self._environments), 'environment')}")
        if self._errors:
            self.status.error(f"{found}; unreachable: " + "; ".join(
                f"{name}: {describe_error(error)}" for name, error in self._errors.items()))
        else:
            self.status.success(f"{found}.")
        return list(infos)

    # -- the Updates column
    def _drop_updates(self) -> None:
        """End the Updates pass of an older listing: its cells would be for other rows."""
        self._listing += 1
        if self._updates_task is not None:
            self._updates_task.cancel()
            self._updates_task = None

    def _start_updates(self, max_age: float) -> None:
        """Mark every row ``checking…`` and start the Updates pass for this listing."""
        self._drop_updates()
        if not self._infos:
            return
        self._infos = {key: replace(info, updates=CHECKING)
                       for key, info in self._infos.items()}
        self._updates_task = self._spawn(self._fill_updates(self._listing, max_age),
                                         "ghostpanel StacksView: image updates")

    async def _fill_updates(self, listing: int, max_age: float) -> dict[str, str] | None:
        """Ask the registries, then fill the column if the grid still shows ``listing``."""
        projects = {key: info.project for key, info in self._infos.items()}
        cells = None
        # Its own errors only: a pass that fails leaves the grid as it is, said.
        with self.status.reporting("Checking image updates"):
            cells = await stack_updates(self._environments, projects, max_age=max_age)
        if cells is None:
            cells = {key: "" for key in projects}
        if self._closed or listing != self._listing:
            return None
        self._infos = {key: replace(info, updates=cells.get(key, info.updates))
                       for key, info in self._infos.items()}
        self._show_rows()
        return {info.project.name: info.updates for info in self._infos.values()}

    async def check_updates(self, max_age: float = 0.0) -> dict[str, str] | None:
        """Ask the registries again whether newer images wait under the stacks' tags, and
        fill the Updates column (what *Check updates* does).

        Parameters
        ----------
        max_age
            Seconds a registry's earlier answer may be reused (default: ask again).

        Returns
        -------
        dict or None
            The Updates cell of each stack, by project name; None when the grid was read
            again meanwhile.
        """
        self._start_updates(max_age)
        self._show_rows()
        task = self._updates_task
        if task is None:
            self.status.info("No stack to check.")
            return {}
        # A listing meanwhile cancels the pass: that is no cancellation of this caller.
        outcomes: tuple[Any, ...] = await asyncio.gather(task, return_exceptions=True)
        cells: dict[str, str] | None = \
            None if isinstance(outcomes[0], BaseException) else outcomes[0]
        if cells is not None:
            waiting = [name for name, cell in cells.items() if "available" in cell]
            self.status.success(
                f"Image updates checked: {plural(len(waiting), 'stack')} with newer images"
                + (f" ({', '.join(waiting)})." if waiting else "."))
        return cells

    def _project_environments(self, project: StackProject) -> list[Environment]:
        names = set(project.environments)
        return [env for env in self._environments if env.name in names]

    async def _info(self, project: StackProject) -> StackInfo:
        path = self._boltfiles.get(project.name) or project.boltfile
        if not project.managed or not path:
            return StackInfo(project, path)
        if not os.path.isfile(path):
            return StackInfo(project, path, problem=f"Boltfile {path} is not on this machine")
        try:
            boltfile = Boltfile.load(path)
            if boltfile.project != project.name:
                return StackInfo(project, path, problem=(
                    f"{os.path.basename(path)} is project {boltfile.project!r}, not "
                    f"{project.name!r}"))
            environments = self._project_environments(project)
            desired = desired_replicas(boltfile, environments)
            plan = await plan_surge(boltfile, environments)
        except (GhostPanelError, OSError, ValueError) as error:
            return StackInfo(project, path, problem=f"Boltfile refused: "
                             f"{describe_error(error)}")
        return StackInfo(project, path, desired, plan)

    def _show_rows(self) -> None:
        """Show the grid's rows again, the selection (and the panel) left as they are."""
        names = [env.name for env in self._environments]
        # Replacing the Select's options passes its value through None and back: not a
        # selection by the user, which would clear the selected stack's panel.
        self._updating = True
        try:
            self.grid.show([(info.key, stack_row(info, names))
                            for info in self._infos.values()])
        finally:
            self._updating = False

    def _show_grid(self) -> None:
        before = self.grid.value
        self._show_rows()
        wanted = self.grid.value if self.grid.value is not None else self._key_of(self.project)
        if wanted != self.grid.value:
            self.grid.value = wanted  # the observer shows it
        elif wanted != before:
            self._row_selected({"new": wanted})  # the selected stack is gone
        else:
            self._show_detail()

    def _key_of(self, name: str) -> tuple[str, str] | None:
        keys = [key for key in self._infos if key[1] == name]
        return keys[0] if keys else None  # a Surge project before a Bolt stack

    # -- selection
    @observe("project")
    def _project_changed(self, change: dict[str, Any]) -> None:
        # Set before the first listing, it selects the stack once the grid shows it.
        name = change["new"]
        current = self.selected
        if current is not None and current.project.name == name:
            return
        self.grid.value = self._key_of(name)

    def _row_selected(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        self._adoption = None
        self.adopt_button.disabled = True
        self.adoption_view.value = ""
        self.plan_view.value = ""
        self.cancel_destroy()
        info = self.selected
        self.project = info.project.name if info is not None else ""
        self._show_detail(fresh=True)

    def _show_detail(self, fresh: bool = False) -> None:
        info = self.selected
        if info is None:
            self.detail.layout.display = "none"
            return
        project = info.project
        self.detail.layout.display = "flex"
        kind = "Surge project" if project.managed else "Bolt stack"
        self.title.value = (f"<h3 style=\"margin: 6px 0\">{kind} "
                            f"<code>{html.escape(project.name)}</code></h3>")
        self.services_view.value = services_html(project)
        self.managed_box.layout.display = "flex" if project.managed else "none"
        self.bolt_box.layout.display = "none" if project.managed else "flex"
        if project.managed:
            self.boltfile_field.value = info.boltfile
        elif fresh:
            self.adopt_environment.options = list(project.environments)
            self.adopt_project.value = project.name
            self.adopt_path.value = str(Path.cwd() / f"{project.name}.bolt.toml")

    def _selected_info(self, *, managed: bool | None = None) -> StackInfo:
        info = self.selected
        if info is None:
            raise ValueError("select a stack in the grid first")
        if managed is True and not info.project.managed:
            raise ValueError(f"{info.project.name} is not a Surge project yet: adopt it")
        if managed is False and info.project.managed:
            raise ValueError(f"{info.project.name} is a Surge project already")
        return info

    def _selected_boltfile(self) -> tuple[StackInfo, Boltfile]:
        info = self._selected_info(managed=True)
        if not info.boltfile:
            raise ValueError(f"the Boltfile of {info.project.name} is unknown: type its path "
                             "beside Boltfile and press Use")
        return info, Boltfile.load(info.boltfile)

    async def _reselect(self, key: tuple[str, str]) -> None:
        await self.refresh()
        if key in self._infos:
            self.grid.value = key

    # -- a Surge project
    async def use_boltfile(self, path: str) -> StackInfo | None:
        """Read the selected project's drift from the Boltfile at ``path``."""
        info = self._selected_info(managed=True)
        path = os.path.abspath(os.path.expanduser(path.strip()))
        if not os.path.isfile(path):
            self.status.error(f"No Boltfile at {path}.")
            return None
        self._boltfiles[info.project.name] = path
        read = await self._info(info.project)
        # Another Boltfile changes the drift, not the images the containers run: the
        # cell as it is now (an Updates pass may have filled it meanwhile).
        updated = replace(read, updates=self._infos.get(info.key, info).updates)
        self._infos[info.key] = updated
        self._show_grid()
        if updated.problem:
            self.status.error(f"{info.project.name}: {updated.problem}")
        else:
            self.status.success(f"{info.project.name}: Boltfile {path}.")
        return updated

    def open_boltfile(self) -> BoltfileEditor:
        """Open the selected project's Boltfile in a BoltfileEditor (shown below; its
        Plan and Apply run on the project's environments)."""
        from ._boltfile_editor import BoltfileEditor

        info = self._selected_info(managed=True)
        if not info.boltfile:
            raise ValueError(f"the Boltfile of {info.project.name} is unknown: type its path "
                             "beside Boltfile and press Use")
        if self._editor is not None:
            close_widget_tree(self._editor)
        self._editor = BoltfileEditor(Path(info.boltfile),
                                      environments=self._project_environments(info.project))
        self.editor_box.children = [self._editor]
        return self._editor

    def _open_clicked(self) -> None:
        with self.status.reporting("Open Boltfile"):
            editor = self.open_boltfile()
            self.status.info(f"Editing {editor.path}.")

    async def plan(self) -> SurgePlan | None:
        """Show Surge's plan for the selected project's Boltfile."""
        info, boltfile = self._selected_boltfile()
        plan = await plan_surge(boltfile, self._project_environments(info.project))
        self.plan_view.value = plan_html(plan_rows(plan))
        changes = sum(len(p.changes) for p in plan.environments)
        failed = [p for p in plan.environments if p.error is not None]
        if failed:
            self.status.error("Plan failed on " + "; ".join(
                f"{p.environment}: {describe_error(p.error)}" for p in failed
                if p.error is not None))
        else:
            self.status.success(f"Planned {info.project.name}: "
                                f"{plural(changes, 'change') if changes else 'in sync'}.")
        return plan

    async def apply(self) -> SurgeResult | None:
        """Apply the selected project's Boltfile, with a progress bar and log."""
        info, boltfile = self._selected_boltfile()
        self._begin_progress(f"Applying {info.project.name}")
        result = await apply_surge(boltfile, self._project_environments(info.project),
                                   progress=self._on_progress,
                                   stop_timeout=self.stop_timeout)
        self._end_progress(result, "Applied")
        self.plan_view.value = ""  # the engines changed: Plan again to see them now
        await self._reselect(info.key)
        self._say(result, "Apply", "Applied", info.project.name)
        return result

    async def redeploy_latest(self) -> SurgeResult | None:
        """Pull the selected project's images and recreate only the containers whose
        image changed (:func:`~ghostpanel_kernel.surge.redeploy_latest`).

        Refused, with the changes listed in the status line and nothing changed, while
        the Boltfile has changes of its own waiting: Plan and Apply are for those.
        """
        info, boltfile = self._selected_boltfile()
        name = info.project.name
        self._begin_progress(f"Redeploying {name} with the latest images")
        try:
            result = await surge_redeploy_latest(
                self._project_environments(info.project), info.project, boltfile=boltfile,
                progress=self._on_progress, stop_timeout=self.stop_timeout)
        except SurgeError as error:
            why = describe_error(error)
            self.progress.layout.display = "none"
            self._run_log.add(f"Refused: {why}")
            self.status.error(f"Redeploy {name} refused, nothing changed: {why}")
            return None
        self._end_progress(result, "Redeployed")
        self.plan_view.value = ""
        await self._reselect(info.key)
        self._say(result, "Redeploy", "Redeployed", name)
        return result

    def ask_destroy(self) -> None:
        """Show the destroy confirmation: the project's name must be typed."""
        with self.status.reporting("Destroy"):
            info = self._selected_info(managed=True)
            self.confirm_label.value = (
                f'<b style="color: #b00020">Destroy {html.escape(info.project.name)} on '
                f"{html.escape(', '.join(info.project.environments))}? Type its name:</b>")
            self.confirm_name.value = ""
            self.destroy_box.layout.display = "flex"

    def cancel_destroy(self) -> None:
        """Hide the destroy confirmation."""
        self.confirm_name.value = ""
        self.destroy_box.layout.display = "none"

    async def destroy(self, confirmation: str) -> SurgeResult | None:
        """Remove the selected project when ``confirmation`` is its name (else nothing).

        Its containers and networks go from every environment it is on; its named
        volumes too when *also its named volumes* is ticked.
        """
        info = self._selected_info(managed=True)
        name = info.project.name
        if confirmation.strip() != name:
            self.status.error(f"Type the project's name, {name}, to destroy it: nothing "
                              "was removed.")
            return None
        self.cancel_destroy()
        target: Boltfile | str = name
        if info.boltfile and os.path.isfile(info.boltfile):
            # Its service names also find the containers it adopted by name.
            target = Boltfile.load(info.boltfile)
        self._begin_progress(f"Destroying {name}")
        result = await destroy_surge(target, self._project_environments(info.project),
                                     volumes=self.remove_volumes.value,
                                     progress=self._on_progress,
                                     stop_timeout=self.stop_timeout)
        self._end_progress(result, "Destroyed")
        await self.refresh()
        self._say(result, "Destroy", "Destroyed", name)
        return result

    # -- a Bolt stack
    def _adoption_environment(self, info: StackInfo) -> Environment:
        name = self.adopt_environment.value or info.project.environments[0]
        for environment in self._environments:
            if environment.name == name:
                return environment
        raise ValueError(f"no environment {name!r} here")

    async def preview_adoption(self) -> Adoption | None:
        """Write the Boltfile of the selected Bolt stack and show the plan adopting it
        carries out (nothing is saved or changed yet)."""
        info = self._selected_info(managed=False)
        environment = self._adoption_environment(info)
        project = self.adopt_project.value.strip() or info.project.name
        adoption = await describe_adoption(environment, project)
        plan = await plan_adoption(Boltfile.loads(adoption.text), environment)
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in adoption.notes)
        self.adoption_view.value = (
            f"<b>Boltfile</b> ({html.escape(plural(len(adoption.containers), 'container'))}"
            f" on {html.escape(environment.name)}):<pre class=\"gp-adopt-boltfile\">"
            f"{html.escape(adoption.text)}</pre><ul>{notes}</ul>")
        self.plan_view.value = plan_html(plan_rows(plan))
        self._adoption = adoption
        self.adopt_button.disabled = self.busy
        self.status.info(f"Adopting {project} recreates "
                         f"{plural(len(adoption.containers), 'container')} to carry "
                         "Surge's labels (see the plan). Press Adopt to do it.")
        return adoption

    async def adopt(self, path: str | None = None) -> SurgeResult | None:
        """Save the previewed Boltfile to ``path`` (default: the *save to* field) and
        adopt the stack with it; the project is then a Surge project."""
        info = self._selected_info(managed=False)
        adoption = self._adoption
        if adoption is None:
            raise ValueError("press Preview adoption first: it shows what adopting does")
        target = os.path.abspath(os.path.expanduser((path or self.adopt_path.value).strip()))
        if os.path.exists(target):
            raise ValueError(f"{target} exists already: choose another file (adopting "
                             "never overwrites one)")
        Path(target).write_text(adoption.text, encoding="utf-8")
        environment = self._adoption_environment(info)
        self._begin_progress(f"Adopting {adoption.project}")
        result = await adopt_stack(Boltfile.load(target), environment,
                                   progress=self._on_progress,
                                   stop_timeout=self.stop_timeout)
        self._end_progress(result, "Adopted")
        self._adoption = None
        self.adopt_button.disabled = True
        if result.ok:
            self._boltfiles[adoption.project] = target
        await self._reselect(("surge", adoption.project) if result.ok else info.key)
        self._say(result, "Adopt", "Adopted", adoption.project)
        return result

    # -- progress
    def _begin_progress(self, what: str) -> None:
        self._run_log.begin(what)
        self.status.info(what + "...")

    def _on_progress(self, progress: SurgeProgress) -> None:
        self._run_log.step(progress)

    def _end_progress(self, result: SurgeResult, done: str) -> None:
        self._run_log.end(result, done)

    def _say(self, result: SurgeResult, verb: str, done: str, name: str) -> None:
        summary = "; ".join(result.summary())
        if result.ok:
            self.status.success(f"{done} {name}" + (f": {summary}." if summary else "."))
        else:
            problems = [*(f"{env}: {describe_error(error)}"
                          for env, error in result.errors.items()), *result.conclusion()]
            self.status.error(f"{verb} {name} failed: " + "; ".join(problems))

    # -- closing
    def _release(self) -> None:
        owned, self._owned = self._owned, []
        close_later(owned)
        self._editor = None


def _registry_specs(registry: EnvironmentRegistry | None) -> Sequence[Any]:
    """Every environment of ``registry`` (default: the session's)."""
    from ghostpanel_kernel.environments import session_registry

    if registry is not None:
        return registry.list()
    opened = session_registry()
    try:
        return opened.list()
    finally:
        opened.close()
