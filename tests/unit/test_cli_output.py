"""The ``ghostpanel`` command without an engine: formatting, JSON, errors and exit codes.

Commands run through click's ``CliRunner`` on environments whose engines are canned
answers (``httpx.MockTransport``): the test passes its own :class:`CliContext` as
``obj``, so nothing reads the registry or opens a socket. The ``env`` commands use a
registry on a temporary SQLite file with local detection turned off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.cli import CliContext, _resources, cli, main
from ghostpanel_kernel.cli._app import _COMMANDS, load_command, parse_time
from ghostpanel_kernel.cli._output import (
    CommandError,
    EngineUnreachable,
    command_error_for,
    human_age,
    human_size,
    one_line,
    render_table,
)
from ghostpanel_kernel.engine import (
    EngineConnectionError,
    Environment,
    EnvironmentNotFound,
    NotFound,
)
from ghostpanel_kernel.environments import EnvironmentRegistry
from tests.certificates import copy_client_files
from tests.unit.fake_engine import (
    FakeEngine,
    Route,
    frame,
    json_answer,
    json_lines,
    podman_pull_events,
    streamed,
)

ID_A = "1df8c92e931a39be3686e640992d0f2ff780642770beaff3ab0642575a8941a0"
ID_B = "38b7e90166cdac69a41aa4913cc3b9e32e043062470d4a66213b26327a4bd9e9"
IMAGE_ID = "sha256:c45e9df4c9cfe6bbb7b37dd5e910ce327da1e359747cb144980bad161a091205"

def list_entry(ident: str, name: str, *, state: str = "running",
               status: str = "Up 3 seconds", ports: list[dict[str, Any]] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``GET /containers/json`` entry as Podman 4.3.1 writes it."""
    return {"Id": ident, "Names": [f"/{name}"], "Image": "localhost/busybox:latest",
            "Name": "", "Config": None, "State": state, "Status": status,
            "Ports": ports or [], "Labels": labels or {}, "Created": 1795813307}


def inspect_answer(ident: str, name: str) -> dict[str, Any]:
    """A trimmed ``GET /containers/{id}/json`` answer."""
    return {"Id": ident, "Name": f"/{name}", "State": {"Status": "running"},
            "Config": {"Image": "localhost/busybox:latest", "Tty": False, "Labels": {}}}


def podman_not_found(request: httpx.Request) -> httpx.Response:
    """Podman's answer for a container it does not know (the last-but-one path part)."""
    name = request.url.path.split("/")[-2]
    return httpx.Response(404, json={"message": f'no container with name or ID "{name}" found'})


def podman_fake(routes: dict[tuple[str, str], Route]) -> FakeEngine:
    """The unit tests' fake Podman 4.3.1, answering unknown containers as Podman does."""
    return FakeEngine(routes, answer=podman_not_found)


def refuse(request: httpx.Request) -> httpx.Response:
    """An engine whose socket refuses connections."""
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


class Engines:
    """Named fake engines, opened the way ``--env`` selects them (default: the first)."""

    def __init__(self, **engines: Route) -> None:
        self.engines = engines
        self.opened: list[Environment] = []

    def open(self, names: Sequence[str]) -> list[Environment]:
        if "all" in names:
            chosen = list(self.engines)
        else:
            chosen = list(dict.fromkeys(names)) or list(self.engines)[:1]
        for name in chosen:
            if name not in self.engines:
                raise EnvironmentNotFound(name, known=list(self.engines))
        environments = [Environment(f"unix:///tmp/gp-unit/{name}.sock", name=name,
                                    transport=httpx.MockTransport(self.engines[name]))
                        for name in chosen]
        self.opened += environments
        return environments


def invoke(engines: Engines, *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), obj=CliContext(open_environments=engines.open))
    assert all(environment.client.closed for environment in engines.opened)
    return result


# -- formatting ----------------------------------------------------------------------


def test_table_columns_are_aligned_three_spaces_apart() -> None:
    text = render_table(["NAME", "ENVIRONMENT", "ID"],
                        [["web", "us-east-1", "1df8c92e931a"], ["db-primary", "b", ""]])
    assert text.splitlines() == [
        "NAME         ENVIRONMENT   ID",
        "web          us-east-1     1df8c92e931a",
        "db-primary   b",
    ]


