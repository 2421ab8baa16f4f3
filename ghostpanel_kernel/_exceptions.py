"""GhostPanel's exceptions, in one module that imports nothing heavy.

Every error the library raises on purpose is one of these; anything else leaving it
is a bug. The tree, one root split by cause (as httpx draws its own)::

    GhostPanelError
    ├── EngineConnectionError      the engine could not be reached (socket absent, refused,
    │   │                          connection lost, a request whose outcome is unknown)
    │   ├── EngineTimeout          no connection, or no answer, in time
    │   └── EngineProtocolError    the peer answered, but not as an engine does (an HTML
    │                              page, not HTTP at all, a body that is not JSON)
    ├── EngineAPIError             the engine answered with an error status
    │   ├── NotFound               404
    │   ├── Conflict               409
    │   ├── AgentAuthError         401 from an agent: its token was refused or missing
    │   └── PermissionDenied       403 from the gateway: the caller's role does not allow it
    ├── EnvironmentClosed          the environment was closed (``aclose``) and then used
    ├── EnvironmentNotFound        no environment of that name is registered
    └── BoltfileError              a Boltfile that cannot be loaded (path, line, column)

Library misuse (a bad argument) raises the built-in ``TypeError``/``ValueError``, before
any request is sent. Transport failures are mapped to these in one place,
``ghostpanel_kernel.engine._client.map_transport_errors``.

This module must stay free of third-party imports: ``ghostpanel_kernel.bolt`` raises
:class:`BoltfileError` and must import without the HTTP stack.
"""

from __future__ import annotations

__all__ = [
    "AgentAuthError",
    "BoltfileError",
    "Conflict",
    "EngineAPIError",
    "EngineConnectionError",
    "EngineProtocolError",
    "EngineTimeout",
    "EnvironmentClosed",
    "EnvironmentNotFound",
    "GhostPanelError",
    "NotFound",
    "PermissionDenied",
    "api_error_for",
]


class GhostPanelError(Exception):
    """Root of every error GhostPanel raises on purpose."""


class EngineConnectionError(GhostPanelError):
    """The engine at ``endpoint`` could not be reached, or the connection broke.

    Parameters
    ----------
    message
        What went wrong, in the operator's terms.
    endpoint
        The endpoint URL that was tried (``unix:///run/podman/podman.sock``...).
    """

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint

    def __str__(self) -> str:
        return f"{self.message} (engine at {self.endpoint})"

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only endpoint survives pickling
        return (_rebuild_connection_error, (type(self), self.message, self.endpoint))


def _rebuild_connection_error(cls: type[EngineConnectionError], message: str,
                              endpoint: str) -> EngineConnectionError:
    return cls(message, endpoint=endpoint)


class EngineTimeout(EngineConnectionError):
    """The engine did not accept the connection, or did not answer, in time."""


class EngineProtocolError(EngineConnectionError):
    """The peer at ``endpoint`` answered, but not as an engine does.

    A web server's HTML page, a service that does not speak HTTP, a malformed response
    or a body that is not the JSON the Engine API sends. The message says what came
    back; usually the URL points at the wrong host or port. A subclass of
    :class:`EngineConnectionError`: for a caller, there is no engine there either.
    """


class EnvironmentClosed(GhostPanelError, RuntimeError):
    """The environment (or engine client) was closed and then used again.

    Also a :class:`RuntimeError`, which is what such misuse raised before.
    """


