"""Containers through ``env.containers`` on a real Podman engine (Engine API 1.41)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
import socket
import tarfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, EngineAPIError, Environment, NotFound

pytestmark = pytest.mark.integration

BUSYBOX = "localhost/busybox:latest"
# A line every 0.1 s, numbered, forever.
TICKER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done"]


def _unique(prefix: str = "gp-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _log_text_until(container: Container, text: str, *, timeout: float = 10) -> str:
    """Poll the (non-follow) log until ``text`` shows up; return the whole log."""
    deadline = time.monotonic() + timeout
    while True:
        logs = str(await container.logs())
        if text in logs:
            return logs
        assert time.monotonic() < deadline, f"{text!r} not in {container.name}'s log: {logs!r}"
        await asyncio.sleep(0.05)


async def _state_until(container: Container, state: str, *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        await container.reload()
        if container.state == state:
            return
        assert time.monotonic() < deadline, f"{container.name} is {container.state}, not {state}"
        await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the example ---------------------------------------------------------------


async def test_public_example_runs_verbatim(engine_url: str,
                                            track_container: Callable[[str], None]) -> None:
    track_container("web")  # removed in teardown should an assertion fail halfway
    env = connect(engine_url)
    try:
        web = await env.containers.create(image="localhost/busybox:latest", name="web",
                                          command=["sh", "-c", "echo hi; sleep 3600"])
        await web.start()
        deadline = time.monotonic() + 10
        while "hi" not in str(logs := await web.logs(tail=10)):  # the echo may lag start
            assert time.monotonic() < deadline, f"no 'hi' in {logs!r}"
            await asyncio.sleep(0.05)
        assert logs[-1].text == "hi" and logs[-1].stream == "stdout"
        await web.stop(timeout=0)
        await web.reload()
        assert web.state == "exited"
        await web.remove(force=True)
        with pytest.raises(NotFound):
            await env.containers.get("web")
    finally:
        await env.aclose()


# -- list and get ----------------------------------------------------------------------


async def test_list_filters_by_label_status_and_name(env: Environment, make_container) -> None:
    tag = uuid.uuid4().hex[:8]
    label = f"gp.test.list={tag}"
    running = await make_container(labels={"gp.test.list": tag, "role": "running"})
    stopped = await make_container(labels={"gp.test.list": tag, "role": "created"})
    await running.start()

    listed = await env.containers.list(filters={"label": label})
    assert [c.id for c in listed] == [running.id]  # without all=True: running only
    assert listed[0].name == running.name
    assert listed[0].state == "running"
    assert listed[0].labels["role"] == "running"
    assert listed[0].environment == "a"

    everything = await env.containers.list(all=True, filters={"label": label})
    assert {c.id for c in everything} == {running.id, stopped.id}
    # Two label filters are ANDed.
    both = await env.containers.list(all=True, filters={"label": [label, "role=created"]})
    assert [c.id for c in both] == [stopped.id]

    created = await env.containers.list(all=True, filters={"label": label, "status": "created"})
    assert [c.id for c in created] == [stopped.id]
    assert created[0].state == "created"
    up = await env.containers.list(all=True, filters={"label": label, "status": "running"})
    assert [c.id for c in up] == [running.id]

    by_name = await env.containers.list(all=True, filters={"name": stopped.name})
    assert [c.name for c in by_name] == [stopped.name]
    assert await env.containers.list(all=True, filters={"name": _unique("gp-absent")}) == []


async def test_get_by_id_short_id_and_name(env: Environment, make_container) -> None:
    container = await make_container()
    by_id = await env.containers.get(container.id)
    by_short = await env.containers.get(container.short_id)
    by_name = await env.containers.get(container.name)
    assert by_id == by_short == by_name == container
    assert len(container.short_id) == 12 and container.id.startswith(container.short_id)
    assert by_name.name == container.name
    assert by_name.image in (BUSYBOX, "busybox:latest", "localhost/busybox")
    assert by_name.attrs["Config"]["Cmd"] == ["sleep", "300"]
    assert repr(by_name) == f"<Container: {container.name} @a>"


async def test_create_options_show_in_inspect(env: Environment, make_container, make_volume,
                                              tmp_path: Path) -> None:
    host_port = _free_port()
    volume = await make_volume()
    (tmp_path / "greeting.txt").write_text("from the host\n")
    container = await make_container(
        ports={"8080/tcp": ("127.0.0.1", host_port), 9090: None},
        env={"GP_MODE": "test", "GP_EMPTY": ""},
        labels={"gp.test": "create", "team": "core"},
        volumes=[f"{tmp_path}:/hostdir:ro", f"{volume.name}:/cache"],
        restart_policy="on-failure:3",
        memory="64m",
        cpus=0.5,
        working_dir="/tmp",
        hostname="gp-host",
    )
    attrs = container.attrs
    host = attrs["HostConfig"]
    assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1",
                                                 "HostPort": str(host_port)}]
    assert "9090/tcp" in host["PortBindings"]
    assert "GP_MODE=test" in attrs["Config"]["Env"]
    assert "GP_EMPTY=" in attrs["Config"]["Env"]
    assert container.labels["gp.test"] == "create" and container.labels["team"] == "core"
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert attrs["Config"]["WorkingDir"] == "/tmp"
    assert attrs["Config"]["Hostname"] == "gp-host"
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/hostdir"]["Type"] == "bind"
    assert mounts["/hostdir"]["Source"] == str(tmp_path)
    assert mounts["/hostdir"]["RW"] is False
    assert mounts["/cache"]["Type"] == "volume"
    assert mounts["/cache"]["Name"] == volume.name

    await container.start()
    await container.reload()
    assert container.state == "running"
    assert f"127.0.0.1:{host_port}->8080/tcp" in container.ports
    # The binds are live: the host file is readable, the read-only one refuses writes.
    seen = await container.exec(["cat", "/hostdir/greeting.txt"])
    assert seen.stdout == "from the host\n"
    refused = await container.exec(["sh", "-c", "echo x > /hostdir/new"])
    assert refused.exit_code != 0 and "Read-only" in refused.stderr
    wrote = await container.exec(["sh", "-c", "echo kept > /cache/file && cat /cache/file"])
    assert (wrote.exit_code, wrote.stdout) == (0, "kept\n")
    inside = await container.exec(["sh", "-c", "echo $GP_MODE; pwd; hostname"])
    assert inside.stdout == "test\n/tmp\ngp-host\n"


async def test_create_without_a_network(make_container) -> None:
    container = await make_container(network="none")
    assert container.attrs["HostConfig"]["NetworkMode"] == "none"
    await container.start()
    interfaces = await container.exec(["ls", "/sys/class/net"])
    assert interfaces.stdout.split() == ["lo"]


# -- lifecycle -------------------------------------------------------------------------


async def test_start_stop_restart(make_container) -> None:
    container = await make_container()
    assert container.state == "created"
    await container.start()
    await container.reload()
    assert container.state == "running"
    first_start = container.attrs["State"]["StartedAt"]
    await container.start()  # already running: a no-op, not an error
    await container.stop(timeout=0)
    await container.reload()
    assert container.state == "exited"
    await container.restart(timeout=0)
    await container.reload()
    assert container.state == "running"
    assert container.attrs["State"]["StartedAt"] != first_start


async def test_pause_and_unpause(make_container) -> None:
    container = await make_container(command=TICKER)
    await container.start()
    await container.pause()
    await container.reload()
    assert container.state == "paused"
    # Frozen: no line is written while paused.
    before = len(await container.logs())
    await asyncio.sleep(0.3)
    assert len(await container.logs()) == before
    await container.unpause()
    await container.reload()
    assert container.state == "running"
    await _log_text_until(container, f"line{before + 1}")


async def test_kill_with_a_signal(make_container) -> None:
    container = await make_container(command=[
        "sh", "-c", "trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.05; done"])
    await container.start()
    await _log_text_until(container, "ready")
    await container.kill(signal="SIGUSR1")
    await _log_text_until(container, "got USR1")
    await container.reload()
    assert container.state == "running"  # the trap handled it
    await container.kill()  # SIGKILL by default
    assert await container.wait(timeout=10) == 137
    await container.reload()
    assert container.state == "exited"
    assert container.attrs["State"]["ExitCode"] == 137


async def test_rename(env: Environment, make_container) -> None:
    container = await make_container()
    old = container.name
    new = _unique("gp-renamed")
    await container.rename(new)
    assert container.name == new  # attrs refreshed by rename
    assert (await env.containers.get(new)).id == container.id
    with pytest.raises(NotFound):
        await env.containers.get(old)


async def test_remove_running_needs_force_and_keeps_named_volumes(
        env: Environment, make_container, make_volume) -> None:
    volume = await make_volume()
    container = await make_container(volumes=[f"{volume.name}:/data"])
    await container.start()
    with pytest.raises(EngineAPIError) as refused:
        await container.remove()
    # Docker answers 409; Podman 4.3 answers 500 ("container state improper"), so the
    # error is a plain EngineAPIError, not Conflict. Its message says what to do.
    assert refused.value.status_code == 500
    assert "cannot be removed without force" in refused.value.message
    await container.remove(force=True, volumes=True)
    with pytest.raises(NotFound):
        await env.containers.get(container.id)
    # v=true removes anonymous volumes only; a named one stays.
    assert (await env.volumes.get(volume.name)).name == volume.name


async def test_wait_returns_the_exit_code(make_container) -> None:
    container = await make_container(command=["sh", "-c", "exit 7"])
    await container.start()
    assert await container.wait(timeout=20) == 7
    await container.reload()
    assert container.state == "exited"
    assert container.attrs["State"]["ExitCode"] == 7


async def test_top_lists_the_processes(make_container) -> None:
    container = await make_container(command=["sleep", "301"])
    await container.start()
    top = await container.top()
    assert top["Titles"], top
    assert "PID" in " ".join(top["Titles"])
    rows = [" ".join(row) for row in top["Processes"]]
    assert any("sleep 301" in row for row in rows), rows


# -- logs ------------------------------------------------------------------------------


async def test_logs_keep_stdout_and_stderr_apart(make_container) -> None:
    container = await make_container(
        command=["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf 'no newline'"])
    await container.start()
    assert await container.wait(timeout=20) == 0
    logs = await container.logs()
    assert logs.stdout == "out1\nout2\nno newline"
    assert logs.stderr == "err1"
    assert [(line.stream, line.text) for line in logs if line.stream == "stderr"] == [
        ("stderr", "err1")]
    only_out = await container.logs(stderr=False)
    assert {line.stream for line in only_out} == {"stdout"}
    assert [line.text for line in only_out] == ["out1", "out2", "no newline"]
    only_err = await container.logs(stdout=False)
    assert [(line.stream, line.text) for line in only_err] == [("stderr", "err1")]


async def test_logs_timestamps_and_tail(make_container) -> None:
    container = await make_container(command=["seq", "1", "20"])
    before = time.time()
    await container.start()
    assert await container.wait(timeout=20) == 0
    plain = await container.logs()
    assert [line.text for line in plain] == [str(n) for n in range(1, 21)]
    assert all(line.timestamp is None for line in plain)

    stamped = await container.logs(timestamps=True)
    assert [line.text for line in stamped] == [str(n) for n in range(1, 21)]
    for line in stamped:
        assert line.timestamp is not None
        when = datetime.fromisoformat(line.timestamp.replace("Z", "+00:00")).timestamp()
        assert before - 2 <= when <= time.time() + 2, line
        assert str(line) == f"{line.timestamp} {line.text}"

    tail = await container.logs(tail=5)
    assert [line.text for line in tail] == ["16", "17", "18", "19", "20"]
    assert [line.text for line in await container.logs(tail=0)] == []


async def test_logs_since_and_until(make_container) -> None:
    # "early", then "late" only once the test has taken the time between the two.
    container = await make_container(command=[
        "sh", "-c",
        "echo early; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo late; sleep 300"])
    await container.start()
    await _log_text_until(container, "early")
    await asyncio.sleep(0.1)
    middle = time.time()
    await asyncio.sleep(0.1)
    await container.write_file("/tmp/go", b"")
    await _log_text_until(container, "late")
    since = await container.logs(since=middle)
    assert [line.text for line in since] == ["late"]
    until = await container.logs(until=middle)
    assert [line.text for line in until] == ["early"]
    assert [line.text for line in await container.logs(since=middle - 3600)] == ["early",
                                                                                "late"]


async def test_follow_yields_lines_as_they_are_written(env: Environment,
                                                       make_container) -> None:
    container = await make_container(command=TICKER)
    await container.start()
    lines = []
    arrivals = []
    async with asyncio.timeout(15):
        async with contextlib.aclosing(container.logs(follow=True)) as stream:
            async for line in stream:
                lines.append(line)
                arrivals.append(time.monotonic())
                if len(lines) == 5:
                    break
    assert [line.text for line in lines] == [f"line{n}" for n in range(1, 6)]
    assert all(line.stream == "stdout" for line in lines)
    # The container never ends: these came while it ran, over ~0.4 s, not all at once.
    assert arrivals[-1] - arrivals[0] >= 0.2
    # The stream closed cleanly: the container still runs, the environment still works.
    await container.reload()
    assert container.state == "running"
    assert await env.ping()
    assert len(await container.logs(tail=3)) == 3


async def test_follow_ends_when_the_container_stops(make_container) -> None:
    container = await make_container(command=["sh", "-c", "echo one; sleep 0.5; echo two"])
    await container.start()
    async with asyncio.timeout(15):
        texts = [line.text async for line in container.logs(follow=True)]
    # Podman may cut a follow stream of a stopping container short (podman#21914); what
    # it sends is in order, and the non-follow read has everything.
    assert texts[:1] == ["one"] and set(texts) <= {"one", "two"}
    assert [line.text for line in await container.logs()] == ["one", "two"]


async def test_log_batches_group_lines(make_container) -> None:
    container = await make_container(command=["seq", "1", "500"])
    await container.start()
    assert await container.wait(timeout=20) == 0
    batches = [batch async for batch in container.log_batches()]
    assert [line.text for batch in batches for line in batch] == [str(n)
                                                                  for n in range(1, 501)]
    assert len(batches) < 500  # several lines per network read


async def test_tty_container_logs(make_container) -> None:
    container = await make_container(tty=True,
                                     command=["sh", "-c", "echo tty-out; echo tty-err >&2"])
    await container.start()
    assert await container.wait(timeout=20) == 0
    logs = await container.logs()
    # A TTY has one stream; the terminal ends lines with \r\n, and a line's text is the
    # line without its end, as for a non-TTY container.
    assert [(line.stream, line.text) for line in logs] == [("stdout", "tty-out"),
                                                          ("stdout", "tty-err")]


# -- stats -----------------------------------------------------------------------------


async def test_stats_one_sample(make_container) -> None:
    container = await make_container()
    await container.start()
    sample = await container.stats()
    assert sample.container == container.name
    assert sample.cpu_percent >= 0
    assert sample.memory_usage > 0
    assert sample.memory_limit >= sample.memory_usage
    assert 0 <= sample.memory_percent <= 100
    assert sample.pids >= 1
    assert sample.read


async def test_stats_of_a_busy_container(make_container) -> None:
    container = await make_container(command=["sh", "-c", "while :; do :; done"])
    await container.start()
    sample = await container.stats(cpu_window=0.5)
    assert sample.cpu_percent > 20, sample.cpu_percent


async def test_stats_stream(make_container) -> None:
    container = await make_container(command=["sh", "-c", "while :; do :; done"])
    await container.start()
    samples = []
    async with asyncio.timeout(15):  # Podman sends one sample every 5 s
        async with contextlib.aclosing(container.stats(stream=True)) as stream:
            async for sample in stream:
                samples.append(sample)
                if len(samples) == 2:
                    break
    assert len(samples) == 2
    assert all(s.container == container.name and s.memory_usage > 0 for s in samples)
    assert samples[0].read != samples[1].read
    # The second sample is measured against the first: the busy loop shows.
    assert samples[1].cpu_percent > 20, samples[1].cpu_percent


# -- exec ------------------------------------------------------------------------------


async def test_exec_output_and_exit_code(make_container) -> None:
    container = await make_container()
    await container.start()
    result = await container.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.output == "out\nerr\n"
    ok = await container.exec("echo hello")
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, "hello\n", "")


async def test_exec_output_is_exact(make_container) -> None:
    container = await make_container()
    await container.start()
    # Output is what the command wrote, byte for byte: no newline added at the end,
    # blank lines and carriage returns kept.
    result = await container.exec(["sh", "-c", "printf 'a\\n\\nb\\r\\nno newline'; "
                                               "printf 'err, no newline' >&2"])
    assert result.exit_code == 0
    assert result.stdout == "a\n\nb\r\nno newline"
    assert result.stderr == "err, no newline"


async def test_exec_with_env_and_workdir(make_container) -> None:
    container = await make_container()
    await container.start()
    result = await container.exec("echo $GP_GREETING; pwd", env={"GP_GREETING": "bonjour"},
                                  workdir="/etc")
    assert (result.exit_code, result.stdout) == (0, "bonjour\n/etc\n")
    as_nobody = await container.exec(["id", "-u"], user="nobody")
    assert as_nobody.stdout == "65534\n"


# -- status text -----------------------------------------------------------------------

# docker ps's forms (go-units durations); what Podman's listing writes, and what an
# inspect's Container.status must write too.
_DURATION = (r"(Less than a second|1 second|\d+ seconds|About a minute|\d+ minutes|"
             r"About an hour|\d+ hours|\d+ days|\d+ weeks|\d+ months|\d+ years)")


def _status_form(status: str) -> tuple[str, ...]:
    """The kind of a status text and its exit code: ("Up",), ("Exited", "3")..."""
    for pattern in (rf"(Up) {_DURATION}", rf"(Up) {_DURATION} \((Paused)\)",
                    rf"(Exited) \((\d+)\) {_DURATION} ago", r"(Created)"):
        match = re.fullmatch(pattern, status)
        if match:
            return tuple(group for group in match.groups() if not re.fullmatch(_DURATION, group))
    raise AssertionError(f"{status!r} is not in docker ps's form")


async def test_status_of_an_inspect_agrees_with_the_listing(env: Environment,
                                                            make_container) -> None:
    label = {"gp.test.status": uuid.uuid4().hex[:8]}
    running = await make_container(labels=label)
    exited = await make_container(command=["sh", "-c", "exit 3"], labels=label)
    paused = await make_container(labels=label)
    created = await make_container(labels=label)
    for container in (running, exited, paused):
        await container.start()
    await paused.pause()
    assert await exited.wait(timeout=20) == 3

    listed = {c.name: c.status for c in await env.containers.list(
        all=True, filters={"label": f"gp.test.status={label['gp.test.status']}"})}
    inspected = {c.name: (await env.containers.get(c.name)).status
                 for c in (running, exited, paused, created)}
    assert set(listed) == set(inspected)
    forms = {name: (_status_form(listed[name]), _status_form(inspected[name]))
             for name in listed}
    assert forms == {running.name: (("Up",), ("Up",)),
                     exited.name: (("Exited", "3"), ("Exited", "3")),
                     paused.name: (("Up", "Paused"), ("Up", "Paused")),
                     created.name: (("Created",), ("Created",))}
    # Seconds old: the durations agree too, bar a second boundary crossed in between.
    assert inspected[running.name] in (listed[running.name], "Up 1 second", "Up 2 seconds",
                                       "Up Less than a second")
    await paused.unpause()


# -- files -----------------------------------------------------------------------------


def _tar(entries: dict[str, bytes | None]) -> bytes:
    """A tar of ``{name: data}``; ``None`` makes a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = int(time.time())
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def test_write_file_then_read_file(make_container) -> None:
    container = await make_container()
    await container.start()
    data = bytes(range(256)) * 40
    await container.write_file("/tmp/blob.bin", data, mode=0o600)
    assert await container.read_file("/tmp/blob.bin") == data
    checked = await container.exec(["sh", "-c", "wc -c < /tmp/blob.bin; stat -c %a /tmp/blob.bin"])
    assert checked.stdout.split() == [str(len(data)), "600"]
    await container.write_file("/tmp/blob.bin", b"replaced")
    assert await container.read_file("/tmp/blob.bin") == b"replaced"
    with pytest.raises(NotFound):
        await container.read_file("/tmp/absent.txt")
    with pytest.raises(IsADirectoryError):
        await container.read_file("/tmp")


