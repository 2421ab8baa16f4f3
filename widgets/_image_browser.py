"""``ImageBrowser``: an environment's images as a grid (one row per tag: size, id,
created, how many containers use it; a dangling filter), removed together after one
confirmation, pulled (with a progress bar) and pruned from a notebook.

The bar is the kernel's :class:`~ghostpanel_kernel.engine.PullProgress`, the same one the
CLI draws, re-exported here for code that imported it from this module.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets
from traitlets import Float, TraitError, validate

from ghostpanel_kernel.engine import Environment, Image, PullProgress

from ._format import format_size, format_time, plural
from ._resource_grid import ResourceGrid

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ImageBrowser", "PullProgress"]

#: The dangling filter's choices: (label, value).
SHOW = (("all images", "all"), ("dangling only", "dangling"), ("unused only", "unused"))


def _bare_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


class ImageBrowser(ResourceGrid):
    """The images of an environment, one row per tag (an untagged image is one
    ``<none>`` row): size, id, created, and how many containers (running or not) use
    it. Sort by any column, filter by text or to the dangling (untagged) or unused
    images, tick rows and remove them together (after a confirmation that names them;
    what the engine refuses, e.g. an image in use, is said and the rest still go).
    Pull with a progress bar; prune dangling images.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> browser = ImageBrowser(connect("unix:///run/podman/podman.sock"))  # doctest: +SKIP
    >>> browser                                                           # doctest: +SKIP
    >>> browser.show = "dangling"; browser.select(browser.row_keys)       # doctest: +SKIP
    >>> await browser.remove()                                            # doctest: +SKIP
    >>> await browser.pull("registry.local:5000/app:1.4")                 # doctest: +SKIP
    """

    NOUN = ("image", "images")
    COLUMNS: ClassVar[Mapping[str, str]] = {
        "tag": "Tag", "id": "Id", "size": "Size", "created": "Created",
        "containers": "In use"}
    HIDDEN = ("dangling",)
    SEARCHED = ("tag", "id")

    progress_interval = Float(0.1, help="Seconds between two updates of the pull's bar "
                              "(each is a message to the browser; pulls report often).")

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        self.images: list[Image] = []
        self.show_field = ipywidgets.Dropdown(options=SHOW, value="all",
                                              layout=ipywidgets.Layout(width="150px"))
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
        super().__init__(env, **kwargs)
        self.add_class("gp-image-browser")
        self.show_field.observe(lambda _: self._show(), "value")
        self.pull_button.on_click(
            lambda _: self._start("Pull", lambda: self.pull(self.reference.value)))
        self.reference.on_msg(self._reference_message)
        self.prune_button.on_click(lambda _: self.confirmation.ask(
            "Prune: remove every dangling (untagged) image?",
            lambda: self._start("Prune", self.prune)))

    @property
    def show(self) -> str:
        """Which images are shown: ``"all"``, ``"dangling"`` (untagged) or ``"unused"``
        (no container uses them)."""
        return str(self.show_field.value)

    @show.setter
    def show(self, value: str) -> None:
        self.show_field.value = value

    def _formatters(self) -> dict[str, Any]:
        from bokeh.models.widgets.tables import NumberFormatter

        return {"size": NumberFormatter(format="0.0 b", nan_format=""),
                "containers": NumberFormatter(format="0")}

    def _tools(self) -> list[ipywidgets.Widget]:
        return [self.prune_button, self.show_field]

    def _extras(self) -> list[ipywidgets.Widget]:
        return [ipywidgets.HBox([self.reference, self.pull_button]),
                ipywidgets.HBox([self.progress, self.progress_text])]

    def _controls(self) -> tuple[ipywidgets.Widget, ...]:
        return (*super()._controls(), self.prune_button, self.pull_button)

    @validate("progress_interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if seconds < 0:
            raise TraitError(f"progress_interval must be 0 seconds or more, not {seconds}")
        return seconds

    def _reference_message(self, widget: Any, content: Mapping[str, Any],
                           buffers: Any) -> None:
        if content.get("event") == "submit":  # Enter in the field
            self._start("Pull", lambda: self.pull(self.reference.value))

    def _filter(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.show == "dangling":
            return frame[frame["dangling"].astype(bool)]
        if self.show == "unused":
            return frame[frame["containers"] == 0]
        return frame

    async def _read(self) -> pd.DataFrame:
        import pandas as pd

        self.images = await self.env.images.list()
        containers = await self.env.containers.list(all=True)
        # In use: the containers made from each image, by image id (the listing's
        # ImageID; a container of a removed tag still holds its image).
        users = Counter(_bare_id(str(c.attrs.get("ImageID") or "")) for c in containers)
        rows = []
        for image in self.images:
            created = format_time(image.attrs.get("Created"))
            used = users.get(_bare_id(image.id), 0)
            for tag in image.tags or ["<none>"]:
                rows.append({"key": tag if tag != "<none>" else image.id, "tag": tag,
                             "id": image.short_id, "size": image.size, "created": created,
                             "containers": used, "dangling": not image.tags})
        rows.sort(key=lambda row: (row["dangling"], row["tag"], row["id"]))
        return pd.DataFrame(rows, columns=self._fields()).astype(
            {"size": "int64", "containers": "int64", "dangling": bool})

    async def _remove_one(self, key: str, *, force: bool) -> None:
        await self.env.images.remove(key, force=force)

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
                # The stream ended cleanly: every layer is in the store, whether or not
                # the engine reported its extraction (Podman never does).
                progress.finish()
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

    async def prune(self) -> dict[str, Any] | None:
        """Remove dangling images; the engine's report (``ImagesDeleted``...)."""
        with self.status.reporting("Prune images"):
            result = await self.env.images.prune()
            deleted = result.get("ImagesDeleted") or []
            if await self.refresh() is not None:
                self.status.success(f"Pruned {plural(len(deleted), 'image')}, reclaimed "
                                f"{format_size(result.get('SpaceReclaimed') or 0)}.")
            return result
        return None
