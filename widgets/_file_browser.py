"""``FileBrowser``: a container's filesystem through the Engine's archive API.

Browse directories (a breadcrumb, a listing with directories first, Open and Up),
download a file as a link the browser saves, upload a file into the directory shown.
Nothing runs in the container: it works for images without a shell or ``ls``.

Downloads travel inside the notebook's own messages as a ``data:`` URI, so they stop
at :attr:`FileBrowser.max_download_bytes` (20 MiB unless set): larger files should
be copied with the engine's CLI (``podman cp``) or ``Container.read_file`` in code.
A file's size is asked of the engine first (``Container.stat_path``), so one too big
is refused before any of it travels; symlinks are followed to where they resolve.
"""

from __future__ import annotations

import base64
import html
import posixpath
import stat
from collections.abc import Hashable, Sequence
from typing import Any

import ipywidgets
from traitlets import Int, TraitError, Unicode, validate

from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.engine._archive import FileEntry

from ._base import ContainerWidget, close_widget_tree
from ._controls import RowList
from ._format import format_size, format_time

__all__ = ["DEFAULT_MAX_DOWNLOAD", "FileBrowser", "data_uri_link", "mode_text"]

#: The download limit unless set: a data URI of 20 MiB is ~27 MiB of widget message.
DEFAULT_MAX_DOWNLOAD = 20 * 1024 * 1024

_TYPE_BITS = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "file": stat.S_IFREG}


def mode_text(entry: FileEntry) -> str:
    """Permissions as ``ls -l`` shows them.

    Examples
    --------
    >>> mode_text(FileEntry("etc", "/etc", 0, 0o755, "dir", 0.0))
    'drwxr-xr-x'
    """
    return stat.filemode(_TYPE_BITS.get(entry.kind, 0) | entry.mode)


def _name_text(entry: FileEntry) -> str:
    if entry.is_dir:
        return f"{entry.name}/"
    if entry.kind == "symlink":
        return f"{entry.name} -> {entry.link_target}"
    return entry.name


def data_uri_link(name: str, data: bytes) -> str:
    """An ``<a download>`` link that saves ``data`` as ``name`` when clicked.

    Examples
    --------
    >>> 'download="a.txt" href="data:application/octet-stream;base64,aGk="' in \\
    ...     data_uri_link("a.txt", b"hi")
    True
    """
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<a class="gp-download" download="{html.escape(name)}" '
            f'href="data:application/octet-stream;base64,{encoded}">'
            f"Download {html.escape(name)} ({format_size(len(data))})</a>")


def _normalize(path: str) -> str:
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("/") else path


async def _resolved(container: Container, entry: FileEntry) -> FileEntry:
    """What ``entry`` is, through a symlink: the engine's stat of the link names the
    absolute path it resolves to, so one more stat describes the target."""
    if entry.kind != "symlink" or not entry.link_target:
        return entry
    target = _normalize(posixpath.join(posixpath.dirname(entry.path), entry.link_target))
    return await container.stat_path(target)


