"""``CreateContainerForm`` on a FakeEngine: errors beside their fields before anything is
sent, Create disabled while a field is wrong, the live previews, what Create sends,
pull-if-missing, Save to Boltfile, and the GPU field only where there are GPUs.

The real engine's side (the created container inspected) is in
tests/integration/test_widget_create_form.py.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets._create_form import CreateContainerForm

from ghostpanel_kernel.bolt import Boltfile, validate_file
from ghostpanel_kernel.engine import Container
from tests.unit.fake_engine import (
    WEB_ID,
    WEB_INSPECT,
    FakeEngine,
    empty,
    json_answer,
    lines_answer,
    podman_pull_events,
)

IMAGE = "localhost/busybox:latest"
IMAGE_ID = "sha256:" + "ab" * 32
LISTED_IMAGES = [{"Id": IMAGE_ID, "RepoTags": [IMAGE, "localhost/app:1"], "Size": 1,
                  "Created": 1700000000},
                 {"Id": "sha256:" + "cd" * 32, "RepoTags": ["<none>:<none>"], "Size": 1,
                  "Created": 1700000000}]
LISTED_CONTAINERS = [{"Id": WEB_ID, "Names": ["/web"], "Image": IMAGE, "State": "running",
                      "Status": "Up", "Created": 1700000000, "Labels": {}}]


def _engine(*, image_present: bool = True, pulled: bool = True) -> FakeEngine:
    bodies: list[dict[str, Any]] = []

    def create(request: httpx.Request) -> httpx.Response:
        bodies.append({"name": request.url.params.get("name"),
                       "body": json.loads(request.content)})
        return httpx.Response(201, json={"Id": WEB_ID, "Warnings": []})

    present = {"yes": image_present}

    def image(request: httpx.Request) -> httpx.Response:
        if present["yes"]:
            return httpx.Response(200, json={"Id": IMAGE_ID, "RepoTags": [IMAGE]})
        return httpx.Response(404, json={"message": "no such image"})

    pull = lines_answer(podman_pull_events(IMAGE_ID[7:19]))

    def pull_and_keep(request: httpx.Request) -> Any:
        present["yes"] = pulled
        return pull(request)

    engine = FakeEngine({
        ("GET", "/images/json"): json_answer(LISTED_IMAGES),
        ("GET", "/containers/json"): json_answer(LISTED_CONTAINERS),
        ("POST", "/containers/create"): create,
        ("GET", f"/containers/{WEB_ID}/json"): json_answer(WEB_INSPECT),
        ("POST", f"/containers/{WEB_ID}/start"): empty(),
        ("GET", "/images/localhost%2Fbusybox:latest/json"): image,
        ("POST", "/images/create"): pull_and_keep,
    })
    engine.created = bodies  # type: ignore[attr-defined]
    return engine


@pytest.fixture
def open_form(open_engine_widget: Callable[..., Any]) -> Callable[..., Any]:
    """``await open_form(engine, **options)``: a form on that engine, loaded."""
    return functools.partial(open_engine_widget, CreateContainerForm)


def _error(form: CreateContainerForm, field: str) -> str:
    return str(form.field_errors[field].value)


def _text(widget: Any) -> str:
    """What an HTML widget shows: its text without the tags, unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(widget.value)))


async def test_it_loads_the_images_and_starts_invalid_without_an_image(open_form) -> None:
    form = await open_form(_engine())
    assert list(form.fields["image"].options) == ["localhost/app:1", IMAGE]
    assert form.valid is False and form.create_button.disabled
    assert "choose an image" in _error(form, "image")
    assert "Fix Image to see the preview" in form.boltfile_preview.value
    assert form.has_gpus is False and form.gpu_box.layout.display == "none"


