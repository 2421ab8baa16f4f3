"""``ghostpanel hub`` starts and stops cleanly: nothing of the hub outlives it.

Each test starts its own hub (``hub_factory``), since each one stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel._procfs import is_running
from tests.hub_process import RunningHub, hub_factory_fixture  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_hub_proxy_gateway_and_servers(
        hub_factory: Callable[..., RunningHub], sig: signal.Signals) -> None:
    hub = hub_factory()
    hub.wait_for_gateway()
    pids = hub.part_pids()
    assert set(pids) == {"ghostpanel hub", "jupyterhub", "proxy", "gateway"}
    assert all(is_running(pid) for pid in pids.values()), pids

    hub.process.send_signal(sig)
    assert hub.process.wait(60) == 0, hub.log()
    left = {name: pid for name, pid in pids.items() if is_running(pid)}
    assert left == {}
    assert hub.still_running() == []
    assert not (hub.home / "hub" / "hub.json").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(hub.url, timeout=5)


def test_a_single_user_server_opens_the_notebooks_and_stops_with_the_hub(
        hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory()
    hub.add_user("sp-ada", groups=("sp-blue",))
    # The hub answers when the server is up or after its slow_spawn_timeout (10 s).
    start = httpx.post(f"{hub.api_url}/users/sp-ada/server", headers=hub.admin_headers,
                       timeout=60)
    assert start.status_code in (201, 202), start.text
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        model = hub.admin.user("sp-ada")
        if model["server"] and not model["pending"]:
            break
        time.sleep(1)
    else:
        pytest.fail(f"sp-ada's server did not start\n{hub.log()}")
    folder = hub.home / "hub" / "users" / "sp-ada"
    repository = Path(__file__).resolve().parents[2]
    for name in ("notebooks", "voila_apps"):
        copied = sorted(p.name for p in (folder / name).glob("*.ipynb"))
        assert copied == sorted(p.name for p in (repository / name).glob("*.ipynb"))
        assert not (folder / name).is_symlink()
    # The server's environment points at the gateway, and its own token reaches it.
    server = [line for line in hub.still_running() if "jupyterhub-singleuser" in line]
    assert len(server) == 1 and f"--ServerApp.root_dir={folder}" in server[0]
    token = hub.token("sp-ada")
    with hub.client(token) as http:
        lab = http.get("user/sp-ada/api/status")
        assert lab.status_code == 200, lab.text

    assert hub.stop() == 0
    assert hub.still_running() == []


def test_hub_user_commands_say_when_no_hub_runs() -> None:
    with tempfile.TemporaryDirectory(prefix="gp-hub-none-") as home:
        environment = {**os.environ, "GHOSTPANEL_HOME": home}
        result = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "hub",
                                 "user", "ls"], env=environment, capture_output=True,
                                text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"no hub runs for {home}" in result.stderr
    assert "ghostpanel hub" in result.stderr


def test_missing_proxy_names_the_set_up_command(tmp_path: Path) -> None:
    environment = {**os.environ, "GHOSTPANEL_HOME": str(tmp_path),
                   "PATH": str(Path(sys.executable).parent)}  # no configurable-http-proxy
    result = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "hub",
                             "--port", "1"], env=environment, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "configurable-http-proxy is not on PATH" in result.stderr
    assert "scripts/setup.sh" in result.stderr
