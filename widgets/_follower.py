"""Following an engine stream that can break, for every live widget: one copy of the
reconnect backoff and of the task plumbing that closing a widget needs.

- :class:`Backoff` spaces the tries to reach an engine that went away: ``first``
  seconds, doubled after each failure up to ``most``, and ``first`` again once a try
  succeeded;
- :func:`keep_following` runs one follower: a *session* (read a log, follow the
  events...) again and again, the failures reported and spaced by a :class:`Backoff`;
- :class:`Tasks` holds the tasks of a widget by key, cancels them all when it closes
  and waits for them to end in ``aclose()``.

:class:`~._log_stream.LogStream` follows one container's log this way, and
:class:`~._live_table.LiveTable` (``ContainerList``, ``EventFeed``) each environment's
events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

from ghostpanel_kernel.engine import GhostPanelError

__all__ = ["UNREACHABLE", "Backoff", "Tasks", "keep_following", "wait_ended"]

_log = logging.getLogger("ghostpanel_widgets")

#: What an engine that cannot be reached raises (a transport error is mapped to
#: ``EngineConnectionError``; an ``OSError`` can still come from TLS files and such).
UNREACHABLE = (GhostPanelError, OSError)


class Backoff:
    """The seconds to wait before each next try to reach an engine that went away.

    Parameters
    ----------
    delays
        ``(first, most)``, or a function that gives them: read before each wait, so a
        widget's setting changed meanwhile applies to the next one.

    Examples
    --------
    >>> backoff = Backoff((0.5, 3.0))
    >>> [backoff.next() for _ in range(5)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    >>> backoff.reset(); backoff.next()
    0.5
    """

    def __init__(self, delays: tuple[float, float] | Callable[[], tuple[float, float]]
                 ) -> None:
        self._delays = delays if callable(delays) else (lambda: delays)
        self._delay: float | None = None

    def next(self) -> float:
        """The wait before the next try: ``first`` after a success, else the previous
        wait doubled, at most ``most``."""
        first, most = self._delays()
        self._delay = first if self._delay is None else min(self._delay * 2, most)
        return self._delay

    def reset(self) -> None:
        """A try succeeded: the next failure waits ``first`` again."""
        self._delay = None


async def keep_following(
        session: Callable[[Backoff], Awaitable[float | None]], *, what: str,
        on_down: Callable[[BaseException, float | None], None],
        retry_delays: tuple[float, float] | Callable[[], tuple[float, float]],
        closed: Callable[[], bool] = lambda: False,
        retry_bugs: bool = True) -> None:
    """Run ``session`` until it says it is done, trying again after each failure.

    Parameters
    ----------
    session
        One go at the stream: it returns None when following is over, or the seconds
        to wait before the next go (0: at once; a stopped container is looked at again
        later). It may call ``reset()`` on the :class:`Backoff` it is given once the
        engine answered, so that a stream that breaks later starts again from the first
        delay; a session that returns resets it too.
    what
        What is followed, for the log.
    on_down
        Called with what the session raised and the seconds until the next try; with
        None when there is no next try (see ``closed`` and ``retry_bugs``).
    retry_delays
        ``(first, most)`` seconds between tries, as :class:`Backoff` takes them.
    closed
        Whether the thing followed was closed by its owner; after a failure, True ends
        following (there is nothing to wait for).
    retry_bugs
        Whether to try again after an error that is not an engine's (a bug, logged
        with its traceback either way).
    """
    backoff = Backoff(retry_delays)
    while True:
        try:
            pause = await session(backoff)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if closed():
                on_down(error, None)
                return
            if not isinstance(error, UNREACHABLE):
                _log.exception("following %s failed", what)
                if not retry_bugs:
                    on_down(error, None)
                    return
            delay = backoff.next()
            on_down(error, delay)
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        if pause is None:
            return
        if pause > 0:
            await asyncio.sleep(pause)


class Tasks:
    """A widget's running tasks, by key: started on the kernel's loop, cancelled
    together when the widget closes, waited for by its ``aclose()``.

    A finished task stays listed until it is replaced, cancelled or forgotten, so that
    a widget can tell "ended" from "never started".
    """

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._tasks

    def get(self, key: Hashable) -> asyncio.Task[Any] | None:
        """The task started under ``key``, None if none is held."""
        return self._tasks.get(key)

    def running(self, key: Hashable) -> bool:
        """Whether the task under ``key`` was started and has not ended."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def start(self, key: Hashable, work: Coroutine[Any, Any, Any], *,
              name: str | None = None) -> asyncio.Task[Any]:
        """Run ``work`` as the task of ``key`` (cancelling the one there was).

        Raises
        ------
        RuntimeError
            No event loop runs (``work`` is closed, not left un-awaited).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            work.close()
            raise
        previous = self._tasks.pop(key, None)
        if previous is not None:
            previous.cancel()
        task = loop.create_task(work, name=name)
        self._tasks[key] = task
        return task

    def forget(self, key: Hashable) -> None:
        """Stop holding the task of ``key`` (it runs on; for one that ended)."""
        self._tasks.pop(key, None)

    def tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks held, in the order they were started."""
        return list(self._tasks.values())

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel every task held and forget them; returns them, for :func:`wait_ended`."""
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        return tasks


async def wait_ended(tasks: list[asyncio.Task[Any]]) -> None:
    """Wait until ``tasks`` (cancelled) have ended, and released what they held.

    What one raised other than its cancellation is logged: a close must not fail
    because a task failed earlier, nor hide it.
    """
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, Exception):
            _log.error("%s failed", task.get_name(), exc_info=outcome)
