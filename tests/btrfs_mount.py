"""A real BTRFS filesystem on a loop device, for the snapshot tests.

:func:`btrfs_loop_mount` makes a sparse image file, ``mkfs.btrfs`` on it, mounts it with
``-o loop`` (root only) and, on exit, unmounts it (lazily if it is still busy) and
deletes the image, whatever happened inside. :func:`make_subvolume` turns an empty
directory, such as a Podman volume's ``_data``, into a subvolume.

Two module-scoped fixtures for the test files that need them (import both names):
``btrfs`` (a loop mount, :func:`btrfs_fixture`) and ``btrfs_engine`` (a private Podman
engine whose storage, and so every volume's data, is on it: :func:`btrfs_engine_fixture`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orphans import processes_using
from tests.podman_service import PodmanService, mounts_under

__all__ = ["btrfs_engine_fixture", "btrfs_fixture", "btrfs_loop_mount", "make_subvolume",
           "require_btrfs"]


def require_btrfs() -> None:
    """Skip unless this process can make and mount a BTRFS loop filesystem."""
    if os.geteuid() != 0:
        pytest.skip("BTRFS loop mounts need root")
    for tool in ("mkfs.btrfs", "btrfs", "mount", "umount", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing: install btrfs-progs (scripts/setup.sh)")


def _mounted(path: Path) -> bool:
    return subprocess.run(["findmnt", "--mountpoint", os.fspath(path)],
                          capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def btrfs_loop_mount(size: str = "300M") -> Iterator[Path]:
    """Yield the mount point of a fresh BTRFS filesystem; everything goes on exit."""
    require_btrfs()
    base = Path(tempfile.mkdtemp(prefix="gp-btrfs-", dir="/tmp"))
    image, mount_point = base / "fs.img", base / "mnt"
    mount_point.mkdir()
    try:
        subprocess.run(["truncate", "-s", size, os.fspath(image)], check=True)
        subprocess.run(["mkfs.btrfs", "-q", os.fspath(image)], check=True,
                       capture_output=True)
        # -o loop attaches a loop device with autoclear: umount also detaches it.
        subprocess.run(["mount", "-o", "loop", os.fspath(image), os.fspath(mount_point)],
                       check=True, capture_output=True)
        yield mount_point
    finally:
        _unmount(mount_point)
        shutil.rmtree(base, ignore_errors=True)


def _unmount(mount_point: Path) -> None:
    deadline = time.monotonic() + 10
    while _mounted(mount_point):
        if subprocess.run(["umount", os.fspath(mount_point)], capture_output=True,
                          check=False).returncode == 0:
            continue
        if time.monotonic() > deadline:
            # Still busy: detach it now; the kernel frees it when the last user goes.
            subprocess.run(["umount", "--lazy", os.fspath(mount_point)], check=False)
            break
        time.sleep(0.1)


def make_subvolume(path: Path) -> Path:
    """Make ``path`` a subvolume: replaced if it is an empty directory, else created."""
    if path.is_dir():
        path.rmdir()  # fails unless empty: never throws data away
    subprocess.run(["btrfs", "subvolume", "create", os.fspath(path)], check=True,
                   capture_output=True)
    return path


@pytest.fixture(name="btrfs", scope="module")
def btrfs_fixture() -> Iterator[Path]:
    """A fresh BTRFS loop mount for the test module."""
    with btrfs_loop_mount() as mount_point:
        yield mount_point


@pytest.fixture(name="btrfs_engine", scope="module")
def btrfs_engine_fixture(btrfs: Path, busybox_archive: Path) -> Iterator[PodmanService]:
    """A Podman engine whose graphroot, and so every volume's data, is on the BTRFS."""
    engine = PodmanService(btrfs / "engine")
    try:
        engine.start()
        engine.import_image(busybox_archive)
        yield engine
    finally:
        try:
            engine.reset()
        finally:
            engine.stop()
        # conmon runs `podman container cleanup` as a container exits: let it end before
        # the filesystem under it is unmounted.
        deadline = time.monotonic() + 10
        while processes_using(engine.base_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        if mounts_under(engine.base_dir):
            # The storage's own mount (root/overlay) can outlive the service: reset
            # again, now that nothing can mount anew, unmounts it.
            engine.reset()
        assert not mounts_under(engine.base_dir), "engine mounts left on the BTRFS"
