"""``ghostpanel hub`` with a real JupyterHub and proxy: users, tokens, roles, the gateway.

One hub for the module (``tests/hub_process.py``); each test uses names of its own.
"""

from __future__ import annotations

import json
import stat
import time

import httpx
import pytest

from tests.hub_process import RunningHub, hub_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def test_state_lives_in_the_home_and_secrets_are_private(hub: RunningHub) -> None:
    assert httpx.get(f"{hub.api_url}/").json()["version"]
    folder = hub.home / "hub"
    secrets = ["admin_token", "jupyterhub_cookie_secret", "proxy_auth_token", "password",
               "jupyterhub.sqlite", "hub.json"]
    for name in secrets:
        mode = stat.S_IMODE((folder / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
    state = json.loads((folder / "hub.json").read_text())
    assert state["url"] == hub.url
    assert state["gateway_url"] == hub.gateway_url


def test_start_prints_url_password_and_how_to_add_users(hub: RunningHub) -> None:
    out = (hub.home / "hub.out").read_text()
    password = (hub.home / "hub" / "password").read_text().strip()
    assert hub.url in out
    assert password in out
    assert f"ghostpanel --home {hub.home} hub user add NAME" in out
    assert out.splitlines()[-1] == "ready"


def test_user_add_makes_groups_and_admins(hub: RunningHub) -> None:
    result = hub.cli("hub", "user", "add", "ua-ada", "--group", "ua-blue",
                     "--group", "ua-red")
    assert "ua-ada added" in result.stdout
    model = hub.admin.user("ua-ada")
    assert sorted(model["groups"]) == ["ua-blue", "ua-red"]
    assert model["admin"] is False
    # Again, with another group and --admin: kept, updated, nothing taken away.
    result = hub.cli("hub", "user", "add", "ua-ada", "--admin", "--group", "ua-green")
    assert "already exists" in result.stdout
    model = hub.admin.user("ua-ada")
    assert sorted(model["groups"]) == ["ua-blue", "ua-green", "ua-red"]
    assert model["admin"] is True

    listed = json.loads(hub.cli("hub", "user", "ls", "--json").stdout)
    ada = next(row for row in listed if row["name"] == "ua-ada")
    assert ada == {"name": "ua-ada", "admin": True,
                   "teams": ["ua-blue", "ua-green", "ua-red"],
                   "last_activity": ada["last_activity"]}
    table = hub.cli("hub", "user", "ls").stdout
    assert "ua-blue,ua-green,ua-red" in table


def test_token_is_the_last_line_and_works_against_the_hub(hub: RunningHub) -> None:
    hub.add_user("tk-bob", groups=("tk-ops",))
    result = hub.cli("hub", "token", "tk-bob", "--note", "for a test", "--expires-in", "600")
    token = result.stdout.strip().splitlines()[-1]
    answer = httpx.get(f"{hub.api_url}/user", headers=hub.headers(token))
    assert answer.status_code == 200
    assert answer.json()["name"] == "tk-bob"
    assert answer.json()["groups"] == ["tk-ops"]
    # The hub keeps the note and the expiry with the token.
    tokens = httpx.get(f"{hub.api_url}/users/tk-bob/tokens", headers=hub.headers(token))
    made = [model for model in tokens.json()["api_tokens"] if model["note"] == "for a test"]
    assert len(made) == 1 and made[0]["expires_at"] is not None
    assert httpx.get(f"{hub.api_url}/user",
                     headers=hub.headers("0" * 32)).status_code == 403


def test_unknown_user_is_a_clear_error(hub: RunningHub) -> None:
    result = hub.cli("hub", "token", "nobody-here", check=False)
    assert result.returncode == 1
    assert "no user 'nobody-here'" in result.stderr
    assert result.stdout == ""


def test_roles_grant_ls_revoke_and_define(hub: RunningHub) -> None:
    hub.add_user("rl-cy")
    hub.cli("hub", "role", "define", "rl-auditor", "read", "logs")
    hub.cli("hub", "role", "grant", "@rl-team", "operator", "--env", "rl-prod")
    hub.cli("hub", "role", "grant", "rl-cy", "rl-auditor", "--env", "rl-prod")
    listed = json.loads(hub.cli("hub", "role", "ls", "--env", "rl-prod", "--json").stdout)
    assert sorted((b["subject"], b["role"]) for b in listed["bindings"]) == [
        ("@rl-team", "operator"), ("rl-cy", "rl-auditor")]
    assert listed["roles"]["rl-auditor"] == ["logs", "read"]
    with hub._roles() as roles:  # the store the gateway reads: the CLI wrote there
        assert roles.permissions("rl-cy", set(), "rl-prod") == {"read", "logs"}
        assert roles.permissions("rl-dee", {"rl-team"}, "rl-prod") == {
            "read", "logs", "lifecycle", "exec", "files"}

    hub.cli("hub", "role", "revoke", "@rl-team", "operator", "--env", "rl-prod")
    listed = json.loads(hub.cli("hub", "role", "ls", "--env", "rl-prod", "--json").stdout)
    assert [b["subject"] for b in listed["bindings"]] == ["rl-cy"]
    again = hub.cli("hub", "role", "revoke", "@rl-team", "operator", "--env", "rl-prod",
                    check=False)
    assert again.returncode == 1 and "holds no operator binding" in again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("grant", "rl-cy", "no-such-role", "--env", "x"), "unknown role 'no-such-role'"),
    (("grant", "nobody-at-all", "viewer", "--env", "x"), "no user 'nobody-at-all'"),
    (("define", "rl-bad", "read", "fly"), "unknown permission 'fly'"),
    (("define", "viewer", "read"), "built-in role"),
])
def test_role_errors_are_clear(hub: RunningHub, args: tuple[str, ...], message: str) -> None:
    hub.add_user("rl-cy")
    result = hub.cli("hub", "role", *args, check=False)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr


def test_a_second_hub_on_the_same_home_is_refused(hub: RunningHub) -> None:
    proxy_pid = (hub.home / "hub" / "jupyterhub-proxy.pid").read_text().strip()
    result = hub.cli("hub", "--port", "1", check=False, timeout=60)
    assert result.returncode == 1
    assert "a hub already runs for this home" in result.stderr
    assert str(hub.process.pid) in result.stderr
    # The first hub and its proxy were left alone.
    assert (hub.home / "hub" / "jupyterhub-proxy.pid").read_text().strip() == proxy_pid
    assert httpx.get(f"{hub.api_url}/").status_code == 200


def test_gateway_whoami_through_the_proxy(hub: RunningHub) -> None:
    hub.add_user("gw-eve", groups=("gw-blue", "gw-red"))
    hub.wait_for_gateway()
    token = hub.token("gw-eve")
    with hub.client(token) as http:
        answer = http.get("services/ghostpanel/api/v1/whoami")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "gw-eve"
    assert sorted(body["teams"]) == ["gw-blue", "gw-red"]
    assert body["admin"] is False
    with hub.client() as http:  # no token: the gateway refuses
        assert http.get("services/ghostpanel/api/v1/whoami").status_code in (401, 403)


def test_a_cli_grant_and_revoke_reach_the_gateway_without_a_restart(hub: RunningHub) -> None:
    hub.add_user("gw-fay", groups=("gw-green",))
    hub.register_environment("gw-prod", "tcp://127.0.0.1:9")  # after the hub started
    hub.wait_for_gateway()
    token = hub.token("gw-fay")

    def permissions() -> list[str]:
        with hub.client(token) as http:
            answer = http.get("services/ghostpanel/api/v1/whoami")
        assert answer.status_code == 200, answer.text
        return sorted(answer.json()["permissions"].get("gw-prod", []))

    def within_10_s(expected: list[str]) -> None:
        # The gateway may cache what the hub and the store say for a few seconds; a
        # change must show within 10 (the bound for a revoked right).
        changed_at = time.monotonic()
        while permissions() != expected and time.monotonic() - changed_at < 10:
            time.sleep(0.5)
        assert permissions() == expected

    assert permissions() == []
    hub.cli("hub", "role", "grant", "@gw-green", "helpdesk", "--env", "gw-prod")
    within_10_s(["logs", "read"])
    hub.cli("hub", "role", "revoke", "@gw-green", "helpdesk", "--env", "gw-prod")
    within_10_s([])