def test_table_with_no_rows_is_its_header_and_a_short_row_is_refused() -> None:
    assert render_table(["NAME", "STATE"], []) == "NAME   STATE"
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        render_table(["NAME", "STATE"], [["web"]])


@pytest.mark.parametrize(("size", "binary", "text"), [
    (0, False, "0B"), (999, False, "999B"), (2131015, False, "2.131MB"),
    (1000**3 * 12.5, False, "12.5GB"), (258048, True, "252KiB"),
    (25276510208, True, "23.54GiB"), (1024, True, "1KiB"),
])
def test_human_size(size: float, binary: bool, text: str) -> None:
    assert human_size(size, binary=binary) == text


# docker's own words (go-units HumanDuration), as `docker images` prints CREATED.
@pytest.mark.parametrize(("elapsed", "text"), [
    (0.2, "Less than a second ago"), (1, "1 second ago"), (59, "59 seconds ago"),
    (60, "About a minute ago"), (150, "2 minutes ago"), (7200, "2 hours ago"),
    (86400 * 8, "8 days ago"), (86400 * 20, "2 weeks ago"), (86400 * 400, "13 months ago"),
    (86400 * 800, "2 years ago"), (-5, "Less than a second ago"),
])
def test_human_age(elapsed: float, text: str) -> None:
    assert human_age(1_000_000_000 - elapsed, now=1_000_000_000) == text


@pytest.mark.parametrize(("value", "seconds"), [
    ("90s", 910.0), ("10m", 400.0), ("1h30m", 1000.0 - 5400), ("1764237600", 1764237600.0),
    ("1764237600.25", 1764237600.25), ("2026-11-27T10:00:00Z", 1795773600.0),
    ("2026-11-27T10:00:00.123456789+00:00", 1795773600.123456),
])
def test_parse_time(value: str, seconds: float) -> None:
    assert parse_time(value, now=1000.0) == pytest.approx(seconds)


def test_parse_time_refuses_what_is_not_a_time() -> None:
    with pytest.raises(ValueError, match="'yesterday' is not a time"):
        parse_time("yesterday")


# -- errors --------------------------------------------------------------------------


def test_errors_know_their_exit_codes_and_fit_on_one_line() -> None:
    not_found = NotFound(404, "no such container", method="GET", path="/v1.41/containers/x/json")
    unreachable = EngineConnectionError("engine socket /tmp/x.sock does not exist",
                                        endpoint="unix:///tmp/x.sock")
    assert command_error_for(not_found).exit_code == 1
    assert command_error_for(ValueError("bad")).exit_code == 1
    assert isinstance(command_error_for(unreachable), EngineUnreachable)
    assert command_error_for(unreachable).exit_code == 3
    assert CommandError("first line\n  second line\n").format_message() == \
        "first line second line"
    assert one_line("") == ""


def test_every_command_loads_and_documents_itself_and_its_options() -> None:
    missing: list[str] = []

    def check(command: click.Command, path: str) -> None:
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[-1]}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                check(sub, f"{path} {name}")

    check(cli, "ghostpanel")
    for name, location in _COMMANDS.items():
        check(load_command(location), f"ghostpanel {name}")
    assert missing == []
    assert callable(main)


def test_help_lists_every_command_and_the_exit_statuses() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in _COMMANDS:
        assert f"\n  {name} " in result.output
    assert "3 an engine could not be reached" in result.output


# -- ps ------------------------------------------------------------------------------


def two_engines() -> Engines:
    a = podman_fake({("GET", "/containers/json"): json_answer([
        list_entry(ID_A, "web", ports=[{"IP": "127.0.0.1", "PrivatePort": 8080,
                                        "PublicPort": 18080, "Type": "tcp"}],
                   labels={"app": "web"})])})
    b = podman_fake({("GET", "/containers/json"): json_answer([
        list_entry(ID_B, "db", state="exited", status="Exited (0) 5 minutes ago")])})
    return Engines(a=a, b=b)


