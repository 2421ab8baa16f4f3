"""Containers: listing, inspect, create bodies, lifecycle, logs, stats, exec and files.

The canned answers are Podman 4.3.1's own (recorded from ``podman system service``):
its listing entries carry ``"Name": ""`` and ``"Config": null``, its non-TTY logs come as
multiplexed frames under ``Content-Type: application/octet-stream``, its TTY logs as
``text/plain`` with ``\\r\\n`` line ends, its exec output as frames under
``application/vnd.docker.raw-stream``, and its one-shot stats carry an empty
``precpu_stats``. Docker's variants are included where they differ.
"""

from __future__ import annotations

import copy
import io
import json
import math
import random
import tarfile
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import (
    Container,
    ExecResult,
    LogLine,
    Logs,
    NotFound,
    StatsSample,
)
from ghostpanel_kernel.engine._archive import single_file_archive, without_record_padding
from tests.unit.fake_engine import (
    WEB_ID,
    WEB_IMAGE_ID,
    WEB_INSPECT,
    Body,
    FakeEngine,
    Route,
    empty,
    frame,
    json_answer,
    json_lines,
    open_web,
    streamed,
    web_engine,
    web_environment,
)
from tests.unit.tar_fixtures import path_stat_value, tar_archive

# The canned container "web" is shared with other test files: see fake_engine.
ID, IMAGE_ID, PODMAN_INSPECT = WEB_ID, WEB_IMAGE_ID, WEB_INSPECT
engine_for, laptop, web = web_engine, web_environment, open_web

# GET /containers/json, one entry, as Podman 4.3.1 answers it.
PODMAN_LIST_ENTRY: dict[str, Any] = {
    "Id": ID, "Names": ["/web"], "Image": "localhost/busybox:latest", "ImageID": IMAGE_ID,
    "Command": "sh -c echo out1; echo err1 >&2; sleep 300", "Created": 1795813307,
    "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 18080, "Type": "tcp"}],
    "Labels": {"app": "web"}, "State": "running", "Status": "Up 3 seconds",
    "NetworkSettings": {"Networks": {"podman": {
        "IPAMConfig": None, "Links": None, "Aliases": ["1df8c92e931a"], "NetworkID": "podman",
        "Gateway": "10.88.0.1", "IPAddress": "10.88.0.39", "IPPrefixLen": 16,
        "MacAddress": "c2:86:3a:48:f3:7e"}}},
    "Mounts": [], "Name": "", "Config": None, "NetworkingConfig": None, "Platform": None,
    "AdjustCPUShares": False,
}

# -- listing -----------------------------------------------------------------------------


def listing(count: int) -> list[dict[str, Any]]:
    entries = []
    for i in range(count):
        entry = copy.deepcopy(PODMAN_LIST_ENTRY)
        entry["Id"] = f"{i:04x}" + ID[4:]
        entry["Names"] = [f"/web-{i}"]
        entry["Labels"] = {"app": "web", "replica": str(i)}
        entry["State"] = "running" if i % 2 else "exited"
        entry["Status"] = "Up 3 seconds" if i % 2 else "Exited (0) 2 minutes ago"
        entry["Ports"][0]["PublicPort"] = 18000 + i
        entries.append(entry)
    return entries


async def test_list_500_containers_is_one_request() -> None:
    engine = engine_for({("GET", "/containers/json"): json_answer(listing(500))})
    env = laptop(engine)
    containers = await env.containers.list(all=True)
    assert engine.calls == [("GET", "/containers/json", {"all": "true"})]  # no N+1
    assert len(containers) == 500
    last = containers[499]
    assert last.id == "01f3" + ID[4:]
    assert last.short_id == "01f3" + ID[4:12]
    assert last.name == "web-499"
    assert last.state == "running"
    assert last.status == "Up 3 seconds"
    assert last.ports == ["127.0.0.1:18499->8080/tcp"]
    assert last.labels == {"app": "web", "replica": "499"}
    assert last.image == "localhost/busybox:latest"
    assert last.environment == "laptop"
    assert containers[0].state == "exited"
    assert containers[0].status == "Exited (0) 2 minutes ago"
    assert repr(containers[0]) == "<Container: web-0 @laptop>"
    assert len(engine.calls) == 1  # reading the properties sent nothing
    await env.aclose()


async def test_list_filters_and_limit() -> None:
    engine = engine_for({("GET", "/containers/json"): json_answer([])})
    env = laptop(engine)
    assert await env.containers.list(filters={"label": "surge.project=shop"}, limit=5) == []
    params = engine.calls[0][2]
    assert json.loads(params.pop("filters")) == {"label": ["surge.project=shop"]}
    assert params == {"all": "false", "limit": "5"}
    await env.aclose()


