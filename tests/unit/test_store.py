"""The registry database: where it lives, what it creates, what it stores."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import platformdirs
import pytest
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ghostpanel_kernel import store
from ghostpanel_kernel.store import (
    EnvironmentRecord,
    HealthRecord,
    SettingRecord,
    data_dir,
    database_url,
    open_database,
)
from ghostpanel_kernel.store._migrate import HEAD_REVISION, _run_alembic

#: Every table of a store at the newest revision (Alembic's version table included).
ALL_TABLES = sorted(["agent_tokens", "environment_health", "environments", "gateway_audit",
                     "gateway_audit_head", "gateway_role_bindings", "gateway_roles",
                     "ghostpanel_alembic_version", "gpu_allocations", "settings"])


def test_exports_are_sorted() -> None:
    assert store.__all__ == sorted(store.__all__)
    for name in store.__all__:
        assert hasattr(store, name)


def test_data_dir_follows_ghostpanel_home(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "gp"))
    assert data_dir() == tmp_path / "gp"


def test_relative_ghostpanel_home_is_made_absolute(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GHOSTPANEL_HOME", "rel/home")
    assert data_dir() == tmp_path / "rel" / "home"


def test_data_dir_defaults_to_the_platform_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GHOSTPANEL_HOME", raising=False)
    assert data_dir() == Path(platformdirs.user_data_dir("ghostpanel"))
    monkeypatch.setenv("GHOSTPANEL_HOME", "")  # empty counts as unset
    assert data_dir() == Path(platformdirs.user_data_dir("ghostpanel"))


def test_database_url_is_sqlite_in_the_data_dir(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    assert database_url() == f"sqlite:///{tmp_path}/ghostpanel.db"


def test_database_url_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path))
    monkeypatch.setenv("GHOSTPANEL_DATABASE_URL", "postgresql+psycopg://gp@db/ghostpanel")
    assert database_url() == "postgresql+psycopg://gp@db/ghostpanel"


def test_open_database_creates_the_directory_and_tables(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    home = tmp_path / "deep" / "home"
    monkeypatch.setenv("GHOSTPANEL_HOME", str(home))
    engine = open_database()
    try:
        assert (home / "ghostpanel.db").is_file()
        tables = inspect(engine)
        assert sorted(tables.get_table_names()) == ALL_TABLES
        columns = {column["name"] for column in tables.get_columns("environments")}
        assert columns == {"name", "url", "tls_ca_cert", "tls_client_cert", "tls_client_key",
                           "tls_verify", "tls_fingerprint", "token", "labels",
                           "created_at"}
        assert tables.get_pk_constraint("environments")["constrained_columns"] == ["name"]
    finally:
        engine.dispose()


def test_records_round_trip_through_a_reopened_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/registry.db"
    engine = open_database(url)
    with Session(engine) as session, session.begin():
        session.add(EnvironmentRecord(name="gpu-1", url="https://10.0.0.9:2376",
                                      tls_ca_cert="/certs/ca.pem", tls_verify=True,
                                      labels={"region": "eu-west", "tier": "gpu"}))
        session.add(EnvironmentRecord(name="plain", url="tcp://10.0.0.5:2375"))
        session.add(SettingRecord(key="default_environment", value="gpu-1"))
    engine.dispose()

    engine = open_database(url)  # create_all on an existing file keeps its rows
    try:
        with Session(engine) as session:
            gpu = session.get(EnvironmentRecord, "gpu-1")
            assert gpu is not None
            assert gpu.labels == {"region": "eu-west", "tier": "gpu"}
            assert (gpu.tls_ca_cert, gpu.tls_client_cert, gpu.tls_verify) == (
                "/certs/ca.pem", None, True)
            assert isinstance(gpu.created_at, datetime)
            plain = session.get(EnvironmentRecord, "plain")
            assert plain is not None
            assert plain.labels == {} and plain.tls_verify is None
            assert session.scalars(select(SettingRecord.value)).one() == "gpu-1"
    finally:
        engine.dispose()


def test_environment_names_are_unique() -> None:
    engine = open_database("sqlite://")
    try:
        with Session(engine) as session, session.begin():
            session.add(EnvironmentRecord(name="a", url="tcp://h:2375"))
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(EnvironmentRecord(name="a", url="tcp://other:2375"))
    finally:
        engine.dispose()


def test_in_memory_database_keeps_its_tables_across_sessions() -> None:
    engine = open_database("sqlite:///:memory:")
    try:
        with Session(engine) as session, session.begin():
            session.add(SettingRecord(key="k", value="v"))
        with Session(engine) as session:
            assert session.get(SettingRecord, "k") is not None
    finally:
        engine.dispose()


# -- bad settings: one line naming the setting, never SQLAlchemy's own error ---------


@pytest.mark.parametrize(("url", "expected"), [
    ("nonsense", "GHOSTPANEL_DATABASE_URL is not a database URL ('nonsense'): change or "
                 "unset GHOSTPANEL_DATABASE_URL"),
    ("nosuchdb://host/db", "GHOSTPANEL_DATABASE_URL names a database SQLAlchemy does not "
                           "know ('nosuchdb' in nosuchdb://host/db): change or unset"),
    ("postgresql+psycopg2://gp:secret@db/x",
     "GHOSTPANEL_DATABASE_URL (postgresql+psycopg2://gp:***@db/x) needs the Python module "
     "'psycopg2', which is not installed: install that database driver, or change"),
    ("sqlite:////etc/hostname/sub/g.db",
     "cannot create /etc/hostname/sub, the directory of the registry database (from "
     "GHOSTPANEL_DATABASE_URL): Not a directory: change or unset"),
    ("sqlite:////tmp", "cannot open the registry database sqlite:////tmp (from "
                       "GHOSTPANEL_DATABASE_URL): unable to open database file: change"),
    ("sqlite:///x.db?timeout=soon", "GHOSTPANEL_DATABASE_URL (sqlite:///x.db?timeout=soon) "
                                    "is not usable: could not convert string to float"),
])
def test_a_bad_database_url_says_which_variable_to_change(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, expected: str) -> None:
    monkeypatch.chdir(tmp_path)  # relative SQLite paths land here, never in the checkout
    monkeypatch.setenv("GHOSTPANEL_DATABASE_URL", url)
    with pytest.raises(store.StoreConfigurationError) as raised:
        open_database()
    assert list(tmp_path.iterdir()) == []  # a URL that cannot be used creates nothing
    message = str(raised.value)
    assert message.startswith(expected), message
    assert "\n" not in message and "secret" not in message
    assert raised.value.__cause__ is not None  # SQLAlchemy's error, for a debugger


def test_a_home_that_cannot_hold_the_database_names_ghostpanel_home(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GHOSTPANEL_HOME", str(blocker / "home"))
    with pytest.raises(store.StoreConfigurationError,
                       match=r"^cannot create .*a-file/home, the directory of the registry "
                             r"database \(from GHOSTPANEL_HOME\): Not a directory: set "
                             r"GHOSTPANEL_HOME \(or --home\) to a directory you can write"):
        open_database()


# -- concurrent creators and databases of the previous version -----------------------


def test_a_store_migrated_meanwhile_by_another_process_is_taken_as_it_is(
        tmp_path: Path) -> None:
    """Another opener holds the migration lock and migrates: this one waits, then sees
    the store at the head under the lock and leaves it alone (no second migration)."""
    url = f"sqlite:///{tmp_path}/race.db"
    rival = create_engine(url)
    opened: list[Engine] = []
    with rival.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # what bring_to_head takes
        opener = threading.Thread(target=lambda: opened.append(open_database(url)))
        opener.start()
        opener.join(0.5)
        assert opener.is_alive()  # waiting for the lock
        _run_alembic(connection, None)
        connection.commit()
    opener.join(30)
    rival.dispose()
    (engine,) = opened
    try:
        assert sorted(inspect(engine).get_table_names()) == ALL_TABLES
        with engine.connect() as connection:
            assert connection.exec_driver_sql(
                "SELECT version_num FROM ghostpanel_alembic_version").scalars().all() == [
                HEAD_REVISION]
    finally:
        engine.dispose()


def test_another_schema_error_is_not_retried_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as old:  # a store of the code before migrations
        old.execute("CREATE TABLE environments (name VARCHAR(128) NOT NULL PRIMARY KEY)")
    old.close()
    table = store.Base.metadata.tables["settings"]
    calls: list[int] = []

    def break_it(target: object, connection: Connection, **kw: object) -> None:
        calls.append(1)
        connection.exec_driver_sql("SELECT * FROM no_such_table")

    event.listen(table, "before_create", break_it)
    try:
        with pytest.raises(store.StoreConfigurationError, match="no such table"):
            open_database(f"sqlite:///{path}")
    finally:
        event.remove(table, "before_create", break_it)
    assert calls == [1]
    with sqlite3.connect(path) as old:  # the migration's transaction was rolled back
        assert [row[0] for row in old.execute("SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")] == ["environments"]
    old.close()


#: The schema as the version before environment health created it (SQLite's DDL).
PREVIOUS_SCHEMA = (
    "CREATE TABLE environments (name VARCHAR(128) NOT NULL, url TEXT NOT NULL, "
    "tls_ca_cert TEXT, tls_client_cert TEXT, tls_client_key TEXT, tls_verify BOOLEAN, "
    "labels JSON NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (name))",
    "CREATE TABLE settings (key VARCHAR(128) NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (key))",
    "INSERT INTO environments VALUES ('old', 'tcp://127.0.0.1:2375', NULL, NULL, NULL, "
    "NULL, '{\"region\": \"eu\"}', '2026-11-01 10:00:00.000000')",
    "INSERT INTO settings VALUES ('default_environment', 'old')",
)


def test_a_database_of_the_previous_version_gains_the_health_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        for statement in PREVIOUS_SCHEMA:
            old.execute(statement)
    old.close()
    engine = open_database(f"sqlite:///{path}")
    try:
        assert sorted(inspect(engine).get_table_names()) == ALL_TABLES
        with Session(engine) as session, session.begin():
            old_record = session.get(EnvironmentRecord, "old")
            assert old_record is not None and old_record.labels == {"region": "eu"}
            session.add(HealthRecord(name="old", url=old_record.url,
                                     failure="connection refused"))
        with Session(engine) as session:
            health = session.get(HealthRecord, "old")
            assert health is not None and health.failure == "connection refused"
            assert session.get(SettingRecord, "default_environment") is not None
    finally:
        engine.dispose()
