"""The low layer: one engine, HTTP only. Models and collections sit on top of it.

Only :meth:`EngineClient._request` sends HTTP; every transport or engine failure is
mapped to GhostPanel's errors in :func:`map_transport_errors` and :func:`raise_for_status`,
and an answer that is not the JSON an engine sends in :func:`decode_json`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode, urlsplit

import httpx

from .._exceptions import (
    AgentAuthError,
    EngineAPIError,
    EngineConnectionError,
    EngineProtocolError,
    EngineTimeout,
    EnvironmentClosed,
    PermissionDenied,
    api_error_for,
)
from ._endpoint import Endpoint, TLSConfig, is_loopback_host
from ._transport import BODY_EXTENSION, FIRST_BYTE_TIMEOUT, STREAM_EXTENSION, EngineTransport

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_RESPONSE_TIMEOUT", "DEFAULT_TIMEOUT",
           "MAX_API_VERSION", "EngineClient", "EngineVersion", "body_of", "decode_json"]

#: Highest Engine API version GhostPanel speaks (Bolt's compat server claims 1.43).
MAX_API_VERSION: Final = "1.43"
#: Oldest one it accepts; Podman 4 serves 1.41.
MIN_API_VERSION: Final = "1.40"
#: Seconds a non-streaming request may take, from sending it to the last byte of its answer.
DEFAULT_TIMEOUT: Final = 60.0
#: Seconds to open a connection (and finish the TLS handshake).
DEFAULT_CONNECT_TIMEOUT: Final = 3.0
#: Seconds from a request sent to the head of its answer. Engines answer at once (a
#: Podman ``/_ping`` in 0.5 ms, ``/version`` in 0.45 s); calls that legitimately take
#: longer (stop, wait) pass their own ``timeout``, which replaces this one.
DEFAULT_RESPONSE_TIMEOUT: Final = 10.0

EngineKind = Literal["podman", "docker", "bolt", "unknown"]
Params = Mapping[str, str | int | float | bool | None]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class EngineVersion:
    """What ``GET /version`` told about the engine.

    Attributes
    ----------
    kind
        ``"podman"``, ``"docker"``, ``"bolt"`` (Bolt's compat server) or ``"unknown"``.
    version
        The engine's own version (``4.3.1``).
    api_version
        The Engine API version used for every request (the lower of the engine's and
        GhostPanel's).
    os, arch
        The host's platform.
    attrs
        The raw ``/version`` answer.
    """

    kind: EngineKind
    version: str
    api_version: str
    os: str
    arch: str
    attrs: Mapping[str, Any]

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> EngineVersion:
        """Read the engine kind and negotiate the API version from ``/version``."""
        names = " ".join([str(attrs.get("Platform", {}).get("Name", ""))]
                         + [str(c.get("Name", "")) for c in attrs.get("Components") or []])
        return cls(kind=engine_kind(names),
                   version=str(attrs.get("Version", "")),
                   api_version=negotiate_api_version(str(attrs.get("ApiVersion") or "")),
                   os=str(attrs.get("Os", "")), arch=str(attrs.get("Arch", "")),
                   attrs=attrs)


def engine_kind(description: str) -> EngineKind:
    """The engine kind named in a ``Server`` header or ``/version`` component names."""
    lowered = description.lower()
    if "bolt" in lowered:
        return "bolt"
    if "podman" in lowered or "libpod" in lowered:
        return "podman"
    if "docker" in lowered or "engine" in lowered:
        return "docker"
    return "unknown"


def negotiate_api_version(server_api: str) -> str:
    """The lower of the engine's API version and GhostPanel's (1.40 when unreadable)."""
    try:
        return min(server_api or MIN_API_VERSION, MAX_API_VERSION, key=_version_tuple)
    except ValueError:
        return MIN_API_VERSION


@functools.lru_cache(maxsize=512)
def _url(text: str) -> httpx.URL:
    # Parsing a URL is most of the cost of building a request (20 of 26 µs); an engine
    # client sends the same few paths over and over.
    return httpx.URL(text)


#: Body of requests without one; shared, a ByteStream is immutable.
_NO_BODY: Final = httpx.ByteStream(b"")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def body_of(response: httpx.Response) -> bytes:
    """The body of a response that :meth:`EngineClient._request` returned read."""
    body = response.extensions.get(BODY_EXTENSION)
    return body if body is not None else response.content


def decode_json(body: bytes, *, endpoint: str, method: str, path: str) -> Any:
    """Decode an engine's JSON answer; :class:`EngineProtocolError` when it is not JSON.

    Engines answer every API path with JSON: anything else (an HTML page, a proxy's
    text) means the endpoint is not an engine, which the error says with what came.
    """
    try:
        return json.loads(body) if body else None
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bad UTF-8
        raise EngineProtocolError(
            f"{method} {path} answered with a body that is not JSON, so this is not an "
            f"engine: {_excerpt(body)}", endpoint=endpoint) from exc


def _excerpt(body: bytes) -> str:
    text = " ".join(body[:120].decode("utf-8", "replace").split())
    return repr(text + ("..." if len(body) > 120 else ""))


def raise_for_status(response: httpx.Response, body: bytes, *, method: str, path: str,
                     token: bool = False, endpoint: str = "") -> None:
    """Raise the :class:`EngineAPIError` subclass for an error ``response``.

    The message is the engine's own (its JSON ``message``, or an agent's RFC 9457
    ``detail``), falling back to the body text and then to the HTTP reason phrase, so an
    operator reads what the engine said. A 401 from an agent (``token``: the client sent
    one; or a ``WWW-Authenticate: Bearer`` challenge) is an :class:`AgentAuthError`
    saying whether the token was refused or missing. A 403 problem from the gateway
    (one naming the ``environment`` or the ``permission``) is a :class:`PermissionDenied`.
    """
    if response.status_code < 400:
        return
    message = ""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        message = str(payload.get("message") or payload.get("cause")
                      or payload.get("detail") or payload.get("title") or "")
    if not message:
        message = body.decode("utf-8", "replace").strip() or response.reason_phrase
    if response.status_code == 401 and (token or response.headers.get(
            "www-authenticate", "").lower().startswith("bearer")):
        where = f"the agent at {endpoint}" if endpoint else "the agent"
        said = f" ({_one_line(message)})" if message else ""
        if token and _below_a_path(endpoint):
            # Below a path: an environment behind the gateway, with the hub's token.
            raise AgentAuthError(401, (
                f"the gateway at {endpoint} refused the token{said}: the hub no longer "
                "accepts it (expired or revoked); restart your server from the hub's home "
                "page"), method=method, path=path)
        if token:
            text = (f"{where} refused the token{said}: it is wrong or was revoked; "
                    "register a valid one with `ghostpanel env add NAME URL --token T`")
        else:
            text = (f"{where} requires a token{said}; register the environment with "
                    "`ghostpanel env add NAME URL --token T`")
        raise AgentAuthError(401, text, method=method, path=path)
    if response.status_code == 403 and isinstance(payload, dict) and (
            "permission" in payload or "environment" in payload):
        # The gateway's refusal (RFC 9457 with the environment and the permission):
        # say it in the caller's terms rather than as an engine error.
        raise PermissionDenied(
            403, message, method=method, path=path,
            environment=_text_or_none(payload.get("environment")),
            permission=_text_or_none(payload.get("permission")))
    raise api_error_for(response.status_code, message, method=method, path=path)


def _below_a_path(endpoint: str) -> bool:
    """Whether a network ``endpoint`` is served below a URL path (behind the gateway)."""
    parts = urlsplit(endpoint)
    return parts.scheme != "unix" and bool(parts.path.strip("/"))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


class map_transport_errors:
    """Map every httpx transport error to :class:`EngineConnectionError` (one place).

    A class rather than ``@contextlib.contextmanager``: it wraps every request, and the
    generator-based form costs ~1 us more per use.
    """

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None or not isinstance(exc, httpx.TransportError):
            return
        endpoint = self.endpoint
        if isinstance(exc, httpx.TimeoutException):
            raise EngineTimeout(str(exc) or "the engine did not answer in time",
                                endpoint=endpoint) from exc
        if isinstance(exc, httpx.RemoteProtocolError):
            # The peer sent something that is not the HTTP an engine speaks.
            raise EngineProtocolError(str(exc) or "the answer is not valid HTTP",
                                      endpoint=endpoint) from exc
        if isinstance(exc, httpx.ReadError) and not str(exc):
            raise EngineConnectionError("connection lost mid-answer", endpoint=endpoint) from exc
        raise EngineConnectionError(str(exc) or type(exc).__name__, endpoint=endpoint) from exc


def quote_id(value: str) -> str:
    """Quote a container/image/volume id or name for use as one path segment."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty id or name, got {value!r}")
    if value in (".", ".."):  # a dot segment would be resolved away, leaving the collection
        raise ValueError(f"{value!r} is not an id or name")
    return quote(value, safe=":@")


