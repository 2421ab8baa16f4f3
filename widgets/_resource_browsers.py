"""``ImageBrowser``, ``VolumeBrowser``, ``NetworkBrowser``: an environment's images,
volumes and networks, listed, created, pulled, removed and pruned from a notebook.

This module also holds what every engine view of GhostPanel shares (the container
views of ``_container_inspector``, ``_exec_console`` and ``_file_browser`` import it):

- :class:`EngineWidget`, the base: the environment, the status line every error and
  success goes to, and the actions buttons start, run one at a time as tasks on the
  kernel's event loop;
- :class:`RowList`, a table whose rows can be selected (a monospace header over an
  ``ipywidgets.Select``: plain ipywidgets, so it renders offline in Voila and Lab);
- :class:`Confirmation`, the "Remove X? Confirm / Cancel" bar of destructive actions;
- :class:`PullProgress`, which folds an image pull's per-layer events into one bar.

Each public ``async`` method of a browser is what its button runs: it reports its
errors in the status line (it does not raise them) and returns ``None`` or ``False``
when it failed, so a notebook can ``await browser.pull("alpine:3.20")`` just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ipywidgets
from traitlets import Bool, Float, TraitError, Unicode, validate

from ghostpanel_kernel.engine import (
    Container,
    Environment,
    Image,
    Network,
    NotFound,
    PullEvent,
    Volume,
)
from ghostpanel_kernel.engine._times import engine_time

from ._status import StatusLine

__all__ = [
    "Confirmation",
    "ContainerWidget",
    "EngineWidget",
    "ImageBrowser",
    "NetworkBrowser",
    "PullProgress",
    "RowList",
    "VolumeBrowser",
    "close_widget_tree",
    "format_size",
    "format_time",
    "html_table",
    "parse_labels",
]


# -- formatting ----------------------------------------------------------------------


def format_size(size: int | float | None) -> str:
    """Bytes as ``docker`` shows them, in binary units.

    Examples
    --------
    >>> format_size(0), format_size(1536), format_size(20 * 1024 ** 2)
    ('0 B', '1.5 KiB', '20.0 MiB')
    """
    if size is None or size < 0:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(value: int | float | str | None) -> str:
    """An engine timestamp (seconds since the epoch, or RFC 3339 text) as UTC minutes.

    Go's zero time (``0001-01-01T00:00:00Z``), 0, and text that is not a time read as
    "never": ``""``.

    Examples
    --------
    >>> format_time(1700000000), format_time("2024-05-01T12:30:59.123456789Z")
    ('2023-11-14 22:13 UTC', '2024-05-01 12:30 UTC')
    >>> format_time("0001-01-01T00:00:00Z")
    ''
    """
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, tz=UTC) if value else None
    else:
        moment = engine_time(value)
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_labels(text: str) -> dict[str, str]:
    """``"team=web, tier=db"`` as a dict; commas or newlines separate labels.

    Raises
    ------
    ValueError
        An item has no ``=``, or an empty key.

    Examples
    --------
    >>> parse_labels("team=web, tier = db")
    {'team': 'web', 'tier': 'db'}
    """
    labels: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label {item.strip()!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


_TABLE = 'style="border-collapse: collapse; margin: 2px 0"'
_CELL = 'style="text-align: left; padding: 2px 14px 2px 0; vertical-align: top"'


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
               empty: str = "None.", css_class: str = "") -> str:
    """Rows of plain text (escaped here) as an HTML table; ``empty`` when there are none.

    Examples
    --------
    >>> "<code>a&lt;b</code>" in html_table(["Key"], [["a<b"]])
    True
    """
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}><code>{html.escape(str(cell))}</code></td>"
                         for cell in row) + "</tr>" for row in rows)
    cls = f' class="{css_class}"' if css_class else ""
    if not body:
        return f"<div{cls}><i>{html.escape(empty)}</i></div>"
    head = "".join(f"<th {_CELL}>{html.escape(name)}</th>" for name in headers)
    return f"<table {_TABLE}{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# A Select's options collapse spaces; padding with no-break spaces keeps the columns.
_NBSP = "\u00a0"
_MAX_CELL = 48


def _fit(text: str, width: int) -> str:
    text = text if len(text) <= width else text[:width - 1] + "\u2026"
    return text + _NBSP * (width - len(text))


def close_widget_tree(widget: ipywidgets.Widget) -> None:
    """Close ``widget``, every widget below it, and their layout and style models.

    ``Widget.close()`` closes one comm: a closed box would leave its children (and
    every ``Layout``) open in the kernel for as long as the kernel lives.
    """
    seen: set[int] = set()
    pending: list[Any] = [widget]
    while pending:
        current = pending.pop()
        if not isinstance(current, ipywidgets.Widget) or id(current) in seen:
            continue
        seen.add(id(current))
        pending.extend(getattr(current, "children", ()) or ())
        for name in ("layout", "style"):
            pending.append(getattr(current, name, None))
        current.close()


# -- shared building blocks ----------------------------------------------------------


class RowList(ipywidgets.VBox):
    """A table whose rows can be selected: a header over a ``Select`` of padded rows.

    Parameters
    ----------
    columns
        The column names.
    empty
        What to say when there are no rows.
    rows
        How many rows show at once.

    Examples
    --------
    >>> table = RowList(["Name", "Size"])
    >>> table.show([("a", ["a.txt", "3 B"]), ("b", ["b.txt", "1.0 KiB"])])
    >>> table.value = "b"
    >>> table.rows
    [['a.txt', '3 B'], ['b.txt', '1.0 KiB']]
    """

    _STYLE = "<style>.gp-rows select { font-family: monospace; }</style>"

    def __init__(self, columns: Sequence[str], *, empty: str = "Nothing here.",
                 rows: int = 12, **kwargs: Any) -> None:
        self.columns = list(columns)
        self.empty = empty
        self._rows: list[list[str]] = []
        self._keys: list[Hashable] = []
        self._max_rows = rows
        self.header = ipywidgets.HTML()
        self.select = ipywidgets.Select(options=[], rows=3,
                                        layout=ipywidgets.Layout(width="100%"))
        super().__init__([self.header, self.select], **kwargs)
        self.add_class("gp-rows")
        self.show([])

    @property
    def value(self) -> Hashable | None:
        """The key of the selected row, ``None`` when none is."""
        key: Hashable | None = self.select.value
        return key

    @value.setter
    def value(self, key: Hashable | None) -> None:
        self.select.value = key

    @property
    def row_keys(self) -> list[Hashable]:
        """The rows' keys, in order."""
        return list(self._keys)

    @property
    def rows(self) -> list[list[str]]:
        """The rows' cells as plain text, in order."""
        return [list(row) for row in self._rows]

    def show(self, rows: Sequence[tuple[Hashable, Sequence[str]]]) -> None:
        """Show ``(key, cells)`` rows; the selection stays on its key if it is still there."""
        self._keys = [key for key, _ in rows]
        self._rows = [[str(cell) for cell in cells] for _, cells in rows]
        widths = [min(_MAX_CELL, max([len(name), *(len(r[i]) for r in self._rows)]))
                  for i, name in enumerate(self.columns)]
        header = "  ".join(name.ljust(width) for name, width in zip(self.columns, widths,
                                                                      strict=True))
        note = "" if rows else f"<i>{html.escape(self.empty)}</i>"
        self.header.value = (f"{self._STYLE}<pre style=\"margin: 0; font-weight: bold\">"
                             f"{html.escape(header.rstrip())}</pre>{note}")
        options = [(_NBSP * 2).join(_fit(cell, width) for cell, width in zip(
            row, widths, strict=True)).rstrip(_NBSP) for row in self._rows]
        # Labels must be unique for the Select; rows that render alike get a mark.
        seen: dict[str, int] = {}
        labelled = []
        for label, key in zip(options, self._keys, strict=True):
            seen[label] = seen.get(label, 0) + 1
            labelled.append((label if seen[label] == 1 else f"{label} ({seen[label]})", key))
        previous = self.select.value
        self.select.options = labelled
        self.select.rows = max(3, min(self._max_rows, len(labelled)))
        self.select.value = previous if previous in self._keys else None


