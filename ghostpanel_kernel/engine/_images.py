"""Images: the model, pulls with progress, and the collection (``env.images``)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import EngineAPIError
from ._client import body_of, encode_filters, quote_id
from ._models import Model
from ._streams import iter_json_lines

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["Image", "ImageCollection", "ImagePull", "ImagePullError", "PullEvent"]


class ImagePullError(EngineAPIError):
    """The engine accepted a pull, then reported in the progress stream that it failed."""

    def __str__(self) -> str:
        return f"pull failed: {self.message} ({self.method} {self.path})"


@dataclass(frozen=True)
class PullEvent:
    """One progress report of an image pull.

    Attributes
    ----------
    status
        The engine's words (``Downloading``, ``Pull complete``...).
    layer
        The layer id the report is about, ``""`` for the image as a whole.
    current, total
        Bytes done and expected for that layer, when the engine says.
    attrs
        The raw JSON line.
    """

    status: str
    layer: str = ""
    current: int | None = None
    total: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> PullEvent:
        """Read one JSON line of ``POST /images/create``."""
        detail = attrs.get("progressDetail") or {}
        return cls(status=str(attrs.get("status") or attrs.get("stream") or "").strip(),
                   layer=str(attrs.get("id") or ""),
                   current=detail.get("current"), total=detail.get("total"), attrs=attrs)


def _split_reference(reference: str) -> tuple[str, str]:
    """``repo:tag`` → (repo, tag), leaving a registry port or digest alone."""
    if "@" in reference:
        return reference, ""
    repo, sep, tag = reference.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return reference, "latest"


class ImagePull:
    """A pull in progress: iterate it for :class:`PullEvent` s, or await it for the image.

    Examples
    --------
    >>> async for event in env.images.pull("localhost:5000/app:1"):   # doctest: +SKIP
    ...     print(event.status, event.current, event.total)
    >>> image = await env.images.pull("localhost:5000/app:1")         # doctest: +SKIP
    """

    _sync_wrap = True

    def __init__(self, collection: ImageCollection, reference: str) -> None:
        self._collection = collection
        self.reference = reference

    async def events(self) -> AsyncIterator[PullEvent]:
        """Progress events as the engine reports them; raises on a failed pull."""
        client = self._collection._client
        repo, tag = _split_reference(self.reference)
        response = await client._request("POST", "/images/create",
                                         params={"fromImage": repo, "tag": tag or None},
                                         stream=True)
        path = f"/v{await client.api_version()}/images/create"
        async for line in iter_json_lines(client.iter_body(response), endpoint=client.url):
            if line.get("error") or line.get("errorDetail"):
                message = line.get("error") or (line.get("errorDetail") or {}).get(
                    "message", "unknown error")
                raise ImagePullError(response.status_code, str(message),
                                     method="POST", path=path)
            yield PullEvent.from_attrs(line)

    def __aiter__(self) -> AsyncIterator[PullEvent]:
        return self.events()

    async def wait(self) -> Image:
        """Run the pull to its end and return the pulled image."""
        async for _ in self.events():
            pass
        return await self._collection.get(self.reference)

    def __await__(self) -> Generator[Any, None, Image]:
        return self.wait().__await__()


class Image(Model):
    """An image on one engine."""

    @property
    def tags(self) -> list[str]:
        """Repository tags (``localhost/busybox:latest``...)."""
        return [t for t in self.attrs.get("RepoTags") or [] if t != "<none>:<none>"]

    @property
    def name(self) -> str:
        """The first tag, or the short id for an untagged image."""
        tags = self.tags
        return tags[0] if tags else self.short_id

    @property
    def size(self) -> int:
        """Size in bytes."""
        return int(self.attrs.get("Size") or 0)

    @property
    def labels(self) -> dict[str, str]:
        """The image's labels."""
        config = self.attrs.get("Config")
        labels = config.get("Labels") if isinstance(config, dict) else self.attrs.get("Labels")
        return dict(labels or {})

    @property
    def _path(self) -> str:
        return f"/images/{quote_id(self.id or self.name)}"

    async def _inspect(self) -> Mapping[str, Any]:
        attrs: Mapping[str, Any] = await self._client.get_json(f"{self._path}/json")
        return attrs

    async def history(self) -> list[dict[str, Any]]:
        """The image's layers, newest first."""
        result: list[dict[str, Any]] = await self._client.get_json(f"{self._path}/history")
        return result

    async def tag(self, repository: str, tag: str = "latest") -> None:
        """Add the tag ``repository:tag``; ``attrs`` is refreshed."""
        if not isinstance(repository, str) or not repository.strip():
            raise ValueError(f"tag needs a repository name, got {repository!r}")
        if not isinstance(tag, str) or not tag.strip():
            raise ValueError(f"tag must be a non-empty string, got {tag!r}")
        await self._client._request("POST", f"{self._path}/tag",
                                    params={"repo": repository, "tag": tag})
        await self.reload()

    async def remove(self, *, force: bool = False, noprune: bool = False) -> None:
        """Remove the image."""
        await self._client._request("DELETE", self._path,
                                    params={"force": force, "noprune": noprune},
                                    timeout=self._client.timeout)  # layers to delete

    async def export(self, destination: str | Path) -> Path:
        """Write the image as a ``docker save`` tarball to ``destination``, streaming."""
        path = Path(destination)
        client = self._client
        # By name, not id: an export by id carries no RepoTags, and the image would load
        # back untagged.
        source = quote_id(self.tags[0]) if self.tags else quote_id(self.id)
        response = await client._request("GET", f"/images/{source}/get", stream=True)
        with path.open("wb") as out:
            async for piece in client.iter_body(response):
                out.write(piece)
        return path


