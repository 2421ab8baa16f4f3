"""``from_compose``: Docker Compose files to Boltfiles, and ``ghostpanel boltfile
from-compose``.

Each test converts a small Compose file and reads the Boltfile back as data, so what
is pinned is the meaning (the keys Bolt reads), not the layout; the notes are checked
by the Compose key they must name. The converted files must pass the validator and,
by default, be what GhostPanel's Surge deploys (its ``desired_state`` accepts them).
"""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.bolt import (
    Boltfile,
    ComposeError,
    ConversionResult,
    _compose,
    _compose_service,
    _compose_vars,
    from_compose,
    validate,
)
from ghostpanel_kernel.bolt._compose_vars import Interpolation, parse_env_text
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.surge._desired import UNSUPPORTED_KEYS, desired_state


def convert(text: str, **options: Any) -> tuple[dict[str, Any], ConversionResult]:
    options.setdefault("project", "demo")
    options.setdefault("environ", {})
    result = from_compose(text, **options)
    return Boltfile.loads(result.boltfile_text).to_dict(), result


def service(text: str, name: str = "web", **options: Any) -> dict[str, Any]:
    data, _ = convert(text, **options)
    table: dict[str, Any] = data["services"][name]
    return table


def notes_about(result: ConversionResult, key: str) -> list[str]:
    return [note for note in result.notes if note.startswith(f"{key}:")]


def test_the_modules_doctests_pass() -> None:
    for module in (_compose, _compose_service, _compose_vars):
        failures, _ = doctest.testmod(module)
        assert failures == 0, module.__name__


# -- interpolation ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("${SET}", "v"), ("$SET-x", "v-x"), ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""), ("$$SET", "$SET"), ("a$", "a$"),
    ("${UNSET:-${SET}-${OTHER:-z}}", "v-z"), ("${SET:?never}", "v"),
])
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert Interpolation({"SET": "v", "EMPTY": ""})(text, "k") == expected


@pytest.mark.parametrize(("text", "message"), [
    ("${PW:?set a password}", "required variable PW is missing a value: set a password"),
    ("${EMPTY:?}", "required variable EMPTY"),
    ("${OPEN", "without a closing"),
    ("${1BAD}", "invalid interpolation format"),
])
def test_interpolation_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ComposeError, match=message) as caught:
        Interpolation({"EMPTY": ""})(text, "services.db.environment.PW")
    assert str(caught.value).startswith("services.db.environment.PW:")


def test_an_unset_variable_is_blank_and_noted_with_its_first_key() -> None:
    data, result = convert("services:\n  web:\n    image: nginx:${TAG}\n"
                           "    labels: {a: '${TAG}'}\n")
    assert data["services"]["web"]["image"] == "nginx:"
    assert notes_about(result, "services.web.image") == [
        "services.web.image: variable TAG is not set; a blank string was used"]


def test_env_files_read_quotes_comments_and_export() -> None:
    text = ('# comment\nexport A=1\nB="two words\\n"\nC=\'$raw\'\nD=bare # trailing\n'
            "E\n\nF=\n")
    assert parse_env_text(text) == {"A": "1", "B": "two words\n", "C": "$raw",
                                    "D": "bare", "F": ""}


def test_the_dot_env_beside_the_file_is_read_and_the_environment_wins(tmp_path: Path
                                                                      ) -> None:
    (tmp_path / ".env").write_text("TAG=1.25\nPORT=8080\n")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx:${TAG}\n"
                       "    ports: ['${PORT}:80']\n")
    result = from_compose(compose, environ={"PORT": "9090"})
    web = result.boltfile().service("web")
    assert (web.image, web.ports) == ("nginx:1.25", ("9090:80",))
    assert result.project == tmp_path.name.lower().replace(".", "")
    # A one-line string naming the file is read as the file too.
    assert from_compose(str(compose), environ={}).boltfile().service("web").ports == (
        "8080:80",)


# -- services --------------------------------------------------------------------------


