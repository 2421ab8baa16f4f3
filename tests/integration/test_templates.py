"""App templates deployed for real: two curated templates (their image swapped for the
test image by its variable), one through the TemplateGallery driven from Python, and a
Portainer Compose template (type 3) imported from a local git repository and deployed
by ``ghostpanel template deploy``. Every project is destroyed (volumes included) after.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel import connect
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.cli._app import CliContext
from ghostpanel_kernel.surge import LABEL_PROJECT, destroy_surge
from ghostpanel_kernel.templates import (
    TemplateLibrary,
    deploy_template,
    deployed_path,
    render_template,
)
from tests.integration import surge_project
from tests.integration.surge_project import BUSYBOX, Project, free_port
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

project = surge_project.project
east = surge_project.east
west = surge_project.west

FAST = {"stop_timeout": 0, "health_timeout": 20.0}


async def test_curated_minecraft_deploys_with_the_test_image(project: Project,
                                                             tmp_path: Path) -> None:
    template = TemplateLibrary(tmp_path).get("minecraft")
    port = free_port()
    rendered = render_template(template, {"image": BUSYBOX, "command": "sleep 300",
                                          "port": port, "difficulty": "hard"},
                               project=project.name)
    seen: list[str] = []
    result = await deploy_template(rendered, [project.east], home=tmp_path,
                                   progress=lambda p: seen.append(p.message), **FAST)
    saved = deployed_path(project.name, tmp_path)
    project.last = Boltfile.load(saved)
    assert result.ok, (result.errors, result.conclusion())
    assert saved.stat().st_mode & 0o777 == 0o600  # it may hold the template's secrets
    assert seen  # progress was reported
    container = (await project.containers(project.east))[f"{project.name}_server"]
    await container.reload()
    details = container.attrs
    assert details["State"]["Running"]
    env = dict(item.split("=", 1) for item in details["Config"]["Env"])
    assert (env["EULA"], env["DIFFICULTY"], env["VERSION"]) == ("TRUE", "hard", "LATEST")
    assert details["Config"]["Cmd"] == ["sleep", "300"]
    bindings = details["HostConfig"]["PortBindings"]["25565/tcp"]
    assert [int(b["HostPort"]) for b in bindings] == [port]


async def test_the_gallery_deploys_ollama_with_its_gpu_turned_off(project: Project,
                                                                  tmp_path: Path) -> None:
    from ghostpanel_widgets import TemplateGallery

    gallery = TemplateGallery(project.east, library=TemplateLibrary(tmp_path), **FAST)
    try:
        gallery.search.value = "language models"
        assert gallery.visible_names == ["curated/ollama"]
        gallery.open_deploy("ollama")
        fields = {f.variable.name: f for f in gallery._fields}
        fields["port"].input.value = "not a port"
        assert await gallery.deploy() is None
        assert "not a whole number" in fields["port"].error.value  # shown by its field
        fields["image"].input.value = BUSYBOX
        fields["command"].input.value = "sleep 300"
        fields["port"].input.value = str(free_port())
        fields["gpu"].input.value = False
        gallery.project.value = project.name
        assert "enabled = false" in gallery.boltfile_text
        assert f'project = "{project.name}"' in gallery.boltfile_text
        assert "gp-template-boltfile" in gallery.preview.value
        result = await gallery.deploy()
        project.last = Boltfile.load(deployed_path(project.name))
        assert result is not None and result.ok, gallery.status.message
        assert gallery.status.level == "success"
        assert gallery.progress.bar_style == "success"
        container = (await project.containers(project.east))[f"{project.name}_ollama"]
        await container.reload()
        details = container.attrs
        assert details["State"]["Running"]
        assert not details["HostConfig"].get("DeviceRequests")  # no GPU asked for
    finally:
        gallery.close()


def _compose_repository(folder: Path) -> Path:
    folder.mkdir()
    (folder / "compose.yml").write_text(
        "services:\n"
        "  greeter:\n"
        f"    image: {BUSYBOX}\n"
        "    command: [\"sleep\", \"300\"]\n"
        "    environment:\n"
        "      GREETING: ${GREETING}\n"
        "    volumes: [\"notes:/notes\"]\n"
        "volumes:\n"
        "  notes: {}\n", encoding="utf-8")
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@example.org",
                     "commit", "-q", "-m", "stack"]):
        subprocess.run(["git", *command], cwd=folder, check=True, capture_output=True)
    return folder


@pytest.fixture
async def compose_project(podman_engine: PodmanService) -> AsyncIterator[str]:
    """A project name; the project is destroyed afterwards and nothing of it may stay."""
    name = f"k{uuid.uuid4().hex[:8]}"
    yield name
    env = connect(podman_engine.url, name="a")
    try:
        await destroy_surge(name, [env], volumes=True, stop_timeout=0)
        label = {"label": [f"{LABEL_PROJECT}={name}"]}
        assert await env.containers.list(all=True, filters=label) == []
        assert await env.volumes.list(filters=label) == []
    finally:
        await env.aclose()


def test_a_compose_template_from_a_git_repository_deploys_through_the_cli(
        tmp_path: Path, podman_engine: PodmanService, compose_project: str) -> None:
    repository = _compose_repository(tmp_path / "repo")
    (tmp_path / "portainer.json").write_text(json.dumps({"version": "3", "templates": [{
        "type": 3, "title": "Greeter", "categories": ["demo"],
        "repository": {"url": f"file://{repository}", "stackfile": "compose.yml"},
        "env": [{"name": "GREETING", "label": "Greeting", "default": "hello"}]}]}),
        encoding="utf-8")
    home = {"GHOSTPANEL_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    imported = runner.invoke(cli, ["template", "import", str(tmp_path / "portainer.json"),
                                   "--name", "local"], env=home, catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    assert "greeter: Greeter" in imported.stdout
    app = CliContext(open_environments=lambda names: [connect(podman_engine.url, name="a")])
    deployed = runner.invoke(cli, ["template", "deploy", "local/greeter", "--project",
                                   compose_project, "--set", "GREETING=hi there",
                                   "--timeout", "0"], obj=app, env=home,
                             catch_exceptions=False)
    assert deployed.exit_code == 0, deployed.output
    assert "a: " in deployed.stdout and "created" in deployed.stdout

    async def look() -> dict[str, object]:
        env = connect(podman_engine.url, name="a")
        try:
            container = await env.containers.get(f"{compose_project}_greeter")
            await container.reload()
            return dict(container.attrs)
        finally:
            await env.aclose()

    details = asyncio.run(look())
    assert details["State"]["Running"]  # type: ignore[index]
    env_vars = dict(item.split("=", 1) for item in details["Config"]["Env"])  # type: ignore[index]
    assert env_vars["GREETING"] == "hi there"