def test_listing_properties_for_unpublished_ports_and_health() -> None:
    attrs = {**PODMAN_LIST_ENTRY, "Status": "Up 5 minutes (healthy)",
             "Ports": [{"PrivatePort": 8080, "Type": "tcp"},
                       {"IP": "", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"}]}
    container = Container(None, attrs)  # type: ignore[arg-type]
    assert container.ports == ["8080/tcp", "0.0.0.0:5353->53/udp"]
    assert container.health == "healthy"
    assert Container(None, {**attrs, "Status": "Up 1 second (unhealthy)"}  # type: ignore[arg-type]
                     ).health == "unhealthy"
    assert Container(None, PODMAN_LIST_ENTRY).health == ""  # type: ignore[arg-type]


def test_name_falls_back_to_short_id() -> None:
    assert Container(None, {"Id": ID, "Names": []}).name == ID[:12]  # type: ignore[arg-type]


async def test_get_reads_inspect_attrs() -> None:
    engine = engine_for()
    env = laptop(engine)
    container = await env.containers.get("web")
    assert engine.calls == [("GET", "/containers/web/json", {})]
    assert container.id == ID
    assert container.name == "web"  # inspect's "/web", slash dropped
    assert container.state == "running"
    assert container.status.startswith("Up ")  # made from State, as docker ps writes it
    assert container.image == "localhost/busybox:latest"
    assert container.labels == {"app": "web"}
    assert container.ports == ["127.0.0.1:18080->8080/tcp", "9090/udp"]
    assert container.health == ""
    assert container == Container(env.client, PODMAN_LIST_ENTRY)  # same id, same container
    assert hash(container) == hash(Container(env.client, PODMAN_LIST_ENTRY))
    await env.aclose()


async def test_get_missing_container_is_not_found() -> None:
    engine = engine_for({("GET", "/containers/nope/json"): json_answer(
        {"cause": "no such container",
         "message": 'no container with name or ID "nope" found: no such container',
         "response": 404}, status=404)})
    env = laptop(engine)
    with pytest.raises(NotFound, match='no container with name or ID "nope"'):
        await env.containers.get("nope")
    await env.aclose()


async def test_reload_refreshes_attrs_from_inspect() -> None:
    engine = engine_for({("GET", "/containers/json"): json_answer([PODMAN_LIST_ENTRY])})
    env = laptop(engine)
    [container] = await env.containers.list()
    assert container.attrs["Config"] is None
    await container.reload()
    assert container.attrs["Config"]["Cmd"][0] == "sh"
    assert engine.calls[-1] == ("GET", f"/containers/{ID}/json", {})
    await env.aclose()


# -- create ------------------------------------------------------------------------------


async def create_body(**arguments: Any) -> dict[str, Any]:
    engine = engine_for({("POST", "/containers/create"): json_answer(
        {"Id": ID, "Warnings": []}, status=201)})
    env = laptop(engine)
    container = await env.containers.create(**arguments)
    assert container.id == ID
    assert [c[:2] for c in engine.calls] == [("POST", "/containers/create"),
                                            ("GET", f"/containers/{ID}/json")]
    request = engine.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    await env.aclose()
    body: dict[str, Any] = json.loads(request.content)
    body["?"] = dict(request.url.params)
    return body


async def test_create_minimal_body() -> None:
    assert await create_body(image="localhost/busybox:latest") == {
        "Image": "localhost/busybox:latest", "Tty": False, "OpenStdin": False,
        "HostConfig": {}, "?": {}}


async def test_create_full_body() -> None:
    body = await create_body(
        image="localhost/busybox:latest", name="web",
        command="sh -c 'echo hi; sleep 30'", entrypoint=["/bin/sh"],
        env={"A": "1", "B": "x=y"}, ports={"8080/tcp": 18080}, volumes=["cache:/cache"],
        labels={"app": "web", "replicas": 3}, network="appnet", network_aliases=["web", "www"],
        restart_policy="on-failure:3", cpus=1.5, memory="512m", working_dir="/srv",
        user="1000:1000", hostname="web-1", tty=True, stdin_open=True, privileged=True,
        read_only=True, auto_remove=True, healthcheck={"Test": ["CMD", "true"],
                                                       "Interval": 1_000_000_000},
        stop_signal="SIGINT", cap_add=["NET_ADMIN"], cap_drop=["MKNOD"],
        devices=["/dev/fuse", "/dev/sda:/dev/xvda:r"])
    assert body == {
        "?": {"name": "web"},
        "Image": "localhost/busybox:latest",
        "Cmd": ["sh", "-c", "echo hi; sleep 30"],
        "Entrypoint": ["/bin/sh"],
        "Env": ["A=1", "B=x=y"],
        "Labels": {"app": "web", "replicas": "3"},
        "WorkingDir": "/srv", "User": "1000:1000", "Hostname": "web-1",
        "Tty": True, "OpenStdin": True, "StopSignal": "SIGINT",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000},
        "ExposedPorts": {"8080/tcp": {}},
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["web", "www"]}}},
        "HostConfig": {
            "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "18080"}]},
            "Binds": ["cache:/cache"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "NanoCpus": 1_500_000_000, "Memory": 512 * 1024**2,
            "Privileged": True, "ReadonlyRootfs": True, "AutoRemove": True,
            "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"],
            "Devices": [
                {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                 "CgroupPermissions": "rwm"},
                {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda",
                 "CgroupPermissions": "r"}],
            "NetworkMode": "appnet",
        },
    }


async def test_create_port_forms() -> None:
    body = await create_body(image="busybox", ports={
        "8080/tcp": 18080, 53: [("127.0.0.1", 5353), None], "9090/udp": None,
        443: "8443", "5000/sctp": ("::1", 15000), 7000: ("127.0.0.1", None)})
    assert body["ExposedPorts"] == {"8080/tcp": {}, "53/tcp": {}, "9090/udp": {},
                                    "443/tcp": {}, "5000/sctp": {}, "7000/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": "18080"}],
        "53/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5353"},
                   {"HostIp": "", "HostPort": ""}],
        "9090/udp": [{"HostIp": "", "HostPort": ""}],
        "443/tcp": [{"HostIp": "", "HostPort": "8443"}],
        "5000/sctp": [{"HostIp": "::1", "HostPort": "15000"}],
        "7000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],  # any free port on that IP
    }


@pytest.mark.parametrize(
    ("volumes", "binds"),
    [(["/srv/data:/data:ro", "cache:/cache", "/srv/www:/www:Z"],
      ["/srv/data:/data:ro", "cache:/cache", "/srv/www:/www:Z"]),
     ({"/srv/data": "/data:ro", "cache": "/cache"}, ["/srv/data:/data:ro", "cache:/cache"]),
     (("/a:/b",), ["/a:/b"])],
)
async def test_create_volume_forms(volumes: Any, binds: list[str]) -> None:
    assert (await create_body(image="busybox", volumes=volumes))["HostConfig"]["Binds"] == binds


async def test_create_env_as_list_is_kept() -> None:
    body = await create_body(image="busybox", env=["A=1", "PATH=/bin"])
    assert body["Env"] == ["A=1", "PATH=/bin"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("no", {"Name": ""}), ("always", {"Name": "always"}),
     ("unless-stopped", {"Name": "unless-stopped"}), ("on-failure", {"Name": "on-failure"}),
     ("on-failure:3", {"Name": "on-failure", "MaximumRetryCount": 3}),
     ({"Name": "always", "MaximumRetryCount": 0}, {"Name": "always", "MaximumRetryCount": 0})],
)
async def test_create_restart_policies(policy: Any, expected: dict[str, Any]) -> None:
    body = await create_body(image="busybox", restart_policy=policy)
    assert body["HostConfig"]["RestartPolicy"] == expected


