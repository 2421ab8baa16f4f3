"""The hub REST client of ``ghostpanel hub user|token`` against a fake hub API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.hub._admin import HubAdmin, HubNotRunning, UnknownUser
from ghostpanel_kernel.hub._launch import HubError
from ghostpanel_kernel.hub._paths import HubPaths, HubState


class FakeHub:
    """Users and groups as JupyterHub's REST API keeps them, and the requests seen."""

    def __init__(self, *users: str) -> None:
        self.users: dict[str, dict[str, Any]] = {
            name: {"name": name, "admin": False, "groups": []} for name in users}
        self.groups: dict[str, list[str]] = {}
        self.seen: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "token admin-secret"
        body = json.loads(request.content) if request.content else None
        path = request.url.path.removeprefix("/hub/api/")
        self.seen.append((request.method, path, body))
        parts = path.split("/")
        if parts[0] == "users" and len(parts) == 1:
            return httpx.Response(200, json=list(self.users.values()))
        if parts[0] == "users":
            return self._user(request.method, parts[1], parts[2:], body)
        if parts[0] == "groups":
            return self._group(request.method, parts[1], parts[2:], body)
        return httpx.Response(404, json={"status": 404, "message": "Not Found"})

    def _user(self, method: str, name: str, rest: list[str], body: Any) -> httpx.Response:
        user = self.users.get(name)
        if rest == ["tokens"] and method == "POST":
            if user is None:
                return httpx.Response(403, json={"message": "no permissions"})
            return httpx.Response(201, json={"token": f"token-of-{name}", **body})
        if method == "POST":
            if user is not None:
                return httpx.Response(409, json={"message": f"User {name} already exists"})
            self.users[name] = {"name": name, "admin": body["admin"], "groups": []}
            return httpx.Response(201, json=self.users[name])
        if user is None:
            return httpx.Response(404, json={"message": "Not Found"})
        if method == "PATCH":
            user.update(body)
        return httpx.Response(200, json=user)

    def _group(self, method: str, name: str, rest: list[str], body: Any) -> httpx.Response:
        if rest == ["users"]:
            for user in body["users"]:
                self.groups[name].append(user)
                self.users[user]["groups"].append(name)
            return httpx.Response(200, json={"name": name, "users": self.groups[name]})
        if method == "POST":
            self.groups[name] = []
            return httpx.Response(201, json={"name": name})
        if name not in self.groups:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"name": name, "users": self.groups[name]})


def _admin(fake: FakeHub) -> HubAdmin:
    return HubAdmin("http://hub.test/hub/api", "admin-secret",
                    transport=httpx.MockTransport(fake))


def test_add_user_makes_missing_groups_and_joins_them() -> None:
    fake = FakeHub()
    fake.groups["blue"] = []
    model, created = _admin(fake).add_user("ada", groups=["blue", "red", "blue"])
    assert created and model["groups"] == ["blue", "red"]
    group_posts = [path for method, path, _ in fake.seen if method == "POST"
                   and path.startswith("groups/") and not path.endswith("/users")]
    assert group_posts == ["groups/red"]  # blue existed: not made again


def test_add_existing_user_with_admin_patches_the_flag() -> None:
    fake = FakeHub("ada")
    model, created = _admin(fake).add_user("ada", admin=True)
    assert not created and model["admin"] is True
    assert ("PATCH", "users/ada", {"admin": True}) in fake.seen


def test_add_existing_user_without_admin_leaves_the_flag() -> None:
    fake = FakeHub("ada")
    fake.users["ada"]["admin"] = True
    model, _ = _admin(fake).add_user("ada")
    assert model["admin"] is True
    assert not [entry for entry in fake.seen if entry[0] == "PATCH"]


def test_create_token_sends_note_and_expiry() -> None:
    fake = FakeHub("ada")
    assert _admin(fake).create_token("ada", note="ci", expires_in=60) == "token-of-ada"
    assert ("POST", "users/ada/tokens", {"note": "ci", "expires_in": 60}) in fake.seen


def test_unknown_user_is_named() -> None:
    with pytest.raises(UnknownUser, match="no user 'zed'"):
        _admin(FakeHub()).create_token("zed")


def test_users_are_sorted_by_name() -> None:
    fake = FakeHub("zoe", "ada")
    assert [model["name"] for model in _admin(fake).users()] == ["ada", "zoe"]


def test_hub_errors_carry_its_message() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "Only admins can grant admin"})

    admin = HubAdmin("http://hub.test/hub/api", "t", transport=httpx.MockTransport(refuse))
    with pytest.raises(HubError, match="403: Only admins can grant admin"):
        admin.users()


def test_a_hub_that_does_not_answer_is_named() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    admin = HubAdmin("http://127.0.0.1:9/hub/api", "t", transport=httpx.MockTransport(down))
    with pytest.raises(HubNotRunning, match=r"does not answer at http://127\.0\.0\.1:9/hub/api"):
        admin.users()


def test_for_home_without_a_running_hub(tmp_path: Any) -> None:
    paths = HubPaths(tmp_path)
    with pytest.raises(HubNotRunning, match="no hub runs for"):
        HubAdmin.for_home(paths)
    paths.ensure()
    # A hub.json whose process is gone (a hub killed with SIGKILL) counts as no hub.
    paths.write_state(HubState(pid=2**22 + 1, hub_pid=2**22 + 2, url="http://x/",
                               api_url="http://x/hub/api", gateway_url="http://x/s/",
                               gateway_port=1))
    with pytest.raises(HubNotRunning, match="no hub runs for"):
        HubAdmin.for_home(paths)
