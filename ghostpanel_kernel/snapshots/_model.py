"""A snapshot, its name and its metadata record.

Names follow Bolt: ``bolt-YYYYmmdd-HHMMSS`` in UTC; a second snapshot of the same
source within one second gets ``-1``, ``-2``, ... appended, so no name is ever reused.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["NAME_PATTERN", "SizeDiff", "Snapshot", "bolt_name", "check_name"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RESERVED = (".", "..")


def bolt_name(when: datetime) -> str:
    """Bolt's name for a snapshot taken at ``when``: ``bolt-YYYYmmdd-HHMMSS`` (UTC).

    >>> bolt_name(datetime(2026, 12, 7, 19, 5, 3, tzinfo=UTC))
    'bolt-20261207-190503'
    """
    return when.astimezone(UTC).strftime("bolt-%Y%m%d-%H%M%S")


def check_name(name: str) -> str:
    """Return ``name`` if it can name a snapshot (a file and a ZFS snapshot name).

    Raises
    ------
    ValueError
        Empty, too long, or with characters other than letters, digits, ``.``, ``_``
        and ``-`` (or starting with ``.``/``-``): it could escape the snapshot folder.
    """
    if not NAME_PATTERN.fullmatch(name) or name in _RESERVED or name.endswith(".json"):
        raise ValueError(f"invalid snapshot name {name!r}: use letters, digits, '.', '_' "
                         "and '-', starting with a letter or digit")
    return name


@dataclass
class Snapshot:
    """One read-only snapshot of one source and its metadata record.

    Attributes
    ----------
    name
        ``bolt-YYYYmmdd-HHMMSS`` or the name given at creation.
    source
        What was snapshotted: ``volume:NAME`` or an absolute path.
    source_path
        The subvolume/dataset mount point it was taken of.
    location
        Where the snapshot is: a path (BTRFS) or ``dataset@name`` (ZFS).
    filesystem
        ``btrfs`` or ``zfs``.
    created
        When it was taken (aware, UTC).
    size
        Bytes it refers to (its data as seen inside it), or None when unknown.
    trigger
        Why it was taken: ``manual``, ``pre-restore`` (the safety copy a restore
        keeps), ``hourly``/``daily``/``weekly``, ``before_surge_up``.
    keep_forever
        Never removed by retention.
    description
        Free text given at creation.
    container
        For a ``container:NAME`` snapshot, the container's name.
    """

    name: str
    source: str
    source_path: str
    location: str
    filesystem: str
    created: datetime
    size: int | None = None
    trigger: str = "manual"
    keep_forever: bool = False
    description: str = ""
    container: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def time(self) -> datetime:
        """``created``, under the name :func:`plan_retention` reads."""
        return self.created

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (``created`` as RFC 3339 text)."""
        data = asdict(self)
        data.pop("extra")
        data["created"] = self.created.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return data


@dataclass(frozen=True)
class SizeDiff:
    """Sizes of two snapshots of one source, for ``diff``.

    Attributes
    ----------
    source
        The source both were taken of.
    a, b
        The two snapshot names.
    size_a, size_b
        Bytes each refers to.
    exclusive_a, exclusive_b
        Bytes only that snapshot holds (shared with no other subvolume/snapshot):
        what deleting it would free. None where the filesystem does not say.
    """

    source: str
    a: str
    b: str
    size_a: int
    size_b: int
    exclusive_a: int | None
    exclusive_b: int | None

    @property
    def delta(self) -> int:
        """``size_b - size_a``: how much the data grew (negative: shrank) from a to b."""
        return self.size_b - self.size_a