class EngineAPIError(GhostPanelError):
    """The engine answered a request with an error status.

    Parameters
    ----------
    status_code
        The HTTP status the engine sent.
    message
        The engine's own words (the ``message`` of its JSON error body).
    method, path
        The request that failed, e.g. ``GET`` and ``/v1.41/containers/web/json``.

    Examples
    --------
    >>> str(NotFound(404, "No such container: web", method="GET",
    ...              path="/v1.41/containers/web/json"))
    '[404] No such container: web (GET /v1.41/containers/web/json)'
    """

    def __init__(self, status_code: int, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return f"[{self.status_code}] {self.message} ({self.method} {self.path})"

    def __reduce__(self) -> tuple[object, ...]:  # keeps keyword-only args through pickling
        return (_rebuild_api_error, (type(self), self.status_code, self.message,
                                     self.method, self.path))


def _rebuild_api_error(cls: type[EngineAPIError], status_code: int, message: str,
                       method: str, path: str) -> EngineAPIError:
    return cls(status_code, message, method=method, path=path)


class NotFound(EngineAPIError):
    """The engine has no such object (HTTP 404)."""


class Conflict(EngineAPIError):
    """The request conflicts with the engine's state, e.g. a name in use (HTTP 409)."""


class AgentAuthError(EngineAPIError):
    """A GhostPanel agent refused the request's credentials (HTTP 401).

    The token registered for the environment was wrong or revoked, or none was given:
    nothing reached the engine. The message says which, and how to register a token.
    """


class PermissionDenied(EngineAPIError):
    """The GhostPanel gateway refused the request: the caller's role does not allow it.

    Nothing reached the engine. The message names the environment, the permission the
    request needs and the request itself, e.g. ``your role on prod does not allow
    lifecycle (POST /v1.41/containers/web/stop)``; ask a hub admin for a role that holds
    the permission (``docs/rbac.md``). A refusal that is not about a permission (another
    team's container, an admin-only create option) keeps the gateway's own words.

    Parameters
    ----------
    status_code
        403.
    message
        The gateway's own words (its problem document's ``detail``).
    method, path
        The request that was refused.
    environment
        The environment the request was for, when the gateway named it.
    permission
        The permission the request needs (``read``, ``lifecycle``...), when named.

    Examples
    --------
    >>> str(PermissionDenied(403, "refused", method="POST",
    ...                      path="/v1.41/containers/web/stop", environment="prod",
    ...                      permission="lifecycle"))
    'your role on prod does not allow lifecycle (POST /v1.41/containers/web/stop)'
    """

    def __init__(self, status_code: int, message: str, *, method: str, path: str,
                 environment: str | None = None, permission: str | None = None) -> None:
        super().__init__(status_code, message, method=method, path=path)
        self.environment = environment
        self.permission = permission

    @property
    def action(self) -> str:
        """The refused request, ``METHOD PATH``."""
        return f"{self.method} {self.path}"

    def __str__(self) -> str:
        where = self.environment or "this environment"
        if self.permission:
            return f"your role on {where} does not allow {self.permission} ({self.action})"
        return f"refused on {where}: {self.message} ({self.action})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_permission_denied, (self.status_code, self.message, self.method,
                                             self.path, self.environment, self.permission))


def _rebuild_permission_denied(status_code: int, message: str, method: str, path: str,
                               environment: str | None, permission: str | None
                               ) -> PermissionDenied:
    return PermissionDenied(status_code, message, method=method, path=path,
                            environment=environment, permission=permission)


class EnvironmentNotFound(GhostPanelError, LookupError):
    """No environment of this name is registered (see ``ghostpanel env ls``)."""

    def __init__(self, name: str | None, *, known: list[str] | None = None,
                 hint: str | None = None) -> None:
        self.name = name
        self.known = sorted(known or [])
        self.hint = hint
        # name None: the operator named nothing and no default could be found.
        message = "no environment selected" if name is None else \
            f"no environment named {name!r}"
        if self.known:
            message += f"; known: {', '.join(self.known)}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_not_found_env, (self.name, self.known, self.hint))


def _rebuild_not_found_env(name: str | None, known: list[str], hint: str | None
                           ) -> EnvironmentNotFound:
    return EnvironmentNotFound(name, known=known, hint=hint)


class BoltfileError(GhostPanelError):
    """A Boltfile that cannot be read or parsed.

    Parameters
    ----------
    message
        What is wrong and what to change.
    path
        The file.
    line, column
        1-based position of the problem, when known.
    """

    def __init__(self, message: str, *, path: str, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_boltfile_error, (type(self), self.message, self.path, self.line,
                                          self.column))


def _rebuild_boltfile_error(cls: type[BoltfileError], message: str, path: str,
                            line: int | None, column: int | None) -> BoltfileError:
    return cls(message, path=path, line=line, column=column)


_STATUS_CLASSES: dict[int, type[EngineAPIError]] = {404: NotFound, 409: Conflict}


def api_error_for(status_code: int, message: str, *, method: str, path: str) -> EngineAPIError:
    """Build the most specific :class:`EngineAPIError` for ``status_code``."""
    cls = _STATUS_CLASSES.get(status_code, EngineAPIError)
    return cls(status_code, message, method=method, path=path)
