"""The gateway's permissions, its built-in roles and their JupyterHub custom scopes.

A permission names one kind of thing a caller may do on one environment. Roles are named
sets of permissions; the hub can also grant a single permission on one environment with
the custom scope ``custom:ghostpanel:<env>:<permission>`` (``docs/rbac.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["BUILTIN_ROLES", "PERMISSIONS", "PERMISSION_HELP", "SCOPE_PREFIX",
           "check_permissions", "custom_scopes", "permissions_from_scopes", "scope_env_ok",
           "scope_name"]

#: Every permission, from the mildest to ``admin``.
PERMISSIONS: Final[tuple[str, ...]] = (
    "read", "logs", "lifecycle", "exec", "files", "create", "images", "volumes",
    "networks", "surge", "snapshots", "gpus", "admin",
)

#: What each permission lets a caller do, in words (also the hub scopes' descriptions).
PERMISSION_HELP: Final[Mapping[str, str]] = {
    "read": "list and inspect containers, images, volumes and networks; stats, top, "
            "changes, events, disk usage and engine version/info",
    "logs": "read container logs",
    "lifecycle": "start, stop, restart, kill, pause, unpause and wait for containers",
    "exec": "run commands inside containers",
    "files": "copy files into and out of containers",
    "create": "create, remove, rename and update containers; prune its own",
    "images": "pull, push, tag, remove, build, commit and load images",
    "volumes": "create and remove volumes",
    "networks": "create, remove, connect and disconnect networks",
    "surge": "run surge rollouts",
    "snapshots": "take and restore container snapshots",
    "gpus": "allocate GPUs to containers",
    "admin": "dangerous create options (privileged, host paths, host namespaces), and "
             "everything on every team's objects",
}

_VIEWER: Final = frozenset({"read"})
_HELPDESK: Final = _VIEWER | {"logs"}
_OPERATOR: Final = _HELPDESK | {"lifecycle", "exec", "files"}
_DEPLOYER: Final = _OPERATOR | {"create", "images", "volumes", "networks", "surge",
                                "snapshots", "gpus"}

#: The roles every gateway knows; custom roles are added in the gateway's store.
BUILTIN_ROLES: Final[Mapping[str, frozenset[str]]] = {
    "viewer": _VIEWER,
    "helpdesk": _HELPDESK,
    "operator": _OPERATOR,
    "deployer": _DEPLOYER,
    "admin": frozenset(PERMISSIONS),
}

SCOPE_PREFIX: Final = "custom:ghostpanel:"

# JupyterHub 5 accepts a custom scope only when it matches
# ``^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$`` (jupyterhub/scopes.py). Our scopes are
# ``custom:ghostpanel:<env>:<permission>``, so the environment part may use only the
# characters that pattern allows, minus ``:`` (it separates the parts) and ``*`` (a
# wildcard in hub scope filters): lower-case letters, digits, ``_`` and ``-``, starting
# with a letter or digit.
_SCOPE_ENV: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")
_HUB_CUSTOM_SCOPE: Final = re.compile(r"^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$")


def check_permissions(perms: Iterable[str]) -> frozenset[str]:
    """Check that every name is a known permission; return them as a set.

    Raises
    ------
    ValueError
        Naming every unknown permission (and listing the known ones).

    Examples
    --------
    >>> sorted(check_permissions(["read", "logs"]))
    ['logs', 'read']
    >>> check_permissions(["read", "fly"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown permission 'fly'; the permissions are read, logs, lifecycle, ...
    """
    given = frozenset(perms)
    unknown = sorted(given.difference(PERMISSIONS))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown permission{plural} {names}; the permissions are "
                         f"{', '.join(PERMISSIONS)}")
    return given


def scope_env_ok(env: str) -> bool:
    """Whether a hub custom scope can name environment ``env``.

    Examples
    --------
    >>> scope_env_ok("prod"), scope_env_ok("gpu-lab_2"), scope_env_ok("Prod"), scope_env_ok("a:b")
    (True, True, False, False)
    """
    return _SCOPE_ENV.fullmatch(env) is not None


def scope_name(env: str, permission: str) -> str:
    """The hub custom scope that grants ``permission`` on environment ``env``.

    Raises
    ------
    ValueError
        For an environment name a hub scope cannot hold (such environments are granted
        through the gateway's role bindings instead), or an unknown permission.

    Examples
    --------
    >>> scope_name("prod", "logs")
    'custom:ghostpanel:prod:logs'
    """
    check_permissions([permission])
    if not scope_env_ok(env):
        raise ValueError(
            f"environment name {env!r} cannot appear in a JupyterHub scope: hub scopes "
            "allow only lower-case letters, digits, '_' and '-', starting with a letter "
            "or digit; grant it with a gateway role binding instead")
    scope = f"{SCOPE_PREFIX}{env}:{permission}"
    # Belt and braces: what we hand the hub must pass its own check.
    if _HUB_CUSTOM_SCOPE.match(scope) is None:  # pragma: no cover - guarded above
        raise ValueError(f"{scope!r} is not a valid JupyterHub custom scope")
    return scope


def permissions_from_scopes(scopes: Iterable[str], env: str) -> frozenset[str]:
    """The permissions on ``env`` that a token's expanded hub scopes grant.

    Only exact ``custom:ghostpanel:<env>:<permission>`` scopes count; unknown
    permissions and other environments are ignored. A hub scope may carry a filter
    (``scope!user=ada``); such scopes are ignored too, because ours are not filtered.

    Examples
    --------
    >>> sorted(permissions_from_scopes(
    ...     ["custom:ghostpanel:prod:logs", "custom:ghostpanel:dev:exec", "read:users"],
    ...     "prod"))
    ['logs']
    """
    prefix = f"{SCOPE_PREFIX}{env}:"
    granted = set()
    for scope in scopes:
        if scope.startswith(prefix):
            permission = scope[len(prefix):]
            if permission in PERMISSIONS:
                granted.add(permission)
    return frozenset(granted)


def custom_scopes(envs: Iterable[str]) -> dict[str, dict[str, str]]:
    """The ``c.JupyterHub.custom_scopes`` value: one scope per environment and permission.

    Environments whose names a hub scope cannot hold are skipped (see
    :func:`scope_env_ok`).

    Examples
    --------
    >>> scopes = custom_scopes(["prod"])
    >>> len(scopes), scopes["custom:ghostpanel:prod:logs"]["description"]
    (13, 'GhostPanel on prod: read container logs')
    """
    result: dict[str, dict[str, str]] = {}
    for env in sorted(set(envs)):
        if not scope_env_ok(env):
            continue
        for permission in PERMISSIONS:
            result[scope_name(env, permission)] = {
                "description": f"GhostPanel on {env}: {PERMISSION_HELP[permission]}",
            }
    return result
