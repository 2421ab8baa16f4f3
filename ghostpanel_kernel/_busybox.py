"""The demo image: a busybox root filesystem, built from this host's static busybox.

:func:`build_busybox_archive` writes the tarball that ``podman import`` (or
``env.images.import_rootfs``) turns into ``localhost/busybox:latest``, the image the demo
containers run: no registry is needed. The binary is this machine's, so the image runs
only on an engine of the same CPU architecture (:func:`host_architecture` names it as the
Engine API does).

The module imports only the standard library, and ``scripts/setup.sh`` runs the file
directly (``python3 ghostpanel_kernel/_busybox.py archive DEST``) to build the image
before the project is installed.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import struct
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BUSYBOX_REFERENCE", "build_busybox_archive", "host_architecture"]

BUSYBOX_REFERENCE = "localhost/busybox:latest"
"""The reference the demo image is imported under, in every engine."""

_INSTALL_HINT = "install busybox-static (`scripts/setup.sh` does, run as root)"

# platform.machine() (uname -m) -> GOARCH, the names the Engine API's "Arch" uses.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_architecture() -> str:
    """This machine's CPU architecture, named as Go and the Engine API name it.

    Examples
    --------
    >>> host_architecture()                                      # doctest: +SKIP
    'amd64'
    """
    machine = platform.machine()
    return _GOARCH.get(machine.lower(), machine.lower())


def _is_static_elf(path: Path) -> bool:
    """Tell whether ``path`` is an ELF executable without a program interpreter."""
    with path.open("rb") as file:
        header = file.read(64)
        if len(header) < 52 or header[:4] != b"\x7fELF":
            return False
        is_64 = header[4] == 2
        endian = "<" if header[5] == 1 else ">"
        if is_64:
            (phoff,) = struct.unpack_from(endian + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
        else:
            (phoff,) = struct.unpack_from(endian + "I", header, 28)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 42)
        file.seek(phoff)
        table = file.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from(endian + "I", table, index * phentsize)[0] != pt_interp
        for index in range(phnum)
    )


def build_busybox_archive(dest: Path, *, busybox: Path = Path("/bin/busybox")) -> Path:
    """Build the rootfs tarball of the demo image, unless it already exists.

    The archive holds ``bin/busybox`` (a copy of the host's statically linked busybox,
    from Debian's ``busybox-static``), a symbolic link per applet (``sh``, ``sleep``,
    ``httpd``, ...), ``/usr/bin`` and ``/sbin`` as links to ``/bin``, a minimal
    ``/etc/passwd`` and ``/etc/group``, and ``/tmp``. Entries carry fixed owners and
    times, so that the same busybox always gives the same layer digest.

    Parameters
    ----------
    dest
        Path of the ``.tar`` file to write; an existing directory gets ``busybox.tar``
        inside it. The archive is written next to it first and renamed into place.
    busybox
        The busybox binary to copy; it must be statically linked.

    Returns
    -------
    Path
        The archive's path, ready for ``podman import``.

    Raises
    ------
    RuntimeError
        If ``busybox`` is missing or dynamically linked.

    Examples
    --------
    >>> archive = build_busybox_archive(Path("/tmp/busybox.tar"))  # doctest: +SKIP
    """
    if dest.is_dir():
        dest = dest / "busybox.tar"
    if dest.exists():
        return dest
    if not busybox.is_file():
        raise RuntimeError(f"{busybox} not found: {_INSTALL_HINT}")
    if not _is_static_elf(busybox):
        raise RuntimeError(
            f"{busybox} is dynamically linked and would not run in an empty image: "
            "install busybox-static"
        )
    listed = subprocess.run(
        [os.fspath(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    applets = sorted({name for name in listed if name and "/" not in name} - {"busybox"})

    def entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
        info = entry(name, tarfile.REGTYPE, 0o644)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    def add_link(archive: tarfile.TarFile, name: str, target: str) -> None:
        info = entry(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        archive.addfile(info)

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            for name, mode in (
                ("bin", 0o755),
                ("etc", 0o755),
                ("root", 0o700),
                ("tmp", 0o1777),
                ("usr", 0o755),
            ):
                archive.addfile(entry(name, tarfile.DIRTYPE, mode))
            binary = entry("bin/busybox", tarfile.REGTYPE, 0o755)
            binary.size = busybox.stat().st_size
            with busybox.open("rb") as source:
                archive.addfile(binary, source)
            for applet in applets:
                add_link(archive, f"bin/{applet}", "busybox")
            add_link(archive, "sbin", "bin")
            add_link(archive, "usr/bin", "../bin")
            add_link(archive, "usr/sbin", "../bin")
            add_file(
                archive,
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            )
            add_file(archive, "etc/group", b"root:x:0:\nnobody:x:65534:\n")
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="_busybox.py", description="Build GhostPanel's demo image (busybox rootfs).")
    commands = parser.add_subparsers(dest="command", required=True)
    archive = commands.add_parser("archive", help="build the busybox rootfs tarball")
    archive.add_argument("dest", type=Path, help="the .tar file to write (kept if it exists)")
    arguments = parser.parse_args(argv)
    print(build_busybox_archive(arguments.dest))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