@pytest.mark.parametrize(
    ("cpus", "nano"),
    [(1.5, 1_500_000_000), (0.25, 250_000_000), (2, 2_000_000_000),
     (2.01, 2_010_000_000), (1.001, 1_001_000_000), (4.1, 4_100_000_000)],
)
async def test_create_cpus_to_nano_cpus(cpus: float, nano: int) -> None:
    # `docker run --cpus 2.01` sends 2010000000; float truncation would send 2009999999.
    assert (await create_body(image="busybox", cpus=cpus))["HostConfig"]["NanoCpus"] == nano


@pytest.mark.parametrize(
    ("memory", "expected"),
    [("512m", 512 * 1024**2), ("512MiB", 512 * 1024**2), ("1g", 1024**3), ("1GB", 1024**3),
     ("1.5g", 3 * 1024**3 // 2), ("64k", 65536), ("100", 100), (268435456, 268435456)],
)
async def test_create_memory(memory: Any, expected: int) -> None:
    assert (await create_body(image="busybox", memory=memory))["HostConfig"]["Memory"] == expected


async def test_create_network_without_aliases() -> None:
    body = await create_body(image="busybox", network="appnet")
    assert body["HostConfig"]["NetworkMode"] == "appnet"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"appnet": {}}}


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [({"image": ""}, ValueError, "image"),
     ({"image": "busybox", "ports": {70000: 1}}, ValueError, "1-65535"),
     ({"image": "busybox", "ports": {0: 1}}, ValueError, "1-65535"),
     ({"image": "busybox", "ports": {"http": 80}}, ValueError, "1-65535"),
     ({"image": "busybox", "ports": {"8080/icmp": 1}}, ValueError, "tcp, udp or sctp"),
     ({"image": "busybox", "ports": {8080: "abc"}}, ValueError, "host port"),
     ({"image": "busybox", "ports": {8080: True}}, ValueError, "host port"),
     ({"image": "busybox", "volumes": "/srv:/data"}, TypeError, "list"),
     ({"image": "busybox", "volumes": ["/srv"]}, ValueError, "source:/container/path"),
     ({"image": "busybox", "volumes": ["/srv:data"]}, ValueError, "source:/container/path"),
     ({"image": "busybox", "volumes": [":/data"]}, ValueError, "source:/container/path"),
     ({"image": "busybox", "volumes": ["/a:/b:ro:extra"]}, ValueError, "source:/container"),
     ({"image": "busybox", "restart_policy": "sometimes"}, ValueError, "on-failure"),
     ({"image": "busybox", "restart_policy": "always:3"}, ValueError, "retry count"),
     ({"image": "busybox", "restart_policy": "on-failure:x"}, ValueError, "retry count"),
     ({"image": "busybox", "cpus": 0}, ValueError, "positive"),
     ({"image": "busybox", "cpus": -1.5}, ValueError, "positive"),
     ({"image": "busybox", "memory": "lots"}, ValueError, "memory size"),
     ({"image": "busybox", "memory": "12x"}, ValueError, "memory size"),
     ({"image": "busybox", "memory": -1}, ValueError, "negative"),
     ({"image": "busybox", "memory": True}, TypeError, "memory")],
)
async def test_create_bad_arguments_fail_before_any_request(
        arguments: dict[str, Any], error: type[Exception], words: str) -> None:
    engine = engine_for()
    env = laptop(engine)
    with pytest.raises(error, match=words):
        await env.containers.create(**arguments)
    assert engine.log == []  # not even the version negotiation
    await env.aclose()


async def test_prune_containers() -> None:
    engine = engine_for({("POST", "/containers/prune"): json_answer(
        {"ContainersDeleted": [ID], "SpaceReclaimed": 4096})})
    env = laptop(engine)
    assert await env.containers.prune(filters={"until": "24h"}) == {
        "ContainersDeleted": [ID], "SpaceReclaimed": 4096}
    assert json.loads(engine.calls[0][2]["filters"]) == {"until": ["24h"]}
    await env.aclose()


# -- lifecycle ---------------------------------------------------------------------------


LIFECYCLE = [
    (lambda c: c.start(), "POST", "start", {}),
    (lambda c: c.stop(), "POST", "stop", {}),
    (lambda c: c.stop(timeout=5), "POST", "stop", {"t": "5"}),
    (lambda c: c.stop(timeout=0), "POST", "stop", {"t": "0"}),
    (lambda c: c.restart(timeout=1), "POST", "restart", {"t": "1"}),
    (lambda c: c.pause(), "POST", "pause", {}),
    (lambda c: c.unpause(), "POST", "unpause", {}),
    (lambda c: c.kill(), "POST", "kill", {"signal": "SIGKILL"}),
    (lambda c: c.kill(signal="SIGHUP"), "POST", "kill", {"signal": "SIGHUP"}),
    (lambda c: c.kill(signal=15), "POST", "kill", {"signal": "15"}),
    (lambda c: c.remove(), "DELETE", "", {"force": "false", "v": "false"}),
    (lambda c: c.remove(force=True, volumes=True), "DELETE", "", {"force": "true", "v": "true"}),
]


@pytest.mark.parametrize(("call", "method", "action", "params"), LIFECYCLE)
async def test_lifecycle_endpoints(call: Callable[[Container], Any], method: str, action: str,
                                   params: dict[str, str]) -> None:
    path = f"/containers/{ID}" + (f"/{action}" if action else "")
    engine = engine_for({(method, path): empty()})
    env, container = await web(engine)
    assert await call(container) is None
    assert engine.calls == [(method, path, params)]
    await env.aclose()


async def test_rename_then_reload() -> None:
    renamed = {**PODMAN_INSPECT, "Name": "/web2"}
    engine = engine_for({("POST", f"/containers/{ID}/rename"): empty(),
                         ("GET", f"/containers/{ID}/json"): json_answer(renamed)})
    env, container = await web(engine)
    await container.rename("web2")
    assert engine.calls == [("POST", f"/containers/{ID}/rename", {"name": "web2"}),
                            ("GET", f"/containers/{ID}/json", {})]
    assert container.name == "web2"
    await env.aclose()


async def test_wait_returns_the_exit_code() -> None:
    engine = engine_for({("POST", f"/containers/{ID}/wait"): json_answer(
        {"StatusCode": 137, "Error": None})})
    env, container = await web(engine)
    assert await container.wait() == 137
    assert engine.calls == [("POST", f"/containers/{ID}/wait", {"condition": "not-running"})]
    assert await container.wait(condition="next-exit") == 137
    assert engine.calls[-1][2] == {"condition": "next-exit"}
    await env.aclose()


