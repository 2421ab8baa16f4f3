"""Static group -> role bindings (``$GHOSTPANEL_HOME/hub/roles.toml``) as hub roles.

Bindings made with ``ghostpanel hub role grant`` live in the gateway's store and take
effect at once. A site that manages teams in its identity provider may prefer to fix
some bindings in a file instead; each becomes a JupyterHub role holding the matching
``custom:ghostpanel:<env>:<permission>`` scopes, loaded when the hub starts::

    # $GHOSTPANEL_HOME/hub/roles.toml
    [[binding]]
    group = "blue"        # a hub group (= a GhostPanel team)
    role = "operator"     # a built-in role: viewer, helpdesk, operator, deployer, admin
    env = "prod"          # an environment name usable in a hub scope ([a-z0-9][a-z0-9_-]*)

The hub then reports those scopes for the group's members' tokens, and the gateway
unions them with its own bindings (``docs/hub.md``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..gateway._permissions import scope_env_ok

__all__ = ["RolesFileError", "StaticBinding", "hub_roles", "read_bindings"]

class RolesFileError(ValueError):
    """``roles.toml`` cannot be used: the message names the file and the entry."""


@dataclass(frozen=True)
class StaticBinding:
    """One ``[[binding]]`` entry: ``group`` holds ``role`` on ``env``."""

    group: str
    role: str
    env: str


def read_bindings(path: Path, roles: Mapping[str, frozenset[str]]) -> list[StaticBinding]:
    """The bindings of a ``roles.toml`` file (none when the file does not exist).

    Parameters
    ----------
    path
        The file.
    roles
        The role names the entries may use, each with its permissions.

    Raises
    ------
    RolesFileError
        For a file that is not TOML, an entry missing a key, an unknown role or an
        environment name a hub scope cannot carry.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RolesFileError(f"{path}: not valid TOML: {error}") from None
    entries = data.get("binding", [])
    if not isinstance(entries, list):
        raise RolesFileError(f"{path}: 'binding' must be an array of tables ([[binding]])")
    bindings = []
    for number, entry in enumerate(entries, start=1):
        bindings.append(_binding(path, number, entry, roles))
    return bindings


def _binding(path: Path, number: int, entry: Any,
             roles: Mapping[str, frozenset[str]]) -> StaticBinding:
    where = f"{path}: binding {number}"
    if not isinstance(entry, dict):
        raise RolesFileError(f"{where} is not a table")
    values = {}
    for key in ("group", "role", "env"):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise RolesFileError(f"{where} needs {key} = \"...\" (a non-empty string)")
        values[key] = value
    if values["role"] not in roles:
        raise RolesFileError(f"{where}: unknown role {values['role']!r} (known: "
                             f"{', '.join(sorted(roles))})")
    if not scope_env_ok(values["env"]):
        raise RolesFileError(f"{where}: environment {values['env']!r} cannot appear in a "
                             "hub scope (use [a-z0-9][a-z0-9_-]*, or grant it with "
                             "`ghostpanel hub role grant`)")
    return StaticBinding(**values)


def hub_roles(bindings: list[StaticBinding], roles: Mapping[str, frozenset[str]],
              scope_name: Any) -> list[dict[str, Any]]:
    """JupyterHub ``load_roles`` entries for ``bindings``.

    One hub role per (role, environment), named ``ghostpanel-<env>-<role>``, holding
    the scopes of the role's permissions on that environment and listing every group
    bound to it.

    Parameters
    ----------
    bindings
        From :func:`read_bindings`.
    roles
        Role name -> permissions.
    scope_name
        ``scope_name(env, permission) -> str``: the hub scope of a permission.

    Examples
    --------
    >>> b = [StaticBinding("blue", "viewer", "prod")]
    >>> hub_roles(b, {"viewer": frozenset({"read"})}, lambda e, p: f"custom:g:{e}:{p}")
    [{'name': 'ghostpanel-prod-viewer', 'description': 'GhostPanel role viewer on \
environment prod (roles.toml)', 'scopes': ['custom:g:prod:read'], 'groups': ['blue']}]
    """
    grouped: dict[tuple[str, str], set[str]] = {}
    for binding in bindings:
        grouped.setdefault((binding.role, binding.env), set()).add(binding.group)
    return [
        {"name": f"ghostpanel-{env}-{role}",
         "description": f"GhostPanel role {role} on environment {env} (roles.toml)",
         "scopes": sorted(scope_name(env, permission) for permission in roles[role]),
         "groups": sorted(groups)}
        for (role, env), groups in sorted(grouped.items())
    ]
