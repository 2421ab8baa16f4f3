"""The ``ghostpanel`` command on the session's two real Podman engines.

Each test has its own GhostPanel home (registry) with the engines registered as ``a``
and ``b``. Containers, volumes and networks are made with the podman CLI, not with the
code under test, and removed after each test whatever it did. ``logs -f`` and Ctrl-C
run ``python -m ghostpanel_kernel.cli`` as a real process; the rest uses ``CliRunner``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.cli import cli
from tests.certificates import copy_client_files
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
CONTAINER_KEYS = {"environment", "id", "name", "image", "state", "status", "ports", "labels"}


def unique(prefix: str = "gp-cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty GhostPanel home for this test."""
    return tmp_path / "home"


@pytest.fixture
def ghostpanel(home: Path) -> Callable[..., Result]:
    """Run ``ghostpanel ARGS...`` in-process with this test's home; returns the Result."""

    def run(*args: str) -> Result:
        # Given to CliRunner, the variables are restored afterwards: the session's
        # GHOSTPANEL_HOME stays as conftest set it.
        return CliRunner().invoke(
            cli, list(args), catch_exceptions=False,
            env={"GHOSTPANEL_HOME": str(home), "GHOSTPANEL_DATABASE_URL": None})

    return run


@pytest.fixture
def registered(ghostpanel: Callable[..., Result], podman_engine: PodmanService,
               podman_engine_b: PodmanService) -> Callable[..., Result]:
    """``ghostpanel`` with the two engines registered as ``a`` and ``b``."""
    for name, engine, region in (("a", podman_engine, "us-east"),
                                 ("b", podman_engine_b, "eu-west")):
        result = ghostpanel("env", "add", name, engine.url, "--label", f"region={region}")
        assert result.exit_code == 0, result.output
    return ghostpanel


class Made:
    """What a test made with the podman CLI on one engine; removed in teardown."""

    def __init__(self, engine: PodmanService) -> None:
        self.engine = engine
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.networks: list[str] = []

    def container(self, *command: str, run: bool = False, name: str | None = None,
                  options: tuple[str, ...] = ()) -> str:
        """Create (or with ``run``, start) a busybox container; return its name."""
        name = name or unique()
        self.containers.append(name)
        verb = ("run", "-d") if run else ("create",)
        self.engine.podman(*verb, "--name", name, *options, BUSYBOX_REFERENCE,
                           *(command or ("sleep", "300")))
        return name

    def volume(self) -> str:
        name = unique("gp-cli-vol")
        self.volumes.append(name)
        self.engine.podman("volume", "create", name)
        return name

    def network(self) -> str:
        name = unique("gp-cli-net")
        self.networks.append(name)
        self.engine.podman("network", "create", name)
        return name

    def state(self, name: str) -> str:
        return self.engine.podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()

    def exists(self, name: str) -> bool:
        return self.engine.podman("container", "exists", name, check=False).returncode == 0

    def remove_all(self) -> None:
        if self.containers:
            self.engine.podman("rm", "--force", "--ignore", "--time", "0", *self.containers)
        if self.networks:
            self.engine.podman("network", "rm", "--force", *self.networks, check=False)
        if self.volumes:
            self.engine.podman("volume", "rm", "--force", *self.volumes, check=False)
        left = [name for name in self.containers if self.exists(name)]
        assert not left, f"containers left behind: {left}"


@pytest.fixture
def made_a(podman_engine: PodmanService) -> Iterator[Made]:
    made = Made(podman_engine)
    yield made
    made.remove_all()


@pytest.fixture
def made_b(podman_engine_b: PodmanService) -> Iterator[Made]:
    made = Made(podman_engine_b)
    yield made
    made.remove_all()


def dead_url() -> str:
    """A socket path nothing listens on."""
    return f"unix:///tmp/gp-dead-{uuid.uuid4().hex[:8]}/podman.sock"


