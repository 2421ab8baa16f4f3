"""An image pull's progress: the engine's per-layer events folded into one bar.

``POST /images/create`` reports each layer on its own: announced (``Pulling fs layer``,
``Waiting``), downloaded in steps (``Downloading`` with bytes done and expected),
checked (``Verifying Checksum``, ``Download complete``), then unpacked (``Extracting``,
whose byte count starts again from 0) and finished (``Pull complete``). A layer already
in the engine's store is only ``Already exists``. Podman 4.3 sends no ``Extracting`` nor
``Pull complete``: its layers end at ``Download complete``, and its last event names the
pulled image, not a layer.

:class:`PullProgress` keeps, per layer, the download and the extraction apart, so that
the bar (bytes downloaded over bytes to download) never moves backward when extraction
restarts at 0, and the extraction still shows in the text. The CLI's bar and the
``ImageBrowser`` widget both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._units import human_size
from ._images import PullEvent

__all__ = ["LayerProgress", "PullProgress"]

# The download of a layer is over (its bytes all came).
_DOWNLOADED = frozenset({"verifying checksum", "download complete"})
# The layer is in the engine's store: downloaded and unpacked, or there before the pull.
_FINISHED = frozenset({"pull complete", "already exists"})
# Statuses about one layer. Others carry an id too, but not a layer's ("Pulling from
# library/alpine" has the tag as its id).
_LAYER_STATUSES = ("pulling fs layer", "waiting", "downloading", "extracting",
                   *_DOWNLOADED, *_FINISHED)


@dataclass
class LayerProgress:
    """One layer of a pull: its download and its extraction, each in bytes.

    Every count only grows: a report of fewer bytes than already seen (extraction
    starting over, a retried download) does not move it back.

    Attributes
    ----------
    size
        Bytes to download, 0 while the engine has not said.
    downloaded
        Bytes downloaded so far (at most ``size``).
    extracted
        Bytes unpacked so far, on the same scale as ``size``.
    done
        The layer is in the engine's store (or downloaded, on an engine that does not
        report extraction and the pull has ended).
    """

    size: int = 0
    downloaded: int = 0
    extracted: int = 0
    done: bool = False

    @property
    def extracting(self) -> bool:
        """Unpacking has started and is not over."""
        return self.extracted > 0 and not self.done

    def finish(self) -> None:
        """Count the layer whole: downloaded and unpacked."""
        self.downloaded = self.extracted = self.size
        self.done = True


@dataclass
class PullProgress:
    """An image pull's progress: the per-layer events summed into one bar.

    The bar counts downloaded bytes: :attr:`current` is what the layers have received,
    :attr:`total` what they will (of the layers whose size the engine said); neither
    ever goes down. A layer reported complete counts whole. Extraction is kept per
    layer and shown by :attr:`text`; it never moves the bar back.

    Attributes
    ----------
    layers
        Layer id -> :class:`LayerProgress`, in the order the engine announced them.
    status
        The engine's last words (``Downloading``, ``Status: Downloaded newer image...``).

    Examples
    --------
    >>> progress = PullProgress()
    >>> progress.update(PullEvent("Downloading", "a1", current=50, total=200))
    >>> progress.update(PullEvent("Downloading", "b2", current=0, total=100))
    >>> progress.update(PullEvent("Download complete", "a1"))
    >>> progress.update(PullEvent("Extracting", "a1", current=20, total=200))
    >>> progress.current, progress.total, progress.text
    (200, 300, 'Extracting: 200 B of 300 B, 0 of 2 layers')
    >>> progress.finish()
    >>> progress.current, progress.total, progress.fraction
    (300, 300, 1.0)
    """

    layers: dict[str, LayerProgress] = field(default_factory=dict)
    status: str = ""

    def update(self, event: PullEvent) -> None:
        """Fold one engine event in."""
        self.status = event.status or self.status
        status = event.status.lower()
        if not event.layer or not status.startswith(_LAYER_STATUSES):
            return
        layer = self.layers.get(event.layer)
        if layer is None:
            if status in _DOWNLOADED:
                # Every layer is announced before its download ends; Podman's last
                # "Download complete" names the pulled image, not a layer.
                return
            layer = self.layers[event.layer] = LayerProgress()
        if status in _FINISHED:
            layer.finish()
        elif status in _DOWNLOADED:
            layer.downloaded = layer.size
        elif status.startswith("extracting"):
            self._extracting(layer, event)
        elif status.startswith("downloading") and event.total is not None and event.total > 0:
            layer.size = max(layer.size, int(event.total))
            if event.current is not None:
                layer.downloaded = max(layer.downloaded, min(int(event.current), layer.size))

    @staticmethod
    def _extracting(layer: LayerProgress, event: PullEvent) -> None:
        # Unpacking begins once the download is over, whatever was last reported of it.
        layer.downloaded = layer.size
        if event.total is None or event.total <= 0 or event.current is None:
            return
        if layer.size == 0:  # a layer whose download the engine never detailed
            layer.size = layer.downloaded = int(event.total)
        # Docker counts extraction in the compressed layer's bytes; scale it to the
        # download's, should an engine count otherwise.
        share = min(max(int(event.current), 0), int(event.total)) / int(event.total)
        layer.extracted = max(layer.extracted, round(layer.size * share))

    def finish(self) -> None:
        """The pull has ended well: count every layer whole (the bar at its end).

        Call it when the engine's stream ends without an error; on an engine that does
        not report extraction, nothing else says that the layers are unpacked.
        """
        for layer in self.layers.values():
            layer.finish()

    @property
    def current(self) -> int:
        """Bytes received, all layers together."""
        return sum(layer.downloaded for layer in self.layers.values())

    @property
    def total(self) -> int:
        """Bytes expected, of the layers whose size is known."""
        return sum(layer.size for layer in self.layers.values())

    @property
    def extracted(self) -> int:
        """Bytes unpacked, all layers together (on the download's scale)."""
        return sum(layer.extracted for layer in self.layers.values())

    @property
    def done(self) -> set[str]:
        """The ids of the layers in the engine's store."""
        return {name for name, layer in self.layers.items() if layer.done}

    @property
    def fraction(self) -> float:
        """:attr:`current` over :attr:`total`, 0 to 1 (1 when nothing is left to fetch
        and every layer is done, 0 while no size is known)."""
        if self.total:
            return self.current / self.total
        return 1.0 if self.layers and len(self.done) == len(self.layers) else 0.0

    @property
    def text(self) -> str:
        """One line for the operator: status, bytes, layers."""
        if not self.layers:
            return self.status
        size = (f"{human_size(self.current, binary=True, space=True)} of "
                f"{human_size(self.total, binary=True, space=True)}" if self.total
                else "size unknown")
        count = len(self.layers)
        return (f"{self.status}: {size}, {len(self.done)} of {count} "
                f"layer{'' if count == 1 else 's'}")
