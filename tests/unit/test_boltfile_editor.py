"""``BoltfileEditor`` without a browser: widget state, as a frontend would see it.

The Ace editor is driven through its Panel widget (``editor.ace.value = ...`` is what a
keystroke in the browser becomes on the kernel side); form fields through their
ipywidgets ``value``; buttons through ``click()``. Plan runs the real
``ghostpanel_kernel.surge.plan_surge`` against engines answered by
``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import BoltfileEditor
from ghostpanel_widgets._status import StatusLine
from traitlets import TraitError

from ghostpanel_kernel.bolt import Boltfile, validate, validate_file
from ghostpanel_kernel.engine import Environment

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "bolt-corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.toml"))
BOLT_ROOT = CORPUS / "bolt__Boltfile.toml"  # valid, commented, no final newline
SNAPSHOTS = CORPUS / "bolt__examples_Boltfile-with-snapshots.toml"

SHOP = """\
# The shop stack
project = "shop"

[services.web]
image = "nginx:1.27"   # pinned
ports = ["8080:80"]
environment = { MODE = "prod" }

[services.cache]
image = "redis:7"
"""


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_corpus_is_there() -> None:
    assert len(CORPUS_FILES) >= 9, f"no Boltfile corpus at {CORPUS}"


# -- the package stays light ---------------------------------------------------------


def imported_after(statement: str, modules: list[str]) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"print(' '.join(m for m in {modules!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=True)
    return result.stdout.split()


HEAVY = ["panel", "bokeh", "ipywidgets", "jupyter_bokeh", "tomlkit", "httpx"]


def test_import_ghostpanel_widgets_imports_no_jupyter_code() -> None:
    assert imported_after("import ghostpanel_widgets", HEAVY) == []


def test_panel_loads_with_the_first_editor() -> None:
    loaded = imported_after("from ghostpanel_widgets import BoltfileEditor", HEAVY)
    assert {"ipywidgets", "tomlkit"} <= set(loaded)
    assert "panel" not in loaded
    made = imported_after("from ghostpanel_widgets import BoltfileEditor\n"
                          "BoltfileEditor('project = \"x\"')", HEAVY)
    assert {"panel", "bokeh", "jupyter_bokeh"} <= set(made)


def test_public_names() -> None:
    import ghostpanel_widgets

    assert ghostpanel_widgets.__all__ == sorted(ghostpanel_widgets.__all__)
    assert "BoltfileEditor" in ghostpanel_widgets.__all__
    for name in ghostpanel_widgets.__all__:  # every exported name resolves
        assert isinstance(getattr(ghostpanel_widgets, name), type)
    assert ghostpanel_widgets.BoltfileEditor is BoltfileEditor
    with pytest.raises(AttributeError, match="no attribute 'StatusLine'"):
        ghostpanel_widgets.StatusLine  # noqa: B018  (internal)


# -- loading -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_a_corpus_file_loads_into_both_views(path: Path) -> None:
    editor = BoltfileEditor(path)
    text = path.read_bytes().decode("utf-8")
    bf = Boltfile.load(path)
    assert editor.value == editor.ace.value == text
    assert editor.path == str(path)
    assert editor.dirty is False
    assert editor.form.service.options == tuple(bf.services)
    first = bf.service(bf.services[0])
    assert editor.form.service.value == first.name
    assert editor.form.image.value == (first.image or "")
    assert editor.form.ports.value.splitlines() == list(first.ports)
    assert editor.form.project.value == (bf.project or "")
    expected = validate_file(path)
    assert editor.diagnostics == expected
    assert (editor.error_count, editor.warning_count) == (
        sum(d.is_error for d in expected), sum(not d.is_error for d in expected))
    assert [(a["row"], a["column"], a["type"]) for a in editor.ace.annotations] == [
        (d.line - 1, d.column - 1, d.severity) for d in expected]
    listing = editor.diagnostics_view.value
    assert listing.count("<li ") == len(expected)
    for d in expected:
        assert f'<li data-line="{d.line}" data-severity="{d.severity}"><code>{d.line}:' \
               f"{d.column}</code>" in listing


def test_choosing_a_service_shows_it() -> None:
    editor = BoltfileEditor(BOLT_ROOT)
    assert editor.form.service.options == ("web", "api", "db")
    editor.form.service.value = "api"
    assert editor.form.image.value == ""
    assert "capsule = &#x27;nodejs&#x27;" in editor.form.source.value
    assert editor.form.ports.value == "3000:3000"
    assert editor.value == BOLT_ROOT.read_text()  # choosing is not editing


def test_text_is_read_as_text_and_a_path_as_a_path(tmp_path: Path) -> None:
    from_text = BoltfileEditor(SHOP)
    assert from_text.path == ""
    assert from_text.value == SHOP
    assert from_text.form.service.options == ("web", "cache")
    missing = tmp_path / "new" / "Boltfile.toml"
    new = BoltfileEditor(str(missing))
    assert (new.path, new.value, new.status.level) == (str(missing), "", "info")
    assert "does not exist yet" in new.status.message
    assert new.form.service.options == ()


def test_a_file_that_cannot_be_opened_is_an_error_in_the_widget(tmp_path: Path) -> None:
    folder = BoltfileEditor(tmp_path)
    assert folder.status.level == "error"
    assert f"Cannot open {tmp_path}" in folder.status.message
    assert folder.path == ""  # Save must not write over what it could not read
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('project = "caf\xe9"\n'.encode("latin-1"))
    editor = BoltfileEditor(latin1)
    assert editor.status.level == "error"
    assert "not UTF-8" in editor.status.message and editor.path == ""
    assert 'style="color: #b00020;' in editor.status.value


# -- form -> text --------------------------------------------------------------------


def test_changing_the_image_in_the_form_rewrites_only_that_line() -> None:
    editor = BoltfileEditor(BOLT_ROOT)
    before = editor.value
    editor.form.image.value = "nginx:1.28"
    assert changed_lines(before, editor.value) == ['-image = "nginx:latest"',
                                                   '+image = "nginx:1.28"']
    assert comment_lines(editor.value) == comment_lines(before)
    assert editor.ace.value == editor.value
    assert editor.dirty is True
    assert editor.boltfile is not None and editor.boltfile.service("web").image == "nginx:1.28"
    assert editor.status.message == "Changed image of web."


def test_an_image_replaces_a_capsule_in_place() -> None:
    editor = BoltfileEditor(BOLT_ROOT)
    editor.form.service.value = "api"
    editor.form.image.value = "node:22"
    assert 'capsule = "nodejs"' not in editor.value
    assert editor.form.service.value == "api"
    assert editor.form.image.value == "node:22" and editor.form.source.value == ""


def test_ports_volumes_and_environment_from_the_form() -> None:
    editor = BoltfileEditor(SHOP)
    editor.form.ports.value = "8080:80\n\n8443:443\n"
    editor.form.volumes.value = "./site:/usr/share/nginx/html:ro"
    editor.form.env.value = "MODE=prod\nURL=postgres://db/shop?ssl=true"
    web = Boltfile.loads(editor.value).service("web")
    assert web.ports == ("8080:80", "8443:443")
    assert web.volumes == ("./site:/usr/share/nginx/html:ro",)
    assert web.get("environment") == {"MODE": "prod", "URL": "postgres://db/shop?ssl=true"}
    assert comment_lines(editor.value) == comment_lines(SHOP)
    assert 'image = "nginx:1.27"   # pinned' in editor.value
    editor.form.ports.value = ""
    assert "ports" not in Boltfile.loads(editor.value).service("web").to_dict()


def test_a_bad_field_changes_nothing_and_says_why() -> None:
    editor = BoltfileEditor(SHOP)
    editor.form.ports.value = "8080:80\n70000:80"
    assert editor.value == SHOP
    assert editor.status.level == "error"
    assert editor.status.message.startswith("Cannot change ports of web: ports[1]:")
    assert "70000" in editor.status.message
    assert editor.form.ports.value == "8080:80"  # back to the file's value
    editor.form.env.value = "MODE"
    assert editor.value == SHOP
    assert "is not KEY=VALUE" in editor.status.message


def test_an_environment_table_keeps_its_comments() -> None:
    text = ('project = "shop"\n\n[services.web]\nimage = "nginx"\n\n'
            '[services.web.environment]\n# the mode\nMODE = "prod"  # or dev\n'
            'DEBUG = "0"\n')
    editor = BoltfileEditor(text)
    assert editor.form.env.value == "MODE=prod\nDEBUG=0"
    editor.form.env.value = "MODE=dev\nLANG=C"
    assert editor.value == ('project = "shop"\n\n[services.web]\nimage = "nginx"\n\n'
                            '[services.web.environment]\n# the mode\nMODE = "dev"  # or dev\n'
                            'LANG = "C"\n')


def test_gpu_devices_of_a_gaming_service() -> None:
    editor = BoltfileEditor(SNAPSHOTS)
    before = editor.value
    assert editor.form.service.value == "steam"
    assert (editor.form.gpu_runtime.value, editor.form.gpu_devices.value) == ("nvbind",
                                                                             "gpu:0")
    editor.form.gpu_devices.value = "gpu:0, gpu:1"
    assert changed_lines(before, editor.value) == ['-devices = ["gpu:0"]',
                                                   '+devices = ["gpu:0", "gpu:1"]']
    editor.form.service.value = "lutris"  # gaming.gpu without an nvbind table
    assert editor.form.gpu_runtime.disabled is False
    assert editor.form.gpu_devices.disabled is True
    assert "no [services.lutris.gaming.gpu.nvbind] table" in editor.form.gpu_note.value
    editor.form.service.value = "steam"
    assert editor.form.gpu_devices.value == "gpu:0, gpu:1"


def test_snapshot_settings_keep_their_comments() -> None:
    editor = BoltfileEditor(SNAPSHOTS)
    before = editor.value
    assert editor.form.snapshots_enabled.value is True
    assert editor.form.snapshots_filesystem.value == "auto"
    assert editor.form.retention["keep_daily"].value == "7"
    editor.form.retention["keep_daily"].value = "14"
    editor.form.snapshots_filesystem.value = "btrfs"
    changes = changed_lines(before, editor.value)
    assert '+keep_daily = 14         # Keep 7 daily snapshots' in changes
    assert len(changes) == 4
    assert any(line.startswith("+filesystem = \"btrfs\"") for line in changes)
    editor.form.retention["keep_weekly"].value = "many"
    assert editor.status.level == "error"
    assert "keep_weekly must be a whole number" in editor.status.message
    assert editor.form.retention["keep_weekly"].value == "4"


def test_snapshots_can_be_switched_on_in_a_file_without_them() -> None:
    editor = BoltfileEditor(SHOP)
    assert editor.form.snapshots_enabled.value is False
    assert editor.form.retention["keep_daily"].value == ""
    editor.form.snapshots_enabled.value = True
    editor.form.retention["keep_daily"].value = "7"
    data = Boltfile.loads(editor.value).to_dict()
    assert data["snapshots"] == {"enabled": True, "retention": {"keep_daily": 7}}
    assert editor.value.startswith(SHOP)  # added after everything, nothing else moved
    assert editor.error_count == 0


def test_the_project_name_from_the_form() -> None:
    editor = BoltfileEditor(SHOP)
    editor.form.project.value = "my shop"
    assert editor.value == SHOP and editor.status.level == "error"
    assert "without spaces" in editor.status.message
    editor.form.project.value = "boutique"
    assert 'project = "boutique"' in editor.value


# -- text -> form --------------------------------------------------------------------


async def test_typing_is_read_once_typing_pauses() -> None:
    editor = BoltfileEditor(SHOP, debounce=0.05)
    typed = SHOP.replace('image = "redis:7"\n', 'image = "redis:7"\nports = ["8080:6379"]\n')
    editor.ace.value = typed  # what a keystroke in the browser becomes in the kernel
    assert editor.value == typed
    assert editor.dirty is True
    assert editor.ace.annotations == []  # not read yet
    await asyncio.sleep(0.15)
    [diagnostic] = validate(Boltfile.loads(typed))
    line = typed.splitlines().index('ports = ["8080:6379"]') + 1
    assert (diagnostic.severity, diagnostic.line) == ("error", line)
    assert editor.ace.annotations == [{
        "row": line - 1, "column": diagnostic.column - 1, "type": "error",
        "text": f"{diagnostic.message}\nhint: {diagnostic.hint}"}]
    assert editor.error_count == 1
    assert f'data-line="{line}"' in editor.diagnostics_view.value
    assert "Bolt refuses this file" in editor.diagnostics_view.value
    editor.form.service.value = "cache"
    assert editor.form.ports.value == "8080:6379"


async def test_keystrokes_in_a_row_are_read_once() -> None:
    editor = BoltfileEditor(SHOP, debounce=0.05)
    calls = []
    original = editor.form.refresh

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append(editor.value)
        original(*args, **kwargs)

    editor.form.refresh = counting  # type: ignore[method-assign]
    for image in ("r", "re", "red", "redi", "redis"):
        editor.ace.value = SHOP.replace('"redis:7"', f'"{image}"')
    await asyncio.sleep(0.15)
    assert calls == [SHOP.replace('"redis:7"', '"redis"')]
    # Reading a property flushes what typing left unread.
    editor.ace.value = SHOP
    assert editor.diagnostics == []
    assert calls[-1] == SHOP


def test_a_syntax_error_disables_the_form_until_fixed() -> None:
    editor = BoltfileEditor(SHOP)
    broken = SHOP.replace("[services.cache]", "[services.cache")
    editor.value = broken
    line = broken.splitlines().index("[services.cache") + 1
    [diagnostic] = editor.diagnostics
    assert (diagnostic.severity, diagnostic.line) == ("error", line)
    assert editor.ace.annotations[0]["row"] == line - 1
    assert editor.boltfile is None
    assert editor.form.image.disabled and editor.form.service.disabled
    assert "not TOML" in editor.form.note.value
    editor.value = SHOP
    assert editor.boltfile is not None
    assert not editor.form.image.disabled
    assert editor.diagnostics == [] and editor.ace.annotations == []


# -- save, format, validate ----------------------------------------------------------


@pytest.mark.parametrize("path", [BOLT_ROOT, SNAPSHOTS], ids=lambda p: p.name)
def test_save_unchanged_writes_the_same_bytes(tmp_path: Path, path: Path) -> None:
    copy = Path(shutil.copy(path, tmp_path / path.name))
    editor = BoltfileEditor(copy)
    editor.save()
    assert copy.read_bytes() == path.read_bytes()


def test_save_keeps_crlf_and_clears_dirty(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_bytes(SHOP.replace("\n", "\r\n").encode())
    editor = BoltfileEditor(path)
    editor.form.image.value = "nginx:1.28"
    assert editor.dirty is True
    editor.save_button.click()
    assert editor.dirty is False
    assert (editor.status.level, editor.status.message) == ("success", f"Saved {path}.")
    data = path.read_bytes()
    assert b'image = "nginx:1.28"   # pinned\r\n' in data
    assert data.count(b"\r\n") == data.count(b"\n")


def test_save_writes_a_file_bolt_refuses_but_warns(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    editor = BoltfileEditor(SHOP)
    editor.value = SHOP.replace('image = "redis:7"', 'image = "redis:7"\nbuild = "."')
    editor.path = str(path)
    editor.save_button.click()
    assert path.read_text() == editor.value
    assert editor.status.level == "warning"
    assert editor.status.message.startswith(f"Saved {path}, but Bolt would refuse it: 1 error")


def test_save_without_a_path_is_an_error_in_the_widget() -> None:
    editor = BoltfileEditor(SHOP)
    editor.save_button.click()
    assert editor.status.level == "error"
    assert editor.status.message == ("Save failed: no file to save to: type a path in the "
                                     "file field first")
    with pytest.raises(ValueError, match="no file to save to"):
        editor.save()


def test_the_file_field_is_the_path(tmp_path: Path) -> None:
    editor = BoltfileEditor(SHOP)
    editor.file_field.value = str(tmp_path / "a.toml")
    assert editor.path == str(tmp_path / "a.toml")
    editor.file_field.value = str(tmp_path)  # a folder: refused, said, put back
    assert editor.path == str(tmp_path / "a.toml")
    assert editor.file_field.value == editor.path
    assert editor.status.level == "error" and "is a directory" in editor.status.message
    with pytest.raises(TraitError, match="is a directory"):
        editor.path = str(tmp_path)
    with pytest.raises(TraitError, match="debounce"):
        editor.debounce = -1


def test_format_and_validate_buttons() -> None:
    editor = BoltfileEditor('project="shop"\n[services.web]\nports=["80:80"]\nimage="nginx"\n')
    editor.validate_button.click()
    assert (editor.status.level, editor.status.message) == (
        "success", "Bolt accepts this file: no errors, no warnings.")
    editor.format_button.click()
    assert editor.value == Boltfile.loads(editor.value).format()
    assert editor.value.startswith('project = "shop"\n\n[services.web]\nimage = "nginx"\n')
    assert editor.status.message == "Formatted."
    editor.format_button.click()
    assert editor.status.message == "Already formatted: nothing to change."
    editor.value = "project = \n"
    editor.format_button.click()
    assert editor.status.level == "error"
    assert editor.status.message == ("Format failed: the text is not TOML; fix the syntax "
                                     "error first")
    editor.validate_button.click()
    assert editor.status.message == "Bolt refuses this file: 1 error, 0 warnings."


def test_synced_traits_are_in_the_widget_state() -> None:
    editor = BoltfileEditor(SHOP)
    state = editor.get_state()
    assert (state["value"], state["path"], state["dirty"]) == (SHOP, "", False)
    for name in ("value", "path", "dirty"):
        trait = editor.traits()[name]
        assert trait.metadata.get("sync") is True and trait.help
    with pytest.raises(TraitError):
        editor.dirty = True


# -- Surge ---------------------------------------------------------------------------


class Engine:
    """A Podman 4.3.1 engine that starts empty and keeps what Surge makes in it.

    It answers what a plan reads (listings, image inspects) and what an apply of new
    containers does (create network, create, inspect, start); ``fail_start`` makes
    every container start fail as an engine does when the runtime refuses it.
    """

    def __init__(self, *, fail_start: bool = False) -> None:
        self.requests: list[str] = []
        self.containers: dict[str, dict[str, Any]] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.fail_start = fail_start

    def _new_id(self) -> str:
        return f"{len(self.containers) + len(self.networks) + 1:064x}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        if path == "/_ping":
            return httpx.Response(200, text="OK", headers={"Api-Version": "1.41"})
        if path == "/version":
            return httpx.Response(200, json={"Version": "4.3.1", "ApiVersion": "1.41",
                                             "Components": [{"Name": "Podman Engine"}]})
        route = (request.method, re.sub(r"^/v1\.\d+", "", path))
        body = json.loads(request.content) if request.content else {}
        match route:
            case ("GET", "/containers/json"):
                return httpx.Response(200, json=[])  # nothing of this project runs yet
            case ("GET", "/networks"):
                return httpx.Response(200, json=list(self.networks.values()))
            case ("GET", "/volumes"):
                return httpx.Response(200, json={"Volumes": [], "Warnings": []})
            case ("GET", api) if api.startswith("/images/") and api.endswith("/json"):
                return httpx.Response(200, json={"Id": "sha256:" + "a" * 64})
            case ("POST", "/networks/create"):
                network = {"Id": self._new_id(), "Name": body["Name"],
                           "Labels": body.get("Labels") or {}}
                self.networks[network["Name"]] = network
                return httpx.Response(201, json={"Id": network["Id"]})
            case ("GET", api) if api.startswith("/networks/"):
                wanted = api.removeprefix("/networks/")
                for network in self.networks.values():
                    if wanted in (network["Id"], network["Name"]):
                        return httpx.Response(200, json=network)
            case ("POST", "/containers/create"):
                ident = self._new_id()
                self.containers[ident] = {
                    "Id": ident, "Name": "/" + request.url.params["name"],
                    "Image": "sha256:" + "a" * 64,
                    "Config": {"Image": body.get("Image"), "Cmd": body.get("Cmd"),
                               "Labels": body.get("Labels") or {}},
                    "State": {"Status": "created", "Running": False}}
                return httpx.Response(201, json={"Id": ident, "Warnings": []})
            case ("GET", api) if api.startswith("/containers/") and api.endswith("/json"):
                wanted = api.removeprefix("/containers/").removesuffix("/json")
                for container in self.containers.values():
                    if wanted in (container["Id"], container["Name"][1:]):
                        return httpx.Response(200, json=container)
            case ("POST", api) if api.startswith("/containers/") and api.endswith("/start"):
                if self.fail_start:
                    return httpx.Response(500, json={"message": "OCI runtime error: crun: "
                                                                "cannot start"})
                ident = api.split("/")[2]
                self.containers[ident]["State"] = {"Status": "running", "Running": True}
                return httpx.Response(204)
            case ("DELETE", api):
                self.containers.pop(api.split("/")[2].split("?")[0], None)
                for name, network in list(self.networks.items()):
                    if network["Id"] == api.split("/")[2]:
                        del self.networks[name]
                return httpx.Response(204)
        return httpx.Response(404, json={"message": f"no route {route}"})


def environment(name: str, handler: Callable[[httpx.Request], httpx.Response]) -> Environment:
    return Environment("unix:///run/podman/podman.sock", name=name,
                       transport=httpx.MockTransport(handler))


def engine_down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


async def test_plan_shows_create_actions() -> None:
    engines = {"east": Engine(), "west": Engine()}
    environments = [environment(name, engine) for name, engine in engines.items()]
    editor = BoltfileEditor(SHOP, environments=environments)
    assert editor.apply_button.disabled is True
    editor.plan_button.click()
    assert editor.task is not None
    await editor.task
    plan = editor.plan_result
    assert plan is not None
    assert [p.environment for p in plan.environments] == ["east", "west"]
    table = editor.plan_view.value
    created = [action for p in plan.environments for action in p.actions]
    assert created and {a.kind for a in created} == {"create"}
    assert {a.container for a in created if a.resource == "container"} >= {"shop_web",
                                                                          "shop_cache"}
    assert table.count('<tr data-action="create">') == len(created)
    assert "<code>shop_web</code>" in table and "<code>shop_cache</code>" in table
    assert editor.status.level == "success"
    assert editor.status.message == f"Planned: {len(created)} changes to apply."
    assert editor.apply_button.disabled is False
    assert all(engine.requests for engine in engines.values())
    for env in environments:
        await env.aclose()


async def test_an_engine_that_is_down_is_a_red_status_line() -> None:
    up, down = environment("east", Engine()), environment("gpu-1", engine_down)
    editor = BoltfileEditor(SHOP, environments=[up, down])
    editor.plan_button.click()
    assert editor.task is not None
    await editor.task
    assert editor.status.level == "error"
    assert editor.status.message.startswith("Plan failed on gpu-1: ")
    assert "Connection refused" in editor.status.message or "connect" in \
        editor.status.message.lower()
    assert '<tr data-action="error">' in editor.plan_view.value
    assert '<tr data-action="create">' in editor.plan_view.value  # east is still planned
    for env in (up, down):
        await env.aclose()


async def test_plan_refuses_a_file_bolt_refuses_without_asking_the_engine() -> None:
    engine = Engine()
    env = environment("east", engine)
    editor = BoltfileEditor(SHOP.replace('image = "redis:7"', 'image = "redis:7"\n'
                                         'build = "."'), environments=[env])
    editor.plan_button.click()
    assert editor.task is not None
    await editor.task
    assert editor.status.level == "error"
    assert editor.status.message.startswith("Plan failed: Bolt refuses this file (1 error")
    assert engine.requests == []
    assert editor.plan_result is None
    await env.aclose()


async def test_editing_after_a_plan_asks_for_a_new_one() -> None:
    env = environment("east", Engine())
    editor = BoltfileEditor(SHOP, environments=[env])
    await editor.plan()
    assert editor.apply_button.disabled is False
    editor.form.image.value = "nginx:1.28"
    assert editor.apply_button.disabled is True
    assert "press Plan again" in editor.plan_view.value
    await editor.plan()
    assert editor.apply_button.disabled is False
    assert "press Plan again" not in editor.plan_view.value
    await env.aclose()


async def test_apply_drives_the_progress_bar() -> None:
    engine = Engine()
    env = environment("east", engine)
    editor = BoltfileEditor(SHOP, environments=[env])
    assert editor.progress.layout.visibility == "hidden"
    steps: list[tuple[int, int]] = []
    editor.progress.observe(lambda change: steps.append((change["new"], editor.progress.max)),
                            "value")
    labels: list[str] = []
    editor.progress_label.observe(lambda change: labels.append(change["new"]), "value")
    editor.plan_button.click()
    assert editor.task is not None
    await editor.task
    editor.apply_button.click()
    assert editor.plan_button.disabled and editor.apply_button.disabled  # busy
    await editor.task
    assert sorted(c["Name"] for c in engine.containers.values()) == ["/shop_cache",
                                                                     "/shop_web"]
    assert all(c["State"]["Running"] for c in engine.containers.values())
    # One step each for the network, web, cache and the clean-up at least, in order.
    values = [value for value, _ in steps]
    assert len(values) >= 4 and values == sorted(values) and values[0] == 1
    assert {total for _, total in steps} == {values[-1]}
    assert editor.progress.layout.visibility == "visible"
    assert editor.progress.bar_style == "success"
    assert "east: started shop_web" in labels and "east: started shop_cache" in labels
    assert editor.progress_label.value == labels[-1]
    assert (editor.status.level, editor.status.message) == ("success",
                                                            "Applied: east: 2 created")
    assert editor.apply_button.disabled  # what was planned has run: Plan again
    assert not editor.plan_button.disabled
    await env.aclose()


async def test_a_failed_apply_is_a_red_status_line() -> None:
    engine = Engine(fail_start=True)
    env = environment("east", engine)
    editor = BoltfileEditor(SHOP, environments=[env])
    await editor.plan()
    editor.apply_button.click()
    assert editor.task is not None
    await editor.task
    assert editor.status.level == "error"
    assert editor.status.message.startswith("Apply failed")
    assert "OCI runtime error" in editor.status.message
    assert editor.progress.bar_style == "danger"
    assert engine.containers == {} and engine.networks == {}  # rolled back
    await env.aclose()


def test_plan_without_an_event_loop_says_so() -> None:
    editor = BoltfileEditor(SHOP, environments=[])
    editor.plan_button.click()
    assert editor.status.level == "error"
    assert "needs a running asyncio event loop" in editor.status.message


# -- the status line -----------------------------------------------------------------


def test_status_line_levels_and_escaping() -> None:
    line = StatusLine()
    assert line.value == ""
    line.warning("<b>careful</b>")
    assert "&lt;b&gt;careful&lt;/b&gt;" in line.value and "#a15c00" in line.value
    with pytest.raises(TraitError):
        line.level = "fatal"
    line.clear()
    assert line.value == "" and line.level == "info"


def test_status_line_reports_a_bug_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    line = StatusLine()
    with caplog.at_level(logging.ERROR, logger="ghostpanel_widgets"), \
            line.reporting("Plan"):
        {}["x"].append(1)  # a KeyError is an operator's error...
    assert line.message == "Plan failed: x"
    assert caplog.text == ""
    with caplog.at_level(logging.ERROR, logger="ghostpanel_widgets"), \
            line.reporting("Plan"):
        nothing: Any = None
        nothing + 1  # ...a TypeError is a bug
    assert line.level == "error"
    assert line.message == ("Plan failed: TypeError: unsupported operand type(s) for +: "
                            "'NoneType' and 'int'")
    assert "Traceback" in caplog.text
