"""``LogStream`` without a browser, against real Podman engines.

Containers write known lines; the widget follows them for real. What it holds is read
through ``.lines`` and ``visible_lines()``, what it shows through its HTML view, summary
and status line; controls are driven through their ipywidgets ``value`` (what a click in
the browser becomes on the kernel side).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._log_buffer import normalise_timestamp
from ghostpanel_widgets._log_stream import LogStream
from ghostpanel_widgets._targets import container_targets

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from tests.integration.waiting import until as wait_until
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

# One numbered line every 50 ms, forever; ends at once on SIGTERM.
CHATTY = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo tick $i; "
          "sleep 0.05; done"]
HOLD = "trap 'exit 0' TERM; while :; do sleep 0.2; done"


def script(text: str) -> list[str]:
    """``text`` run by sh, then the container idles (so that it keeps running)."""
    return ["sh", "-c", f"{text}; {HOLD}"]


# This widget waits on the engine's streams and samples: a longer default wait.
until = functools.partial(wait_until, timeout=15.0)


def texts(entries: list[Any]) -> list[str]:
    return [entry.text for entry in entries]


def ticks(widget: LogStream) -> list[int]:
    return [int(entry.text.split()[1]) for entry in widget.lines
            if entry.text.startswith("tick ")]


def view_rows(widget: LogStream) -> list[str]:
    """The rendered lines, as the browser would show their HTML."""
    return re.findall(r'<div class="gp-l(?: gp-e)?"[^>]*>.*?</div>', widget.view.value)


@pytest.fixture
async def streams() -> AsyncIterator[Callable[..., LogStream]]:
    """``streams(target, containers, **options)``: a LogStream, closed (its reader tasks
    ended and their connections released) after the test."""
    made: list[LogStream] = []

    def make(*args: Any, **options: Any) -> LogStream:
        widget = LogStream(*args, **options)
        made.append(widget)
        return widget

    yield make
    for widget in made:
        async with asyncio.timeout(10):  # readers that do not end fail the test, not hang it
            await widget.aclose()
        assert all(task.done() for task in widget.tasks)


# -- following -----------------------------------------------------------------------


async def test_lines_of_a_chatty_container_appear_while_following(
        env: Environment, make_container, streams) -> None:
    chatty = await make_container(command=CHATTY)
    await chatty.start()

    logs = streams(env, chatty.name, tail=0)
    await logs.start()
    assert logs.status.level == "info" and f"Following {chatty.name}" in logs.status.message

    await until(lambda: len(ticks(logs)) >= 10, what="ten lines followed")
    seen = ticks(logs)
    assert seen == list(range(seen[0], seen[0] + len(seen)))  # in order, none lost
    # New lines keep coming, and the view shows the newest of them.
    await until(lambda: ticks(logs)[-1] >= seen[-1] + 5, what="five more lines")
    await until(lambda: f"tick {ticks(logs)[-1]}</div>" in logs.view.value,
                timeout=2, what="the newest line rendered")
    assert all(entry.stream == "stdout" and entry.container == chatty.name
               and entry.environment == "a" for entry in logs.lines)
    assert "lines held" in logs.summary.value


async def test_two_containers_are_merged_in_time_order(
        env: Environment, make_container, streams) -> None:
    # Lines 1.2 s apart, alternating between the containers: Podman stamps lines to the
    # second, and with more than a second between them the stamps order them for sure.
    first = await make_container(command=script("echo a1; sleep 2.4; echo a2"))
    second = await make_container(command=script("sleep 1.2; echo b1; sleep 2.4; echo b2"))
    await first.start()
    await second.start()
    await asyncio.sleep(4.2)

    # Both logs are read after the fact: each arrives as one block, and only a merge
    # by time can interleave them.
    logs = streams(env, [first.name, second.name], tail=10)
    await logs.start()
    await until(lambda: len(logs.lines) == 4, what="four lines")
    assert texts(logs.lines) == ["a1", "b1", "a2", "b2"]
    assert [entry.container for entry in logs.lines] == [first.name, second.name] * 2
    stamps = [entry.time for entry in logs.lines]
    assert stamps == sorted(stamps)

    # The view has a container column, one colour per container.
    logs.render()
    rows = view_rows(logs)
    assert len(rows) == 4
    assert f">{first.name}</span> a1</div>" in rows[0]
    assert f">{second.name}</span> b1</div>" in rows[1]
    assert "Following" in logs.status.message
    download = logs.download_text().splitlines()
    assert [line.split(" ", 3)[1:] for line in download] == [
        [first.name, "stdout", "a1"], [second.name, "stdout", "b1"],
        [first.name, "stdout", "a2"], [second.name, "stdout", "b2"]]


async def test_live_lines_of_two_containers_interleave(
        env: Environment, make_container, streams) -> None:
    first = await make_container(command=script(
        "for i in 1 2 3; do echo a$i; sleep 1.1; done"))
    second = await make_container(command=script(
        "sleep 0.55; for i in 1 2 3; do echo b$i; sleep 1.1; done"))
    logs = streams(env, [first.name, second.name], tail=0)
    await logs.start()
    await first.start()
    await second.start()
    await until(lambda: len(logs.lines) == 6, what="six lines")
    stamps = [entry.time for entry in logs.lines]
    assert stamps == sorted(stamps)
    assert sorted(texts(logs.lines)) == ["a1", "a2", "a3", "b1", "b2", "b3"]
    # Each container's own lines stay in their order.
    assert [t for t in texts(logs.lines) if t[0] == "a"] == ["a1", "a2", "a3"]
    assert [t for t in texts(logs.lines) if t[0] == "b"] == ["b1", "b2", "b3"]


async def test_stderr_lines_are_marked_and_selectable(
        env: Environment, make_container, streams) -> None:
    box = await make_container(command=script("echo out one; echo err one >&2; "
                                              "echo out two"))
    await box.start()
    logs = streams(env, box.name)
    await logs.start()
    await until(lambda: len(logs.lines) == 3, what="three lines")

    by_text = {entry.text: entry.stream for entry in logs.lines}
    assert by_text == {"out one": "stdout", "err one": "stderr", "out two": "stdout"}
    logs.render()
    rows = view_rows(logs)
    assert len(rows) == 3
    error_rows = [row for row in rows if 'data-stream="stderr"' in row]
    assert len(error_rows) == 1 and "err one" in error_rows[0]
    assert 'class="gp-l gp-e"' in error_rows[0]  # shown in red (.gp-e)
    assert "color: #b00020" in logs.view.value

    logs.stream_picker.value = "stderr"
    assert logs.stream == "stderr"
    assert texts(logs.visible_lines()) == ["err one"]
    assert len(view_rows(logs)) == 1
    assert logs.download_text().endswith(" stderr err one\n")
    logs.stream = "stdout"
    assert texts(logs.visible_lines()) == ["out one", "out two"]


# -- filter --------------------------------------------------------------------------

ACCESS_LOG = ("echo 'GET /index.html 200'; echo 'GET /missing 404'; "
              "echo 'POST /login 500'; echo 'get /lower 200'; "
              "echo '<b>not bold</b> & more'")


async def test_text_and_regex_filters_narrow_the_lines_and_mark_matches(
        env: Environment, make_container, streams) -> None:
    web = await make_container(command=script(ACCESS_LOG))
    await web.start()
    logs = streams(env, web.name)
    await logs.start()
    await until(lambda: len(logs.lines) == 5, what="five lines")
    logs.render()
    # Text is escaped, never interpreted as HTML.
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; more" in logs.view.value
    assert "<b>not bold</b>" not in logs.view.value

    # Plain text, case-insensitive by default.
    assert logs.set_filter("GET")
    assert texts(logs.visible_lines()) == ["GET /index.html 200", "GET /missing 404",
                                           "get /lower 200"]
    rows = view_rows(logs)
    assert len(rows) == 3
    assert all("<mark>GET</mark>" in row or "<mark>get</mark>" in row for row in rows)
    assert "that pass the filter" in logs.summary.value
    assert len(logs.lines) == 5  # filtering hides, never drops

    # Match case.
    assert logs.set_filter("GET", case_sensitive=True)
    assert len(logs.visible_lines()) == 2
    # Regex metacharacters are plain text unless regex is on.
    assert logs.set_filter(".html")
    assert texts(logs.visible_lines()) == ["GET /index.html 200"]
    assert logs.set_filter(r" [45]\d\d$", regex=True)
    assert texts(logs.visible_lines()) == ["GET /missing 404", "POST /login 500"]
    assert "<mark> 404</mark>" in logs.view.value
    assert "<mark> 500</mark>" in logs.view.value
    # A filter that nothing passes says so.
    assert logs.set_filter("DELETE")
    assert logs.visible_lines() == []
    assert "No line passes the filter" in logs.view.value
    # Typing in the box works like set_filter.
    logs.case_box.value = False
    logs.regex_box.value = False
    logs.filter_field.value = "post"
    assert texts(logs.visible_lines()) == ["POST /login 500"]
    assert logs.active_filter == ("post", False, False)
    assert logs.set_filter("")
    assert len(logs.visible_lines()) == 5


async def test_an_invalid_regex_is_refused_and_the_previous_filter_stays(
        env: Environment, make_container, streams) -> None:
    web = await make_container(command=script(ACCESS_LOG))
    await web.start()
    logs = streams(env, web.name)
    await logs.start()
    await until(lambda: len(logs.lines) == 5, what="five lines")
    assert logs.set_filter("GET", case_sensitive=True)
    before_view = logs.view.value
    before = logs.visible_lines()

    assert logs.set_filter("(", regex=True) is False
    assert logs.status.level == "error"
    assert "Invalid regular expression '('" in logs.status.message
    assert "missing )" in logs.status.message
    assert "previous" in logs.status.message
    # The old filter is still in force; nothing is lost; the typed text stays to fix.
    assert logs.active_filter == ("GET", False, True)
    assert logs.visible_lines() == before
    assert logs.view.value == before_view
    assert len(logs.lines) == 5
    assert logs.filter_field.value == "("

    # The same through the controls, as typed in the browser.
    logs.filter_field.value = "[a-"
    assert logs.status.level == "error" and "'[a-'" in logs.status.message
    assert logs.active_filter == ("GET", False, True)
    # Fixing it clears the error.
    logs.filter_field.value = "[A-Z]+ /login"
    assert logs.status.level != "error"
    assert texts(logs.visible_lines()) == ["POST /login 500"]


# -- pause, buffer, clear, download --------------------------------------------------


async def test_pause_freezes_the_view_while_lines_still_arrive(
        env: Environment, make_container, streams) -> None:
    chatty = await make_container(command=CHATTY)
    await chatty.start()
    logs = streams(env, chatty.name, tail=0, refresh=0.05)
    await logs.start()
    await until(lambda: len(logs.lines) >= 5, what="first lines")

    logs.pause_button.value = True  # the Pause button, pressed
    assert logs.paused and logs.pause_button.description == "Resume"
    frozen = logs.view.value
    held = len(logs.lines)
    await until(lambda: len(logs.lines) >= held + 10, what="lines while paused")
    await asyncio.sleep(0.2)  # several refresh periods
    assert logs.view.value == frozen
    assert "paused" in logs.summary.value
    assert re.search(r"(\d+) new lines? not shown", logs.summary.value)

    logs.paused = False
    assert logs.view.value != frozen
    assert f"tick {ticks(logs)[-1]}</div>" in logs.view.value
    assert "paused" not in logs.summary.value


async def test_the_buffer_keeps_only_the_newest_lines(
        env: Environment, make_container, streams) -> None:
    counter = await make_container(command=script("seq 1 500"))
    await counter.start()
    await asyncio.sleep(0.5)
    logs = streams(env, counter.name, tail=1000, buffer_lines=100, view_lines=40)
    await logs.start()
    await until(lambda: logs.lines and logs.lines[-1].text == "500", what="line 500")
    assert texts(logs.lines) == [str(n) for n in range(401, 501)]
    logs.render()
    rows = view_rows(logs)
    assert len(rows) == 40
    assert rows[0].endswith("</span> 461</div>") and rows[-1].endswith("</span> 500</div>")

    # A smaller buffer keeps the newest; clear forgets everything read so far.
    logs.buffer_lines = 10
    assert texts(logs.lines) == [str(n) for n in range(491, 501)]
    logs.clear_button.click()
    assert logs.lines == [] and "No log lines yet" in logs.view.value
    await asyncio.sleep(0.3)
    assert logs.lines == []  # following goes on, nothing is read twice


async def test_download_link_holds_the_filtered_lines(
        env: Environment, make_container, streams) -> None:
    web = await make_container(command=script(ACCESS_LOG))
    await web.start()
    logs = streams(env, web.name, tail=100)
    await logs.start()
    await until(lambda: len(logs.lines) == 5, what="five lines")
    assert logs.set_filter("/l")

    text = logs.download_text()
    assert [line.split(" ", 1)[1] for line in text.splitlines()] == [
        "stdout POST /login 500", "stdout get /lower 200"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line)
               for line in text.splitlines())
    assert logs.download_text(filtered=False).count("\n") == 5

    logs.download_button.click()
    link = logs.download_link.value
    assert f'download="logs-{web.name}-' in link
    encoded = re.search(r'href="data:text/plain;charset=utf-8;base64,([^"]+)"', link)
    assert encoded is not None
    assert base64.b64decode(encoded.group(1)).decode() == text
    assert "(2 lines" in link


# -- follow off and on, stopped containers, errors -----------------------------------


async def test_follow_off_reads_once_and_follow_on_resumes_without_doubles(
        env: Environment, make_container, streams) -> None:
    chatty = await make_container(command=CHATTY)
    await chatty.start()
    await asyncio.sleep(0.6)
    logs = streams(env, chatty.name, tail=1000, follow=False)
    await logs.start()
    await until(lambda: all(task.done() for task in logs.tasks), what="the read to end")
    assert "follow is off" in logs.status.message
    read = ticks(logs)
    assert read[0] == 1 and read == list(range(1, len(read) + 1))
    await asyncio.sleep(0.5)
    assert ticks(logs) == read  # not following: nothing more

    logs.follow_toggle.value = True  # the Follow button
    await until(lambda: ticks(logs)[-1] >= read[-1] + 20, what="lines after follow on")
    resumed = ticks(logs)
    assert resumed == list(range(1, len(resumed) + 1))  # nothing lost, nothing twice


async def test_a_stopped_container_is_read_and_watched(
        env: Environment, make_container, streams) -> None:
    done = await make_container(command=["sh", "-c", "echo first; echo second >&2"])
    await done.start()
    assert await done.wait(timeout=20) == 0
    logs = streams(env, done.name)
    await logs.start()
    await until(lambda: len(logs.lines) == 2, what="both lines")
    assert [(e.stream, e.text) for e in logs.lines] == [("stdout", "first"),
                                                        ("stderr", "second")]
    await until(lambda: "is exited" in logs.status.message, what="the exited state")
    assert logs.status.level == "info"

    # It runs again: the new lines follow the old ones, none doubled.
    await done.start()
    await until(lambda: len(logs.lines) == 4, what="the second run's lines")
    await asyncio.sleep(0.5)
    assert texts(logs.lines) == ["first", "second", "first", "second"]


async def test_a_new_tail_reads_the_log_again(
        env: Environment, make_container, streams) -> None:
    done = await make_container(command=["seq", "1", "8"])
    await done.start()
    assert await done.wait(timeout=20) == 0
    logs = streams(env, done.name, tail=2)
    await logs.start()
    await until(lambda: texts(logs.lines) == ["7", "8"], what="the last two lines")
    logs.tail_field.value = 5  # typed in the tail box
    assert logs.tail == 5
    await until(lambda: texts(logs.lines) == ["4", "5", "6", "7", "8"],
                what="the last five lines, once each")
    await asyncio.sleep(0.3)
    assert texts(logs.lines) == ["4", "5", "6", "7", "8"]


async def test_a_missing_container_is_said_in_the_status_line(
        env: Environment, streams) -> None:
    logs = streams(env, "gp-test-no-such-container")
    await logs.start()
    assert logs.status.level == "error"
    assert "gp-test-no-such-container on a: no such container" in logs.status.message
    assert "retrying" in logs.status.message
    assert logs.lines == []


async def test_an_engine_that_goes_away_is_said_and_followed_again_when_back(
        extra_podman_engine: Callable[..., PodmanService], streams) -> None:
    engine = extra_podman_engine()
    async with connect(engine.url, name="doomed") as env:
        chatty = await env.containers.create(image=BUSYBOX_REFERENCE, name="gp-chatty",
                                             command=CHATTY)
        await chatty.start()
        logs = streams(env, chatty.name, tail=0)
        try:
            await logs.start()
            await until(lambda: len(logs.lines) >= 5, what="first lines")

            await asyncio.to_thread(engine.stop)
            await until(lambda: logs.status.level == "error", what="the error shown")
            assert "gp-chatty on doomed" in logs.status.message
            assert str(engine.socket_path) in logs.status.message
            assert "retrying" in logs.status.message
            held = len(logs.lines)
            await asyncio.sleep(1.0)
            assert len(logs.lines) >= held  # nothing lost while it is away

            await asyncio.to_thread(engine.start)
            await until(lambda: logs.status.level != "error", timeout=20,
                        what="the recovery shown")
            assert "Reconnected to gp-chatty" in logs.status.message
            last = ticks(logs)[-1]
            await until(lambda: ticks(logs)[-1] >= last + 10, what="lines after recovery")
            # The lines written while the engine was away were read back from the log,
            # and none of those already held came twice.
            seen = ticks(logs)
            assert seen == list(range(seen[0], seen[0] + len(seen)))
        finally:
            await logs.aclose()


# -- arguments -----------------------------------------------------------------------


async def test_targets_in_every_shape(env: Environment, env_b: Environment) -> None:
    assert container_targets(env, "web") == [(env, "web")]
    assert container_targets(env, ["web", "db", "web"]) == [(env, "web"), (env, "db")]
    assert container_targets([(env, "web"), (env_b, "web")]) == [(env, "web"),
                                                                  (env_b, "web")]
    with pytest.raises(TypeError, match="name the containers"):
        container_targets(env)
    with pytest.raises(TypeError, match="not both"):
        container_targets([(env, "web")], "db")
    with pytest.raises(TypeError, match="not the string"):
        container_targets("web")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no container"):
        container_targets(env, [])
    with pytest.raises(ValueError, match="non-empty"):
        container_targets(env, [""])
    twin = connect(env.url, name="a")
    try:
        with pytest.raises(ValueError, match="both named 'a'"):
            container_targets([(env, "web"), (twin, "db")])
    finally:
        await twin.aclose()


async def test_containers_on_two_engines_are_labelled_by_environment(
        env: Environment, env_b: Environment, make_container, make_container_b,
        streams) -> None:
    here = await make_container(command=script("echo from-a"))
    there = await make_container_b(command=script("sleep 1.1; echo from-b"))
    await here.start()
    await there.start()
    logs = streams([(env, here.name), (env_b, there.name)])
    assert logs.containers == [f"a/{here.name}", f"b/{there.name}"]
    await logs.start()
    await until(lambda: len(logs.lines) == 2, what="a line from each engine")
    assert [(e.environment, e.text) for e in logs.lines] == [("a", "from-a"),
                                                             ("b", "from-b")]
    logs.render()
    assert f">a/{here.name}</span> from-a" in logs.view.value
    assert f">b/{there.name}</span> from-b" in logs.view.value


def test_timestamps_are_normalised_to_sort_as_text() -> None:
    docker_style = ["2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.25Z",
                    "2024-05-01T10:00:00Z", "2024-05-01T12:00:00.75+02:00"]
    normalised = [normalise_timestamp(stamp) for stamp in docker_style]
    assert normalised == ["2024-05-01T10:00:00.500000000Z", "2024-05-01T10:00:00.250000000Z",
                          "2024-05-01T10:00:00.000000000Z", "2024-05-01T10:00:00.750000000Z"]
    assert sorted(normalised) == [normalised[2], normalised[1], normalised[0], normalised[3]]
    # As the engines write them they do not sort: "00Z" comes after "00.5Z" ("Z" > "."),
    # and the +02:00 stamp (10:00:00.75 UTC) after all of them.
    assert sorted(docker_style) == [docker_style[1], docker_style[0], docker_style[2],
                                    docker_style[3]]
    assert len(normalise_timestamp(None)) == 30
