"""The form half of the Boltfile editor: a service's image, ports, volumes, environment
and GPU, and the project's snapshot settings, as ipywidgets fields.

The form never holds a Boltfile of its own. :meth:`BoltfileForm.refresh` fills the
fields from one; a field the user changes becomes an *edit* -- a function that changes
a :class:`~ghostpanel_kernel.bolt.Boltfile` through its edit methods (comments and
layout kept) -- handed to the editor, which applies it, rewrites the text and calls
:meth:`~BoltfileForm.refresh` again. An edit that fails (a malformed port, a key
written in a way the edit methods do not follow) changes nothing and the field goes
back to the file's value.

Keys Bolt keeps in nested tables (``gaming.gpu``, ``snapshots.retention``) have no edit
method of their own; they are changed through the tomlkit document, which also keeps
comments.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import ipywidgets
import tomlkit

from ghostpanel_kernel.bolt import Boltfile, VolumeMount

__all__ = [
    "RETENTION_KEYS",
    "BoltfileForm",
    "Edit",
    "format_env",
    "parse_count",
    "parse_env",
    "parse_lines",
]

Edit = Callable[[Boltfile], None]
"""A change to a Boltfile, made through its edit methods or its tomlkit document."""

EditHandler = Callable[[str, Edit], None]
"""Receives ``(what, edit)``: a short description for the status line, and the edit."""

RETENTION_KEYS = ("keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly",
                  "max_total")
_FILESYSTEMS = ("btrfs", "zfs", "auto")
_ENV_KEYS = ("env", "environment")  # Bolt reads both; the form edits whichever is there

_STYLE = {"description_width": "120px"}
_WIDE = ipywidgets.Layout(width="100%")


# -- text <-> values -----------------------------------------------------------------


def parse_lines(text: str) -> list[str]:
    """One entry per non-blank line, stripped; lines starting with ``#`` are skipped.

    Examples
    --------
    >>> parse_lines("80:80\\n\\n  443:443 \\n# later: 8080:80\\n")
    ['80:80', '443:443']
    """
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as a mapping (the value may contain ``=``; blank lines and
    ``#`` lines are skipped).

    Raises
    ------
    ValueError
        A line has no ``=`` or an empty key, or a key comes twice.

    Examples
    --------
    >>> parse_env("DISPLAY=:0\\nURL=postgres://db/x?a=b\\n")
    {'DISPLAY': ':0', 'URL': 'postgres://db/x?a=b'}
    """
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"environment line {number}: {stripped!r} is not KEY=VALUE")
        if key in env:
            raise ValueError(f"environment line {number}: {key} is set twice")
        env[key] = value.strip()
    return env


def format_env(env: Mapping[str, Any]) -> str:
    """A mapping as ``KEY=VALUE`` lines (non-strings as TOML writes them).

    Examples
    --------
    >>> print(format_env({"A": "1", "DEBUG": True}))
    A=1
    DEBUG=true
    """
    return "\n".join(f"{key}={_scalar_text(value)}" for key, value in env.items())