async def test_top() -> None:
    processes = {"Processes": [["1 root     sleep 300"]], "Titles": ["PID   USER     COMMAND"]}
    engine = engine_for({("GET", f"/containers/{ID}/top"): json_answer(processes)})
    env, container = await web(engine)
    assert await container.top() == processes
    assert await container.top(ps_args="aux") == processes
    assert [c[2] for c in engine.calls] == [{}, {"ps_args": "aux"}]
    await env.aclose()


async def test_container_known_only_by_name_uses_the_name_in_paths() -> None:
    engine = engine_for({("POST", "/containers/my%20web/start"): empty()})
    env = laptop(engine)
    await Container(env.client, {"Names": ["/my web"]}).start()
    assert engine.calls == [("POST", "/containers/my%20web/start", {})]
    await env.aclose()


# -- logs --------------------------------------------------------------------------------


MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
PODMAN_LOGS = "application/octet-stream"  # Podman 4.3's header for multiplexed logs
RAW = "application/vnd.docker.raw-stream"
PODMAN_TTY_LOGS = "text/plain; charset=utf-8"

# Frames as engines send them, plus the awkward cases: two lines in one frame, a line cut
# across two frames (with a stderr frame in between), a blank line, and a last line
# without newline on each stream.
LOG_WIRE = b"".join([
    frame(1, b"starting\n"),
    frame(2, b"warning: low memory\n"),
    frame(1, b"h\xc3\xa9llo w\xc3\xb6rld\n"),
    frame(1, b"two\nlines\n"),
    frame(1, b"a line cut "),
    frame(2, b"err in between\n"),
    frame(1, b"across frames\n"),
    frame(1, b"\n"),
    frame(2, b"no newline on stderr"),
    frame(1, b"last words"),
])
LOG_LINES = [
    LogLine("stdout", "starting"),
    LogLine("stderr", "warning: low memory"),
    LogLine("stdout", "h\u00e9llo w\u00f6rld"),
    LogLine("stdout", "two"),
    LogLine("stdout", "lines"),
    LogLine("stderr", "err in between"),
    LogLine("stdout", "a line cut across frames"),
    LogLine("stdout", ""),
    LogLine("stdout", "last words"),
    LogLine("stderr", "no newline on stderr"),
]


def cut(data: bytes, positions: Iterable[int]) -> list[bytes]:
    pieces, start = [], 0
    for position in [*sorted(positions), len(data)]:
        pieces.append(data[start:position])
        start = position
    return pieces


async def read_logs(pieces: list[bytes], content_type: str = MULTIPLEXED,
                    inspect: dict[str, Any] = PODMAN_INSPECT, **options: Any) -> Logs:
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed(pieces, content_type),
                         ("GET", f"/containers/{ID}/json"): json_answer(inspect)})
    env = laptop(engine)
    container = Container(env.client, inspect)
    logs = await container.logs(**options)
    await env.aclose()
    return logs


async def test_logs_in_one_piece() -> None:
    logs = await read_logs([LOG_WIRE])
    assert isinstance(logs, Logs)
    assert list(logs) == LOG_LINES


async def test_logs_one_byte_at_a_time() -> None:
    assert list(await read_logs(cut(LOG_WIRE, range(1, len(LOG_WIRE))))) == LOG_LINES


async def test_logs_split_at_every_position() -> None:
    for position in range(len(LOG_WIRE) + 1):
        assert list(await read_logs(cut(LOG_WIRE, [position]))) == LOG_LINES, position


async def test_logs_random_pieces() -> None:
    rng = random.Random(20240501)
    for _ in range(40):
        positions = rng.sample(range(1, len(LOG_WIRE)), rng.randint(1, 25))
        assert list(await read_logs(cut(LOG_WIRE, positions))) == LOG_LINES, positions


async def test_logs_keep_stdout_and_stderr_apart() -> None:
    logs = await read_logs([LOG_WIRE])
    assert logs.stdout == ("starting\nh\u00e9llo w\u00f6rld\ntwo\nlines\n"
                           "a line cut across frames\n\nlast words")
    assert logs.stderr == "warning: low memory\nerr in between\nno newline on stderr"


async def test_str_of_logs_reads_like_docker_logs() -> None:
    logs = await read_logs([frame(1, b"one\n"), frame(2, b"two\n"), frame(1, b"three\n")])
    assert str(logs) == "one\ntwo\nthree"


async def test_logs_timestamps_are_parsed_into_the_line() -> None:
    wire = (frame(1, b"2024-05-01T10:00:00.123456789Z starting up\n")
            + frame(2, b"2024-05-01T10:00:01.000000001Z oops: it failed\n")
            + frame(1, b"2024-05-01T10:00:02.5Z done"))
    logs = await read_logs(cut(wire, range(0, len(wire), 7)), timestamps=True)
    assert list(logs) == [
        LogLine("stdout", "starting up", "2024-05-01T10:00:00.123456789Z"),
        LogLine("stderr", "oops: it failed", "2024-05-01T10:00:01.000000001Z"),
        LogLine("stdout", "done", "2024-05-01T10:00:02.5Z"),
    ]
    assert str(logs) == ("2024-05-01T10:00:00.123456789Z starting up\n"
                         "2024-05-01T10:00:01.000000001Z oops: it failed\n"
                         "2024-05-01T10:00:02.5Z done")


async def test_logs_params() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed([], MULTIPLEXED)})
    env, container = await web(engine)
    await container.logs(tail=10, since=1714557600, until="2024-05-01T11:00:00Z",
                         timestamps=True, stderr=False)
    assert engine.calls == [("GET", f"/containers/{ID}/logs", {
        "follow": "false", "stdout": "true", "stderr": "false", "tail": "10",
        # Every time form goes out as the engines' seconds.nanoseconds (see _times.api_time).
        "since": "1714557600.000000000", "until": "1714561200.000000000",
        "timestamps": "true"})]
    await container.logs()
    assert engine.calls[-1][2] == {"follow": "false", "stdout": "true", "stderr": "true",
                                   "tail": "all", "timestamps": "false"}
    await env.aclose()