def test_ps_prints_containers_of_several_environments_in_one_table() -> None:
    result = invoke(two_engines(), "ps", "-a", "--env", "a", "--env", "b")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "NAME   ENVIRONMENT   IMAGE                      STATE     STATUS"
        "                     PORTS                       ID",
        "web    a             localhost/busybox:latest   running   Up 3 seconds"
        "               127.0.0.1:18080->8080/tcp   1df8c92e931a",
        "db     b             localhost/busybox:latest   exited    Exited (0) 5 minutes ago"
        "                               38b7e90166cd",
    ]
    assert result.stderr == ""


def test_ps_passes_all_and_filters_to_the_engine() -> None:
    engines = two_engines()
    result = invoke(engines, "ps", "--all", "--filter", "label=app=web",
                    "--filter", "status=running", "--filter", "label=tier=1")
    assert result.exit_code == 0, result.output
    (request,) = engines.engines["a"].requests  # type: ignore[attr-defined]
    assert request.url.params["all"] == "true"
    assert json.loads(request.url.params["filters"]) == {
        "label": ["app=web", "tier=1"], "status": ["running"]}


def test_ps_json_has_stable_keys() -> None:
    result = invoke(two_engines(), "ps", "--json", "--env", "all")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [sorted(record) for record in records] == [sorted(
        ["environment", "id", "name", "image", "state", "status", "ports", "labels"])] * 2
    assert records[0] == {"environment": "a", "id": ID_A, "name": "web",
                          "image": "localhost/busybox:latest", "state": "running",
                          "status": "Up 3 seconds", "ports": ["127.0.0.1:18080->8080/tcp"],
                          "labels": {"app": "web"}}


def test_ps_warns_of_a_dead_environment_and_lists_the_others() -> None:
    engines = two_engines()
    engines.engines["dead"] = refuse
    result = invoke(engines, "ps", "--env", "dead", "--env", "b", "-a")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Warning: environment 'dead' failed: [Errno 111] Connection refused "
        "(engine at unix:///tmp/gp-unit/dead.sock)"]
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "db"]


def test_ps_fails_with_exit_3_when_no_environment_answers() -> None:
    engines = Engines(x=refuse, y=refuse)
    result = invoke(engines, "ps", "--env", "x", "--env", "y")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "Error: all 2 environments failed"
    assert len(result.stderr.splitlines()) == 3


def test_one_unreachable_environment_is_one_error_line_naming_the_socket() -> None:
    result = invoke(Engines(down=refuse), "ps")
    assert result.exit_code == 3
    assert result.stderr == ("Error: [Errno 111] Connection refused "
                             "(engine at unix:///tmp/gp-unit/down.sock)\n")


def test_unknown_environment_is_an_error() -> None:
    result = invoke(two_engines(), "ps", "--env", "nowhere")
    assert result.exit_code == 1
    assert result.stderr == "Error: no environment named 'nowhere'; known: a, b\n"


# -- single-container commands -------------------------------------------------------


def test_inspect_of_an_unknown_container_is_a_404_on_one_line() -> None:
    result = invoke(two_engines(), "inspect", "nope")
    assert result.exit_code == 1
    assert result.stderr == ("Error: [404] no container with name or ID \"nope\" found "
                             "(GET /v1.41/containers/nope/json)\n")
    assert "Traceback" not in result.output


def test_inspect_prints_the_engine_json_as_a_list() -> None:
    engines = Engines(a=podman_fake({
        ("GET", "/containers/web/json"): json_answer(inspect_answer(ID_A, "web"))}))
    result = invoke(engines, "inspect", "web")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [inspect_answer(ID_A, "web")]


def test_a_single_container_command_refuses_several_environments() -> None:
    result = invoke(two_engines(), "logs", "--env", "a", "--env", "b", "web")
    assert result.exit_code == 2
    assert "acts on one environment" in result.stderr


