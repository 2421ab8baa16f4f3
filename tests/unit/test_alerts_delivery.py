"""Alert deliveries (metrics/_alert_delivery): the webhook against a tiny loopback HTTP
server this test runs (retries on 5xx and refused connections, none on 4xx), and the
audit log in a SQLite store."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.metrics._alert_delivery import AuditDelivery, WebhookDelivery
from ghostpanel_kernel.metrics._alert_state import Notification

ALERT = {"id": 7, "rule": "hot", "kind": "cpu_saturated", "container": "web",
         "severity": "critical", "message": "web is hot", "value": 1.5,
         "fired_at": "2027-01-15T08:00:00.000Z", "resolved_at": None}


class Receiver:
    """A loopback webhook receiver answering the statuses it is given, in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(list(getattr(request, "param", [])))
    yield server
    server.close()


@pytest.mark.parametrize("receiver", [[500, 503]], indirect=True)
async def test_webhook_retries_5xx_then_delivers_one_body_per_status(
        receiver: Receiver) -> None:
    hook = WebhookDelivery(receiver.url, attempts=4, backoff=0.01)
    notes = [Notification("firing", ALERT),
             Notification("resolved", {**ALERT, "id": 8, "container": "api"})]
    await hook.deliver("prod", notes)
    assert len(receiver.bodies) == 4  # two 5xx, then firing, then resolved
    firing, resolved = receiver.bodies[2], receiver.bodies[3]
    assert firing == {"version": 1, "source": "ghostpanel", "environment": "prod",
                      "status": "firing", "alerts": [ALERT]}
    assert resolved["status"] == "resolved"
    assert [a["container"] for a in resolved["alerts"]] == ["api"]


@pytest.mark.parametrize("receiver", [[400, 500]], indirect=True)
async def test_webhook_does_not_retry_a_refusal(receiver: Receiver) -> None:
    await WebhookDelivery(receiver.url, attempts=4, backoff=0.01).deliver(
        "prod", [Notification("firing", ALERT)])
    assert len(receiver.bodies) == 1


@pytest.mark.parametrize("receiver", [[500] * 10], indirect=True)
async def test_webhook_retries_are_bounded(receiver: Receiver) -> None:
    await WebhookDelivery(receiver.url, attempts=3, backoff=0.01).deliver(
        "prod", [Notification("firing", ALERT)])
    assert len(receiver.bodies) == 3


async def test_webhook_survives_a_receiver_that_is_down() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await WebhookDelivery(f"http://127.0.0.1:{port}/hook", attempts=2, backoff=0.01
                          ).deliver("prod", [Notification("firing", ALERT)])  # no raise


async def test_audit_log_records_firing_and_resolved(tmp_path: Path) -> None:
    from ghostpanel_kernel.gateway._audit import AuditLog
    from ghostpanel_kernel.store import open_database

    url = f"sqlite:///{tmp_path / 'gp.db'}"
    await AuditDelivery(url).deliver("prod", [
        Notification("firing", ALERT), Notification("resolved", ALERT)])
    engine = open_database(url)
    try:
        log = AuditLog(engine)
        entries = log.entries()
        assert log.verify().ok
    finally:
        engine.dispose()
    assert [(e.user, e.environment, e.action, e.target, e.result) for e in entries] == [
        ("alerts", "prod", "alert.firing", "web", "allowed"),
        ("alerts", "prod", "alert.resolved", "web", "allowed")]
    assert entries[0].detail["rule"] == "hot"