async def test_put_archive_and_list_files(make_container) -> None:
    container = await make_container()
    await container.start()
    await container.put_archive("/", _tar({"gpdir": None, "gpdir/sub": None,
                                           "gpdir/a.txt": b"alpha",
                                           "gpdir/sub/deep.txt": b"deep"}))
    await container.write_file("/gpdir/b.txt", b"bravo!", mode=0o600)
    entries = await container.list_files("/gpdir")
    assert [(e.name, e.kind) for e in entries] == [("sub", "dir"), ("a.txt", "file"),
                                                  ("b.txt", "file")]
    by_name = {e.name: e for e in entries}
    assert by_name["a.txt"].size == 5 and by_name["a.txt"].mode == 0o640
    assert by_name["b.txt"].size == 6 and by_name["b.txt"].mode == 0o600
    assert by_name["sub"].is_dir and by_name["sub"].path == "/gpdir/sub"
    assert by_name["a.txt"].path == "/gpdir/a.txt"
    assert [e.name for e in await container.list_files("/gpdir/sub")] == ["deep.txt"]
    with pytest.raises(NotADirectoryError):
        await container.list_files("/gpdir/a.txt")

    archive, path_stat = await container.get_archive("/gpdir")
    assert path_stat["name"] == "gpdir" and path_stat["isDir"] is True
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        assert {"gpdir/a.txt", "gpdir/b.txt", "gpdir/sub/deep.txt"} <= names
        member = tar.extractfile("gpdir/sub/deep.txt")
        assert member is not None and member.read() == b"deep"
    seen = await container.exec(["cat", "/gpdir/a.txt", "/gpdir/sub/deep.txt"])
    assert seen.stdout == "alphadeep"