def parse_count(text: str, *, what: str) -> int | None:
    """A non-negative whole number, or ``None`` for an empty field (key not set).

    Raises
    ------
    ValueError
        Anything else.

    Examples
    --------
    >>> parse_count(" 7 ", what="keep_daily"), parse_count("", what="keep_daily")
    (7, None)
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not stripped.isdigit():
        raise ValueError(f"{what} must be a whole number of 0 or more, not {stripped!r}")
    return int(stripped)


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the tomlkit document ------------------------------------------------------------


def _table_at(bf: Boltfile, path: Sequence[str]) -> MutableMapping[str, Any] | None:
    """The table at ``path`` in the document, or ``None`` when it is not there (or is
    not a table)."""
    node: Any = bf.document
    for part in path:
        if not isinstance(node, MutableMapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, MutableMapping) else None


def _set_in_table(bf: Boltfile, table: Sequence[str], key: str, value: Any, *,
                  create: bool) -> None:
    """Set ``key`` of the table at ``table`` (``None`` removes it), creating the missing
    tables on the way when ``create``.

    Raises
    ------
    ValueError
        The table is not there (and ``create`` is false), or something on the way is
        not a table.
    """
    node: MutableMapping[str, Any] = bf.document
    for depth, part in enumerate(table):
        child = node.get(part)
        if child is None:
            if not create:
                raise ValueError(f"there is no [{'.'.join(table[: depth + 1])}] table")
            if value is None:
                return  # nothing to remove
            fresh = tomlkit.table()
            node[part] = fresh
            child = node[part]
        if not isinstance(child, MutableMapping):
            raise ValueError(f"`{'.'.join(table[: depth + 1])}` is not a table here")
        node = child
    if value is None:
        if key in node:
            del node[key]
    else:
        node[key] = value


# -- the form ------------------------------------------------------------------------


def _text(description: str, placeholder: str = "") -> ipywidgets.Text:
    return ipywidgets.Text(description=description, placeholder=placeholder,
                           continuous_update=False, style=_STYLE, layout=_WIDE)


def _area(description: str, placeholder: str) -> ipywidgets.Textarea:
    return ipywidgets.Textarea(description=description, placeholder=placeholder, rows=3,
                               continuous_update=False, style=_STYLE, layout=_WIDE)


def _heading(text: str) -> ipywidgets.HTML:
    return ipywidgets.HTML(f"<b>{text}</b>")


class BoltfileForm(ipywidgets.VBox):
    """Form fields for one Boltfile: the project, a service chosen from a list, and the
    snapshot settings.

    Parameters
    ----------
    on_edit
        Called with ``(what, edit)`` when the user changes a field; the editor applies
        ``edit`` to its Boltfile and calls :meth:`refresh`.

    Examples
    --------
    >>> edits = []
    >>> form = BoltfileForm(on_edit=lambda what, edit: edits.append(what))
    >>> form.refresh(Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n'))
    >>> form.service.options, form.image.value
    (('web',), 'nginx')
    >>> form.image.value = "nginx:1.28"
    >>> edits
    ['image of web']
    """

    def __init__(self, *, on_edit: EditHandler, **kwargs: Any) -> None:
        self._on_edit = on_edit
        self._refreshing = False
        self._boltfile: Boltfile | None = None

        self.project = _text("project", "a name without spaces")
        self.service = ipywidgets.Dropdown(description="service", options=(), style=_STYLE,
                                           layout=_WIDE)
        self.source = ipywidgets.HTML()
        self.image = _text("image", "e.g. nginx:1.27")
        self.ports = _area("ports", "HOST:CONTAINER, one per line")
        self.volumes = _area("volumes", "SOURCE:TARGET[:ro], one per line")
        self.env = _area("environment", "KEY=VALUE, one per line")
        self.gpu_runtime = _text("GPU runtime", "nvbind, docker, nvidia or amd")
        self.gpu_devices = _text("nvbind devices", "gpu:0, gpu:1 or gpu:all")
        self.gpu_note = ipywidgets.HTML()
        self.snapshots_enabled = ipywidgets.Checkbox(description="snapshots enabled",
                                                     indent=False)
        self.snapshots_filesystem = ipywidgets.Dropdown(
            description="filesystem", options=[("not set", ""), *[(f, f) for f in _FILESYSTEMS]],
            style=_STYLE, layout=_WIDE)
        self.retention = {key: _text(key.replace("_", " "), "not set")
                          for key in RETENTION_KEYS}
        self.note = ipywidgets.HTML()

        self._service_fields: list[ipywidgets.ValueWidget] = [
            self.image, self.ports, self.volumes, self.env, self.gpu_runtime,
            self.gpu_devices]
        self._file_fields: list[ipywidgets.ValueWidget] = [
            self.project, self.service, self.snapshots_enabled, self.snapshots_filesystem,
            *self.retention.values()]

        self.project.observe(self._project_changed, "value")
        self.service.observe(self._service_chosen, "value")
        self.image.observe(self._image_changed, "value")
        self.ports.observe(self._ports_changed, "value")
        self.volumes.observe(self._volumes_changed, "value")
        self.env.observe(self._env_changed, "value")
        self.gpu_runtime.observe(self._gpu_runtime_changed, "value")
        self.gpu_devices.observe(self._gpu_devices_changed, "value")
        self.snapshots_enabled.observe(self._snapshots_enabled_changed, "value")
        self.snapshots_filesystem.observe(self._filesystem_changed, "value")
        for key, field in self.retention.items():
            field.observe(self._retention_changed(key), "value")

        super().__init__(children=[
            self.note, self.project,
            _heading("Service"), self.service, self.source, self.image, self.ports,
            self.volumes, self.env,
            _heading("GPU"), self.gpu_note, self.gpu_runtime, self.gpu_devices,
            _heading("Snapshots"), self.snapshots_enabled, self.snapshots_filesystem,
            *self.retention.values(),
        ], **kwargs)
        self.add_class("gp-boltfile-form")

    # -- filling the fields
    def refresh(self, boltfile: Boltfile | None, *, problem: str = "") -> None:
        """Show ``boltfile`` in the fields; ``None`` (the text is not TOML) disables
        them, with ``problem`` saying why."""
        self._boltfile = boltfile
        self._refreshing = True
        try:
            if boltfile is None:
                self.note.value = f'<span style="color: #b00020">{html.escape(problem)}</span>'
                for field in (*self._file_fields, *self._service_fields):
                    field.disabled = True
                return
            self.note.value = ""
            for field in self._file_fields:
                field.disabled = False
            self.project.value = boltfile.project or ""
            services = tuple(boltfile.services)
            current = self.service.value if self.service.value in services else None
            self.service.options = services
            self.service.value = current or (services[0] if services else None)
            self._fill_service()
            self._fill_snapshots()
        finally:
            self._refreshing = False

    def _fill_service(self) -> None:
        bf, name = self._boltfile, self.service.value
        if bf is None or not name:
            for field in self._service_fields:
                field.value = ""
                field.disabled = True
            self.source.value = "<i>no services</i>"
            self.gpu_note.value = ""
            return
        table = bf.service(name).to_dict()
        for field in self._service_fields:
            field.disabled = False
        image = table.get("image")
        self.image.value = image if isinstance(image, str) else ""
        others = [html.escape(f"{key} = {table[key]!r}") for key in ("build", "capsule")
                  if key in table]
        self.source.value = (f"<i>from {', '.join(others)}; an image replaces it</i>"
                             if others and not isinstance(image, str) else "")
        self.ports.value = "\n".join(map(_scalar_text, _as_list(table.get("ports"))))
        self.volumes.value = "\n".join(map(_scalar_text, _as_list(table.get("volumes"))))
        env: dict[str, Any] = next(
            (table[k] for k in _ENV_KEYS if isinstance(table.get(k), dict)), {})
        self.env.value = format_env(env)
        gpu = _table_at(bf, ("services", name, "gaming", "gpu"))
        nvbind = _table_at(bf, ("services", name, "gaming", "gpu", "nvbind"))
        self.gpu_runtime.disabled = gpu is None
        self.gpu_devices.disabled = nvbind is None
        runtime = gpu.get("runtime") if gpu is not None else None
        self.gpu_runtime.value = runtime if isinstance(runtime, str) else ""
        devices = nvbind.get("devices") if nvbind is not None else None
        self.gpu_devices.value = ", ".join(map(_scalar_text, _as_list(devices)))
        if gpu is None:
            self.gpu_note.value = (f"<i>no [services.{html.escape(name)}.gaming.gpu] table: "
                                   "add it (and the six required [gaming] switches) in the "
                                   "text</i>")
        elif nvbind is None:
            self.gpu_note.value = (f"<i>no [services.{html.escape(name)}.gaming.gpu.nvbind] "
                                   "table</i>")
        else:
            self.gpu_note.value = ""

    def _fill_snapshots(self) -> None:
        assert self._boltfile is not None
        snapshots = _table_at(self._boltfile, ("snapshots",))
        retention = _table_at(self._boltfile, ("snapshots", "retention"))
        enabled = snapshots.get("enabled") if snapshots is not None else None
        self.snapshots_enabled.value = enabled is True
        filesystem = snapshots.get("filesystem") if snapshots is not None else None
        options = [("not set", ""), *[(f, f) for f in _FILESYSTEMS]]
        if isinstance(filesystem, str) and filesystem not in _FILESYSTEMS:
            options.append((f"{filesystem} (unknown)", filesystem))
        self.snapshots_filesystem.options = options
        self.snapshots_filesystem.value = filesystem if isinstance(filesystem, str) else ""
        for key, field in self.retention.items():
            value = retention.get(key) if retention is not None else None
            field.value = "" if value is None else _scalar_text(value)

    # -- fields -> edits
    def _edit(self, what: str, edit: Edit) -> None:
        if not self._refreshing and self._boltfile is not None:
            self._on_edit(what, edit)

    def _project_changed(self, change: dict[str, Any]) -> None:
        name = change["new"].strip()
        self._edit("project", lambda bf: bf.set_project(name))

    def _service_chosen(self, change: dict[str, Any]) -> None:
        if not self._refreshing:
            self._refreshing = True
            try:
                self._fill_service()
            finally:
                self._refreshing = False

    def _image_changed(self, change: dict[str, Any]) -> None:
        service, image = self.service.value, change["new"].strip()
        self._edit(f"image of {service}", lambda bf: bf.set_image(service, image))

    def _ports_changed(self, change: dict[str, Any]) -> None:
        service, ports = self.service.value, parse_lines(change["new"])

        def edit(bf: Boltfile) -> None:
            if ports:
                bf.set_ports(service, ports)
            elif "ports" in bf.service(service).to_dict():
                bf.unset_service_key(service, "ports")

        self._edit(f"ports of {service}", edit)

    def _volumes_changed(self, change: dict[str, Any]) -> None:
        service, volumes = self.service.value, parse_lines(change["new"])

        def edit(bf: Boltfile) -> None:
            for index, spec in enumerate(volumes):
                try:
                    VolumeMount.parse(spec)
                except ValueError as error:
                    raise ValueError(f"volumes[{index}]: {error}") from None
            _set_service_list(bf, service, "volumes", volumes)

        self._edit(f"volumes of {service}", edit)

    def _env_changed(self, change: dict[str, Any]) -> None:
        service, text = self.service.value, change["new"]

        def edit(bf: Boltfile) -> None:
            env = parse_env(text)
            table = bf.service(service).to_dict()
            key = next((k for k in _ENV_KEYS if k in table), "environment")
            written = _table_at(bf, ("services", service, key))
            if isinstance(written, tomlkit.items.Table):
                # [services.web.environment] of its own: change it key by key, so the
                # comments of the keys that stay are kept.
                for name in [n for n in written if n not in env]:
                    del written[name]
                for name, value in env.items():
                    if written.get(name) != value:
                        written[name] = value
            elif env:
                bf.set_service_key(service, key, env)
            elif key in table:
                bf.unset_service_key(service, key)

        self._edit(f"environment of {service}", edit)

    def _gpu_runtime_changed(self, change: dict[str, Any]) -> None:
        service, runtime = self.service.value, change["new"].strip() or None
        self._edit(f"GPU runtime of {service}", lambda bf: _set_in_table(
            bf, ("services", service, "gaming", "gpu"), "runtime", runtime, create=False))

    def _gpu_devices_changed(self, change: dict[str, Any]) -> None:
        service = self.service.value
        devices = [d.strip() for d in change["new"].split(",") if d.strip()] or None
        self._edit(f"nvbind devices of {service}", lambda bf: _set_in_table(
            bf, ("services", service, "gaming", "gpu", "nvbind"), "devices", devices,
            create=False))

    def _snapshots_enabled_changed(self, change: dict[str, Any]) -> None:
        enabled = bool(change["new"])
        self._edit("snapshots.enabled", lambda bf: _set_in_table(
            bf, ("snapshots",), "enabled", enabled, create=True))

    def _filesystem_changed(self, change: dict[str, Any]) -> None:
        filesystem = change["new"] or None
        self._edit("snapshots.filesystem", lambda bf: _set_in_table(
            bf, ("snapshots",), "filesystem", filesystem, create=True))

    def _retention_changed(self, key: str) -> Callable[[dict[str, Any]], None]:
        def changed(change: dict[str, Any]) -> None:
            text = change["new"]

            def edit(bf: Boltfile) -> None:
                count = parse_count(text, what=f"snapshots.retention.{key}")
                _set_in_table(bf, ("snapshots", "retention"), key, count, create=True)

            self._edit(f"snapshots.retention.{key}", edit)

        return changed


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _set_service_list(bf: Boltfile, service: str, key: str, values: list[str]) -> None:
    """Set a list key of a service, removing the key for an empty list."""
    if values:
        bf.set_service_key(service, key, values)
    elif key in bf.service(service).to_dict():
        bf.unset_service_key(service, key)
