"""The one exception the gateway's policy raises: a request it will not forward.

The policy modules are pure functions; each answers "no" by raising :class:`Refusal`,
and the gateway's request handlers turn it into a problem document with its status
(``docs/rbac.md``).
"""

from __future__ import annotations

__all__ = ["Refusal"]


class Refusal(Exception):
    """A request the gateway refuses before anything reaches an engine.

    Parameters
    ----------
    status
        The HTTP status to answer with: ``400`` (the request is malformed or not in
        canonical form), ``403`` (not allowed) or ``413`` (too large).
    message
        One clear sentence saying what was refused and why.
    permission
        The permission the request would need, when the refusal is about one.

    Examples
    --------
    >>> r = Refusal(403, "privileged containers are admin-only", permission="admin")
    >>> (r.status, r.message, r.permission)
    (403, 'privileged containers are admin-only', 'admin')
    """

    def __init__(self, status: int, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.permission = permission

    def __repr__(self) -> str:
        return f"Refusal({self.status}, {self.message!r}, permission={self.permission!r})"
