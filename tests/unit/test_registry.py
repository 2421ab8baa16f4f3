"""The environment registry: add, list, get, remove, default, resolve, select."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel import environments
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.engine import EngineTimeout, EnvironmentNotFound, TLSConfig
from ghostpanel_kernel.environments import (
    EnvironmentRegistry,
    EnvironmentSpec,
    fan_out,
    parse_labels,
)
from ghostpanel_kernel.store import StoreError
from tests.certificates import copy_client_files

DETECTED = EnvironmentSpec("local", "unix:///run/podman/podman.sock",
                           labels={"detected": "true"}, detected=True)


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A registry of this test's own."""
    monkeypatch.delenv("GHOSTPANEL_DATABASE_URL", raising=False)
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def open_registry() -> Iterator[Callable[..., EnvironmentRegistry]]:
    """Open registries on the test's database; ``local=`` is what detection finds."""
    opened: list[EnvironmentRegistry] = []

    def open_(local: EnvironmentSpec | None = None) -> EnvironmentRegistry:
        registry = EnvironmentRegistry(detect=lambda: local)
        opened.append(registry)
        return registry

    yield open_
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(open_registry: Callable[..., EnvironmentRegistry]) -> EnvironmentRegistry:
    """A registry where no local engine is detected."""
    return open_registry()


def test_exports_are_sorted() -> None:
    assert environments.__all__ == sorted(environments.__all__)


def test_add_returns_the_spec_and_get_finds_it(registry: EnvironmentRegistry) -> None:
    spec = registry.add("us-east-1", "tcp://10.0.0.5:2375", labels={"region": "us-east"})
    assert spec == EnvironmentSpec("us-east-1", "tcp://10.0.0.5:2375",
                                   labels={"region": "us-east"})
    found = registry.get("us-east-1")
    assert found == spec
    assert found.region == "us-east"
    assert not found.detected


def test_the_registry_is_stored_under_ghostpanel_home(registry: EnvironmentRegistry,
                                                      home: Path) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    assert (home / "ghostpanel.db").is_file()


def test_environments_persist_across_registry_instances(
        open_registry: Callable[..., EnvironmentRegistry]) -> None:
    first = open_registry()
    first.add("b-host", "tcp://10.0.0.6:2375", labels={"region": "eu"})
    first.add("a-host", "unix:///tmp/engine.sock")
    first.use("b-host")

    second = open_registry()
    assert [spec.name for spec in second.list()] == ["a-host", "b-host"]
    assert second.get("b-host").labels == {"region": "eu"}
    assert second.default_name() == "b-host"


def test_a_database_url_selects_another_registry(
        tmp_path: Path, registry: EnvironmentRegistry) -> None:
    registry.add("in-home", "tcp://10.0.0.5:2375")
    other = EnvironmentRegistry(f"sqlite:///{tmp_path}/other/ghostpanel.db",
                                detect=lambda: None)
    try:
        assert other.list() == []
        other.add("elsewhere", "tcp://10.0.0.7:2375")
        assert [spec.name for spec in registry.list()] == ["in-home"]
    finally:
        other.close()


def test_tls_paths_round_trip(open_registry: Callable[..., EnvironmentRegistry],
                              tmp_path: Path, test_pki: Path) -> None:
    ca, cert, key = copy_client_files(test_pki, tmp_path)
    tls = TLSConfig(ca_cert=str(ca), client_cert=str(cert), client_key=str(key), verify=False)
    open_registry().add("secure", "https://10.0.0.9:2376", tls=tls)
    assert open_registry().get("secure").tls == tls


def test_relative_tls_paths_are_stored_absolute(registry: EnvironmentRegistry,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path, test_pki: Path) -> None:
    copy_client_files(test_pki, tmp_path / "certs")
    monkeypatch.chdir(tmp_path)
    registry.add("secure", "https://10.0.0.9:2376", tls=TLSConfig(ca_cert="certs/ca.pem"))
    stored = registry.get("secure").tls
    assert stored == TLSConfig(ca_cert=str(tmp_path / "certs" / "ca.pem"))