def test_logs_sends_stderr_lines_to_stderr_and_passes_its_options() -> None:
    engine = podman_fake({
        ("GET", "/containers/web/json"): json_answer(inspect_answer(ID_A, "web")),
        ("GET", f"/containers/{ID_A}/logs"): streamed(
            [frame(1, b"2026-11-27T21:07:27Z out1\n") + frame(2, b"2026-11-27T21:07:27Z err1\n")
             + frame(1, b"2026-11-27T21:07:28Z out2\n2026-11-27T21:07:28Z out3\n")],
            "application/vnd.docker.multiplexed-stream"),
    })
    result = invoke(Engines(a=engine), "logs", "web", "--tail", "3", "--since", "1764237600",
                    "-t")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("2026-11-27T21:07:27Z out1\n2026-11-27T21:07:28Z out2\n"
                             "2026-11-27T21:07:28Z out3\n")
    assert result.stderr == "2026-11-27T21:07:27Z err1\n"
    params = engine.requests[-1].url.params
    assert (params["tail"], params["since"], params["timestamps"], params["follow"]) == \
        ("3", "1764237600.000000000", "true", "false")


def test_logs_tail_must_be_a_count() -> None:
    result = invoke(two_engines(), "logs", "web", "--tail", "-1")
    assert result.exit_code == 2
    assert "neither a line count nor 'all'" in result.stderr


def test_stop_reports_each_container_and_fails_if_one_was_refused() -> None:
    engine = podman_fake({
        ("GET", "/containers/web/json"): json_answer(inspect_answer(ID_A, "web")),
        ("POST", f"/containers/{ID_A}/stop"): lambda request: httpx.Response(204),
    })
    result = invoke(Engines(a=engine), "stop", "-t", "0", "web", "ghost")
    assert result.exit_code == 1
    assert result.stdout == "web\n"
    assert result.stderr == ("Error: [404] no container with name or ID \"ghost\" found "
                             "(GET /v1.41/containers/ghost/json)\n")
    assert engine.requests[1].url.params["t"] == "0"


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    result = invoke(Engines(a=interrupted), "ps")
    assert result.exit_code == 130
    assert result.output == ""


# -- stats, events, pull -------------------------------------------------------------

STATS_SAMPLE = {
    "read": "2026-11-27T21:07:40.725945316Z", "pids_stats": {"current": 3},
    "memory_stats": {"usage": 2 * 1024**2, "limit": 8 * 1024**3, "stats": {}},
    "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 2_500_000}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096},
                                                   {"op": "write", "value": 0}]},
    "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000}, "system_cpu_usage": 20_000_000_000,
                  "online_cpus": 2},
    "precpu_stats": {"cpu_usage": {"total_usage": 300_000_000},
                     "system_cpu_usage": 19_000_000_000},
}


def stats_engine() -> FakeEngine:
    return podman_fake({
        ("GET", "/containers/json"): json_answer([list_entry(ID_A, "web")]),
        ("GET", f"/containers/{ID_A}/stats"): json_answer(STATS_SAMPLE),
    })


def test_stats_prints_one_sample_per_container_in_human_sizes() -> None:
    result = invoke(Engines(a=stats_engine()), "stats")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "NAME   ENVIRONMENT   CPU %    MEM USAGE / LIMIT   MEM %   NET I/O         "
        "BLOCK I/O      PIDS",
        "web    a             20.00%   2MiB / 8GiB         0.02%   1.5kB / 2.5MB   "
        "4.096kB / 0B   3",
    ]


def test_stats_stream_redraws_until_ctrl_c() -> None:
    engine = stats_engine()
    listing = engine.routes[("GET", "/containers/json")]
    rounds = 0

    def list_twice(request: httpx.Request) -> httpx.Response:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            raise KeyboardInterrupt
        return listing(request)

    engine.routes[("GET", "/containers/json")] = list_twice
    result = invoke(Engines(a=engine), "stats", "--stream", "--interval", "0.1")
    assert result.exit_code == 130
    first, second = result.stdout.split("\n\n")
    assert first.splitlines()[1].startswith("web ") and first + "\n" == second
    assert result.stderr == ""


def test_stats_json_has_bytes_and_percentages() -> None:
    result = invoke(Engines(a=stats_engine()), "stats", "--json")
    (record,) = json.loads(result.stdout)
    assert record["environment"] == "a" and record["name"] == "web"
    assert record["memory_usage"] == 2 * 1024**2 and record["pids"] == 3
    assert record["cpu_percent"] == pytest.approx(20.0)