def test_environment_in_both_spellings_env_files_and_values_from_the_environment(
        tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    text = ("services:\n  web:\n    image: nginx\n    env_file: [web.env, gone.env]\n"
            "    environment: [OVERRIDDEN=list, FROM_SHELL, NOWHERE, 'EQ=a=b']\n"
            "  db:\n    image: postgres\n"
            "    environment: {N: 5, B: true, F: 1.5, E: null}\n")
    data, result = convert(text, base_dir=tmp_path, environ={"FROM_SHELL": "s", "E": "e"})
    assert data["services"]["web"]["environment"] == {
        "FROM_FILE": "1", "OVERRIDDEN": "list", "FROM_SHELL": "s", "EQ": "a=b"}
    assert data["services"]["db"]["environment"] == {"N": "5", "B": "true", "F": "1.5",
                                                     "E": "e"}
    assert notes_about(result, "services.web.env_file") == [
        f"services.web.env_file: {tmp_path / 'gone.env'} is missing; its variables are not "
        "in the Boltfile"]
    assert notes_about(result, "services.web.environment.NOWHERE")


def test_ports_short_and_long_syntax() -> None:
    text = """
services:
  web:
    image: nginx
    ports:
      - "8080:80"
      - 127.0.0.1:8443:443
      - "[::1]:8444:444"
      - 9000
      - "5000-5001:6000-6001/udp"
      - {target: 81, published: "8081", protocol: tcp, host_ip: 0.0.0.0}
      - {target: 82}
  api:
    image: api
    ports: ["8080:3000", "8080:3000/udp", "7000:7000/sctp"]
"""
    data, result = convert(text)
    assert data["services"]["web"]["ports"] == [
        "8080:80", "8443:443", "8444:444", "9000:9000", "5000:6000/udp", "5001:6001/udp",
        "8081:81", "82:82"]
    # TCP 8080 is taken by web: left out; UDP 8080 is another port.
    assert data["services"]["api"]["ports"] == ["8080:3000/udp"]
    web_notes = " ".join(notes_about(result, "services.web.ports"))
    assert "127.0.0.1" in web_notes and "::1" in web_notes and "0.0.0.0" in web_notes
    assert "container port 9000 is published on a random host port" in web_notes
    api_notes = " ".join(notes_about(result, "services.api.ports"))
    assert "already published by service `web`" in api_notes and "sctp" in api_notes


def test_a_port_that_is_not_a_number_is_an_error_naming_the_service() -> None:
    with pytest.raises(ComposeError, match=r"services\.web: cannot convert: .*'http'"):
        convert("services:\n  web:\n    image: nginx\n    ports: ['http:80']\n")


def test_volumes_named_bind_long_tmpfs_and_anonymous() -> None:
    text = """
services:
  web:
    image: nginx
    volumes:
      - data:/var/lib/data
      - ./site:/usr/share/nginx/html:ro,cached
      - /srv/x:/x:Z
      - type: bind
        source: ./conf
        target: /etc/conf
        read_only: true
        bind: {selinux: z, propagation: rshared}
      - {type: volume, source: cache, target: /cache}
      - {type: tmpfs, target: /run, tmpfs: {size: 1000000}}
      - /anon
    tmpfs: /tmp
volumes:
  data: {driver: local, labels: [team=a]}
  cache: {external: true, name: shared-cache}
  old: {external: {name: legacy}}
"""
    data, result = convert(text, for_bolt=True)
    web = data["services"]["web"]
    assert web["volumes"] == ["data:/var/lib/data", "./site:/usr/share/nginx/html:ro",
                              "/srv/x:/x:Z", "./conf:/etc/conf:ro,z", "cache:/cache", "/anon"]
    assert web["tmpfs"] == ["/tmp", "/run:size=1000000"]
    assert data["volumes"] == {"data": {"driver": "local", "labels": {"team": "a"}},
                               "cache": {"external": True, "name": "shared-cache"},
                               "old": {"external": True, "name": "legacy"}}
    notes = " ".join(notes_about(result, "services.web.volumes"))
    assert "cached dropped" in notes and "only source, target, read_only" in notes
    # For Surge (the default) the anonymous volume becomes a declared named one.
    data, result = convert(text)
    assert data["services"]["web"]["volumes"][-1] == "web-anon-1:/anon"
    assert data["volumes"]["web-anon-1"] == {}


def test_restart_labels_replicas_limits_and_commands() -> None:
    text = """
services:
  web:
    image: nginx
    entrypoint: /docker-entrypoint.sh
    command: nginx -g 'daemon off;'
    restart: on-failure:3
    labels: [com.example.a=1, flag]
    deploy:
      replicas: 3
      resources:
        limits: {cpus: '0.5', memory: 512M, pids: 10}
        reservations: {memory: 128M}
      placement: {constraints: [node.role==manager]}
  worker:
    image: worker
    command: [run, 1]
    scale: 2
    mem_limit: 1gb
    cpus: 1.5
    deploy: {restart_policy: {condition: on-failure, max_attempts: 5}}
"""
    data, result = convert(text)
    web, worker = data["services"]["web"], data["services"]["worker"]
    assert web["entrypoint"] == ["/docker-entrypoint.sh"]
    assert web["command"] == ["nginx", "-g", "daemon off;"]
    assert (web["restart"], web["replicas"], web["cpu_limit"], web["memory_limit"]) == (
        "on-failure:3", 3, "0.5", "512M")
    assert web["labels"] == {"com.example.a": "1", "flag": ""}
    assert (worker["command"], worker["replicas"], worker["memory_limit"],
            worker["cpu_limit"], worker["restart"]) == (["run", "1"], 2, "1gb", "1.5",
                                                         "on-failure:5")
    for key in ("services.web.deploy.resources.limits.pids",
                "services.web.deploy.resources.reservations.memory",
                "services.web.deploy.placement"):
        assert notes_about(result, key), key


def test_healthchecks_in_their_three_forms() -> None:
    text = """
services:
  a: {image: a, healthcheck: {test: curl -f http://localhost, interval: 1m30s, retries: 5,
      start_period: 10s, start_interval: 1s}}
  b: {image: b, healthcheck: {test: [CMD, pg_isready], timeout: soon}}
  c: {image: c, healthcheck: {disable: true}}
"""
    data, result = convert(text)
    services = data["services"]
    assert services["a"]["healthcheck"] == {
        "test": ["CMD-SHELL", "curl -f http://localhost"], "interval": "1m30s",
        "start_period": "10s", "retries": 5, "disable": False}
    assert services["b"]["healthcheck"] == {"test": ["CMD", "pg_isready"], "disable": False}
    assert services["c"]["healthcheck"] == {"test": ["NONE"], "disable": True}
    assert notes_about(result, "services.a.healthcheck.start_interval")
    assert "'soon' is not a duration" in notes_about(
        result, "services.b.healthcheck.timeout")[0]


def test_depends_on_and_networks_in_both_spellings() -> None:
    text = """
services:
  web:
    image: nginx
    depends_on: {db: {condition: service_healthy}, init: {condition:
                 service_completed_successfully}}
    networks: {front: {aliases: [www]}, back: null}
  db: {image: postgres, networks: [back]}
  init: {image: busybox}
networks:
  front: {}
  back:
    internal: true
    driver_opts: {mtu: 1400}
    ipam: {config: [{subnet: 10.9.0.0/16, gateway: 10.9.0.1}]}
"""
    data, result = convert(text)
    web = data["services"]["web"]
    assert (web["depends_on"], web["networks"]) == (["db", "init"], ["front", "back"])
    assert data["networks"]["front"] == {"driver": "bridge"}
    assert data["networks"]["back"] == {
        "driver": "bridge", "driver_opts": {"mtu": "1400"}, "internal": True,
        "ipam": {"config": [{"subnet": "10.9.0.0/16", "gateway": "10.9.0.1"}]}}
    assert notes_about(result, "services.web.depends_on.init")
    assert notes_about(result, "services.web.networks.front.aliases")
    assert not notes_about(result, "services.web.depends_on.db")


@pytest.mark.parametrize(("devices", "expected"), [
    ("[{driver: nvidia, count: 1, capabilities: [gpu]}]", None),
    ("[{driver: nvidia, count: all, capabilities: [gpu]}]", ["gpu:all"]),
    ("[{capabilities: [gpu], device_ids: ['0', '2']}]", ["gpu:0", "gpu:2"]),
    ("[{driver: nvidia, count: 2, capabilities: [gpu, utility]}]", ["gpu:0", "gpu:1"]),
])
def test_gpu_reservations_become_the_gaming_gpu_table(devices: str,
                                                      expected: list[str] | None) -> None:
    text = ("services:\n  ollama:\n    image: ollama/ollama\n    deploy:\n      resources:\n"
            f"        reservations:\n          devices: {devices}\n")
    data, result = convert(text)
    gaming = data["services"]["ollama"]["gaming"]
    assert gaming["enabled"] and gaming["gpu_passthrough"] and gaming["nvidia_runtime"]
    assert gaming.get("gpu", {}).get("nvbind", {}).get("devices") == expected
    assert not [d for d in validate(result.boltfile()) if d.is_error]
    # Surge reads the same GPU request the Compose file made.
    request = desired_state(result.boltfile()).services["ollama"].gpu
    assert request is not None
    assert request.all_gpus == (expected == ["gpu:all"])
    assert list(request.gpus) == [d.split(":")[1] for d in expected or [] if d != "gpu:all"]


def test_the_gpus_service_key() -> None:
    gaming = service("services:\n  web:\n    image: a\n    gpus: all\n")["gaming"]
    assert gaming["gpu"]["nvbind"]["devices"] == ["gpu:all"]


def test_build_image_and_keys_with_no_equivalent_are_noted() -> None:
    text = """
name: Stack
services:
  app:
    build: {context: ./app, dockerfile: Dockerfile.dev, args: {A: 1}}
    secrets: [key]
    configs: [conf]
    profiles: [debug]
    extends: {service: base}
    ulimits: {nofile: 1024}
    init: true
    expose: ["3000"]
    x-note: ignored
  web:
    image: nginx
    build: .
secrets: {key: {file: ./key}}
configs: {conf: {file: ./conf}}
x-common: &common {a: 1}
"""
    data, result = convert(text, project=None)
    assert data["project"] == "stack"
    assert data["services"]["app"]["build"] == "./app"
    assert data["services"]["web"] == {"image": "nginx"}
    assert "(args, dockerfile dropped)" in notes_about(result, "services.app.build")[0]
    assert "image is kept" in notes_about(result, "services.web.build")[0]
    for key in ("secrets", "configs", "profiles", "extends", "ulimits", "init"):
        assert notes_about(result, f"services.app.{key}"), key
    assert notes_about(result, "secrets") and notes_about(result, "configs")
    assert not [n for n in result.notes if "expose" in n or "x-" in n]
    # The notes are in the Boltfile's header too, as comments.
    assert "#   - services.app.secrets: Bolt has no secrets" in result.boltfile_text


def test_keys_surge_refuses_are_dropped_unless_converting_for_bolt() -> None:
    text = """
services:
  web:
    image: nginx
    container_name: my-web
    dns: 1.1.1.1
    extra_hosts: {db.local: 10.0.0.2}
    sysctls: [net.core.somaxconn=1024]
    logging: {driver: json-file}
    working_dir: /srv
    privileged: true
    cap_add: [NET_ADMIN]
"""
    data, result = convert(text)
    web = data["services"]["web"]
    assert not set(web) & UNSUPPORTED_KEYS
    assert (web["working_dir"], web["privileged"], web["cap_add"]) == ("/srv", True,
                                                                      ["NET_ADMIN"])
    for key in ("container_name", "dns", "extra_hosts", "sysctls", "logging"):
        assert "--for-bolt" in notes_about(result, f"services.web.{key}")[0], key
    desired_state(result.boltfile())  # Surge takes it
    bolt = service(text, for_bolt=True)
    assert (bolt["container_name"], bolt["dns"], bolt["extra_hosts"], bolt["sysctls"],
            bolt["logging"]) == ("my-web", ["1.1.1.1"], ["db.local:10.0.0.2"],
                                 {"net.core.somaxconn": "1024"},
                                 {"driver": "json-file", "options": {}})


def test_a_realistic_stack_passes_the_validator_and_surge(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORDPRESS_DB_PASSWORD=secret\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("""
version: "3.8"
services:
  db:
    image: mysql:8
    container_name: wp-db
    restart: always
    environment:
      MYSQL_ROOT_PASSWORD: ${WORDPRESS_DB_PASSWORD:?set it}
      MYSQL_DATABASE: wordpress
    volumes: [db_data:/var/lib/mysql]
    healthcheck:
      test: [CMD, mysqladmin, ping, -h, localhost]
      interval: 10s
  wordpress:
    depends_on: {db: {condition: service_healthy}}
    image: wordpress:${WP_TAG:-latest}
    ports: ["${WP_PORT:-8000}:80"]
    restart: unless-stopped
    environment:
      WORDPRESS_DB_HOST: db:3306
      WORDPRESS_DB_PASSWORD: ${WORDPRESS_DB_PASSWORD}
volumes:
  db_data: {}
""")
    result = from_compose(compose, project="wp", environ={})
    assert [d for d in validate(result.boltfile()) if d.is_error] == []
    state = desired_state(result.boltfile(), base_dir=tmp_path)
    assert state.services["wordpress"].image == "wordpress:latest"
    assert state.services["wordpress"].create["ports"] == {"80/tcp": 8000}
    assert state.services["db"].create["env"]["MYSQL_ROOT_PASSWORD"] == "secret"
    assert state.services["wordpress"].depends_on == ("db",)
    assert [n.split(":")[0] for n in result.notes] == ["services.db.container_name"]


@pytest.mark.parametrize(("text", "message"), [
    ("services: [", "not YAML"),
    ("- a\n- b\n", "a mapping with `services`"),
    ("version: '3'\n", "no `services`"),
    ("services:\n  web: nginx\n", "services.web is not a mapping"),
])
def test_files_that_are_not_compose_are_refused(text: str, message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        from_compose(text, environ={})


# -- the command -----------------------------------------------------------------------


def test_the_command_writes_the_boltfile_and_prints_the_notes(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n    secrets: [k]\n")
    out = tmp_path / "Boltfile.toml"
    result = CliRunner().invoke(cli, ["boltfile", "from-compose", str(compose), "-o",
                                      str(out), "--project", "site"])
    assert result.exit_code == 0, result.output
    assert Boltfile.load(out).to_dict() == {"project": "site",
                                            "services": {"web": {"image": "nginx"}}}
    assert "note: services.web.secrets: Bolt has no secrets" in result.stderr
    assert f"wrote {out} (1 note)" in result.stderr
    shown = CliRunner().invoke(cli, ["boltfile", "from-compose", str(compose)])
    assert shown.exit_code == 0
    assert Boltfile.loads(shown.stdout).service("web").image == "nginx"


def test_the_command_reports_a_missing_variable_as_one_line(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx:${TAG:?pick a tag}\n")
    result = CliRunner().invoke(cli, ["boltfile", "from-compose", str(compose)],
                                env={"TAG": None})
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: services.web.image: required variable TAG is "
                                     "missing a value: pick a tag")


def test_writing_elsewhere_warns_about_relative_binds(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n    volumes: [./site:/s]\n")
    (tmp_path / "out").mkdir()
    beside = CliRunner().invoke(cli, ["boltfile", "from-compose", str(compose), "-o",
                                      str(tmp_path / "Boltfile.toml")])
    elsewhere = CliRunner().invoke(cli, ["boltfile", "from-compose", str(compose), "-o",
                                         str(tmp_path / "out" / "Boltfile.toml")])
    assert beside.exit_code == elsewhere.exit_code == 0
    assert "relative bind mounts" not in beside.stderr
    assert "relative bind mounts start from the Boltfile's folder" in elsewhere.stderr


def test_reading_boltfiles_loads_neither_yaml_nor_surge() -> None:
    # The conversions import PyYAML and Surge's key list only when they run.
    code = ("import sys, ghostpanel_kernel.bolt\n"
            "print(sorted(m for m in ('yaml', 'ghostpanel_kernel.surge') "
            "if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip() == "[]"


def test_a_healthcheck_without_a_test_is_left_out_and_extra_hosts_take_both_spellings(
        ) -> None:
    text = ("services:\n  web:\n    image: nginx\n    healthcheck: {interval: 5s}\n"
            "    extra_hosts: ['db.local=10.0.0.2', 'cache.local:10.0.0.3']\n")
    data, result = convert(text, for_bolt=True)
    assert "healthcheck" not in data["services"]["web"]
    assert "image's own check" in notes_about(result, "services.web.healthcheck")[0]
    assert data["services"]["web"]["extra_hosts"] == ["db.local:10.0.0.2",
                                                     "cache.local:10.0.0.3"]
    assert [d for d in validate(result.boltfile()) if d.is_error] == []


def test_the_boltfile_is_already_formatted() -> None:
    _, result = convert("services:\n  web:\n    image: nginx\n    secrets: [k]\n"
                        "    environment: {A: '1'}\n    healthcheck: {test: 'true'}\n")
    assert result.boltfile().format() == result.boltfile_text
    assert result.boltfile_text.startswith("# Converted from a Compose file")
