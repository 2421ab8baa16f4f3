"""Permissions, built-in roles and hub custom scopes (``gateway/_permissions``): the
roles nest as the design says, and every scope the gateway hands JupyterHub is one the
hub itself accepts."""

from __future__ import annotations

import pytest
from jupyterhub import scopes as hub_scopes

from ghostpanel_kernel.gateway._permissions import (
    BUILTIN_ROLES,
    PERMISSION_HELP,
    PERMISSIONS,
    check_permissions,
    custom_scopes,
    permissions_from_scopes,
    scope_env_ok,
    scope_name,
)


def test_permissions_are_the_design_list_in_order() -> None:
    assert PERMISSIONS == ("read", "logs", "lifecycle", "exec", "files", "create", "images",
                           "volumes", "networks", "surge", "snapshots", "gpus", "admin")
    assert set(PERMISSION_HELP) == set(PERMISSIONS)


def test_builtin_roles_nest() -> None:
    assert BUILTIN_ROLES["viewer"] == {"read"}
    assert BUILTIN_ROLES["helpdesk"] == BUILTIN_ROLES["viewer"] | {"logs"}
    assert BUILTIN_ROLES["operator"] == BUILTIN_ROLES["helpdesk"] | {"lifecycle", "exec",
                                                                    "files"}
    assert BUILTIN_ROLES["deployer"] == BUILTIN_ROLES["operator"] | {
        "create", "images", "volumes", "networks", "surge", "snapshots", "gpus"}
    assert BUILTIN_ROLES["admin"] == frozenset(PERMISSIONS)
    assert "admin" not in BUILTIN_ROLES["deployer"]


def test_check_permissions_names_every_unknown_one() -> None:
    assert check_permissions(["read", "exec"]) == {"read", "exec"}
    with pytest.raises(ValueError, match="'fly', 'swim'") as caught:
        check_permissions(["read", "swim", "fly"])
    assert "permissions are read, logs" in str(caught.value)


@pytest.mark.parametrize("env", ["prod", "gpu-lab", "a_b", "0", "x9-_"])
def test_scope_env_ok_accepts_names_a_hub_scope_holds(env: str) -> None:
    assert scope_env_ok(env)
    assert scope_name(env, "read") == f"custom:ghostpanel:{env}:read"


@pytest.mark.parametrize("env", ["Prod", "-prod", "_prod", "pr:od", "pr*od", "pr od",
                                 "", "prød", "pro.d", "prod/x"])
def test_scope_name_refuses_names_a_hub_scope_cannot_hold(env: str) -> None:
    assert not scope_env_ok(env)
    with pytest.raises(ValueError, match="role binding"):
        scope_name(env, "read")


def test_scope_name_refuses_an_unknown_permission() -> None:
    with pytest.raises(ValueError, match="unknown permission 'root'"):
        scope_name("prod", "root")


def test_every_custom_scope_passes_jupyterhubs_own_check() -> None:
    envs = ["prod", "dev", "gpu-lab", "a_b", "Bad Name"]
    scopes = custom_scopes(envs)
    assert len(scopes) == 4 * len(PERMISSIONS)  # the bad name is skipped
    assert not any("Bad Name" in scope for scope in scopes)
    # The hub's own definition step (run on c.JupyterHub.custom_scopes at start-up)
    # raises on any name or description it would not accept.
    saved = dict(hub_scopes.scope_definitions)
    try:
        hub_scopes.define_custom_scopes(scopes)
    finally:
        hub_scopes.scope_definitions.clear()
        hub_scopes.scope_definitions.update(saved)
    assert scopes["custom:ghostpanel:dev:exec"]["description"] == (
        "GhostPanel on dev: " + PERMISSION_HELP["exec"])


def test_the_hub_rejects_what_scope_env_ok_rejects() -> None:
    # The other side of the same check: a name scope_env_ok refuses is also one the
    # hub would refuse, or one our parsing could not split back (":" and "*").
    saved = dict(hub_scopes.scope_definitions)
    try:
        with pytest.raises(ValueError):
            hub_scopes.define_custom_scopes({"custom:ghostpanel:Prod:read":
                                             {"description": "x"}})
    finally:
        hub_scopes.scope_definitions.clear()
        hub_scopes.scope_definitions.update(saved)


def test_permissions_from_scopes_reads_only_this_environments_exact_scopes() -> None:
    scopes = ["custom:ghostpanel:prod:logs", "custom:ghostpanel:prod:exec",
              "custom:ghostpanel:prod:fly", "custom:ghostpanel:production:admin",
              "custom:ghostpanel:dev:admin", "custom:ghostpanel:prod:read!user=ada",
              "read:users", "custom:ghostpanel:prod"]
    assert permissions_from_scopes(scopes, "prod") == {"logs", "exec"}
    assert permissions_from_scopes(scopes, "dev") == {"admin"}
    assert permissions_from_scopes(scopes, "staging") == frozenset()
    assert permissions_from_scopes([], "prod") == frozenset()