async def test_podman_logs_of_a_listed_container_asks_for_tty_once() -> None:
    # Podman labels multiplexed logs application/octet-stream: whether the body is framed
    # depends on the container's Tty, which a listing entry ("Config": null) lacks.
    engine = engine_for({
        ("GET", "/containers/json"): json_answer([PODMAN_LIST_ENTRY]),
        ("GET", f"/containers/{ID}/logs"): streamed([LOG_WIRE], PODMAN_LOGS)})
    env = laptop(engine)
    [container] = await env.containers.list()
    assert list(await container.logs()) == LOG_LINES
    assert [c[:2] for c in engine.calls] == [("GET", "/containers/json"),
                                            ("GET", f"/containers/{ID}/logs"),
                                            ("GET", f"/containers/{ID}/json")]
    assert list(await container.logs()) == LOG_LINES
    assert len(engine.calls) == 4  # Tty is known now
    await env.aclose()


TTY_INSPECT = {**PODMAN_INSPECT, "Config": {**PODMAN_INSPECT["Config"], "Tty": True}}


async def test_podman_tty_logs_are_raw_with_crlf_line_ends() -> None:
    # Recorded from Podman 4.3.1: `echo tty1; echo tty2 >&2; printf nonl` with a TTY.
    logs = await read_logs([b"tty1\r\ntty2\r\nnonl"], PODMAN_TTY_LOGS, TTY_INSPECT)
    assert list(logs) == [LogLine("stdout", "tty1"), LogLine("stdout", "tty2"),
                          LogLine("stdout", "nonl")]


async def test_docker_tty_logs_are_raw_even_without_inspect() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed(
        [b"plain\nbytes\n", b"\x01\x00\x00\x00 not a frame\n"], RAW)})
    env = laptop(engine)
    container = Container(env.client, PODMAN_LIST_ENTRY)  # Tty unknown: the header says
    logs = await container.logs()
    assert [line.text for line in logs] == ["plain", "bytes", "\x01\x00\x00\x00 not a frame"]
    assert [c[:2] for c in engine.calls] == [("GET", f"/containers/{ID}/logs")]
    await env.aclose()


async def test_tty_logs_one_byte_at_a_time_keep_utf8_characters_whole() -> None:
    text = "h\u00e9llo w\u00f6rld \u2603\nsecond line\nno newline"
    wire = text.encode()
    logs = await read_logs(cut(wire, range(1, len(wire))), RAW, TTY_INSPECT)
    assert [line.text for line in logs] == ["h\u00e9llo w\u00f6rld \u2603", "second line",
                                            "no newline"]
    assert {line.stream for line in logs} == {"stdout"}


async def test_tty_logs_with_timestamps() -> None:
    wire = b"2024-05-01T10:00:00Z one\r\n2024-05-01T10:00:01Z two\r\n"
    logs = await read_logs(cut(wire, [5, 30]), RAW, TTY_INSPECT, timestamps=True)
    assert list(logs) == [LogLine("stdout", "one", "2024-05-01T10:00:00Z"),
                          LogLine("stdout", "two", "2024-05-01T10:00:01Z")]


async def test_follow_logs_is_an_async_iterator() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed(
        cut(LOG_WIRE, range(3, len(LOG_WIRE), 11)), MULTIPLEXED)})
    env, container = await web(engine)
    stream = container.logs(follow=True, tail=0)
    assert isinstance(stream, AsyncIterator)
    assert engine.calls == []  # nothing is sent before the first line is asked for
    assert [line async for line in stream] == LOG_LINES
    assert engine.calls[0][2]["follow"] == "true"
    assert engine.calls[0][2]["tail"] == "0"
    await env.aclose()


async def test_stopping_a_follow_releases_the_stream() -> None:
    bodies: list[Body] = []
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed(
        [frame(1, b"line %d\n" % i) for i in range(100)], MULTIPLEXED, bodies)})
    env, container = await web(engine)
    stream = container.logs(follow=True)
    assert (await anext(stream)).text == "line 0"
    await stream.aclose()  # type: ignore[attr-defined]
    # Closed by aclose() itself, not left to garbage-collection hooks of the nested
    # generators (six loop turns later in CPython, never without reference counting): a
    # widget that closes a log view must free the engine connection at once.
    assert bodies[0].closed
    await env.aclose()


async def test_log_batches_follow_the_reads() -> None:
    pieces = [frame(1, b"a\n") + frame(1, b"b\n"), frame(2, b"c\n")]
    engine = engine_for({("GET", f"/containers/{ID}/logs"): streamed(pieces, MULTIPLEXED)})
    env, container = await web(engine)
    batches = [batch async for batch in container.log_batches()]
    assert batches == [[LogLine("stdout", "a"), LogLine("stdout", "b")],
                       [LogLine("stderr", "c")]]
    await env.aclose()


# -- stats -------------------------------------------------------------------------------


# A one-shot sample from Docker 24 on cgroup v1: it carries the previous reading, 1 s
# earlier; Docker's system time (idle included) grew by that 1 s times its 4 CPUs.
DOCKER_STATS_V1: dict[str, Any] = {
    "read": "2024-05-01T10:00:01.000000000Z", "preread": "2024-05-01T10:00:00.000000000Z",
    "name": "/web", "id": ID,
    "pids_stats": {"current": 3},
    "blkio_stats": {"io_service_bytes_recursive": [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192},
        {"major": 8, "minor": 16, "op": "Read", "value": 1024},
        {"major": 8, "minor": 0, "op": "Sync", "value": 12288},
        {"major": 8, "minor": 0, "op": "Total", "value": 13312}]},
    "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000,
                                "percpu_usage": [100_000_000] * 4},
                  "system_cpu_usage": 20_000_000_000, "online_cpus": 4},
    "precpu_stats": {"cpu_usage": {"total_usage": 300_000_000},
                     "system_cpu_usage": 16_000_000_000, "online_cpus": 4},
    "memory_stats": {"usage": 104_857_600, "limit": 1_073_741_824,
                     "stats": {"total_inactive_file": 20_971_520, "inactive_file": 1,
                               "cache": 30_000_000}},
    "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000},
                 "eth1": {"rx_bytes": 10, "tx_bytes": 20}},
}