EVENT = {"status": "create", "id": ID_A, "from": "localhost/busybox:latest",
         "Type": "container", "Action": "create",
         "Actor": {"ID": ID_A, "Attributes": {"image": "localhost/busybox:latest",
                                              "name": "web"}},
         "scope": "local", "time": 1795813148, "timeNano": 1795813148780367217}


def test_events_print_one_line_each_and_json_lines() -> None:
    engines = Engines(a=podman_fake({
        ("GET", "/events"): streamed([json_lines(EVENT)], "application/json")}))
    result = invoke(engines, "events", "--since", "1795813000", "--until", "1795813200")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("2026-11-27T20:59:08.780367+00:00 a container create "
                             "1df8c92e931a (image=localhost/busybox:latest, name=web)\n")
    result = invoke(engines, "events", "--json", "--since", "1795813000",
                    "--until", "1795813200")
    assert json.loads(result.stdout) == {
        "environment": "a", "time": pytest.approx(1795813148.780367), "type": "container",
        "action": "create", "id": ID_A, "name": "web",
        "attributes": {"image": "localhost/busybox:latest", "name": "web"}}


def test_events_after_until_are_dropped() -> None:
    engines = Engines(a=podman_fake({
        ("GET", "/events"): streamed([json_lines(EVENT)], "application/json")}))
    result = invoke(engines, "events", "--since", "1795813000", "--until", "1795813100")
    assert result.exit_code == 0
    assert result.stdout == ""


PULL_LINES = [
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "id": "a1"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1"},
    {"status": "Pull complete", "progressDetail": {}, "id": "a1"},
]


def pull_engine(lines: list[dict[str, Any]]) -> FakeEngine:
    return podman_fake({
        ("POST", "/images/create"): streamed([json_lines(*lines)], "application/json"),
        ("GET", "/images/busybox:latest/json"): json_answer(
            {"Id": IMAGE_ID, "RepoTags": ["docker.io/library/busybox:latest"]}),
    })


def test_pull_prints_the_image_id_and_its_progress_on_stderr() -> None:
    engine = pull_engine(PULL_LINES)
    result = invoke(Engines(a=engine), "pull", "busybox:latest")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{IMAGE_ID}\n"
    assert "Pulling busybox:latest" in result.stderr
    assert engine.requests[0].url.params["fromImage"] == "busybox"


def test_pull_json_prints_events_then_the_id() -> None:
    result = invoke(Engines(a=pull_engine(PULL_LINES)), "pull", "--json", "busybox:latest")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[1] == {"status": "Downloading", "layer": "a1", "current": 500, "total": 1000}
    assert lines[-1] == {"id": IMAGE_ID}


def test_a_failed_pull_is_one_error_line() -> None:
    failing = [PULL_LINES[0], {"error": "manifest unknown\nsee the registry",
                               "errorDetail": {"message": "manifest unknown"}}]
    result = invoke(Engines(a=pull_engine(failing)), "pull", "busybox:latest")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: pull failed: manifest unknown see the registry (POST /v1.41/images/create)")


# docker pull of two layers (1000 and 2000 bytes): extraction restarts each layer's count
# at 0 (the bar used to fall from 1500 to 532 of 3000 there).
DOCKER_PULL_LINES = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "b2"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "id": "a1"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 2000}, "id": "b2"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1"},
    {"status": "Extracting", "progressDetail": {"current": 32, "total": 1000}, "id": "a1"},
    {"status": "Extracting", "progressDetail": {"current": 1000, "total": 1000}, "id": "a1"},
    {"status": "Pull complete", "progressDetail": {}, "id": "a1"},
    {"status": "Downloading", "progressDetail": {"current": 2000, "total": 2000}, "id": "b2"},
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "b2"},
    {"status": "Download complete", "progressDetail": {}, "id": "b2"},
    {"status": "Extracting", "progressDetail": {"current": 100, "total": 2000}, "id": "b2"},
    {"status": "Digest: sha256:" + "cd" * 32},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]

PODMAN_PULL_LINES = podman_pull_events(IMAGE_ID[7:19])


@pytest.mark.parametrize(("lines", "size"), [(DOCKER_PULL_LINES, 3000),
                                             (PODMAN_PULL_LINES, 1400)],
                         ids=["docker", "podman"])
