"""A registry client that asks one thing: the digest a tag names now.

``HEAD /v2/<repository>/manifests/<tag>`` with the manifest types the engines pull
(OCI index, Docker manifest list, Docker v2 manifest, OCI manifest) in ``Accept``;
the answer's ``Docker-Content-Digest`` is the digest a pull by that tag records in the
image's ``RepoDigests``. A registry that omits the header on ``HEAD`` is asked with
``GET`` and the digest computed from the manifest's bytes.

Authentication follows the registry's challenge (see :mod:`._auth`); tokens are kept
for their lifetime, per realm, service and scope, for the life of the client.

Registries are reached over HTTPS, except those the engine says are insecure
(``Secure: false`` in ``GET /info``'s ``RegistryConfig``, as a plain-HTTP registry
on loopback is): for those, HTTPS without certificate checks is tried first, then
plain HTTP, as Docker does. A registry on loopback is reached without the proxy the
environment names, which could not reach it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import time
from collections.abc import Callable, Collection, Iterator
from types import TracebackType
from typing import Final

import httpx

from ._auth import Challenge, Credentials, find_credentials, parse_challenge
from ._errors import ManifestNotFound, RegistryAuthError, RegistryError, RegistryUnreachable
from ._names import ImageName

__all__ = ["MANIFEST_TYPES", "CredentialLookup", "RegistryClient", "map_registry_errors"]

#: The manifest types asked for, most general first: a registry answers with the
#: index of a multi-platform image, which is what a pull by tag records.
MANIFEST_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_ACCEPT: Final = ", ".join(MANIFEST_TYPES)
#: How long a token with no ``expires_in`` is kept (the distribution spec's default).
_DEFAULT_TOKEN_LIFETIME: Final = 60.0

CredentialLookup = Callable[[ImageName], Credentials | None]


@contextlib.contextmanager
def map_registry_errors(registry: str) -> Iterator[None]:
    """Turn httpx's transport errors into :class:`RegistryError` s, in one place."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise RegistryUnreachable(f"no answer in time ({type(error).__name__})",
                                  registry=registry) from error
    except httpx.ConnectError as error:
        raise RegistryUnreachable(f"cannot connect: {error}", registry=registry) from error
    except (httpx.TransportError, httpx.DecodingError) as error:
        raise RegistryUnreachable(f"connection failed: {error or type(error).__name__}",
                                  registry=registry) from error


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Asks registries for the digest a tag names now.

    Parameters
    ----------
    timeout
        Seconds each request may take (connection included).
    insecure
        Registries (``host[:port]``) that may be reached over plain HTTP or with a
        certificate that cannot be verified.
    credentials
        Finds the credentials of an image's registry (default: the login files, see
        :func:`~._auth.find_credentials`).
    transport
        An httpx transport to send every request through (tests).

    Examples
    --------
    >>> async with RegistryClient(insecure={"127.0.0.1:5000"}) as registry:  # doctest: +SKIP
    ...     await registry.manifest_digest(parse_image_name("127.0.0.1:5000/app:1"))
    'sha256:9f86d08...'
    """

    def __init__(self, *, timeout: float = 5.0, insecure: Collection[str] = (),
                 credentials: CredentialLookup | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self.insecure = frozenset(insecure)
        self._credentials = credentials or find_credentials
        self._transport = transport
        self._clients: dict[tuple[bool, bool], httpx.AsyncClient] = {}
        self._tokens: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._closed = False

    def _client(self, *, verify: bool, direct: bool) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("this RegistryClient is closed")
        key = (verify, direct)
        if key not in self._clients:
            # direct: no proxy from the environment (a loopback registry is only here).
            self._clients[key] = httpx.AsyncClient(
                timeout=self.timeout, verify=verify, trust_env=not direct,
                transport=self._transport, follow_redirects=True)
        return self._clients[key]

    def _schemes(self, name: ImageName) -> list[tuple[str, bool]]:
        """``(scheme, verify)`` to try, in order."""
        if name.registry in self.insecure or name.api_host in self.insecure:
            return [("https", False), ("http", False)]
        return [("https", True)]

    async def manifest_digest(self, name: ImageName) -> str:
        """The digest the registry's manifest for ``name``'s tag has now.

        Raises
        ------
        ManifestNotFound
            The registry has no such repository or tag.
        RegistryAuthError
            Credentials are needed and missing, or refused.
        RegistryUnreachable
            The registry cannot be reached, or does not answer in time.
        RegistryError
            The registry answered with another error, or without a digest.
        ValueError
            ``name`` has no registry (a local image) or no tag.
        """
        if name.local:
            raise ValueError(f"{name} is a local image: no registry holds it")
        if not name.tag:
            raise ValueError(f"{name} has no tag to look up")
        schemes = self._schemes(name)
        for index, (scheme, verify) in enumerate(schemes):
            try:
                return await self._digest(name, scheme=scheme, verify=verify)
            except RegistryUnreachable:
                if index == len(schemes) - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _digest(self, name: ImageName, *, scheme: str, verify: bool) -> str:
        client = self._client(verify=verify, direct=_is_loopback(name.host))
        url = f"{scheme}://{name.api_host}/v2/{name.repository}/manifests/{name.tag}"
        headers = {"Accept": _ACCEPT}
        with map_registry_errors(name.registry):
            response = await client.head(url, headers=headers)
            if response.status_code == 401:
                headers["Authorization"] = await self._authorize(client, name, response)
                response = await client.head(url, headers=headers)
            _check_status(response, name)
            digest = str(response.headers.get("Docker-Content-Digest", ""))
            if digest:
                return digest
            # Some registries answer HEAD without the header: hash the manifest itself.
            async with client.stream("GET", url, headers=headers) as body:
                _check_status(body, name)
                content = await body.aread()
        return "sha256:" + hashlib.sha256(content).hexdigest()

    async def _authorize(self, client: httpx.AsyncClient, name: ImageName,
                         response: httpx.Response) -> str:
        """The ``Authorization`` value that answers the registry's challenge."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        credentials = self._credentials(name)
        if challenge.scheme == "basic":
            if credentials is None:
                raise RegistryAuthError(
                    f"{name.repository_name} needs a login (Basic auth) and none is "
                    "stored: run `podman login` or `docker login` for it",
                    registry=name.registry)
            return credentials.basic_header
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return "Bearer " + await self._token(client, name, challenge, credentials)
        raise RegistryAuthError(f"answered 401 with a challenge GhostPanel cannot answer: "
                                f"{response.headers.get('WWW-Authenticate')!r}",
                                registry=name.registry)

    async def _token(self, client: httpx.AsyncClient, name: ImageName,
                     challenge: Challenge, credentials: Credentials | None) -> str:
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        scope = challenge.params.get("scope") or f"repository:{name.repository}:pull"
        key = (realm, service, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        params = {"scope": scope, **({"service": service} if service else {})}
        headers = {} if credentials is None else {"Authorization": credentials.basic_header}
        answer = await client.get(realm, params=params, headers=headers)
        if answer.status_code in (401, 403):
            why = "refused the stored login" if credentials else \
                "refused an anonymous token (the repository is private: log in to it)"
            raise RegistryAuthError(f"the token service {realm} {why} for "
                                    f"{name.repository_name}", registry=name.registry)
        if answer.status_code >= 400:
            raise RegistryError(f"the token service {realm} answered {answer.status_code}",
                                registry=name.registry)
        try:
            document = answer.json()
            token = str(document.get("token") or document.get("access_token") or "")
            lifetime = float(document.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = "", 0.0
        if not token:
            raise RegistryError(f"the token service {realm} answered without a token",
                                registry=name.registry)
        # Renew a little early: a token that expires in flight fails the request.
        self._tokens[key] = (time.monotonic() + max(lifetime - 5, 0), token)
        return token

    async def aclose(self) -> None:
        """Close the connections; the client cannot be used after."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


def _check_status(response: httpx.Response, name: ImageName) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise ManifestNotFound(f"no manifest for {name.repository}:{name.tag}",
                               registry=name.registry)
    if status in (401, 403):
        raise RegistryAuthError(f"refused access to {name.repository_name} ({status})",
                                registry=name.registry)
    if status == 429:
        raise RegistryError("too many requests (429): the registry's rate limit",
                            registry=name.registry)
    raise RegistryError(f"answered {status} for {name.repository}:{name.tag}",
                        registry=name.registry)