# Podman 4.3.1's one-shot sample, as recorded: precpu_stats has no reading.
PODMAN_STATS: dict[str, Any] = {
    "read": "2026-11-27T21:01:51.137824628Z", "preread": "0001-01-01T00:00:00Z",
    "pids_stats": {"current": 1},
    "blkio_stats": {"io_service_bytes_recursive": [], "io_serviced_recursive": None},
    "num_procs": 0, "storage_stats": {},
    "cpu_stats": {"cpu_usage": {"total_usage": 33316391, "percpu_usage": [29937367, 3379024],
                                "usage_in_kernelmode": 16000000,
                                "usage_in_usermode": 17316391},
                  "system_cpu_usage": 176175248872, "online_cpus": 2, "cpu": 0,
                  "throttling_data": {"periods": 0, "throttled_periods": 0,
                                      "throttled_time": 0}},
    "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                   "usage_in_usermode": 0},
                     "cpu": 0, "throttling_data": {"periods": 0, "throttled_periods": 0,
                                                   "throttled_time": 0}},
    "memory_stats": {"usage": 569344, "limit": 25276510208},
    "name": "web", "Id": ID,
    "networks": {"network": {"rx_bytes": 516, "rx_packets": 0, "tx_bytes": 860}},
}


def podman_later(sample: dict[str, Any], cpu: int, system: int, read: str
                 ) -> dict[str, Any]:
    """``sample`` as read at ``read``, its counters grown by ``cpu`` and ``system``."""
    later = copy.deepcopy(sample)
    later["read"] = read
    later["cpu_stats"]["cpu_usage"]["total_usage"] += cpu
    later["cpu_stats"]["system_cpu_usage"] += system
    return later


async def test_stats_docker_sample_computes_like_docker_stats() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/stats"): json_answer(DOCKER_STATS_V1)})
    env, container = await web(engine)
    sample = await container.stats()
    assert engine.calls == [("GET", f"/containers/{ID}/stats", {"stream": "false"})]
    assert isinstance(sample, StatsSample)
    # CPU: 100e6 ns of CPU in the 1 s from preread to read = 10 % of one CPU, as Docker's
    # own formula has it: (400e6 - 300e6) / (20e9 - 16e9) * 4 CPUs * 100
    assert sample.cpu_percent == pytest.approx(10.0)
    # Memory: usage 100 MiB minus 20 MiB of inactive page cache (v1: total_inactive_file)
    assert sample.memory_usage == 104_857_600 - 20_971_520 == 80 * 1024**2
    assert sample.memory_limit == 1024**3
    assert sample.memory_percent == pytest.approx(80 / 1024 * 100)  # 7.8125 %
    assert (sample.net_rx, sample.net_tx) == (1010, 2020)
    assert (sample.block_read, sample.block_write) == (4096 + 1024, 8192)
    assert sample.pids == 3
    assert sample.container == "web"
    assert sample.read == "2024-05-01T10:00:01.000000000Z"
    await env.aclose()


def test_stats_cgroup_v2_memory_subtracts_inactive_file() -> None:
    attrs = {**DOCKER_STATS_V1,
             "memory_stats": {"usage": 52_428_800, "limit": 0,
                              "stats": {"inactive_file": 10_485_760, "active_file": 5}},
             "blkio_stats": {"io_service_bytes_recursive": [
                 {"major": 254, "minor": 0, "op": "read", "value": 7},
                 {"major": 254, "minor": 0, "op": "write", "value": 9}]}}
    sample = StatsSample.from_attrs(attrs)
    assert sample.memory_usage == 52_428_800 - 10_485_760  # 40 MiB
    assert sample.memory_percent == 0.0  # no limit reported: no division by zero
    assert (sample.block_read, sample.block_write) == (7, 9)
    assert sample.container == "web"  # from the sample's own "/web"


def test_stats_without_online_cpus_counts_percpu_entries() -> None:
    attrs = copy.deepcopy(DOCKER_STATS_V1)
    del attrs["cpu_stats"]["online_cpus"]
    del attrs["read"], attrs["preread"]  # no times: Docker's formula is all there is
    # 0.025 of the system's time, times 4 per-CPU entries, in percent
    assert StatsSample.from_attrs(attrs).cpu_percent == pytest.approx(10.0)


async def test_stats_podman_takes_a_second_sample() -> None:
    second = podman_later(PODMAN_STATS, cpu=50_000_000, system=500_000_000,
                          read="2026-11-27T21:01:51.637824628Z")  # 0.5 s later
    answers = iter([PODMAN_STATS, second])
    engine = engine_for({("GET", f"/containers/{ID}/stats"):
                         lambda r: httpx.Response(200, json=next(answers))})
    env, container = await web(engine)
    sample = await container.stats(cpu_window=0.01)
    assert [c[2] for c in engine.calls] == [{"stream": "false"}, {"stream": "false"}]
    # CPU between the two samples: 50e6 ns in 0.5 s = 10 % (Docker's formula would read
    # 50e6 / 500e6 * 2 CPUs * 100 = 20 %: Podman's system time counts only busy time)
    assert sample.cpu_percent == pytest.approx(10.0)
    assert sample.memory_usage == 569344  # no page-cache figures: usage as reported
    assert sample.memory_limit == 25276510208
    assert (sample.net_rx, sample.net_tx) == (516, 860)
    assert (sample.block_read, sample.block_write) == (0, 0)
    assert sample.pids == 1
    assert sample.attrs is not None and sample.attrs["read"] == second["read"]
    await env.aclose()


async def test_stats_podman_with_no_window_is_one_request_and_unknown_cpu() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/stats"): json_answer(PODMAN_STATS)})
    env, container = await web(engine)
    sample = await container.stats(cpu_window=0)
    assert len(engine.calls) == 1
    assert math.isnan(sample.cpu_percent)  # nothing to compare with: unknown, not 0 %
    await env.aclose()


