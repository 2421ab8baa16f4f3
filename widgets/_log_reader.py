"""Following one container's log for :class:`~._log_stream.LogStream`, through engine
outages and container restarts, on the live widgets' one reconnect loop
(:func:`~._follower.keep_following`).

A read asks for the log from where it was left (:class:`~._log_buffer.ReadPosition`:
``tail=`` the first time, then ``since=`` the last line kept, whose repeats are
skipped), so that nothing is lost or doubled. A running container is followed; when its
log ends (it stopped) the rest is read at once. A stopped container is read without
``follow`` (podman#21914: following a stopped container can return only part of its
log) and looked at again every ``POLL_STOPPED`` seconds until it runs. An engine that
cannot be reached, or a container that is gone, is tried again after 0.5 s, 1 s, 2 s...
up to ``RETRY_MAX`` seconds; anything else is a bug, which ends that reader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ghostpanel_kernel.engine import Environment, LogLine, NotFound

from ._follower import Backoff, keep_following
from ._log_buffer import ReadPosition
from ._status import describe_error

__all__ = ["POLL_STOPPED", "RETRY_FIRST", "RETRY_MAX", "LogSource", "read_log"]

#: Seconds before the first retry after an error; doubled up to ``RETRY_MAX``.
RETRY_FIRST = 0.5
RETRY_MAX = 5.0
#: Seconds between looks at a stopped container, waiting for it to run again.
POLL_STOPPED = 2.0


@dataclass
class LogSource:
    """One followed container: how it is shown, how far its log has been read, and
    what the status line says of it.

    Attributes
    ----------
    environment, name
        Where the container is, and its name (or id) as given to the widget.
    label, colour
        How its lines are marked when several containers are shown.
    position
        How far its log has been read.
    level, message
        What the status line says of it now (``info``, ``success`` or ``error``).
    attempted
        Set once the first read began or failed: ``LogStream.start()`` waits for it.
    """

    environment: Environment
    name: str
    label: str
    colour: str
    position: ReadPosition
    level: str = "info"
    message: str = ""
    attempted: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> tuple[str, str]:
        """``(environment name, container name)``, as its log entries carry them."""
        return (self.environment.name, self.name)


async def read_log(source: LogSource, *, follow: Callable[[], bool],
                   tail: Callable[[], int], current: Callable[[], bool],
                   take: Callable[[LogSource, Sequence[LogLine]], None],
                   report: Callable[[LogSource, str, str], None]) -> None:
    """Read ``source``'s log until cancelled, or once when ``follow()`` is False.

    Parameters
    ----------
    follow, tail
        The widget's settings, read before each read.
    current
        Whether this reader is still wanted; False (the widget restarted its readers)
        ends it at the next batch.
    take
        Called with each batch of lines, in order.
    report
        Called with ``(source, level, message)`` for the status line.
    """
    failed = False  # the status line said an error: say when it is over

    async def session(backoff: Backoff) -> float | None:
        nonlocal failed
        container = await source.environment.containers.get(source.name)
        following = follow() and container.state == "running"
        options = source.position.next_read(tail=tail())
        if following:
            report(source, "success" if failed else "info",
                   f"Reconnected to {source.label}: following again." if failed
                   else f"Following {source.label}.")
        source.attempted.set()
        try:
            async with contextlib.aclosing(container.log_batches(
                    follow=following, **options)) as batches:
                async for batch in batches:
                    if not current():
                        return None
                    take(source, batch)
        finally:
            source.position.stop_resuming()
        failed = False
        if not follow():
            report(source, "info", f"Read {source.label} (follow is off).")
            return None
        if following:  # the log ended: the container stopped; read the rest at once
            return 0.0
        report(source, "info", f"{source.label} is {container.state or 'not running'}: "
               "showing its log so far; waiting for it to run.")
        return POLL_STOPPED

    def down(error: BaseException, retry: float | None) -> None:
        nonlocal failed
        source.attempted.set()
        if retry is None:  # a bug (logged): say so; this reader stops
            report(source, "error", f"Reading {source.label} failed: "
                   f"{type(error).__name__}: {describe_error(error)}")
            return
        failed = True
        what = "no such container" if isinstance(error, NotFound) else describe_error(error)
        report(source, "error", f"{source.label} on {source.environment.name}: {what} "
               f"(retrying in {retry:g} s)")

    await keep_following(session, what=f"the log of {source.label}", on_down=down,
                         retry_delays=(RETRY_FIRST, RETRY_MAX), retry_bugs=False)