@pytest.mark.parametrize(("content", "problem"), [
    ("", "is empty"),
    ("not a certificate\n", "does not hold a CA certificate in PEM form"),
    (None, "does not exist"),
], ids=["empty", "not-pem", "missing"])
def test_a_bad_ca_file_is_refused_at_add_naming_it(registry: EnvironmentRegistry,
                                                   tmp_path: Path, content: str | None,
                                                   problem: str) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    with pytest.raises(ValueError, match=f"TLS ca_cert file '{re.escape(str(ca))}' {problem}"):
        registry.add("secure", "https://10.0.0.9:2376", tls=TLSConfig(ca_cert=str(ca)))
    assert [spec.name for spec in registry.list()] == []


def test_no_tls_and_default_tls_stay_distinct(registry: EnvironmentRegistry) -> None:
    # A tcp:// URL with a TLSConfig speaks TLS; without one it does not.
    registry.add("plain", "tcp://10.0.0.5:2375")
    registry.add("tls", "tcp://10.0.0.6:2376", tls=TLSConfig())
    assert registry.get("plain").tls is None
    assert registry.get("tls").tls == TLSConfig()


def test_tls_on_a_unix_socket_is_refused(registry: EnvironmentRegistry) -> None:
    with pytest.raises(ValueError, match="TLS settings apply to tcp:// and https://"):
        registry.add("sock", "unix:///run/podman/podman.sock", tls=TLSConfig())


@pytest.mark.parametrize("name", ["", "-dash", ".dot", "has space", "slash/name", "é", "a" * 129])
def test_bad_names_are_refused(registry: EnvironmentRegistry, name: str) -> None:
    with pytest.raises(ValueError, match="invalid environment name"):
        registry.add(name, "tcp://10.0.0.5:2375")
    assert registry.list() == []


def test_all_is_reserved(registry: EnvironmentRegistry) -> None:
    with pytest.raises(ValueError, match="selects every environment"):
        registry.add("all", "tcp://10.0.0.5:2375")


