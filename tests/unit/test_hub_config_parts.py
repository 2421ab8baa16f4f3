"""What the hub configuration is made of: secrets, roles.toml, user folders, login."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghostpanel_kernel._procfs import command_line
from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES, scope_name
from ghostpanel_kernel.hub._authenticator import DemoAuthenticator
from ghostpanel_kernel.hub._config import HubPorts, demo_password, seed_user_folder
from ghostpanel_kernel.hub._launch import running_hub
from ghostpanel_kernel.hub._paths import HubPaths, HubState, secret_file
from ghostpanel_kernel.hub._roles_config import (
    RolesFileError,
    StaticBinding,
    hub_roles,
    read_bindings,
)


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    first = secret_file(path)
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_file(path) == first
    assert secret_file(tmp_path / "other") != first


def test_demo_password_prefers_the_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    paths = HubPaths(tmp_path)
    paths.ensure()
    monkeypatch.setenv("GHOSTPANEL_HUB_PASSWORD", "from-the-environment")
    assert demo_password(paths) == "from-the-environment"
    assert not paths.password.exists()
    monkeypatch.delenv("GHOSTPANEL_HUB_PASSWORD")
    generated = demo_password(paths)
    assert len(generated) >= 8  # the shared-password authenticator's minimum
    assert paths.password.read_text().strip() == generated


def test_ports_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = HubPorts(ip="127.0.0.1", port=8123, api_port=1, proxy_api_port=2,
                     gateway_port=3)
    for key, value in ports.to_environment().items():
        monkeypatch.setenv(key, value)
    assert HubPorts.from_environment() == ports
    assert HubPorts("0.0.0.0", 80, 1, 2, 3).local_url == "http://127.0.0.1:80/"
    assert HubPorts("::1", 80, 1, 2, 3).public_url == "http://[::1]:80/"
    monkeypatch.setenv("GHOSTPANEL_HUB_PORT", "eighty")
    with pytest.raises(ValueError, match="GHOSTPANEL_HUB_PORT='eighty'"):
        HubPorts.from_environment()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roles.toml"
    path.write_text(text)
    return path


def test_roles_toml_becomes_one_hub_role_per_role_and_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        [[binding]]
        group = "blue"
        role = "viewer"
        env = "prod"
        [[binding]]
        group = "red"
        role = "viewer"
        env = "prod"
        [[binding]]
        group = "red"
        role = "operator"
        env = "dev"
        """)
    bindings = read_bindings(path, BUILTIN_ROLES)
    assert bindings[0] == StaticBinding("blue", "viewer", "prod")
    roles = hub_roles(bindings, BUILTIN_ROLES, scope_name)
    assert [(role["name"], role["groups"]) for role in roles] == [
        ("ghostpanel-dev-operator", ["red"]), ("ghostpanel-prod-viewer", ["blue", "red"])]
    assert set(roles[0]["scopes"]) == {scope_name("dev", p) for p in BUILTIN_ROLES["operator"]}


def test_no_roles_toml_means_no_bindings(tmp_path: Path) -> None:
    assert read_bindings(tmp_path / "absent.toml", BUILTIN_ROLES) == []


@pytest.mark.parametrize(("text", "message"), [
    ("[[binding]\n", "not valid TOML"),
    ("binding = 3\n", "array of tables"),
    ('[[binding]]\ngroup = "blue"\nrole = "viewer"\n', 'binding 1 needs env = "..."'),
    ('[[binding]]\ngroup = "b"\nrole = "boss"\nenv = "prod"\n', "unknown role 'boss'"),
    ('[[binding]]\ngroup = "b"\nrole = "viewer"\nenv = "Prod"\n', "cannot appear in a hub"),
])
def test_bad_roles_toml_names_the_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RolesFileError, match=message):
        read_bindings(_write(tmp_path, text), BUILTIN_ROLES)


def test_user_folder_gets_copies_and_keeps_edits(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    (source / "notebooks" / ".ipynb_checkpoints").mkdir(parents=True)
    (source / "notebooks" / "a.ipynb").write_text("original")
    (source / "notebooks" / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("x")
    (source / "voila_apps").mkdir()
    (source / "voila_apps" / "dash.ipynb").write_text("dashboard")
    folder = tmp_path / "users" / "ada"

    seed_user_folder(folder, source)
    copied = folder / "notebooks" / "a.ipynb"
    assert copied.read_text() == "original" and not copied.is_symlink()
    assert (folder / "voila_apps" / "dash.ipynb").read_text() == "dashboard"
    assert not (folder / "notebooks" / ".ipynb_checkpoints").exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    copied.write_text("ada's edit")
    (source / "notebooks" / "b.ipynb").write_text("new in the repository")
    seed_user_folder(folder, source)
    assert copied.read_text() == "ada's edit"
    assert (folder / "notebooks" / "b.ipynb").read_text() == "new in the repository"


def test_demo_login_keeps_the_stored_admin_flag() -> None:
    authenticator = DemoAuthenticator(user_password="shared-password-1")
    answer = asyncio.run(authenticator.authenticate(None, {"username": "ada",
                                                           "password": "shared-password-1"}))
    assert answer == {"name": "ada", "groups": []}  # no "admin": the hub keeps its flag
    wrong = asyncio.run(authenticator.authenticate(None, {"username": "ada",
                                                          "password": "nope-nope"}))
    assert wrong is None


def _state(pid: int) -> HubState:
    return HubState(pid=pid, hub_pid=pid, url="http://127.0.0.1:8000/",
                    api_url="http://127.0.0.1:8000/hub/api",
                    gateway_url="http://127.0.0.1:8000/services/ghostpanel/", gateway_port=1)


def test_running_hub_ignores_stale_pid_files(tmp_path: Path) -> None:
    paths = HubPaths(tmp_path)
    paths.ensure()
    # A PID that runs, but not a hub or a proxy: PIDs are reused after a crash.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # One whose arguments are those of `ghostpanel hub`.
    hub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hub"])
    try:
        # Until it has exec'd, a child's command line is still pytest's.
        deadline = time.monotonic() + 30
        while (command_line(hub.pid) or [])[-1:] != ["hub"] and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid_file in (paths.hub_pid, paths.proxy_pid):
            pid_file.write_text(f"{sleeper.pid}\n")
        paths.write_state(_state(sleeper.pid))
        assert running_hub(paths) is None
        paths.hub_pid.write_text(f"{os.getpid()}\n")  # pytest's command line: no hub
        assert running_hub(paths) is None
        paths.write_state(_state(hub.pid))
        reason = running_hub(paths)
        assert reason is not None and f"PID {hub.pid}" in reason
        assert "http://127.0.0.1:8000/" in reason
    finally:
        for process in (sleeper, hub):
            process.kill()
            process.wait()