def test_pull_bar_never_moves_backward_and_ends_full(
        monkeypatch: pytest.MonkeyPatch, lines: list[dict[str, Any]], size: int) -> None:
    seen: list[tuple[int, int | None]] = []
    show = _resources._show

    def recording(bar: Any, progress: Any) -> None:
        show(bar, progress)
        seen.append((bar.pos, bar.length))

    monkeypatch.setattr(_resources, "_show", recording)
    result = invoke(Engines(a=pull_engine(lines)), "pull", "busybox:latest")
    assert result.exit_code == 0, result.output
    positions = [pos for pos, _ in seen]
    assert positions == sorted(positions), seen
    assert any(0 < pos < size for pos in positions), seen  # it moved through the pull
    assert seen[-1] == (size, size)


# -- images, volumes, networks, version ----------------------------------------------


def resource_engine() -> FakeEngine:
    return podman_fake({
        ("GET", "/images/json"): json_answer([
            {"Id": IMAGE_ID, "RepoTags": ["localhost/busybox:latest", "localhost/bb:1"],
             "Created": 1795812561, "Size": 2131015, "Labels": None}]),
        ("GET", "/volumes"): json_answer({"Volumes": [
            {"Name": "data", "Driver": "local", "Mountpoint": "/var/lib/data",
             "Labels": {"app": "web"}}]}),
        ("GET", "/networks"): json_answer([
            {"Name": "bridge", "Id": "2f259bab93aa" + "0" * 52, "Driver": "bridge",
             "IPAM": {"Config": [{"Subnet": "10.88.0.0/16"}]}, "Labels": {}}]),
    })


def test_images_table_has_a_row_per_tag_and_json_stable_keys() -> None:
    engines = Engines(a=resource_engine())
    table = invoke(engines, "images").stdout.splitlines()
    assert table[0].split() == ["IMAGE", "ENVIRONMENT", "ID", "CREATED", "SIZE"]
    assert [row.split()[0] for row in table[1:]] == ["localhost/busybox:latest",
                                                     "localhost/bb:1"]
    assert table[1].endswith("2.131MB")
    (record,) = json.loads(invoke(engines, "images", "--json").stdout)
    assert record == {"environment": "a", "id": IMAGE_ID,
                      "tags": ["localhost/busybox:latest", "localhost/bb:1"],
                      "created": 1795812561, "size": 2131015, "labels": {}}


def test_volumes_and_networks_tables_and_json() -> None:
    engines = Engines(a=resource_engine())
    assert invoke(engines, "volumes").stdout.splitlines() == [
        "NAME   ENVIRONMENT   DRIVER   MOUNTPOINT",
        "data   a             local    /var/lib/data"]
    assert json.loads(invoke(engines, "volumes", "--json").stdout) == [
        {"environment": "a", "name": "data", "driver": "local",
         "mountpoint": "/var/lib/data", "labels": {"app": "web"}}]
    assert invoke(engines, "networks").stdout.splitlines() == [
        "NAME     ENVIRONMENT   ID             DRIVER   SUBNETS",
        "bridge   a             2f259bab93aa   bridge   10.88.0.0/16"]
    (network,) = json.loads(invoke(engines, "networks", "--json").stdout)
    assert sorted(network) == ["driver", "environment", "id", "labels", "name", "subnets"]


def test_version_shows_each_environment() -> None:
    result = invoke(two_engines(), "version", "--env", "all")
    assert result.exit_code == 0, result.output
    assert [line.split()[:4] for line in result.stdout.splitlines()[1:]] == [
        ["a", "podman", "4.3.1", "1.41"], ["b", "podman", "4.3.1", "1.41"]]


# -- env -----------------------------------------------------------------------------


@pytest.fixture
def registry_context(tmp_path: Path) -> Iterator[CliContext]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"

    def registry() -> EnvironmentRegistry:
        return EnvironmentRegistry(url, detect=lambda: None)

    yield CliContext(registry_factory=registry)


def run_env(context: CliContext, *args: str) -> Result:
    return CliRunner().invoke(cli, ["env", *args], obj=context)


