"""``ImageBrowser``: an environment's images, listed, pulled (with a progress bar),
removed and pruned from a notebook.

The bar is the kernel's :class:`~ghostpanel_kernel.engine.PullProgress`, the same one the
CLI draws, re-exported here for code that imported it from this module.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import ipywidgets
from traitlets import Float, TraitError, validate

from ghostpanel_kernel.engine import Environment, Image, PullProgress

from ._base import EngineWidget
from ._controls import Confirmation, RowList
from ._format import format_size, format_time, plural

__all__ = ["ImageBrowser", "PullProgress"]


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
                self.status.success(f"Pruned {plural(len(deleted), 'image')}, reclaimed "
                                f"{format_size(result.get('SpaceReclaimed') or 0)}.")
            return result
        return None
