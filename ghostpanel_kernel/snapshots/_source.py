"""What a snapshot is taken of: one subvolume or dataset, and where its snapshots go."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from ._commands import Mount

__all__ = ["DEFAULT_DIR_NAME", "Source", "source_folder"]

#: The snapshot folder at the top of a filesystem when none is configured.
DEFAULT_DIR_NAME = ".ghostpanel-snapshots"


@dataclass(frozen=True)
class Source:
    """One snapshottable source.

    Attributes
    ----------
    key
        ``volume:NAME`` or the absolute path: recorded in each snapshot's metadata.
    path
        The subvolume (BTRFS) or dataset mount point (ZFS) that is snapshotted.
    mount
        The filesystem ``path`` is on.
    snapshot_dir
        The configured snapshot folder (BTRFS; ZFS keeps snapshots in the dataset).
    container
        The container this source was found through (``container:NAME``), if any.
    """

    key: str
    path: str
    mount: Mount
    snapshot_dir: str
    container: str = ""

    @property
    def folder(self) -> str:
        """This source's own folder under ``snapshot_dir`` (BTRFS)."""
        return os.path.join(self.snapshot_dir, source_folder(self.key))


def source_folder(key: str) -> str:
    """A folder name for a source key: readable, and unique through a short hash.

    >>> source_folder("volume:game-data")
    'volume-game-data-e1225920'
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.")[:80] or "root"
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{slug}-{digest}"