def ghostpanel_process(home: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m ghostpanel_kernel.cli ARGS`` as a process, with SIGINT at its default."""
    environment = {**os.environ, "GHOSTPANEL_HOME": str(home),
                   "PYTHONPATH": os.pathsep.join(filter(None, [
                       str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    environment.pop("GHOSTPANEL_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ghostpanel_kernel.cli", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment,
        # A process started from a shell's background job inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


# -- environments --------------------------------------------------------------------


def test_env_add_ls_use(registered: Callable[..., Result], podman_engine: PodmanService,
                        podman_engine_b: PodmanService) -> None:
    listed = registered("env", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    records = {record["name"]: record for record in json.loads(listed.stdout)}
    assert records["a"]["url"] == podman_engine.url
    assert records["a"]["labels"] == {"region": "us-east"}
    assert records["b"] == {"name": "b", "url": podman_engine_b.url,
                            "labels": {"region": "eu-west"}, "tls": None, "token": None,
                            "detected": False, "default": False, "health": None}
    used = registered("env", "use", "b")
    assert used.exit_code == 0
    assert used.stdout == "Default environment is now 'b'\n"
    records = {record["name"]: record for record in json.loads(
        registered("env", "ls", "--json").stdout)}
    assert records["b"]["default"] and not records["a"]["default"]
    table = registered("env", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "LABELS", "TLS", "TOKEN", "DEFAULT",
                                "HEALTH"]
    assert [line.split() for line in table if line.startswith("b ")] == [
        ["b", podman_engine_b.url, "region=eu-west", "*"]]
    duplicate = registered("env", "add", "a", podman_engine.url)
    assert duplicate.exit_code == 1
    assert duplicate.stderr == "Error: environment 'a' already exists; remove it first\n"


def test_default_environment_is_used_without_env(registered: Callable[..., Result],
                                                 made_b: Made) -> None:
    name = made_b.container()
    assert registered("env", "use", "b").exit_code == 0
    result = registered("ps", "-a", "--json")
    assert result.exit_code == 0, result.output
    assert {record["environment"] for record in json.loads(result.stdout)} == {"b"}
    assert name in {record["name"] for record in json.loads(result.stdout)}


# -- ps ------------------------------------------------------------------------------


def test_ps_shows_containers_of_both_engines_in_one_table(
        registered: Callable[..., Result], made_a: Made, made_b: Made) -> None:
    running = made_a.container(run=True)
    # Created only: this sandbox's engines cannot set up port forwarding to run it.
    published = made_a.container(options=("-p", "127.0.0.1:18099:8080"))
    created = made_b.container()
    result = registered("ps", "-a", "--env", "a", "--env", "b")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "ENVIRONMENT", "IMAGE", "STATE", "STATUS", "PORTS", "ID"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name[running][1:4] == ["a", BUSYBOX_REFERENCE, "running"]
    assert by_name[published][1:4] == ["a", BUSYBOX_REFERENCE, "created"]
    assert "127.0.0.1:18099->8080/tcp" in by_name[published]
    assert by_name[created][1:4] == ["b", BUSYBOX_REFERENCE, "created"]
    # Without -a only running containers are listed.
    only_running = registered("ps", "--env", "a", "--env", "b").stdout
    assert running in only_running and created not in only_running


def test_ps_json_and_filters(registered: Callable[..., Result], made_a: Made) -> None:
    labelled = made_a.container(options=("--label", "gp.test=cli"))
    other = made_a.container()
    result = registered("ps", "-a", "--json", "--env", "a", "--filter", "label=gp.test=cli")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert set(record) == CONTAINER_KEYS
    assert (record["environment"], record["name"], record["state"]) == ("a", labelled,
                                                                        "created")
    assert record["labels"]["gp.test"] == "cli"
    everything = json.loads(registered("ps", "-a", "--json", "--env", "a").stdout)
    assert {labelled, other} <= {record["name"] for record in everything}


def test_ps_with_a_dead_environment_warns_and_lists_the_rest(
        registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.container()
    url = dead_url()
    assert registered("env", "add", "dead", url).exit_code == 0
    result = registered("ps", "-a", "--env", "a", "--env", "dead", "--env", "b")
    assert result.exit_code == 0
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: environment 'dead' failed: ")
    assert url in warning
    assert name in result.stdout
    dead_only = registered("ps", "--env", "dead", "--env", "dead")
    assert dead_only.exit_code == 3
    assert dead_only.stderr.startswith("Error: ") and url in dead_only.stderr


def test_engine_down_is_one_error_line_naming_the_socket(
        registered: Callable[..., Result]) -> None:
    url = dead_url()
    assert registered("env", "add", "down", url).exit_code == 0
    for args in (["ps", "--env", "down"], ["logs", "--env", "down", "web"],
                 ["images", "--env", "down"]):
        result = registered(*args)
        assert result.exit_code == 3, args
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("Error: ")
        assert url.removeprefix("unix://") in result.stderr


def test_a_recently_failed_environment_is_skipped_until_retry(
        registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.container()
    url = dead_url()
    assert registered("env", "add", "dead", url).exit_code == 0
    first = registered("ps", "-a", "--env", "a", "--env", "dead")
    assert first.stderr.startswith("Warning: environment 'dead' failed: ")
    for command in ("ps", "images", "volumes", "networks", "version", "info"):
        result = registered(command, "--env", "a", "--env", "dead")
        assert result.exit_code == 0, (command, result.output)
        (warning,) = result.stderr.splitlines()
        assert re.fullmatch(
            r"Warning: environment 'dead' skipped: failing since \S+ \S+ UTC, last tried "
            rf"\d+ s ago: .*{re.escape(url)}.*; --retry tries it now", warning), warning
    assert name in registered("ps", "-a", "--env", "a", "--env", "dead").stdout
    retried = registered("ps", "-a", "--env", "a", "--env", "dead", "--retry")
    assert retried.stderr.startswith("Warning: environment 'dead' failed: ")
    assert name in retried.stdout
    health = {record["name"]: record["health"] for record in json.loads(
        registered("env", "ls", "--json").stdout)}
    assert health["a"]["failing"] is False and health["a"]["last_success"]
    assert health["dead"]["failing"] is True and url in health["dead"]["failure"]
    assert health["b"] is None  # never tried


def test_a_deleted_ca_file_fails_only_its_environment(
        registered: Callable[..., Result], made_a: Made, tmp_path: Path,
        test_pki: Path) -> None:
    name = made_a.container()
    ca, _, _ = copy_client_files(test_pki, tmp_path)
    added = registered("env", "add", "secure", "https://127.0.0.1:9", "--tls-ca", str(ca))
    assert added.exit_code == 0, added.output
    ca.unlink()
    result = registered("ps", "-a", "--env", "all")
    assert result.exit_code == 0, result.output
    assert name in result.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: environment 'secure' failed: ") and str(ca) in warning


def test_twenty_parallel_env_add_into_a_new_home_all_register(tmp_path: Path) -> None:
    """The schema-creation race: 20 processes open a registry that does not exist yet.

    Two rounds of 20 real processes (about 20 s of CPU each on 2 cores): the race itself
    is pinned deterministically by the unit test of ``create_schema``; this one shows
    the whole command holds under real contention.
    """
    for round_number in range(2):
        home = tmp_path / f"home-{round_number}"
        adders = [ghostpanel_process(home, "env", "add", f"e{i:02d}",
                                     f"tcp://127.0.0.1:{20000 + i}") for i in range(20)]
        outputs = [adder.communicate(timeout=120) for adder in adders]
        finished = [(adder.returncode, err) for adder, (_, err) in zip(adders, outputs,
                                                                       strict=True)]
        assert finished == [(0, "")] * 20, finished
        listing = ghostpanel_process(home, "env", "ls", "--json")
        out, err = listing.communicate(timeout=60)
        assert listing.returncode == 0, err
        # Registered ones only: `env ls` also shows a local engine it detects (one answers
        # on /run/podman/podman.sock after `make run`), which no process here added.
        assert sorted(record["name"] for record in json.loads(out)
                      if not record["detected"]) == [
            f"e{i:02d}" for i in range(20)], round_number


# -- logs ----------------------------------------------------------------------------


def test_logs_puts_stderr_on_stderr(registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.container("sh", "-c", "echo out1; echo err1 >&2; echo out2", run=True)
    made_a.engine.podman("wait", name)
    result = registered("logs", "--env", "a", name)
    assert result.exit_code == 0, result.output
    assert result.stdout == "out1\nout2\n"
    assert result.stderr == "err1\n"
    tail = registered("logs", "--env", "a", "--tail", "1", "-t", name)
    # The engine keeps the order of each stream, not between them: the last line may
    # be either; either way it is one line with its time.
    (line,) = tail.output.splitlines()
    assert line[:4].isdigit() and line.split(" ", 1)[1] in {"out2", "err1"}


def test_logs_follow_ends_when_the_container_stops(home: Path,
                                                   registered: Callable[..., Result],
                                                   made_a: Made) -> None:
    name = made_a.container("sh", "-c", "echo ready; while true; do echo tick; sleep 0.1; done",
                            run=True)
    follower = ghostpanel_process(home, "logs", "-f", "--env", "a", name)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "ready\n"
        assert follower.stdout.readline() == "tick\n"
        stopped = registered("stop", "--env", "a", "-t", "0", name)
        assert stopped.exit_code == 0, stopped.output
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert err == ""
    assert set(out.splitlines()) <= {"tick"}


def test_ctrl_c_exits_130_without_a_traceback(home: Path,
                                              registered: Callable[..., Result]) -> None:
    watcher = ghostpanel_process(home, "events", "--env", "a", "--env", "b")
    try:
        time.sleep(2)  # interpreter start, imports, both streams open
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 130
    assert err == ""


# -- start, stop, restart, rm, inspect -----------------------------------------------


def test_start_stop_restart_rm(registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.container()
    started = registered("start", "--env", "a", name)
    assert (started.exit_code, started.stdout) == (0, f"{name}\n")
    assert made_a.state(name) == "running"
    stopped = registered("stop", "--env", "a", "--time", "0", name)
    assert (stopped.exit_code, stopped.stdout) == (0, f"{name}\n")
    assert made_a.state(name) == "exited"
    restarted = registered("restart", "--env", "a", "-t", "0", name)
    assert restarted.exit_code == 0
    assert made_a.state(name) == "running"
    removed = registered("rm", "--env", "a", "--force", name)
    assert (removed.exit_code, removed.stdout) == (0, f"{name}\n"), removed.stderr
    assert not made_a.exists(name)
    again = registered("rm", "--env", "a", name)
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: [404] ") and again.stderr.count("\n") == 1


def test_several_containers_go_on_past_a_missing_one(registered: Callable[..., Result],
                                                     made_a: Made) -> None:
    first, second = made_a.container(), made_a.container()
    result = registered("start", "--env", "a", first, "gp-cli-missing", second)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [first, second]
    assert result.stderr.startswith("Error: [404] ") and result.stderr.count("\n") == 1
    assert made_a.state(first) == made_a.state(second) == "running"


def test_inspect(registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.container(options=("--label", "gp.test=inspect"))
    result = registered("inspect", "--env", "a", name)
    assert result.exit_code == 0, result.output
    (attrs,) = json.loads(result.stdout)
    assert attrs["Name"].lstrip("/") == name
    assert attrs["Config"]["Labels"]["gp.test"] == "inspect"


def test_inspect_of_an_unknown_container_is_a_404(registered: Callable[..., Result]) -> None:
    result = registered("inspect", "--env", "a", "gp-cli-nothing")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: [404] ")
    assert "gp-cli-nothing" in result.stderr and result.stderr.count("\n") == 1


def test_single_container_commands_want_one_environment(
        registered: Callable[..., Result]) -> None:
    result = registered("inspect", "--env", "a", "--env", "b", "web")
    assert result.exit_code == 2
    assert "acts on one environment" in result.stderr


# -- stats, events -------------------------------------------------------------------


def test_stats(registered: Callable[..., Result], made_a: Made, made_b: Made) -> None:
    in_a = made_a.container(run=True)
    in_b = made_b.container(run=True)
    table = registered("stats", "--env", "a", "--env", "b")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert re.split(" {2,}", header) == ["NAME", "ENVIRONMENT", "CPU %", "MEM USAGE / LIMIT",
                                         "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    names = {row.split()[0]: row.split()[1] for row in rows}
    assert names[in_a] == "a" and names[in_b] == "b"
    assert "iB / " in rows[0]  # MEM USAGE / LIMIT in binary units
    named = registered("stats", "--env", "a", "--json", in_a)
    (record,) = json.loads(named.stdout)
    assert record["name"] == in_a and record["environment"] == "a"
    assert record["memory_limit"] > 0 and record["pids"] >= 1


def test_events_since_until_show_a_create(registered: Callable[..., Result],
                                          made_a: Made) -> None:
    since = time.time() - 1
    name = made_a.container()
    until = time.time() + 0.5
    result = registered("events", "--env", "a", "--since", f"{since:.3f}",
                        "--until", f"{until:.3f}", "--filter", "type=container", "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"environment": "a", "type": "container", "action": "create", "name": name} \
        .items() <= next(e for e in events if e["name"] == name).items()
    text = registered("events", "--env", "a", "--since", f"{since:.3f}",
                      "--until", f"{until:.3f}")
    assert any(" a container create " in line and f"name={name}" in line
               for line in text.stdout.splitlines())


# -- images, pull, volumes, networks, version ----------------------------------------


def test_images_json(registered: Callable[..., Result]) -> None:
    result = registered("images", "--json", "--env", "a", "--env", "b")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    busybox = [r for r in records if BUSYBOX_REFERENCE in r["tags"]]
    assert [r["environment"] for r in busybox] == ["a", "b"]
    assert set(busybox[0]) == {"environment", "id", "tags", "created", "size", "labels"}
    assert busybox[0]["size"] > 0
    table = registered("images", "--env", "a").stdout.splitlines()
    assert any(line.split()[:2] == [BUSYBOX_REFERENCE, "a"] for line in table[1:])


def test_pull_of_a_missing_image_is_a_clean_error(registered: Callable[..., Result]) -> None:
    result = registered("pull", "--env", "a", "127.0.0.1:9/gp-cli/nothing:latest")
    assert result.exit_code == 1
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: ") and "127.0.0.1:9" in last
    assert "Traceback" not in result.stderr


def test_volumes(registered: Callable[..., Result], made_a: Made) -> None:
    name = made_a.volume()
    table = registered("volumes", "--env", "a", "--env", "b")
    assert table.exit_code == 0, table.output
    assert [line.split()[:3] for line in table.stdout.splitlines() if name in line] == [
        [name, "a", "local"]]
    records = json.loads(registered("volumes", "--json", "--env", "a").stdout)
    (record,) = [r for r in records if r["name"] == name]
    assert set(record) == {"environment", "name", "driver", "mountpoint", "labels"}


def test_networks(registered: Callable[..., Result], made_b: Made) -> None:
    name = made_b.network()
    table = registered("networks", "--env", "a", "--env", "b")
    assert table.exit_code == 0, table.output
    assert [line.split()[:2] for line in table.stdout.splitlines() if name in line] == [
        [name, "b"]]
    records = json.loads(registered("networks", "--json", "--env", "b").stdout)
    (record,) = [r for r in records if r["name"] == name]
    assert record["environment"] == "b" and record["subnets"]


def test_version_and_info(registered: Callable[..., Result]) -> None:
    version = registered("version", "--env", "a", "--env", "b", "--json")
    assert version.exit_code == 0, version.output
    assert [(r["environment"], r["kind"]) for r in json.loads(version.stdout)] == [
        ("a", "podman"), ("b", "podman")]
    info = registered("info", "--env", "a")
    assert info.exit_code == 0, info.output
    assert info.stdout.splitlines()[0].split()[:2] == ["ENVIRONMENT", "HOST"]
