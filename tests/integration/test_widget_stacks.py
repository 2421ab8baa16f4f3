"""``StacksView`` on the session's two real Podman engines (``east`` and ``west``).

Each test has its own project ``t<hex>`` (``tests/integration/surge_project.py``),
destroyed and swept afterwards (the images the updates test pushed are removed too).
The view is driven as its buttons drive it (its ``async`` methods, and ``project`` to
select a row); what it shows is read from its grid and its views, what it did from the
engines.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from ghostpanel_widgets._stacks import StacksView

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment, NotFound
from ghostpanel_kernel.surge import (
    LABEL_BOLTFILE,
    LABEL_PROJECT,
    LABEL_SERVICE,
    apply_surge,
    destroy_surge,
)
from tests.image_registry import ImageRegistry
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, FAST, SLEEPER, Project, free_port
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

east = surge_project.east
west = surge_project.west
project = surge_project.project

STACK = f"""
[services.db]
image = "{BUSYBOX}"
command = {SLEEPER}
env = {{ ROLE = "db" }}

[services.web]
image = "{BUSYBOX}"
command = {SLEEPER}
replicas = 2
regions = ["us-east"]
"""


def _row(view: StacksView, kind: str, name: str) -> list[str]:
    keys = view.grid.row_keys
    assert (kind, name) in keys, f"{(kind, name)} not among {keys}"
    return view.rows[keys.index((kind, name))]


async def test_stacks_view_shows_replicas_drift_applies_and_destroys_by_name(
        project: Project, shown) -> None:
    bf = project.boltfile(STACK)
    assert (await apply_surge(bf, project.envs, **FAST)).ok
    view = await shown(StacksView(project.envs, stop_timeout=0))

    row = _row(view, "surge", project.name)
    assert row[:5] == [project.name, "db, web", "east 3/3 · west 1/1", "running", "in sync"]
    assert row[5] == "Boltfile.toml"  # found through the containers' labels
    assert view.status.level == "success", view.status.message

    # The Boltfile changes: the db replicas (one per environment) drift.
    Path(bf.path).write_text(Path(bf.path).read_text().replace('"db"', '"primary"'))
    await view.refresh()
    assert _row(view, "surge", project.name)[4] == "2 changes (2 recreate)"

    view.project = project.name
    assert view.detail.layout.display == "flex"
    assert f"{project.name}_web_2" in view.services_view.value
    plan = await view.plan()
    assert plan is not None and 'data-action="recreate"' in view.plan_view.value

    result = await view.apply()
    assert result is not None and result.ok, view.status.message
    assert view.progress.bar_style == "success" and view.progress.value == view.progress.max
    assert f"east: started {project.name}_db" in view.log_view.value
    assert _row(view, "surge", project.name)[4] == "in sync"
    db = await project.west.containers.get(f"{project.name}_db")
    assert "ROLE=primary" in db.attrs["Config"]["Env"]

    # Destroy asks for the name: a wrong one removes nothing.
    view.destroy_button.click()
    assert view.destroy_box.layout.display == "flex"
    assert await view.destroy(project.name.upper()) is None
    assert view.status.level == "error" and "nothing was removed" in view.status.message
    assert len(await project.containers(project.east)) == 3

    destroyed = await view.destroy(project.name)
    assert destroyed is not None and destroyed.ok, view.status.message
    assert await project.containers(project.east) == {}
    assert await project.containers(project.west) == {}
    assert ("surge", project.name) not in view.grid.row_keys
    assert view.project == "" and view.detail.layout.display == "none"


async def test_stacks_view_adopts_a_stack_bolts_cli_started(
        project: Project, east: Environment, shown, tmp_path: Path) -> None:
    # What `bolt surge up` leaves: `podman run -d --name {project}_{service} ...`, no
    # label; two replicas of web, numbered as Bolt's scale numbers them.
    port = free_port()
    names = [f"{project.name}_web_1", f"{project.name}_web_2", f"{project.name}_api"]
    for name in names:
        published = {"ports": {"8080/tcp": port}} if name.endswith("api") else {}
        container = await east.containers.create(
            image=BUSYBOX, name=name, command=["sleep", "300"], env={"MODE": "bolt"},
            restart_policy="unless-stopped", **published)
        await container.start()
    # Named before the first listing: selected once the grid shows it.
    view = await shown(StacksView([east], stop_timeout=0, project=project.name))

    row = _row(view, "bolt", project.name)
    assert row[1:5] == ["api, web", "east 3/3", "running (Bolt CLI)",
                        "not managed by Surge: adoptable"]
    assert view.grid.value == ("bolt", project.name)
    assert view.detail.layout.display == "flex"
    assert view.bolt_box.layout.display == "flex"
    assert view.managed_box.layout.display == "none"

    adoption = await view.preview_adoption()
    assert adoption is not None, view.status.message
    assert f'ports = ["{port}:8080"]' in adoption.text and "replicas = 2" in adoption.text
    assert 'MODE = "bolt"' in adoption.text and 'restart = "unless-stopped"' in adoption.text
    assert view.plan_view.value.count('data-action="recreate"') == 3
    assert not view.adopt_button.disabled
    # Nothing changed yet: still unlabelled.
    assert all(LABEL_PROJECT not in c.labels
               for c in (await project.containers(east)).values())

    target = tmp_path / "adopted.bolt.toml"
    result = await view.adopt(str(target))
    assert result is not None and result.ok, view.status.message
    project.last = None  # destroyed by its labels now
    assert target.read_text() == adoption.text
    found = await project.containers(east)
    assert sorted(found) == sorted(names)
    for container in found.values():
        assert container.labels[LABEL_PROJECT] == project.name
        assert container.labels[LABEL_BOLTFILE] == str(target)
    assert {c.labels[LABEL_SERVICE] for c in found.values()} == {"api", "web"}
    row = _row(view, "surge", project.name)
    assert row[2:6] == ["east 3/3", "running", "in sync", "adopted.bolt.toml"]
    assert ("bolt", project.name) not in view.grid.row_keys
    assert view.selected is not None and view.selected.project.managed


async def test_stacks_view_says_which_environment_is_unreachable(
        east: Environment, shown) -> None:
    dead = connect("tcp://127.0.0.1:9", name="dead")
    try:
        view = await shown(StacksView([east, dead]))
        assert view.status.level == "error"
        assert "unreachable: dead:" in view.status.message
    finally:
        await dead.aclose()


async def test_stacks_view_shows_an_image_update_and_redeploys_the_latest_image(
        project: Project, podman_engine: PodmanService, image_registry: ImageRegistry,
        busybox_archive: Path, shown) -> None:
    # ``app`` runs an image of the loopback registry, ``side`` the engine's local busybox.
    east = project.east
    made: list[str] = []  # image ids, removed at the end

    def push(version: int) -> str:
        """A new image under the same tag: what CI pushing ``app:latest`` again does."""
        staged = f"localhost/{project.name}-v{version}:latest"
        made.append(podman_engine.import_image(
            busybox_archive, staged, changes=('CMD ["sh"]', f"ENV V={version}")))
        reference = image_registry.push(podman_engine, staged,
                                        f"gp-stack-updates/{project.name}:latest")
        podman_engine.podman("image", "untag", staged)
        return reference

    reference = push(1)
    bf = project.boltfile(f"""
