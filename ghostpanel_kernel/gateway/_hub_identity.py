"""Who is asking: API tokens and the browser's OAuth cookie, checked through JupyterHub.

Every request to the gateway carries one of two credentials (``docs/gateway.md``):

- ``Authorization: token T`` or ``Authorization: Bearer T`` with a hub API token (the
  docker CLI sends it from ``HttpHeaders``; a single-user server has the user's own in
  ``JUPYTERHUB_API_TOKEN``). The hub says whose token it is (``GET /hub/api/user``,
  through :class:`jupyterhub.services.auth.HubAuth`).
- the gateway's own login cookie, set at the end of the hub's OAuth flow: an
  unauthenticated browser ``GET`` is sent to the hub's authorize page with a state
  cookie, the hub sends it back to ``PREFIX/oauth_callback`` with a code, the gateway
  trades the code for a token (:meth:`HubOAuth.token_for_code`) and keeps the token in
  a signed, ``HttpOnly``, ``SameSite=Lax`` cookie. The cookie authenticates only safe
  requests (``GET``, ``HEAD``) and WebSocket handshakes from the gateway's own origin:
  a change always needs the token in a header, so a page on another site cannot make a
  logged-in browser change anything (no cross-site request forgery).

The hub's answers are cached for :data:`CACHE_MAX_AGE` seconds. HubAuth caches for
300 s by default, and 0 means *forever*: a revoked role or token would keep working
that long. With 5 s, a revocation takes effect within 10 s whatever the timing.

Tests without a hub pass an :data:`IdentitySource` (a coroutine function token ->
identity) to the app's constructor instead; nothing a deployment can set selects it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

from ._identity import Identity

__all__ = ["CACHE_MAX_AGE", "HubCheckFailed", "HubLogin", "IdentitySource", "LoginStep",
           "cookie_values", "identity_from_model", "token_from_header"]

#: Seconds the hub's answer about a token is trusted (HubAuth's ``cache_max_age``).
CACHE_MAX_AGE: Final = 5

#: Seconds a started login (its state cookie) stays valid.
_STATE_MAX_AGE: Final = 600

IdentitySource = Callable[[str], Awaitable[Identity | None]]
"""Who a token belongs to, or None when nobody: the hub in production, a table in tests."""


class HubCheckFailed(Exception):
    """The hub could not be asked about a token (down, or it refused the gateway)."""


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: token T`` or ``Bearer T`` header, else None.

    Examples
    --------
    >>> token_from_header("Bearer abc"), token_from_header("token abc")
    ('abc', 'abc')
    >>> token_from_header("Basic dXNlcg==") is None
    True
    """
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in ("token", "bearer") or not token or " " in token:
        return None
    return token


def identity_from_model(model: Mapping[str, Any]) -> Identity:
    """The :class:`Identity` of a hub ``GET /hub/api/user`` answer (user or service).

    Examples
    --------
    >>> identity_from_model({"kind": "user", "name": "ada", "groups": ["blue"],
    ...                      "admin": False, "scopes": ["read:users:name!user=ada"]}).teams
    frozenset({'blue'})
    """
    kind = str(model.get("kind") or "user")
    return Identity(
        name=str(model["name"]),
        groups=frozenset(str(group) for group in model.get("groups") or ()),
        # The model carries "admin" only when the token may read it; a missing flag
        # is never taken as admin.
        admin=model.get("admin") is True,
        scopes=frozenset(str(scope) for scope in model.get("scopes") or ()),
        kind=kind,
    )