class FileBrowser(ContainerWidget):
    """Browse a container's files; download one, upload one.

    Parameters
    ----------
    env
        The environment (``ghostpanel_kernel.connect(...)``).
    container
        The container's name or id, or a :class:`~ghostpanel_kernel.engine.Container`.
    path
        The directory to show first.
    max_download_bytes
        The largest file Download hands to the browser.

    Examples
    --------
    >>> browser = FileBrowser(env, "web", path="/etc")                   # doctest: +SKIP
    >>> await browser.navigate("nginx")  # relative to the one shown      # doctest: +SKIP
    >>> await browser.upload("index.html", b"<h1>hi</h1>")               # doctest: +SKIP
    """

    path = Unicode("/", read_only=True, help="The directory shown.").tag(sync=True)
    max_download_bytes = Int(DEFAULT_MAX_DOWNLOAD,
                             help="The largest file Download hands to the browser, in bytes.")

    def __init__(self, env: Environment, container: str | Container, path: str = "/", *,
                 max_download_bytes: int = DEFAULT_MAX_DOWNLOAD, **kwargs: Any) -> None:
        self.entries: list[FileEntry] = []
        self.breadcrumb = ipywidgets.HBox(layout=ipywidgets.Layout(flex_flow="row wrap"))
        self.path_field = ipywidgets.Text(placeholder="/path/to/dir   (Enter opens it)",
                                          layout=ipywidgets.Layout(flex="1 1 auto"))
        self.listing = RowList(["Name", "Kind", "Size", "Mode", "Modified"],
                               empty="This directory is empty.", rows=16)
        self.open_button = ipywidgets.Button(description="Open", icon="folder-open",
                                             tooltip="Open the directory, or download the "
                                             "file, selected")
        self.up_button = ipywidgets.Button(description="Up", icon="level-up")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.download_button = ipywidgets.Button(description="Download", icon="download")
        self.uploader = ipywidgets.FileUpload(description="Upload", multiple=False)
        self.download_view = ipywidgets.HTML()
        super().__init__(env, container, **kwargs)
        self.add_class("gp-file-browser")
        self.max_download_bytes = max_download_bytes
        self.open_button.on_click(lambda _: self._start("Open", self._open_selected))
        self.up_button.on_click(lambda _: self._start("Up", self.up))
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.download_button.on_click(lambda _: self._start("Download", self._download_selected))
        self.path_field.on_msg(self._path_message)
        self.uploader.observe(self._files_chosen, "value")
        self.children = [
            self.breadcrumb,
            ipywidgets.HBox([self.path_field, self.open_button, self.up_button,
                             self.refresh_button, self.download_button, self.uploader]),
            self.status, self.listing, self.download_view,
        ]
        self._show_breadcrumb(_normalize(path) if path.startswith("/") else "/")
        self._start("Open", lambda: self.navigate(path))

    @validate("max_download_bytes")
    def _valid_limit(self, proposal: dict[str, Any]) -> int:
        limit = int(proposal["value"])
        if limit < 1:
            raise TraitError(f"max_download_bytes must be 1 or more, not {limit}")
        return limit

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.open_button, self.up_button, self.refresh_button, self.download_button,
                self.uploader)

    @property
    def selected(self) -> FileEntry | None:
        """The entry selected in the listing."""
        return self._entry(self.listing.value)

    def _entry(self, name: Hashable | None) -> FileEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    # -- navigation
    async def navigate(self, path: str) -> list[FileEntry] | None:
        """Show the directory ``path`` (absolute, or relative to the one shown).

        ``None`` when it cannot be listed: the error is shown and the listing stays.
        """
        target = _normalize(posixpath.join(self.path, path.strip() or "."))
        with self.status.reporting(f"Open {target}"), self._forgetting_on_not_found():
            container = await self.container()
            try:
                entries = await container.list_files(target)
            except NotADirectoryError:
                # A symlink to a directory (/lib -> usr/lib on Debian images) opens it:
                # Podman's archive follows the link, Docker's sends the link itself.
                resolved = await _resolved(container, await container.stat_path(target))
                if not resolved.is_dir:
                    raise
                target = resolved.path
                entries = await container.list_files(target)
            self.entries = entries
            self.set_trait("path", target)
            self._show_breadcrumb(target)
            self.path_field.value = target
            self.download_view.value = ""
            self.listing.show([(e.name, [_name_text(e), e.kind, "" if e.is_dir else
                                         format_size(e.size), mode_text(e), format_time(e.mtime)])
                               for e in entries])
            self.status.clear()
            return entries
        return None

    async def up(self) -> list[FileEntry] | None:
        """Show the parent directory."""
        if self.path == "/":
            self.status.info("Already at /.")
            return self.entries
        return await self.navigate(posixpath.dirname(self.path))

    async def refresh(self) -> list[FileEntry] | None:
        """List the directory shown again."""
        return await self.navigate(self.path)

    def _show_breadcrumb(self, path: str) -> None:
        parts = [part for part in path.split("/") if part]
        targets = ["/"] + ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]
        labels = ["/", *parts]
        buttons = []
        for label, target in zip(labels, targets, strict=True):
            button = ipywidgets.Button(description=label, tooltip=target,
                                       layout=ipywidgets.Layout(width="auto"))
            button.on_click(lambda _, t=target: self._start("Open", lambda: self.navigate(t)))
            buttons.append(button)
        old = list(self.breadcrumb.children)
        self.breadcrumb.children = buttons
        for button in old:
            close_widget_tree(button)

    def _path_message(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._start("Open", lambda: self.navigate(self.path_field.value))

    async def _open_selected(self) -> None:
        entry = self.selected
        if entry is None:
            self.status.warning("Select a file or directory first.")
        elif entry.is_dir:
            await self.navigate(entry.path)
        elif entry.kind == "symlink":
            # To a directory: open it; to a file: download it (the listing's link target
            # is the link's text, maybe relative or chained: the engine resolves it).
            resolved: FileEntry | None = None  # stays None when the stat failed (shown)
            with self.status.reporting(f"Open {entry.path}"), self._forgetting_on_not_found():
                container = await self.container()
                resolved = await _resolved(container, await container.stat_path(entry.path))
            if resolved is None:
                return
            if resolved.is_dir:
                await self.navigate(resolved.path)
            else:
                await self.download_link(entry.path)
        else:
            await self.download_link(entry.name)

    # -- download and upload
    async def _download_selected(self) -> None:
        entry = self.selected
        if entry is None:
            self.status.warning("Select a file to download first.")
            return
        await self.download_link(entry.name)

    def _too_big(self, name: str, size: int) -> str:
        return (f"{name} is {format_size(size)}: downloads from this browser stop at "
                f"{format_size(self.max_download_bytes)}; copy it with `podman cp "
                f"{self.container_name}:{posixpath.join(self.path, name)} .` or "
                "Container.read_file() instead")

    async def download_link(self, name: str) -> str | None:
        """Fetch the file ``name`` (in the directory shown, or an absolute path) and show
        a link that saves it; the link's HTML, or ``None`` with the error shown.

        Files over :attr:`max_download_bytes` are refused with a message that says how
        to copy them instead.
        """
        path = _normalize(posixpath.join(self.path, name))
        base = posixpath.basename(path)
        with self.status.reporting(f"Download {path}"), self._forgetting_on_not_found():
            self.download_view.value = ""
            container = await self.container()
            # Asked of the engine, not the listing, which may be stale or not hold path:
            # a file too big is refused before any of it travels.
            entry = await _resolved(container, await container.stat_path(path))
            if entry.is_dir:
                raise IsADirectoryError(f"{path} is a directory: open it, or download its "
                                        "files one by one")
            if entry.size > self.max_download_bytes:
                raise ValueError(self._too_big(base, entry.size))
            data = await container.read_file(entry.path)
            if len(data) > self.max_download_bytes:
                raise ValueError(self._too_big(base, len(data)))
            link = data_uri_link(base, data)
            self.download_view.value = link
            self.status.success(f"{path} ({format_size(len(data))}) is ready: click the link "
                                "to save it.")
            return link
        return None

    def _files_chosen(self, change: dict[str, Any]) -> None:
        files = list(change["new"] or ())
        if not files:
            return

        async def upload_all() -> None:
            try:
                for item in files:
                    if not await self.upload(str(item["name"]), bytes(item["content"])):
                        break
            finally:
                self.uploader.value = ()  # ready for the next file, even the same one

        self._start("Upload", upload_all)

    async def upload(self, name: str, data: bytes) -> bool:
        """Write ``data`` as the file ``name`` in the directory shown, then list it again."""
        target = posixpath.join(self.path, name)
        with self.status.reporting(f"Upload {name}"), self._forgetting_on_not_found():
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"{name!r} is not a file name")
            container = await self.container()
            await container.write_file(target, data)
            if await self.navigate(self.path) is not None:  # else its error stays shown
                self.listing.value = name
                self.status.success(f"Uploaded {name} ({format_size(len(data))}) to "
                                    f"{self.path}.")
            return True
        return False
