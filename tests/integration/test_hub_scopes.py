"""The hub side of RBAC: per-environment custom scopes, roles.toml, the demo login."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.hub_process import RunningHub, hub_factory_fixture  # noqa: F401

pytestmark = pytest.mark.integration

ROLES_TOML = """\
# Static bindings: hub roles made at start.
[[binding]]
group = "sc-blue"
role = "helpdesk"
env = "sc-prod"

[[binding]]
group = "sc-red"
role = "helpdesk"
env = "sc-prod"
"""


def test_roles_toml_and_registered_environments_become_hub_scopes(
        hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory(environments={"sc-prod": "tcp://127.0.0.1:9", "sc-dev":
                                    "tcp://127.0.0.1:9", "Not_Scoped": "tcp://127.0.0.1:9"},
                      roles_toml=ROLES_TOML)
    hub.add_user("sc-ada", groups=("sc-blue",))
    hub.add_user("sc-bob", groups=("sc-green",))

    def scopes(name: str) -> set[str]:
        token = hub.token(name)
        answer = httpx.get(f"{hub.api_url}/user", headers=hub.headers(token))
        assert answer.status_code == 200, answer.text
        return {s for s in answer.json()["scopes"] if s.startswith("custom:")}

    assert scopes("sc-ada") == {"custom:ghostpanel:sc-prod:read",
                                "custom:ghostpanel:sc-prod:logs"}
    assert scopes("sc-bob") == set()

    # One hub role per (role, environment), holding both groups. (The hub started
    # although Not_Scoped cannot be part of a scope: it is left to gateway bindings.)
    group = httpx.get(f"{hub.api_url}/groups/sc-red", headers=hub.admin_headers).json()
    assert group["roles"] == ["ghostpanel-sc-prod-helpdesk"]

    # What the gateway makes of them: helpdesk on sc-prod, nothing on sc-dev.
    hub.wait_for_gateway()
    with hub.client(hub.token("sc-ada")) as http:
        whoami = http.get("services/ghostpanel/api/v1/whoami")
    assert whoami.status_code == 200, whoami.text
    permissions = whoami.json()["permissions"]
    assert sorted(permissions.get("sc-prod", [])) == ["logs", "read"]
    assert not permissions.get("sc-dev")


def test_demo_login_uses_the_shared_password_and_keeps_cli_admins(
        hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory(extra_env={"GHOSTPANEL_HUB_PASSWORD": "a-long-demo-password"})
    hub.add_user("lg-root", admin=True)

    def login(name: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=hub.url, timeout=30) as browser:
            browser.get("hub/login")
            xsrf = browser.cookies.get("_xsrf", path="/hub/")
            return browser.post("hub/login", data={"username": name, "password": password,
                                                   "_xsrf": xsrf})

    assert login("lg-root", "wrong-password-here").status_code == 403
    answer = login("lg-root", "a-long-demo-password")
    assert answer.status_code == 302, answer.text
    # JupyterHub's shared-password login would have made lg-root a plain user.
    assert hub.admin.user("lg-root")["admin"] is True
    # Someone the CLI never added cannot log in, even with the password.
    assert login("lg-stranger", "a-long-demo-password").status_code == 403