[services.app]
image = "{reference}"
command = {SLEEPER}

[services.side]
image = "{BUSYBOX}"
command = {SLEEPER}
""")
    try:
        assert (await apply_surge(bf, [east], **FAST)).ok  # pulls app's image
        view = await shown(StacksView([east], stop_timeout=0, project=project.name))
        # The grid shows before the registry is asked; the column follows.
        assert view.updates_task is not None
        await view.updates_task
        assert _row(view, "surge", project.name)[4:] == ["in sync", "Boltfile.toml",
                                                         "current (1 unknown)"]
        old_app = await east.containers.get(f"{project.name}_app")
        side = await east.containers.get(f"{project.name}_side")

        push(2)
        cells = await view.check_updates()  # asks the registry again
        update = f"1 update available ({project.name}_app)"
        assert cells == {project.name: update}, view.status.message
        assert _row(view, "surge", project.name)[6] == update
        assert f"1 stack with newer images ({project.name})" in view.status.message

        result = await view.redeploy_latest()
        assert result is not None and result.ok, view.status.message
        assert result.summary() == ["east: 1 recreated, 1 unchanged"]
        assert view.status.level == "success" and "Redeployed" in view.status.message
        new_app = await east.containers.get(f"{project.name}_app")
        assert new_app.id != old_app.id and "V=2" in new_app.attrs["Config"]["Env"]
        assert (await east.containers.get(f"{project.name}_side")).id == side.id
        await view.wait_idle()  # the listing after the redeploy, and its Updates pass
        assert _row(view, "surge", project.name)[6] == "current (1 unknown)"

        # An edit not applied yet: the redeploy refuses to slip it in, and says so.
        Path(bf.path).write_text(Path(bf.path).read_text().replace(
            f'image = "{BUSYBOX}"', f'image = "{BUSYBOX}"\nenv = {{ SIDE = "2" }}'))
        await view.refresh()
        assert await view.redeploy_latest() is None
        assert view.status.level == "error", view.status.message
        assert "refused, nothing changed" in view.status.message
        assert f"recreate {project.name}_side" in view.status.message
        assert (await east.containers.get(f"{project.name}_side")).id == side.id
    finally:
        await _remove_images(east, reference, made, project)


async def _remove_images(east: Environment, reference: str, made: list[str],
                         project: Project) -> None:
    """The project first (its containers hold the images), then the images, by id."""
    await destroy_surge(project.name, [east], stop_timeout=0)
    with contextlib.suppress(NotFound):
        await east.images.remove(reference)
    for image_id in made:
        with contextlib.suppress(NotFound):
            await east.images.remove(image_id, force=True)
