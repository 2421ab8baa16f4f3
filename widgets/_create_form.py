"""``CreateContainerForm``: create a container on an environment from a form, with a
live preview of the same container as a Boltfile service and as a ``docker run`` line.

The fields are read by the kernel's :class:`~ghostpanel_kernel.engine._run_spec.RunSpec`
on every change: a bad value (port ``99999``, memory ``12XB``, env ``=x``, a name with a
space or one already taken on the environment) is shown beside its field at once, and
Create stays disabled while any field is wrong, so nothing is sent that the engine would
refuse. The preview is what "Save to Boltfile" appends (the Boltfile validator runs on
it) and the equivalent ``docker run`` line, shell-quoted.

Create pulls the image first when it is not on the environment (with "Pull if missing"
ticked; the Pull button does it on demand), with the engine's pull progress as a bar,
then creates the container and, with "Start" ticked, starts it. GPUs: the field shows
only where this machine's engine has NVIDIA GPUs (read through NVML, or the simulation
``GHOSTPANEL_GPU_SIMULATE`` names); the GPUs are reserved through GhostPanel's allocator
under the container's name and given to the engine in the form it honours. The form is
described in docs/create.md.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool

from ghostpanel_kernel.engine import (
    Container,
    Environment,
    GhostPanelError,
    NotFound,
    PullProgress,
)
from ghostpanel_kernel.engine._run_spec import (
    FIELDS,
    GPU_POLICIES,
    RESTART_POLICIES,
    RunSpec,
    check_fields,
)

from ._base import EngineWidget
from ._status import describe_error

if TYPE_CHECKING:
    from ghostpanel_kernel.bolt import BoltfileService, Diagnostic
    from ghostpanel_kernel.gpus import GpuAllocator, Inventory

__all__ = ["CreateContainerForm"]

_STYLE = {"description_width": "110px"}
_LOCAL_SCHEMES = ("unix://", "npipe://")
_LABELS = {"image": "Image", "name": "Name", "command": "Command", "env": "Environment",
           "ports": "Ports", "volumes": "Volumes", "restart": "Restart", "labels": "Labels",
           "cpus": "CPUs", "memory": "Memory", "gpus": "GPUs", "gpu_policy": "GPU policy"}
_PLACEHOLDERS = {
    "image": "alpine:3.20 (or pick one of the environment's)",
    "name": "web (empty: the engine picks one)",
    "command": "sh -c 'echo hello'",
    "env": "KEY=value, one per line",
    "ports": "8080:80 or 53:53/udp, one per line",
    "volumes": "/srv/site:/usr/share/nginx/html:ro or data:/data, one per line",
    "restart": "no",
    "labels": "KEY=value, one per line",
    "cpus": "1.5",
    "memory": "512m",
    "gpus": "all, or indices: 0,1",
}
_MULTILINE = frozenset({"env", "ports", "volumes", "labels"})
# Code as code: the widgets' HTML sets a line height of a whole control, and a long
# docker run line must wrap anywhere rather than widen the page.
_PRE = ('<pre style="font-family: var(--jp-code-font-family, monospace); line-height: 1.35; '
        "background: #f6f8fa; padding: 6px 8px; margin: 2px 0; white-space: pre-wrap; "
        'overflow-wrap: anywhere">')


def _project_name(folder: Path) -> str:
    """A project name Bolt accepts from a folder's name (``My Shop`` -> ``my-shop``)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-")
    return name or "project"