@pytest.mark.parametrize(("field", "text", "words"), [
    ("ports", "99999", "out of range 1-65535"),
    ("memory", "12XB", "cannot read the size"),
    ("env", "=x", "no name before"),
    ("name", "my web", "has a space"),
    ("name", "web", "a container named web already exists here"),
])
async def test_a_bad_value_shows_beside_its_field_and_disables_create(
        open_form, field: str, text: str, words: str) -> None:
    engine = _engine()
    form = await open_form(engine)
    form.set_fields(image=IMAGE, name="api")
    assert form.valid and not form.create_button.disabled
    sent = len(engine.requests)
    form.set_fields(**{field: text})
    assert words in _error(form, field)
    assert [f for f in form.errors] == [field]
    assert form.valid is False and form.create_button.disabled and form.save_button.disabled
    assert len(engine.requests) == sent, "checking a field asked the engine"
    # Create from code refuses too, and sends no create.
    assert await form.create() is None
    assert "fix the fields first" in form.status.message
    assert engine.created == []  # type: ignore[attr-defined]
    form.set_fields(**{field: "" if field != "name" else "api2"})
    assert _error(form, field) == "" and not form.create_button.disabled


async def test_the_preview_follows_every_change(open_form) -> None:
    form = await open_form(_engine())
    form.set_fields(image=IMAGE, name="api")
    assert _text(form.boltfile_preview) == f'[services.api]\nimage = "{IMAGE}"\n'
    assert "validator accepts" in form.diagnostics.value
    form.set_fields(ports="8080:80\n53:53/udp", memory="256m", labels="team=ops")
    assert form.spec is not None
    assert _text(form.boltfile_preview) == form.spec.boltfile_text()
    assert 'ports = ["8080:80", "53:53/udp"]' in _text(form.boltfile_preview)
    assert 'memory_limit = "256m"' in _text(form.boltfile_preview)
    # Bolt's own warning about the /udp suffix is shown; it is not an error.
    assert "gp-diagnostic-warning" in form.diagnostics.value and form.valid
    assert "/udp suffix" in _text(form.diagnostics)
    assert shlex.split(_text(form.docker_preview)) == [
        "docker", "run", "-d", "--name", "api", "-p", "8080:80", "-p", "53:53/udp",
        "-l", "team=ops", "--memory", "256m", IMAGE]
    form.start_after.value = False  # the line follows the Start box too
    assert _text(form.docker_preview).startswith("docker create --name api")


