"""The ``AuditLog`` widget without a browser: over a real SQLite store (the store's own
``AuditLog``, hash chain included) and over the gateway's API (canned, MockTransport);
and the dashboard's Audit tab, shown only where there is a log to show.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import AuditLog
from sqlalchemy import Engine, text

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.gateway._audit import AuditLog as StoreAuditLog
from ghostpanel_kernel.gateway._audit_source import (
    GatewayAuditSource,
    LocalAuditSource,
    audit_source_for_session,
)
from ghostpanel_kernel.gateway._client import GatewayClient, HubGateway
from ghostpanel_kernel.store import open_database
from tests.unit.fake_engine import FakeEngine, env_for, json_answer
from tests.unit.test_gateway_client import GATEWAY, TOKEN, FakeGateway


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'ghostpanel.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def audit(store: Engine) -> StoreAuditLog:
    """A store with four rows: ada stops and starts web, bob is refused twice."""
    log = StoreAuditLog(store)
    for user, action, result, status in (("ada", "container.stop", "allowed", 204),
                                         ("bob", "container.kill", "denied", 403),
                                         ("ada", "container.start", "allowed", 204),
                                         ("bob", "exec.create", "denied", 403)):
        log.record(user=user, environment="prod", action=action, target="web",
                   result=result, status=status, request_id=f"r-{action}",
                   detail={"why": "test"} if result == "denied" else None)
    log.record(user="cy", environment="staging", action="image.pull", target="busybox",
               result="failed", status=500, request_id="r-pull")
    return log


async def _open(widgets: list[Any], source: Any, **options: Any) -> AuditLog:
    widget = AuditLog(source, live=False, **options)
    widgets.append(widget)
    await widget.wait_idle()
    return widget


async def test_the_table_shows_the_stores_entries(audit: StoreAuditLog,
                                                  widgets: list[Any]) -> None:
    widget = await _open(widgets, LocalAuditSource(audit))
    assert widget.status.message == ""
    frame = widget.frame
    assert list(frame.columns) == ["time", "user", "environment", "action", "target",
                                   "result", "status"]
    assert list(frame["user"]) == ["ada", "bob", "ada", "bob", "cy"]
    assert list(frame["status"]) == ["204", "403", "204", "403", "500"]
    assert widget.count == 5
    assert frame["time"][0].startswith(datetime.now(UTC).strftime("%Y-%m-%d"))


async def test_filters_by_user_environment_and_result(audit: StoreAuditLog,
                                                      widgets: list[Any]) -> None:
    widget = await _open(widgets, LocalAuditSource(audit))
    widget.user_field.value = "bob"  # what a user typing in the field does
    await widget.wait_idle()
    assert list(widget.frame["action"]) == ["container.kill", "exec.create"]
    widget.user = ""
    widget.result = "failed"
    await widget.wait_idle()
    assert list(widget.frame["user"]) == ["cy"]
    widget.result = ""
    widget.environment = "prod"
    await widget.wait_idle()
    assert set(widget.frame["environment"]) == {"prod"} and widget.count == 4


async def test_since_takes_a_time_ago_or_an_iso_time(audit: StoreAuditLog,
                                                     widgets: list[Any]) -> None:
    widget = await _open(widgets, LocalAuditSource(audit))
    widget.since = "1h"
    await widget.wait_idle()
    assert widget.count == 5
    widget.since = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    await widget.wait_idle()
    assert widget.count == 0
    widget.since = "yesterday-ish"
    await widget.wait_idle()
    assert widget.status.level == "error"
    assert "neither a time ago (15m, 2h, 7d) nor an ISO 8601 time" in widget.status.message


async def test_verify_chain_says_ok_then_names_an_edited_row(
        audit: StoreAuditLog, store: Engine, widgets: list[Any]) -> None:
    widget = await _open(widgets, LocalAuditSource(audit))
    assert await widget.verify() is True
    assert "The chain holds: 5 entries checked." in widget.verdict.value
    with store.begin() as connection:  # someone edits bob's refusal into a success
        connection.execute(text("UPDATE gateway_audit SET result = 'allowed' "
                                "WHERE seq = 2"))
    assert await widget.verify() is False
    assert "The chain is broken at entry 2" in widget.verdict.value


async def test_csv_download_holds_the_shown_entries(audit: StoreAuditLog,
                                                    widgets: list[Any]) -> None:
    widget = await _open(widgets, LocalAuditSource(audit), result="denied")
    href = widget.download.value.split('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("data:text/csv;base64,")
    text_csv = base64.b64decode(href.split(",", 1)[1]).decode()
    assert text_csv == widget.to_csv()
    rows = list(csv.DictReader(io.StringIO(text_csv)))
    assert [(row["user"], row["action"], row["result"]) for row in rows] == [
        ("bob", "container.kill", "denied"), ("bob", "exec.create", "denied")]
    assert rows[0]["detail"] == '{"why": "test"}' and rows[0]["request_id"] == \
        "r-container.kill"


async def test_live_reads_new_entries(audit: StoreAuditLog, widgets: list[Any]) -> None:
    widget = AuditLog(LocalAuditSource(audit), refresh_interval=0.1)
    widgets.append(widget)
    await widget.wait_idle()
    assert widget.count == 5 and widget.live_toggle.value
    audit.record(user="dee", environment="prod", action="container.create", target="db",
                 result="allowed", status=201, request_id="r-new")
    for _ in range(50):
        await asyncio.sleep(0.05)
        if widget.count == 6:
            break
    assert list(widget.frame["user"])[-1] == "dee"
    widget.live = False  # stops reading
    audit.record(user="eve", environment="prod", action="container.create", target="x",
                 result="allowed", status=201, request_id="r-later")
    await asyncio.sleep(0.3)
    assert widget.count == 6


async def test_through_the_gateway_with_the_users_token(widgets: list[Any]) -> None:
    gateway = FakeGateway(admin=True)
    source = GatewayAuditSource(GatewayClient(HubGateway(GATEWAY, TOKEN),
                                              transport=httpx.MockTransport(gateway)))
    widget = await _open(widgets, source, user="bob")
    assert list(widget.frame["action"]) == ["container.stop", "container.kill"]
    assert dict(gateway.log[-1].url.params) == {"user": "bob", "limit": "500"}
    assert widget.verify_button.disabled  # the chain is checked where the store is


async def test_a_refusal_reads_as_your_role_in_the_status_line(widgets: list[Any]) -> None:
    source = GatewayAuditSource(GatewayClient(HubGateway(GATEWAY, TOKEN),
                                              transport=httpx.MockTransport(FakeGateway())))
    widget = await _open(widgets, source)
    assert widget.status.level == "error"
    assert widget.status.message == ("Reading the audit log failed: your role on the gateway "
                                     "does not allow admin (GET /api/v1/audit)")


async def test_no_source_says_why_there_is_nothing(widgets: list[Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_kernel.gateway import _audit_source

    monkeypatch.setattr(_audit_source, "audit_source_for_session", lambda: None)
    widget = AuditLog()
    widgets.append(widget)
    assert widget.status.level == "error"
    assert "the audit log is for hub admins" in widget.status.message
    assert widget.reload() is None


# -- which source the dashboard finds --------------------------------------------------


def test_outside_a_hub_a_store_without_entries_gives_no_audit_tab(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    assert audit_source_for_session({}) is None
    assert not (tmp_path / "ghostpanel.db").exists()  # not created to find it empty
    engine = open_database()
    try:
        assert audit_source_for_session({}) is None  # a store, but no entry yet
        StoreAuditLog(engine).record(user="ada", environment="prod", action="x",
                                     target="y", result="allowed", status=200,
                                     request_id="r")
    finally:
        engine.dispose()
    found = audit_source_for_session({})
    assert isinstance(found, LocalAuditSource) and found.can_verify


@pytest.mark.parametrize("admin", [True, False])
def test_in_a_hub_only_an_admin_gets_the_gateways_log(monkeypatch: pytest.MonkeyPatch,
                                                       admin: bool) -> None:
    from ghostpanel_kernel.gateway import _audit_source

    gateway = FakeGateway(admin=admin)

    def client(hub: HubGateway, **options: Any) -> GatewayClient:
        return GatewayClient(hub, transport=httpx.MockTransport(gateway),
                             **{k: v for k, v in options.items() if k != "transport"})

    monkeypatch.setattr(_audit_source, "GatewayClient", client)
    found = audit_source_for_session({"JUPYTERHUB_API_TOKEN": TOKEN,
                                      "GHOSTPANEL_GATEWAY_URL": GATEWAY})
    assert isinstance(found, GatewayAuditSource) == admin
    assert gateway.log[0].url.path == "/services/ghostpanel/api/v1/whoami"


# -- the dashboard's Audit tab ---------------------------------------------------------


def _empty_engine() -> Environment:
    return env_for(FakeEngine({("GET", "/containers/json"): json_answer([]),
                               ("GET", "/events"): json_answer([])}))


async def test_the_dashboard_shows_an_audit_tab_only_with_a_source(
        audit: StoreAuditLog) -> None:
    from ghostpanel_widgets import OpsDashboard

    env = _empty_engine()
    plain = OpsDashboard(env, audit=False)
    try:
        assert plain.tab_names[-1] == "Runbooks" and "Audit" not in plain.tabs.titles
        with pytest.raises(Exception, match="tab must be one of"):
            plain.tab = "Audit"
    finally:
        plain.close()
    dashboard = OpsDashboard(env, audit=LocalAuditSource(audit))
    try:
        assert dashboard.tabs.titles[-1] == "Audit"
        view = dashboard.show_tab("Audit")
        assert isinstance(view, AuditLog)
        await view.wait_idle()
        assert view.count == 5
        assert dashboard.tabs.selected_index == len(dashboard.tab_names) - 1
    finally:
        dashboard.close()
        await env.aclose()
