"""Issue 10 end to end: where a caller's rights come from, through a REAL JupyterHub.

One hub for the module (JupyterHub, configurable-http-proxy and the gateway as its
``ghostpanel`` service), the session's Podman engine registered as ``rl-prod`` before
the hub starts (so it has hub scopes), and a ``roles.toml`` that gives group
``rl-help`` the hub role for helpdesk on ``rl-prod`` (hub scopes
``custom:ghostpanel:rl-prod:read`` and ``...:logs``, ``docs/hub.md``). On top of those,
gateway bindings and custom roles (``docs/rbac.md``): a caller's permissions are the
union of both, and a change to either side is felt within 10 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.hub_process import RunningHub, start_hub
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

ENV = "rl-prod"
ENGINE = f"services/ghostpanel/env/{ENV}/engine"
ROLES_TOML = f"""\
[[binding]]
group = "rl-help"
role = "helpdesk"
env = "{ENV}"
"""


@dataclass
class Stand:
    """The hub, the users' tokens and team rl-help's running container."""

    hub: RunningHub
    tokens: dict[str, str]
    container: str

    def engine(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.hub.url}{ENGINE}", timeout=30,
                            headers={"Authorization": f"token {self.tokens[user]}"})

    def gateway(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.hub.gateway_url, timeout=30,
                            headers={"Authorization": f"token {self.tokens[user]}"})

    def permissions(self, user: str) -> set[str]:
        with self.gateway(user) as http:
            answer = http.get("api/v1/whoami")
        assert answer.status_code == 200, answer.text
        return set(answer.json()["permissions"].get(ENV, []))


@pytest.fixture(scope="module")
def stand(podman_engine: PodmanService) -> Iterator[Stand]:
    made: list[str] = []
    socket_path = podman_engine.url.removeprefix("unix://")
    with start_hub(environments={ENV: podman_engine.url}, roles_toml=ROLES_TOML) as hub:
        try:
            hub.add_user("rl-kim", groups=("rl-help",))   # hub scopes only
            hub.add_user("rl-dan", groups=("rl-help",))   # + deployer (makes the container)
            hub.add_user("rl-joe", groups=("rl-none",))   # nothing at all
            hub.add_user("rl-root", admin=True)
            hub.grant("rl-dan", "deployer", ENV)
            tokens = {name: hub.token(name) for name in ("rl-kim", "rl-dan", "rl-joe",
                                                         "rl-root")}
            hub.wait_for_gateway()
            with httpx.Client(base_url=f"{hub.url}{ENGINE}", timeout=30,
                              headers={"Authorization": f"token {tokens['rl-dan']}"}) as http:
                answer = http.post("/v1.41/containers/create",
                                   params={"name": f"rl-{uuid.uuid4().hex[:6]}"},
                                   json={"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "600"]})
                assert answer.status_code == 201, answer.text
                made.append(answer.json()["Id"])
                assert http.post(f"/v1.41/containers/{made[0]}/start").status_code == 204
            yield Stand(hub, tokens, made[0])
        finally:
            with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path),
                              base_url="http://engine", timeout=30) as http:
                for ident in made:
                    http.delete(f"/v1.41/containers/{ident}", params={"force": "1"})
                left = [ident for ident in made
                        if http.get(f"/v1.41/containers/{ident}/json").status_code != 404]
            assert not left, f"containers left behind: {left}"


def _wait_for(probe: Any, wanted: int, limit: float = 10.0) -> float:
    """Call ``probe()`` (an answer's status) until it is ``wanted``; seconds taken."""
    start = time.monotonic()
    while (status := probe()) != wanted:
        elapsed = time.monotonic() - start
        assert elapsed < limit, f"still {status} after {elapsed:.1f} s (wanted {wanted})"
        time.sleep(0.2)
    return time.monotonic() - start


def test_hub_scopes_alone_give_their_permissions(stand: Stand) -> None:
    assert stand.permissions("rl-kim") == {"read", "logs"}
    with stand.engine("rl-kim") as http:
        logs = http.get(f"/v1.41/containers/{stand.container}/logs", params={"stdout": "1"})
        assert logs.status_code == 200, logs.text
        refused = http.post(f"/v1.41/containers/{stand.container}/restart")
    assert refused.status_code == 403, refused.text
    assert refused.json()["permission"] == "lifecycle"


def test_a_user_with_no_rights_sees_no_environment(stand: Stand) -> None:
    assert stand.permissions("rl-joe") == set()
    with stand.gateway("rl-joe") as http:
        listed = http.get("api/v1/environments")
    assert listed.status_code == 200, listed.text
    assert ENV not in {item["name"] for item in listed.json()}
    with stand.engine("rl-joe") as http:
        assert http.get("/v1.41/containers/json").status_code == 403


def test_a_custom_role_adds_to_the_hub_scopes_and_a_narrowing_is_felt(
        stand: Stand) -> None:
    role = f"rl-restarter-{uuid.uuid4().hex[:4]}"
    stand.hub.define_role(role, ["read", "lifecycle"])
    stand.hub.grant("@rl-help", role, ENV)
    path = f"/v1.41/containers/{stand.container}/restart"
    try:
        with stand.engine("rl-kim") as http:
            _wait_for(lambda: http.post(path, params={"t": "0"}).status_code, 204)
            assert stand.permissions("rl-kim") == {"read", "logs", "lifecycle"}
            # Exec is in neither the hub scopes nor the role.
            exec_create = http.post(f"/v1.41/containers/{stand.container}/exec",
                                    json={"Cmd": ["true"]})
            assert exec_create.status_code == 403, exec_create.text
            stand.hub.define_role(role, ["read"])  # narrowed in the gateway's store
            elapsed = _wait_for(lambda: http.post(path, params={"t": "0"}).status_code,
                                403)
        assert elapsed < 10
        assert stand.permissions("rl-kim") == {"read", "logs"}
    finally:
        stand.hub.revoke("@rl-help", role, ENV)


def test_a_deleted_hub_token_stops_working_within_10_s(stand: Stand) -> None:
    token = stand.hub.token("rl-kim", note="rl-revoke")
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=f"{stand.hub.url}{ENGINE}", timeout=30,
                      headers=headers) as http:
        assert http.get("/v1.41/containers/json").status_code == 200  # cached by HubAuth
        tokens = httpx.get(f"{stand.hub.api_url}/users/rl-kim/tokens",
                           headers=stand.hub.admin_headers, timeout=30).json()
        found = [item["id"] for item in tokens["api_tokens"]
                 if item.get("note") == "rl-revoke"]
        assert len(found) == 1, tokens
        deleted = httpx.delete(f"{stand.hub.api_url}/users/rl-kim/tokens/{found[0]}",
                               headers=stand.hub.admin_headers, timeout=30)
        assert deleted.status_code == 204, deleted.text
        elapsed = _wait_for(lambda: http.get("/v1.41/containers/json").status_code, 401)
    assert elapsed < 10


def test_a_hub_admin_holds_every_permission_on_every_object(stand: Stand) -> None:
    assert "admin" in stand.permissions("rl-root")
    with stand.engine("rl-root") as http:
        answer = http.post(f"/v1.41/containers/{stand.container}/kill",
                           params={"signal": "SIGCONT"})
    assert answer.status_code == 204, answer.text