def cookie_values(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's cookies, name -> value (unparsable ``Cookie`` headers are ignored)."""
    values: dict[str, str] = {}
    for name, raw in headers:
        if name.lower() != b"cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except CookieError:
            continue
        values.update({key: morsel.value for key, morsel in jar.items()})
    return values


@dataclass(frozen=True)
class LoginStep:
    """An answer of the OAuth flow: a redirect and the cookies to set with it."""

    location: str
    set_cookies: tuple[str, ...]


class HubLogin:
    """Tokens and the OAuth login checked through the hub (see the module notes).

    Parameters
    ----------
    prefix
        The gateway's URL prefix, ``/services/ghostpanel/`` (cookies are scoped to it).
    cookie_secret
        The key that signs the login and state cookies.
    cache_max_age
        Seconds a hub answer is trusted; at least 1 (HubAuth reads 0 as forever).
    hub_auth
        A configured ``HubOAuth``; by default one made from the ``JUPYTERHUB_*``
        variables the hub gives its services.

    Examples
    --------
    >>> login = HubLogin(prefix="/services/ghostpanel/", cookie_secret=b"k" * 32)
    ...                                                          # doctest: +SKIP
    >>> await login.identity_for_token("6f1c...")                # doctest: +SKIP
    Identity(name='ada', groups=frozenset({'blue'}), ...)
    """

    def __init__(self, *, prefix: str, cookie_secret: bytes,
                 cache_max_age: int = CACHE_MAX_AGE, hub_auth: Any = None) -> None:
        if not 1 <= cache_max_age <= CACHE_MAX_AGE:
            raise ValueError(f"cache_max_age must be 1 to {CACHE_MAX_AGE} seconds (0 would "
                             f"make the hub's answers last forever), not {cache_max_age}")
        if hub_auth is None:
            from jupyterhub.services.auth import HubOAuth  # type: ignore[import-untyped]

            hub_auth = HubOAuth(cache_max_age=cache_max_age, base_url=prefix)
        self.hub_auth = hub_auth
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._secret = cookie_secret
        self.callback_path = self.prefix + "oauth_callback"

    # -- names -----------------------------------------------------------------------

    @property
    def cookie_name(self) -> str:
        """The login cookie's name: the gateway's OAuth client id, as HubOAuth names it."""
        return str(self.hub_auth.oauth_client_id or "ghostpanel-gateway")

    @property
    def state_cookie_name(self) -> str:
        """The cookie that holds a login's state while the hub asks the user."""
        return self.cookie_name + "-oauth-state"

    # -- tokens ----------------------------------------------------------------------

    async def identity_for_token(self, token: str) -> Identity | None:
        """Who ``token`` belongs to according to the hub (cached), or None.

        Raises
        ------
        HubCheckFailed
            The hub did not answer, or refused the gateway's own token.
        """
        from tornado.web import HTTPError

        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as error:
            raise HubCheckFailed(str(error.log_message or error)) from error
        if not model:
            return None
        return identity_from_model(model)

    def cookie_token(self, cookies: Mapping[str, str]) -> str | None:
        """The hub token kept in the login cookie, if it is there and signed by us."""
        value = cookies.get(self.cookie_name)
        return None if value is None else self._unsign(self.cookie_name, value, 30)

    # -- the OAuth flow --------------------------------------------------------------

    def start(self, next_url: str) -> LoginStep:
        """Send a browser to the hub's authorize page; ``next_url`` is where it returns."""
        state = str(self.hub_auth.generate_state(self._safe_next(next_url)))
        query = urlencode({"client_id": self.cookie_name,
                           "redirect_uri": self.hub_auth.oauth_redirect_uri,
                           "response_type": "code", "state": state})
        location = f"{self.hub_auth.oauth_authorization_url}?{query}"
        cookie = self._cookie(self.state_cookie_name,
                              self._sign(self.state_cookie_name, state), _STATE_MAX_AGE)
        return LoginStep(location, (cookie,))

    async def finish(self, query_string: bytes, cookies: Mapping[str, str]) -> LoginStep:
        """Complete a login at the callback: check the state, trade the code for a token.

        Raises
        ------
        ValueError
            No code, or a state that does not match this browser's state cookie.
        HubCheckFailed
            The hub refused the code.
        """
        from tornado.web import HTTPError

        query = parse_qs(query_string.decode("latin-1"))
        code = (query.get("code") or [""])[0]
        state = (query.get("state") or [""])[0]
        raw = cookies.get(self.state_cookie_name)
        expected = None if raw is None else self._unsign(self.state_cookie_name, raw, 1)
        if not code or not state or expected is None or not secrets.compare_digest(
                state, expected):
            raise ValueError("the login's state does not match this browser's: start again "
                             f"at {self.prefix}")
        try:
            token = await self.hub_auth.token_for_code(code, sync=False)
        except HTTPError as error:
            raise HubCheckFailed(str(error.log_message or error)) from error
        next_url = self._safe_next(self.hub_auth.get_next_url(state))
        self.hub_auth.clear_oauth_state(state)
        return LoginStep(next_url, (
            self._cookie(self.cookie_name, self._sign(self.cookie_name, token), None),
            self._cookie(self.state_cookie_name, "", 0)))

    def _safe_next(self, url: object) -> str:
        # Only a path inside the gateway: never an open redirect to another site.
        if isinstance(url, str) and url.startswith(self.prefix) and "//" not in url \
                and "\\" not in url:
            return url
        return self.prefix

    # -- cookies ---------------------------------------------------------------------

    def _sign(self, name: str, value: str) -> str:
        from tornado.web import create_signed_value

        return create_signed_value(self._secret, name, value).decode("ascii")

    def _unsign(self, name: str, value: str, max_age_days: float) -> str | None:
        from tornado.web import decode_signed_value

        decoded = decode_signed_value(self._secret, name, value, max_age_days=max_age_days)
        return None if decoded is None else decoded.decode("utf-8", "replace")

    def _cookie(self, name: str, value: str, max_age: int | None) -> str:
        parts = [f"{name}={value}", f"Path={self.prefix}", "HttpOnly", "SameSite=Lax"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
            if max_age == 0:
                parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        return "; ".join(parts)