async def test_stats_stream_uses_the_previous_sample_when_precpu_is_empty() -> None:
    second = podman_later(PODMAN_STATS, cpu=10_000_000, system=1_000_000_000,
                          read="2026-11-27T21:01:52.137824628Z")  # 1 s later
    third = podman_later(second, cpu=30_000_000, system=1_000_000_000,
                         read="2026-11-27T21:01:53.137824628Z")  # and 1 s later again
    wire = json_lines(PODMAN_STATS, second, third)
    engine = engine_for({("GET", f"/containers/{ID}/stats"): streamed(
        cut(wire, range(50, len(wire), 97)), "application/json")})
    env, container = await web(engine)
    stream = container.stats(stream=True)
    assert isinstance(stream, AsyncIterator)
    samples = [sample async for sample in stream]
    assert engine.calls == [("GET", f"/containers/{ID}/stats", {"stream": "true"})]
    # 1st: nothing to compare with; then 10e6 ns and 30e6 ns of CPU in 1 s each
    assert math.isnan(samples[0].cpu_percent)
    assert [s.cpu_percent for s in samples[1:]] == pytest.approx([1.0, 3.0])
    await env.aclose()


async def test_stats_stream_prefers_the_samples_own_precpu() -> None:
    later = copy.deepcopy(DOCKER_STATS_V1)
    later["precpu_stats"] = copy.deepcopy(DOCKER_STATS_V1["cpu_stats"])
    later["preread"], later["read"] = DOCKER_STATS_V1["read"], "2024-05-01T10:00:02Z"
    later["cpu_stats"]["cpu_usage"]["total_usage"] += 20_000_000
    later["cpu_stats"]["system_cpu_usage"] += 4_000_000_000
    engine = engine_for({("GET", f"/containers/{ID}/stats"): streamed(
        [json_lines(DOCKER_STATS_V1, later)], "application/json")})
    env, container = await web(engine)
    samples = [sample async for sample in container.stats(stream=True)]
    # 10 % as above; then 20e6 ns in the 1 s since its own preread = 2 %
    assert [s.cpu_percent for s in samples] == pytest.approx([10.0, 2.0])
    await env.aclose()


# -- exec --------------------------------------------------------------------------------


EXEC_ID = "09d868cd8134428da6adb9db0d681610948d2b004dd4a3ea6c8580b4a62bd402"


def exec_engine(output: list[bytes], exit_code: int | None = 3) -> FakeEngine:
    return engine_for({
        ("POST", f"/containers/{ID}/exec"): json_answer({"Id": EXEC_ID}, status=201),
        # Podman 4.3.1 labels the framed exec output raw-stream: exec is framed when Tty
        # is false, whatever the header says.
        ("POST", f"/exec/{EXEC_ID}/start"): streamed(output, RAW),
        ("GET", f"/exec/{EXEC_ID}/json"): json_answer({
            "CanRemove": True, "ContainerID": ID, "ExitCode": exit_code, "ID": EXEC_ID,
            "OpenStderr": True, "OpenStdout": True, "Running": False, "Pid": 0}),
    })


async def test_exec_sequence_and_result() -> None:
    wire = frame(1, b"hi\n") + frame(2, b"oops\n")
    engine = exec_engine(cut(wire, range(1, len(wire))))
    env, container = await web(engine)
    result = await container.exec("echo hi; echo oops >&2; exit 3", env={"A": "1"},
                                  workdir="/tmp", user="nobody")
    assert result == ExecResult(exit_code=3, stdout="hi\n", stderr="oops\n")
    assert result.output == "hi\noops\n"
    assert [c[:2] for c in engine.calls] == [("POST", f"/containers/{ID}/exec"),
                                            ("POST", f"/exec/{EXEC_ID}/start"),
                                            ("GET", f"/exec/{EXEC_ID}/json")]
    assert json.loads(engine.requests[0].content) == {
        "Cmd": ["sh", "-c", "echo hi; echo oops >&2; exit 3"], "AttachStdout": True,
        "AttachStderr": True, "Tty": False, "Privileged": False, "Env": ["A=1"],
        "WorkingDir": "/tmp", "User": "nobody"}
    assert json.loads(engine.requests[1].content) == {"Detach": False, "Tty": False}
    await env.aclose()


async def test_exec_argument_list_is_sent_as_is() -> None:
    engine = exec_engine([], exit_code=0)
    env, container = await web(engine)
    assert await container.exec(["ls", "-l", "/a b"], privileged=True) == ExecResult(0, "", "")
    body = json.loads(engine.requests[0].content)
    assert body["Cmd"] == ["ls", "-l", "/a b"]
    assert body["Privileged"] is True
    assert "Env" not in body and "WorkingDir" not in body and "User" not in body
    await env.aclose()


async def test_exec_output_is_kept_exactly() -> None:
    # `printf 42` writes no newline; the result must not invent one.
    engine = exec_engine([frame(1, b"4"), frame(1, b"2"), frame(2, b"warn")], exit_code=0)
    env, container = await web(engine)
    result = await container.exec("printf 42; printf warn >&2")
    assert (result.stdout, result.stderr) == ("42", "warn")
    await env.aclose()


async def test_exec_without_exit_code_reports_minus_one() -> None:
    engine = exec_engine([frame(1, b"x\n")], exit_code=None)
    env, container = await web(engine)
    assert (await container.exec("true")).exit_code == -1
    await env.aclose()


# -- files -------------------------------------------------------------------------------


def tar_of(*members: tuple[str, str, bytes | str]) -> bytes:
    """A tar as the engine sends it: (name, kind, data or link target) per member."""
    return tar_archive(members)


DIR_MODE = 2147484141  # os.ModeDir | 0o755, as Podman reports /etc
ETC_TAR = tar_of(("etc", "dir", b""), ("etc/group", "file", b"root:x:0:\n"),
                 ("etc/hostname", "file", b"1df8c92e931a\n"),
                 ("etc/mtab", "symlink", "/proc/mounts"), ("etc/ssl", "dir", b""),
                 ("etc/ssl/certs", "dir", b""), ("etc/ssl/certs/ca.pem", "file", b"PEM"))


def archive_answer(archive: bytes, stat: dict[str, Any]) -> Route:
    return lambda request: httpx.Response(
        200, headers={"Content-Type": "application/x-tar",
                      "X-Docker-Container-Path-Stat": path_stat_value(**stat)},
        content=archive)


