"""The log lines :class:`~._log_stream.LogStream` holds: merged by time, bounded, filtered.

No ipywidgets here (the view is :mod:`._log_stream`), so all of it is testable alone:

- :class:`ReadPosition` turns one container's batches of
  :class:`~ghostpanel_kernel.engine.LogLine` into :class:`LogEntry` objects, and knows
  where its log was left: a read that resumes with ``since=`` gets again the lines of
  the last instant it kept, which it skips, so that nothing is lost or doubled;
- :class:`LogBuffer` holds the entries of every container in one bounded deque, ordered
  by time; lines of the same instant keep the order they arrived in;
- :class:`LineFilter` is the text or regular expression the view shows lines by, and
  :func:`as_text` writes entries as the downloaded file has them.

Engine timestamps: Docker sends RFC 3339 with nanoseconds but drops trailing zeros
(``.5Z`` sorts after ``.25Z`` as text), Podman 4.3 sends whole seconds, and some engines
send a zone offset. :func:`normalise_timestamp` turns each into one fixed-width UTC form,
so that string order is time order.
"""

from __future__ import annotations

import heapq
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from ghostpanel_kernel.engine import LogLine
from ghostpanel_kernel.engine._times import sortable_engine_time

__all__ = [
    "MAX_LINE_CHARS",
    "STREAMS",
    "LineFilter",
    "LogBuffer",
    "LogEntry",
    "ReadPosition",
    "as_text",
    "normalise_timestamp",
    "shown_time",
]

#: Longer lines are cut here (with a marker): one runaway line must not undo the bound.
MAX_LINE_CHARS = 16_384

#: What the stream selector offers: both streams, or one.
STREAMS: tuple[str, ...] = ("all", "stdout", "stderr")


# -- timestamps ----------------------------------------------------------------------


def _now_stamp() -> str:
    """The current time in :func:`normalise_timestamp`'s form."""
    moment = datetime.now(UTC)
    return f"{moment.replace(tzinfo=None).isoformat(timespec='microseconds')}000Z"


def normalise_timestamp(stamp: str | None) -> str:
    """An engine's RFC 3339 time as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (UTC, 9 digits).

    Fixed width and UTC, so that comparing the strings compares the times
    (:func:`~ghostpanel_kernel.engine._times.sortable_engine_time`). ``None``, Go's zero
    time or text that is not a time gives the current time: a line without a time is
    shown when it arrives.

    Examples
    --------
    >>> normalise_timestamp("2024-05-01T10:00:00.5Z")
    '2024-05-01T10:00:00.500000000Z'
    >>> normalise_timestamp("2024-05-01T10:00:00Z")
    '2024-05-01T10:00:00.000000000Z'
    >>> normalise_timestamp("2024-05-01T12:00:00.25+02:00")
    '2024-05-01T10:00:00.250000000Z'
    """
    return sortable_engine_time(stamp) or _now_stamp()


def shown_time(stamp: str) -> str:
    """``HH:MM:SS`` of a normalised stamp, with milliseconds when the engine gave any
    (Podman gives none).

    Examples
    --------
    >>> shown_time("2024-05-01T10:00:00.250000000Z"), shown_time("2024-05-01T10:00:00.000000000Z")
    ('10:00:00.250', '10:00:00')
    """
    millis = stamp[20:23]
    return stamp[11:19] if millis == "000" else f"{stamp[11:19]}.{millis}"


# -- entries -------------------------------------------------------------------------


class LogEntry(NamedTuple):
    """One buffered line.

    Attributes
    ----------
    time
        When the engine logged it, as :func:`normalise_timestamp` writes it (UTC, fixed
        width, so entries sort by it as strings).
    environment
        The environment's name.
    container
        The container as it was named to the widget.
    stream
        ``"stdout"`` or ``"stderr"``.
    text
        The line, without its newline (cut at 16 KiB).
    """

    time: str
    environment: str
    container: str
    stream: str
    text: str


_time_of = itemgetter(0)
_UNSET = object()


