"""What every engine view of GhostPanel is built on.

- :class:`EngineWidget`, the base: the environment, the status line every error and
  success goes to, and the actions buttons start, run one at a time as tasks on the
  kernel's event loop;
- :class:`ContainerWidget`, the base of the views of one container (the inspector, the
  exec console, the file browser);
- :class:`TaskBox`, below both and the views of no one environment (alerts, audit,
  metrics): the tasks a view runs, cancelled when it closes; and :class:`LiveBox`, a
  TaskBox that reads its source again on demand and, while ``live``, in a loop;
- :func:`close_widget_tree`, which closes a widget with every model below it.

Each public ``async`` method of a view is what its button runs: it reports its errors in
the status line (it does not raise them) and returns ``None`` or ``False`` when it
failed, so a notebook can ``await browser.pull("alpine:3.20")`` just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, ClassVar

import ipywidgets
from traitlets import Bool, Float, TraitError, Unicode, validate

from ghostpanel_kernel.engine import Container, Environment, NotFound

from ._status import StatusLine

__all__ = ["ContainerWidget", "EngineWidget", "LiveBox", "TaskBox", "close_widget_tree"]


def close_widget_tree(widget: ipywidgets.Widget) -> None:
    """Close ``widget``, every widget below it, and their layout and style models.

    ``Widget.close()`` closes one comm: a closed box would leave its children (and
    every ``Layout``) open in the kernel for as long as the kernel lives.
    """
    seen: set[int] = set()
    pending: list[Any] = [widget]
    while pending:
        current = pending.pop()
        if not isinstance(current, ipywidgets.Widget) or id(current) in seen:
            continue
        seen.add(id(current))
        pending.extend(getattr(current, "children", ()) or ())
        for name in ("layout", "style"):
            pending.append(getattr(current, name, None))
        current.close()


class TaskBox(ipywidgets.VBox):
    """A box that runs tasks on the kernel's event loop and ends them when it closes.

    A subclass sets ``self._tasks = set()`` and ``self._closed = False`` in its
    ``__init__`` before calling ``super().__init__`` (a closing ``Widget.__del__`` may
    come before either: :meth:`close` reads ``_closed`` with a default for that), and
    overrides :meth:`_release` to let go of what else it holds.
    """

    _tasks: set[asyncio.Task[Any]]
    _closed: bool

    def _spawn(self, work: Coroutine[Any, Any, Any],
               name: str | None = None) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        # Kept until done: the loop holds only a weak reference to a task.
        task.add_done_callback(self._tasks.discard)
        return task

    def _release(self) -> None:
        """Let go of what the box holds besides its tasks and widgets (on close)."""

    def close(self) -> None:
        """Cancel the box's tasks, release what it holds, close every widget in it."""
        # getattr: Widget.__del__ also closes a widget whose __init__ raised early.
        if getattr(self, "_closed", True):  # close_widget_tree(self) comes back here
            super().close()
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        self._release()
        close_widget_tree(self)



