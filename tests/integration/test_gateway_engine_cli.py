"""``ghostpanel gateway`` itself, as the hub runs it: its variables, a hub to ask, SIGINT.

A stand-in hub (a thread of this process) answers ``GET /hub/api/user`` for the tokens
of a table, so that the gateway's own sign-in path runs: JupyterHub's ``HubAuth``
configured from ``JUPYTERHUB_API_URL``/``JUPYTERHUB_API_TOKEN``, as ``ghostpanel hub``
starts it. (The tests with a real hub and proxy are ``tests/integration/test_hub_*``.)
"""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.agent_process import cli_environment, free_port, ghostpanel_command, run_cli
from tests.orphans import claim

pytestmark = pytest.mark.integration

USERS: dict[str, dict[str, Any]] = {
    "reader-token": {"kind": "user", "name": "sam", "groups": ["blue"], "admin": False,
                     "scopes": ["custom:ghostpanel:prod:read"]},
}


class _Hub(http.server.BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        token = (self.headers.get("Authorization") or "").partition(" ")[2]
        self.asked.append(self.path)
        model = USERS.get(token) if self.path == "/hub/api/user" else None
        body = json.dumps(model or {"status": 403}).encode()
        self.send_response(200 if model else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def stand_in_hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    finally:
        server.shutdown()
        server.server_close()


def test_the_gateway_command_serves_for_the_hub_and_stops_on_sigint(
        engine_url: str, stand_in_hub: str) -> None:
    home = claim(Path(tempfile.mkdtemp(prefix="gp-gw-", dir="/tmp")))
    try:
        assert run_cli(home, "env", "add", "prod", engine_url).returncode == 0
        port = free_port()
        environ = cli_environment(home)
        environ.update({"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
                        "JUPYTERHUB_SERVICE_PREFIX": "/services/ghostpanel/",
                        "JUPYTERHUB_API_URL": stand_in_hub,
                        "JUPYTERHUB_API_TOKEN": "the-gateway-services-token",
                        "JUPYTERHUB_CLIENT_ID": "service-ghostpanel"})
        with (home / "out").open("wb") as out, (home / "err").open("wb") as err:
            process = subprocess.Popen(ghostpanel_command(home, "gateway"), env=environ,
                                       stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while b"ghostpanel gateway ready" not in (home / "out").read_bytes():
                assert process.poll() is None and time.monotonic() < deadline, \
                    (home / "err").read_text()
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}/services/ghostpanel/env/prod/engine"
            with httpx.Client(base_url=base, timeout=20) as http:
                ping = http.get("/_ping", headers={"Authorization": "token reader-token"})
                assert (ping.status_code, ping.text) == (200, "OK")
                refused = http.post("/v1.41/containers/x/stop",
                                    headers={"Authorization": "token reader-token"})
                assert refused.status_code == 403
                assert http.get("/_ping", headers={
                    "Authorization": "token unknown"}).status_code == 401
                browser = http.get("/_ping", headers={"Accept": "text/html"})
                assert browser.status_code == 302
                assert browser.headers["location"].startswith(
                    "/hub/api/oauth2/authorize?client_id=service-ghostpanel")
            assert "/hub/api/user" in _Hub.asked
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            assert process.wait(15) == 0, (home / "err").read_text()
            assert time.monotonic() - started < 5
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_without_the_hub_variables_it_refuses_to_start(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "gateway", "--bind", "127.0.0.1:1", timeout=60)
    assert result.returncode == 2
    assert "JUPYTERHUB_API_TOKEN" in result.stderr