@dataclass
class ReadPosition:
    """How far one container's log has been read, and the entries its batches make.

    Examples
    --------
    >>> position = ReadPosition("laptop", "web")
    >>> batch = [LogLine("stdout", "a", "2024-05-01T10:00:00Z"),
    ...          LogLine("stdout", "b", "2024-05-01T10:00:00Z")]
    >>> [entry.text for entry in position.take(batch)]
    ['a', 'b']
    >>> position.next_read(tail=100)["since"]          # resume where it was left
    '2024-05-01T10:00:00Z'
    >>> [entry.text for entry in position.take([*batch, LogLine("stdout", "c", None)])]
    ['c']
    """

    environment: str
    container: str
    last_raw: str | None = None      # the engine's own stamp of the last line kept
    last_time: str | None = None     # the same, normalised
    count_at_last: int = 0           # lines kept with exactly that time
    resume_time: str | None = None   # while resuming: skip what is already held
    resume_skip: int = 0
    first_read: float | None = None  # when the first read began (epoch seconds)

    def next_read(self, *, tail: int) -> dict[str, Any]:
        """The log options of the next read (``tail=`` or ``since=``); from now on,
        :meth:`take` skips the lines already held that the engine will send again."""
        options: dict[str, Any] = {"timestamps": True}
        if self.first_read is None:
            self.first_read = time.time()
            options["tail"] = tail
        elif self.last_raw is None:
            # Read before, nothing there: whatever came since (tail would drop the
            # lines of a container that started since).
            options["since"] = f"{self.first_read:.6f}"
        else:
            options["since"] = self.last_raw
            self.resume_time = self.last_time
            self.resume_skip = self.count_at_last
        return options

    def stop_resuming(self) -> None:
        """The read ended or failed: the next one says again what to skip."""
        self.resume_time = None

    def reset(self) -> None:
        """Start again from ``tail`` (the lines held were dropped)."""
        self.last_raw = self.last_time = None
        self.first_read = None
        self.count_at_last = 0
        self.resume_time = None

    def take(self, batch: Iterable[LogLine]) -> list[LogEntry]:
        """The entries of one batch of this container's lines, in the engine's order,
        less the lines a resumed read sent again."""
        environment, name = self.environment, self.container
        entries: list[LogEntry] = []
        append = entries.append
        last_raw, last_time, count = self.last_raw, self.last_time, self.count_at_last
        previous_raw: object = _UNSET
        normalised = ""
        for line in batch:
            raw = line.timestamp
            if raw != previous_raw:  # a batch mostly shares a few stamps
                # The kernel's reader directly, one call per new stamp on this hot path.
                previous_raw, normalised = raw, sortable_engine_time(raw) or _now_stamp()
            if self.resume_time is not None:
                # Resuming with since=: the engine sends again what was already kept.
                if normalised < self.resume_time:
                    continue
                if normalised == self.resume_time and self.resume_skip > 0:
                    self.resume_skip -= 1
                    continue
                self.resume_time = None
            text = line.text
            if len(text) > MAX_LINE_CHARS:
                text = f"{text[:MAX_LINE_CHARS]} [... {len(text) - MAX_LINE_CHARS} " \
                       "characters cut]"
            append(LogEntry(normalised, environment, name, line.stream, text))
            if normalised == last_time:
                count += 1
            else:
                last_raw, last_time, count = raw, normalised, 1
        self.last_raw, self.last_time, self.count_at_last = last_raw, last_time, count
        return entries


# -- the buffer ----------------------------------------------------------------------


