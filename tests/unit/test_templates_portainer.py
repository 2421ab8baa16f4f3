"""Portainer app-template JSON (v2, v3) → GhostPanel templates; sources on disk."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ghostpanel_kernel.bolt import Boltfile, validate
from ghostpanel_kernel.templates import (
    TemplateError,
    TemplateLibrary,
    import_portainer,
    render_template,
)

# Written for these tests in the shape of Portainer's v3 file (STACK_NOTES's fields).
V3 = {
    "version": "3",
    "templates": [
        {"id": 1, "type": 1, "title": "Nginx web server", "description": "High performance web",
         "categories": ["webserver"], "platform": "linux", "logo": "https://example.org/n.png",
         "image": "nginx:latest", "ports": ["8080:80/tcp", "127.0.0.1:8443:443/tcp",
                                              "5353/udp"],
         "volumes": [{"container": "/etc/nginx", "bind": "/srv/nginx", "readonly": True},
                     {"container": "/var/cache/nginx"}],
         "env": [{"name": "MODE", "label": "Mode", "select": [
                     {"text": "Fast", "value": "fast"},
                     {"text": "Safe", "value": "safe", "default": True}]},
                 {"name": "ADMIN_EMAIL", "label": "Admin e-mail",
                  "description": "Who gets the reports"},
                 {"name": "WORKERS", "label": "Workers", "default": "4"},
                 {"name": "BUILD", "preset": True, "default": "stable"}],
         "restart_policy": "unless-stopped", "command": "nginx -g 'daemon off;'",
         "labels": [{"name": "team", "value": "web"}], "network": "host",
         "interactive": True},
        {"id": 2, "type": 2, "title": "Swarm monitoring", "repository": {
            "url": "https://github.com/example/stacks", "stackfile": "monitoring.yml"}},
        {"id": 3, "type": 1, "title": "Windows thing", "image": "mcr.microsoft.com/iis",
         "platform": "windows"},
        {"id": 4, "type": 1, "title": "No image"},
    ],
}

# Portainer 2.0's format: same fields, version "2".
V2 = {"version": "2", "templates": [
    {"type": 1, "title": "Redis", "image": "redis:7", "ports": ["6379/tcp"],
     "categories": ["database"], "env": [{"name": "REDIS_ARGS", "label": "Arguments",
                                          "default": "--save 60 1"}]}]}


def test_a_container_template_becomes_a_service_with_typed_variables() -> None:
    result = import_portainer(V3, source="team")
    names = [t.name for t in result.templates]
    assert names == ["nginx-web-server", "windows-thing"]
    nginx = result.templates[0]
    assert nginx.source == "team" and nginx.categories == ("webserver",)
    assert nginx.logo == "https://example.org/n.png"
    assert [(v.name, v.type, v.default) for v in nginx.variables] == [
        ("image", "string", "nginx:latest"), ("MODE", "choice", "safe"),
        ("ADMIN_EMAIL", "string", None), ("WORKERS", "string", "4")]
    assert nginx.variable("MODE").choices == ("fast", "safe")
    assert nginx.variable("ADMIN_EMAIL").required
    rendered = render_template(nginx, {"ADMIN_EMAIL": "ops@example.org",
                                       "image": "localhost/busybox:latest"})
    service = Boltfile.loads(rendered.text).to_dict()["services"]["nginx-web-server"]
    assert service["image"] == "localhost/busybox:latest"
    assert service["ports"] == ["8080:80", "8443:443", "5353/udp"]
    assert service["volumes"] == ["/srv/nginx:/etc/nginx:ro",
                                  "nginx-web-server-var-cache-nginx:/var/cache/nginx"]
    assert service["environment"] == {"MODE": "safe", "ADMIN_EMAIL": "ops@example.org",
                                      "WORKERS": "4", "BUILD": "stable"}
    assert service["command"] == ["nginx", "-g", "daemon off;"]
    assert service["restart"] == "unless-stopped" and service["labels"] == {"team": "web"}
    notes = " ".join(nginx.notes)
    assert "127.0.0.1" in notes and "network" in notes and "interactive" in notes
    assert not [d for d in validate(Boltfile.loads(rendered.text)) if d.severity == "error"]


def test_swarm_stacks_and_broken_templates_are_refused_with_reasons() -> None:
    result = import_portainer(V3)
    refused = {r.title: r.reason for r in result.refused}
    assert set(refused) == {"Swarm monitoring", "No image"}
    assert "Swarm" in refused["Swarm monitoring"] and "refused" in refused["Swarm monitoring"]
    assert "without an image" in refused["No image"]
    windows = result.templates[1]
    assert any("windows" in note for note in windows.notes)


def test_version_2_is_read_and_other_versions_refused() -> None:
    redis = import_portainer(V2).templates[0]
    assert redis.variable("REDIS_ARGS").default == "--save 60 1"
    assert Boltfile.loads(redis.render()).to_dict()["services"]["redis"]["ports"] == ["6379"]
    with pytest.raises(TemplateError, match="version 1"):
        import_portainer(V2["templates"])
    with pytest.raises(TemplateError, match="versions 2 and 3"):
        import_portainer({"version": "4", "templates": []})


def _git_repo(folder: Path) -> Path:
    (folder / "stacks").mkdir(parents=True)
    (folder / "stacks" / "compose.yml").write_text(
        "services:\n"
        "  app:\n"
        "    image: ${APP_IMAGE:-localhost/busybox:latest}\n"
        "    command: [\"sleep\", \"300\"]\n"
        "    environment:\n"
        "      GREETING: ${GREETING}\n"
        "      TIER: ${TIER}\n"
        "    secrets: [token]\n"
        "secrets:\n"
        "  token:\n"
        "    file: ./token.txt\n", encoding="utf-8")
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@example.org",
                     "commit", "-q", "-m", "stack"]):
        subprocess.run(["git", *command], cwd=folder, check=True, capture_output=True)
    return folder


def _compose_file(url: str) -> dict[str, object]:
    return {"version": "3", "templates": [{
        "type": 3, "title": "Greeter stack", "categories": ["demo"],
        "repository": {"url": url, "stackfile": "stacks/compose.yml"},
        "env": [{"name": "GREETING", "label": "Greeting", "default": "hello"},
                {"name": "TIER", "preset": True, "default": "gold"}]}]}


def test_a_compose_template_is_converted_from_a_git_clone(tmp_path: Path) -> None:
    repository = _git_repo(tmp_path / "repo")
    for url in (f"file://{repository}", str(repository)):  # a clone; a local folder
        result = import_portainer(_compose_file(url))
        assert not result.refused, result.refused
        greeter = result.templates[0]
        assert [v.name for v in greeter.variables] == ["GREETING"]
        assert any("secrets" in note for note in greeter.notes)
        data = Boltfile.loads(greeter.render({"GREETING": "hi there"})).to_dict()
        app = data["services"]["app"]
        assert app["image"] == "localhost/busybox:latest"
        assert app["environment"] == {"GREETING": "hi there", "TIER": "gold"}


def test_a_compose_template_whose_repository_cannot_be_read_is_refused(tmp_path: Path
                                                                       ) -> None:
    result = import_portainer(_compose_file(f"file://{tmp_path / 'missing'}"))
    assert not result.templates and "git clone" in result.refused[0].reason
    repository = _git_repo(tmp_path / "repo")
    data = _compose_file(str(repository))
    data["templates"][0]["repository"]["stackfile"] = "../etc/passwd"  # type: ignore[index]
    assert "inside the repository" in import_portainer(data).refused[0].reason


def test_sources_are_named_stored_and_refreshed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    library = TemplateLibrary(home)
    portainer = tmp_path / "team.json"
    portainer.write_text(json.dumps(V3), encoding="utf-8")
    result = library.import_source(str(portainer), name="team")
    assert [t.name for t in result.templates] == ["nginx-web-server", "windows-thing"]
    assert len(result.refused) == 2
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "Hello App.toml").write_text(
        'project = "hello"\n[template]\ntitle = "Hello"\ncategories = ["demo"]\n'
        '[services.web]\nimage = "busybox"\n', encoding="utf-8")
    library.import_source(str(folder), name="mine")
    assert [r.name for r in library.sources()] == ["mine", "team"]
    assert library.get("hello-app").source == "mine"
    assert library.get("team/nginx-web-server").title == "Nginx web server"
    assert (home / "templates" / "team" / "nginx-web-server.toml").is_file()
    # A refresh replaces the source's templates.
    portainer.write_text(json.dumps(V2), encoding="utf-8")
    library.import_source(str(portainer), name="team")
    assert [t.name for t in library.templates() if t.source == "team"] == ["redis"]
    library.remove_source("team")
    assert [r.name for r in library.sources()] == ["mine"]


@pytest.mark.parametrize(("location", "name", "message"), [
    ("{missing}", "x", "cannot read"),
    ("{bad}", "x", "not JSON"),
    ("{swarm}", "x", "no template could be imported"),
    ("{bad}", "curated", "GhostPanel's own"),
    ("{bad}", "Bad Name", "source name"),
    ("ftp://example.org/t.json", "x", "only http"),
])
def test_imports_that_cannot_work_say_why(tmp_path: Path, location: str, name: str,
                                          message: str) -> None:
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    (tmp_path / "swarm.json").write_text(json.dumps(
        {"version": "3", "templates": [V3["templates"][1]]}), encoding="utf-8")
    paths = {"missing": tmp_path / "none.json", "bad": tmp_path / "bad.json",
             "swarm": tmp_path / "swarm.json"}
    with pytest.raises(TemplateError, match=message):
        TemplateLibrary(tmp_path / "home").import_source(location.format(**paths), name=name)


def test_a_toml_template_that_opens_with_a_table_is_not_taken_for_json(tmp_path: Path
                                                                        ) -> None:
    path = tmp_path / "lone.toml"
    path.write_text('[template]\ntitle = "Lone"\n\n[services.web]\nimage = "busybox"\n',
                    encoding="utf-8")
    result = TemplateLibrary(tmp_path / "home").import_source(str(path))
    assert result.source.name == "lone" and result.templates[0].title == "Lone"
    listed = tmp_path / "v1.json"
    listed.write_text(json.dumps(V2["templates"]), encoding="utf-8")
    with pytest.raises(TemplateError, match="version 1"):
        TemplateLibrary(tmp_path / "home").import_source(str(listed))
