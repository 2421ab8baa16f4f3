"""Image updates: whether the registry's tag now names another image than a container runs.

For each container, the image it runs (its ``ImageID``) carries the digests the
engine recorded when it pulled it (``RepoDigests``: ``repository@sha256:...``); the
registry is asked, with one ``HEAD`` of the manifest, which digest the container's
tag names now (:mod:`ghostpanel_kernel.registry`). The same digest: ``current``;
another: ``update-available``; no way to tell: ``unknown``, with the reason (an image
built or imported on the engine, a ``localhost/`` name, a tag pinned to a digest, the
registry unreachable, a login missing or refused, the tag gone from the registry).

One engine inspect per distinct image and one ``HEAD`` per distinct reference, at most
``concurrency`` at a time, each within ``timeout``; the registry's answers (errors
included, so that a dashboard refreshing every few seconds does not hammer a registry
that is down or rate-limits) are kept ``max_age`` seconds for every environment of the
process.

The check runs where GhostPanel runs, with its network and the logins stored there
(``podman login``/``docker login``): a registry the engine's host reaches but this
machine does not is reported unreachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from .._exceptions import GhostPanelError, NotFound
from ..registry import (
    CredentialLookup,
    ImageName,
    ManifestNotFound,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryUnreachable,
    parse_image_name,
    same_repository,
)

if TYPE_CHECKING:
    import httpx

    from ._containers import Container
    from ._environment import Environment

__all__ = [
    "UpdateState",
    "UpdateStatus",
    "check_updates",
    "clear_update_cache",
    "summarize_updates",
    "update_cell",
    "update_cells",
]

UpdateState = Literal["current", "update-available", "unknown"]
T = TypeVar("T")

#: Seconds a registry's answer is kept by default.
DEFAULT_MAX_AGE: Final = 60.0

# reference (normalised, with tag) -> (when asked, digest or the registry's error)
_ANSWERS: dict[str, tuple[float, str | RegistryError]] = {}
# engine URL -> (when read, the registries it reaches insecurely)
_INSECURE: dict[str, tuple[float, frozenset[str]]] = {}


@dataclass(frozen=True)
class UpdateStatus:
    """Whether one container's image has a newer version under its tag.

    Attributes
    ----------
    state
        ``current``, ``update-available`` or ``unknown``.
    reason
        Why, in words (always set for ``unknown``).
    image
        The image reference the container was created from.
    container, environment
        The container's name and the environment it is on.
    running_digests
        The digests the container's image has in that repository.
    registry_digest
        The digest the registry's tag names now (``""`` when it could not be asked).

    Examples
    --------
    >>> status = UpdateStatus("update-available", "newer image", image="nginx:1")
    >>> status.available, update_cell(status)
    (True, 'update available')
    """

    state: UpdateState
    reason: str = ""
    image: str = ""
    container: str = ""
    environment: str = ""
    running_digests: tuple[str, ...] = ()
    registry_digest: str = ""

    @property
    def available(self) -> bool:
        """Whether the registry has another image under the tag."""
        return self.state == "update-available"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``ps --updates --json``)."""
        return {"state": self.state, "reason": self.reason, "image": self.image,
                "running_digests": list(self.running_digests),
                "registry_digest": self.registry_digest}


_CELLS: Final[Mapping[UpdateState, str]] = {
    "current": "current", "update-available": "update available", "unknown": "unknown"}


def update_cell(status: UpdateStatus | None) -> str:
    """The short text a table shows for ``status`` (``""`` when not checked).

    Examples
    --------
    >>> update_cell(UpdateStatus("current")), update_cell(None)
    ('current', '')
    """
    return "" if status is None else _CELLS[status.state]


def summarize_updates(statuses: Iterable[UpdateStatus]) -> str:
    """One cell for many containers (a stack's): which have an update, else whether all
    are current.

    Examples
    --------
    >>> summarize_updates([UpdateStatus("update-available", container="shop_web"),
    ...                    UpdateStatus("current", container="shop_db")])
    '1 update available (shop_web)'
    >>> summarize_updates([UpdateStatus("current"), UpdateStatus("unknown")])
    'current (1 unknown)'
    >>> summarize_updates([])
    ''
    """
    checked = list(statuses)
    available = sorted({s.container for s in checked if s.available})
    if available:
        count = len(available)
        return (f"{count} update{'s' if count > 1 else ''} available "
                f"({', '.join(available)})")
    unknown = sum(1 for s in checked if s.state == "unknown")
    if not checked:
        return ""
    if unknown == len(checked):
        return "unknown"
    return f"current ({unknown} unknown)" if unknown else "current"


