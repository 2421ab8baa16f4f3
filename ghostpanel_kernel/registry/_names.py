"""Image references read as a registry sees them: host, repository, tag, digest.

An engine stores what the user typed (``busybox``, ``nginx:1.27``,
``127.0.0.1:5000/team/app``); a registry is asked about ``docker.io``'s
``library/busybox`` and so on. The normalisation is the one of the
``distribution/reference`` package that both engines use:

- the first component is the registry only when it has a ``.`` or a ``:`` or is
  ``localhost``; otherwise the registry is Docker Hub (``docker.io``);
- a one-component name on Docker Hub lives under ``library/``;
- no tag and no digest means ``latest``.

Podman names the images it built, imported or committed ``localhost/NAME``: a name
with no registry behind it (:attr:`ImageName.local`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..engine._reference import check_reference

__all__ = ["DOCKER_HUB", "ImageName", "parse_image_name", "same_repository"]

#: The registry short names resolve to, and where its API is really served.
DOCKER_HUB: Final = "docker.io"
_DOCKER_HUB_API: Final = "registry-1.docker.io"
_DOCKER_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# What the engines read as an image id rather than a name (as _reference does).
_IMAGE_ID: Final = re.compile(r"(?:sha256:)?[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class ImageName:
    """One image reference, normalised.

    Attributes
    ----------
    registry
        The registry's host (``docker.io``, ``127.0.0.1:5000``, ``localhost`` for
        Podman's local images).
    repository
        The repository within it (``library/busybox``).
    tag
        The tag (``latest`` when the reference had neither tag nor digest; ``""``
        when it had only a digest).
    digest
        The digest the reference pins (``sha256:...``), or ``""``.

    Examples
    --------
    >>> name = parse_image_name("busybox")
    >>> name.registry, name.repository, name.tag, str(name)
    ('docker.io', 'library/busybox', 'latest', 'docker.io/library/busybox:latest')
    >>> parse_image_name("127.0.0.1:5000/team/app:2").api_host
    '127.0.0.1:5000'
    """

    registry: str
    repository: str
    tag: str = "latest"
    digest: str = ""

    @property
    def local(self) -> bool:
        """Podman's name for an image made on the engine itself: no registry has it."""
        return self.registry == "localhost"

    @property
    def api_host(self) -> str:
        """Where the registry's API is served (Docker Hub's is not at ``docker.io``)."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def host(self) -> str:
        """The registry's host without its port."""
        # No IPv6 literal here: the engines' reference grammar has none.
        return self.registry.rsplit(":", 1)[0]

    @property
    def repository_name(self) -> str:
        """``registry/repository``, the name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.repository_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_name(reference: str) -> ImageName:
    """Read ``reference`` as :class:`ImageName`.

    Raises
    ------
    ValueError
        ``reference`` is not an image reference, or is an image id (an id names an
        image on one engine, not a repository anywhere).

    Examples
    --------
    >>> parse_image_name("docker.io/nginx@sha256:" + "0" * 64).tag
    ''
    >>> parse_image_name("localhost/busybox:latest").local
    True
    """
    check_reference(reference)
    if _IMAGE_ID.fullmatch(reference):
        raise ValueError(f"{reference!r} is an image id, not a name a registry knows")
    rest, _, digest = reference.partition("@")
    name, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1:]
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, name
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    if not tag and not digest:
        tag = "latest"
    return ImageName(registry, repository, tag, digest)


def same_repository(a: ImageName, b: ImageName) -> bool:
    """Whether ``a`` and ``b`` name the same repository of the same registry.

    Examples
    --------
    >>> hub = parse_image_name("docker.io/library/busybox")
    >>> same_repository(parse_image_name("busybox:1"), hub)
    True
    """
    return (a.registry, a.repository) == (b.registry, b.repository)