class LogBuffer:
    """At most ``maxlen`` entries of any number of containers, oldest first, merged by
    time; the oldest go first when it is full.

    Examples
    --------
    >>> buffer = LogBuffer(maxlen=3)
    >>> buffer.insert([LogEntry("t1", "e", "web", "stdout", "a"),
    ...                LogEntry("t3", "e", "web", "stdout", "c")])
    >>> buffer.insert([LogEntry("t2", "e", "db", "stdout", "b")])
    >>> [entry.text for entry in buffer]
    ['a', 'b', 'c']
    """

    def __init__(self, maxlen: int) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max(int(maxlen), 1))

    @property
    def maxlen(self) -> int:
        """The most entries held."""
        return self._entries.maxlen or 0

    @maxlen.setter
    def maxlen(self, maxlen: int) -> None:
        if maxlen != self._entries.maxlen:
            self._entries = deque(self._entries, maxlen=max(int(maxlen), 1))  # the newest

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self._entries)

    def __reversed__(self) -> Iterator[LogEntry]:
        return reversed(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def insert(self, entries: Sequence[LogEntry]) -> None:
        """Add one container's entries (in time order) where their times put them."""
        if not entries:
            return
        buffer = self._entries
        first = entries[0].time
        if not buffer or buffer[-1].time <= first:
            buffer.extend(entries)  # the usual case: newer than everything held
            return
        # Another container is ahead: take out the lines newer than this batch and
        # merge. Lines of the same time keep arrival order (the buffer's first).
        later: list[LogEntry] = []
        while buffer and buffer[-1].time > first:
            later.append(buffer.pop())
        later.reverse()
        buffer.extend(heapq.merge(later, entries, key=_time_of))

    def matching(self, test: Callable[[LogEntry], bool]) -> list[LogEntry]:
        """The entries ``test`` passes, oldest first."""
        return [entry for entry in self._entries if test(entry)]

    def newest(self, test: Callable[[LogEntry], bool], limit: int) -> list[LogEntry]:
        """The newest ``limit`` entries ``test`` passes, oldest first; it reads back
        from the end only as far as it needs."""
        found: list[LogEntry] = []
        for entry in reversed(self._entries):
            if test(entry):
                found.append(entry)
                if len(found) >= limit:
                    break
        found.reverse()
        return found


# -- the filter ----------------------------------------------------------------------


@dataclass(frozen=True)
class LineFilter:
    """What a line must contain to be shown: ``text`` (a regular expression with
    ``regex``), in its case with ``case_sensitive``; empty ``text`` passes every line.

    Examples
    --------
    >>> error = LogEntry("t", "e", "web", "stderr", "Error: disk full")
    >>> LineFilter("error").matcher("all")(error), LineFilter("error", case_sensitive=True
    ...     ).matcher("all")(error)
    (True, False)
    >>> LineFilter(r"disk\\s", regex=True).matcher("stdout")(error)
    False
    """

    text: str = ""
    regex: bool = False
    case_sensitive: bool = False

    def pattern(self) -> re.Pattern[str] | None:
        """The compiled filter; None when it passes every line.

        Raises
        ------
        ValueError
            ``text`` is not a valid regular expression; the message says why and where,
            in the operator's words.
        """
        if not self.text:
            return None
        flags = 0 if self.case_sensitive else re.IGNORECASE
        try:
            return re.compile(self.text if self.regex else re.escape(self.text), flags)
        except re.error as error:
            where = f" at position {error.pos}" if error.pos is not None else ""
            raise ValueError(f"Invalid regular expression {self.text!r}: "
                             f"{error.msg}{where}.") from error

    def matcher(self, stream: str = "all") -> Callable[[LogEntry], bool]:
        """A test of one entry: it passes the filter, and is of ``stream`` (``"all"``:
        either)."""
        return line_test(self.pattern(), stream)


def line_test(pattern: re.Pattern[str] | None, stream: str) -> Callable[[LogEntry], bool]:
    """A test of one entry against a compiled filter and a stream (``"all"``: either),
    as cheap as the case allows: it runs once per buffered line."""
    search = pattern.search if pattern is not None else None
    if search is None and stream == "all":
        return lambda entry: True
    if search is None:
        return lambda entry: entry.stream == stream
    if stream == "all":
        return lambda entry: search(entry.text) is not None
    return lambda entry: entry.stream == stream and search(entry.text) is not None


def as_text(entries: Iterable[LogEntry],
            labels: Mapping[tuple[str, str], str] | None = None) -> str:
    """Entries as text, one per line: ``TIME [CONTAINER] STREAM TEXT``.

    ``TIME`` is the UTC time (RFC 3339). ``labels`` maps ``(environment, container)``
    to the container column; without it there is none (one container).

    Examples
    --------
    >>> as_text([LogEntry("2024-05-01T10:00:00.000000000Z", "e", "web", "stdout", "hi")])
    '2024-05-01T10:00:00.000000000Z stdout hi\\n'
    """
    rows: Iterable[str]
    if labels is not None:
        rows = (f"{e.time} {labels.get((e.environment, e.container), e.container)} "
                f"{e.stream} {e.text}" for e in entries)
    else:
        rows = (f"{e.time} {e.stream} {e.text}" for e in entries)
    text = "\n".join(rows)
    return f"{text}\n" if text else ""