async def update_cells(environment: Environment,
                       containers: Iterable[Container] | None = None,
                       **options: Any) -> dict[str, str]:
    """:func:`check_updates`, as the short text a table cell shows, by container id.

    ``options`` are :func:`check_updates`'s. A table shows the reason of an ``unknown``
    as the cell's tooltip: :func:`check_updates` gives it.
    """
    statuses = await check_updates(environment, containers, **options)
    return {ident: update_cell(status) for ident, status in statuses.items()}


def clear_update_cache() -> None:
    """Forget every registry answer kept (the next check asks again)."""
    _ANSWERS.clear()
    _INSECURE.clear()


def _short(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest


def _image_id(container: Container) -> str:
    attrs = container.attrs
    if attrs.get("ImageID"):  # a listing's entry
        return str(attrs["ImageID"])
    # An inspect's: "Image" is the id there ("Config.Image" the reference).
    return str(attrs.get("Image") or "") if isinstance(attrs.get("Config"), dict) else ""


def _digests_for(name: ImageName, repo_digests: Iterable[object]) -> tuple[str, ...]:
    """The digests of ``repo_digests`` (``repository@digest``) in ``name``'s repository."""
    found: list[str] = []
    for entry in repo_digests:
        if not isinstance(entry, str) or "@" not in entry:
            continue
        try:
            named = parse_image_name(entry)
        except ValueError:
            continue
        if same_repository(named, name) and named.digest not in found:
            found.append(named.digest)
    return tuple(found)


def _unreadable(reference: str) -> str | None:
    """Why ``reference`` cannot be compared with a registry, or None when it can."""
    try:
        name = parse_image_name(reference)
    except ValueError:
        return "created from an image id, not from a tag a registry holds"
    if name.local:
        return (f"{reference} is a local image (built, imported or committed on the "
                "engine): no registry to compare it with")
    if name.digest:
        return f"pinned to {_short(name.digest)}: a digest never changes"
    return None


def _describe_registry_error(error: RegistryError) -> str:
    if isinstance(error, RegistryUnreachable):
        return f"registry unreachable: {error}"
    if isinstance(error, RegistryAuthError):
        return f"registry refused: {error}"
    if isinstance(error, ManifestNotFound):
        return f"tag not in the registry: {error}"
    return f"registry error: {error}"


async def _insecure_registries(environment: Environment, *, max_age: float) -> frozenset[str]:
    """The registries ``environment``'s engine reaches over plain HTTP (``GET /info``)."""
    kept = _INSECURE.get(environment.url)
    if kept is not None and time.monotonic() - kept[0] < max_age:
        return kept[1]
    try:
        info = await environment.system.info()
    except GhostPanelError:  # the check still runs, over HTTPS only
        return frozenset()
    config = info.get("RegistryConfig") or {}
    names = {str(name) for name, index in (config.get("IndexConfigs") or {}).items()
             if isinstance(index, dict) and index.get("Secure") is False}
    networks = []
    for cidr in config.get("InsecureRegistryCIDRs") or []:
        try:
            networks.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue
    insecure = frozenset(names) | frozenset(f"cidr:{n}" for n in networks)
    _INSECURE[environment.url] = (time.monotonic(), insecure)
    return insecure


def _insecure_for(name: ImageName, insecure: frozenset[str]) -> bool:
    if name.registry in insecure:
        return True
    # Docker resolves a name to match its CIDRs (127.0.0.0/8 by default): localhost at least.
    host = "127.0.0.1" if name.host == "localhost" else name.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry.removeprefix("cidr:"))
               for entry in insecure if entry.startswith("cidr:"))


async def _bounded(limit: asyncio.Semaphore, keys: Iterable[str],
                   work: Callable[[str], Awaitable[T]]) -> dict[str, T]:
    async def one(key: str) -> T:
        async with limit:
            return await work(key)

    ordered = list(dict.fromkeys(keys))
    results = await asyncio.gather(*(one(key) for key in ordered))
    return dict(zip(ordered, results, strict=True))


async def _image_digests(environment: Environment, image_id: str) -> list[object] | str:
    """The image's ``RepoDigests``, or why they cannot be read."""
    if not image_id:
        return "the engine does not say which image the container runs"
    try:
        image = await environment.images.get(image_id)
    except NotFound:
        return "its image is no longer on the engine"
    except GhostPanelError as error:
        return f"cannot inspect its image: {error}"
    return list(image.attrs.get("RepoDigests") or [])


