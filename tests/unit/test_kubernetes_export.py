"""``to_kubernetes``: Boltfiles as Deployments, Services and PersistentVolumeClaims, and
``ghostpanel boltfile export --to kubernetes``.

The objects are read back from the YAML text (so what ``kubectl`` would read is what
is checked); the notes by the Boltfile key they must name. ``podman kube play`` runs
the output for real in tests/integration/test_kubernetes_export.py.
"""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ghostpanel_kernel.bolt import (
    Boltfile,
    KubernetesExport,
    _kubernetes,
    _kubernetes_pod,
    to_kubernetes,
)
from ghostpanel_kernel.bolt._kubernetes import KubernetesExportError
from ghostpanel_kernel.cli import cli

GAMING_OFF = ("gpu_passthrough = true\nnvidia_runtime = true\namd_runtime = false\n"
              "audio_passthrough = false\nreal_time_priority = false\n")


def export(text: str, **options: Any) -> KubernetesExport:
    options.setdefault("base_dir", "/srv/stack")
    return to_kubernetes(Boltfile.loads(text, path="Boltfile.toml"), **options)


def objects(result: KubernetesExport, kind: str) -> dict[str, dict[str, Any]]:
    found = [d for d in yaml.safe_load_all(result.yaml_text) if d is not None]
    assert found == result.documents
    return {d["metadata"]["name"]: d for d in found if d["kind"] == kind}


def container(result: KubernetesExport, name: str) -> dict[str, Any]:
    spec = objects(result, "Deployment")[name]["spec"]["template"]["spec"]
    first: dict[str, Any] = spec["containers"][0]
    return first


def pod(result: KubernetesExport, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects(result, "Deployment")[name]["spec"]["template"]["spec"]
    return spec


def notes_about(result: KubernetesExport, key: str) -> list[str]:
    return [note for note in result.notes if note.startswith(f"{key}:")]


def test_the_modules_doctests_pass() -> None:
    for module in (_kubernetes, _kubernetes_pod):
        failures, _ = doctest.testmod(module)
        assert failures == 0, module.__name__


WEB = """
project = "shop"

[services.web]
image = "nginx:1.27"
entrypoint = ["/entry.sh"]
command = ["nginx", "-g", "daemon off;"]
ports = ["8080:80", "8081:80", "27015:27015/udp"]
replicas = 3
cpu_limit = "1.5"
memory_limit = "512m"
working_dir = "/srv"
labels = { "com.example.team" = "shop" }

[services.web.environment]
A = "1"
B = "from environment"

[services.web.env]
B = "from env"
"""


def test_a_service_becomes_a_deployment_and_a_service() -> None:
    result = export(WEB)
    deployment = objects(result, "Deployment")["web"]
    labels = {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop"}
    assert deployment["metadata"]["labels"] == labels
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"] == {"matchLabels": labels}
    assert "strategy" not in deployment["spec"]
    template = deployment["spec"]["template"]
    assert template["metadata"] == {"labels": labels,
                                    "annotations": {"com.example.team": "shop"}}
    web = container(result, "web")
    assert (web["image"], web["command"], web["args"], web["workingDir"]) == (
        "nginx:1.27", ["/entry.sh"], ["nginx", "-g", "daemon off;"], "/srv")
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "from env"}]
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"},
                            {"containerPort": 27015, "protocol": "UDP"}]
    assert web["resources"] == {"limits": {"cpu": "1.5", "memory": "512Mi"}}
    service = objects(result, "Service")["web"]
    assert service["spec"] == {"type": "ClusterIP", "selector": labels, "ports": [
        {"name": "tcp-80", "port": 80, "targetPort": 80, "protocol": "TCP"},
        {"name": "udp-27015", "port": 27015, "targetPort": 27015, "protocol": "UDP"}]}
    assert "8080:80, 8081:80" in notes_about(result, "services.web.ports")[0]


