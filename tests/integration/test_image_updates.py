"""Image updates against the private loopback registry and the session's Podman engine.

One project ``u<hex>`` runs ``app`` (an image pulled from ``image_registry``) and
``side`` (the engine's own ``localhost/busybox``). A new image pushed under ``app``'s
tag makes it ``update-available`` (``check_updates``, ``ghostpanel ps --updates``);
``ghostpanel surge apply --pull`` and then :func:`redeploy_latest` recreate ``app``
alone, after which it is ``current`` again. The registry is plain HTTP: the check
learns that from the engine's ``GET /info``, as a user's would.

Teardown destroys the project and removes every image the test made, by id (the
shared ``localhost/busybox:latest`` stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import Container, Environment, NotFound, check_updates
from ghostpanel_kernel.engine._image_updates import clear_update_cache, summarize_updates
from ghostpanel_kernel.surge import (
    LABEL_PROJECT,
    SurgeError,
    apply_surge,
    destroy_surge,
    discover_stacks,
    project_updates,
    redeploy_latest,
)
from tests.image_registry import ImageRegistry
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

FAST = {"stop_timeout": 0, "health_timeout": 20.0}


def _boltfile(path: Path, project: str, app_image: str, side_env: str = "1") -> Path:
    path.write_text(f"""project = "{project}"

[services.app]
image = "{app_image}"
command = ["sleep", "300"]

[services.side]
image = "{BUSYBOX_REFERENCE}"
command = ["sleep", "300"]
env = {{ SIDE = "{side_env}" }}
""", encoding="utf-8")
    return path


async def _pair(env: Environment, project: str) -> tuple[Container, Container]:
    return (await env.containers.get(f"{project}_app"),
            await env.containers.get(f"{project}_side"))


async def test_a_new_image_under_the_same_tag_is_an_update_until_redeployed(
        env: Environment, podman_engine: PodmanService, image_registry: ImageRegistry,
        busybox_archive: Path, tmp_path: Path) -> None:
    project = f"u{uuid.uuid4().hex[:8]}"
    repository = f"gp-updates/{project}:latest"
    made: list[str] = []  # image ids, removed at the end

    def push(version: int) -> str:
        staged = f"localhost/{project}-v{version}:latest"
        made.append(podman_engine.import_image(
            busybox_archive, staged, changes=('CMD ["sh"]', f"ENV V={version}")))
        reference = image_registry.push(podman_engine, staged, repository)
        podman_engine.podman("image", "untag", staged)
        return reference

    home = tmp_path / "home"

    def ghostpanel(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False,
                                  env={"GHOSTPANEL_HOME": str(home),
                                       "GHOSTPANEL_DATABASE_URL": None})

    async def run(*args: str) -> Result:  # the CLI runs its own event loop: in a thread
        return await asyncio.to_thread(ghostpanel, *args)

    reference = push(1)
    path = _boltfile(tmp_path / "Boltfile.toml", project, reference)
    try:
        assert (await run("env", "add", "a", podman_engine.url)).exit_code == 0
        created = await apply_surge(Boltfile.load(path), [env], **FAST)  # pulls app's image
        assert created.ok, created.summary()
        app, side = await _pair(env, project)

        statuses = await check_updates(env, [app, side], max_age=0)
        assert statuses[app.id].state == "current", statuses[app.id]
        assert statuses[app.id].registry_digest in statuses[app.id].running_digests
        assert statuses[side.id].state == "unknown"
        assert "local image" in statuses[side.id].reason

        push(2)
        statuses = await check_updates(env, [app, side], max_age=0)
        assert statuses[app.id].state == "update-available", statuses[app.id]
        assert statuses[app.id].registry_digest not in statuses[app.id].running_digests

        # The stacks page's cell for the whole project.
        stack = (await discover_stacks([env])).get(project, managed=True)
        assert summarize_updates(await project_updates([env], stack, max_age=0)) == \
            f"1 update available ({project}_app)"

        clear_update_cache()
        label = f"label={LABEL_PROJECT}={project}"
        listed = await run("ps", "--updates", "--json", "--env", "a", "--filter", label)
        assert listed.exit_code == 0, listed.output
        updates = {r["name"]: r["update"] for r in json.loads(listed.stdout)}
        assert updates[f"{project}_app"]["state"] == "update-available"
        assert updates[f"{project}_app"]["registry_digest"] == \
            statuses[app.id].registry_digest
        assert updates[f"{project}_side"]["state"] == "unknown"
        table = (await run("ps", "--updates", "--env", "a", "--filter", label)).stdout
        header, *rows = table.splitlines()
        assert header.split()[:4] == ["NAME", "ENVIRONMENT", "IMAGE", "UPDATE"]
        assert any(row.startswith(f"{project}_app ") and "update available" in row
                   for row in rows), table
        plain = (await run("ps", "--env", "a", "--filter", label)).stdout
        assert "UPDATE" not in plain.splitlines()[0]

        # surge apply --pull: only app, whose image changed, is recreated.
        applied = await run("surge", "apply", "-f", str(path), "--pull", "--env", "a",
                            "-t", "0")
        assert applied.exit_code == 0, applied.output
        assert applied.stdout.splitlines() == ["a: 1 recreated, 1 unchanged"], applied.stdout
        new_app, same_side = await _pair(env, project)
        assert new_app.id != app.id and same_side.id == side.id
        assert "V=2" in new_app.attrs["Config"]["Env"]
        statuses = await check_updates(env, [new_app, same_side], max_age=0)
        assert statuses[new_app.id].state == "current", statuses[new_app.id]

        # The stacks page's action: the same, from the project's name alone.
        push(3)
        assert (await check_updates(env, [new_app], max_age=0))[new_app.id].available
        result = await redeploy_latest(env, project, **FAST)
        assert result.ok and result.summary() == ["a: 1 recreated, 1 unchanged"], \
            result.summary()
        third_app, still_side = await _pair(env, project)
        assert third_app.id != new_app.id and still_side.id == side.id
        assert "V=3" in third_app.attrs["Config"]["Env"]
        assert (await check_updates(env, [third_app], max_age=0))[third_app.id].state == \
            "current"

        # A Boltfile edited since its last apply: a redeploy refuses to slip it in.
        _boltfile(path, project, reference, side_env="2")
        with pytest.raises(SurgeError, match=f"changes of its own.*recreate {project}_side"):
            await redeploy_latest(env, project, **FAST)
        assert (await env.containers.get(f"{project}_side")).id == side.id
    finally:
        await destroy_surge(project, [env], stop_timeout=0)
        assert await env.containers.list(
            all=True, filters={"label": [f"{LABEL_PROJECT}={project}"]}) == []
        with contextlib.suppress(NotFound):
            await env.images.remove(reference)
        for image_id in made:
            with contextlib.suppress(NotFound):
                await env.images.remove(image_id, force=True)
