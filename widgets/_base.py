"""What every engine view of GhostPanel is built on.

- :class:`EngineWidget`, the base: the environment, the status line every error and
  success goes to, and the actions buttons start, run one at a time as tasks on the
  kernel's event loop;
- :class:`ContainerWidget`, the base of the views of one container (the inspector, the
  exec console, the file browser);
- :func:`close_widget_tree`, which closes a widget with every model below it.

Each public ``async`` method of a view is what its button runs: it reports its errors in
the status line (it does not raise them) and returns ``None`` or ``False`` when it
failed, so a notebook can ``await browser.pull("alpine:3.20")`` just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any

import ipywidgets
from traitlets import Bool, Unicode

from ghostpanel_kernel.engine import Container, Environment, NotFound

from ._status import StatusLine

__all__ = ["ContainerWidget", "EngineWidget", "close_widget_tree"]


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


class EngineWidget(ipywidgets.VBox):
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

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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

    def close(self) -> None:
        """Cancel what the widget runs and close it with every widget inside it."""
        # getattr: Widget.__del__ also closes a widget whose __init__ raised early.
        if getattr(self, "_closed", True):  # close_widget_tree(self) comes back here
            super().close()
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        close_widget_tree(self)


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
