"""``ghostpanel template``: import, ls, show and deploy --dry-run (no engine)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.cli import cli

PORTAINER = {"version": "3", "templates": [
    {"type": 1, "title": "Whoami", "image": "traefik/whoami", "ports": ["8000:80/tcp"],
     "categories": ["tools"], "env": [{"name": "WHOAMI_NAME", "label": "Name"}]},
    {"type": 2, "title": "Swarm thing", "repository": {"url": "x", "stackfile": "y"}}]}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server of tmp_path/www; its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "templates.json").write_text(json.dumps(PORTAINER), encoding="utf-8")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_ls_lists_the_curated_templates_by_category() -> None:
    code, out, _ = run("template", "ls")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "SOURCE", "CATEGORIES",
                                                         "TITLE"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {
        "factorio", "jellyfin", "minecraft", "ollama", "steam-proton", "valheim"}
    code, out, _ = run("template", "ls", "--category", "media", "--json")
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["jellyfin"]


def test_show_prints_the_card_variables_and_boltfile() -> None:
    code, out, _ = run("template", "show", "valheim")
    assert code == 0
    assert "Valheim dedicated server  (curated/valheim)" in out
    assert "server_name" in out and '"${server_name}"' in out
    assert "***" in out and "change-me-please" not in out  # a secret's default stays hidden
    code, out, _ = run("template", "show", "ollama", "--json")
    data = json.loads(out)
    assert code == 0 and data["boltfile"].startswith("#") and data["source"] == "curated"


def test_import_from_a_url_then_deploy_dry_run(served: str) -> None:
    code, out, err = run("template", "import", f"{served}/templates.json", "--name", "web")
    assert code == 0, err
    assert "web: 1 template(s) imported" in out and "whoami: Whoami" in out
    assert "'Swarm thing' not imported" in err and "Swarm" in err
    code, out, _ = run("template", "ls", "--category", "tools")
    assert "whoami" in out and "web" in out
    code, out, err = run("template", "deploy", "web/whoami", "--set", "WHOAMI_NAME=bob",
                         "--set", "image=localhost/busybox:latest", "--project", "who",
                         "--dry-run")
    assert code == 0, err
    data = Boltfile.loads(out).to_dict()
    assert data["project"] == "who"
    assert data["services"]["whoami"]["environment"] == {"WHOAMI_NAME": "bob"}
    assert data["services"]["whoami"]["image"] == "localhost/busybox:latest"
    code, out, _ = run("template", "sources")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["web", "1", "1"]
    assert run("template", "remove-source", "web")[0] == 0
    assert "whoami" not in run("template", "ls")[1]
    code, _, err = run("template", "remove-source", "web")
    assert code == 1 and "no imported source 'web'" in err


def test_deploy_reports_each_bad_value_and_deploys_nothing(home: Path) -> None:
    code, _, err = run("template", "deploy", "minecraft", "--set", "port=0",
                       "--set", "difficulty=insane", "--set", "colour=red")
    assert code == 2
    lines = err.splitlines()
    assert any(line.startswith("Error: --set port:") for line in lines)
    assert any("--set difficulty:" in line and "peaceful" in line for line in lines)
    assert any("--set colour:" in line for line in lines)
    assert not (home / "templates" / "deployed").exists()
    code, _, err = run("template", "deploy", "minecraft", "--set", "oops")
    assert code == 2 and "key=value" in err
    code, _, err = run("template", "deploy", "nothing-like-it")
    assert code == 1 and "no template 'nothing-like-it'" in err


def test_import_errors_exit_1_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"version": "1", "templates": []}', encoding="utf-8")
    code, _, err = run("template", "import", str(tmp_path / "x.json"))
    assert code == 1 and "versions 2 and 3" in err


def test_a_downloaded_file_may_not_name_a_repository_of_this_machine(
        served: str, tmp_path: Path) -> None:
    www = tmp_path / "www"
    (www / "local.json").write_text(json.dumps({"version": "3", "templates": [
        {"type": 3, "title": "Sneaky", "repository": {"url": str(tmp_path),
                                                      "stackfile": "x.yml"}},
        {"type": 3, "title": "Sneakier", "repository": {"url": f"file://{tmp_path}",
                                                        "stackfile": "x.yml"}}]}),
        encoding="utf-8")
    code, _, err = run("template", "import", f"{served}/local.json")
    assert code == 1
    assert err.count("may only name https, http, git or ssh repositories") == 2
