"""The one reconnect loop of the live widgets (``LogStream``, ``ContainerList``,
``EventFeed``): :class:`Backoff`, :func:`keep_following` and :class:`Tasks`, alone, with
sessions that fail on cue. No engine, no ipywidgets.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import pytest
from ghostpanel_widgets._follower import Backoff, Tasks, keep_following, wait_ended

from ghostpanel_kernel.engine import EngineConnectionError

DOWN = EngineConnectionError("connection refused", endpoint="tcp://127.0.0.1:9")


class Script:
    """A session that plays ``outcomes`` in turn: an exception is raised, a number or
    None returned; it records the time of each go."""

    def __init__(self, *outcomes: BaseException | float | None,
                 on_go: Callable[[Backoff], None] | None = None) -> None:
        self.outcomes = list(outcomes)
        self.starts: list[float] = []
        self.on_go = on_go

    async def __call__(self, backoff: Backoff) -> float | None:
        self.starts.append(asyncio.get_running_loop().time())
        if self.on_go is not None:
            self.on_go(backoff)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def waited(starts: list[float], expected: list[float]) -> bool:
    """Whether the goes were spaced by ``expected`` seconds: not less (the loop's clock
    may fire a timer a tick early), and not much more on a busy machine."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    return len(gaps) == len(expected) and all(
        want - 0.01 <= gap < want + 0.5 for gap, want in zip(gaps, expected, strict=True))


def test_backoff_doubles_up_to_its_most_and_starts_again_after_a_success() -> None:
    backoff = Backoff((0.5, 5.0))
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_backoff_reads_its_delays_before_each_wait() -> None:
    most = [10.0]
    backoff = Backoff(lambda: (0.5, most[0]))
    assert [backoff.next() for _ in range(3)] == [0.5, 1.0, 2.0]
    most[0] = 1.5  # a widget's retry_max changed meanwhile
    assert backoff.next() == 1.5


async def test_failures_are_reported_and_retried_with_growing_waits() -> None:
    session = Script(DOWN, DOWN, DOWN, None)
    downs: list[tuple[BaseException, float | None]] = []
    await keep_following(session, what="test", retry_delays=(0.05, 0.1),
                         on_down=lambda error, retry: downs.append((error, retry)))
    assert downs == [(DOWN, 0.05), (DOWN, 0.1), (DOWN, 0.1)]
    assert waited(session.starts, [0.05, 0.1, 0.1]), session.starts


async def test_a_session_that_answered_starts_the_waits_over() -> None:
    # Up, then broken: the next wait is the first one again, not the doubled one.
    session = Script(DOWN, DOWN, DOWN, None,
                     on_go=lambda backoff: backoff.reset() if len(session.starts) == 3
                     else None)
    downs: list[float | None] = []
    await keep_following(session, what="test", retry_delays=(0.05, 1.0),
                         on_down=lambda error, retry: downs.append(retry))
    assert downs == [0.05, 0.1, 0.05]


async def test_a_session_that_returns_runs_again_after_its_pause() -> None:
    session = Script(0.0, 0.1, DOWN, None)
    downs: list[float | None] = []
    await keep_following(session, what="test", retry_delays=(0.05, 1.0),
                         on_down=lambda error, retry: downs.append(retry))
    assert waited(session.starts, [0.0, 0.1, 0.05]), session.starts
    assert downs == [0.05]  # the returns reset the backoff: first wait after the failure


async def test_a_bug_is_logged_and_ends_following_when_bugs_are_not_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    bug = KeyError("oops")
    downs: list[tuple[BaseException, float | None]] = []
    with caplog.at_level(logging.ERROR, logger="ghostpanel_widgets"):
        await keep_following(Script(bug), what="the log of web", retry_delays=(0.01, 0.1),
                             on_down=lambda error, retry: downs.append((error, retry)),
                             retry_bugs=False)
    assert downs == [(bug, None)]
    assert [r.getMessage() for r in caplog.records] == ["following the log of web failed"]


async def test_a_bug_is_logged_and_retried_by_default(
        caplog: pytest.LogCaptureFixture) -> None:
    bug = KeyError("oops")
    downs: list[float | None] = []
    with caplog.at_level(logging.ERROR, logger="ghostpanel_widgets"):
        await keep_following(Script(bug, None), what="events of a", retry_delays=(0.01, 0.1),
                             on_down=lambda error, retry: downs.append(retry))
    assert downs == [0.01]
    assert len(caplog.records) == 1


async def test_a_closed_source_ends_following_at_its_first_failure() -> None:
    session = Script(DOWN, DOWN)
    downs: list[float | None] = []
    await keep_following(session, what="test", retry_delays=(0.01, 0.1),
                         on_down=lambda error, retry: downs.append(retry),
                         closed=lambda: True)
    assert downs == [None] and len(session.starts) == 1


async def test_tasks_are_held_by_key_cancelled_together_and_waited_for(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks = Tasks()
    assert not tasks and tasks.get("a") is None

    async def fail() -> None:
        raise RuntimeError("boom")

    first = tasks.start("a", asyncio.sleep(60), name="first")
    second = tasks.start("a", asyncio.sleep(60))  # replaces (and cancels) the first
    failing = tasks.start("b", fail(), name="failing")
    await asyncio.sleep(0)
    assert tasks.get("a") is second and "b" in tasks and tasks.running("a")
    assert not tasks.running("b") and tasks.tasks() == [second, failing]
    with caplog.at_level(logging.ERROR, logger="ghostpanel_widgets"):
        ended = tasks.cancel()
        await wait_ended([first, *ended])
    assert first.cancelled() and second.cancelled() and not tasks
    assert [r.getMessage() for r in caplog.records] == ["failing failed"]


def test_starting_a_task_without_a_loop_raises_and_leaves_no_coroutine() -> None:
    async def work() -> None:
        raise AssertionError("never runs")

    coroutine = work()
    with pytest.raises(RuntimeError):
        Tasks().start("a", coroutine)
    assert coroutine.cr_frame is None  # closed: no "was never awaited" warning