class CreateContainerForm(EngineWidget):
    """A form that creates a container on ``environment``, or saves it into a Boltfile.

    Parameters
    ----------
    environment
        An open :class:`~ghostpanel_kernel.engine.Environment`.
    boltfile
        The Boltfile "Save to Boltfile" adds the service to (the field can be changed;
        a file that does not exist yet is started with a ``project`` named after its
        folder).
    gpu_reader
        Reads this machine's GPU inventory (default
        :func:`ghostpanel_kernel.gpus.read_inventory`; tests give a double).
    database_url
        The store GPU reservations are kept in (default: GhostPanel's own).

    Attributes
    ----------
    fields
        Field name (see ``ghostpanel_kernel.engine._run_spec.FIELDS``) -> its widget.
    created
        The container the last Create made, or None.

    Examples
    --------
    >>> form = CreateContainerForm(env, boltfile="Boltfile.toml")       # doctest: +SKIP
    >>> form.on_created(lambda container: print("created", container.name))  # doctest: +SKIP
    >>> form.set_fields(image="alpine:3.20", name="web", ports="8080:80")  # doctest: +SKIP
    >>> await form.create()                                            # doctest: +SKIP
    """

    valid = Bool(False, read_only=True,
                 help="Whether every field reads well (Create is enabled).").tag(sync=True)
    has_gpus = Bool(False, read_only=True,
                    help="Whether the GPU field is shown (this host has GPUs).").tag(sync=True)

    def __init__(self, environment: Environment, *, boltfile: str | os.PathLike[str] | None = None,
                 gpu_reader: Callable[[], Inventory] | None = None,
                 database_url: str | None = None, **kwargs: Any) -> None:
        if not isinstance(environment, Environment):  # before any widget is made
            raise TypeError(f"CreateContainerForm needs an Environment from "
                            f"ghostpanel_kernel.connect(), not {type(environment).__name__}")
        self._callbacks: list[Callable[[Container], None]] = []
        self._names: set[str] = set()
        self._errors: dict[str, str] = {}
        self._spec: RunSpec | None = None
        self._gpu_reader = gpu_reader
        self._database_url = database_url
        self._inventory: Inventory | None = None
        self.created: Container | None = None
        self.fields: dict[str, ipywidgets.Widget] = {}
        self.field_errors: dict[str, ipywidgets.HTML] = {}
        rows: dict[str, ipywidgets.HBox] = {}
        for name in FIELDS:
            widget = self._field(name)
            self.fields[name] = widget
            error = ipywidgets.HTML(layout=ipywidgets.Layout(margin="0 0 0 8px",
                                                             flex="1 1 0", min_width="0"))
            error.add_class("gp-field-error")
            self.field_errors[name] = error
            row = ipywidgets.HBox([widget, error])
            row.add_class(f"gp-field-{name.replace('_', '-')}")
            rows[name] = row
        self.pull_button = ipywidgets.Button(description="Pull", icon="download",
                                             tooltip="Pull the image now")
        self.pull_missing = ipywidgets.Checkbox(value=True, description="Pull if missing",
                                                indent=False)
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1,
                                               layout=ipywidgets.Layout(width="240px"))
        self.progress_text = ipywidgets.Label()
        rows["image"].children = [self.fields["image"], self.pull_button, self.pull_missing,
                                  self.field_errors["image"]]
        self.gpu_box = ipywidgets.VBox([rows["gpus"], rows["gpu_policy"]],
                                       layout=ipywidgets.Layout(display="none"))
        self.boltfile_preview = ipywidgets.HTML()
        self.boltfile_preview.add_class("gp-create-boltfile")
        self.diagnostics = ipywidgets.HTML()
        self.diagnostics.add_class("gp-create-diagnostics")
        self.docker_preview = ipywidgets.HTML()
        self.docker_preview.add_class("gp-create-docker-run")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary", disabled=True)
        self.create_button.add_class("gp-create-button")
        self.start_after = ipywidgets.Checkbox(value=True, description="Start", indent=False,
                                               layout=ipywidgets.Layout(width="80px"))
        self.boltfile_field = ipywidgets.Text(
            value=os.fspath(boltfile) if boltfile is not None else "",
            description="Boltfile", placeholder="path/to/Boltfile.toml", style=_STYLE,
            layout=ipywidgets.Layout(width="420px"))
        self.boltfile_error = ipywidgets.HTML(layout=ipywidgets.Layout(margin="0 0 0 8px"))
        self.boltfile_error.add_class("gp-field-error")
        self.save_button = ipywidgets.Button(description="Save to Boltfile", icon="save",
                                             disabled=True)
        self.save_button.add_class("gp-create-save")
        super().__init__(environment, **kwargs)
        self.add_class("gp-create-form")
        self.title = ipywidgets.HTML(
            f"<b>Create a container on {html.escape(environment.name)}</b>")
        preview = ipywidgets.VBox([
            ipywidgets.HTML("<b>Boltfile service</b> (what Save to Boltfile adds)"),
            self.boltfile_preview, self.diagnostics,
            ipywidgets.HTML("<b>docker run</b>"), self.docker_preview],
            # Beside the fields where the page is wide enough, below them where not.
            layout=ipywidgets.Layout(flex="1 1 420px", min_width="360px",
                                     margin="0 0 0 16px"))
        preview.add_class("gp-create-preview")
        # A bounded column, so that the preview fits beside it on a wide page; the
        # error messages wrap within it.
        form = ipywidgets.VBox(layout=ipywidgets.Layout(flex="0 1 860px", min_width="520px"))
        form.children = [
            rows["image"], ipywidgets.HBox([self.progress, self.progress_text]),
            *(rows[name] for name in FIELDS if name not in ("image", "gpus", "gpu_policy")),
            self.gpu_box,
            ipywidgets.HBox([self.create_button, self.start_after]),
            ipywidgets.HBox([self.boltfile_field, self.save_button, self.boltfile_error]),
        ]
        self.children = [self.title, self.status,
                         ipywidgets.HBox([form, preview],
                                         layout=ipywidgets.Layout(flex_flow="row wrap"))]
        for widget in self.fields.values():
            widget.observe(self._changed, names="value")
        self.boltfile_field.observe(self._changed, names="value")
        self.start_after.observe(self._changed, names="value")  # docker run or create
        self.create_button.on_click(lambda _: self._start("Create", self.create))
        self.pull_button.on_click(lambda _: self._start("Pull", self.pull))
        self.save_button.on_click(lambda _: self.save_to_boltfile())
        self._check()
        self._start("Load", self.refresh)

    @staticmethod
    def _field(name: str) -> ipywidgets.Widget:
        options: dict[str, Any] = {"description": _LABELS[name], "style": _STYLE,
                                   "placeholder": _PLACEHOLDERS.get(name, "")}
        if name == "image":
            return ipywidgets.Combobox(options=[], ensure_option=False,
                                       layout=ipywidgets.Layout(width="420px"), **options)
        if name == "restart":
            return ipywidgets.Combobox(options=[*RESTART_POLICIES, "on-failure:3"],
                                       ensure_option=False,
                                       layout=ipywidgets.Layout(width="300px"), **options)
        if name == "gpu_policy":
            del options["placeholder"]
            return ipywidgets.Dropdown(options=GPU_POLICIES, value="exclusive", **options)
        if name in _MULTILINE:
            return ipywidgets.Textarea(rows=2, layout=ipywidgets.Layout(width="520px"),
                                       **options)
        width = "200px" if name in ("cpus", "memory", "gpus") else "520px"
        return ipywidgets.Text(layout=ipywidgets.Layout(width=width), **options)

    # -- the fields --------------------------------------------------------------------

    @property
    def spec(self) -> RunSpec | None:
        """The container the fields describe, or None while a field is wrong."""
        return self._spec

    @property
    def errors(self) -> dict[str, str]:
        """Field name -> what is wrong with it (empty when the form is valid)."""
        return dict(self._errors)

    def set_fields(self, **values: str) -> None:
        """Fill fields by name (``image=``, ``ports=``...), as typing them would.

        Raises
        ------
        KeyError
            No field of that name.
        """
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise KeyError(f"no field {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
        for name, value in values.items():
            self.fields[name].value = value

    def _texts(self) -> dict[str, str]:
        return {name: str(widget.value or "") for name, widget in self.fields.items()}

    def _changed(self, change: dict[str, Any] | None = None) -> None:
        self._check()

    def _check(self) -> None:
        """Read the fields again: errors beside their fields, previews, the buttons."""
        texts = self._texts()
        if not self.has_gpus:  # a hidden field asks for nothing
            texts["gpus"], texts["gpu_policy"] = "", "exclusive"
        spec, errors = check_fields(texts, taken_names=self._names)
        if spec is not None and spec.gpus and not spec.name:
            spec, errors = None, {"name": "a container with GPUs needs a name: its GPUs "
                                          "are reserved under it"}
        self._spec, self._errors = spec, errors
        for name, widget in self.field_errors.items():
            message = errors.get(name, "")
            widget.value = (f'<span style="color: #b00020">&#x2716; {html.escape(message)}'
                            "</span>" if message else "")
        self.set_trait("valid", spec is not None)
        self._show_preview(spec)
        self._update_buttons()

    def _show_preview(self, spec: RunSpec | None) -> None:
        if spec is None:
            wrong = ", ".join(_LABELS[name] for name in self._errors)
            self.boltfile_preview.value = (
                f'<div style="color: #777">Fix {html.escape(wrong)} to see the preview.</div>')
            self.diagnostics.value = ""
            self.docker_preview.value = ""
            return
        try:
            text = spec.boltfile_text()
            diagnostics = spec.validate_service(text=text)
        except (ValueError, GhostPanelError) as error:  # never a traceback in the form
            text, diagnostics = f"# {describe_error(error)}", []
        self.boltfile_preview.value = f"{_PRE}{html.escape(text)}</pre>"
        self.diagnostics.value = self._diagnostics_html(diagnostics)
        self.docker_preview.value = \
            f"{_PRE}{html.escape(spec.to_docker_run(start=self.start_after.value))}</pre>"

    @staticmethod
    def _diagnostics_html(diagnostics: Sequence[Diagnostic]) -> str:
        if not diagnostics:
            return ('<div style="color: #1b7f3b">&#x2714; The Boltfile validator accepts '
                    "this service.</div>")
        lines = []
        for found in diagnostics:
            colour = "#b00020" if found.is_error else "#a15c00"
            lines.append(f'<div class="gp-diagnostic-{found.severity}" style="color: '
                         f'{colour}">{html.escape(found.severity)}: '
                         f"{html.escape(found.message)}</div>")
        return "".join(lines)

    def _update_buttons(self) -> None:
        valid = self._spec is not None
        self.create_button.disabled = self.busy or not valid
        self.save_button.disabled = self.busy or not valid or \
            not self.boltfile_field.value.strip()
        self.pull_button.disabled = self.busy or "image" in self._errors
        self.boltfile_error.value = ""

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.create_button, self.pull_button, self.save_button)

    def _set_busy(self, busy: bool, action: str = "") -> None:
        super()._set_busy(busy, action)
        if not busy and not self._closed:
            self._update_buttons()  # the base enables them all; invalid fields keep Create off

    # -- the environment ------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Read the environment's images (the image field's choices), its container
        names (a taken name is an error of the name field) and whether it has GPUs."""
        with self.status.reporting("Reading the environment"):
            images, containers = await asyncio.gather(
                self.env.images.list(), self.env.containers.list(all=True))
            tags = sorted({tag for image in images for tag in image.tags
                           if tag and "<none>" not in tag})
            self.fields["image"].options = tags
            self._names = {c.name for c in containers if c.name}
            await self._detect_gpus()
            self._check()
            return True
        return False

    def _local(self) -> bool:
        return self.env.url.startswith(_LOCAL_SCHEMES)

    async def _detect_gpus(self) -> None:
        """Show the GPU field when this machine's engine has GPUs to reserve.

        GPUs of a remote engine are reserved where it runs (its agent, ``ghostpanel
        gpu``): the field stays hidden there rather than reserve GPUs of this machine.
        """
        if not self._local():
            return
        reader = self._gpu_reader
        if reader is None:
            # The variable is ghostpanel_kernel.gpus.SIMULATE_VARIABLE, spelled out:
            # importing the GPU kernel is what this test avoids.
            if not os.environ.get("GHOSTPANEL_GPU_SIMULATE") and \
                    not Path("/dev/nvidiactl").exists():
                return  # no driver: not worth loading NVML (and SQLAlchemy) for
            from ghostpanel_kernel.gpus import read_inventory

            reader = read_inventory
        # NVML calls block: off the kernel's event loop.
        inventory = await asyncio.to_thread(reader)
        self._inventory = inventory
        shown = inventory.state == "ok" and bool(inventory.gpus)
        self.set_trait("has_gpus", shown)
        self.gpu_box.layout.display = "" if shown else "none"
        if shown:
            self.fields["gpus"].placeholder = "all, or indices: " + ", ".join(
                str(gpu.index) for gpu in inventory.gpus)

    async def pull(self, reference: str | None = None) -> bool:
        """Pull ``reference`` (default: the image field's), the bar following the layers."""
        reference = (reference or str(self.fields["image"].value)).strip()
        progress = PullProgress()
        with self.status.reporting(f"Pull {reference}".rstrip()):
            if not reference:
                raise ValueError("type an image reference first, e.g. alpine:3.20")
            self.status.info(f"Pulling {reference}...")
            self._show_progress(progress, "info")
            shown_at = time.monotonic()
            try:
                async for event in self.env.images.pull(reference):
                    progress.update(event)
                    if time.monotonic() - shown_at >= 0.1:  # each update is a message
                        self._show_progress(progress, "info")
                        shown_at = time.monotonic()
            except BaseException:
                self._show_progress(PullProgress(), "")
                raise
            progress.finish()
            self._show_progress(progress, "success")
            self.progress.max = self.progress.value = max(progress.total, 1)
            self.progress_text.value = f"Pulled {reference}"
            options = list(self.fields["image"].options)
            if reference not in options:
                self.fields["image"].options = sorted([*options, reference])
            self.status.success(f"Pulled {reference}.")
            return True
        return False

    def _show_progress(self, progress: PullProgress, style: str) -> None:
        with self.progress.hold_trait_notifications():
            self.progress.max = max(progress.total, 1)
            self.progress.value = min(progress.current, self.progress.max)
            self.progress.bar_style = style
        self.progress_text.value = progress.text

    # -- create -------------------------------------------------------------------------

    def on_created(self, callback: Callable[[Container], None]) -> None:
        """Call ``callback(container)`` after each container the form creates."""
        self._callbacks.append(callback)

    async def create(self, *, start: bool | None = None) -> Container | None:
        """Create the container the fields describe (and start it, per ``start``,
        default the Start box); None, with the error shown, if it failed.

        The container names are read again first: a name taken since the form loaded
        is shown beside the name field, and nothing is sent.
        """
        start = self.start_after.value if start is None else start
        with self.status.reporting("Create"):
            self._names = {c.name for c in await self.env.containers.list(all=True) if c.name}
            self._check()
            spec = self._spec
            if spec is None:
                wrong = ", ".join(_LABELS[name] for name in self._errors)
                raise ValueError(f"fix the fields first: {wrong}")
            await self._ensure_image(spec.image)
            self.status.info(f"Creating {spec.name or 'a container'} from {spec.image}...")
            container = await self._create(spec)
            self.created = container
            self._names.add(container.name)
            self._check()  # the name is taken now
            label = container.name or container.short_id
            if start:
                try:
                    await container.start()
                except Exception as error:
                    self.status.error(f"Created {label}, but it did not start: "
                                      f"{describe_error(error)}")
                    self._created(container)
                    return container
            self.status.success(f"{'Started' if start else 'Created'} {label} "
                                f"({container.short_id}) on {self.env.name}.")
            self._created(container)  # after: an error of a callback stays shown
            return container
        return None

    def _created(self, container: Container) -> None:
        for callback in list(self._callbacks):
            with self.status.reporting("on_created"):
                callback(container)

    async def _ensure_image(self, reference: str) -> None:
        try:
            await self.env.images.get(reference)
        except NotFound:
            if not self.pull_missing.value:
                raise ValueError(f"{reference} is not on {self.env.name}: pull it first, or "
                                 "tick Pull if missing") from None
            if not await self.pull(reference):
                raise ValueError(f"{reference} could not be pulled") from None

    async def _create(self, spec: RunSpec) -> Container:
        options = spec.create_options()
        request = spec.gpu_request()
        if request is None:
            return await self.env.containers.create(name=spec.name or None, **options)
        allocator = self._allocator()
        try:
            made = allocator.allocate(spec.name, request)
            from ghostpanel_kernel.gpus import create_with_gpus

            try:
                return await create_with_gpus(self.env, allocator, spec.name, **options,
                                              name=spec.name)
            except BaseException:
                if made:
                    allocator.release(spec.name)
                raise
        finally:
            allocator.close()

    def _allocator(self) -> GpuAllocator:
        from ghostpanel_kernel.gpus import GpuAllocator

        if self._inventory is None or self._inventory.state != "ok":
            raise ValueError("this environment's GPUs were not read: no GPU to reserve")
        return GpuAllocator(self._inventory, database_url=self._database_url)

    # -- the Boltfile -------------------------------------------------------------------

    def save_to_boltfile(self, path: str | os.PathLike[str] | None = None
                         ) -> BoltfileService | None:
        """Add the service to the Boltfile at ``path`` (default: the Boltfile field's),
        keeping the file's comments; None, with the reason shown, if it was refused
        (a service of that name is there already, a field is wrong...)."""
        from ghostpanel_kernel.bolt import Boltfile, validate

        target = Path(os.fspath(path) if path is not None else
                      self.boltfile_field.value.strip()).expanduser()
        with self.status.reporting("Save to Boltfile"):
            spec = self._spec
            if spec is None:
                raise ValueError("fix the fields first: "
                                 + ", ".join(_LABELS[name] for name in self._errors))
            if not str(target) or str(target) == ".":
                raise ValueError("type the Boltfile's path first")
            if target.exists():
                boltfile = Boltfile.load(target)
            else:
                project = _project_name(target.absolute().parent)
                boltfile = Boltfile.loads(f'project = "{project}"\n', path=str(target))
            name = spec.service_name
            if name in boltfile.services:
                message = (f"{target} already has a service {name!r}: change the name, or "
                           "edit that service in the Boltfile editor")
                self.boltfile_error.value = (f'<span style="color: #b00020">&#x2716; '
                                             f"{html.escape(message)}</span>")
                self.status.error(f"Save to Boltfile refused: {message}")
                return None
            service = spec.add_to_boltfile(boltfile, name)
            boltfile.save(target)
            errors = [d for d in validate(boltfile) if d.is_error]
            note = (f"; the validator finds {len(errors)} error(s) in the file"
                    if errors else "; the validator accepts the file")
            self.status.success(f"Saved service {name} to {target}{note}.")
            return service
        return None
