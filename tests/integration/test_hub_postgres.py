"""A hub whose GhostPanel store is PostgreSQL: the CLI and the gateway share it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.hub_process import RunningHub, hub_factory_fixture  # noqa: F401
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401

pytestmark = pytest.mark.integration


def test_the_gateway_reads_the_bindings_the_cli_writes_to_postgresql(
        hub_factory: Callable[..., RunningHub], postgres_url: str) -> None:  # noqa: F811
    hub = hub_factory(database_url=postgres_url,
                      environments={"pg-prod": "tcp://127.0.0.1:9"})
    assert not (hub.home / "ghostpanel.db").exists()  # nothing fell back to SQLite
    hub.add_user("pg-ada", groups=("pg-blue",))
    hub.cli("hub", "role", "grant", "@pg-blue", "operator", "--env", "pg-prod")
    hub.wait_for_gateway()
    with hub.client(hub.token("pg-ada")) as http:
        answer = http.get("services/ghostpanel/api/v1/whoami")
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["permissions"]["pg-prod"]) == [
        "exec", "files", "lifecycle", "logs", "read"]
    listed = hub.cli("hub", "role", "ls", "--env", "pg-prod").stdout
    assert "@pg-blue" in listed
