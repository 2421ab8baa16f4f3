"""The Kubernetes export, run for real: ``podman kube play`` on the session's engine.

A Boltfile with two services (a web server publishing a port, with env, a named
volume, a bind mount, a memory limit and a health check; a worker) is exported with
``--host-ports`` (Podman publishes a pod's ports through hostPort) and played on the
test engine through the podman CLI. The pods must run with the env and the port
(served over HTTP from the host), the claim must be a volume, the limit and the probe
must reach the containers; ``podman kube down`` and ``podman volume rm`` tear it down.
The commands trap SIGTERM (a shell as PID 1 ignores it otherwise), so that ``kube down``
need not wait out its grace period.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.bolt import to_kubernetes
from tests.integration.conftest import BUSYBOX, unique
from tests.integration.surge_project import free_port
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

BOLTFILE = """\
project = "{project}"

[services.web]
image = "{image}"
command = ["/bin/sh", "-c", '''trap 'exit 0' TERM; cat /conf/motd > /www/index.html
echo "$GREETING" >> /www/index.html; httpd -f -p 8080 -h /www & wait''']
ports = ["{port}:8080"]
volumes = ["content:/www", "./conf:/conf:ro"]
memory_limit = "64m"

[services.web.environment]
GREETING = "hello from kube"

[services.web.healthcheck]
test = ["CMD", "test", "-s", "/www/index.html"]
interval = "5s"
retries = 2
disable = false

[services.worker]
image = "{image}"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]

[services.worker.env]
ROLE = "worker"
"""


def _http_get(url: str, deadline: float) -> str:
    """The body at ``url``, asked until the server answers (it starts with the pod)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _containers(engine: PodmanService, project: str, service: str) -> list[dict[str, Any]]:
    """The service's containers: Podman puts the pod template's labels on them (and not
    on the pods' infra containers)."""
    listed: list[dict[str, Any]] = json.loads(engine.podman(
        "ps", "-a", "--format", "json",
        "--filter", f"label=app.kubernetes.io/part-of={project}",
        "--filter", f"label=app.kubernetes.io/name={service}").stdout or "[]")
    return listed


def _inspect(engine: PodmanService, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(engine.podman("inspect", name).stdout)[0]
    return found


def test_podman_kube_play_runs_the_export(podman_engine: PodmanService,
                                          tmp_path: Path) -> None:
    project = unique("kube")
    port = free_port()
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "motd").write_text("from the host\n")
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text(BOLTFILE.format(project=project, image=BUSYBOX, port=port))
    exported = to_kubernetes(boltfile, host_ports=True)
    manifest = tmp_path / "kube.yaml"
    manifest.write_text(exported.yaml_text)
    claim = f"{project}-content"
    assert [d["kind"] for d in exported.documents] == [
        "PersistentVolumeClaim", "Deployment", "Service", "Deployment"]
    try:
        podman_engine.podman("kube", "play", str(manifest), timeout=120)
        deadline = time.monotonic() + 30
        body = _http_get(f"http://127.0.0.1:{port}/index.html", deadline)
        # The bind mount, the env and the published port, all at once.
        assert body == "from the host\nhello from kube\n"
        web = _containers(podman_engine, project, "web")
        worker = _containers(podman_engine, project, "worker")
        assert len(web) == 1 and len(worker) == 1
        assert worker[0]["State"] == "running"
        web_config = _inspect(podman_engine, web[0]["Names"][0])
        assert "GREETING=hello from kube" in web_config["Config"]["Env"]
        assert web_config["HostConfig"]["Memory"] == 64 * 1024**2
        worker_config = _inspect(podman_engine, worker[0]["Names"][0])
        assert "ROLE=worker" in worker_config["Config"]["Env"]
        # The claim became a volume, mounted where the service mounts it.
        mounts = {m["Destination"]: m for m in web_config["Mounts"]}
        assert mounts["/www"]["Name"] == claim
        assert mounts["/conf"]["Source"] == str(tmp_path / "conf")
        assert not mounts["/conf"]["RW"]
        # The probe is the health check, and it passes in the running container.
        health = web_config["Config"]["Healthcheck"]
        assert "/www/index.html" in " ".join(health["Test"])
        assert health["Interval"] == 5 * 10**9 and health["Retries"] == 2
        checked = podman_engine.podman("healthcheck", "run", web[0]["Names"][0],
                                       check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        podman_engine.podman("kube", "down", str(manifest), check=False, timeout=120)
        podman_engine.podman("volume", "rm", "--force", claim, check=False)
    assert _containers(podman_engine, project, "web") == []
    assert _containers(podman_engine, project, "worker") == []
    volumes = podman_engine.podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert claim not in volumes
