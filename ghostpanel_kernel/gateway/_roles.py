"""Roles and role bindings of the gateway, kept in the GhostPanel store.

A *role* is a named set of permissions (``_permissions.PERMISSIONS``): the built-in
ones (``viewer``, ``helpdesk``, ``operator``, ``deployer``, ``admin``) are fixed in the
code, custom ones are defined here by an administrator. A *binding* grants a role on
one environment to a subject: a hub user (``ada``) or every member of a hub group
(``@blue``). What a caller may do on an environment is the union of the roles bound to
them and to their groups there (the gateway adds the hub's custom scopes and the hub
admin flag, ``docs/rbac.md``).

Each operation is one transaction. A custom role cannot be deleted while a binding
names it, and a binding cannot name a role that does not exist; the statements are
ordered so that a concurrent grant and delete cannot both succeed (the first write of
each transaction takes SQLite's write lock; on PostgreSQL the grant locks the role's
row, which the delete removes first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..store._schema import Base
from ..store._transaction import store_transaction
from ._permissions import BUILTIN_ROLES, check_permissions

__all__ = ["Binding", "RoleInUse", "RoleStore"]

_STORE: Final = "the gateway's role store"
_ROLE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ROLES: Final = Base.metadata.tables["gateway_roles"]
_BINDINGS: Final = Base.metadata.tables["gateway_role_bindings"]


@dataclass(frozen=True, order=True)
class Binding:
    """One grant: ``subject`` (``"ada"`` or ``"@blue"``) holds ``role`` on ``environment``."""

    environment: str
    subject: str
    role: str


class RoleInUse(ValueError):
    """A custom role that bindings still name cannot be deleted.

    Attributes
    ----------
    bindings
        The bindings that name it.
    """

    def __init__(self, role: str, bindings: list[Binding]) -> None:
        shown = ", ".join(f"{b.subject} on {b.environment}" for b in bindings[:5])
        more = f" and {len(bindings) - 5} more" if len(bindings) > 5 else ""
        super().__init__(f"role {role!r} is still granted ({shown}{more}): revoke those "
                         "bindings first")
        self.bindings = bindings


def _check_subject(subject: str) -> str:
    name = subject[1:] if subject.startswith("@") else subject
    if not name or name != name.strip() or "," in name or len(subject) > 255:
        raise ValueError(f"subject {subject!r} is not a user name or an @group")
    return subject


def _check_environment(environment: str) -> str:
    if not environment or environment != environment.strip() or len(environment) > 128:
        raise ValueError(f"{environment!r} is not an environment name")
    return environment


class RoleStore:
    """Custom roles and role bindings in the store ``engine`` (``open_database()``).

    Examples
    --------
    >>> from ghostpanel_kernel.store import open_database
    >>> roles = RoleStore(open_database("sqlite://"))
    >>> roles.define_role("auditor", ["read", "logs"])
    >>> roles.grant("@blue", "auditor", "prod")
    True
    >>> sorted(roles.permissions("ada", {"blue"}, "prod"))
    ['logs', 'read']
    >>> roles.permissions("ada", {"blue"}, "dev")
    frozenset()
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- roles ---------------------------------------------------------------------

    def roles(self) -> dict[str, frozenset[str]]:
        """Every role, built-in and custom: name -> permissions."""
        with store_transaction(self._engine, _STORE) as session:
            rows = session.execute(select(_ROLES.c.name, _ROLES.c.permissions)).all()
        known = dict(BUILTIN_ROLES)
        known.update((name, frozenset(perms)) for name, perms in rows)
        return known

    def define_role(self, name: str, permissions: Iterable[str]) -> None:
        """Define (or redefine) the custom role ``name``.

        Raises
        ------
        ValueError
            ``name`` is a built-in role or not a valid name (lower-case letters, digits,
            ``_ . -``), or a permission is unknown, or there is none.
        """
        if name in BUILTIN_ROLES:
            raise ValueError(f"{name!r} is a built-in role: it cannot be redefined")
        if _ROLE_NAME.fullmatch(name) is None:
            raise ValueError(f"{name!r} is not a role name: use lower-case letters, "
                             "digits, '_', '.' and '-' (at most 64)")
        perms = sorted(check_permissions(permissions))
        if not perms:
            raise ValueError(f"role {name!r} needs at least one permission")
        with store_transaction(self._engine, _STORE) as session:
            updated = session.connection().execute(
                _ROLES.update().where(_ROLES.c.name == name).values(permissions=perms))
            if not updated.rowcount:
                session.execute(insert(_ROLES).values(name=name, permissions=perms,
                                                      created_at=datetime.now(UTC)))

    def delete_role(self, name: str) -> None:
        """Delete the custom role ``name``.

        Raises
        ------
        ValueError
            ``name`` is a built-in role.
        KeyError
            There is no custom role ``name``.
        RoleInUse
            Bindings still name it (listed in the error).
        """
        if name in BUILTIN_ROLES:
            raise ValueError(f"{name!r} is a built-in role: it cannot be deleted")
        with store_transaction(self._engine, _STORE) as session:
            # Delete first: this write takes the lock that a concurrent grant waits on.
            deleted = session.connection().execute(delete(_ROLES).where(_ROLES.c.name == name))
            if not deleted.rowcount:
                raise KeyError(f"there is no custom role {name!r}")
            bound = session.execute(
                select(_BINDINGS.c.environment, _BINDINGS.c.subject, _BINDINGS.c.role)
                .where(_BINDINGS.c.role == name)).all()
            if bound:
                raise RoleInUse(name, sorted(Binding(*row) for row in bound))

    # -- bindings ------------------------------------------------------------------

    def grant(self, subject: str, role: str, environment: str) -> bool:
        """Bind ``role`` on ``environment`` to ``subject`` (``"ada"`` or ``"@blue"``).

        Returns
        -------
        bool
            False when that binding was already there.

        Raises
        ------
        ValueError
            A bad subject or environment name.
        KeyError
            There is no role ``role``.
        """
        _check_subject(subject)
        _check_environment(environment)
        try:
            with store_transaction(self._engine, _STORE) as session:
                session.execute(insert(_BINDINGS).values(
                    subject=subject, role=role, environment=environment,
                    created_at=datetime.now(UTC)))
                if role not in BUILTIN_ROLES:
                    # FOR SHARE: a delete_role running now waits for this grant, or
                    # this waits for it and then sees that the role is gone.
                    exists = session.execute(select(_ROLES.c.name).where(
                        _ROLES.c.name == role).with_for_update(read=True)).first()
                    if exists is None:
                        raise KeyError(f"there is no role {role!r}")
        except IntegrityError:
            return False  # the same binding, made before (or by a concurrent grant)
        return True

    def revoke(self, subject: str, role: str, environment: str) -> bool:
        """Remove one binding; False when there was no such binding."""
        with store_transaction(self._engine, _STORE) as session:
            removed = session.connection().execute(delete(_BINDINGS).where(
                _BINDINGS.c.subject == subject, _BINDINGS.c.role == role,
                _BINDINGS.c.environment == environment))
        return bool(removed.rowcount)

    def bindings(self, env: str | None = None) -> list[Binding]:
        """Every binding (on ``env`` only, when given), sorted."""
        query = select(_BINDINGS.c.environment, _BINDINGS.c.subject, _BINDINGS.c.role)
        if env is not None:
            query = query.where(_BINDINGS.c.environment == env)
        with store_transaction(self._engine, _STORE) as session:
            rows = session.execute(query).all()
        return sorted(Binding(*row) for row in rows)

    # -- what a caller holds -------------------------------------------------------

    def permissions(self, user: str, groups: Iterable[str], env: str) -> frozenset[str]:
        """The permissions the bindings give ``user`` (member of ``groups``) on ``env``."""
        return self.permissions_by_environment(user, groups, env).get(env, frozenset())

    def permissions_by_environment(self, user: str, groups: Iterable[str],
                                   env: str | None = None) -> dict[str, frozenset[str]]:
        """Per environment, the permissions the bindings give ``user`` and ``groups``.

        Only environments with at least one binding for them appear; ``env`` limits the
        answer to that one. One query for the bindings, one more only when a custom
        role is bound.
        """
        subjects = [user, *(f"@{group}" for group in groups)]
        query = select(_BINDINGS.c.environment, _BINDINGS.c.role).where(
            _BINDINGS.c.subject.in_(subjects))
        if env is not None:
            query = query.where(_BINDINGS.c.environment == env)
        with store_transaction(self._engine, _STORE) as session:
            rows = session.execute(query).all()
            custom_names = {role for _, role in rows if role not in BUILTIN_ROLES}
            custom = dict(session.execute(
                select(_ROLES.c.name, _ROLES.c.permissions)
                .where(_ROLES.c.name.in_(custom_names))).all()) if custom_names else {}
        granted: dict[str, set[str]] = {}
        for environment, role in rows:
            perms = BUILTIN_ROLES.get(role) or frozenset(custom.get(role, ()))
            granted.setdefault(environment, set()).update(perms)
        return {name: frozenset(perms) for name, perms in granted.items()}