def encode_filters(filters: Mapping[str, Any] | None) -> str | None:
    """Encode a ``filters`` mapping the way the Engine API expects (JSON of lists)."""
    if not filters:
        return None
    encoded: dict[str, list[str]] = {}
    for key, value in filters.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            encoded[key] = [str(v) for v in value]
        elif isinstance(value, bool):
            encoded[key] = ["true" if value else "false"]
        else:
            encoded[key] = [str(value)]
    return json.dumps(encoded)


class EngineClient:
    """HTTP access to one engine: version negotiation, requests, streams, errors.

    Parameters
    ----------
    url
        The engine endpoint (``unix:///run/podman/podman.sock``, ``tcp://host:2375``,
        ``https://host:2376``), or an agent's (``https://host:port``, ``h3://host:port``
        for HTTP/3).
    tls
        Certificates for ``https://`` and ``h3://`` endpoints (a pinned fingerprint too).
    token
        Bearer token of an agent (or the user's hub token for the gateway), sent as
        ``Authorization: Bearer TOKEN`` with every request, streams included. Refused
        on a plaintext ``tcp://``/``http://`` endpoint, where anyone on the path could
        read it, unless its host is the loopback (the hub's own gateway URL).
    transport
        Replaces the socket transport, e.g. :class:`httpx.MockTransport` in unit tests.
    timeout
        Seconds a non-streaming request may take, from sending it to the last byte of
        the answer. Streams (logs, events, stats, pulls) have no limit once their answer
        has begun: Podman sends a stats sample only every 5 s.
    connect_timeout
        Seconds to wait for the engine to accept a connection (and finish TLS).
    response_timeout
        Seconds to wait for the head of an answer once a request is sent: a host that
        accepts connections but never answers fails this fast (its first request is the
        version negotiation). A call's own ``timeout`` (``stop``, ``wait``) replaces it.
        Streams wait for their head without limit, as Podman sends a log follow's head
        only with the first line.
    """

    def __init__(self, url: str, *, tls: TLSConfig | None = None,
                 token: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 response_timeout: float = DEFAULT_RESPONSE_TIMEOUT) -> None:
        for label, value in (("timeout", timeout), ("connect_timeout", connect_timeout),
                             ("response_timeout", response_timeout)):
            check_seconds(label, value)
        self.endpoint = Endpoint.parse(url, tls=tls)
        self.url = url
        if token is not None:
            check_token(token)
            if self.endpoint.scheme == "tcp" and not is_loopback_host(self.endpoint.host):
                raise ValueError(f"a token is sent only over TLS (or to this machine's "
                                 f"loopback): use https:// or h3:// rather than {url!r}")
        self._has_token = token is not None
        #: Seconds a non-streaming request may take. Calls whose answer may be slow to
        #: begin (a prune, a large upload's extraction) pass it as their ``timeout``, so
        #: the short ``response_timeout`` does not apply to them.
        self.timeout = timeout
        self._transport = transport or _transport_for(self.endpoint, connect_timeout)
        # httpx's timeout keys, plus the first-byte limit this package's transport reads.
        self._timeout = {"connect": connect_timeout, "read": timeout, "write": timeout,
                         "pool": timeout, FIRST_BYTE_TIMEOUT: response_timeout}
        # Streams wait for their head without limit: Podman 4.3 sends a log follow's head
        # only with the container's first output. Every stream comes after the version
        # negotiation, which a silent host fails within response_timeout.
        self._stream_timeout = {"connect": connect_timeout, "read": None, "write": timeout,
                                "pool": timeout, FIRST_BYTE_TIMEOUT: None}
        self._base = ("https://" if self.endpoint.scheme in ("https", "h3") else "http://") \
            + self.endpoint.host_header
        # An environment behind the gateway lives below a path: its Engine API under
        # PATH/engine, its own REST API (/api/v1) under PATH (docs/gateway-client.md).
        # At the root (engines, agents) both bases are the bare authority.
        self._api_base = self._base + self.endpoint.path
        self._engine_base = self._api_base + ("/engine" if self.endpoint.path else "")
        self._host_header = self.endpoint.host_header
        # Built once: every request carries it (the agent checks each one).
        self._base_headers = {"Host": self._host_header}
        if token is not None:
            self._base_headers["Authorization"] = f"Bearer {token}"
        self._version: EngineVersion | None = None
        self._api_version: str | None = None
        self._kind: EngineKind = "unknown"
        self._negotiating: asyncio.Future[None] | None = None
        self._fetching_version: asyncio.Future[None] | None = None
        self._closed = False

    # -- version ---------------------------------------------------------------------

    async def api_version(self) -> str:
        """The Engine API version every request uses, negotiated once."""
        if self._api_version is None:
            if self._negotiating is None:
                self._negotiating = asyncio.ensure_future(self._negotiate())
                self._negotiating.add_done_callback(_mark_retrieved)
            # Kept here: a concurrent caller that failed with us may reset the attribute.
            negotiating = self._negotiating
            try:
                await asyncio.shield(negotiating)
            except BaseException:
                if negotiating.done() and self._negotiating is negotiating:
                    self._negotiating = None  # a failed negotiation is retried next time
                raise
        assert self._api_version is not None
        return self._api_version

    async def kind(self) -> EngineKind:
        """``"podman"``, ``"docker"``, ``"bolt"`` or ``"unknown"`` (negotiated once)."""
        await self.api_version()
        return self._kind

    async def version(self) -> EngineVersion:
        """The engine's version facts from ``GET /version`` (fetched once)."""
        if self._version is None:
            if self._fetching_version is None:
                self._fetching_version = asyncio.ensure_future(self._fetch_version())
                self._fetching_version.add_done_callback(_mark_retrieved)
            try:
                await asyncio.shield(self._fetching_version)
            except BaseException:
                if self._fetching_version.done():
                    self._fetching_version = None  # a failed fetch is retried next time
                raise
        assert self._version is not None
        return self._version

    async def _fetch_version(self) -> None:
        try:
            response = await self._request("GET", "/version", versioned=False)
        except EngineAPIError as error:
            not_an_engine = _not_an_engine(error, self.url)
            if not_an_engine is None:
                raise
            raise not_an_engine from error
        attrs = decode_json(body_of(response), endpoint=self.url, method="GET",
                            path="/version")
        if not isinstance(attrs, dict) or not ("ApiVersion" in attrs or "Version" in attrs):
            raise EngineProtocolError(
                f"GET /version answered {_excerpt(body_of(response))}, not an engine's "
                "version", endpoint=self.url)
        self._version = EngineVersion.from_attrs(attrs)
        if self._api_version is None:
            self._api_version, self._kind = self._version.api_version, self._version.kind

    async def _negotiate(self) -> None:
        # /_ping carries Api-Version and Server headers and costs 0.5 ms; Podman takes
        # ~0.45 s to answer /version. Fall back to /version for engines that send no
        # Api-Version header (Bolt's partial compat server may not).
        try:
            response = await self._request("GET", "/_ping", versioned=False)
        except EngineAPIError as error:
            not_an_engine = _not_an_engine(error, self.url)
            if not_an_engine is None:
                raise
            raise not_an_engine from error
        server_api = response.headers.get("api-version")
        if server_api:
            self._api_version = negotiate_api_version(server_api)
            self._kind = engine_kind(response.headers.get("server", ""))
        else:
            await self.version()

    # -- requests --------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, params: Params | None = None,
                       json_body: Any = None, content: bytes | AsyncIterator[bytes] | None = None,
                       headers: Mapping[str, str] | None = None, stream: bool = False,
                       timeout: float | None = None, versioned: bool = True) -> httpx.Response:
        """Send one request to the engine; the only method here that touches HTTP.

        Returns the response with its body read, or, with ``stream=True``, a response
        whose body is read by :meth:`iter_body`. Error statuses raise the matching
        :class:`EngineAPIError`; transport failures raise :class:`EngineConnectionError`.
        """
        if self._closed:
            raise EnvironmentClosed(f"the environment at {self.url} was closed; connect again")
        if versioned:
            path = f"/v{self._api_version or await self.api_version()}{path}"
        url = (self._api_base if path.startswith("/api/") else self._engine_base) + path
        if params:
            query = urlencode({k: _param(v) for k, v in params.items() if v is not None})
            if query:
                url += "?" + query
        request_headers = dict(self._base_headers)
        body: bytes | AsyncIterator[bytes] | None = content
        if json_body is not None:
            body = json.dumps(json_body).encode()
            request_headers["Content-Type"] = "application/json"
        if headers:
            request_headers.update(headers)
        extensions: dict[str, Any] = {
            "timeout": self._stream_timeout if stream else (
                self._timeout if timeout is None else
                {**self._timeout, "read": timeout})}
        if timeout is not None:
            # A call that takes long by nature (stop's grace period, wait) also waits
            # that long for its answer to begin.
            extensions["timeout"] = {**extensions["timeout"], FIRST_BYTE_TIMEOUT: timeout}
        if stream:
            extensions[STREAM_EXTENSION] = True
        if body is None or isinstance(body, bytes):
            # Passing the body as a ByteStream skips httpx's content encoding and
            # default-header pass (about 13 of the 15 us httpx.Request costs here); the
            # one header that pass would add is set here, as httpx sets it.
            if body or method in _BODY_METHODS:
                request_headers["Content-Length"] = str(len(body or b""))
            request = httpx.Request(method, _url(url), headers=request_headers,
                                    stream=httpx.ByteStream(body) if body else _NO_BODY,
                                    extensions=extensions)
        else:
            request = httpx.Request(method, _url(url), headers=request_headers,
                                    content=body, extensions=extensions)
        with map_transport_errors(self.url):
            response = await self._transport.handle_async_request(request)
            if stream and response.status_code < 400:
                return response
            raw = response.extensions.get(BODY_EXTENSION)
            if raw is None:
                raw = await response.aread()
        raise_for_status(response, raw, method=method, path=path, token=self._has_token,
                         endpoint=self.url)
        return response

    async def iter_body(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """Iterate a streamed response body, mapping a broken connection to our errors."""
        with map_transport_errors(self.url):
            try:
                if response.is_stream_consumed:  # a transport that read the body already
                    if response.content:
                        yield response.content
                else:
                    async for piece in response.aiter_raw():
                        yield piece
            finally:
                await response.aclose()

    async def get_json(self, path: str, *, params: Params | None = None,
                       timeout: float | None = None) -> Any:
        """``GET`` a path and decode its JSON body."""
        body = body_of(await self._request("GET", path, params=params, timeout=timeout))
        return decode_json(body, endpoint=self.url, method="GET", path=self._api_path(path))

    async def post_json(self, path: str, *, params: Params | None = None, body: Any = None,
                        timeout: float | None = None) -> Any:
        """``POST`` (with an optional JSON body) and decode the JSON answer, if any."""
        answer = body_of(await self._request("POST", path, params=params, json_body=body,
                                             timeout=timeout))
        return decode_json(answer, endpoint=self.url, method="POST",
                           path=self._api_path(path))

    def _api_path(self, path: str) -> str:
        """``path`` as it was sent, with its API version prefix (for error messages)."""
        return f"/v{self._api_version}{path}" if self._api_version else path

    async def aclose(self) -> None:
        """Close the connections; the client refuses further requests."""
        self._closed = True
        await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._closed

    @property
    def is_agent(self) -> bool:
        """Whether this client reaches a GhostPanel agent rather than a bare engine.

        Only an agent takes a bearer token or speaks HTTP/3 (``h3://``); a plain
        ``https://`` engine (Docker's TLS port) does neither. Callers use it to reach
        what only an agent serves (``/api/v1``: the exec WebSocket, its GPUs).
        """
        return self._has_token or self.endpoint.scheme == "h3"


def _not_an_engine(error: EngineAPIError, endpoint: str) -> EngineProtocolError | None:
    """The :class:`EngineProtocolError` for ``error`` when no engine would answer so.

    Every engine serves ``/_ping`` and ``/version``: a 404 or 405 there, or an HTML page,
    comes from a web server, and would otherwise read as "no such object". Other error
    statuses (an engine still starting answers 503) stay the engine's own.
    """
    if error.status_code in (404, 405) or error.message.lstrip()[:1] == "<":
        return EngineProtocolError(
            f"{error.method} {error.path} answered {error.status_code} "
            f"{_excerpt(error.message.encode())}: not an engine", endpoint=endpoint)
    return None


def _transport_for(endpoint: Endpoint, connect_timeout: float) -> httpx.AsyncBaseTransport:
    """The transport that speaks to ``endpoint``: HTTP/1.1 over a socket, or HTTP/3."""
    if endpoint.scheme == "h3":
        # Imported here: only h3:// environments pay for importing aioquic.
        from ._h3_transport import H3Transport

        return H3Transport(endpoint, connect_timeout=connect_timeout)
    return EngineTransport(endpoint, connect_timeout=connect_timeout)


def check_token(token: str) -> None:
    """Refuse a token that cannot travel in an ``Authorization`` header (``ValueError``).

    Printable ASCII without spaces: a newline would let the token end the header and
    inject others, and an empty token reads as "no credentials".
    """
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if not token or not token.isascii() or not all(33 <= ord(c) < 127 for c in token):
        raise ValueError("a token is one word of printable ASCII (no spaces or control "
                         "characters)")


def check_seconds(label: str, value: float) -> None:
    """Refuse a timeout that is not a positive number of seconds (``ValueError``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")


def _param(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mark_retrieved(future: asyncio.Future[None]) -> None:
    """Read a shared task's outcome so that asyncio does not log "Task exception was never
    retrieved" when every caller that awaited it was cancelled first (a fan-out deadline):
    the next caller still sees the failure, and retries."""
    if not future.cancelled():
        future.exception()