class Confirmation(ipywidgets.HBox):
    """The question a destructive action asks first: "Remove X?" Confirm / Cancel.

    Hidden until :meth:`ask`; Confirm runs the action given there, Cancel forgets it.

    Examples
    --------
    >>> bar = Confirmation()
    >>> done = []
    >>> bar.ask("Remove volume data?", lambda: done.append(1))
    >>> bar.question
    'Remove volume data?'
    >>> bar.confirm_button.click(); done, bar.question
    ([1], '')
    """

    def __init__(self, **kwargs: Any) -> None:
        self.label = ipywidgets.HTML()
        self.confirm_button = ipywidgets.Button(description="Confirm", button_style="danger",
                                                icon="check")
        self.cancel_button = ipywidgets.Button(description="Cancel", icon="times")
        super().__init__([self.label, self.confirm_button, self.cancel_button], **kwargs)
        self.add_class("gp-confirmation")
        self._question = ""
        self._action: Callable[[], object] | None = None
        self.confirm_button.on_click(lambda _: self._confirmed())
        self.cancel_button.on_click(lambda _: self.dismiss())
        self.layout.display = "none"

    @property
    def question(self) -> str:
        """The question shown, ``""`` when none is."""
        return self._question

    def ask(self, question: str, action: Callable[[], object]) -> None:
        """Show ``question``; Confirm will call ``action``."""
        self._question, self._action = question, action
        self.label.value = (f'<b style="color: #b00020">{html.escape(question)}</b>'
                            "&nbsp;")
        self.layout.display = "flex"

    def dismiss(self) -> None:
        """Hide the question without acting."""
        self._question, self._action = "", None
        self.label.value = ""
        self.layout.display = "none"

    def _confirmed(self) -> None:
        action = self._action
        self.dismiss()
        if action is not None:
            action()


