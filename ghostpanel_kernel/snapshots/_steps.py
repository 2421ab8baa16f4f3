"""Run a sequence of undoable steps; on a failure, undo the done ones in reverse.

Restore is built from these so that a failure at any step puts everything back: each
step that changed something has an undo, and the undo of a step runs only if the step
itself finished.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._errors import RestoreError

__all__ = ["Progress", "Step", "run_steps"]

#: ``progress(step_name, index, total)`` is called before each step (0-based index).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Step:
    """One step: what it does, how to undo it, and a phrase for messages."""

    name: str
    describe: str
    do: Callable[[], Awaitable[None]]
    undo: Callable[[], Awaitable[None]] | None = None


async def run_steps(steps: Sequence[Step], *, what: str,
                    progress: Progress | None = None) -> None:
    """Run ``steps`` in order; on a failure undo the finished ones, newest first.

    Parameters
    ----------
    steps
        The steps.
    what
        The operation, for the error message (``"restore of volume:data to bolt-..."``).
    progress
        Called before each step; an exception it raises fails that step (the tests
        inject failures this way, as a crash would).

    Raises
    ------
    RestoreError
        Naming the failed step, its cause, and any undo that failed too.
    """
    done: list[Step] = []
    for index, step in enumerate(steps):
        try:
            if progress is not None:
                progress(step.name, index, len(steps))
            await step.do()
        except BaseException as error:
            failures = await _undo(done)
            if not isinstance(error, Exception):
                raise  # Cancelled or interrupted: undone, now let it propagate.
            message = f"{what} failed while it {step.describe}: {error}"
            if failures:
                message += "; undoing it failed too: " + "; ".join(failures)
            else:
                message += "; everything was put back as it was"
            raise RestoreError(message, step=step.name, undo_failures=failures) from error
        done.append(step)


async def _undo(done: list[Step]) -> list[str]:
    failures = []
    for step in reversed(done):
        if step.undo is None:
            continue
        try:
            await step.undo()
        except Exception as error:  # keep undoing the others: each one puts back more
            failures.append(f"undo of '{step.name}' ({step.describe}): {error}")
    return failures