def _read_tarball(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


class ImageCollection:
    """The images of one engine (``env.images``)."""

    _sync_wrap = True

    def __init__(self, client: EngineClient, *, environment: str = "") -> None:
        self._client = client
        self._environment = environment

    def _wrap(self, attrs: Mapping[str, Any]) -> Image:
        return Image(self._client, attrs, environment=self._environment)

    async def list(self, *, all: bool = False,
                   filters: Mapping[str, Any] | None = None) -> list[Image]:
        """Images; ``all`` includes intermediate layers."""
        entries = await self._client.get_json(
            "/images/json", params={"all": all, "filters": encode_filters(filters)})
        return [self._wrap(entry) for entry in entries or []]

    async def get(self, reference: str) -> Image:
        """The image with this name, tag or id; :class:`NotFound` otherwise."""
        return self._wrap(await self._client.get_json(f"/images/{quote_id(reference)}/json"))

    def pull(self, reference: str) -> ImagePull:
        """Pull ``reference``: iterate the result for progress, or await it for the image."""
        if not reference:
            raise ValueError("pull needs an image reference")
        return ImagePull(self, reference)

    async def remove(self, reference: str, *, force: bool = False) -> None:
        """Remove the image ``reference``."""
        await self._client._request("DELETE", f"/images/{quote_id(reference)}",
                                    params={"force": force}, timeout=self._client.timeout)

    async def prune(self, *, dangling_only: bool = True,
                    filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove unused images (only untagged ones unless ``dangling_only=False``)."""
        merged = dict(filters or {})
        merged.setdefault("dangling", dangling_only)
        result: dict[str, Any] = await self._client.post_json(
            "/images/prune", params={"filters": encode_filters(merged)},
            timeout=self._client.timeout)
        return result

    async def import_rootfs(self, source: bytes | str | Path, reference: str) -> Image:
        """Create an image from a root filesystem tarball (``docker import``)."""
        # The whole reference goes in ``repo``: Podman ignores ``tag`` on import (and would
        # store ``:latest``); Docker accepts ``repo:tag`` there too.
        response = await self._client._request(
            "POST", "/images/create",
            params={"fromSrc": "-", "repo": reference},
            content=_read_tarball(source), headers={"Content-Type": "application/x-tar"},
            timeout=600.0)
        for line in body_of(response).splitlines():
            if b'"error' in line:
                api = await self._client.api_version()
                raise ImagePullError(response.status_code, line.decode(errors="replace"),
                                     method="POST", path=f"/v{api}/images/create")
        return await self.get(reference)

    async def load(self, source: bytes | str | Path) -> builtins.list[str]:
        """Load images from a ``docker save`` tarball; return the names loaded."""
        response = await self._client._request(
            "POST", "/images/load", content=_read_tarball(source),
            headers={"Content-Type": "application/x-tar"}, timeout=600.0)
        loaded: builtins.list[str] = []
        for line in body_of(response).decode(errors="replace").splitlines():
            for prefix in ("Loaded image: ", "Loaded image(s): ", "Loaded image ID: "):
                if prefix in line:
                    names = line.split(prefix, 1)[1].split('"', 1)[0].replace("\\n", "")
                    loaded += [n.strip() for n in names.split(",") if n.strip()]
        return loaded
