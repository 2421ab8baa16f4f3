"""A synchronous facade that runs the async client's own coroutines.

No second, hand-copied client: :class:`SyncProxy` wraps any async object of the library
and, on each call, runs the coroutine on a private event loop in a background thread
(JupyterHub's ``sync=`` bridge). Coroutines return their result, async iterators become
plain iterators, and returned models or collections come back wrapped again.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .._exceptions import EnvironmentClosed

__all__ = ["SyncBridge", "SyncProxy"]

T = TypeVar("T")


class SyncBridge:
    """An event loop in a daemon thread, for running coroutines from sync code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="ghostpanel-sync", daemon=True)
        self._thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the bridge's loop and return its result."""
        if self._loop.is_closed() or _running_loop_is(self._loop):
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()  # never awaited: close it rather than leave it to warn
            if self._loop.is_closed():
                raise EnvironmentClosed("this sync facade has been closed; connect again")
            raise RuntimeError("the sync facade cannot be used from its own event loop")

        async def _await() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(_await(), self._loop).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Drive ``iterator`` on the bridge's loop, one item at a time."""
        try:
            while True:
                try:
                    yield self.run(iterator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                self.run(close())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has stopped the loop."""
        return self._loop.is_closed()

    def close(self) -> None:
        """Stop the loop and its thread (again: nothing to do)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


def _running_loop_is(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class SyncProxy:
    """Blocking view of an async library object (environment, collection, model).

    Examples
    --------
    >>> from ghostpanel_kernel import connect_sync
    >>> env = connect_sync("unix:///run/podman/podman.sock")       # doctest: +SKIP
    >>> for c in env.containers.list(all=True): print(c.name)      # doctest: +SKIP
    >>> for line in env.containers.get("web").logs(follow=True): print(line)  # doctest: +SKIP
    """

    __slots__ = ("_bridge", "_owns_bridge", "_target")

    def __init__(self, target: Any, bridge: SyncBridge, *, owns_bridge: bool = False) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_bridge", bridge)
        # The proxy that made the bridge (connect_sync's) stops its thread on close.
        object.__setattr__(self, "_owns_bridge", owns_bridge)

    @property
    def wrapped(self) -> Any:
        """The async object behind this proxy."""
        return self._target

    def _convert(self, value: Any) -> Any:
        if inspect.isawaitable(value) and not hasattr(value, "__aiter__"):
            return self._convert(self._bridge.run(value))
        if hasattr(value, "__anext__"):
            return (self._convert(item) for item in self._bridge.iterate(value))
        if getattr(type(value), "_sync_wrap", False):
            return SyncProxy(value, self._bridge)
        if isinstance(value, list) and value and getattr(type(value[0]), "_sync_wrap", False):
            return [SyncProxy(item, self._bridge) for item in value]
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            return self._wrap_callable(value)
        return self._convert(value)

    def _wrap_callable(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._convert(function(*args, **kwargs))

        call.__name__ = getattr(function, "__name__", "call")
        call.__doc__ = function.__doc__
        return call

    def __iter__(self) -> Iterator[Any]:
        # An object that is both awaitable and async-iterable (an image pull) iterates.
        return (self._convert(item) for item in self._bridge.iterate(aiter(self._target)))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __enter__(self) -> SyncProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the wrapped object (``aclose``), and the bridge if this proxy made it."""
        close = getattr(self._target, "aclose", None)
        try:
            if close is not None and not self._bridge.closed:
                self._bridge.run(close())
        finally:
            if self._owns_bridge:
                self._bridge.close()

    def __repr__(self) -> str:
        return f"<sync {self._target!r}>"

    def __eq__(self, other: object) -> bool:
        target = other._target if isinstance(other, SyncProxy) else other
        return bool(self._target == target)

    def __hash__(self) -> int:
        return hash(self._target)