class EngineWidget(ipywidgets.VBox):
    """Base of GhostPanel's engine views: one environment, one status line, and the
    actions its buttons start, one at a time, as tasks on the kernel's event loop.

    Parameters
    ----------
    env
        The environment (``ghostpanel_kernel.connect(...)``; the async one, not the
        ``connect_sync`` facade: widgets run in the kernel's event loop).
    """

    busy = Bool(False, read_only=True,
                help="Whether an action started from the widget is running.").tag(sync=True)
    action = Unicode("", read_only=True,
                     help="The action running now, or that ran last.").tag(sync=True)

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        if not isinstance(env, Environment):
            raise TypeError(
                f"{type(self).__name__} needs an Environment from ghostpanel_kernel.connect(),"
                f" not {type(env).__name__} (the connect_sync facade cannot run in a "
                "kernel's event loop)")
        self._env = env
        self.status = StatusLine()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        super().__init__(**kwargs)

    @property
    def env(self) -> Environment:
        """The environment shown."""
        return self._env

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The action a button started last (``await`` it to wait for it to end)."""
        return self._task

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        """The widgets to disable while an action runs."""
        return ()

    def _set_busy(self, busy: bool, action: str = "") -> None:
        self.set_trait("busy", busy)
        if action:
            self.set_trait("action", action)
        if self._closed:
            return
        for control in self._controls():
            control.disabled = busy

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start(self, action: str, work: Callable[[], Awaitable[Any]]) -> asyncio.Task[None] | None:
        """Run ``work()`` as a task, its errors in the status line; one at a time."""
        if self._closed:
            return None
        if self.busy:
            self.status.warning(f"{action}: wait until {self.action.lower()} ends.")
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.status.error(f"{action} needs a running asyncio event loop; a Jupyter "
                              "kernel has one, a plain script does not.")
            return None

        async def run() -> None:
            try:
                with self.status.reporting(action):  # a net: the actions report themselves
                    await work()
            finally:
                self._set_busy(False)

        self._set_busy(True, action)  # now, so that a second click cannot start a second run
        self._task = self._spawn(run(), f"ghostpanel {type(self).__name__}: {action}")
        return self._task

    def close(self) -> None:
        """Cancel what the widget runs and close it with every widget inside it."""
        # getattr: Widget.__del__ also closes a widget whose __init__ raised early.
        if getattr(self, "_closed", True):  # close_widget_tree(self) comes back here
            super().close()
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        close_widget_tree(self)


class ContainerWidget(EngineWidget):
    """Base of the views of one container: the environment, then the container.

    Parameters
    ----------
    env
        The environment, as :class:`EngineWidget` takes it.
    container
        The container's name or id, or a :class:`~ghostpanel_kernel.engine.Container`.
    """

    container_name = Unicode("", read_only=True,
                             help="The container shown, its name or id as given.").tag(sync=True)

    def __init__(self, env: Environment, container: str | Container, **kwargs: Any) -> None:
        self._container: Container | None = None
        if isinstance(container, Container):
            self._container = container
            ident = container.name or container.id
        elif isinstance(container, str) and container.strip():
            ident = container.strip()
        else:
            raise ValueError(f"{type(self).__name__} needs a container name, id or Container, "
                             f"not {container!r}")
        super().__init__(env, **kwargs)
        self.set_trait("container_name", ident)

    async def container(self) -> Container:
        """The container, looked up once (again after the engine no longer knew it)."""
        if self._container is None:
            self._container = await self.env.containers.get(self.container_name)
        return self._container

    @contextlib.contextmanager
    def _forgetting_on_not_found(self) -> Iterator[None]:
        # Removed, or re-created under the same name: look it up afresh next time.
        try:
            yield
        except NotFound:
            self._container = None
            raise


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- images --------------------------------------------------------------------------


_DONE = frozenset({"download complete", "pull complete", "already exists",
                   "verifying checksum"})
# Statuses about one layer. Others carry an id too, but not a layer's ("Pulling from
# library/alpine" has the tag as its id; Podman ends with the image id).
_LAYER_STATUSES = ("pulling fs layer", "waiting", "downloading", "extracting", *_DONE)


@dataclass
class PullProgress:
    """An image pull's progress: the per-layer events summed into one bar.

    The bar counts downloaded bytes: ``current`` is what the layers have received,
    ``total`` what they will (of the layers whose size the engine said). A layer
    reported complete counts whole; extraction, which starts again from 0 for each
    layer, does not move the bar back.

    Examples
    --------
    >>> progress = PullProgress()
    >>> progress.update(PullEvent("Downloading", "a1", current=50, total=200))
    >>> progress.update(PullEvent("Downloading", "b2", current=0, total=100))
    >>> progress.update(PullEvent("Download complete", "a1"))
    >>> progress.current, progress.total, progress.text
    (200, 300, 'Download complete: 200 B of 300 B, 1 of 2 layers')
    """

    layers: dict[str, list[int]] = field(default_factory=dict)  # layer -> [current, total]
    done: set[str] = field(default_factory=set)
    status: str = ""

    def update(self, event: PullEvent) -> None:
        """Fold one engine event in."""
        self.status = event.status or self.status
        status = event.status.lower()
        if not event.layer or not status.startswith(_LAYER_STATUSES):
            return
        if event.layer not in self.layers and status in _DONE and status != "already exists":
            # Every layer is announced before it completes ("Already exists" aside);
            # Podman's last "Download complete" names the pulled image, not a layer.
            return
        current, total = self.layers.setdefault(event.layer, [0, 0])
        if event.total is not None and event.total > 0 and not status.startswith("extracting"):
            total = max(total, int(event.total))
            if event.current is not None:
                current = max(current, min(int(event.current), total))
        if status in _DONE:
            self.done.add(event.layer)
            current = total
        self.layers[event.layer] = [current, total]

    @property
    def current(self) -> int:
        """Bytes received, all layers together."""
        return sum(current for current, _ in self.layers.values())

    @property
    def total(self) -> int:
        """Bytes expected, of the layers whose size is known."""
        return sum(total for _, total in self.layers.values())

    @property
    def text(self) -> str:
        """One line for the operator: status, bytes, layers."""
        if not self.layers:
            return self.status
        size = f"{format_size(self.current)} of {format_size(self.total)}" if self.total \
            else "size unknown"
        return (f"{self.status}: {size}, {len(self.done)} of "
                f"{_plural(len(self.layers), 'layer')}")


class ImageBrowser(EngineWidget):
    """The images of an environment: one row per tag; pull with a progress bar,
    remove the selected tag (after a confirmation), prune dangling images.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> browser = ImageBrowser(connect("unix:///run/podman/podman.sock"))  # doctest: +SKIP
    >>> browser                                                           # doctest: +SKIP
    >>> await browser.pull("registry.local:5000/app:1.4")                 # doctest: +SKIP
    """

    progress_interval = Float(0.1, help="Seconds between two updates of the pull's bar "
                              "(each is a message to the browser; pulls report often).")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.images: list[Image] = []
        self.listing = RowList(["Tag", "Id", "Size", "Created"], empty="No images.")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash",
                                               tooltip="Remove the selected tag (image)")
        self.prune_button = ipywidgets.Button(description="Prune", icon="eraser",
                                              tooltip="Remove dangling (untagged) images")
        self.reference = ipywidgets.Text(placeholder="registry.local:5000/app:1.4",
                                         description="Image",
                                         layout=ipywidgets.Layout(width="360px"))
        self.pull_button = ipywidgets.Button(description="Pull", icon="download",
                                             button_style="primary")
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1,
                                               layout=ipywidgets.Layout(width="240px"))
        self.progress_text = ipywidgets.Label()
        self.confirmation = Confirmation()
        super().__init__(env, **kwargs)
        self.add_class("gp-image-browser")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.pull_button.on_click(
            lambda _: self._start("Pull", lambda: self.pull(self.reference.value)))
        self.reference.on_msg(self._reference_message)
        self.remove_button.on_click(lambda _: self._ask_remove())
        self.prune_button.on_click(lambda _: self.confirmation.ask(
            "Prune: remove every dangling (untagged) image?",
            lambda: self._start("Prune", self.prune)))
        self.children = [
            ipywidgets.HBox([self.refresh_button, self.remove_button, self.prune_button]),
            self.confirmation, self.status, self.listing,
            ipywidgets.HBox([self.reference, self.pull_button]),
            ipywidgets.HBox([self.progress, self.progress_text]),
        ]
        self._start("Refresh", self.refresh)

    @validate("progress_interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if seconds < 0:
            raise TraitError(f"progress_interval must be 0 seconds or more, not {seconds}")
        return seconds

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.remove_button, self.prune_button, self.pull_button)

    def _reference_message(self, widget: Any, content: Mapping[str, Any],
                           buffers: Any) -> None:
        if content.get("event") == "submit":  # Enter in the field
            self._start("Pull", lambda: self.pull(self.reference.value))

    async def refresh(self) -> list[Image] | None:
        """List the images again; ``None`` (and the error shown) if the engine failed."""
        with self.status.reporting("Listing images"):
            self.images = await self.env.images.list()
            rows: list[tuple[Hashable, list[str]]] = []
            for image in self.images:
                created = format_time(image.attrs.get("Created"))
                for tag in image.tags or ["<none>"]:
                    key = tag if tag != "<none>" else image.id
                    rows.append((key, [tag, image.short_id, format_size(image.size), created]))
            rows.sort(key=lambda row: (row[1][0] == "<none>", row[1][0], row[1][1]))
            self.listing.show(rows)
            self.status.clear()  # what it said is no longer current
            return self.images
        return None

    async def pull(self, reference: str) -> Image | None:
        """Pull ``reference``, the bar following the layers; then list the images again.

        On failure the error is shown and the bar goes back to empty.
        """
        reference = reference.strip()
        progress = PullProgress()
        self._show_progress(progress, style="info")
        self.status.info(f"Pulling {reference}...")
        with self.status.reporting(f"Pull {reference}".rstrip()):
            if not reference:
                raise ValueError("type an image reference first, e.g. alpine:3.20")
            shown_at = time.monotonic()
            try:
                async for event in self.env.images.pull(reference):
                    progress.update(event)
                    if time.monotonic() - shown_at >= self.progress_interval:
                        self._show_progress(progress, style="info")
                        shown_at = time.monotonic()
                image = await self.env.images.get(reference)
            except BaseException:
                self._reset_progress()
                raise
            with self.progress.hold_trait_notifications():
                self.progress.max = max(progress.total, 1)
                self.progress.value = self.progress.max
                self.progress.bar_style = "success"
            self.progress_text.value = f"Pulled {reference}"
            if await self.refresh() is not None:  # else its error stays shown
                self.status.success(f"Pulled {reference} ({image.short_id}, "
                                f"{format_size(image.size)}).")
            return image
        return None

    def _show_progress(self, progress: PullProgress, *, style: str) -> None:
        with self.progress.hold_trait_notifications():
            self.progress.max = max(progress.total, 1)
            self.progress.value = min(progress.current, self.progress.max)
            self.progress.bar_style = style
        self.progress_text.value = progress.text

    def _reset_progress(self) -> None:
        with self.progress.hold_trait_notifications():
            self.progress.value = 0
            self.progress.max = 1
            self.progress.bar_style = ""
        self.progress_text.value = ""

    def _ask_remove(self) -> None:
        reference = self.listing.value
        if reference is None:
            self.status.warning("Select an image to remove first.")
            return
        self.confirmation.ask(f"Remove image {reference}?",
                              lambda: self._start("Remove", lambda: self.remove(str(reference))))

    async def remove(self, reference: str | None = None, *, force: bool = False) -> bool:
        """Remove the tag (or untagged image id) ``reference``, default the selected one."""
        reference = reference or (str(self.listing.value) if self.listing.value else "")
        with self.status.reporting(f"Remove {reference or 'image'}"):
            if not reference:
                raise ValueError("select an image to remove first")
            await self.env.images.remove(reference, force=force)
            if await self.refresh() is not None:
                self.status.success(f"Removed {reference}.")
            return True
        return False

    async def prune(self) -> dict[str, Any] | None:
        """Remove dangling images; the engine's report (``ImagesDeleted``...)."""
        with self.status.reporting("Prune images"):
            result = await self.env.images.prune()
            deleted = result.get("ImagesDeleted") or []
            if await self.refresh() is not None:
                self.status.success(f"Pruned {_plural(len(deleted), 'image')}, reclaimed "
                                f"{format_size(result.get('SpaceReclaimed') or 0)}.")
            return result
        return None