async def check_updates(environment: Environment,
                        containers: Iterable[Container] | None = None, *,
                        max_age: float = DEFAULT_MAX_AGE, timeout: float = 5.0,
                        concurrency: int = 8, credentials: CredentialLookup | None = None,
                        transport: httpx.AsyncBaseTransport | None = None
                        ) -> dict[str, UpdateStatus]:
    """Whether the registry has a newer image for each container's tag.

    Parameters
    ----------
    environment
        The environment the containers are on.
    containers
        The containers to check (default: the running ones, one listing).
    max_age
        Seconds a registry's earlier answer may be reused; ``0`` asks again.
    timeout
        Seconds each registry request may take.
    concurrency
        Registry requests and image inspects at once, at most.
    credentials
        Finds an image's registry login (default: the stored logins, see
        :func:`ghostpanel_kernel.registry.find_credentials`).
    transport
        An httpx transport for the registry requests (tests).

    Returns
    -------
    dict[str, UpdateStatus]
        By container id. A registry that cannot answer makes its containers
        ``unknown``; it never raises for them.

    Raises
    ------
    GhostPanelError
        Only when the containers cannot be listed.

    Examples
    --------
    >>> statuses = await check_updates(env)                               # doctest: +SKIP
    >>> {s.container: s.state for s in statuses.values()}                 # doctest: +SKIP
    {'web': 'update-available', 'db': 'current'}
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    listed: Sequence[Container] = (await environment.containers.list() if containers is None
                                   else list(containers))
    limit = asyncio.Semaphore(concurrency)
    unreadable = {c.id: _unreadable(c.image) for c in listed}
    to_check = [c for c in listed if unreadable[c.id] is None]
    inspected = await _bounded(limit, (_image_id(c) for c in to_check),
                               lambda image_id: _image_digests(environment, image_id))
    names = {c.image: parse_image_name(c.image) for c in to_check}
    # Per container: its image's digests in its repository, or why they are unknown.
    running_of: dict[str, tuple[str, ...] | str] = {}
    for container in to_check:
        digests = inspected[_image_id(container)]
        running_of[container.id] = digests if isinstance(digests, str) else \
            _digests_for(names[container.image], digests)
    wanted = [names[c.image] for c in to_check if not isinstance(running_of[c.id], str)
              and running_of[c.id]]
    answers = await _registry_digests(environment, wanted,
                                      limit=limit, max_age=max_age, timeout=timeout,
                                      credentials=credentials, transport=transport)
    statuses: dict[str, UpdateStatus] = {}
    for container in listed:
        def status(state: UpdateState, reason: str, running: tuple[str, ...] = (),
                   remote: str = "", container: Container = container) -> UpdateStatus:
            return UpdateStatus(state, reason, image=container.image, container=container.name,
                                environment=environment.name, running_digests=running,
                                registry_digest=remote)

        why = unreadable[container.id]
        if why is not None:
            statuses[container.id] = status("unknown", why)
            continue
        name = names[container.image]
        running = running_of[container.id]
        if isinstance(running, str):
            statuses[container.id] = status("unknown", running)
            continue
        if not running:
            statuses[container.id] = status("unknown", (
                f"its image has no digest from {name.repository_name}: built, imported or "
                "loaded on the engine rather than pulled"))
            continue
        answer = answers[str(name)]
        if isinstance(answer, RegistryError):
            statuses[container.id] = status("unknown", _describe_registry_error(answer),
                                            running)
        elif answer in running:
            statuses[container.id] = status("current", f"{name.tag} on {name.registry} is "
                                            f"still {_short(answer)}", running, answer)
        else:
            statuses[container.id] = status(
                "update-available", f"{name.tag} on {name.registry} is now {_short(answer)}; "
                f"the container runs {_short(running[0])}", running, answer)
    return statuses


async def _registry_digests(environment: Environment, names: Sequence[ImageName], *,
                            limit: asyncio.Semaphore, max_age: float, timeout: float,
                            credentials: CredentialLookup | None,
                            transport: httpx.AsyncBaseTransport | None
                            ) -> dict[str, str | RegistryError]:
    """The registry's digest (or error) for each of ``names``, by ``str(name)``."""
    now = time.monotonic()
    answers: dict[str, str | RegistryError] = {}
    ask: dict[str, ImageName] = {}
    for name in names:
        kept = _ANSWERS.get(str(name))
        if kept is not None and now - kept[0] < max_age:
            answers[str(name)] = kept[1]
        else:
            ask[str(name)] = name
    if not ask:
        return answers
    insecure = await _insecure_registries(environment, max_age=max_age or DEFAULT_MAX_AGE)
    hosts = {name.registry for name in ask.values() if _insecure_for(name, insecure)}

    async with RegistryClient(timeout=timeout, insecure=hosts, credentials=credentials,
                              transport=transport) as registry:
        async def lookup(key: str) -> str | RegistryError:
            try:
                return await registry.manifest_digest(ask[key])
            except RegistryError as error:
                return error

        found = await _bounded(limit, ask, lookup)
    asked_at = time.monotonic()
    for key, answer in found.items():
        _ANSWERS[key] = (asked_at, answer)
    return {**answers, **found}
