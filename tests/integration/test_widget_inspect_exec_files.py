"""``ContainerInspector``, ``ExecConsole`` and ``FileBrowser`` on a real Podman engine.

Headless: the widgets are driven as a frontend would (``click()``, the ``submit``
message Enter sends, ``FileUpload.value``) and checked through their state. Each test
closes its widgets and removes its containers (``make_container``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import html
import re
import socket

import pytest
from ghostpanel_widgets._container_inspector import MASK, ContainerInspector
from ghostpanel_widgets._exec_console import ExecConsole
from ghostpanel_widgets._file_browser import FileBrowser

from ghostpanel_kernel.engine import Container, Environment
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration





def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cells(table_html: str) -> list[str]:
    return [html.unescape(cell) for cell in re.findall(r"<code>(.*?)</code>", table_html,
                                                       flags=re.S)]


# -- ContainerInspector ----------------------------------------------------------------


async def test_inspector_shows_config_env_mounts_ports_and_masks_secrets(
        env: Environment, make_container, make_volume, shown) -> None:
    volume = await make_volume()
    port = _free_loopback_port()
    container = await make_container(
        env={"DB_PASSWORD": "hunter2-secret", "GREETING": "hello"},
        ports={"8080/tcp": ("127.0.0.1", port)}, volumes=[f"{volume.name}:/data:ro"],
        labels={"gp.test": "inspector"}, working_dir="/tmp", user="nobody",
        restart_policy="on-failure:3")
    inspector = await shown(ContainerInspector(env, container.name))

    assert inspector.status.message == ""
    assert container.name in inspector.title.value
    env_cells = _cells(inspector.env_view.value)
    assert ["GREETING", "hello"] == env_cells[env_cells.index("GREETING"):][:2]
    assert ["DB_PASSWORD", MASK] == env_cells[env_cells.index("DB_PASSWORD"):][:2]
    for view in (inspector.env_view, inspector.raw_view, inspector.config_view):
        assert "hunter2-secret" not in view.value
    assert f"DB_PASSWORD={MASK}" in html.unescape(inspector.raw_view.value)

    assert ["8080/tcp", "127.0.0.1", str(port)] == _cells(inspector.ports_view.value)
    assert ["volume", volume.name, "/data", "ro"] == _cells(inspector.mounts_view.value)[:4]
    config = _cells(inspector.config_view.value)
    for setting, value in [("Image", "localhost/busybox:latest"), ("Command", "sleep 300"),
                           ("Working dir", "/tmp"), ("User", "nobody"),
                           ("Restart policy", "on-failure:3"), ("State", "created"),
                           ("gp.test", "inspector")]:
        assert config[config.index(setting) + 1] == value, setting
    assert "No healthcheck configured." in inspector.health_view.value

    inspector.reveal_button.value = True  # the toggle a user clicks
    assert inspector.reveal_secrets
    assert ["DB_PASSWORD", "hunter2-secret"] == \
        _cells(inspector.env_view.value)[_cells(inspector.env_view.value)
                                         .index("DB_PASSWORD"):][:2]
    assert "hunter2-secret" in inspector.raw_view.value
    inspector.reveal_secrets = False
    assert "hunter2-secret" not in inspector.env_view.value + inspector.raw_view.value
    assert not inspector.reveal_button.value


async def test_inspector_health_tab_and_refresh(env: Environment, make_container,
                                                podman_engine: PodmanService, shown) -> None:
    container = await make_container(healthcheck={
        "Test": ["CMD-SHELL", "echo probe-says-no; exit 1"], "Interval": 3600 * 10**9,
        "Retries": 3})
    await container.start()
    inspector = await shown(ContainerInspector(env, container))
    assert "starting" in inspector.health_view.value
    assert "No check has run yet." in inspector.health_view.value

    # No systemd timers here: run the check the way its timer would.
    await asyncio.to_thread(podman_engine.podman, "healthcheck", "run", container.id,
                            check=False)
    inspector.refresh_button.click()
    await inspector.task
    health = inspector.health_view.value
    cells = _cells(health)
    assert cells[cells.index("Failing streak") + 1] == "1"
    assert "CMD-SHELL echo probe-says-no; exit 1" in html.unescape(health)
    assert "probe-says-no" in cells  # the last check's output
    assert cells[cells.index("probe-says-no") - 1] == "1"  # its exit code
    assert "running" in inspector.title.value


async def test_inspector_of_a_missing_container_says_so(env: Environment, shown) -> None:
    inspector = await shown(ContainerInspector(env, "gp-test-no-such-container"))
    assert inspector.status.level == "error"
    assert inspector.status.message.startswith(
        "Inspect gp-test-no-such-container failed: [404] ")
    assert "gp-test-no-such-container" in inspector.title.value
    assert inspector.env_view.value == ""


# -- ExecConsole -----------------------------------------------------------------------


async def test_exec_shows_stdout_stderr_and_a_nonzero_exit_code(
        env: Environment, make_container, shown) -> None:
    container = await make_container()
    await container.start()
    console = await shown(ExecConsole(env, container.name))

    result = await console.run("echo to-stdout; echo to-stderr >&2; exit 3")
    assert result is not None and result.exit_code == 3
    output = console.output.value
    assert re.search(r'<pre class="gp-stdout"[^>]*>to-stdout\n</pre>', output)
    assert re.search(r'<pre class="gp-stderr" style="color: #b00020;[^>]*>to-stderr\n</pre>',
                     output)
    assert 'data-exit-code="3"' in output and "exit code 3" in output
    assert console.status.level == "warning"
    assert console.status.message.endswith("exited with 3.")

    console.command.value = "cat /etc/hostname"
    console.command._handle_custom_msg({"event": "submit"}, [])  # Enter
    await console.task
    assert console.result is not None and console.result.exit_code == 0
    assert container.id[:12] in console.output.value
    assert console.status.level == "success"
    assert console.history == ["cat /etc/hostname",
                               "echo to-stdout; echo to-stderr >&2; exit 3"]
    assert console.command.value == ""

    console.history_list.value = "echo to-stdout; echo to-stderr >&2; exit 3"
    assert console.command.value == console.history_list.value  # picked, ready to edit
    console.rerun_button.click()
    await console.task
    assert console.result.exit_code == 3
    assert console.history[0] == "echo to-stdout; echo to-stderr >&2; exit 3"
    assert len(console.history) == 2


async def test_exec_history_keeps_the_latest_commands(env: Environment, make_container,
                                                      shown) -> None:
    container = await make_container()
    await container.start()
    console = await shown(ExecConsole(env, container, history_limit=3))
    for number in range(5):
        await console.run(f"echo {number}")
    assert console.history == ["echo 4", "echo 3", "echo 2"]


async def test_exec_in_a_stopped_container_is_an_error_in_the_widget(
        env: Environment, make_container, shown) -> None:
    container = await make_container()  # created, never started
    console = await shown(ExecConsole(env, container.name))
    assert await console.run("true") is None
    assert console.status.level == "error"
    # Docker answers 409, Podman 500; both say why.
    assert re.match(r"Run 'true' failed: \[(409|500)\] .*running", console.status.message)
    assert console.output.value == "" and console.history == []


# -- FileBrowser -----------------------------------------------------------------------


async def _container_with_files(make_container) -> Container:
    container = await make_container()
    await container.start()
    made = await container.exec("mkdir -p /gpdir/sub && printf alpha > /gpdir/a.txt && "
                                "printf deep > /gpdir/sub/deep.txt && ln -s sub /gpdir/link")
    assert made.exit_code == 0, made.stderr
    return container


async def test_file_browser_lists_navigates_and_downloads(env: Environment, make_container,
                                                         shown) -> None:
    container = await _container_with_files(make_container)
    data = bytes(range(256)) * 8
    await container.write_file("/gpdir/blob.bin", data, mode=0o600)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir"))

    assert browser.status.message == ""
    assert browser.path == "/gpdir"
    assert [b.description for b in browser.breadcrumb.children] == ["/", "gpdir"]
    rows = browser.listing.rows
    assert [row[:2] for row in rows] == [["sub/", "dir"], ["a.txt", "file"],
                                         ["blob.bin", "file"], ["link -> sub", "symlink"]]
    assert rows[1][2:4] == ["5 B", "-rw-r--r--"]
    assert rows[2][2:4] == ["2 KiB", "-rw-------"]
    assert rows[1][4].endswith(" UTC") and rows[1][4][:4] == str(datetime.date.today().year)

    browser.listing.value = "blob.bin"
    browser.download_button.click()
    await browser.task
    link = browser.download_view.value
    match = re.search(r'download="blob.bin" href="data:application/octet-stream;base64,'
                      r'([A-Za-z0-9+/=]+)"', link)
    assert match and base64.b64decode(match.group(1)) == data
    assert browser.status.level == "success"

    browser.listing.value = "sub"
    browser.open_button.click()  # a directory: in
    await browser.task
    assert browser.path == "/gpdir/sub"
    assert [row[0] for row in browser.listing.rows] == ["deep.txt"]
    assert browser.download_view.value == ""

    browser.up_button.click()
    await browser.task
    assert browser.path == "/gpdir"
    browser.listing.value = "link"
    browser.open_button.click()  # a symlink: to where it points
    await browser.task
    assert browser.path == "/gpdir/sub"

    browser.breadcrumb.children[0].click()  # "/"
    await browser.task
    assert browser.path == "/" and "gpdir/" in [row[0] for row in browser.listing.rows]

    browser.path_field.value = "/gpdir/sub"
    browser.path_field._handle_custom_msg({"event": "submit"}, [])  # Enter
    await browser.task
    assert browser.path == "/gpdir/sub"
    link = await browser.download_link("deep.txt")
    assert link is not None and base64.b64encode(b"deep").decode() in link


async def test_file_browser_refuses_downloads_over_its_limit(
        env: Environment, make_container, shown) -> None:
    container = await _container_with_files(make_container)
    await container.write_file("/gpdir/big.bin", b"x" * 3000)
    browser = await shown(FileBrowser(env, container, path="/gpdir",
                                      max_download_bytes=2048))
    assert await browser.download_link("big.bin") is None
    assert browser.status.level == "error"
    assert browser.status.message == (
        "Download /gpdir/big.bin failed: big.bin is 2.93 KiB: downloads from this browser "
        "stop at 2 KiB; copy it with `podman cp "
        f"{container.name}:/gpdir/big.bin .` or Container.read_file() instead")
    assert browser.download_view.value == ""
    assert await browser.download_link("sub") is None
    assert "is a directory" in browser.status.message


async def test_upload_writes_into_the_directory_shown(env: Environment, make_container,
                                                      shown) -> None:
    container = await _container_with_files(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir/sub"))

    assert await browser.upload("notes.txt", b"uploaded\n") is True
    assert await container.read_file("/gpdir/sub/notes.txt") == b"uploaded\n"
    assert [row[0] for row in browser.listing.rows] == ["deep.txt", "notes.txt"]
    assert browser.listing.value == "notes.txt"
    assert browser.status.message == "Uploaded notes.txt (9 B) to /gpdir/sub."

    # The way the browser's file picker hands a file over.
    browser.uploader.value = ({"name": "picked.bin", "type": "application/octet-stream",
                               "size": 3, "content": memoryview(b"\x00\x01\x02"),
                               "last_modified": datetime.datetime.now(datetime.UTC)},)
    await browser.task
    assert await container.read_file("/gpdir/sub/picked.bin") == b"\x00\x01\x02"
    assert browser.uploader.value == ()
    assert "picked.bin" in [row[0] for row in browser.listing.rows]

    assert await browser.upload("../escape.txt", b"no") is False
    assert browser.status.message == "Upload ../escape.txt failed: '../escape.txt' is not a " \
                                     "file name"


async def test_opening_a_missing_path_keeps_the_listing(env: Environment, make_container,
                                                        shown) -> None:
    container = await _container_with_files(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir"))
    rows = browser.listing.rows

    assert await browser.navigate("/gpdir/no-such-dir") is None
    assert browser.status.level == "error"
    assert browser.status.message.startswith("Open /gpdir/no-such-dir failed: [404] ")
    assert browser.path == "/gpdir" and browser.listing.rows == rows
    assert [b.description for b in browser.breadcrumb.children] == ["/", "gpdir"]

    assert await browser.navigate("a.txt") is None  # a file is not a directory
    assert browser.status.message == ("Open /gpdir/a.txt failed: /gpdir/a.txt is not a "
                                      f"directory in {container.name}")
    assert browser.path == "/gpdir" and browser.listing.rows == rows


async def test_a_file_browser_on_a_missing_container(env: Environment, shown) -> None:
    browser = await shown(FileBrowser(env, "gp-test-no-such-container"))
    assert browser.status.level == "error"
    assert "[404]" in browser.status.message
    assert browser.listing.rows == []
