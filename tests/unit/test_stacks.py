"""The stacks page's pure parts: finding stacks in listings (Surge's labels, Bolt's
names), the Boltfile adoption writes from an inspect, the Boltfile label, and the
grid's cells (the Updates column's included). No engine: listings are built as the
Engine API returns them; the view's own tests use an engine that is not there."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ghostpanel_widgets._stacks_rows import (
    CHECKING,
    StackInfo,
    drift_text,
    replicas_text,
    stack_row,
)

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Container
from ghostpanel_kernel.surge import (
    LABEL_BOLTFILE,
    LABEL_LOCK,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    Action,
    EnvironmentPlan,
    SurgePlan,
    desired_state,
)
from ghostpanel_kernel.surge._adopt import boltfile_text, service_table
from ghostpanel_kernel.surge._projects import bolt_name, group_stacks

ABSENT = "unix:///nonexistent/podman.sock"


def _container(name: str, labels: dict[str, str] | None = None,
               state: str = "running") -> Container:
    attrs = {"Id": f"{abs(hash(name)):064x}", "Names": [f"/{name}"], "Labels": labels or {},
             "State": state, "Image": "localhost/busybox:latest"}
    return Container(None, attrs, environment="east")  # type: ignore[arg-type]


def _surge(project: str, service: str, replica: int, name: str, *, state: str = "running",
           **extra: str) -> Container:
    return _container(name, {LABEL_PROJECT: project, LABEL_SERVICE: service,
                             LABEL_REPLICA: str(replica), **extra}, state)


@pytest.mark.parametrize(("name", "project", "expected"), [
    ("shop_web", None, ("shop", "web", 1)),
    ("shop_web_3", None, ("shop", "web", 3)),
    ("shop_api_v2", None, ("shop", "api_v2", 1)),
    ("my_shop_web_2", "my_shop", ("my_shop", "web", 2)),
    ("other_web", "shop", None),
    ("shop_", "shop", None),
    ("web", None, None),
    ("shop.surge-lock", None, None),
    ("_web", None, None),
])
def test_bolt_name_reads_bolts_container_names(name: str, project: str | None,
                                               expected: tuple[str, str, int] | None) -> None:
    assert bolt_name(name, project) == expected


def test_group_stacks_tells_surge_projects_from_bolt_stacks() -> None:
    east = [
        _surge("shop", "web", 1, "shop_web_1", **{LABEL_BOLTFILE: "/srv/shop/Boltfile.toml"}),
        _surge("shop", "web", 2, "shop_web_2", **{LABEL_BOLTFILE: "/srv/shop/Boltfile.toml"}),
        _surge("shop", "web", 1, "shop_web_1-surge-old-0123456789ab"),  # an apply's leftover
        _container("shop.surge-lock", {LABEL_LOCK: "shop"}),
        _container("legacy_db", state="exited"),
        _container("legacy_web_1"),
        _container("blog_web", {"com.docker.compose.project": "blog"}),
        _container("standalone"),
    ]
    west = [_surge("shop", "web", 1, "shop_web", state="exited")]
    shop, legacy = group_stacks([("east", east), ("west", west)])

    assert (shop.name, shop.managed, shop.services) == ("shop", True, ("web",))
    assert shop.environments == ("east", "west")
    assert shop.replicas("east") == (2, 2) and shop.replicas("west") == (0, 1)
    assert shop.state == "partial" and shop.boltfile == "/srv/shop/Boltfile.toml"
    assert (legacy.name, legacy.managed, legacy.services) == ("legacy", False, ("db", "web"))
    assert legacy.replicas("east") == (1, 2) and legacy.boltfile == ""


def test_service_table_keeps_what_the_operator_set_not_what_the_image_or_engine_did() -> None:
    inspect: dict[str, Any] = {
        "Config": {
            "Image": "localhost/app:1", "Cmd": ["serve"], "Entrypoint": ["/init"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm", "container=podman", "HOME=/root", "HOSTNAME=abc",
                    "LANG=C.UTF-8", "MODE=prod"],
            "Labels": {"org.opencontainers.image.title": "app", "team": "web"},
            "Tty": True, "User": "app"},
        "HostConfig": {
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "NanoCpus": 1_500_000_000, "Memory": 268435456},
        "Mounts": [
            {"Type": "volume", "Name": "appdata", "Destination": "/data", "RW": True},
            {"Type": "bind", "Source": "/srv/conf", "Destination": "/conf", "RW": False},
            {"Type": "tmpfs", "Destination": "/run"}],
    }
    image = {"Config": {"Cmd": ["serve"], "Entrypoint": ["/entry"], "Env": ["LANG=C.UTF-8"],
                        "Labels": {"org.opencontainers.image.title": "app"}}}
    volumes: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    table = service_table(inspect, image, "app", volumes, notes)

    assert table == {
        "image": "localhost/app:1", "entrypoint": ["/init"], "env": {"MODE": "prod"},
        "labels": {"team": "web"}, "ports": ["5353:53/udp", "8080:80"],
        "volumes": ["appdata:/data", "/srv/conf:/conf:ro"], "restart": "on-failure:3",
        "cpu_limit": "1.5", "memory_limit": "268435456", "user": "app", "tty": True}
    assert volumes == {"appdata": {"name": "appdata", "external": True}}
    assert any("127.0.0.1 only" in note for note in notes)
    assert any("tmpfs" in note for note in notes)

    # The Boltfile written from it is one Surge accepts, mounting the very volume.
    text = boltfile_text("legacy", {"app": table}, volumes)
    state = desired_state(Boltfile.loads(text))
    assert state.services["app"].create["volumes"][0] == "appdata:/data"
    assert state.volumes["appdata"].external


def test_desired_state_records_the_boltfile_a_file_came_from(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text('project = "shop"\n[services.web]\nimage = "localhost/busybox"\n')
    assert desired_state(Boltfile.load(path)).source == str(path.absolute())
    assert desired_state(Boltfile.loads(path.read_text())).source == ""
    # A name that is no file here (the API's uploads) is no place to find it again.
    assert desired_state(Boltfile.loads(path.read_text(), path="upload.toml")).source == ""


def _plan(*actions: Action, error: BaseException | None = None) -> SurgePlan:
    return SurgePlan("shop", (EnvironmentPlan("east", tuple(actions), error),))


def test_grid_cells_say_replicas_drift_and_boltfile() -> None:
    shop, legacy = group_stacks([("east", [
        _surge("shop", "web", 1, "shop_web_1", **{LABEL_BOLTFILE: "/srv/Boltfile.toml"}),
        _container("legacy_web")])])
    in_sync = StackInfo(shop, "/srv/Boltfile.toml", {"east": 2, "west": 0},
                        _plan(Action("unchanged", "web", "shop_web_1", "up to date")))
    assert stack_row(in_sync, ["east", "west"]) == [
        "shop", "web", "east 1/2", "running", "in sync", "Boltfile.toml", ""]
    assert stack_row(replace(in_sync, updates="1 update available (shop_web_1)"),
                     ["east"])[-1] == "1 update available (shop_web_1)"
    drifted = StackInfo(shop, "/srv/Boltfile.toml", {"east": 2}, _plan(
        Action("recreate", "web", "shop_web_1", "configuration changed"),
        Action("create", "web", "shop_web_2", "new replica 2 of 2"),
        Action("create", "web", "shop_web_3", "new replica 3 of 3")))
    assert drift_text(drifted) == "3 changes (1 recreate, 2 create)"
    assert drift_text(StackInfo(shop, "", plan=_plan(error=OSError("gone")))) == \
        "plan failed on east: gone"
    assert stack_row(StackInfo(shop), ["east"])[3:] == ["running", "Boltfile unknown",
                                                        "unknown", ""]
    assert replicas_text(StackInfo(legacy), ["east"]) == "east 1/1"
    assert stack_row(StackInfo(legacy, updates=CHECKING), ["east"])[3:] == [
        "running (Bolt CLI)", "not managed by Surge: adoptable", "none", "checking…"]


def test_the_examples_in_the_docstrings_hold() -> None:
    import doctest

    from ghostpanel_widgets import _stacks_rows, _stacks_updates

    from ghostpanel_kernel.surge import _adopt, _projects

    for module in (_projects, _adopt, _stacks_rows, _stacks_updates):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0, module


def test_the_view_outside_a_kernel_says_what_it_needs_and_closes_whole() -> None:
    from ghostpanel_widgets import StacksView
    from ipywidgets.widgets.widget import _instances
    from traitlets import TraitError

    from ghostpanel_kernel import connect

    before = set(_instances)
    env = connect("unix:///nonexistent/podman.sock", name="east")
    view = StacksView([env])
    assert view.status.level == "info" and "Press Refresh" in view.status.message
    assert view.detail.layout.display == "none" and view.rows == []
    view.plan_button.click()  # no event loop: said, nothing raised
    assert view.status.level == "error" and "event loop" in view.status.message
    with pytest.raises(TraitError, match="0 seconds or more"):
        view.stop_timeout = -1
    view.close()
    assert not set(_instances) - before


def test_open_boltfile_shows_the_projects_file_in_an_editor(tmp_path: Path) -> None:
    from ghostpanel_widgets import StacksView

    from ghostpanel_kernel import connect

    path = tmp_path / "Boltfile.toml"
    path.write_text('project = "shop"\n[services.web]\nimage = "localhost/busybox"\n')
    view = StacksView([connect("unix:///nonexistent/podman.sock", name="east")])
    try:
        (shop,) = group_stacks([("east", [_surge("shop", "web", 1, "shop_web")])])
        view._infos = {("surge", "shop"): StackInfo(shop)}  # as a refresh leaves them
        view._show_grid()
        view.project = "shop"
        assert view.grid.value == ("surge", "shop")
        view.open_button.click()  # the Boltfile is unknown: said, no editor
        assert view.status.level == "error" and "unknown" in view.status.message
        assert view.editor is None

        view._infos = {("surge", "shop"): StackInfo(shop, str(path))}
        view._show_grid()
        assert view.boltfile_field.value == str(path)
        editor = view.open_boltfile()
        assert editor.path == str(path) and 'image = "localhost/busybox"' in editor.value
        assert view.editor_box.children == (editor,)
    finally:
        view.close()


async def test_updates_fill_after_the_listing_and_a_refused_redeploy_is_said(
        tmp_path: Path) -> None:
    from ghostpanel_widgets import StacksView

    from ghostpanel_kernel import connect

    other = tmp_path / "Boltfile.toml"
    other.write_text('project = "other"\n[services.web]\nimage = "localhost/busybox"\n')
    env = connect(ABSENT, name="east")
    view = StacksView([env])
    try:
        await view.task  # the first listing: the engine is not there
        (shop,) = group_stacks([("east", [_surge("shop", "web", 1, "shop_web")])])
        view._infos = {("surge", "shop"): StackInfo(shop, str(other))}  # as a listing
        view._show_grid()
        view.project = "shop"

        checking = asyncio.ensure_future(view.check_updates())
        await asyncio.sleep(0)  # the rows change before any registry or engine answers
        assert view.rows[0][6] == CHECKING
        cells = await checking
        # The engine cannot list the containers: the cell says where and why.
        assert cells is not None and cells["shop"].startswith("unknown (east: ")
        assert view.rows[0][6] == cells["shop"]
        assert view.grid.value == ("surge", "shop")  # the selection stayed

        # The labels' Boltfile is another project's: refused before any engine is asked.
        assert await view.redeploy_latest() is None
        assert view.status.level == "error"
        assert view.status.message.startswith("Redeploy shop refused, nothing changed:")
        assert "'other'" in view.status.message
        assert view.progress.layout.display == "none"
        assert "Refused:" in view.log_view.value
    finally:
        view.close()
        await env.aclose()


async def test_a_new_listing_drops_the_updates_pass_of_the_last_one() -> None:
    from ghostpanel_widgets import StacksView

    from ghostpanel_kernel import connect

    env = connect(ABSENT, name="east")
    view = StacksView([env], check_images=False)
    try:
        await view.task
        assert view.updates_task is None  # check_images=False: no pass at all
        (shop,) = group_stacks([("east", [_surge("shop", "web", 1, "shop_web")])])
        view._infos = {("surge", "shop"): StackInfo(shop)}
        checking = asyncio.ensure_future(view.check_updates())
        await asyncio.sleep(0)
        first = view.updates_task
        await view.refresh()  # the engine is still away: no stack, the pass cancelled
        assert await checking is None
        assert first is not None and first.cancelled()
        assert view.rows == []
    finally:
        view.close()
        await env.aclose()
