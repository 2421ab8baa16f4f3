"""The registry database: where it lives, what it creates, what it stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import platformdirs
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ghostpanel_kernel import store
from ghostpanel_kernel.store import (
    EnvironmentRecord,
    SettingRecord,
    data_dir,
    database_url,
    open_database,
)


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
        assert sorted(tables.get_table_names()) == ["environments", "settings"]
        columns = {column["name"] for column in tables.get_columns("environments")}
        assert columns == {"name", "url", "tls_ca_cert", "tls_client_cert", "tls_client_key",
                           "tls_verify", "labels", "created_at"}
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
