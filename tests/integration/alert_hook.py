"""A loopback webhook receiver for the alert tests: ``hook`` keeps every JSON body
POSTed to ``hook.url``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["Hook", "hook_fixture"]


class Hook:
    """A loopback webhook receiver that keeps the bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def notified(self) -> list[tuple[str, str, str]]:
        return [(body["status"], alert["rule"], alert["container"])
                for body in self.bodies for alert in body["alerts"]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join()


@pytest.fixture(name="hook")
def hook_fixture() -> Iterator[Hook]:
    """A running :class:`Hook`, shut down after the test."""
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join()