def test_good_names_are_accepted(registry: EnvironmentRegistry) -> None:
    for name in ("a", "9lives", "us-east-1.gpu_2", "A" * 128):
        registry.add(name, "tcp://10.0.0.5:2375")
    assert len(registry.list()) == 4


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://host", "unsupported engine URL"),
    ("tcp://", "endpoint has no host"),
    ("tcp://host:99999", "invalid port"),
    ("unix:relative.sock", "absolute socket path"),
])
def test_bad_urls_are_refused_with_the_reason(registry: EnvironmentRegistry, url: str,
                                              reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        registry.add("x", url)
    with pytest.raises(EnvironmentNotFound):
        registry.get("x")


def test_duplicate_names_are_refused(registry: EnvironmentRegistry) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    with pytest.raises(ValueError,
                       match=r"^environment 'a' already exists; remove it first$"):
        registry.add("a", "tcp://10.0.0.6:2375")
    assert registry.get("a").url == "tcp://10.0.0.5:2375"


def test_bad_labels_are_refused(registry: EnvironmentRegistry) -> None:
    with pytest.raises(ValueError, match="labels must map"):
        registry.add("a", "tcp://10.0.0.5:2375", labels={"": "x"})


def test_unknown_names_list_the_known_ones(registry: EnvironmentRegistry) -> None:
    registry.add("b", "tcp://10.0.0.6:2375")
    registry.add("a", "tcp://10.0.0.5:2375")
    with pytest.raises(EnvironmentNotFound) as caught:
        registry.get("c")
    assert str(caught.value) == "no environment named 'c'; known: a, b"
    assert caught.value.name == "c"
    assert isinstance(caught.value, LookupError)


def test_remove(registry: EnvironmentRegistry) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    registry.add("b", "tcp://10.0.0.6:2375")
    registry.remove("a")
    assert [spec.name for spec in registry.list()] == ["b"]
    with pytest.raises(EnvironmentNotFound, match="no environment named 'a'; known: b"):
        registry.remove("a")
    registry.add("a", "tcp://10.0.0.7:2375")  # the name is free again
    assert registry.get("a").url == "tcp://10.0.0.7:2375"


def test_removing_the_default_clears_it(registry: EnvironmentRegistry) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    registry.add("b", "tcp://10.0.0.6:2375")
    registry.use("a")
    registry.remove("b")
    assert registry.default_name() == "a"
    registry.remove("a")
    assert registry.default_name() is None


def test_use_needs_an_existing_environment(registry: EnvironmentRegistry) -> None:
    assert registry.default_name() is None
    with pytest.raises(EnvironmentNotFound):
        registry.use("nowhere")
    assert registry.default_name() is None
    registry.add("a", "tcp://10.0.0.5:2375")
    registry.add("b", "tcp://10.0.0.6:2375")
    registry.use("a")
    registry.use("b")  # replaces the default
    assert registry.default_name() == "b"


def test_detected_local_is_listed_first(open_registry: Callable[..., EnvironmentRegistry]
                                        ) -> None:
    registry = open_registry(local=DETECTED)
    registry.add("zeta", "tcp://10.0.0.5:2375")
    registry.add("alpha", "tcp://10.0.0.6:2375")
    assert [spec.name for spec in registry.list()] == ["local", "alpha", "zeta"]
    assert registry.list()[0] == DETECTED
    assert registry.get("local") == DETECTED


def test_a_registered_local_overrides_detection(
        open_registry: Callable[..., EnvironmentRegistry]) -> None:
    registry = open_registry(local=DETECTED)
    registry.add("zeta", "tcp://10.0.0.5:2375")
    registry.add("local", "tcp://127.0.0.1:2375")
    listed = registry.list()
    assert [spec.name for spec in listed] == ["local", "zeta"]
    assert listed[0].url == "tcp://127.0.0.1:2375" and not listed[0].detected
    assert registry.get("local").url == "tcp://127.0.0.1:2375"
    assert registry.resolve(None).url == "tcp://127.0.0.1:2375"


def test_without_detection_local_is_unknown(registry: EnvironmentRegistry) -> None:
    assert registry.list() == []
    with pytest.raises(EnvironmentNotFound, match="no environment named 'local'"):
        registry.get("local")


def test_resolve_a_name(registry: EnvironmentRegistry) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    assert registry.resolve("a").url == "tcp://10.0.0.5:2375"
    with pytest.raises(EnvironmentNotFound, match="no environment named 'b'; known: a"):
        registry.resolve("b")


def test_resolve_none_prefers_the_default_then_local(
        open_registry: Callable[..., EnvironmentRegistry]) -> None:
    registry = open_registry(local=DETECTED)
    registry.add("a", "tcp://10.0.0.5:2375")
    assert registry.resolve(None) == DETECTED
    registry.use("a")
    assert registry.resolve(None).name == "a"
    registry.use("local")  # the detected engine can be the default too
    assert registry.resolve(None) == DETECTED


def test_resolve_none_without_anything_says_what_to_do(registry: EnvironmentRegistry) -> None:
    with pytest.raises(EnvironmentNotFound) as caught:
        registry.resolve(None)
    message = str(caught.value)
    assert message.startswith("no environment selected")
    assert "No default is set and no local engine answered" in message
    assert "ghostpanel env add NAME URL" in message
    assert "start an engine" in message

    registry.add("a", "tcp://10.0.0.5:2375")
    with pytest.raises(EnvironmentNotFound,
                       match=r"known: a\. No default is set.*Run `ghostpanel env add"):
        registry.resolve(None)


def test_select(open_registry: Callable[..., EnvironmentRegistry]) -> None:
    registry = open_registry(local=DETECTED)
    registry.add("b", "tcp://10.0.0.6:2375")
    registry.add("a", "tcp://10.0.0.5:2375")
    assert registry.select(None) == [DETECTED]
    assert registry.select([]) == [DETECTED]
    registry.use("b")
    assert [spec.name for spec in registry.select(None)] == ["b"]
    assert [spec.name for spec in registry.select(["b", "a"])] == ["b", "a"]
    assert [spec.name for spec in registry.select(["all"])] == ["local", "a", "b"]
    # Each environment once, in order of first mention.
    assert [spec.name for spec in registry.select(["b", "all", "a"])] == ["b", "local", "a"]
    with pytest.raises(EnvironmentNotFound, match="no environment named 'c'"):
        registry.select(["a", "c"])


def test_select_all_with_nothing_registered_says_what_to_do(
        registry: EnvironmentRegistry) -> None:
    with pytest.raises(EnvironmentNotFound, match="ghostpanel env add NAME URL"):
        registry.select(["all"])


def test_spec_labels_are_copied_and_region_read() -> None:
    labels = {"region": "us-east"}
    spec = EnvironmentSpec("a", "tcp://10.0.0.5:2375", labels=labels)
    labels["region"] = "changed"
    assert spec.region == "us-east"
    assert EnvironmentSpec("b", "tcp://10.0.0.5:2375").region is None
    # Hashable despite the dict: labels are left out of the hash.
    twin = EnvironmentSpec("a", "tcp://10.0.0.5:2375", labels={"region": "us-east"})
    assert len({spec, twin}) == 1


async def test_spec_open_makes_a_named_environment() -> None:
    tls = TLSConfig(verify=False)
    spec = EnvironmentSpec("gpu-1", "https://10.0.0.9:2376", tls=tls,
                           labels={"region": "eu"})
    env = spec.open(timeout=3.0, connect_timeout=1.0)
    try:
        assert (env.name, env.url, env.labels) == ("gpu-1", "https://10.0.0.9:2376",
                                                   {"region": "eu"})
        assert env.client.endpoint.tls == tls
        assert env.client.endpoint.scheme == "https"
    finally:
        await env.aclose()


def test_parse_labels() -> None:
    assert parse_labels(["region=us-east", "tier=gpu"]) == {"region": "us-east",
                                                             "tier": "gpu"}
    assert parse_labels(["note=a=b", "empty=", "k=1", "k=2"]) == {"note": "a=b", "empty": "",
                                                                   "k": "2"}
    assert parse_labels([]) == {}


@pytest.mark.parametrize("item", ["region", "=us-east", " =x"])
def test_parse_labels_refuses_malformed_items(item: str) -> None:
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        parse_labels([item])


def test_repr_hides_the_password() -> None:
    registry = EnvironmentRegistry("sqlite://", detect=lambda: None)
    try:
        assert repr(registry) == "<EnvironmentRegistry sqlite://>"
    finally:
        registry.close()


def test_a_database_failure_is_one_store_error(registry: EnvironmentRegistry,
                                               home: Path) -> None:
    registry.add("a", "tcp://10.0.0.5:2375")
    with sqlite3.connect(home / "ghostpanel.db") as db:
        db.execute("DROP TABLE environments")
    db.close()
    with pytest.raises(StoreError, match=r"^the registry database sqlite:///\S+/ghostpanel\.db "
                                         r"failed: no such table: environments$"):
        registry.list()


def test_a_database_failure_in_a_command_is_one_line(home: Path) -> None:
    """Not a traceback: exit 1 and the database's own reason."""
    assert CliRunner().invoke(cli, ["env", "add", "a", "tcp://10.0.0.5:2375"]).exit_code == 0
    with sqlite3.connect(home / "ghostpanel.db") as db:
        # A view where the table was: opening finds "settings", writing to it fails.
        db.execute("DROP TABLE settings")
        db.execute("CREATE VIEW settings AS SELECT 'k' AS key, 'v' AS value")
    db.close()
    result = CliRunner().invoke(cli, ["env", "use", "a"])
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: the registry database sqlite:///\S+ failed: cannot modify "
                        r"settings because it is a view\n", result.stderr), result.stderr


async def test_spec_timeouts_reach_the_environment_it_opens() -> None:
    """``with_timeouts``: the first-answer timeout fails a silent host, not fan-out's."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    url = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    spec = EnvironmentSpec("silent", url).with_timeouts(connect=1.0, response=0.2)
    assert spec == EnvironmentSpec("silent", url)  # timeouts are not part of identity
    try:
        [result] = await fan_out([spec], lambda env: env.ping(), timeout=60.0)
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()
    assert isinstance(result.error, EngineTimeout)
    assert "no result within 60 s" not in str(result.error)  # the client's, not fan-out's
