"""Environment health: failures remembered, recent ones skipped (with since when and why).

The engines are fakes served on real unix sockets (``serve_on_socket``), and a dead
environment is a socket path nobody listens on, so the code under test opens real
connections; the registry is a SQLite file of the test's own. No timing is asserted
here: what skipping saves is measured by ``bench/fanout_health.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.cli._app import CliContext
from ghostpanel_kernel.engine import (
    EngineConnectionError,
    EngineTimeout,
    Environment,
    NotFound,
    TLSConfig,
)
from ghostpanel_kernel.environments import (
    EnvironmentRegistry,
    EnvironmentSkipped,
    fan_out_with_health,
    health_outcome,
)
from tests.certificates import copy_client_files
from tests.unit.fake_engine import FakeEngine, empty, json_answer, serve_on_socket

SKIP_WARNING = re.compile(
    r"^Warning: environment 'dead' skipped: failing since "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC, last tried \d+ s ago: engine socket "
    r"\S+/gone\.sock does not exist \(engine at unix://\S+/gone\.sock\); "
    r"--retry tries it now$")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for unix socket paths."""
    path = Path(tempfile.mkdtemp(prefix="gp-health-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def registry(registry_url: str) -> Iterator[EnvironmentRegistry]:
    registry = EnvironmentRegistry(registry_url, detect=lambda: None)
    yield registry
    registry.close()


@pytest.fixture
def alive_url(short_dir: Path) -> Iterator[str]:
    """A fake Podman engine on a unix socket: one container ``web``, no images, no
    events (the stream ends at once)."""
    engine = FakeEngine({("GET", "/containers/json"): json_answer(
        [{"Id": "1" * 64, "Names": ["/web"], "State": "running", "Image": "busybox"}]),
        ("GET", "/images/json"): json_answer([]), ("GET", "/events"): empty(200)})
    with serve_on_socket(engine, short_dir / "alive.sock") as url:
        yield url


@pytest.fixture
def dead_url(short_dir: Path) -> str:
    return f"unix://{short_dir}/gone.sock"


async def names(env: Environment) -> list[str]:
    return [container.name for container in await env.containers.list(all=True)]


# -- what counts ---------------------------------------------------------------------


def test_health_outcome_says_up_down_or_nothing() -> None:
    assert health_outcome(None) is True
    assert health_outcome(NotFound(404, "no such container", method="GET",
                                   path="/v1.41/containers/x/json")) is True  # answered
    assert health_outcome(EngineTimeout("no answer", endpoint="tcp://h:1")) is False
    assert health_outcome(EngineConnectionError("refused", endpoint="tcp://h:1")) is False
    assert health_outcome(FileNotFoundError("ca.pem")) is False
    assert health_outcome(KeyError("Names")) is None  # a bug says nothing of the engine


# -- the library: fan_out_with_health ------------------------------------------------


async def test_a_failed_environment_is_skipped_then_retried(
        registry: EnvironmentRegistry, alive_url: str, dead_url: str) -> None:
    registry.add("alive", alive_url)
    registry.add("dead", dead_url)
    specs = registry.select(["alive", "dead"])

    first = await fan_out_with_health(registry, specs, names)
    assert first[0].value == ["web"]
    assert isinstance(first[1].error, EngineConnectionError)
    assert not isinstance(first[1].error, EnvironmentSkipped)
    health = registry.health()
    assert health["alive"].failing is False and health["alive"].last_success is not None
    dead = health["dead"]
    assert dead.failing and dead.url == dead_url
    assert dead.failure == str(first[1].error)
    assert dead.failing_since == dead.last_failure

    second = await fan_out_with_health(registry, specs, names)
    assert second[0].value == ["web"]
    skipped = second[1].error
    assert isinstance(skipped, EnvironmentSkipped) and second[1].elapsed == 0.0
    assert isinstance(skipped, EngineConnectionError)  # callers see "unreachable"
    assert dead.failing_since is not None
    assert str(skipped).startswith(
        f"skipped: failing since {dead.failing_since:%Y-%m-%d %H:%M:%S} UTC, last tried ")
    assert str(skipped).endswith(f": {dead.failure}")
    assert registry.health()["dead"] == dead  # a skip is not a new try

    third = await fan_out_with_health(registry, specs, names, retry=True)
    assert isinstance(third[1].error, EngineConnectionError)
    assert not isinstance(third[1].error, EnvironmentSkipped)
    again = registry.health()["dead"]
    assert again.failing_since == dead.failing_since  # still the same streak
    assert again.last_failure is not None and dead.last_failure is not None
    assert again.last_failure >= dead.last_failure


async def test_a_lone_environment_is_always_tried(registry: EnvironmentRegistry,
                                                  dead_url: str) -> None:
    registry.add("dead", dead_url)
    for _ in range(2):
        [result] = await fan_out_with_health(registry, registry.select(["dead"]), names)
        assert isinstance(result.error, EngineConnectionError)
        assert not isinstance(result.error, EnvironmentSkipped)


async def test_an_old_failure_or_another_url_is_tried_again(
        registry: EnvironmentRegistry, alive_url: str, dead_url: str) -> None:
    registry.add("alive", alive_url)
    registry.add("dead", dead_url)
    specs = registry.select(["alive", "dead"])
    long_ago = datetime.now(UTC) - timedelta(seconds=31)
    failure = EngineConnectionError("refused", endpoint=dead_url)
    registry.record_health([("dead", dead_url, failure)], now=long_ago)
    results = await fan_out_with_health(registry, specs, names)
    assert not isinstance(results[1].error, EnvironmentSkipped)  # 31 s: tried again

    # A failure recorded for another endpoint says nothing of this one.
    registry.record_health([("alive", "unix:///elsewhere.sock", failure)])
    results = await fan_out_with_health(registry, specs, names)
    assert results[0].value == ["web"]
    assert registry.health()["alive"].url == alive_url
    assert not registry.health()["alive"].failing


async def test_success_ends_the_failing_streak(registry: EnvironmentRegistry,
                                               alive_url: str, dead_url: str) -> None:
    registry.add("alive", alive_url)
    registry.add("other", dead_url)
    failure = EngineConnectionError("refused", endpoint=alive_url)
    registry.record_health([("alive", alive_url, failure)])
    assert registry.health()["alive"].failing
    results = await fan_out_with_health(registry, registry.select(["alive", "other"]),
                                        names, retry=True)
    assert results[0].value == ["web"]
    health = registry.health()["alive"]
    assert not health.failing and health.failing_since is None
    assert health.describe().startswith("ok ")


async def test_an_environment_that_cannot_be_opened_fails_alone(
        registry: EnvironmentRegistry, alive_url: str, tmp_path: Path, test_pki: Path) -> None:
    """A deleted CA file: that environment's error, the others still answer."""
    ca, _, _ = copy_client_files(test_pki, tmp_path)
    registry.add("alive", alive_url)
    registry.add("secure", "https://127.0.0.1:9", tls=TLSConfig(ca_cert=str(ca)))
    ca.unlink()
    results = await fan_out_with_health(registry, registry.select(["all"]), names)
    assert [result.environment for result in results] == ["alive", "secure"]
    assert results[0].value == ["web"]
    assert results[1].error is not None and "ca.pem" in str(results[1].error)


def test_removing_an_environment_forgets_its_health(registry: EnvironmentRegistry,
                                                    dead_url: str) -> None:
    registry.add("dead", dead_url)
    registry.record_health([("dead", dead_url, OSError("refused"))])
    assert "dead" in registry.health()
    registry.remove("dead")
    assert registry.health() == {}


def test_a_health_record_written_meanwhile_by_another_process_is_updated(
        registry: EnvironmentRegistry, registry_url: str) -> None:
    """Two registries (two processes) record the same new environment: no duplicate."""
    other = EnvironmentRegistry(registry_url, detect=lambda: None)
    try:
        other.record_health([("x", "tcp://h:1", None)])
        registry.record_health([("x", "tcp://h:1", OSError("refused"))])
    finally:
        other.close()
    health = registry.health()["x"]
    assert health.failing and health.last_success is not None


# -- the command: ps/images/version skip, --retry forces, env ls shows ---------------


def run(registry_url: str, *args: str) -> Result:
    def registry() -> EnvironmentRegistry:
        return EnvironmentRegistry(registry_url, detect=lambda: None)

    return CliRunner().invoke(cli, list(args), obj=CliContext(registry_factory=registry))


def test_fan_out_commands_skip_a_recent_failure_with_since_when_and_why(
        registry_url: str, alive_url: str, dead_url: str) -> None:
    assert run(registry_url, "env", "add", "alive", alive_url).exit_code == 0
    assert run(registry_url, "env", "add", "dead", dead_url).exit_code == 0

    first = run(registry_url, "ps", "--env", "all")
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith("Warning: environment 'dead' failed: engine socket ")
    assert "web" in first.stdout

    for args in (["ps", "--env", "all"], ["ps", "-a", "--env", "alive", "--env", "dead"],
                 ["images", "--env", "all"], ["version", "--env", "all"]):
        result = run(registry_url, *args)
        (warning,) = result.stderr.splitlines()
        assert SKIP_WARNING.match(warning), (args, warning)

    retried = run(registry_url, "ps", "--env", "all", "--retry")
    assert retried.exit_code == 0
    assert retried.stderr.startswith("Warning: environment 'dead' failed: ")
    assert "web" in retried.stdout

    alone = run(registry_url, "ps", "--env", "dead")  # asked for alone: tried, not skipped
    assert alone.exit_code == 3
    assert alone.stderr.startswith("Error: engine socket ")

    listed = {record["name"]: record for record in json.loads(
        run(registry_url, "env", "ls", "--json").stdout)}
    assert listed["alive"]["health"]["failing"] is False
    assert listed["alive"]["health"]["summary"].startswith("ok ")
    dead = listed["dead"]["health"]
    assert dead["failing"] is True and dead["failure"].startswith("engine socket ")
    assert dead["failing_since"] is not None and dead["last_success"] is None
    table = run(registry_url, "env", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "LABELS", "TLS", "TOKEN", "DEFAULT",
                                   "HEALTH"]
    dead_row = next(line for line in table if line.startswith("dead "))
    assert "failing since " in dead_row and "engine socket " in dead_row


def test_every_environment_skipped_is_unreachable(registry_url: str, short_dir: Path
                                                  ) -> None:
    for name in ("d1", "d2"):
        url = f"unix://{short_dir}/{name}.sock"
        assert run(registry_url, "env", "add", name, url).exit_code == 0
    assert run(registry_url, "ps", "--env", "all").exit_code == 3
    skipped = run(registry_url, "ps", "--env", "all")
    assert skipped.exit_code == 3
    assert skipped.stderr.splitlines()[-1] == "Error: all 2 environments failed"
    assert all(" skipped: failing since " in line
               for line in skipped.stderr.splitlines()[:-1])


def test_a_broken_environment_does_not_stop_ps_all(registry_url: str, alive_url: str,
                                                   tmp_path: Path, test_pki: Path) -> None:
    ca, _, _ = copy_client_files(test_pki, tmp_path)
    assert run(registry_url, "env", "add", "alive", alive_url).exit_code == 0
    added = run(registry_url, "env", "add", "secure", "https://127.0.0.1:9",
                "--tls-ca", str(ca))
    assert added.exit_code == 0, added.output
    ca.unlink()
    result = run(registry_url, "ps", "--env", "all")
    assert result.exit_code == 0, result.output
    assert "web" in result.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: environment 'secure' failed: ")
    assert str(ca) in warning


@pytest.mark.parametrize("command", [["stats"], ["events", "--until", "1"]], ids=" ".join)
def test_streaming_commands_go_on_without_an_environment_that_cannot_be_opened(
        registry_url: str, alive_url: str, tmp_path: Path, test_pki: Path,
        command: list[str]) -> None:
    ca, _, _ = copy_client_files(test_pki, tmp_path)
    assert run(registry_url, "env", "add", "alive", alive_url).exit_code == 0
    assert run(registry_url, "env", "add", "secure", "https://127.0.0.1:9",
               "--tls-ca", str(ca)).exit_code == 0
    ca.unlink()
    result = run(registry_url, *command, "--env", "all")
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: environment 'secure' failed: ")
    assert str(ca) in warning
    alone = run(registry_url, *command, "--env", "secure")
    assert alone.exit_code == 1
    assert alone.stderr.startswith("Error: environment 'secure': ") and str(ca) in alone.stderr


def test_health_that_cannot_be_written_is_a_warning_not_a_failure(
        registry_url: str, alive_url: str, dead_url: str) -> None:
    assert run(registry_url, "env", "add", "alive", alive_url).exit_code == 0
    assert run(registry_url, "env", "add", "dead", dead_url).exit_code == 0
    with sqlite3.connect(registry_url.removeprefix("sqlite:///")) as db:
        # Readable, not writable: what a registry on a read-only medium looks like.
        db.execute("DROP TABLE environment_health")
        db.execute("CREATE VIEW environment_health AS SELECT NULL AS name, NULL AS url, "
                   "NULL AS last_success, NULL AS last_failure, NULL AS failing_since, "
                   "NULL AS failure WHERE 0")
    db.close()
    result = run(registry_url, "ps", "--env", "all")
    assert result.exit_code == 0, result.output
    assert "web" in result.stdout
    health_warning, dead_warning = result.stderr.splitlines()
    assert health_warning.startswith(
        "Warning: environment health not recorded: the registry database sqlite:///")
    assert dead_warning.startswith("Warning: environment 'dead' failed: ")
