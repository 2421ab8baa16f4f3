"""The agent's tokens: the SQLAlchemy store that writes them, and the SQLite check the
agent reads them with (which must agree with the store on every case)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ghostpanel_kernel.server._token_check import TokenChecker, TokenCheckFailed, sqlite_path
from ghostpanel_kernel.server._tokens import TokenError, TokenStore


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ghostpanel.db'}"


def test_store_and_check_agree(url: str) -> None:
    store = TokenStore(url)
    checker = TokenChecker(url)
    try:
        ci = store.create("ci")
        laptop = store.create("laptop")
        assert ci.startswith("gpa_") and ci != laptop
        for verify in (store.verify, checker.verify):
            assert verify(ci) == "ci" and verify(laptop) == "laptop"
            assert verify("gpa_unknown") is None and verify("") is None
        store.revoke("ci")
        for verify in (store.verify, checker.verify):
            assert verify(ci) is None and verify(laptop) == "laptop"
    finally:
        store.close()
        checker.close()


def test_only_the_hash_is_kept(url: str, tmp_path: Path) -> None:
    store = TokenStore(url)
    token = store.create("ci")
    store.close()
    assert token.encode() not in (tmp_path / "ghostpanel.db").read_bytes()


def test_names_in_use_and_revoked(url: str) -> None:
    store = TokenStore(url)
    try:
        first = store.create("ci")
        with pytest.raises(TokenError, match="exists"):
            store.create("ci")
        store.revoke("ci")
        with pytest.raises(TokenError, match="no active token"):
            store.revoke("ci")
        with pytest.raises(TokenError, match="no active token"):
            store.revoke("nobody")
        second = store.create("ci")  # a revoked name may be used again
        assert store.verify(first) is None and store.verify(second) == "ci"
        [info] = store.list()
        assert info.name == "ci" and not info.revoked and info.created_at.tzinfo is not None
        with pytest.raises(ValueError, match="1 to 128"):
            store.create("")
    finally:
        store.close()


def test_check_without_a_database_or_table_refuses_every_token(tmp_path: Path) -> None:
    missing = TokenChecker(f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.verify("gpa_x") is None
    assert not (tmp_path / "none.db").exists()  # the check never creates the store
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert TokenChecker(f"sqlite:///{empty}").verify("gpa_x") is None


def test_the_kept_connection_sees_a_store_made_later_and_a_replaced_one(
        tmp_path: Path) -> None:
    path = tmp_path / "ghostpanel.db"
    url = f"sqlite:///{path}"
    checker = TokenChecker(url)
    try:
        assert checker.verify("gpa_x") is None  # no file yet
        sqlite3.connect(path).close()
        assert checker.verify("gpa_x") is None  # a file without the table
        store = TokenStore(url)
        first = store.create("ci")
        store.close()
        assert checker.verify(first) == "ci"  # the table came after the connection
        path.unlink()  # the home is remade: a new file under the same name
        store = TokenStore(url)
        second = store.create("ci")
        store.close()
        assert checker.verify(second) == "ci" and checker.verify(first) is None
    finally:
        checker.close()


def test_an_unreadable_store_is_an_error_not_a_refusal(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TokenCheckFailed, match="cannot read the tokens"):
        TokenChecker(f"sqlite:///{broken}").verify("gpa_x")


def test_sqlite_paths() -> None:
    assert sqlite_path("sqlite:////a/b.db") == Path("/a/b.db")
    assert sqlite_path("sqlite:///a%20b.db?timeout=3") == Path("a b.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None


def test_a_non_sqlite_store_is_read_through_sqlalchemy() -> None:
    # An in-memory SQLite URL is not a file: the check goes through TokenStore.
    checker = TokenChecker("sqlite://")
    assert checker.verify("gpa_x") is None
    checker.close()


def test_the_agent_process_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    # SQLAlchemy is ~27 MB of the agent's 50 MB budget: the serving path must not
    # import it (the token commands do), nor Alembic (the store's migrations).
    code = (
        "import sys\n"
        "from ghostpanel_kernel.cli import cli\n"
        "from ghostpanel_kernel.cli._app import load_command\n"
        "load_command('._agent:agent')\n"
        "from ghostpanel_kernel.server._serve import hypercorn_config\n"
        "from ghostpanel_kernel.server._app import create_app\n"
        "from ghostpanel_kernel.server._settings import AgentSettings\n"
        f"settings = AgentSettings(engine_url='unix:///x.sock', listen='127.0.0.1:9', "
        f"home=__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "app = create_app(settings); hypercorn_config(settings)\n"
        "import asyncio; asyncio.run(app.startup())\n"
        "print(app.tokens.verify('gpa_x'))\n"
        "print(sorted(name for name in sys.modules\n"
        "             if name.startswith(('sqlalchemy', 'alembic'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.splitlines() == ["None", "[]"]


async def test_a_check_stays_on_the_loop_and_sees_a_revocation_at_once(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TokenStore(url)
    checker = TokenChecker(url)
    try:
        token = store.create("ci")

        async def no_thread(*args: object, **kwargs: object) -> object:
            raise AssertionError("a check of a store nobody writes went to a thread")

        monkeypatch.setattr("anyio.to_thread.run_sync", no_thread)
        assert await checker.check(token) == "ci"
        assert await checker.check("gpa_unknown") is None
        store.revoke("ci")  # another connection, as `token revoke` in another process
        assert await checker.check(token) is None
    finally:
        store.close()
        checker.close()


async def test_a_check_during_a_write_waits_in_a_thread_not_on_the_loop(
        url: str, tmp_path: Path) -> None:
    store = TokenStore(url)
    token = store.create("ci")
    store.close()
    # The store is in WAL mode, where readers never wait for a writer; a store on a file
    # system without shared memory keeps a rollback journal, where they do: that case.
    with contextlib.closing(sqlite3.connect(tmp_path / "ghostpanel.db")) as journal:
        assert journal.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    checker = TokenChecker(url)
    writer = sqlite3.connect(tmp_path / "ghostpanel.db", isolation_level=None)
    try:
        assert await checker.check(token) == "ci"  # the connection is open and idle
        writer.execute("BEGIN EXCLUSIVE")  # a `token create` in the middle of its write
        check = asyncio.ensure_future(checker.check(token))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the check waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not check.done()
        writer.execute("COMMIT")
        assert await asyncio.wait_for(check, 5) == "ci"
        # Back on the loop once the lock is gone (the thread's long timeout undone).
        assert await checker.check("gpa_unknown") is None
    finally:
        writer.close()
        checker.close()
