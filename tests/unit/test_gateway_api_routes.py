"""The per-environment ``/api/v1`` table (``gateway/_api_routes``): every route the
agent serves has an entry (so a new one cannot slip through unguarded), every entry is
a route the agent serves, and what is not in the table is a 403."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest
from starlette.routing import Route, WebSocketRoute

import ghostpanel_kernel.server as server
from ghostpanel_kernel.gateway._api_routes import API_ROUTES, ApiRoute, classify_api
from ghostpanel_kernel.gateway._permissions import PERMISSIONS
from ghostpanel_kernel.gateway._refusal import Refusal
from ghostpanel_kernel.server import _api

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _route_modules() -> list[ModuleType]:
    # Every _routes_* module in the package, not only the ones _api lists today.
    names = sorted(info.name for info in pkgutil.iter_modules(server.__path__)
                   if info.name.startswith("_routes_"))
    assert names, "no server/_routes_* modules found"
    return [importlib.import_module(f"ghostpanel_kernel.server.{name}") for name in names]


def _documented() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for paths in [_api.PATHS, *(module.PATHS for module in _route_modules())]:
        for path, item in paths.items():
            found.update((method.upper(), path) for method in item if method in _HTTP_METHODS)
    return found


def _served() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for module in _route_modules():
        for route in module.ROUTES:
            if isinstance(route, WebSocketRoute):
                found.add(("GET", route.path))
            elif isinstance(route, Route):
                found.update((method, route.path) for method in route.methods or ()
                             if method != "HEAD")
    return found


def test_the_route_modules_are_all_found() -> None:
    assert set(_api.ROUTE_MODULES) <= set(_route_modules())


@pytest.mark.parametrize(("method", "path"), sorted(_documented() | _served()))
def test_every_agent_route_has_an_entry(method: str, path: str) -> None:
    call = classify_api(method, path)
    assert call.template == path
    assert call.permission in PERMISSIONS


def test_every_entry_is_an_agent_route() -> None:
    known = _documented() | _served()
    stale = [(route.method, route.template) for route in API_ROUTES
             if (route.method, route.template) not in known]
    assert stale == []


def test_websocket_entries_are_the_agents_websockets() -> None:
    sockets = {route.path for module in _route_modules() for route in module.ROUTES
               if isinstance(route, WebSocketRoute)}
    assert {route.template for route in API_ROUTES if route.websocket} == sockets


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_each_entry_fills_its_parameters(route: ApiRoute) -> None:
    path = route.template.replace("{id}", "web").replace("{name}", "nightly")
    call = classify_api(route.method, path)
    assert (call.template, call.permission, call.mutating) == (
        route.template, route.permission, route.mutating)
    if "{id}" in route.template:
        assert call.params == {"id": "web"} and call.target == "web"
    if "{name}" in route.template:
        assert call.params == {"name": "nightly"}


@pytest.mark.parametrize(("method", "path", "permission", "mutating"), [
    ("GET", "/api/v1/containers", "read", False),
    ("POST", "/api/v1/containers", "create", True),
    ("DELETE", "/api/v1/containers/web", "create", True),
    ("POST", "/api/v1/containers/web/restart", "lifecycle", True),
    ("GET", "/api/v1/containers/web/exec", "exec", True),
    ("GET", "/api/v1/events", "read", False),
    ("POST", "/api/v1/gpus/allocate", "gpus", True),
    ("POST", "/api/v1/surge/apply", "surge", True),
    ("POST", "/api/v1/surge/plan", "surge", False),
    ("POST", "/api/v1/containers/web/snapshot", "snapshots", True),
    ("POST", "/api/v1/snapshots/nightly/restore", "admin", True),
    ("POST", "/api/v1/network/quic", "admin", True),
    ("HEAD", "/api/v1/health", "read", False),
])
def test_permissions_per_api_route(method: str, path: str, permission: str,
                                   mutating: bool) -> None:
    call = classify_api(method, path)
    assert (call.permission, call.mutating) == (permission, mutating)


def test_listings_and_reviews() -> None:
    assert classify_api("GET", "/api/v1/containers").listing == "containers"
    assert classify_api("GET", "/api/v1/events").listing == "events"
    assert classify_api("POST", "/api/v1/containers").review == "container-create"
    assert classify_api("POST", "/api/v1/surge/deploy").review == "boltfile"
    assert classify_api("GET", "/api/v1/events").websocket


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/nothing"), ("PUT", "/api/v1/containers"), ("GET", "/api/v1/containers/a/b"),
    ("POST", "/api/v1/containers/web"), ("GET", "/api/v2/containers"), ("GET", "/info"),
    ("PATCH", "/api/v1/containers/web"), ("GET", "/api/v1"),
])
def test_unknown_api_routes_are_a_403(method: str, path: str) -> None:
    with pytest.raises(Refusal) as caught:
        classify_api(method, path)
    assert caught.value.status == 403


@pytest.mark.parametrize("path", [
    "/api/v1/containers/../events", "/api/v1//containers", "/api/v1/containers/", "api/v1",
    "/api/v1/containers/./start", "/api/v1/containers/a\x00b", "/api/v1/containers/a\\b",
])
def test_non_canonical_api_paths_are_a_400(path: str) -> None:
    with pytest.raises(Refusal) as caught:
        classify_api("GET", path)
    assert caught.value.status == 400


def test_docs_list_every_api_route_with_its_permission() -> None:
    page = (Path(__file__).parents[2] / "docs" / "rbac.md").read_text(encoding="utf-8")
    missing = [f"{r.method} {r.template}" for r in API_ROUTES
               if f"| {r.method} | `{r.template}` | {r.permission} |" not in page]
    assert missing == []


def test_target_kinds_say_what_the_path_names() -> None:
    assert classify_api("POST", "/api/v1/containers/web/stop").target_kind == "container"
    assert classify_api("DELETE", "/api/v1/snapshots/nightly").target_kind == "snapshot"
    assert classify_api("POST", "/api/v1/containers").target_kind == "container"
    # Routes naming no object have none (callers name their action after the path).
    assert classify_api("POST", "/api/v1/gpus/allocate").target_kind == ""
    assert classify_api("GET", "/api/v1/containers").target_kind == ""