def test_env_add_ls_use_rm(registry_context: CliContext) -> None:
    added = run_env(registry_context, "add", "us-east-1", "tcp://10.0.0.5:2375",
                    "--label", "region=us-east", "--label", "tier=gpu")
    assert added.exit_code == 0, added.output
    assert added.stdout == "Added environment 'us-east-1' (tcp://10.0.0.5:2375)\n"
    assert run_env(registry_context, "add", "lab", "unix:///tmp/lab.sock").exit_code == 0
    assert run_env(registry_context, "use", "us-east-1").exit_code == 0
    assert run_env(registry_context, "ls").stdout.splitlines() == [
        "NAME        URL                    LABELS                    TLS   TOKEN   "
        "DEFAULT   HEALTH",
        "lab         unix:///tmp/lab.sock",
        "us-east-1   tcp://10.0.0.5:2375    region=us-east,tier=gpu                 *",
    ]
    records = json.loads(run_env(registry_context, "ls", "--json").stdout)
    assert records[1] == {"name": "us-east-1", "url": "tcp://10.0.0.5:2375",
                          "labels": {"region": "us-east", "tier": "gpu"}, "tls": None,
                          "token": None, "detected": False, "default": True,
                          "health": None}
    removed = run_env(registry_context, "rm", "us-east-1")
    assert removed.stdout == "Removed environment 'us-east-1'\n"
    assert [r["name"] for r in json.loads(run_env(registry_context, "ls", "--json").stdout)] \
        == ["lab"]


def test_env_add_with_tls_files(registry_context: CliContext, tmp_path: Path,
                                test_pki: Path) -> None:
    copy_client_files(test_pki, tmp_path)
    result = run_env(registry_context, "add", "secure", "https://10.0.0.9:2376",
                     "--tls-ca", str(tmp_path / "ca.pem"), "--tls-cert",
                     str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    assert result.exit_code == 0, result.output
    (record,) = json.loads(run_env(registry_context, "ls", "--json").stdout)
    assert record["tls"] == {"ca_cert": str(tmp_path / "ca.pem"),
                             "client_cert": str(tmp_path / "cert.pem"),
                             "client_key": str(tmp_path / "key.pem"), "verify": True,
                             "fingerprint": None}
    half = run_env(registry_context, "add", "half", "https://10.0.0.9:2376",
                   "--tls-cert", str(tmp_path / "cert.pem"))
    assert half.exit_code == 2
    assert "--tls-cert and --tls-key go together" in half.stderr
    (tmp_path / "empty.pem").write_text("")
    empty = run_env(registry_context, "add", "empty", "https://10.0.0.9:2376",
                    "--tls-ca", str(tmp_path / "empty.pem"))
    assert (empty.exit_code, empty.stderr) == (
        1, f"Error: TLS ca_cert file '{tmp_path / 'empty.pem'}' is empty\n")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["add", "a", "unix:///tmp/a.sock", "--label", "region"], 2,
     "label 'region' is not KEY=VALUE"),
    (["add", "all", "unix:///tmp/a.sock"], 1,
     "Error: 'all' cannot name an environment: it selects every environment\n"),
    (["add", "a", "ftp://host"], 1, "Error: "),
    (["rm", "ghost"], 1, "Error: no environment named 'ghost'\n"),
    (["use", "ghost"], 1, "Error: no environment named 'ghost'\n"),
])
def test_env_errors(registry_context: CliContext, args: list[str], code: int,
                    message: str) -> None:
    result = run_env(registry_context, *args)
    assert result.exit_code == code
    assert message in result.stderr
    if code == 1:
        assert result.stderr.count("\n") == 1


def test_env_add_refuses_a_duplicate(registry_context: CliContext) -> None:
    assert run_env(registry_context, "add", "a", "unix:///tmp/a.sock").exit_code == 0
    result = run_env(registry_context, "add", "a", "unix:///tmp/b.sock")
    assert result.exit_code == 1
    assert result.stderr == "Error: environment 'a' already exists; remove it first\n"


def test_home_option_moves_the_data_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(
        cli, ["--home", str(home), "env", "add", "a", "unix:///tmp/a.sock"],
        env={"GHOSTPANEL_HOME": str(tmp_path / "elsewhere"), "GHOSTPANEL_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    assert (home / "ghostpanel.db").exists()
    assert not (tmp_path / "elsewhere").exists()
