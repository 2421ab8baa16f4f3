"""The store's Alembic migrations: new stores, stores made before migrations, the head.

What a store opened by this version must be: exactly the layout the models describe
(``alembic.autogenerate.compare_metadata`` finds no difference), however it started.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from ghostpanel_kernel.store import StoreConfigurationError, open_database
from ghostpanel_kernel.store._migrate import (
    HEAD_REVISION,
    MIGRATIONS,
    REVISIONS,
    VERSION_TABLE,
    current_revision,
)
from ghostpanel_kernel.store._schema import Base

REPOSITORY = Path(__file__).resolve().parents[2]

#: The SQLite DDL of the code before migrations (its create_schema, as it shipped).
BEFORE_MIGRATIONS = (
    "CREATE TABLE environments (\n\tname VARCHAR(128) NOT NULL, \n\turl TEXT NOT NULL, "
    "\n\ttls_ca_cert TEXT, \n\ttls_client_cert TEXT, \n\ttls_client_key TEXT, \n\t"
    "tls_verify BOOLEAN, \n\ttls_fingerprint TEXT, \n\ttoken TEXT, \n\tlabels JSON NOT "
    "NULL, \n\tcreated_at DATETIME NOT NULL, \n\tPRIMARY KEY (name)\n)",
    "CREATE TABLE settings (\n\t\"key\" VARCHAR(128) NOT NULL, \n\tvalue TEXT NOT NULL, "
    "\n\tPRIMARY KEY (\"key\")\n)",
    "CREATE TABLE environment_health (\n\tname VARCHAR(128) NOT NULL, \n\turl TEXT NOT "
    "NULL, \n\tlast_success DATETIME, \n\tlast_failure DATETIME, \n\tfailing_since "
    "DATETIME, \n\tfailure TEXT, \n\tPRIMARY KEY (name)\n)",
    "CREATE TABLE agent_tokens (\n\tname VARCHAR(128) NOT NULL, \n\tdigest VARCHAR(64) NOT "
    "NULL, \n\tcreated_at DATETIME NOT NULL, \n\trevoked_at DATETIME, \n\tPRIMARY KEY "
    "(name), \n\tUNIQUE (digest)\n)",
    "CREATE TABLE gpu_allocations (\n\tid INTEGER NOT NULL, \n\tworkload VARCHAR(255) NOT "
    "NULL, \n\tunit VARCHAR(128) NOT NULL, \n\tslot INTEGER NOT NULL, \n\tgpu_index "
    "INTEGER NOT NULL, \n\tgpu_uuid VARCHAR(128) NOT NULL, \n\tmig_index INTEGER, \n\t"
    "policy VARCHAR(32) NOT NULL, \n\ttenants INTEGER NOT NULL, \n\tsimulated BOOLEAN NOT "
    "NULL, \n\tcontainer_id VARCHAR(128), \n\tcreated_at DATETIME NOT NULL, \n\tPRIMARY "
    "KEY (id), \n\tCONSTRAINT uq_gpu_allocation_slot UNIQUE (unit, slot)\n)",
    "CREATE INDEX ix_gpu_allocations_workload ON gpu_allocations (workload)",
)

#: An even older store: environments without the agent columns, no later tables.
OLDEST = (
    "CREATE TABLE environments (name VARCHAR(128) NOT NULL, url TEXT NOT NULL, "
    "tls_ca_cert TEXT, tls_client_cert TEXT, tls_client_key TEXT, tls_verify BOOLEAN, "
    "labels JSON NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (name))",
    "CREATE TABLE settings (key VARCHAR(128) NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (key))",
)

ROWS = (
    "INSERT INTO environments (name, url, labels, created_at) VALUES ('old', "
    "'tcp://127.0.0.1:2375', '{\"region\": \"eu\"}', '2026-11-01 10:00:00.000000')",
    "INSERT INTO settings VALUES ('default_environment', 'old')",
)


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection,
                                             opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def _make(path: Path, statements: tuple[str, ...]) -> None:
    with sqlite3.connect(path) as old:
        for statement in statements:
            old.execute(statement)
    old.close()


def test_the_revision_list_is_alembic_s() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    walked = [script.revision for script in scripts.walk_revisions()]
    assert tuple(reversed(walked)) == REVISIONS
    assert scripts.get_current_head() == HEAD_REVISION


def test_a_new_store_is_migrated_to_exactly_the_models(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/new.db")
    try:
        assert current_revision(engine) == HEAD_REVISION
        assert _differences(engine) == []
        with engine.connect() as connection:
            head = connection.execute(text("SELECT id, seq, hash FROM gateway_audit_head"))
            assert head.all() == [(1, 0, "0" * 64)]
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


@pytest.mark.parametrize("statements", [BEFORE_MIGRATIONS, OLDEST],
                         ids=["before-migrations", "oldest"])
def test_a_store_made_before_migrations_is_stamped_and_upgraded_in_place(
        tmp_path: Path, statements: tuple[str, ...]) -> None:
    path = tmp_path / "old.db"
    _make(path, statements + ROWS)
    engine = open_database(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD_REVISION
        assert _differences(engine) == []  # the same layout as a new store's
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT name, url, labels, token FROM environments")).all() == [
                ("old", "tcp://127.0.0.1:2375", '{"region": "eu"}', None)]
            assert connection.execute(text("SELECT value FROM settings")).scalar() == "old"
    finally:
        engine.dispose()


def test_a_store_at_revision_1_gains_revision_2(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/r1.db"
    engine = open_database(url)
    with engine.connect() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        connection.commit()
    assert current_revision(engine) == "0001"
    assert "gateway_audit" not in inspect(engine).get_table_names()
    engine.dispose()
    engine = open_database(url)
    try:
        assert current_revision(engine) == HEAD_REVISION and _differences(engine) == []
    finally:
        engine.dispose()


def test_a_store_of_a_newer_version_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    open_database(url).dispose()
    with sqlite3.connect(tmp_path / "new.db") as db:
        db.execute("UPDATE ghostpanel_alembic_version SET version_num = '0099'")
    db.close()
    with pytest.raises(StoreConfigurationError,
                       match=r"revision '0099', which this version of GhostPanel does not "
                             r"know .* upgrade GhostPanel"):
        open_database(url)


def test_a_store_at_the_head_is_opened_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/head.db"
    open_database(url).dispose()
    code = ("import sys\n"
            "from ghostpanel_kernel.store import open_database\n"
            f"open_database({url!r}).dispose()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60, cwd=REPOSITORY)
    assert result.stdout.splitlines() == ["[]"]


@pytest.mark.parametrize("statements", [(), BEFORE_MIGRATIONS], ids=["new", "old"])
def test_processes_opening_a_store_at_once_all_succeed(tmp_path: Path,
                                                       statements: tuple[str, ...]) -> None:
    path = tmp_path / "store.db"
    if statements:
        _make(path, statements + ROWS)
    code = ("import sys\n"
            "from ghostpanel_kernel.store import open_database\n"
            "open_database(sys.argv[1]).dispose()\n")
    openers = [subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{path}"],
                                cwd=REPOSITORY, stderr=subprocess.PIPE, text=True)
               for _ in range(6)]
    failures = [(opener.wait(timeout=120), opener.communicate()[1]) for opener in openers]
    assert failures == [(0, "")] * 6
    engine = open_database(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD_REVISION and _differences(engine) == []
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT count(*) FROM ghostpanel_alembic_version")).scalar() == 1
            assert connection.execute(text(
                "SELECT count(*) FROM gateway_audit_head")).scalar() == 1
    finally:
        engine.dispose()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_sqlite_store_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "ghostpanel.db"
    engine = open_database(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:  # open: the -wal and -shm files exist now
            connection.execute(text("SELECT count(*) FROM environments"))
            modes = {p.name: _mode(p) for p in path.parent.iterdir()}
    finally:
        engine.dispose()
    assert modes == {"ghostpanel.db": 0o600, "ghostpanel.db-wal": 0o600,
                     "ghostpanel.db-shm": 0o600}


def test_the_registry_makes_an_old_store_s_wal_files_private(tmp_path: Path) -> None:
    from ghostpanel_kernel.environments import EnvironmentRegistry

    path = tmp_path / "ghostpanel.db"
    _make(path, BEFORE_MIGRATIONS)
    path.chmod(0o644)  # as an older version left it
    holder = sqlite3.connect(path)  # another process keeps the store open...
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("SELECT count(*) FROM environments").fetchall()
        assert _mode(tmp_path / "ghostpanel.db-wal") == 0o644  # ...so its WAL file stays
        registry = EnvironmentRegistry(f"sqlite:///{path}", detect=lambda: None)
        assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
            "ghostpanel.db": 0o600, "ghostpanel.db-wal": 0o600, "ghostpanel.db-shm": 0o600}
        registry.close()
    finally:
        holder.close()


def test_a_database_shared_with_another_alembic_application_is_left_to_it(
        tmp_path: Path) -> None:
    """JupyterHub's database, say: its ``alembic_version`` is not the store's."""
    path = tmp_path / "shared.db"
    _make(path, ("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
                 "INSERT INTO alembic_version VALUES ('4621fec11365')"))
    engine = open_database(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD_REVISION
        (other,) = _differences(engine)  # the other application's table, not ours
        assert other[0] == "remove_table" and other[1].name == "alembic_version"
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT version_num FROM alembic_version")).all() == [("4621fec11365",)]
    finally:
        engine.dispose()


def test_a_pooled_store_keeps_its_connections_for_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy.pool import NullPool, QueuePool

    url = f"sqlite:///{tmp_path}/pooled.db"
    plain = open_database(url)
    assert isinstance(plain.pool, NullPool)  # a command: nothing kept open
    plain.dispose()
    pooled = open_database(url, pooled=True)
    try:
        assert isinstance(pooled.pool, QueuePool)

        def count(_: int) -> int:
            with pooled.connect() as connection:
                return int(connection.execute(text("SELECT count(*) FROM settings")).scalar_one())

        with ThreadPoolExecutor(4) as threads:  # the gateway records from worker threads
            assert list(threads.map(count, range(20))) == [0] * 20
        assert 1 <= pooled.pool.checkedin() <= 5  # kept for the next transaction
    finally:
        pooled.dispose()
