"""Who is asking: the identity the hub vouches for, as the gateway's policy reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Identity"]


@dataclass(frozen=True)
class Identity:
    """A hub user (or service) behind one request.

    Attributes
    ----------
    name
        The hub's user name (``kind == "user"``) or service name.
    groups
        The user's hub groups. Each group is a GhostPanel team: what a user creates is
        owned by all of them, and role bindings to ``@group`` apply to its members.
    admin
        The hub's admin flag: an admin holds every permission on every environment.
    scopes
        The token's expanded hub scopes; ``custom:ghostpanel:<env>:<permission>`` ones
        grant permissions (``docs/rbac.md``).
    kind
        ``"user"`` or ``"service"``.

    Examples
    --------
    >>> Identity("ada", groups=frozenset({"blue"})).teams
    frozenset({'blue'})
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    scopes: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"

    @property
    def teams(self) -> frozenset[str]:
        """The teams this identity acts for: its hub groups."""
        return self.groups
