"""TARGET text (``volume:NAME``, ``container:NAME``, a path) and the sources behind it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._commands import Runner, find_mount
from ._errors import SnapshotError, UnsupportedFilesystem
from ._source import DEFAULT_DIR_NAME, Source

if TYPE_CHECKING:
    from ..engine import Container, Environment

__all__ = ["Target", "parse_target", "resolve_sources", "users_of"]

SUPPORTED = ("btrfs", "zfs")


@dataclass(frozen=True)
class Target:
    """A parsed TARGET: ``kind`` is ``volume``, ``container`` or ``path``."""

    kind: Literal["volume", "container", "path"]
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "path" else f"{self.kind}:{self.name}"


def parse_target(text: str) -> Target:
    """Parse ``volume:NAME``, ``container:NAME`` or a path (made absolute).

    Raises
    ------
    ValueError
        Empty text or an empty name after the prefix.

    Examples
    --------
    >>> parse_target("volume:data")
    Target(kind='volume', name='data')
    >>> parse_target("/srv/game").kind
    'path'
    """
    for kind in ("volume", "container"):
        prefix = f"{kind}:"
        if text.startswith(prefix):
            name = text[len(prefix):]
            if not name:
                raise ValueError(f"{text!r}: give the {kind}'s name after {prefix!r}")
            return Target(kind, name)
    if not text:
        raise ValueError("empty target: give volume:NAME, container:NAME or a path")
    return Target("path", os.path.abspath(text))


def _require(env: Environment | None, target: Target) -> Environment:
    if env is None:
        raise SnapshotError(f"{target} needs an engine environment (--env) to find its data")
    return env


async def _source(key: str, path: str, *, snapshot_dir: str | None, run: Runner,
                  container: str = "") -> Source:
    mount = await find_mount(path, run)
    if mount.filesystem not in SUPPORTED:
        raise UnsupportedFilesystem(
            f"{path} is on {mount.filesystem} (mounted at {mount.target}), not on btrfs or "
            "zfs: snapshots need a btrfs subvolume or a zfs dataset",
            path=path, filesystem=mount.filesystem)
    folder = (os.path.abspath(snapshot_dir) if snapshot_dir
              else os.path.join(mount.target, DEFAULT_DIR_NAME))
    return Source(key, os.path.abspath(path), mount, folder, container)


async def resolve_sources(target: Target, *, env: Environment | None,
                          snapshot_dir: str | None, run: Runner) -> list[Source]:
    """The subvolumes/datasets behind ``target``.

    A volume: its mount point (the engine's volume inspect). A container: each of its
    volumes and bind mounts (tmpfs and others hold nothing to keep). A path: itself.

    Raises
    ------
    UnsupportedFilesystem
        A source path not on btrfs/zfs (the message names it and its filesystem).
    SnapshotError
        A volume/container target without an environment, or a container with no
        volume or bind mount.
    """
    if target.kind == "path":
        return [await _source(target.name, target.name, snapshot_dir=snapshot_dir, run=run)]
    engine = _require(env, target)
    if target.kind == "volume":
        volume = await engine.volumes.get(target.name)
        return [await _source(f"volume:{volume.name}", volume.mountpoint,
                              snapshot_dir=snapshot_dir, run=run)]
    container = await engine.containers.get(target.name)
    sources = []
    for mount in container.attrs.get("Mounts") or []:
        key = _mount_key(mount)
        if key is not None:
            sources.append(await _source(key, str(mount["Source"]), snapshot_dir=snapshot_dir,
                                         run=run, container=container.name))
    if not sources:
        raise SnapshotError(f"container {container.name} has no volume or bind mount: "
                            "there is no data of it to snapshot")
    return sources


def _mount_key(mount: dict[str, Any]) -> str | None:
    kind = mount.get("Type")
    if kind == "volume" and mount.get("Name"):
        return f"volume:{mount['Name']}"
    if kind == "bind" and mount.get("Source"):
        return os.path.abspath(str(mount["Source"]))
    return None


async def users_of(env: Environment | None, sources: list[Source]) -> list[Container]:
    """Containers (any state) that mount one of ``sources``: they must stop for a restore."""
    if env is None:
        return []
    keys = {source.key for source in sources}
    users = []
    for container in await env.containers.list(all=True):
        mounts = container.attrs.get("Mounts")
        if mounts is None:  # Not in every engine's listing: ask the container itself.
            await container.reload()
            mounts = container.attrs.get("Mounts") or []
        if any(_mount_key(mount) in keys for mount in mounts):
            users.append(container)
    return users
