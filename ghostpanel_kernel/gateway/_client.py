"""A small client of the gateway-wide API, for code running inside a hub session.

Inside a JupyterHub single-user server (a notebook kernel, a terminal) the hub gives
the user's own API token in ``JUPYTERHUB_API_TOKEN``; the gateway takes it as
``Authorization: token T``. :class:`HubGateway` finds the gateway and the token in the
process environment, :class:`GatewayClient` asks the gateway who the caller is
(``/api/v1/whoami``), which environments they may see (``/api/v1/environments``) and,
for hub admins, what the audit log holds (``/api/v1/audit``). See
``docs/gateway-client.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from .._exceptions import AgentAuthError, EngineProtocolError, PermissionDenied
from ..engine._client import check_token, decode_json, map_transport_errors, raise_for_status

__all__ = ["GATEWAY_PREFIX", "AuditEntry", "GatewayClient", "GatewayEnvironment",
           "HubGateway", "WhoAmI"]

#: Where the hub's proxy serves the gateway (a hub-managed service named ``ghostpanel``).
GATEWAY_PREFIX: Final = "/services/ghostpanel/"
#: Values of ``GHOSTPANEL_GATEWAY_URL`` that turn the gateway off in a hub session.
_OFF: Final = frozenset({"off", "none", "0", "false", "no"})
#: Seconds a gateway-wide call may take (they are database reads on the gateway).
DEFAULT_TIMEOUT: Final = 10.0


def _with_port(url: str) -> str:
    """``url`` with its port spelled out: the engine client's default port is 2375."""
    parts = urlsplit(url)
    if parts.port is not None or not parts.hostname:
        return url
    port = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def _gateway_from_api_url(api_url: str) -> str | None:
    """``http://HOST:PORT/PREFIX/hub/api`` -> ``http://HOST:PORT/PREFIX/services/ghostpanel/``."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = parts.path.rstrip("/")
    base = path[:-len("/hub/api")] if path.endswith("/hub/api") else ""
    return urlunsplit(parts._replace(path=base + GATEWAY_PREFIX, query="", fragment=""))


@dataclass(frozen=True)
class HubGateway:
    """Where the gateway is and the token that speaks for this hub user.

    Parameters
    ----------
    url
        The gateway's base URL, ending in ``/`` (``http://127.0.0.1:8000/services/ghostpanel/``),
        with its port spelled out.
    token
        The user's hub API token. Never shown: not in ``repr``.
    user
        The hub user this session belongs to (``JUPYTERHUB_USER``), when known.

    Examples
    --------
    >>> gateway = HubGateway("http://127.0.0.1:8000/services/ghostpanel/", "secret")
    >>> gateway.environment_url("prod")
    'http://127.0.0.1:8000/services/ghostpanel/env/prod'
    """

    url: str
    token: str = field(repr=False)
    user: str | None = None

    def __post_init__(self) -> None:
        check_token(self.token)
        url = _with_port(self.url if self.url.endswith("/") else self.url + "/")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"the gateway URL must be http:// or https://, not {self.url!r}")
        object.__setattr__(self, "url", url)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HubGateway | None:
        """The gateway of this hub session, or None outside one.

        A hub session is a process the hub started for a user (a single-user server and
        the kernels and terminals it starts): ``JUPYTERHUB_API_TOKEN`` is set and
        ``JUPYTERHUB_SERVICE_NAME`` is not (a hub-managed service, such as the gateway
        itself, has a token of its own and reads the registry directly). The URL is
        ``GHOSTPANEL_GATEWAY_URL`` (``off`` turns the gateway off), else derived from
        ``JUPYTERHUB_API_URL``: ``http://HOST:PORT/hub/api`` gives
        ``http://HOST:PORT/services/ghostpanel/``.

        Examples
        --------
        >>> HubGateway.from_environ({"JUPYTERHUB_API_TOKEN": "t",
        ...                          "JUPYTERHUB_API_URL": "http://127.0.0.1:8000/hub/api"})
        HubGateway(url='http://127.0.0.1:8000/services/ghostpanel/', user=None)
        >>> HubGateway.from_environ({}) is None
        True
        """
        values = os.environ if environ is None else environ
        token = values.get("JUPYTERHUB_API_TOKEN", "")
        if not token or values.get("JUPYTERHUB_SERVICE_NAME"):
            return None
        configured = values.get("GHOSTPANEL_GATEWAY_URL", "").strip()
        if configured.lower() in _OFF:
            return None
        url = configured or _gateway_from_api_url(values.get("JUPYTERHUB_API_URL", ""))
        if not url:
            return None
        return cls(url, token, user=values.get("JUPYTERHUB_USER") or None)

    def environment_url(self, name: str) -> str:
        """The base URL of environment ``name`` behind the gateway (no trailing slash)."""
        return f"{self.url}env/{name}"


@dataclass(frozen=True)
class WhoAmI:
    """The caller as the gateway sees them (``GET /api/v1/whoami``).

    Attributes
    ----------
    name, kind
        The hub user (or service) name, and ``"user"`` or ``"service"``.
    teams
        The user's hub groups.
    admin
        The hub's admin flag: every permission everywhere, and the audit log.
    permissions
        Environment name -> the permissions held there (empty where none).
    """

    name: str
    kind: str
    teams: frozenset[str]
    admin: bool
    permissions: Mapping[str, frozenset[str]]

    def may(self, permission: str, environment: str) -> bool:
        """Whether the caller holds ``permission`` on ``environment``."""
        return self.admin or permission in self.permissions.get(environment, frozenset())


@dataclass(frozen=True)
class GatewayEnvironment:
    """One environment the caller may see through the gateway.

    Attributes
    ----------
    name
        Its name (``prod``): the gateway serves it at ``env/{name}/``.
    kind
        ``"local"`` (an engine socket on the gateway's host) or ``"agent"``.
    labels
        Its free labels (``region``...).
    permissions
        What the caller may do there (``read``, ``lifecycle``...).
    """

    name: str
    kind: str
    labels: Mapping[str, str]
    permissions: frozenset[str]


@dataclass(frozen=True)
class AuditEntry:
    """One row of the gateway's audit log, as ``GET /api/v1/audit`` gives it.

    Attributes
    ----------
    sequence
        The row's place in the hash chain.
    time
        When the request was judged (UTC), or None when the row gave no time.
    user, environment, action, target
        Who did what (``container.stop``) to which object, where.
    result
        ``"allowed"``, ``"denied"`` or ``"failed"``.
    status
        The HTTP status answered.
    request_id
        The request's ``X-Request-Id``.
    detail
        Why it was refused or failed, when that was recorded.
    """

    sequence: int | None
    time: datetime | None
    user: str
    environment: str
    action: str
    target: str
    result: str
    status: int | None
    request_id: str
    detail: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Read one audit row from the gateway's JSON (unknown members are ignored)."""
        sequence = next((data[key] for key in ("seq", "sequence", "id")
                         if isinstance(data.get(key), int)), None)
        moment = next((data[key] for key in ("time", "timestamp", "at", "created")
                       if data.get(key)), None)
        status = data.get("status")
        detail = data.get("detail")
        return cls(sequence=sequence, time=parse_time(moment),
                   user=str(data.get("user") or ""),
                   environment=str(data.get("environment") or ""),
                   action=str(data.get("action") or ""), target=str(data.get("target") or ""),
                   result=str(data.get("result") or ""),
                   status=status if isinstance(status, int) else None,
                   request_id=str(data.get("request_id") or ""),
                   detail=None if detail is None else str(detail))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z")
                                            else value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


class GatewayClient:
    """The gateway-wide API (``/api/v1/whoami``, ``environments``, ``audit``), async.

    Parameters
    ----------
    gateway
        Where the gateway is and the user's token (:meth:`HubGateway.from_environ`).
    transport
        An httpx transport to use instead of the network (``httpx.MockTransport`` in
        tests).
    timeout
        Seconds one call may take.

    Notes
    -----
    Its calls raise :class:`PermissionDenied` for a 403 (the audit log is for hub
    admins), :class:`AgentAuthError` for a 401 (the hub did not accept the token) and
    :class:`EngineConnectionError` when the gateway cannot be reached.

    Examples
    --------
    >>> async with GatewayClient(HubGateway.from_environ()) as gateway:  # doctest: +SKIP
    ...     me = await gateway.whoami()
    ...     names = [env.name for env in await gateway.environments()]
    """

    def __init__(self, gateway: HubGateway, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.gateway = gateway
        # trust_env=False: the gateway is the hub's, reached directly; a proxy named in
        # the environment must never see the user's token.
        self._http = httpx.AsyncClient(
            transport=transport, timeout=timeout, trust_env=False,
            headers={"Authorization": f"token {gateway.token}",
                     "Accept": "application/json"})

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = self.gateway.url + path
        if params:
            url += "?" + urlencode(params)
        with map_transport_errors(self.gateway.url):
            response = await self._http.get(url)
        body = response.content
        where = "/" + path
        if response.status_code == 401:
            raise AgentAuthError(
                401, f"the gateway at {self.gateway.url} did not accept this session's hub "
                     "token (JUPYTERHUB_API_TOKEN): it expired or was revoked; restart "
                     "your server from the hub's home page", method="GET", path=where)
        try:
            raise_for_status(response, body, method="GET", path=where, token=True,
                             endpoint=self.gateway.url)
        except PermissionDenied as denied:
            if denied.environment is not None:
                raise
            # A gateway-wide route (the audit log) is about no environment.
            raise PermissionDenied(403, denied.message, method="GET", path=where,
                                   environment="the gateway",
                                   permission=denied.permission) from None
        return decode_json(body, endpoint=self.gateway.url, method="GET", path=where)

    def _expect(self, value: Any, kind: type, path: str) -> Any:
        if not isinstance(value, kind):
            raise EngineProtocolError(f"GET /{path} answered {type(value).__name__}, not a "
                                      f"{kind.__name__}: is {self.gateway.url} the GhostPanel "
                                      "gateway?", endpoint=self.gateway.url)
        return value

    async def whoami(self) -> WhoAmI:
        """Who the token speaks for, their teams and their permissions per environment."""
        data = self._expect(await self._get("api/v1/whoami"), dict, "api/v1/whoami")
        permissions = data.get("permissions") or {}
        return WhoAmI(name=str(data.get("name") or ""), kind=str(data.get("kind") or "user"),
                      teams=frozenset(str(team) for team in data.get("teams") or ()),
                      admin=data.get("admin") is True,
                      permissions={str(env): frozenset(str(p) for p in perms or ())
                                   for env, perms in dict(permissions).items()})

    async def environments(self) -> list[GatewayEnvironment]:
        """The environments the caller holds any permission on, in the gateway's order."""
        data = self._expect(await self._get("api/v1/environments"), list,
                            "api/v1/environments")
        return [GatewayEnvironment(
            name=str(item["name"]), kind=str(item.get("kind") or "local"),
            labels={str(k): str(v) for k, v in dict(item.get("labels") or {}).items()},
            permissions=frozenset(str(p) for p in item.get("permissions") or ()))
            for item in data if isinstance(item, dict) and item.get("name")]

    async def audit(self, *, user: str | None = None, environment: str | None = None,
                    since: datetime | None = None, limit: int | None = None
                    ) -> list[AuditEntry]:
        """The audit log's entries, oldest first (hub admins only).

        Parameters
        ----------
        user, environment
            Only this user's, only this environment's.
        since
            Only entries at or after this moment (naive means UTC).
        limit
            At most this many (the gateway caps it at 1000).
        """
        params = {key: value for key, value in (
            ("user", user), ("environment", environment),
            ("since", None if since is None else _iso(since)),
            ("limit", None if limit is None else str(limit))) if value}
        data = self._expect(await self._get("api/v1/audit", params), list, "api/v1/audit")
        return [AuditEntry.from_json(item) for item in data if isinstance(item, dict)]

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
