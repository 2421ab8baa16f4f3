"""``LogStream``: follow the logs of one container, or of several merged by time.

Layout, top to bottom: the controls (follow, tail N, filter text with regex and case
toggles, timestamps, stream selector, pause, clear, download), the status line, a
summary line, then the log view.

This module is the view. The lines are held by :class:`~._log_buffer.LogBuffer` (merged
by time, bounded, filtered: no ipywidgets there); each container is followed by
:func:`~._log_reader.read_log`, on :func:`~._follower.keep_following`, the reconnect
loop the live tables use too.

How it works:

- one task per container follows its log through
  :meth:`~ghostpanel_kernel.engine.Container.log_batches` with ``timestamps=True``, and
  inserts each batch into the one bounded buffer, ordered by time, so several
  containers, even on several engines, read as one log;
- the view is an ``ipywidgets.HTML`` re-rendered at most every ``refresh`` seconds with
  only the newest ``view_lines`` lines that pass the filter (HTML-escaped, stderr in red,
  matches in ``<mark>``); a CSS ``column-reverse`` box keeps it scrolled to the bottom
  without any JavaScript (Voila runs none from an HTML widget);
- pause freezes the view, not the buffer: lines keep arriving (still bounded) and show
  up on resume;
- an engine that goes away or a container that stops is said in the status line; the
  task retries (backing off up to 5 seconds) and carries on with ``since=`` the last
  line it had, skipping the lines it already holds, so that nothing is lost or doubled;
  a stopped container is watched until it runs again (:mod:`._log_reader`);
- an invalid regular expression is refused: the status line says why and the previous
  filter stays in force.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Environment, LogLine

from ._base import close_widget_tree
from ._follower import Tasks, wait_ended
from ._format import format_size
from ._log_buffer import (
    STREAMS,
    LineFilter,
    LogBuffer,
    LogEntry,
    ReadPosition,
    as_text,
    line_test,
    shown_time,
)
from ._log_reader import LogSource, read_log
from ._status import StatusLine, describe_error
from ._targets import PALETTE, container_targets, target_labels

__all__ = ["LogStream"]

_STYLE = """<style>
.gp-log-view { height: 420px; overflow-y: auto; display: flex; flex-direction: column-reverse;
  box-sizing: border-box; border: 1px solid #d0d0d0; border-radius: 3px; background: #fbfbfb; }
.gp-log-lines { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere; padding: 4px 6px; }
.gp-log-lines .gp-e { color: #b00020; }
.gp-log-lines .gp-t { color: #777777; }
.gp-log-lines .gp-c { font-weight: bold; }
.gp-log-lines mark { background: #ffe066; color: inherit; padding: 0; }
.gp-log-empty { color: #777777; font-style: italic; padding: 4px 6px; }
</style>"""


def _highlight(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is None:
        return html.escape(text, quote=False)
    pieces = []
    start = 0
    for match in pattern.finditer(text):
        begin, end = match.span()
        if begin == end:  # an empty match marks nothing
            continue
        pieces.append(html.escape(text[start:begin], quote=False))
        pieces.append(f"<mark>{html.escape(text[begin:end], quote=False)}</mark>")
        start = end
    pieces.append(html.escape(text[start:], quote=False))
    return "".join(pieces)


# -- the widget ----------------------------------------------------------------------


class LogStream(ipywidgets.VBox):
    """Follow container logs, merged by time, filtered and highlighted.

    Parameters
    ----------
    target
        An :class:`~ghostpanel_kernel.engine.Environment` (then name the containers in
        ``containers``), or a list of ``(environment, container)`` pairs to merge logs
        across engines.
    containers
        A container name (or id), or a list of them, on ``target``.
    tail
        Lines of each container's past to load first (0: only new lines).
    follow
        Keep the log open for new lines; False reads what is there and stops.
    buffer_lines
        The most lines kept (all containers together); the oldest go first.
    view_lines
        The most lines shown (the newest that pass the filter).
    refresh
        Seconds between two renders of the view, at most.
    start
        Start reading at once when an event loop runs (a Jupyter kernel's); otherwise
        call ``await log_stream.start()``.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> env = connect("unix:///run/podman/podman.sock", name="laptop")  # doctest: +SKIP
    >>> LogStream(env, ["web", "db"], tail=200)                          # doctest: +SKIP
    >>> logs = LogStream([(env, "web"), (other_env, "api")])             # doctest: +SKIP
    >>> logs.set_filter(r"error|warn", regex=True)                       # doctest: +SKIP
    >>> print(logs.download_text())                                      # doctest: +SKIP
    """

    follow = Bool(True, help="Keep each log open for new lines (else read once).").tag(
        sync=True)
    tail = Int(100, help="Lines of each container's past to load when (re)starting.").tag(
        sync=True)
    buffer_lines = Int(10_000, help="The most lines kept, all containers together.").tag(
        sync=True)
    view_lines = Int(500, help="The most lines shown: the newest that pass the filter.").tag(
        sync=True)
    timestamps = Bool(True, help="Show each line's time.").tag(sync=True)
    stream = Unicode("all", help="Which stream to show: all, stdout or stderr.").tag(
        sync=True)
    paused = Bool(False, help="Freeze the view; lines are still buffered.").tag(sync=True)
    refresh = Float(0.15, help="Seconds between two renders of the view, at most.")

    def __init__(self, target: Environment | Iterable[tuple[Environment, str]],
                 containers: str | Iterable[str] | None = None, *, tail: int = 100,
                 follow: bool = True, buffer_lines: int = 10_000, view_lines: int = 500,
                 refresh: float = 0.15, start: bool = True, **kwargs: Any) -> None:
        targets = container_targets(target, containers)
        labels = target_labels(targets)
        self._sources = [
            LogSource(environment, name, label, PALETTE[index % len(PALETTE)],
                    ReadPosition(environment.name, name))
            for index, ((environment, name), label) in enumerate(zip(targets, labels,
                                                                     strict=True))]
        self._several = len(self._sources) > 1
        self._buffer = LogBuffer(buffer_lines)
        self._tasks = Tasks()  # one reader per container, by its key
        self._generation = 0
        self._starter: asyncio.Task[None] | None = None
        self._closed = False
        self._render_handle: asyncio.Handle | None = None
        self._last_render = 0.0
        self._dirty = False
        self._hidden_new = 0   # lines that arrived while paused
        self._received = 0     # lines taken in since the start, for the summary
        self._pattern: re.Pattern[str] | None = None
        self._filter = LineFilter()
        self._filter_error = ""
        self._applying_filter = False

        self.status = StatusLine()
        self.summary = ipywidgets.HTML(layout=ipywidgets.Layout(margin="0 0 2px 4px"))
        self.view = ipywidgets.HTML(layout=ipywidgets.Layout(width="100%"))
        self.view.add_class("gp-log-output")

        wide = ipywidgets.Layout(width="auto")
        self.follow_toggle = ipywidgets.ToggleButton(
            value=follow, description="Follow", icon="link",
            tooltip="Keep the log open for new lines", layout=wide)
        self.tail_field = ipywidgets.BoundedIntText(
            value=tail, min=0, max=10_000_000, description="tail", continuous_update=False,
            tooltip="Lines of the past to load (re-reads the log)",
            layout=ipywidgets.Layout(width="150px"),
            style={"description_width": "30px"})
        self.filter_field = ipywidgets.Text(
            placeholder="filter lines", continuous_update=True,
            layout=ipywidgets.Layout(flex="1 1 160px", width="auto"))
        self.regex_box = ipywidgets.Checkbox(description="regex", indent=False, layout=wide)
        self.case_box = ipywidgets.Checkbox(description="match case", indent=False,
                                            layout=wide)
        self.timestamps_box = ipywidgets.Checkbox(value=True, description="timestamps",
                                                  indent=False, layout=wide)
        self.stream_picker = ipywidgets.ToggleButtons(
            options=list(STREAMS), value="all", tooltips=[
                "stdout and stderr", "stdout only", "stderr only"],
            style={"button_width": "64px"})
        self.pause_button = ipywidgets.ToggleButton(
            description="Pause", icon="pause", tooltip="Freeze the view (lines are kept)",
            layout=wide)
        self.clear_button = ipywidgets.Button(description="Clear", icon="eraser",
                                              tooltip="Forget the lines read so far",
                                              layout=wide)
        self.download_button = ipywidgets.Button(
            description="Download", icon="download",
            tooltip="Prepare the filtered lines as a text file", layout=wide)
        self.download_link = ipywidgets.HTML()

        super().__init__(**kwargs)
        self.add_class("gp-log-stream")
        self.refresh = refresh
        self.buffer_lines = buffer_lines
        self.view_lines = view_lines
        self.set_trait("tail", tail)
        self.set_trait("follow", follow)

        for trait, control in (("follow", self.follow_toggle), ("paused", self.pause_button),
                               ("timestamps", self.timestamps_box),
                               ("stream", self.stream_picker)):
            ipywidgets.link((self, trait), (control, "value"))
        self.tail_field.observe(self._tail_field_changed, "value")
        self.filter_field.observe(self._filter_controls_changed, "value")
        self.regex_box.observe(self._filter_controls_changed, "value")
        self.case_box.observe(self._filter_controls_changed, "value")
        self.clear_button.on_click(lambda _: self.clear())
        self.download_button.on_click(lambda _: self._download_clicked())

        top = ipywidgets.HBox(
            [self.follow_toggle, self.tail_field, self.filter_field, self.regex_box,
             self.case_box], layout=ipywidgets.Layout(align_items="center",
                                                      flex_flow="row wrap"))
        bottom = ipywidgets.HBox(
            [self.stream_picker, self.timestamps_box, self.pause_button, self.clear_button,
             self.download_button, self.download_link],
            layout=ipywidgets.Layout(align_items="center", flex_flow="row wrap"))
        self.children = [top, bottom, self.status, self.summary, self.view]
        self.render()

        if start:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.status.info("Not started: reading logs needs a running asyncio event "
                                 "loop (a Jupyter kernel has one); call "
                                 "`await log_stream.start()` in one.")
            else:
                self._starter = loop.create_task(self.start())

    # -- traits
    @validate("tail")
    def _valid_tail(self, proposal: dict[str, Any]) -> int:
        lines = int(proposal["value"])
        if lines < 0:
            raise TraitError(f"tail must be 0 or more lines, not {lines}")
        return lines

    @validate("buffer_lines", "view_lines")
    def _valid_line_count(self, proposal: dict[str, Any]) -> int:
        lines = int(proposal["value"])
        if lines < 1:
            raise TraitError(f"{proposal['trait'].name} must be 1 or more, not {lines}")
        return lines

    @validate("stream")
    def _valid_stream(self, proposal: dict[str, Any]) -> str:
        stream = str(proposal["value"])
        if stream not in STREAMS:
            raise TraitError(f"stream must be one of {', '.join(STREAMS)}, not {stream!r}")
        return stream

    @validate("refresh")
    def _valid_refresh(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if not seconds > 0:
            raise TraitError(f"refresh must be more than 0 seconds, not {seconds}")
        return seconds

    @observe("buffer_lines")
    def _buffer_lines_changed(self, change: dict[str, Any]) -> None:
        if self._buffer.maxlen != change["new"]:
            self._buffer.maxlen = change["new"]  # keeps the newest
            self._changed()

    @observe("view_lines", "timestamps", "stream")
    def _view_changed(self, change: dict[str, Any]) -> None:
        self.render()

    @observe("paused")
    def _paused_changed(self, change: dict[str, Any]) -> None:
        self.pause_button.description = "Resume" if change["new"] else "Pause"
        self.pause_button.icon = "play" if change["new"] else "pause"
        if not change["new"]:
            self._hidden_new = 0
        self.render()

    @observe("follow")
    def _follow_changed(self, change: dict[str, Any]) -> None:
        if self._tasks or self._starter is not None:
            self._restart(fresh=False)

    @observe("tail")
    def _tail_changed(self, change: dict[str, Any]) -> None:
        if self.tail_field.value != change["new"]:
            self.tail_field.value = change["new"]
        if self._tasks or self._starter is not None:
            self._restart(fresh=True)

    def _tail_field_changed(self, change: dict[str, Any]) -> None:
        try:
            self.tail = change["new"]
        except TraitError as error:
            self.status.error(f"Cannot use that tail: {describe_error(error)}")
            self.tail_field.value = self.tail

    # -- reading
    @property
    def lines(self) -> list[LogEntry]:
        """Every buffered line (all streams, unfiltered), oldest first."""
        return list(self._buffer)

    @property
    def received(self) -> int:
        """Lines taken in since the start (the buffer keeps the newest of them)."""
        return self._received

    @property
    def containers(self) -> list[str]:
        """The containers followed, as labelled in the view."""
        return [source.label for source in self._sources]

    @property
    def active_filter(self) -> tuple[str, bool, bool]:
        """The filter in force: ``(text, regex, case_sensitive)``."""
        return (self._filter.text, self._filter.regex, self._filter.case_sensitive)

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        """The reader tasks, one per container (those that ended too)."""
        return self._tasks.tasks()

    async def start(self) -> None:
        """Start reading every container, and return once each has been found or its
        error shown. Calling it again while running does nothing more."""
        if self._closed:
            raise RuntimeError("this LogStream is closed; make a new one")
        if not self._tasks:
            self._launch()
        await asyncio.gather(*(source.attempted.wait() for source in self._sources))

    def _launch(self) -> None:
        self._generation += 1
        for source in self._sources:
            source.attempted.clear()
            self._set_state(source, "info", f"Connecting to {source.label}...")
        for source in self._sources:
            self._tasks.start(source.key, self._read(source, self._generation),
                              name=f"LogStream {source.label}")

    def _restart(self, *, fresh: bool) -> None:
        """Stop the readers and start new ones: from ``tail`` again when ``fresh``,
        else from where each left off."""
        if self._closed:
            return
        self._tasks.cancel()
        if fresh:
            self._buffer.clear()
            for source in self._sources:
                source.position.reset()
            self._changed()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._launch()

    async def _read(self, source: LogSource, generation: int) -> None:
        """Read one container's log until cancelled (or once, without follow)."""
        await read_log(source, follow=lambda: self.follow, tail=lambda: self.tail,
                       current=lambda: generation == self._generation,
                       take=self._ingest, report=self._set_state)

    def _ingest(self, source: LogSource, batch: Sequence[LogLine]) -> None:
        """Add one batch of a container's lines to the buffer, in time order."""
        entries = source.position.take(batch)
        if entries:
            self._buffer.insert(entries)
            self._received += len(entries)
            if self.paused:
                self._hidden_new += len(entries)
            self._changed()

    # -- filter
    def set_filter(self, text: str, regex: bool = False, *,
                   case_sensitive: bool | None = None) -> bool:
        """Show only the lines that contain ``text`` (or match it, with ``regex``).

        An empty ``text`` shows every line. ``case_sensitive`` keeps the case toggle as
        it is when None.

        Returns
        -------
        bool
            True when the filter is in force; False when ``text`` is not a valid regular
            expression: the status line says why and the previous filter stays.
        """
        self._applying_filter = True
        try:
            self.filter_field.value = text
            self.regex_box.value = regex
            if case_sensitive is not None:
                self.case_box.value = case_sensitive
        finally:
            self._applying_filter = False
        return self._apply_filter()

    def _filter_controls_changed(self, change: dict[str, Any]) -> None:
        if not self._applying_filter:
            self._apply_filter()

    def _apply_filter(self) -> bool:
        wanted = LineFilter(self.filter_field.value, self.regex_box.value,
                            self.case_box.value)
        if wanted == self._filter and not self._filter_error:
            return True
        try:
            pattern = wanted.pattern()
        except ValueError as error:
            self._filter_error = f"{error} Still filtering by the previous one."
            self._show_status()
            return False
        self._pattern = pattern
        self._filter = wanted
        self._filter_error = ""
        self._show_status()
        self.render()
        return True

    def visible_lines(self) -> list[LogEntry]:
        """The buffered lines that pass the filter and the stream selector, oldest first
        (all of them: the view shows only the newest ``view_lines``)."""
        return self._buffer.matching(line_test(self._pattern, self.stream))

    # -- view
    def _changed(self) -> None:
        """Lines came or went: render soon, at most every ``refresh`` seconds."""
        self._dirty = True
        if self._render_handle is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.render()
            return
        delay = max(0.0, self._last_render + self.refresh - time.monotonic())
        self._render_handle = loop.call_later(delay, self._render_due)

    def _render_due(self) -> None:
        self._render_handle = None
        if self._dirty:
            self.render()

    def render(self) -> None:
        """Render the view now. A paused view stays as it is; its summary line (how
        many lines arrived meanwhile) is updated."""
        if self._render_handle is not None:
            self._render_handle.cancel()
            self._render_handle = None
        self._last_render = time.monotonic()
        if self.paused:
            self._show_summary(None)
            return
        shown = self._buffer.newest(line_test(self._pattern, self.stream), self.view_lines)
        self.view.value = self._view_html(shown)
        self._dirty = False
        self._show_summary(shown)

    def _view_html(self, entries: Sequence[LogEntry]) -> str:
        if not entries:
            if not self._buffer:
                note = "No log lines yet."
            else:
                note = "No line passes the filter."
            return (f'{_STYLE}<div class="gp-log-view"><div class="gp-log-empty">{note}'
                    f"</div></div>")
        pattern = self._pattern
        show_time = self.timestamps
        labels: dict[tuple[str, str], str] = {}
        if self._several:
            labels = {source.key: (f'<span class="gp-c" style="color: {source.colour}">'
                                   f"{html.escape(source.label)}</span> ")
                      for source in self._sources}
        rows: list[str] = []
        append = rows.append
        escape = html.escape
        for entry in entries:
            parts = ['<div class="gp-l gp-e" data-stream="stderr">'
                     if entry.stream == "stderr" else '<div class="gp-l">']
            if show_time:
                parts.append(f'<span class="gp-t" title="{entry.time}">'
                             f"{shown_time(entry.time)}</span> ")
            if labels:
                parts.append(labels.get((entry.environment, entry.container), ""))
            parts.append(_highlight(entry.text, pattern) if pattern is not None
                         else escape(entry.text, quote=False))
            parts.append("</div>")
            append("".join(parts))
        return (f'{_STYLE}<div class="gp-log-view"><div class="gp-log-lines">'
                f"{''.join(rows)}</div></div>")

    def _show_summary(self, shown: Sequence[LogEntry] | None) -> None:
        held = len(self._buffer)
        text = f"{held:,} of at most {self._buffer.maxlen:,} lines held"
        if shown is not None:
            text += f"; showing the newest {len(shown):,}"
            if self._pattern is not None or self.stream != "all":
                text += " that pass the filter"
        if self.paused:
            text += (f" &mdash; <b>paused</b>: {self._hidden_new:,} new "
                     f"line{'' if self._hidden_new == 1 else 's'} not shown yet")
        value = f'<span style="color: #555555; font-size: 12px">{text}</span>'
        if self.summary.value != value:
            self.summary.value = value

    # -- status
    def _set_state(self, source: LogSource, level: str, message: str) -> None:
        if (source.level, source.message) != (level, message):
            source.level, source.message = level, message
            self._show_status()

    def _show_status(self) -> None:
        errors = [source.message for source in self._sources if source.level == "error"]
        if self._filter_error:
            errors.insert(0, self._filter_error)
        if errors:
            self.status.error("; ".join(errors))
            return
        messages = list(dict.fromkeys(source.message for source in self._sources
                                      if source.message))
        level = ("success" if any(source.level == "success" for source in self._sources)
                 else "info")
        self.status.show(" ".join(_merge_following(messages)), level)

    # -- actions
    def clear(self) -> None:
        """Forget the lines read so far (following goes on; nothing is read again)."""
        self._buffer.clear()
        self._hidden_new = 0
        self.download_link.value = ""
        self.render()
        if self.paused:  # a cleared view is empty, even while paused
            self.view.value = self._view_html([])

    def download_text(self, *, filtered: bool = True) -> str:
        """The lines as text, one per line: ``TIME [CONTAINER] STREAM TEXT``.

        ``TIME`` is the UTC time (RFC 3339); the container column is there when several
        containers are followed. ``filtered``: only the lines that pass the filter and
        the stream selector (as in the view, but all of them, not only the newest).
        """
        entries = self.visible_lines() if filtered else list(self._buffer)
        labels = ({source.key: source.label for source in self._sources}
                  if self._several else None)
        return as_text(entries, labels)

    def download_link_html(self) -> str:
        """A link that saves :meth:`download_text` as a file, as a ``data:`` URI (no
        server route needed, so it works in Voila as in JupyterLab)."""
        text = self.download_text()
        data = base64.b64encode(text.encode("utf-8")).decode("ascii")
        count = text.count("\n")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        names = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", s.label) for s in self._sources)
        filename = f"logs-{names[:80]}-{stamp}.txt"
        size = len(text.encode("utf-8"))
        return (f'<a class="gp-log-download" download="{html.escape(filename)}" '
                f'href="data:text/plain;charset=utf-8;base64,{data}" target="_blank">'
                f"Save {html.escape(filename)}</a> ({count:,} lines, {format_size(size)})")

    def _download_clicked(self) -> None:
        with self.status.reporting("Download"):
            self.download_link.value = self.download_link_html()

    # -- lifecycle
    def close(self) -> None:
        """Stop reading (the tasks are cancelled) and close the widget and its parts."""
        if getattr(self, "_closed", True):  # close_widget_tree(self) comes back here
            super().close()
            return
        self._closed = True
        self._generation += 1
        self._tasks.cancel()
        for source in self._sources:
            source.attempted.set()  # nobody waits in start() for a reader that is gone
        if self._starter is not None:
            self._starter.cancel()
        if self._render_handle is not None:
            self._render_handle.cancel()
            self._render_handle = None
        close_widget_tree(self)

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the readers have released their connections."""
        tasks = [*self._tasks.tasks(), *([self._starter] if self._starter is not None else [])]
        self.close()
        await wait_ended(tasks)


def _merge_following(messages: list[str]) -> list[str]:
    """``Following a. Following b.`` reads as ``Following a, b.``"""
    following = [m[len("Following "):-1] for m in messages
                 if m.startswith("Following ") and m.endswith(".")]
    if len(following) < 2:
        return messages
    rest = [m for m in messages if not (m.startswith("Following ") and m.endswith("."))]
    return [f"Following {', '.join(following)}.", *rest]