async def test_list_files_of_a_directory() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(
        ETC_TAR, {"name": "etc", "size": 4096, "mode": DIR_MODE,
                  "mtime": "2026-11-27T21:01:47.504973217Z", "isDir": True,
                  "linkTarget": "/etc"})})
    env, container = await web(engine)
    entries = await container.list_files("/etc")
    assert engine.calls == [("GET", f"/containers/{ID}/archive", {"path": "/etc"})]
    assert [(e.name, e.path, e.kind, e.size, e.mode) for e in entries] == [
        ("ssl", "/etc/ssl", "dir", 0, 0o755),  # directories first
        ("group", "/etc/group", "file", 10, 0o644),
        ("hostname", "/etc/hostname", "file", 13, 0o644),
        ("mtab", "/etc/mtab", "symlink", 0, 0o777),
    ]
    assert entries[3].link_target == "/proc/mounts"
    assert entries[0].is_dir and not entries[1].is_dir
    assert entries[1].mtime == 1714557600
    await env.aclose()


async def test_list_files_of_the_root_directory() -> None:
    # Podman 4.3.1 names the members of a tar of "/" "/", "/bin", "/bin/sh", ...
    root_tar = tar_of(("/", "dir", b""), ("/bin", "dir", b""), ("/bin/busybox", "file", b"ELF"),
                      ("/bin/sh", "symlink", "busybox"), ("/etc", "dir", b""),
                      ("/etc/passwd", "file", b"root:x:0:0::/root:/bin/sh\n"),
                      ("/.containerenv", "file", b""))
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(
        root_tar, {"name": ".", "size": 4096, "mode": 2147484013, "isDir": True,
                   "linkTarget": "/."})})
    env, container = await web(engine)
    entries = await container.list_files()
    assert engine.calls[0][2] == {"path": "/"}
    assert [(e.name, e.path, e.kind) for e in entries] == [
        ("bin", "/bin", "dir"), ("etc", "/etc", "dir"),
        (".containerenv", "/.containerenv", "file")]
    await env.aclose()


async def test_list_files_of_a_file_is_not_a_directory() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(
        tar_of(("passwd", "file", b"x")), {"name": "passwd", "size": 1, "mode": 420,
                                           "isDir": False})})
    env, container = await web(engine)
    with pytest.raises(NotADirectoryError, match="/etc/passwd"):
        await container.list_files("/etc/passwd")
    await env.aclose()


async def test_read_file() -> None:
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(
        tar_of(("passwd", "file", passwd)), {"name": "passwd", "size": 31, "mode": 420})})
    env, container = await web(engine)
    assert await container.read_file("/etc/passwd") == passwd
    assert engine.calls == [("GET", f"/containers/{ID}/archive", {"path": "/etc/passwd"})]
    await env.aclose()


async def test_read_file_of_a_directory_or_link() -> None:
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(
        ETC_TAR, {"name": "etc", "mode": DIR_MODE})})
    env, container = await web(engine)
    with pytest.raises(IsADirectoryError):
        await container.read_file("/etc")
    engine.routes[("GET", f"/containers/{ID}/archive")] = archive_answer(
        tar_of(("mtab", "symlink", "/proc/mounts")), {"name": "mtab", "mode": 134218239})
    with pytest.raises(FileNotFoundError):
        await container.read_file("/etc/mtab")
    await env.aclose()


async def test_get_archive_returns_tar_and_stat() -> None:
    stat = {"name": "etc", "size": 4096, "mode": DIR_MODE, "isDir": True}
    engine = engine_for({("GET", f"/containers/{ID}/archive"): archive_answer(ETC_TAR, stat)})
    env, container = await web(engine)
    archive, got = await container.get_archive("/etc")
    assert archive == ETC_TAR
    assert got == stat
    await env.aclose()


async def test_write_file_puts_a_one_file_tar() -> None:
    engine = engine_for({("PUT", f"/containers/{ID}/archive"): empty(200)})
    env, container = await web(engine)
    await container.write_file("/srv/app/config.toml", b"port = 8080\n", mode=0o600)
    assert engine.calls == [("PUT", f"/containers/{ID}/archive", {"path": "/srv/app"})]
    request = engine.requests[0]
    assert request.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(request.content)) as tar:
        [member] = tar.getmembers()
        assert (member.name, member.size, member.mode, member.isfile()) == (
            "config.toml", 12, 0o600, True)
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b"port = 8080\n"
    await env.aclose()


async def test_write_file_at_the_root() -> None:
    engine = engine_for({("PUT", f"/containers/{ID}/archive"): empty(200)})
    env, container = await web(engine)
    await container.write_file("/hello.txt", b"hi")
    assert engine.calls[0][2] == {"path": "/"}
    await env.aclose()


async def test_put_archive_sends_the_tar_without_its_record_padding() -> None:
    engine = engine_for({("PUT", f"/containers/{ID}/archive"): empty(200)})
    env, container = await web(engine)
    await container.put_archive("/etc", ETC_TAR)
    sent = engine.requests[0].content
    assert len(ETC_TAR) % tarfile.RECORDSIZE == 0 and len(sent) < len(ETC_TAR)
    assert sent == ETC_TAR[:len(sent)] and sent.endswith(bytes(1024))
    with tarfile.open(fileobj=io.BytesIO(sent)) as tar:
        assert [m.name for m in tar.getmembers()] == [
            "etc", "etc/group", "etc/hostname", "etc/mtab", "etc/ssl", "etc/ssl/certs",
            "etc/ssl/certs/ca.pem"]
    assert engine.calls[0][2] == {"path": "/etc"}
    await env.aclose()


def test_trimming_keeps_a_file_that_ends_in_zero_blocks() -> None:
    zeros = bytes(3 * 512)  # would look like end marker and padding to a naive trim
    archive = tar_of(("data.bin", "file", b"head" + zeros))
    trimmed = without_record_padding(archive)
    assert len(trimmed) == 512 + 2048 + 1024  # header, data blocks, end marker
    with tarfile.open(fileobj=io.BytesIO(trimmed)) as tar:
        member = tar.extractfile("data.bin")
        assert member is not None and member.read() == b"head" + zeros


def test_trimming_leaves_what_is_not_a_tar_or_has_no_padding() -> None:
    assert without_record_padding(b"not a tar at all") == b"not a tar at all"
    once = without_record_padding(ETC_TAR)
    assert without_record_padding(once) == once


def test_single_file_archive_has_no_record_padding() -> None:
    archive = single_file_archive("index.html", b"hello")
    assert len(archive) == 512 + 512 + 1024
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("index.html")
        assert member is not None and member.read() == b"hello"
