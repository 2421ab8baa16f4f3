"""Running a Surge apply, scale or destroy for a request, its progress streamed as NDJSON.

The operation runs in a task of its own; its progress callbacks put lines in a queue
that the response sends as they come (``application/x-ndjson``, one JSON object a line):

- ``{"type": "progress", "step", "total", "environment", "message"}`` per step;
- ``{"type": "heartbeat"}`` after :data:`HEARTBEAT` seconds without a step (an image
  pull, a health wait), so that a client's read timeout does not cut the request;
- then exactly one last line: ``{"type": "result", ...}`` (:meth:`SurgeResult.to_dict`:
  ``ok``, ``outcomes``, ``errors``, ``conclusion``...) or, when the operation raised,
  ``{"type": "error", "error": <problem document>}``, since the ``200`` status line is
  already sent by then.

The status line waits for the first line, up to :data:`FIRST_LINE_WAIT` seconds: an
operation that ends before any step (a Boltfile Surge refuses, a project locked by
another run) is answered with a problem status of its own (``422``, ``409``) instead of
a ``200`` stream.

A client that disconnects mid-way cancels the operation as Ctrl-C cancels the CLI's:
an apply or scale rolls back every change it made, a destroy stops where it is (a
removal cannot be undone). The response waits for that unwinding, and logs how it
ended, so that the agent never leaves a half-applied project behind a gone client.
The agent's stop does the same to every run still going on (:func:`unwind_runs`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.responses import Response

from .._exceptions import BoltfileError, EngineConnectionError, EngineTimeout, GhostPanelError
from ..surge import ProjectLocked, SurgeError, SurgeProgress, SurgeResult
from ..surge._progress import ProgressCallback
from ._problems import Receive, Scope, Send, problem_body, problem_response

__all__ = ["FIRST_LINE_WAIT", "HEARTBEAT", "NDJSON", "UNWIND_TIMEOUT", "Operation", "SurgeRun",
           "error_problem", "start_streamed", "unwind_runs"]

NDJSON: Final = "application/x-ndjson"

_log = logging.getLogger("ghostpanel.agent.surge")

#: What a route runs: given the progress and cancellation callbacks, the operation.
Operation = Callable[[ProgressCallback, Callable[[SurgeResult], None]], Awaitable[SurgeResult]]

_DONE: Final = object()


def error_problem(error: BaseException) -> tuple[int, str, dict[str, Any]]:
    """The problem (status, detail, members) for an error a Surge operation raised."""
    if isinstance(error, SurgeError):
        return 422, error.message, {"diagnostics": [d.to_dict() for d in error.diagnostics]}
    if isinstance(error, BoltfileError):
        return 422, str(error), {"path": error.path, "line": error.line,
                                 "column": error.column}
    if isinstance(error, ProjectLocked):
        return 409, str(error), {"project": error.project, "environment": error.environment,
                                 "holder": error.holder.describe(), "stale": error.stale}
    if isinstance(error, EngineConnectionError):
        status = 504 if isinstance(error, EngineTimeout) else 502
        return status, f"the engine did not answer: {error}", {"engine": error.endpoint}
    if isinstance(error, GhostPanelError):
        return 502, f"the engine refused: {error}", {}
    if isinstance(error, ValueError):
        return 422, str(error), {}
    return 500, f"the agent failed: {type(error).__name__}", {}


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode() + b"\n"


def _progress_line(progress: SurgeProgress) -> dict[str, Any]:
    return {"type": "progress", "step": progress.step, "total": progress.total,
            "environment": progress.environment, "message": progress.message}


class SurgeRun:
    """One operation in its own task, with its lines in a queue.

    Parameters
    ----------
    operation
        What to run.
    what
        ``"apply of project shop"``, for the log.
    """

    def __init__(self, operation: Operation, what: str) -> None:
        self.what = what
        self.lines: asyncio.Queue[object] = asyncio.Queue()
        #: The result an apply reports as it is cancelled (what its rollback left).
        self.left: list[SurgeResult] = []
        self.task = asyncio.ensure_future(operation(self._progress, self.left.append))
        self.task.add_done_callback(lambda _: self.lines.put_nowait(_DONE))
        _RUNS.add(self)
        self.task.add_done_callback(lambda _: _RUNS.discard(self))

    def _progress(self, progress: SurgeProgress) -> None:
        self.lines.put_nowait(_progress_line(progress))

    def last_line(self) -> dict[str, Any]:
        """The final line of a finished run: its result, or the error it raised."""
        extra: dict[str, Any]
        if self.task.cancelled():
            status, detail, extra = 503, f"{self.what} was cancelled (the agent is stopping)", {}
        elif (error := self.task.exception()) is not None:
            if not isinstance(error, GhostPanelError | ValueError):
                _log.error("%s failed", self.what, exc_info=error)
            status, detail, extra = error_problem(error)
        else:
            return {"type": "result", **self.task.result().to_dict()}
        return {"type": "error", "error": json.loads(problem_body(status, detail, **extra))}

    async def cancel(self, why: str) -> None:
        """Cancel the operation and wait for it to unwind (an apply's rollback)."""
        if self.task.done():
            return
        _log.warning("%s: %s; cancelling it", self.what, why)
        self.task.cancel()
        # The rollback must run to its end even when this coroutine is cancelled in turn
        # (the agent stopping): the task goes on by itself, we only stop waiting.
        await asyncio.wait({self.task})
        left = self.left[0].conclusion() if self.left else ["it stopped where it was"]
        _log.warning("%s cancelled: %s", self.what, "; ".join(left) or "nothing was changed")


#: The runs going on in this process, for :func:`unwind_runs`.
_RUNS: set[SurgeRun] = set()
#: Seconds the agent's stop waits for the runs it cancels to roll back.
UNWIND_TIMEOUT: Final = 60.0


async def unwind_runs(timeout: float = UNWIND_TIMEOUT) -> None:
    """Cancel every run still going on and wait for each to unwind (at the agent's stop).

    Hypercorn ends the requests of a stopping agent after its graceful timeout, but the
    runs go on in tasks of their own: this waits for their rollbacks before the engine
    connection they need is closed. Runs still unwinding after ``timeout`` are logged.
    """
    runs = list(_RUNS)
    if not runs:
        return
    waits = [asyncio.ensure_future(run.cancel("the agent is stopping")) for run in runs]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for wait in pending:
        wait.cancel()
    for run in runs:
        if not run.task.done():
            _log.error("%s was still unwinding after %g s at the agent's stop: check the "
                       "project with `ghostpanel surge plan`", run.what, timeout)


class _Stream(Response):
    """The ``200`` NDJSON answer of a run (see the module notes)."""

    media_type = NDJSON

    def __init__(self, run: SurgeRun, first: object,
                 gone: asyncio.Future[None] | None = None) -> None:
        super().__init__(status_code=200, media_type=NDJSON,
                         headers={"cache-control": "no-store"})
        # Response writes "content-length: 0" for its empty body; this body is streamed.
        self.raw_headers = [(name, value) for name, value in self.raw_headers
                            if name != b"content-length"]
        self.run = run
        self.first = first
        self.gone = gone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send each line as it comes; cancel the run when the client goes away."""
        gone = self.gone or asyncio.ensure_future(_disconnected(receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            item = self.first
            while item is not _DONE:
                line = _HEARTBEAT_LINE if item is _SILENT else item
                await send({"type": "http.response.body",
                            "body": _line(line),  # type: ignore[arg-type]
                            "more_body": True})
                item = await _next(self.run, gone, HEARTBEAT)
                if item is _GONE:
                    await self.run.cancel("the client disconnected")
                    return
            await send({"type": "http.response.body", "body": _line(self.run.last_line()),
                        "more_body": False})
        except BaseException:
            # The agent stopping (or the server failing to send): unwind the run first.
            await self.run.cancel("its request ended")
            raise
        finally:
            gone.cancel()


#: Seconds the status line waits for the first step. A lock held elsewhere or a Boltfile
#: Surge refuses shows well within it; a first step that takes longer (an image pull)
#: must not leave the client waiting for headers, which many clients time out on.
FIRST_LINE_WAIT: Final = 2.0
#: Seconds of silence (a pull, a health wait) after which a heartbeat line is sent, so
#: that a client's read timeout does not end the request (and so cancel the run).
HEARTBEAT: Final = 10.0
_HEARTBEAT_LINE: Final = {"type": "heartbeat"}

_GONE: Final = object()
_SILENT: Final = object()


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (the request body was read before)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _next(run: SurgeRun, gone: asyncio.Future[None] | None,
                timeout: float | None) -> object:
    """The run's next line; ``_GONE`` when the client disconnected first, ``_SILENT``
    when ``timeout`` seconds passed without either."""
    getter = asyncio.ensure_future(run.lines.get())
    waiting: set[asyncio.Future[Any]] = {getter} if gone is None else {getter, gone}
    try:
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return _GONE if gone is not None and gone.done() else _SILENT


async def start_streamed(operation: Operation, what: str,
                         receive: Receive | None = None) -> Response:
    """Run ``operation``: a problem when it ends before its first step for a reason the
    client must act on, else the NDJSON stream of its progress and result.

    ``receive`` (the request's, its body read) tells when the client disconnects, also
    while the status line still waits for the first step.
    """
    run = SurgeRun(operation, what)
    gone = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
    try:
        first = await _next(run, gone, FIRST_LINE_WAIT)
    except BaseException:
        if gone is not None:
            gone.cancel()
        await run.cancel("its request ended")
        raise
    if first is _GONE:
        await run.cancel("the client disconnected")
        return problem_response(503, f"{what} was cancelled: the client disconnected")
    if first is _DONE and not run.task.cancelled():
        if gone is not None:
            gone.cancel()
        error = run.task.exception()
        if error is not None and not isinstance(error, SurgeError | BoltfileError
                                                | ProjectLocked | ValueError
                                                | EngineConnectionError):
            return _Stream(run, first)  # an unexpected failure: an error line, logged
        if error is not None:
            status, detail, extra = error_problem(error)
            return problem_response(status, detail, **extra)
        result = run.task.result()
        locked = [e for e in result.errors.values() if isinstance(e, ProjectLocked)]
        if locked and len(locked) == len(result.errors):
            status, detail, extra = error_problem(locked[0])
            return problem_response(status, detail, result=result.to_dict(), **extra)
        return _Stream(run, first)
    return _Stream(run, first, gone)
