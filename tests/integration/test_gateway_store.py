"""The gateway's store on SQLite and a real PostgreSQL 15: roles, bindings, the audit log.

Every test runs twice, on a new SQLite file and on a new database of the session's
private PostgreSQL server (``tests/postgres_server.py``). The concurrency tests use
real OS processes, each with its own connections, as several gateway processes would.
"""

from __future__ import annotations

import io
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ghostpanel_kernel.gateway._audit import COLUMNS, AuditLog
from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES
from ghostpanel_kernel.gateway._roles import Binding, RoleInUse, RoleStore
from ghostpanel_kernel.store import StoreError, open_database
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_database(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _run_writers(url: str, count: int, per_process: int,
                 meanwhile: Callable[[], None] = lambda: None) -> list[str]:
    """Start ``count`` processes that each append ``per_process`` rows; their outputs.

    ``meanwhile`` is called over and over while they run.
    """
    script = (
        "import sys\n"
        "from ghostpanel_kernel.store import open_database\n"
        "from ghostpanel_kernel.gateway._audit import AuditLog\n"
        "url, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
        "log = AuditLog(open_database(url))\n"
        "seqs = [log.record(user=me, environment='prod', action='POST /x', target=str(i),\n"
        "                   result='allowed', status=200, request_id=f'{me}-{i}',\n"
        "                   detail={'i': i}) for i in range(n)]\n"
        "print(' '.join(map(str, seqs)))\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, url, f"w{k}", str(per_process)],
                                cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for k in range(count)]
    try:
        deadline = time.monotonic() + 180
        while any(writer.poll() is None for writer in writers) and time.monotonic() < deadline:
            meanwhile()
        outputs = []
        for writer in writers:
            out, err = writer.communicate(timeout=180)
            assert writer.returncode == 0, err
            outputs.append(out)
        return outputs
    finally:  # a failed check leaves no writer behind
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            writer.communicate()


# -- roles and bindings ---------------------------------------------------------------


def test_bindings_for_a_user_and_their_groups_add_up_per_environment(engine: Engine) -> None:
    roles = RoleStore(engine)
    assert roles.grant("ada", "viewer", "prod") is True
    assert roles.grant("@blue", "operator", "prod") is True
    assert roles.grant("@red", "deployer", "prod") is True
    assert roles.grant("ada", "helpdesk", "dev") is True
    assert roles.grant("ada", "viewer", "prod") is False  # already there
    assert roles.permissions("ada", {"blue"}, "prod") == BUILTIN_ROLES["operator"]
    assert roles.permissions("ada", set(), "prod") == {"read"}
    assert roles.permissions("ada", {"red"}, "prod") == BUILTIN_ROLES["deployer"]
    assert roles.permissions("bob", {"blue"}, "dev") == frozenset()
    assert roles.permissions_by_environment("ada", {"blue"}) == {
        "prod": BUILTIN_ROLES["operator"], "dev": BUILTIN_ROLES["helpdesk"]}
    assert roles.bindings("dev") == [Binding("dev", "ada", "helpdesk")]
    assert roles.revoke("@blue", "operator", "prod") is True
    assert roles.revoke("@blue", "operator", "prod") is False
    assert roles.permissions("ada", {"blue"}, "prod") == {"read"}


def test_custom_roles_are_validated_and_cannot_be_deleted_while_bound(engine: Engine) -> None:
    roles = RoleStore(engine)
    roles.define_role("auditor", ["read", "logs"])
    assert roles.roles()["auditor"] == {"read", "logs"}
    assert set(roles.roles()) == {*BUILTIN_ROLES, "auditor"}
    with pytest.raises(ValueError, match="built-in role: it cannot be redefined"):
        roles.define_role("operator", ["read"])
    with pytest.raises(ValueError, match="unknown permission 'fly'"):
        roles.define_role("pilot", ["read", "fly"])
    with pytest.raises(ValueError, match="built-in role: it cannot be deleted"):
        roles.delete_role("viewer")
    with pytest.raises(KeyError, match="no role 'ghost'"):
        roles.grant("ada", "ghost", "prod")
    assert roles.bindings() == []  # the refused grant left nothing behind
    roles.grant("@blue", "auditor", "prod")
    assert roles.permissions("ada", {"blue"}, "prod") == {"read", "logs"}
    roles.define_role("auditor", ["read"])  # redefined: the bindings follow
    assert roles.permissions("ada", {"blue"}, "prod") == {"read"}
    with pytest.raises(RoleInUse, match=r"'auditor' is still granted \(@blue on prod\)"):
        roles.delete_role("auditor")
    assert "auditor" in roles.roles()  # the refused delete was rolled back
    roles.revoke("@blue", "auditor", "prod")
    roles.delete_role("auditor")
    assert "auditor" not in roles.roles()
    with pytest.raises(KeyError):
        roles.delete_role("auditor")


# -- the audit log --------------------------------------------------------------------


def _fill(log: AuditLog, rows: int) -> None:
    for i in range(rows):
        log.record(user="ada" if i % 2 else "bob", environment="prod" if i < 3 else "dev",
                   action="POST /containers/{id}/stop", target=f"c{i}",
                   result="denied" if i == 1 else "allowed", status=403 if i == 1 else 204,
                   request_id=f"r{i}", detail={"n": i, "é": [1, None]} if i else None)


def test_records_chain_and_read_back_with_filters(engine: Engine) -> None:
    log = AuditLog(engine)
    before = datetime.now(UTC)
    _fill(log, 5)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[1].detail == {"n": 1, "é": [1, None]} and entries[0].detail is None
    assert entries[1].result == "denied" and entries[1].status == 403
    assert all(e.time.tzinfo is not None and e.time >= before - timedelta(seconds=1)
               for e in entries)
    assert [e.seq for e in log.entries(user="ada")] == [2, 4]
    assert [e.seq for e in log.entries(environment="dev")] == [4, 5]
    assert [e.seq for e in log.entries(limit=2)] == [4, 5]
    assert log.entries(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert [e.seq for e in log.entries(until=entries[2].time)] == [1, 2]
    assert log.verify().ok and log.verify().checked == 5
    with pytest.raises(ValueError, match="result must be one of"):
        log.record(user="ada", environment=None, action="x", target=None, result="ok",
                   status=None, request_id=None)


def test_tidy_frame_and_csv(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log, 3)
    frame = log.to_pandas(user="ada")
    assert list(frame.columns) == list(COLUMNS)
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["seq"].tolist() == [2] and frame["status"].tolist() == [403]
    assert {str(frame[name].dtype) for name in ("user", "environment", "target")} == {"string"}
    assert frame["detail"].tolist() == [{"n": 1, "é": [1, None]}]
    empty = log.to_pandas(user="nobody")
    assert list(empty.columns) == list(COLUMNS) and len(empty) == 0
    assert str(empty["time"].dtype) == "datetime64[ns, UTC]"
    assert str(empty["user"].dtype) == "string" and str(empty["status"].dtype) == "Int64"
    stream = io.StringIO()
    assert log.write_csv(stream) == 3
    lines = stream.getvalue().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].startswith("1,") and ",r0,," in lines[1]  # None detail: empty cell
    assert '"{""n"":1,""é"":[1,null]}"' in lines[2]


@pytest.mark.parametrize(("tamper", "first_bad", "reason"), [
    ("UPDATE gateway_audit SET target = 'other' WHERE seq = 3", 3, "row 3 does not match "
     "its hash: edited"),
    ("UPDATE gateway_audit SET detail = NULL WHERE seq = 2", 2, "edited"),
    ("DELETE FROM gateway_audit WHERE seq = 3", 3, "row 3 is missing: deleted"),
    ("DELETE FROM gateway_audit WHERE seq IN (2, 3)", 2, "rows 2 to 3 are missing"),
    ("DELETE FROM gateway_audit WHERE seq = 5", 5, "row 5 is missing from the end"),
    # Swap rows 2 and 3 (all their fields, hashes included): the links break.
    ("UPDATE gateway_audit SET seq = CASE seq WHEN 2 THEN -3 ELSE -2 END "
     "WHERE seq IN (2, 3); UPDATE gateway_audit SET seq = -seq WHERE seq < 0", 2,
     "row 2 does not match its hash"),
    ("UPDATE gateway_audit_head SET hash = 'x'", 5, "rows were added or changed"),
])
def test_verify_finds_the_first_tampered_row(engine: Engine, tamper: str, first_bad: int,
                                             reason: str) -> None:
    log = AuditLog(engine)
    _fill(log, 5)
    with engine.begin() as db:
        for statement in tamper.split("; "):
            db.execute(text(statement))
    verification = log.verify()
    assert not verification.ok
    assert verification.first_bad == first_bad
    assert verification.reason is not None and reason in verification.reason


def test_a_missing_head_or_table_is_a_store_error_and_writes_nothing(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log, 2)
    with engine.begin() as db:
        db.execute(text("DELETE FROM gateway_audit_head"))
    with pytest.raises(StoreError, match="the audit log's chain head is missing"):
        log.record(user="ada", environment=None, action="x", target=None,
                   result="allowed", status=None, request_id=None)
    assert [e.seq for e in log.entries()] == [1, 2]
    verification = log.verify()
    assert (verification.ok, verification.first_bad) == (False, 3)
    assert "head is missing" in str(verification.reason)
    with engine.begin() as db:
        db.execute(text("DROP TABLE gateway_audit"))
    with pytest.raises(StoreError, match=r"^the audit log failed: .*gateway_audit"):
        log.entries()


def test_a_recomputed_row_still_breaks_the_next_link(engine: Engine) -> None:
    """An editor who also recomputes the edited row's hash is caught at the next row."""
    from ghostpanel_kernel.gateway._audit_chain import ChainRow, row_hash

    log = AuditLog(engine)
    _fill(log, 4)
    row = log.entries()[1]
    forged = ChainRow(row.seq, row.time, "mallory", row.environment, row.action, row.target,
                      row.result, row.status, row.request_id, json.dumps(row.detail,
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False),
                      row.prev_hash, "")
    with engine.begin() as db:
        db.execute(text("UPDATE gateway_audit SET user_name = 'mallory', hash = :h "
                        "WHERE seq = 2"), {"h": row_hash(forged)})
    verification = log.verify()
    assert (verification.ok, verification.first_bad) == (False, 3)
    assert "does not link to row 2" in str(verification.reason)


def test_processes_appending_at_once_write_one_contiguous_chain(store_url: str) -> None:
    engine = open_database(store_url)
    log = AuditLog(engine)
    checks: list[tuple[bool, int]] = []

    def verify_meanwhile() -> None:  # one snapshot: never a head out of step with rows
        result = log.verify()
        checks.append((result.ok, result.checked))
        assert result.ok, result

    try:
        outputs = _run_writers(store_url, count=4, per_process=40, meanwhile=verify_meanwhile)
        seqs = sorted(int(s) for out in outputs for s in out.split())
        assert seqs == list(range(1, 161))
        assert len({checked for _, checked in checks}) > 1  # some ran while rows came in
        assert log.verify().ok and log.verify().checked == 160
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, 161))
        assert all(a.time <= b.time for a, b in itertools.pairwise(entries))
        for k in range(4):  # each process's rows in its own order
            mine = [int(e.target or -1) for e in entries if e.user == f"w{k}"]
            assert mine == list(range(40))
    finally:
        engine.dispose()