async def _container_with_a_big_file(make_container, megabytes: int) -> Container:
    container = await make_container()
    await container.start()
    made = await container.exec(
        f"mkdir -p /big/sub && echo small > /big/a.txt && ln -s a.txt /big/link && "
        f"dd if=/dev/urandom of=/big/blob.bin bs=1048576 count={megabytes} 2>/dev/null")
    assert made.exit_code == 0, made.stderr
    return container


async def test_list_files_reads_headers_only(make_container) -> None:
    container = await _container_with_a_big_file(make_container, 16)
    tracemalloc.start()
    try:
        entries = await container.list_files("/big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(e.name, e.kind, e.size) for e in entries] == [
        ("sub", "dir", 0), ("a.txt", "file", 6), ("blob.bin", "file", 16 << 20),
        ("link", "symlink", 0)]
    assert peak < 4 << 20, f"{peak} bytes held to list a directory with a 16 MiB file"


async def test_list_files_of_a_big_file_is_refused_before_its_content(
        env: Environment, make_container) -> None:
    container = await _container_with_a_big_file(make_container, 16)
    tracemalloc.start()
    try:
        with pytest.raises(NotADirectoryError, match=r"^/big/blob\.bin is not a directory"):
            await container.list_files("/big/blob.bin")
        with pytest.raises(IsADirectoryError, match=r"^/big is a directory"):
            await container.read_file("/big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes held to refuse a 16 MiB file"
    # The connections those dropped half-read are not reused: the engine still answers.
    assert (await container.exec("echo alive")).stdout == "alive\n"
    assert [e.name for e in await container.list_files("/big/sub")] == []
    checked = await container.exec("md5sum /big/blob.bin")
    data = await container.read_file("/big/blob.bin")
    assert len(data) == 16 << 20
    assert hashlib.md5(data).hexdigest() == checked.stdout.split()[0]


async def test_list_files_of_the_root_agrees_with_stat_path(make_container) -> None:
    container = await make_container()
    await container.start()
    entries = await container.list_files("/")
    assert {"bin", "etc", "tmp", "usr"} <= {e.name for e in entries}
    for entry in entries:
        assert entry.path == f"/{entry.name}"
        stat = await container.stat_path(entry.path)
        assert (stat.name, stat.kind, stat.mode) == (entry.name, entry.kind, entry.mode)


async def test_stat_path(make_container) -> None:
    container = await _container_with_a_big_file(make_container, 1)
    blob = await container.stat_path("/big/blob.bin")
    assert (blob.name, blob.path, blob.kind, blob.size, blob.mode) == (
        "blob.bin", "/big/blob.bin", "file", 1 << 20, 0o644)
    assert abs(blob.mtime - time.time()) < 120
    big = await container.stat_path("/big/")
    assert (big.name, big.path, big.kind, big.size, big.is_dir) == ("big", "/big", "dir", 0, True)
    link = await container.stat_path("/big/link")
    assert (link.kind, link.link_target) == ("symlink", "/big/a.txt")  # resolved, absolute
    root = await container.stat_path("/")
    assert (root.name, root.kind) == ("/", "dir")
    tmp = await container.stat_path("/tmp")
    assert tmp.mode == 0o1777  # the sticky bit, from Go's mode bits


async def test_stat_path_of_a_missing_path_or_container_says_which(env: Environment,
                                                                   make_container) -> None:
    container = await make_container()
    await container.start()
    with pytest.raises(NotFound) as missing_path:
        await container.stat_path("/no/such/file")
    assert missing_path.value.message == "/no/such/file: no such file or directory"
    await container.remove(force=True)
    with pytest.raises(NotFound) as missing_container:
        await container.stat_path("/etc")
    assert "no such container" in missing_container.value.message
    assert missing_container.value.message.startswith("/etc: ")


# -- prune -----------------------------------------------------------------------------


async def test_prune_removes_a_stopped_container(env: Environment, make_container) -> None:
    tag = uuid.uuid4().hex[:8]
    stopped = await make_container(command=["true"], labels={"gp.test.prune": tag})
    running = await make_container(labels={"gp.test.prune": tag})
    await stopped.start()
    await running.start()
    assert await stopped.wait(timeout=20) == 0
    result = await env.containers.prune(filters={"label": f"gp.test.prune={tag}"})
    assert result["ContainersDeleted"] == [stopped.id]
    with pytest.raises(NotFound):
        await env.containers.get(stopped.id)
    assert (await env.containers.get(running.id)).state == "running"
