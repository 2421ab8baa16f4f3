"""The client side of a hub session against a real gateway process (``tests/gateway_process.py``:
the real gateway app, store and Hypercorn on loopback, a token table standing in for the
hub) in front of the session's Podman engine.

Only the hub session's variables are set (``JUPYTERHUB_API_TOKEN``,
``GHOSTPANEL_GATEWAY_URL``); ``connect()``, the registry, the CLI and the AuditLog widget
must then reach the gateway with that token with no other set-up, and a refusal must read
"your role on prod does not allow ...".
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel import PermissionDenied, connect
from ghostpanel_kernel.engine import Container, EnvironmentNotFound
from ghostpanel_kernel.environments import GatewayRegistry, session_registry
from ghostpanel_kernel.gateway._audit_source import GatewayAuditSource
from ghostpanel_kernel.gateway._client import GatewayClient, HubGateway
from tests.gateway_process import RunningGateway, start_gateway
from tests.orphans import claim
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _hub_session(gateway: RunningGateway, token: str) -> dict[str, str]:
    """What the hub puts in a single-user server's environment (the part we read)."""
    return {"JUPYTERHUB_API_TOKEN": token, "GHOSTPANEL_GATEWAY_URL": gateway.url,
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{gateway.port}/hub/api"}


@dataclass
class Session:
    gateway: RunningGateway
    container: dict[str, str]  # team blue's running container (made by dora, deployer)


@pytest.fixture(scope="module")
def session(podman_engine: PodmanService) -> Iterator[Session]:
    home = claim(Path(tempfile.mkdtemp(prefix="gp-gw-", dir="/tmp")))
    gateway = start_gateway(podman_engine.url, home=home)
    name = f"gwc-{uuid.uuid4().hex[:6]}"
    ident = ""
    try:
        with gateway.engine("dep-blue") as http:
            answer = http.post("/v1.41/containers/create", params={"name": name},
                               json={"Image": BUSYBOX_REFERENCE, "Cmd": ["sleep", "600"]})
            assert answer.status_code == 201, answer.text
            ident = answer.json()["Id"]
            assert http.post(f"/v1.41/containers/{ident}/start").status_code == 204
        yield Session(gateway, {"id": ident, "name": name})
    finally:
        try:
            gateway.stop()
        finally:
            if ident:
                socket_path = podman_engine.url.removeprefix("unix://")
                with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path),
                                  base_url="http://engine", timeout=30) as http:
                    # Stopped (and waited for) before removal: Podman's cleanup of the
                    # exec sessions run in it must end before the engine is reset.
                    http.post(f"/v1.41/containers/{ident}/stop", params={"t": "0"})
                    http.post(f"/v1.41/containers/{ident}/wait")
                    http.delete(f"/v1.41/containers/{ident}", params={"force": "1"})
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, session: Session
            ) -> Iterator[Callable[[str], None]]:
    """``as_user(token)``: make this process a hub session of that token's user."""
    monkeypatch.delenv("JUPYTERHUB_SERVICE_NAME", raising=False)
    monkeypatch.delenv("GHOSTPANEL_ENVIRONMENT", raising=False)

    def become(token: str) -> None:
        for key, value in _hub_session(session.gateway, token).items():
            monkeypatch.setenv(key, value)

    yield become


async def test_whoami_and_environments_with_the_users_token(session: Session) -> None:
    hub = HubGateway(session.gateway.url, "op-blue")
    async with GatewayClient(hub) as client:
        me = await client.whoami()
        environments = await client.environments()
    assert me.name == "olga" and me.teams == frozenset({"blue"}) and not me.admin
    assert {"read", "lifecycle", "exec"} <= me.permissions["prod"]
    assert [(e.name, e.kind) for e in environments] == [("prod", "local")]
    assert "create" not in environments[0].permissions


def test_the_registry_is_the_gateways_in_a_hub_session(as_user: Callable[[str], None],
                                                       session: Session) -> None:
    as_user("view-blue")
    registry = session_registry()
    assert isinstance(registry, GatewayRegistry)
    assert [spec.name for spec in registry.list()] == ["prod"]
    assert registry.resolve(None).url == f"{session.gateway.url}env/prod"
    as_user("nobody-at-all")
    with pytest.raises(Exception, match="did not accept this session's hub token"):
        session_registry().list()


async def test_an_operator_stops_and_starts_her_teams_container(
        as_user: Callable[[str], None],
                                                                session: Session) -> None:
    as_user("op-blue")
    env = connect()  # no argument: the first environment the gateway shows her
    try:
        assert env.name == "prod"
        container: Container = await env.containers.get(session.container["name"])
        assert container.id == session.container["id"]
        names = [c.name for c in await env.containers.list(all=True)]
        assert session.container["name"] in names
        await container.stop(timeout=1)
        await container.reload()
        assert container.state == "exited"
        await container.start()
        await container.reload()
        assert container.state == "running"
    finally:
        await env.aclose()


