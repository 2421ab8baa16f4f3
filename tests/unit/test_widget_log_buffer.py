"""``LogStream``'s buffer alone: merge by time, bounds, resumed reads, filters, text.

No widget and no engine here: :mod:`ghostpanel_widgets._log_buffer` imports neither
ipywidgets nor Panel, and these tests check that too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable

import pytest
from ghostpanel_widgets._log_buffer import (
    MAX_LINE_CHARS,
    LineFilter,
    LogBuffer,
    LogEntry,
    ReadPosition,
    as_text,
    line_test,
    normalise_timestamp,
    shown_time,
)

from ghostpanel_kernel.engine import LogLine


def entry(time: str, text: str, *, container: str = "web",
          stream: str = "stdout") -> LogEntry:
    return LogEntry(normalise_timestamp(time), "laptop", container, stream, text)


def texts(entries: Iterable[LogEntry]) -> list[str]:
    return [e.text for e in entries]


def test_the_buffer_module_imports_without_ipywidgets() -> None:
    code = ("import sys, ghostpanel_widgets._log_buffer, ghostpanel_widgets._follower; "
            "print(sorted(m for m in ('ipywidgets', 'panel', 'bokeh') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


# -- merging -------------------------------------------------------------------------


def test_a_container_behind_another_is_merged_in_by_time() -> None:
    buffer = LogBuffer(100)
    buffer.insert([entry("2024-05-01T10:00:01Z", "web 1"),
                   entry("2024-05-01T10:00:03Z", "web 3")])
    buffer.insert([entry("2024-05-01T10:00:02Z", "db 2", container="db"),
                   entry("2024-05-01T10:00:04Z", "db 4", container="db")])
    assert texts(buffer) == ["web 1", "db 2", "web 3", "db 4"]


def test_lines_of_one_instant_keep_their_arrival_order() -> None:
    buffer = LogBuffer(100)
    buffer.insert([entry("2024-05-01T10:00:01Z", "a"), entry("2024-05-01T10:00:02Z", "b")])
    buffer.insert([entry("2024-05-01T10:00:01Z", "c", container="db"),
                   entry("2024-05-01T10:00:02Z", "d", container="db")])
    assert texts(buffer) == ["a", "c", "b", "d"]


def test_engine_stamps_of_different_precision_sort_as_times() -> None:
    # As text ".5Z" sorts after ".25Z"; normalised, 10:00:00 (Podman) comes first.
    buffer = LogBuffer(100)
    buffer.insert([entry("2024-05-01T10:00:00.5Z", "half")])
    buffer.insert([entry("2024-05-01T10:00:00.25Z", "quarter", container="db")])
    buffer.insert([entry("2024-05-01T12:00:00+02:00", "zero, as an offset", container="x")])
    assert texts(buffer) == ["zero, as an offset", "quarter", "half"]


def test_the_buffer_keeps_the_newest_lines_and_can_shrink() -> None:
    buffer = LogBuffer(3)
    buffer.insert([entry(f"2024-05-01T10:00:0{i}Z", str(i)) for i in range(5)])
    assert texts(buffer) == ["2", "3", "4"]
    buffer.maxlen = 2
    assert (buffer.maxlen, texts(buffer)) == (2, ["3", "4"])
    buffer.maxlen = 0  # at least one line
    assert (buffer.maxlen, texts(buffer)) == (1, ["4"])
    buffer.clear()
    assert len(buffer) == 0


def test_newest_reads_only_the_lines_it_needs_and_keeps_their_order() -> None:
    buffer = LogBuffer(100)
    buffer.insert([entry(f"2024-05-01T10:00:0{i}Z", f"{'err' if i % 2 else 'ok'} {i}")
                   for i in range(8)])
    errors = line_test(LineFilter("err").pattern(), "all")
    assert texts(buffer.newest(errors, 2)) == ["err 5", "err 7"]
    assert texts(buffer.matching(errors)) == ["err 1", "err 3", "err 5", "err 7"]


# -- reading positions ---------------------------------------------------------------


def test_a_first_read_asks_for_the_tail_then_for_what_came_since() -> None:
    position = ReadPosition("laptop", "web")
    assert position.next_read(tail=50) == {"timestamps": True, "tail": 50}
    # Nothing came: since the first read began, not tail (it would drop new lines).
    since = position.next_read(tail=50)
    assert set(since) == {"timestamps", "since"}
    assert float(since["since"]) == pytest.approx(position.first_read)
    position.take([LogLine("stdout", "a", "2024-05-01T10:00:00.5Z")])
    assert position.next_read(tail=50)["since"] == "2024-05-01T10:00:00.5Z"


def test_a_resumed_read_skips_exactly_the_lines_already_held() -> None:
    position = ReadPosition("laptop", "web")
    position.next_read(tail=10)
    stamp = "2024-05-01T10:00:00Z"  # Podman: whole seconds, so lines share stamps
    first = position.take([LogLine("stdout", "old", "2024-05-01T09:59:59Z"),
                           LogLine("stdout", "a", stamp), LogLine("stdout", "b", stamp)])
    assert texts(first) == ["old", "a", "b"]
    position.next_read(tail=10)  # since=stamp: the engine sends a and b again
    again = position.take([LogLine("stdout", "a", stamp), LogLine("stdout", "b", stamp),
                           LogLine("stdout", "c", stamp),
                           LogLine("stdout", "d", "2024-05-01T10:00:01Z")])
    assert texts(again) == ["c", "d"]
    position.stop_resuming()
    assert texts(position.take([LogLine("stdout", "e", stamp)])) == ["e"]


def test_a_reset_position_reads_the_tail_again() -> None:
    position = ReadPosition("laptop", "web")
    position.next_read(tail=10)
    position.take([LogLine("stdout", "a", "2024-05-01T10:00:00Z")])
    position.next_read(tail=10)  # resuming...
    position.reset()
    assert position.next_read(tail=7) == {"timestamps": True, "tail": 7}
    assert texts(position.take([LogLine("stdout", "a", "2024-05-01T10:00:00Z")])) == ["a"]


def test_entries_carry_where_they_come_from_and_long_lines_are_cut() -> None:
    position = ReadPosition("laptop", "web")
    long = "x" * (MAX_LINE_CHARS + 10)
    [cut, plain] = position.take([LogLine("stderr", long, "2024-05-01T10:00:00Z"),
                                  LogLine("stdout", "hi", None)])
    assert cut.text == f"{'x' * MAX_LINE_CHARS} [... 10 characters cut]"
    assert (cut.environment, cut.container, cut.stream) == ("laptop", "web", "stderr")
    assert cut.time == "2024-05-01T10:00:00.000000000Z"
    assert len(plain.time) == len(cut.time) and plain.time > cut.time  # now, normalised


def test_shown_time_has_milliseconds_only_when_the_engine_gave_them() -> None:
    assert shown_time(normalise_timestamp("2024-05-01T10:00:00.0123Z")) == "10:00:00.012"
    assert shown_time(normalise_timestamp("2024-05-01T10:00:00Z")) == "10:00:00"


# -- filters and text ----------------------------------------------------------------


def test_filters_by_text_case_regex_and_stream() -> None:
    error = entry("2024-05-01T10:00:00Z", "Error: disk full", stream="stderr")
    fine = entry("2024-05-01T10:00:00Z", "all fine")
    assert LineFilter().pattern() is None
    assert LineFilter("error").matcher()(error) and not LineFilter("error").matcher()(fine)
    assert not LineFilter("error", case_sensitive=True).matcher()(error)
    assert LineFilter(r"disk\s+full$", regex=True).matcher()(error)
    assert not LineFilter("disk.full").matcher()(error)  # text, not a pattern
    assert not LineFilter("error").matcher("stdout")(error)
    assert LineFilter().matcher("stdout")(fine) and not LineFilter().matcher("stdout")(error)


def test_an_invalid_regular_expression_says_why_and_where() -> None:
    with pytest.raises(ValueError, match=r"^Invalid regular expression '\(a': "
                                         r"missing \), unterminated subpattern "
                                         r"at position 0\.$"):
        LineFilter("(a", regex=True).pattern()
    assert LineFilter("(a").pattern() is not None  # as text it is fine


def test_as_text_writes_one_line_per_entry_with_the_container_when_several() -> None:
    entries = [entry("2024-05-01T10:00:00Z", "hi"),
               entry("2024-05-01T10:00:01Z", "yo", container="db", stream="stderr")]
    assert as_text(entries) == ("2024-05-01T10:00:00.000000000Z stdout hi\n"
                                "2024-05-01T10:00:01.000000000Z stderr yo\n")
    labels = {("laptop", "web"): "laptop/web"}
    assert as_text(entries, labels) == (
        "2024-05-01T10:00:00.000000000Z laptop/web stdout hi\n"
        "2024-05-01T10:00:01.000000000Z db stderr yo\n")
    assert as_text([]) == ""