class LiveBox(TaskBox):
    """A :class:`TaskBox` showing what it reads from a source: again on :meth:`reload`
    (Refresh, a filter) and, while :attr:`live`, in a loop (:meth:`_follow`).

    A subclass defines :meth:`refresh` and :meth:`_has_source`, names its reads in
    ``_reading`` and ``_following`` (the status line's words when no event loop runs),
    sets ``self._live_task = None`` and a ``self.live_toggle`` button in its
    ``__init__``, and may give :attr:`live` and :attr:`refresh_interval` its own
    defaults and help.
    """

    live = Bool(True, help="Keep reading the source.").tag(sync=True)
    refresh_interval = Float(5.0, help="Seconds between two reads while live.").tag(sync=True)

    _reading: ClassVar[str]
    _following: ClassVar[str]
    _live_task: asyncio.Task[None] | None
    live_toggle: ipywidgets.ToggleButton
    status: StatusLine

    @validate("refresh_interval")
    def _valid_interval(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"refresh_interval must be a positive number of seconds, "
                             f"not {value}")
        return value

    def _has_source(self) -> bool:
        """Whether there is still a source to read (it is let go of on close)."""
        raise NotImplementedError

    async def refresh(self) -> Any:
        """Read the source and show it; None (the error shown) on failure."""
        raise NotImplementedError

    def reload(self) -> asyncio.Task[Any] | None:
        """Read the source again in a task (what Refresh and the filters do)."""
        from ._live_table import running_loop  # _live_table imports this module

        if self._closed or not self._has_source():
            return None
        if running_loop(self._reading, self.status) is None:
            return None
        return self._spawn(self.refresh())

    def _restart_live(self) -> None:
        from ._live_table import running_loop  # _live_table imports this module

        if self._live_task is not None:
            self._live_task.cancel()
            self._live_task = None
        if self.live and not self._closed and self._has_source() and \
                running_loop(self._following) is not None:
            self._live_task = self._spawn(self._follow())
        self.live_toggle.icon = "pause" if self.live else "play"

    async def _follow(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.refresh_interval)
            await self.refresh()

    async def wait_idle(self) -> None:
        """Wait for the tasks started so far (the live loop aside: it never ends)."""
        pending = [task for task in self._tasks if task is not self._live_task]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class EngineWidget(TaskBox):
    """Base of GhostPanel's engine views: one environment, one status line, and the
    actions its buttons start, one at a time, as tasks on the kernel's event loop.

    Parameters
    ----------
    env
        The environment (``ghostpanel_kernel.connect(...)``; the async one, not the
        ``connect_sync`` facade: widgets run in the kernel's event loop).
    """

    busy = Bool(False, read_only=True,
                help="Whether an action started from the widget is running.").tag(sync=True)
    action = Unicode("", read_only=True,
                     help="The action running now, or that ran last.").tag(sync=True)

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        if not isinstance(env, Environment):
            raise TypeError(
                f"{type(self).__name__} needs an Environment from ghostpanel_kernel.connect(),"
                f" not {type(env).__name__} (the connect_sync facade cannot run in a "
                "kernel's event loop)")
        self._env = env
        self.status = StatusLine()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        super().__init__(**kwargs)

    @property
    def env(self) -> Environment:
        """The environment shown."""
        return self._env

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The action a button started last (``await`` it to wait for it to end)."""
        return self._task

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        """The widgets to disable while an action runs."""
        return ()

    def _set_busy(self, busy: bool, action: str = "") -> None:
        self.set_trait("busy", busy)
        if action:
            self.set_trait("action", action)
        if self._closed:
            return
        for control in self._controls():
            control.disabled = busy

    def _start(self, action: str, work: Callable[[], Awaitable[Any]]) -> asyncio.Task[None] | None:
        """Run ``work()`` as a task, its errors in the status line; one at a time."""
        if self._closed:
            return None
        if self.busy:
            self.status.warning(f"{action}: wait until {self.action.lower()} ends.")
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.status.error(f"{action} needs a running asyncio event loop; a Jupyter "
                              "kernel has one, a plain script does not.")
            return None

        async def run() -> None:
            try:
                with self.status.reporting(action):  # a net: the actions report themselves
                    await work()
            finally:
                self._set_busy(False)

        self._set_busy(True, action)  # now, so that a second click cannot start a second run
        self._task = self._spawn(run(), f"ghostpanel {type(self).__name__}: {action}")
        return self._task

class ContainerWidget(EngineWidget):
    """Base of the views of one container: the environment, then the container.

    Parameters
    ----------
    env
        The environment, as :class:`EngineWidget` takes it.
    container
        The container's name or id, or a :class:`~ghostpanel_kernel.engine.Container`.
    """

    container_name = Unicode("", read_only=True,
                             help="The container shown, its name or id as given.").tag(sync=True)

    def __init__(self, env: Environment, container: str | Container, **kwargs: Any) -> None:
        self._container: Container | None = None
        if isinstance(container, Container):
            self._container = container
            ident = container.name or container.id
        elif isinstance(container, str) and container.strip():
            ident = container.strip()
        else:
            raise ValueError(f"{type(self).__name__} needs a container name, id or Container, "
                             f"not {container!r}")
        super().__init__(env, **kwargs)
        self.set_trait("container_name", ident)

    async def container(self) -> Container:
        """The container, looked up once (again after the engine no longer knew it)."""
        if self._container is None:
            self._container = await self.env.containers.get(self.container_name)
        return self._container

    @contextlib.contextmanager
    def _forgetting_on_not_found(self) -> Iterator[None]:
        # Removed, or re-created under the same name: look it up afresh next time.
        try:
            yield
        except NotFound:
            self._container = None
            raise