def test_host_ports_service_type_and_namespace() -> None:
    result = export(WEB, host_ports=True, service_type="LoadBalancer", namespace="shop")
    web = container(result, "web")
    assert web["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "hostPort": 8080},
        {"containerPort": 80, "protocol": "TCP", "hostPort": 8081},
        {"containerPort": 27015, "protocol": "UDP", "hostPort": 27015}]
    deployment = objects(result, "Deployment")["web"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert objects(result, "Service")["web"]["spec"]["type"] == "LoadBalancer"
    assert {d["metadata"]["namespace"] for d in result.documents} == {"shop"}
    assert not notes_about(result, "services.web.ports")


def test_no_service_object_without_published_ports() -> None:
    result = export('project = "p"\n[services.worker]\nimage = "w"\n')
    assert list(objects(result, "Deployment")) == ["worker"]
    assert objects(result, "Service") == {}


VOLUMES = """
project = "Data_Stack"

[services.db]
image = "postgres"
volumes = ["pgdata:/var/lib/postgresql/data", "./init:/docker-entrypoint-initdb.d:ro",
           "/etc/localtime:/etc/localtime:ro,Z", "/scratch", "shared:/shared"]
tmpfs = ["/run", "/tmp:size=64m"]

[services.backup]
image = "backup"
replicas = 2
volumes = ["pgdata:/data:ro"]

[volumes.pgdata]
driver = "nfs"

[volumes.shared]
external = true
name = "team-share"
"""


def test_volumes_claims_host_paths_and_empty_dirs() -> None:
    result = export(VOLUMES, volume_size="20Gi")
    claims = objects(result, "PersistentVolumeClaim")
    assert list(claims) == ["data-stack-pgdata"]
    assert claims["data-stack-pgdata"]["spec"] == {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}
    db = pod(result, "db")
    assert db["volumes"] == [
        {"name": "pgdata", "persistentVolumeClaim": {"claimName": "data-stack-pgdata"}},
        {"name": "vol-1", "hostPath": {"path": "/srv/stack/init"}},
        {"name": "vol-2", "hostPath": {"path": "/etc/localtime"}},
        {"name": "vol-3", "emptyDir": {}},
        {"name": "shared", "persistentVolumeClaim": {"claimName": "team-share"}},
        {"name": "tmpfs-0", "emptyDir": {"medium": "Memory"}},
        {"name": "tmpfs-1", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    assert db["containers"][0]["volumeMounts"] == [
        {"name": "pgdata", "mountPath": "/var/lib/postgresql/data"},
        {"name": "vol-1", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
        {"name": "vol-2", "mountPath": "/etc/localtime", "readOnly": True},
        {"name": "vol-3", "mountPath": "/scratch"},
        {"name": "shared", "mountPath": "/shared"},
        {"name": "tmpfs-0", "mountPath": "/run"},
        {"name": "tmpfs-1", "mountPath": "/tmp"}]
    assert objects(result, "Deployment")["db"]["spec"]["strategy"] == {"type": "Recreate"}
    volume_notes = " ".join(notes_about(result, "services.db.volumes"))
    assert "/srv/stack/init" in volume_notes and "emptyDir" in volume_notes
    assert "SELinux" in volume_notes
    assert "mounted by 3 pods" in notes_about(result, "volumes.pgdata")[-1]
    assert "storage class" in notes_about(result, "volumes.pgdata")[0]
    assert "team-share must exist" in notes_about(result, "volumes.shared")[0]
    assert "20Gi" in notes_about(result, "volumes")[0]


def test_a_relative_bind_starts_from_the_boltfiles_folder(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text('project = "p"\n[services.web]\nimage = "w"\nvolumes = ["./site:/s"]\n')
    result = to_kubernetes(path)
    assert pod(result, "web")["volumes"][0]["hostPath"]["path"] == str(tmp_path / "site")


def test_health_checks_become_exec_probes() -> None:
    text = """
project = "p"
[services.a]
image = "a"
[services.a.healthcheck]
test = ["CMD-SHELL", "curl -f http://localhost || exit 1"]
interval = "10s"
timeout = "1500ms"
retries = 5
start_period = "1m"
disable = false
[services.b]
image = "b"
healthcheck = { test = ["pg_isready", "-q"], disable = false }
[services.c]
image = "c"
healthcheck = { test = ["CMD", "true"], disable = true }
[services.d]
image = "d"
healthcheck = { test = ["NONE"], disable = false }
"""
    result = export(text)
    a = container(result, "a")
    expected = {"exec": {"command": ["/bin/sh", "-c", "curl -f http://localhost || exit 1"]},
                "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 5}
    assert a["readinessProbe"] == expected
    assert a["livenessProbe"] == {**expected, "initialDelaySeconds": 60}
    # Docker's defaults where the Boltfile gives none: 30 s, 30 s, 3 retries.
    assert container(result, "b")["livenessProbe"] == {
        "exec": {"command": ["pg_isready", "-q"]}, "periodSeconds": 30,
        "timeoutSeconds": 30, "failureThreshold": 3}
    for name in ("c", "d"):
        assert "livenessProbe" not in container(result, name)
        assert "readinessProbe" not in container(result, name)
    assert "&id" not in result.yaml_text  # no YAML aliases between the two probes


@pytest.mark.parametrize(("gpu", "limits", "note_key"), [
    ("", {"nvidia.com/gpu": 1}, None),
    ('[services.ai.gaming.gpu.nvbind]\ndevices = ["gpu:0", "gpu:1"]\n',
     {"nvidia.com/gpu": 2}, "services.ai.gaming.gpu.nvbind.devices"),
    ('[services.ai.gaming.gpu.nvbind]\ndevices = ["gpu:all"]\n', {"nvidia.com/gpu": 1},
     "services.ai.gaming.gpu.nvbind.devices"),
    ('[services.ai.gaming.gpu]\nisolation_level = "shared"\n', {"nvidia.com/gpu": 1},
     "services.ai.gaming.gpu"),
    ('[services.ai.gaming.gpu]\nruntime = "amd"\n', {"amd.com/gpu": 1}, None),
])
def test_gpu_requests_become_resource_limits(gpu: str, limits: dict[str, int],
                                             note_key: str | None) -> None:
    text = (f'project = "p"\n[services.ai]\nimage = "ollama/ollama"\nmemory_limit = "8g"\n'
            f"[services.ai.gaming]\nenabled = true\n{GAMING_OFF}{gpu}")
    result = export(text)
    assert container(result, "ai")["resources"] == {"limits": {"memory": "8Gi", **limits}}
    if note_key is not None:
        assert notes_about(result, note_key)


def test_gaming_settings_without_an_equivalent_are_noted() -> None:
    text = (f'project = "p"\n[services.game]\nimage = "steam"\n[services.game.gaming]\n'
            f'enabled = true\n{GAMING_OFF}proton_version = "8.0"\n'
            f'[services.game.gaming.audio]\nsystem = "pipewire"\n')
    result = export(text)
    assert notes_about(result, "services.game.gaming.proton_version")
    assert notes_about(result, "services.game.gaming.audio")
    assert not notes_about(result, "services.game.gaming.real_time_priority")


def test_pod_level_settings() -> None:
    text = """
project = "p"
[services.net]
image = "n"
user = "1000:1000"
privileged = true
read_only = true
cap_add = ["NET_ADMIN"]
cap_drop = ["CAP_ALL"]
network_mode = "host"
pid = "host"
ipc = "shareable"
extra_hosts = ["db.local:10.0.0.2", "cache.local:10.0.0.2", "v6:[::1]"]
dns = ["1.1.1.1"]
dns_search = ["example.com"]
group_add = ["44"]
sysctls = { "net.core.somaxconn" = "1024" }
platform = "linux/arm64/v8"
regions = ["eu-west"]
hostname = "Net_Box"
stdin_open = true
tty = true
"""
    result = export(text)
    spec = pod(result, "net")
    net = spec["containers"][0]
    assert net["securityContext"] == {
        "privileged": True, "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
        "runAsUser": 1000, "runAsGroup": 1000}
    assert (net["stdin"], net["tty"]) == (True, True)
    assert (spec["hostNetwork"], spec["hostPID"], spec["hostname"]) == (True, True,
                                                                        "net-box")
    assert "hostIPC" not in spec and notes_about(result, "services.net.ipc")
    assert spec["hostAliases"] == [{"ip": "10.0.0.2", "hostnames": ["db.local",
                                                                   "cache.local"]},
                                   {"ip": "::1", "hostnames": ["v6"]}]
    assert spec["dnsConfig"] == {"nameservers": ["1.1.1.1"], "searches": ["example.com"]}
    assert spec["securityContext"] == {
        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
        "supplementalGroups": [44]}
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"}
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["eu-west"]


NOTED = """
project = "p"
[services.web]
image = "w"
restart = "on-failure:3"
depends_on = ["db"]
networks = ["front", "default"]
user = "www-data"
devices = ["/dev/fuse"]
logging = { driver = "syslog", options = {} }
[services.db]
image = "postgres"
restart = "no"
[services.app]
build = "./app"
[services.Bad_Name]
image = "b"
[networks.front]
driver = "bridge"
[snapshots]
enabled = true
[quic_fabric]
enabled = true
"""


def test_what_has_no_equivalent_is_noted_by_key() -> None:
    result = export(NOTED)
    for key in ("services.web.restart", "services.db.restart", "services.web.depends_on",
                "services.web.networks", "services.web.user", "services.web.devices",
                "services.web.logging", "services.app.build", "networks", "snapshots",
                "quic_fabric", "services.Bad_Name"):
        assert notes_about(result, key), key
    assert "front" in notes_about(result, "services.web.networks")[0]
    assert "default" not in notes_about(result, "services.web.networks")[0]
    assert list(objects(result, "Deployment")) == ["web", "db", "bad-name"]
    assert "#   - services.web.restart:" in result.yaml_text  # the header lists them


@pytest.mark.parametrize(("text", "message"), [
    ('project = "a b"\n[services.web]\nimage = "w"\n', "Boltfile.toml:1:11: the project"),
    ('project = "p"\n[services.web]\nbuild = "."\n', "no service has an image"),
])
def test_boltfiles_that_cannot_be_exported_are_refused(text: str, message: str) -> None:
    with pytest.raises(KubernetesExportError, match=message):
        export(text)


def test_an_unknown_service_type_is_refused() -> None:
    with pytest.raises(KubernetesExportError, match="NodeIP"):
        export(WEB, service_type="NodeIP")  # type: ignore[arg-type]


def test_the_command_writes_the_yaml_and_prints_the_notes(tmp_path: Path) -> None:
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text(WEB)
    out = tmp_path / "shop.yaml"
    result = CliRunner().invoke(cli, ["boltfile", "export", "--to", "kubernetes",
                                      str(boltfile), "-o", str(out), "--host-ports",
                                      "--service-type", "NodePort", "--volume-size", "2Gi",
                                      "--namespace", "shop"])
    assert result.exit_code == 0, result.output
    written = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert [d["kind"] for d in written] == ["Deployment", "Service"]
    assert written[1]["spec"]["type"] == "NodePort"
    assert written[0]["metadata"]["namespace"] == "shop"
    assert f"wrote {out} (0 notes)" in result.stderr
    shown = CliRunner().invoke(cli, ["boltfile", "export", "--to", "kubernetes",
                                     str(boltfile)])
    assert shown.exit_code == 0
    assert "note: services.web.ports: 8080:80, 8081:80" in shown.stderr
    assert [d["kind"] for d in yaml.safe_load_all(shown.stdout) if d] == ["Deployment",
                                                                          "Service"]


def test_the_command_refuses_an_invalid_boltfile(tmp_path: Path) -> None:
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text('project = "p"\n')
    result = CliRunner().invoke(cli, ["boltfile", "export", "--to", "kubernetes",
                                      str(boltfile)])
    assert result.exit_code == 1
    assert "the required key `services` is missing" in result.stderr
    assert result.stdout == ""


def test_dollar_parentheses_stay_literal() -> None:
    # Kubernetes would expand $(NAME) in command, args and env; the engine does not.
    text = ('project = "p"\n[services.web]\nimage = "w"\nentrypoint = ["sh", "-c"]\n'
            'command = ["echo $(date) $HOME"]\nenvironment = { PS1 = "$(whoami)$ " }\n')
    web = container(export(text), "web")
    assert web["args"] == ["echo $$(date) $HOME"]
    assert web["env"] == [{"name": "PS1", "value": "$$(whoami)$ "}]