def test_record_speed(store_url: str, record_property: pytest.RecordProperty) -> None:
    """p50 of one record() on this store (printed; a loose bound catches a regression).

    With a pool of connections, as the gateway opens its store.
    """
    engine = open_database(store_url, pooled=True)
    try:
        log = AuditLog(engine)
        timings = []
        for i in range(200):
            start = time.perf_counter()
            log.record(user="ada", environment="prod", action="POST /containers/{id}/stop",
                       target=f"c{i}", result="allowed", status=204, request_id=f"r{i}",
                       detail={"i": i})
            timings.append(time.perf_counter() - start)
        p50 = statistics.median(timings) * 1000
        p95 = statistics.quantiles(timings, n=20)[-1] * 1000
        record_property("record_p50_ms", round(p50, 2))
        print(f"\n{engine.dialect.name}: record() p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        assert p50 < 50
        start = time.perf_counter()
        assert log.verify().ok
        print(f"{engine.dialect.name}: verify() of 200 rows "
              f"{(time.perf_counter() - start) * 1000:.1f} ms")
    finally:
        engine.dispose()


# -- migrations on PostgreSQL ---------------------------------------------------------


def _differences(engine: Engine) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from ghostpanel_kernel.store._migrate import VERSION_TABLE
    from ghostpanel_kernel.store._schema import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def test_a_postgresql_store_made_before_migrations_is_upgraded_in_place(
        postgres_server: PostgresServer) -> None:  # noqa: F811
    from sqlalchemy import create_engine

    from ghostpanel_kernel.store._migrate import HEAD_REVISION, current_revision
    from ghostpanel_kernel.store._schema import create_schema

    with postgres_server.database() as url:
        old = create_engine(url)
        create_schema(old)  # what open_database did before migrations
        with old.begin() as db:
            db.execute(text("INSERT INTO settings VALUES ('default_environment', 'old')"))
        old.dispose()
        engine = open_database(url)
        try:
            assert current_revision(engine) == HEAD_REVISION
            assert _differences(engine) == []
            with engine.connect() as db:
                assert db.execute(text("SELECT value FROM settings")).scalar() == "old"
        finally:
            engine.dispose()


def test_processes_opening_a_new_postgresql_store_at_once_all_succeed(
        postgres_server: PostgresServer) -> None:  # noqa: F811
    code = ("import sys\n"
            "from ghostpanel_kernel.store import open_database\n"
            "open_database(sys.argv[1]).dispose()\n")
    with postgres_server.database() as url:
        openers = [subprocess.Popen([sys.executable, "-c", code, url], cwd=REPOSITORY,
                                    stderr=subprocess.PIPE, text=True) for _ in range(6)]
        failures = [(opener.wait(timeout=120), opener.communicate()[1]) for opener in openers]
        assert failures == [(0, "")] * 6
        engine = open_database(url)
        try:
            assert _differences(engine) == []
            with engine.connect() as db:
                assert db.execute(text(
                    "SELECT count(*) FROM ghostpanel_alembic_version")).scalar() == 1
        finally:
            engine.dispose()