# -- volumes -------------------------------------------------------------------------


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
            labels = parse_labels(self.labels_field.value)
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
                self.status.success(f"Pruned {_plural(len(deleted), 'volume')}, reclaimed "
                                f"{format_size(result.get('SpaceReclaimed') or 0)}.")
            return result
        return None


# -- networks ------------------------------------------------------------------------


class NetworkBrowser(EngineWidget):
    """The networks of an environment: create (name, driver, subnet), remove (after a
    confirmation), connect or disconnect a container picked from the environment's.

    Examples
    --------
    >>> browser = NetworkBrowser(env)                                    # doctest: +SKIP
    >>> await browser.create("backend", subnet="10.89.10.0/24")           # doctest: +SKIP
    >>> await browser.connect("backend", "web")                           # doctest: +SKIP
    """

    DRIVERS = ("bridge", "macvlan", "ipvlan")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.networks: list[Network] = []
        self.containers: list[Container] = []
        self.listing = RowList(["Name", "Id", "Driver", "Subnets", "Containers"],
                               empty="No networks.")
        self.details = ipywidgets.HTML()
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash")
        self.name_field = ipywidgets.Text(description="Name", placeholder="backend")
        self.driver_field = ipywidgets.Dropdown(options=self.DRIVERS, value="bridge",
                                                description="Driver")
        self.subnet_field = ipywidgets.Text(description="Subnet", placeholder="10.89.10.0/24")
        self.create_button = ipywidgets.Button(description="Create", icon="plus",
                                               button_style="primary")
        self.container_field = ipywidgets.Dropdown(options=[], description="Container")
        self.connect_button = ipywidgets.Button(description="Connect", icon="link")
        self.disconnect_button = ipywidgets.Button(description="Disconnect", icon="unlink")
        self.confirmation = Confirmation()
        super().__init__(env, **kwargs)
        self.add_class("gp-network-browser")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.create_button.on_click(lambda _: self._start("Create", self._create_clicked))
        self.remove_button.on_click(lambda _: self._ask_remove())
        self.connect_button.on_click(lambda _: self._start("Connect", self.connect))
        self.disconnect_button.on_click(lambda _: self._start("Disconnect", self.disconnect))
        self.listing.select.observe(lambda _: self._show_details(), "value")
        self.children = [
            ipywidgets.HBox([self.refresh_button, self.remove_button]),
            self.confirmation, self.status, self.listing, self.details,
            ipywidgets.HBox([self.container_field, self.connect_button,
                             self.disconnect_button]),
            ipywidgets.HBox([self.name_field, self.driver_field, self.subnet_field,
                             self.create_button]),
        ]
        self._start("Refresh", self.refresh)

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.remove_button, self.create_button,
                self.connect_button, self.disconnect_button)

    @property
    def selected(self) -> Network | None:
        """The selected network, as last listed."""
        return next((n for n in self.networks if n.id == self.listing.value), None)

    async def refresh(self) -> list[Network] | None:
        """List the networks and the environment's containers again."""
        with self.status.reporting("Listing networks"):
            networks = await self.env.networks.list()
            containers = await self.env.containers.list(all=True)
            self.networks = sorted(networks, key=lambda n: n.name)
            self.containers = sorted(containers, key=lambda c: c.name)
            self.listing.show([(n.id, [n.name, n.short_id, n.driver, ", ".join(n.subnets),
                                       str(len(n.containers))]) for n in self.networks])
            previous = self.container_field.value
            names = [c.name for c in self.containers]
            # Not under hold_trait_notifications: a Dropdown validates the value held
            # against the options it had before.
            self.container_field.options = names
            self.container_field.value = previous if previous in names else (
                names[0] if names else None)
            self._show_details()
            self.status.clear()  # what it said is no longer current
            return self.networks
        return None

    def _show_details(self) -> None:
        network = self.selected
        if network is None:
            self.details.value = ""
            return
        names = sorted(str(entry.get("Name") or ident[:12])
                       for ident, entry in network.containers.items())
        self.details.value = (
            f"<b>{html.escape(network.name)}</b> ({html.escape(network.driver)}): "
            + (html.escape(", ".join(names)) if names else "<i>no containers attached</i>"))

    def _select(self, network: str) -> None:
        match = next((n for n in self.networks if network in (n.name, n.id)), None)
        if match is not None:
            self.listing.value = match.id

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

    def _selected_name(self) -> str:
        network = self.selected
        return network.name if network is not None else ""

    def _ask_remove(self) -> None:
        name = self._selected_name()
        if not name:
            self.status.warning("Select a network to remove first.")
            return
        self.confirmation.ask(f"Remove network {name}?",
                              lambda: self._start("Remove", lambda: self.remove(name)))

    async def remove(self, name: str | None = None) -> bool:
        """Remove the network ``name`` (default: the selected one)."""
        name = name or self._selected_name()
        with self.status.reporting(f"Remove network {name}".rstrip()):
            if not name:
                raise ValueError("select a network to remove first")
            await (await self.env.networks.get(name)).remove()
            if await self.refresh() is not None:
                self.status.success(f"Removed network {name}.")
            return True
        return False

    def _pair(self, network: str | None, container: str | None) -> tuple[str, str]:
        network = network or self._selected_name()
        container = container or self.container_field.value or ""
        if not network:
            raise ValueError("select a network first")
        if not container:
            raise ValueError("pick a container first")
        return network, container

    async def connect(self, network: str | None = None, container: str | None = None) -> bool:
        """Attach ``container`` to ``network`` (default: the selected ones)."""
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
        """Detach ``container`` from ``network`` (default: the selected ones)."""
        with self.status.reporting("Disconnect"):
            network, container = self._pair(network, container)
            await (await self.env.networks.get(network)).disconnect(container)
            if await self.refresh() is not None:
                self._select(network)
                self.status.success(f"Disconnected {container} from {network}.")
            return True
        return False
