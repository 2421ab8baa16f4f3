"""``ghostpanel audit`` as a real process on a temporary GHOSTPANEL_HOME (and PostgreSQL).

The rows are written through :class:`AuditLog` as the gateway writes them; the store is
then tampered with by raw SQL, as someone with access to the database file could.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ghostpanel_kernel.gateway._audit import COLUMNS, AuditLog
from ghostpanel_kernel.store import open_database
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401

REPOSITORY = Path(__file__).resolve().parents[2]


class Store:
    """A store the CLI reads: its engine, and the variables that point the CLI at it."""

    def __init__(self, home: Path, url: str | None) -> None:
        self.home, self.url = home, url
        self.engine: Engine = open_database(url or f"sqlite:///{home}/ghostpanel.db")
        self.log = AuditLog(self.engine)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "GHOSTPANEL_HOME": str(self.home),
                       "PYTHONPATH": os.pathsep.join(filter(None, [
                           str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
        environment.pop("GHOSTPANEL_DATABASE_URL", None)
        if self.url is not None:
            environment["GHOSTPANEL_DATABASE_URL"] = self.url
        return subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "audit", *args],
                              capture_output=True, text=True, env=environment, timeout=120,
                              check=False)

    def tamper(self, statement: str) -> None:
        with self.engine.begin() as db:
            db.execute(text(statement))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "sqlite":
        made = Store(home, None)
        try:
            yield made
        finally:
            made.engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        made = Store(home, url)
        try:
            yield made
        finally:
            made.engine.dispose()


def _fill(log: AuditLog) -> None:
    for i, (user, env, result) in enumerate([("ada", "prod", "allowed"),
                                             ("bob", "prod", "denied"),
                                             ("ada", "dev", "allowed"),
                                             ("ada", "prod", "failed")]):
        log.record(user=user, environment=env, action="POST /containers/{id}/stop",
                   target=f"web-{i}", result=result, status={"allowed": 204, "denied": 403,
                                                             "failed": 500}[result],
                   request_id=f"req-{i}", detail={"i": i})


def test_ls_filters_and_prints_a_table_or_json(store: Store) -> None:
    _fill(store.log)
    listed = store.run("ls")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "USER", "ENV", "ACTION", "TARGET", "RESULT",
                                "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert "denied" in lines[2] and "403" in lines[2] and "bob" in lines[2]
    as_json = store.run("ls", "--user", "ada", "--env", "prod", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [(r["seq"], r["result"], r["detail"]) for r in rows] == [
        (1, "allowed", {"i": 0}), (4, "failed", {"i": 3})]
    assert datetime.fromisoformat(rows[0]["time"]).tzinfo is not None
    newest = json.loads(store.run("ls", "--limit", "1", "--json").stdout)
    assert [r["seq"] for r in newest] == [4]
    assert json.loads(store.run("ls", "--since", "1h", "--json").stdout) != []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert json.loads(store.run("ls", "--since", future, "--json").stdout) == []
    bad = store.run("ls", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_verify_passes_then_catches_an_edited_row(store: Store) -> None:
    _fill(store.log)
    good = store.run("verify")
    assert (good.returncode, good.stdout) == (0, "ok: 4 rows, the chain holds\n")
    store.tamper("UPDATE gateway_audit SET result = 'allowed' WHERE seq = 2")
    broken = store.run("verify")
    assert broken.returncode == 1
    assert broken.stderr == ("Error: the audit log is broken at row 2: row 2 does not match "
                             "its hash: edited (2 rows read)\n")
    as_json = store.run("verify", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {"ok": False, "checked": 2, "first_bad": 2,
                                          "reason": "row 2 does not match its hash: edited"}


def test_verify_catches_a_deleted_row(store: Store) -> None:
    _fill(store.log)
    store.tamper("DELETE FROM gateway_audit WHERE seq = 3")
    broken = store.run("verify")
    assert broken.returncode == 1
    assert "broken at row 3: row 3 is missing: deleted" in broken.stderr


def test_export_writes_csv_to_a_file_or_stdout(store: Store, tmp_path: Path) -> None:
    _fill(store.log)
    target = tmp_path / "audit.csv"
    exported = store.run("export", "--format", "csv", "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == f"exported 4 rows to {target}\n"
    with open(target, encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["seq"], r["user"], r["status"]) for r in rows] == [
        ("1", "ada", "204"), ("2", "bob", "403"), ("3", "ada", "204"), ("4", "ada", "500")]
    assert rows[1]["hash"] == rows[2]["prev_hash"] and json.loads(rows[0]["detail"]) == {"i": 0}
    piped = store.run("export", "--user", "bob")
    assert piped.returncode == 0 and piped.stderr == ""
    assert [r["seq"] for r in csv.DictReader(io.StringIO(piped.stdout))] == ["2"]