async def test_create_sends_the_fields_and_starts_and_calls_back(open_form) -> None:
    engine = _engine()
    form = await open_form(engine)
    seen: list[Container] = []
    form.on_created(seen.append)
    form.set_fields(image=IMAGE, name="api", command="sleep 300", env="MODE=prod",
                    ports="18080:80", restart="unless-stopped", labels="team=ops",
                    cpus="0.5", memory="64m")
    form.create_button.click()
    assert form.task is not None
    await form.task
    assert form.status.level == "success", form.status.message
    [created] = engine.created  # type: ignore[attr-defined]
    assert created["name"] == "api"
    body = created["body"]
    assert body["Cmd"] == ["sleep", "300"] and body["Env"] == ["MODE=prod"]
    assert body["Labels"] == {"team": "ops"}
    host = body["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}
    assert host["RestartPolicy"] == {"Name": "unless-stopped"}
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024**2
    assert ("POST", f"/containers/{WEB_ID}/start", {}) in engine.calls
    assert [c.id for c in seen] == [WEB_ID] and form.created is not None
    assert not form.create_button.disabled  # ready for the next one


async def test_a_missing_image_is_pulled_with_its_progress(open_form) -> None:
    engine = _engine(image_present=False)
    form = await open_form(engine)
    form.set_fields(image=IMAGE, name="api")
    form.start_after.value = False
    assert await form.create() is not None
    assert ("POST", "/images/create", {"fromImage": "localhost/busybox", "tag": "latest"}) \
        in engine.calls
    assert form.progress.bar_style == "success" and form.progress.value == form.progress.max
    assert form.progress_text.value == f"Pulled {IMAGE}"
    assert ("POST", f"/containers/{WEB_ID}/start", {}) not in engine.calls
    assert form.status.message.startswith("Created ")


async def test_a_missing_image_without_pull_sends_no_create(open_form) -> None:
    engine = _engine(image_present=False)
    form = await open_form(engine)
    form.set_fields(image=IMAGE, name="api")
    form.pull_missing.value = False
    assert await form.create() is None
    assert "is not on" in form.status.message and "tick Pull if missing" in form.status.message
    assert engine.created == []  # type: ignore[attr-defined]
    assert not any(call[1] == "/images/create" for call in engine.calls)


async def test_save_to_a_new_boltfile_then_refuse_a_duplicate(open_form, tmp_path: Path
                                                             ) -> None:
    path = tmp_path / "My Shop" / "Boltfile.toml"
    path.parent.mkdir()
    form = await open_form(_engine(), boltfile=path)
    assert form.boltfile_field.value == str(path)
    form.set_fields(image=IMAGE, name="api", ports="8080:80", env="A=1")
    assert not form.save_button.disabled
    form.save_button.click()
    assert form.status.level == "success", form.status.message
    assert "the validator accepts the file" in form.status.message
    boltfile = Boltfile.load(path)
    assert boltfile.project == "my-shop" and boltfile.services == ["api"]
    assert [d for d in validate_file(path) if d.is_error] == []
    text = path.read_text()
    assert form.save_to_boltfile() is None
    assert "already has a service 'api'" in form.status.message
    assert "already has a service &#x27;api&#x27;" in form.boltfile_error.value
    assert path.read_text() == text


async def test_save_keeps_the_files_comments(open_form, tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    original = ('project = "shop"  # ours\n\n# the database\n[services.db]\n'
                'image = "postgres:16"  # pinned\n')
    path.write_text(original)
    form = await open_form(_engine())
    form.set_fields(image=IMAGE, name="cache", restart="always")
    assert form.save_button.disabled  # no Boltfile named yet
    form.boltfile_field.value = str(path)
    assert form.save_to_boltfile() is not None
    text = path.read_text()
    assert text.startswith(original)
    assert '[services.cache]\nimage = "localhost/busybox:latest"\nrestart = "always"\n' in text


async def test_the_gpu_field_shows_only_with_gpus(open_form, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_kernel.gpus import SIMULATE_VARIABLE, read_inventory
    from tests.nvml_data import MIXED

    monkeypatch.setenv(SIMULATE_VARIABLE, str(MIXED))
    form = await open_form(_engine(), gpu_reader=read_inventory,
                           database_url=f"sqlite:///{tmp_path / 'store.db'}")
    assert form.has_gpus and form.gpu_box.layout.display == ""
    form.set_fields(image=IMAGE, gpus="0", gpu_policy="shared")
    assert "needs a name" in _error(form, "name") and form.create_button.disabled
    form.set_fields(name="game")
    assert form.valid
    assert 'isolation_level = "shared"' in _text(form.boltfile_preview)
    assert "--gpus '\"device=0\"'" in _text(form.docker_preview)
    form.set_fields(gpus="zero")
    assert "not a GPU index" in _error(form, "gpus")


async def test_without_gpus_a_gpu_value_is_ignored(open_form) -> None:
    from ghostpanel_kernel.gpus import Inventory

    form = await open_form(_engine(), gpu_reader=lambda: Inventory(
        state="no-driver", host="here", message="no NVIDIA driver"))
    assert form.has_gpus is False and form.gpu_box.layout.display == "none"
    form.set_fields(image=IMAGE, gpus="0")
    assert form.valid and "--gpus" not in form.docker_preview.value


def _gpu_engine(created: list[dict[str, Any]], *, fail: bool = False) -> FakeEngine:
    """The form's engine, with libpod's create (Podman 4.3 takes GPUs only there)."""
    engine = _engine()
    labels: dict[str, str] = {}

    def libpod_create(request: httpx.Request) -> httpx.Response:
        if fail:
            return httpx.Response(500, json={"message": "unresolvable CDI devices"})
        body = json.loads(request.content)
        created.append(body)
        labels.update(body["labels"])
        return httpx.Response(201, json={"Id": WEB_ID, "Warnings": []})

    def inspect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**WEB_INSPECT, "Config": {
            **WEB_INSPECT["Config"], "Labels": dict(labels)}})

    engine.routes[("POST", "/libpod/containers/create")] = libpod_create
    engine.routes[("GET", f"/containers/{WEB_ID}/json")] = inspect
    return engine


@pytest.mark.parametrize("fail", [False, True])
async def test_gpus_are_reserved_under_the_name_and_given_to_the_engine(
        open_form, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: bool) -> None:
    from ghostpanel_kernel.gpus import SIMULATE_VARIABLE, GpuAllocator, read_inventory
    from tests.nvml_data import MIXED

    monkeypatch.setenv(SIMULATE_VARIABLE, str(MIXED))
    database = f"sqlite:///{tmp_path / 'store.db'}"
    created: list[dict[str, Any]] = []
    form = await open_form(_gpu_engine(created, fail=fail), gpu_reader=read_inventory,
                           database_url=database)
    form.set_fields(image=IMAGE, name="game", gpus="0", gpu_policy="exclusive",
                    ports="27015:27015/udp", memory="64m")
    form.start_after.value = False
    container = await form.create()
    store = GpuAllocator(read_inventory(), database_url=database)
    try:
        held = store.allocations("game")
    finally:
        store.close()
    if fail:
        assert container is None and "unresolvable CDI devices" in form.status.message
        assert held == [], "a failed create kept its GPUs"
        return
    assert container is not None, form.status.message
    [body] = created
    assert body["devices"] == [{"path": "nvidia.com/gpu=0"}]
    assert body["labels"]["io.ghostpanel.gpu.workload"] == "game"
    assert body["portmappings"][0]["host_port"] == 27015
    assert [a.workload for a in held] == ["game"]
    assert held[0].container_id == WEB_ID


async def test_a_container_that_does_not_start_is_still_reported_created(open_form) -> None:
    engine = _engine()
    engine.routes[("POST", f"/containers/{WEB_ID}/start")] = json_answer(
        {"message": "port 18080 is already in use"}, status=500)
    form = await open_form(engine)
    seen: list[Container] = []
    form.on_created(seen.append)
    form.set_fields(image=IMAGE, name="api", ports="18080:80")
    container = await form.create()
    assert container is not None and [c.id for c in seen] == [WEB_ID]
    assert form.status.level == "error"
    assert "but it did not start: " in form.status.message
    assert "already in use" in form.status.message


async def test_a_failing_callback_is_shown_not_raised(open_form) -> None:
    form = await open_form(_engine())

    def broken(container: Container) -> None:
        raise KeyError("no tab for it")

    form.on_created(broken)
    form.set_fields(image=IMAGE, name="api")
    assert await form.create() is not None
    assert form.status.message == "on_created failed: no tab for it"


async def test_the_pull_button_reports_a_failed_pull_and_empties_the_bar(open_form) -> None:
    engine = _engine(image_present=False)
    engine.routes[("POST", "/images/create")] = lines_answer([
        {"status": "Trying to pull localhost/nothing:1..."},
        {"error": "manifest unknown", "errorDetail": {"message": "manifest unknown"}}])
    form = await open_form(engine)
    form.set_fields(image="localhost/nothing:1")
    form.pull_button.click()
    assert form.task is not None
    await form.task
    assert form.status.level == "error"
    assert form.status.message == ("Pull localhost/nothing:1 failed: pull failed: manifest "
                                   "unknown (POST /v1.41/images/create)")
    assert form.progress.value == 0 and form.progress.bar_style == ""
    assert "localhost/nothing:1" not in form.fields["image"].options


async def test_it_needs_an_environment_and_leaves_no_widget_behind(widgets) -> None:
    with pytest.raises(TypeError, match="needs an Environment"):
        CreateContainerForm("unix:///run/podman/podman.sock")  # type: ignore[arg-type]


async def test_a_remote_engine_gets_no_gpu_field_and_no_reading(widgets) -> None:
    from tests.unit.fake_engine import env_for

    def never() -> Any:
        raise AssertionError("this machine's GPUs were read for a remote engine")

    env = env_for(_engine(), url="tcp://10.0.0.9:2375")
    try:
        form = CreateContainerForm(env, gpu_reader=never)
        widgets.append(form)
        assert form.task is not None
        await form.task
        assert form.status.level == "info", form.status.message
        assert form.has_gpus is False and form.gpu_box.layout.display == "none"
    finally:
        await env.aclose()
