"""The Engine API route table and ``classify`` (``gateway/_engine_routes``,
``_engine_policy``): every entry is reachable and carries a real permission, what is
not in the table is a 403, image names may hold slashes, and a fixed word of a route
sent percent-encoded is a 400 rather than a guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpanel_kernel.gateway._engine_policy import EngineCall, Refusal, classify
from ghostpanel_kernel.gateway._engine_routes import ENGINE_ROUTES, EngineRoute
from ghostpanel_kernel.gateway._permissions import PERMISSIONS

_TARGET_KINDS = {"container", "exec", "image", "volume", "network", "system"}
_LISTINGS = {None, "containers", "volumes", "networks", "events", "df"}
_PRUNES = {None, "containers", "images", "volumes", "networks", "build"}


def _example(route: EngineRoute) -> tuple[str, dict[str, str]]:
    value = "registry.example:5000/team/app:1.2" if route.greedy else "abc123"
    name = "name" if "{name}" in route.template else "id"
    return route.template.replace("{" + name + "}", value), (
        {name: value} if "{" in route.template else {})


def _refusal(method: str, path: bytes) -> Refusal:
    with pytest.raises(Refusal) as caught:
        classify(method, path)
    return caught.value


@pytest.mark.parametrize("route", ENGINE_ROUTES, ids=lambda r: f"{r.method} {r.template}")
@pytest.mark.parametrize("prefix", ["", "/v1.41", "/v1.47"])
def test_every_entry_is_reachable_and_well_formed(route: EngineRoute, prefix: str) -> None:
    path, params = _example(route)
    call = classify(route.method, (prefix + path).encode())
    assert (call.method, call.template) == (route.method, route.template)
    assert call.params == params
    assert call.version == (prefix[2:] or None)
    assert call.path == path
    assert call.permission in PERMISSIONS and call.permission == route.permission
    assert call.mutating is route.mutating
    assert call.target_kind in _TARGET_KINDS
    assert call.listing in _LISTINGS and call.prune in _PRUNES


def test_no_two_entries_share_a_method_and_template() -> None:
    keys = [(route.method, route.template) for route in ENGINE_ROUTES]
    assert len(keys) == len(set(keys))


def test_mutating_follows_the_method_except_where_documented() -> None:
    exceptions = {(r.method, r.template) for r in ENGINE_ROUTES
                  if r.mutating != (r.method not in ("GET", "HEAD"))}
    assert exceptions == {("POST", "/auth"), ("POST", "/containers/{id}/resize"),
                          ("POST", "/containers/{id}/wait"), ("POST", "/exec/{id}/resize"),
                          ("GET", "/containers/{id}/attach/ws")}


def test_listings_are_the_calls_the_gateway_filters() -> None:
    listed = {(r.template, r.listing) for r in ENGINE_ROUTES if r.listing}
    assert listed == {("/containers/json", "containers"), ("/volumes", "volumes"),
                      ("/networks", "networks"), ("/events", "events"),
                      ("/system/df", "df")}


@pytest.mark.parametrize(("method", "path", "template", "permission"), [
    ("HEAD", b"/v1.41/_ping", "/_ping", "read"),
    ("GET", b"/v1.41/containers/web/logs", "/containers/{id}/logs", "logs"),
    ("POST", b"/v1.41/containers/web/kill", "/containers/{id}/kill", "lifecycle"),
    ("POST", b"/v1.41/containers/web/exec", "/containers/{id}/exec", "exec"),
    ("HEAD", b"/v1.41/containers/web/archive", "/containers/{id}/archive", "files"),
    ("PUT", b"/v1.41/containers/web/archive", "/containers/{id}/archive", "files"),
    ("DELETE", b"/v1.41/containers/web", "/containers/{id}", "create"),
    ("POST", b"/v1.41/containers/create", "/containers/create", "create"),
    ("POST", b"/v1.41/containers/prune", "/containers/prune", "create"),
    ("POST", b"/v1.41/images/create", "/images/create", "images"),
    ("POST", b"/v1.41/build", "/build", "images"),
    ("POST", b"/v1.41/volumes/create", "/volumes/create", "volumes"),
    ("POST", b"/v1.41/networks/n1/connect", "/networks/{id}/connect", "networks"),
    ("GET", b"/v1.41/system/df", "/system/df", "read"),
    ("GET", b"/v1.41/exec/e1/json", "/exec/{id}/json", "read"),
])
def test_permissions_per_route(method: str, path: bytes, template: str,
                               permission: str) -> None:
    call = classify(method, path)
    assert (call.template, call.permission) == (template, permission)


def test_exec_calls_name_the_exec_not_the_container() -> None:
    start = classify("POST", b"/v1.41/exec/4f1e2d/start")
    assert (start.target_kind, start.target, start.permission) == ("exec", "4f1e2d", "exec")
    create = classify("POST", b"/v1.41/containers/web/exec")
    assert (create.target_kind, create.target) == ("container", "web")


@pytest.mark.parametrize(("path", "template", "name"), [
    (b"/v1.41/images/docker.io/library/busybox/json", "/images/{name}/json",
     "docker.io/library/busybox"),
    (b"/v1.41/images/docker.io/library/busybox:latest/json", "/images/{name}/json",
     "docker.io/library/busybox:latest"),
    (b"/v1.41/images/localhost:5000/a/b/c:tag/history", "/images/{name}/history",
     "localhost:5000/a/b/c:tag"),
    (b"/v1.41/images/busybox/json", "/images/{name}/json", "busybox"),
    (b"/v1.41/images/json/json", "/images/{name}/json", "json"),
    (b"/v1.41/images/a/json/json", "/images/{name}/json", "a/json"),
    (b"/v1.41/images/sha256:0123abcd/json", "/images/{name}/json", "sha256:0123abcd"),
    (b"/v1.41/images/quay.io/x/y/get", "/images/{name}/get", "quay.io/x/y"),
    (b"/v1.41/images/quay.io/x/y/push", "/images/{name}/push", "quay.io/x/y"),
    (b"/v1.41/images/quay.io/x/y/tag", "/images/{name}/tag", "quay.io/x/y"),
    (b"/v1.41/distribution/docker.io/library/busybox:1/json", "/distribution/{name}/json",
     "docker.io/library/busybox:1"),
    (b"/v1.41/images/my%2Dapp/json", "/images/{name}/json", "my-app"),
])
def test_image_names_may_hold_slashes(path: bytes, template: str, name: str) -> None:
    method = "POST" if path.endswith((b"/push", b"/tag")) else "GET"
    call = classify(method, path)
    assert (call.template, call.params, call.target_kind) == (template, {"name": name},
                                                             "image")


def test_image_delete_takes_the_whole_rest_of_the_path() -> None:
    call = classify("DELETE", b"/v1.45/images/docker.io/library/busybox:latest")
    assert call.params == {"name": "docker.io/library/busybox:latest"}
    assert call.forward_path() == "/v1.45/images/docker.io/library/busybox:latest"


def test_fixed_image_routes_win_over_names() -> None:
    assert classify("GET", b"/v1.41/images/json").template == "/images/json"
    assert classify("GET", b"/v1.41/images/get").template == "/images/get"
    assert classify("GET", b"/v1.41/images/search").template == "/images/search"
    assert classify("DELETE", b"/v1.41/images/json").params == {"name": "json"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", b"/v1.41/swarm"), ("POST", b"/v1.41/swarm/init"), ("GET", b"/v1.41/services"),
    ("POST", b"/v1.41/services/create"), ("GET", b"/v1.41/nodes"), ("GET", b"/v1.41/tasks"),
    ("GET", b"/v1.41/secrets"), ("POST", b"/v1.41/configs/create"),
    ("GET", b"/v1.41/plugins"), ("POST", b"/v1.41/plugins/pull"), ("POST", b"/v1.41/session"),
    ("POST", b"/v1.41/grpc"), ("GET", b"/v4.0.0/libpod/info".replace(b"v4.0.0/", b"")),
    ("POST", b"/v1.41/libpod/containers/create"), ("PUT", b"/v1.41/volumes/v1"),
    ("GET", b"/v/info"), ("GET", b"/v1.41/containers"), ("GET", b"/v1.41/containers/x"),
    ("POST", b"/v1.41/containers/x/json"), ("PATCH", b"/v1.41/containers/x/json"),
    ("GET", b"/v1.41/containers/x/stop"), ("POST", b"/v1.41/containers/x/y/stop"),
    ("OPTIONS", b"/v1.41/_ping"), ("HEAD", b"/v1.41/containers/json"),
    ("GET", b"/v1.41/images"), ("DELETE", b"/v1.41/images"),
])
def test_what_is_not_in_the_table_is_a_403(method: str, path: bytes) -> None:
    refusal = _refusal(method, path)
    assert refusal.status == 403
    assert "not in the gateway's table" in refusal.message


@pytest.mark.parametrize(("method", "path"), [
    ("GET", b"/v1.41/containers/%6Ason"), ("GET", b"/v1.41/containers/%6A%73%6F%6E"),
    ("POST", b"/v1.41/containers/%63reate"), ("GET", b"/v1.41/%69mages/json"),
    ("GET", b"/%761.41/info"), ("GET", b"/v1.41/containers/web/%6Ason"),
    ("GET", b"/v1.41/images/busybox/%6Ason"),
])
def test_a_fixed_word_sent_percent_encoded_is_a_400(method: str, path: bytes) -> None:
    refusal = _refusal(method, path)
    assert refusal.status == 400


@pytest.mark.parametrize(("method", "path"), [
    ("GET", b"/v1.41/images/%2Fbusybox/json"), ("GET", b"/v1.41/%2Fcontainers/json"),
    ("GET", b"/v1.41/containers/json/%2Fx"), ("POST", b"/v1.41/containers/%2Fcreate"),
])
def test_a_leading_encoded_slash_only_goes_where_a_name_does(method: str,
                                                             path: bytes) -> None:
    assert _refusal(method, path).status == 400


def test_a_leading_encoded_slash_in_a_container_name_is_kept_for_resolving() -> None:
    call = classify("POST", b"/v1.41/containers/%2Fweb/kill")
    assert call.params == {"id": "/web"} and call.target == "/web"
    full = "f" * 64
    assert call.forward_path(full) == f"/v1.41/containers/{full}/kill"


def test_forward_path_fills_the_template_and_quotes() -> None:
    call = classify("GET", b"/v1.41/containers/web/json")
    assert call.forward_path() == "/v1.41/containers/web/json"
    assert call.forward_path("we b") == "/v1.41/containers/we%20b/json"
    assert classify("GET", b"/_ping").forward_path() == "/_ping"


def test_commit_names_its_container_from_the_query() -> None:
    call = classify("POST", b"/v1.41/commit", b"container=web&repo=x")
    assert (call.target_kind, call.target, call.permission) == ("container", "web",
                                                               "images")
    assert classify("POST", b"/v1.41/commit?container=db&tag=1").target == "db"
    assert classify("POST", b"/v1.41/commit").target is None
    assert _refusal("POST", b"/v1.41/commit?container=a&container=b").status == 400


def test_query_is_split_off_and_parsed() -> None:
    call = classify("GET", b"/v1.41/containers/json?all=1&filters=%7B%7D")
    assert call.template == "/containers/json"
    assert call.query == {"all": ["1"], "filters": ["{}"]}


def test_lower_case_methods_are_read_as_upper_case() -> None:
    assert classify("post", b"/v1.41/containers/web/stop").method == "POST"


def test_engine_call_is_frozen() -> None:
    call = classify("GET", b"/_ping")
    assert isinstance(call, EngineCall)
    with pytest.raises(AttributeError):
        call.permission = "admin"  # type: ignore[misc]


def test_docs_list_every_engine_route_with_its_permission() -> None:
    page = (Path(__file__).parents[2] / "docs" / "rbac.md").read_text(encoding="utf-8")
    missing = [f"{r.method} {r.template}" for r in ENGINE_ROUTES
               if f"| {r.method} | `{r.template}` | {r.permission} |" not in page]
    assert missing == []