async def test_a_viewers_stop_reads_your_role_does_not_allow(as_user: Callable[[str], None],
                                                             session: Session) -> None:
    as_user("view-blue")
    env = connect("prod")
    try:
        container = await env.containers.get(session.container["name"])
        with pytest.raises(PermissionDenied) as caught:
            await container.stop(timeout=1)
        await container.reload()
        assert container.state == "running"  # nothing reached the engine
    finally:
        await env.aclose()
    message = str(caught.value)
    assert message.startswith("your role on prod does not allow lifecycle (POST /v1.")
    assert message.endswith(f"/containers/{session.container['id']}/stop)")
    assert caught.value.permission == "lifecycle"
    with pytest.raises(EnvironmentNotFound):
        connect("staging")


def test_the_cli_in_a_hub_session_prints_the_refusal(session: Session) -> None:
    environment = {key: value for key, value in os.environ.items()
                   if key != "JUPYTERHUB_SERVICE_NAME"}
    environment.update(_hub_session(session.gateway, "view-blue"))
    stopped = subprocess.run(
        [sys.executable, "-m", "ghostpanel_kernel.cli", "stop", session.container["name"]],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=60)
    assert stopped.returncode != 0
    assert "your role on prod does not allow lifecycle" in stopped.stderr, stopped.stderr
    listed = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "ps"],
                            capture_output=True, text=True, env=environment, cwd=ROOT,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert session.container["name"] in listed.stdout


async def test_the_audit_log_through_the_gateway(session: Session) -> None:
    from ghostpanel_widgets import AuditLog

    # A refusal to record first: vic's stop.
    with session.gateway.engine("view-blue") as http:
        assert http.post(f"/v1.41/containers/{session.container['id']}/stop"
                         ).status_code == 403
    async with GatewayClient(HubGateway(session.gateway.url, "op-blue")) as client:
        with pytest.raises(PermissionDenied, match="your role on the gateway does not "
                                                   "allow admin"):
            await client.audit()
    source = GatewayAuditSource(GatewayClient(HubGateway(session.gateway.url, "admin")))
    widget = AuditLog(source, live=False, user="vic")
    try:
        await widget.wait_idle()
        assert widget.status.message == ""
        frame = widget.frame
        assert set(frame["user"]) == {"vic"}
        denied = frame[frame["result"] == "denied"]
        assert len(denied) >= 1 and set(denied["status"]) == {"403"}
        assert set(denied["environment"]) == {"prod"}
    finally:
        widget.close()


async def test_exec_through_the_gateways_engine_api(as_user: Callable[[str], None],
                                                    session: Session) -> None:
    as_user("op-blue")
    env = connect("prod")
    try:
        container = await env.containers.get(session.container["name"])
        result = await container.exec(["sh", "-c", "echo via-engine-api"])
        assert (result.exit_code, result.stdout) == (0, "via-engine-api\n")
    finally:
        await env.aclose()


async def test_an_exec_session_takes_the_gateways_websocket(as_user: Callable[[str], None],
                                                           session: Session) -> None:
    as_user("op-blue")
    env = connect("prod")
    try:
        container = await env.containers.get(session.container["name"])
        # The interactive session takes the gateway's /env/prod/api/v1 WebSocket.
        async with container.exec_session(["sh", "-c", "echo via-websocket; exit 3"],
                                          tty=False) as shell:
            output = b""
            while (piece := await shell.receive_output()) is not None:
                output += piece[1]
            assert await shell.wait() == 3
        assert output == b"via-websocket\n"
    finally:
        await env.aclose()


async def test_a_viewers_exec_session_is_refused_in_her_terms(
        as_user: Callable[[str], None], session: Session) -> None:
    as_user("view-blue")
    env = connect("prod")
    try:
        container = await env.containers.get(session.container["name"])
        with pytest.raises(PermissionDenied, match="your role on prod does not allow exec"):
            async with container.exec_session(["sh"], tty=False):
                pass
    finally:
        await env.aclose()


@pytest.mark.parametrize(("token", "audit_tab"), [("admin", True), ("op-blue", False)])
async def test_the_dashboard_in_a_hub_session(as_user: Callable[[str], None],
                                              session: Session, token: str,
                                              audit_tab: bool) -> None:
    from ghostpanel_widgets import AuditLog, OpsDashboard

    as_user(token)
    dashboard = OpsDashboard()  # the gateway's environments; the Audit tab for admins
    try:
        assert dashboard.environment == "prod"
        assert [spec.name for spec in dashboard.picker.options] == ["prod"]
        await dashboard.container_list.ready(timeout=30)
        assert session.container["name"] in set(dashboard.container_list.data["name"])
        assert ("Audit" in dashboard.tab_names) is audit_tab
        if audit_tab:
            view = dashboard.show_tab("Audit")
            assert isinstance(view, AuditLog)
            await view.wait_idle()
            assert view.status.message == "" and view.count > 0
    finally:
        dashboard.close()
        await asyncio.sleep(0.1)  # the environment's and the source's aclose tasks
