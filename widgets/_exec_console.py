"""``ExecConsole``: run a command in a running container and see what it did, or open
an interactive shell in it.

Commands: each runs to its end (``sh -c`` in the container, as ``docker exec c sh -c
'...'``), then its stdout, its stderr (in red) and its exit code are shown. Previous
commands stay in a history to pick and run again.

Shell: "Open shell" starts ``sh`` with a terminal (the kernel's
:meth:`~ghostpanel_kernel.engine.Container.exec_session`: the engine's own exec upgrade
on a local engine, the agent's WebSocket on an agent) and shows it in Panel's
``Terminal`` (xterm.js). Panel bundles xterm.js, and the project's Panel loader sends it
inline with the other extensions, so the terminal works with no CDN. Keys typed in it
go to the shell as they are typed; its size follows the terminal's (``stty size``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets
from traitlets import Bool, Int, TraitError, validate

from ghostpanel_kernel.engine import Container, Environment, ExecResult, ExecSession

from ._base import ContainerWidget
from ._panel import load_panel

__all__ = ["ExecConsole", "exec_output_html"]

#: Characters of each stream shown; the rest is cut (the result keeps all of it).
MAX_SHOWN = 200_000

#: Characters of terminal output the kernel keeps (xterm.js keeps its own scrollback).
MAX_TERMINAL_KEPT = 100_000
#: The program the shell runs.
SHELL = ("sh",)

_ERROR = "#b00020"
_OK = "#1b7f3b"


@functools.cache
def _xterm_stylesheets() -> list[str]:
    """xterm.js's own stylesheet, inline, from Panel's package.

    Panel links it from its CDN, which a Bolt host's browser may not reach; without it
    xterm.js shows its hidden helpers (a measuring "W", the input's caret) above the
    terminal. It goes in the widget's ``stylesheets``, so it reaches the widget's
    shadow DOM, where the terminal lives. Empty if this Panel has none bundled.
    """
    import panel

    bundled = Path(panel.__file__).parent / "dist" / "bundled" / "terminal"
    found = sorted(bundled.glob("xterm@*/css/xterm.css"))
    return [found[-1].read_text(encoding="utf-8")] if found else []


def _stream_html(text: str, css_class: str, colour: str = "") -> str:
    if not text:
        return ""
    cut = ""
    if len(text) > MAX_SHOWN:
        cut = (f'<div style="color: #a15c00">({len(text) - MAX_SHOWN:,} more characters '
               "not shown)</div>")
        text = text[:MAX_SHOWN]
    style = f"color: {colour}; " if colour else ""
    return (f'<pre class="{css_class}" style="{style}margin: 2px 0; white-space: pre-wrap">'
            f"{html.escape(text)}</pre>{cut}")


def exec_output_html(command: str, result: ExecResult) -> str:
    """A command's result: the command, stdout, stderr in red, and the exit code.

    Examples
    --------
    >>> text = exec_output_html("false", ExecResult(exit_code=1, stdout="", stderr="no\\n"))
    >>> 'data-exit-code="1"' in text and "exit code 1" in text
    True
    """
    colour = _OK if result.exit_code == 0 else _ERROR
    nothing = ("" if result.stdout or result.stderr else
               '<div style="color: #555"><i>(no output)</i></div>')
    return (f'<div class="gp-exec-output"><div><code>$ {html.escape(command)}</code></div>'
            + _stream_html(result.stdout, "gp-stdout")
            + _stream_html(result.stderr, "gp-stderr", _ERROR) + nothing
            + f'<div class="gp-exit-code" data-exit-code="{result.exit_code}" '
              f'style="color: {colour}; font-weight: bold">exit code {result.exit_code}'
              "</div></div>")


class ExecConsole(ContainerWidget):
    """Run commands in a running container: type, press Enter (or Run), read the result.

    Parameters
    ----------
    env
        The environment (``ghostpanel_kernel.connect(...)``).
    container
        The container's name or id, or a :class:`~ghostpanel_kernel.engine.Container`.
    history_limit
        How many previous commands the history keeps.

    Examples
    --------
    >>> console = ExecConsole(env, "web")                                # doctest: +SKIP
    >>> result = await console.run("ls /etc")                            # doctest: +SKIP
    >>> result.exit_code                                                 # doctest: +SKIP
    0
    """

    history_limit = Int(50, help="How many previous commands the history keeps.")
    shell_open = Bool(False, read_only=True,
                      help="Whether an interactive shell runs in the terminal.").tag(sync=True)

    def __init__(self, env: Environment, container: str | Container, *,
                 history_limit: int = 50, **kwargs: Any) -> None:
        self.result: ExecResult | None = None
        self.command = ipywidgets.Text(placeholder="ls -la /   (Enter runs it)",
                                       layout=ipywidgets.Layout(flex="1 1 auto"))
        self.run_button = ipywidgets.Button(description="Run", icon="play",
                                            button_style="primary")
        self.output = ipywidgets.HTML(layout=ipywidgets.Layout(
            max_height="480px", overflow="auto"))
        self.history_list = ipywidgets.Select(options=[], rows=6, description="History",
                                              layout=ipywidgets.Layout(width="100%"))
        self.rerun_button = ipywidgets.Button(description="Run again", icon="repeat",
                                              tooltip="Run the command picked in the history")
        self.shell_button = ipywidgets.Button(description="Open shell", icon="terminal",
                                              tooltip="Start sh with a terminal, below")
        self.close_shell_button = ipywidgets.Button(description="Close shell", icon="stop",
                                                    disabled=True,
                                                    tooltip="End the shell's process")
        self.shell: ExecSession | None = None
        self.shell_exit_code: int | None = None
        pn = load_panel()  # "terminal" is among the extensions every widget loads
        self.terminal = pn.widgets.Terminal(
            options={"cursorBlink": True}, height=320,
            sizing_mode="stretch_width", stylesheets=_xterm_stylesheets())
        self.terminal_view = pn.ipywidget(self.terminal)
        super().__init__(env, container, **kwargs)
        self.add_class("gp-exec-console")
        self.history_limit = history_limit
        self._typed: asyncio.Queue[str] | None = None
        self._opening = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.run_button.on_click(lambda _: self._start("Run", self.run))
        self.command.on_msg(self._command_message)
        self.rerun_button.on_click(lambda _: self._rerun_clicked())
        self.history_list.observe(self._history_picked, "value")
        self.shell_button.on_click(lambda _: self._spawn_shell_action(self.open_shell()))
        self.close_shell_button.on_click(
            lambda _: self._spawn_shell_action(self.close_shell()))
        self.terminal.param.watch(self._key_typed, "value")
        self.terminal.param.watch(self._terminal_resized, ["nrows", "ncols"])
        self.children = [
            ipywidgets.HBox([self.command, self.run_button]), self.status, self.output,
            ipywidgets.HBox([self.history_list, self.rerun_button]),
            ipywidgets.HBox([self.shell_button, self.close_shell_button]),
            self.terminal_view,
        ]

    @validate("history_limit")
    def _valid_history_limit(self, proposal: dict[str, Any]) -> int:
        limit = int(proposal["value"])
        if limit < 1:
            raise TraitError(f"history_limit must be 1 or more, not {limit}")
        return limit

    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.run_button, self.rerun_button)

    @property
    def history(self) -> list[str]:
        """Previous commands, the latest first, each once."""
        return [str(option) for option in self.history_list.options]

    def _command_message(self, widget: Any, content: Mapping[str, Any], buffers: Any) -> None:
        if content.get("event") == "submit":  # Enter in the command field
            self._start("Run", self.run)

    def _history_picked(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.command.value = change["new"]

    def _rerun_clicked(self) -> None:
        picked = self.history_list.value
        if not picked:
            self.status.warning("Pick a command in the history first.")
            return
        self._start("Run", lambda: self.run(picked))

    def _remember(self, command: str) -> None:
        history = [command, *(c for c in self.history if c != command)][:self.history_limit]
        self.history_list.options = history
        self.history_list.value = None

    async def run(self, command: str | None = None) -> ExecResult | None:
        """Run ``command`` (default: the one typed) with ``sh -c`` in the container.

        A command that exits non-zero is a result, not a failure: its exit code shows in
        red. ``None`` (and the error in the status line) when it could not run at all:
        the container is gone or stopped, the engine unreachable.
        """
        command = (self.command.value if command is None else command).strip()
        with self.status.reporting(f"Run {command!r}" if command else "Run"), \
                self._forgetting_on_not_found():
            if not command:
                raise ValueError("type a command first")
            self.command.value = command
            self.status.info(f"Running {command} ...")
            container = await self.container()
            result = await container.exec(command)
            self.result = result
            self._remember(command)
            self.output.value = exec_output_html(command, result)
            self.command.value = ""
            if result.exit_code == 0:
                self.status.success(f"{command} exited with 0.")
            else:
                self.status.warning(f"{command} exited with {result.exit_code}.")
            return result
        return None

    # -- the interactive shell ---------------------------------------------------------

    def _spawn_shell_action(self, work: Any) -> None:
        if self._closed:
            work.close()
            return
        self._spawn(work, f"ghostpanel ExecConsole shell {self.container_name}")

    def _terminal_size(self) -> tuple[int, int] | None:
        rows, cols = self.terminal.nrows, self.terminal.ncols
        return (rows, cols) if rows and cols else None  # 0 until a browser has drawn it

    def _write(self, text: str) -> None:
        self.terminal.write(text)
        if len(self.terminal.output) > 2 * MAX_TERMINAL_KEPT:
            # Only the kernel's copy: the browser's terminal has its own scrollback.
            self.terminal.output = self.terminal.output[-MAX_TERMINAL_KEPT:]

    async def open_shell(self, command: Sequence[str] = SHELL) -> ExecSession | None:
        """Start ``command`` (``sh``) with a terminal and connect it to :attr:`terminal`.

        Returns the session (the shell runs on in the background; :meth:`close_shell`
        or ``exit`` ends it), or ``None`` with the error in the status line.
        """
        if self.shell is not None or self._opening:
            self.status.warning("A shell is already open: close it first.")
            return None
        self._opening = True  # a second click while this one waits opens nothing
        self.shell_button.disabled = True
        try:
            with self.status.reporting("Open shell"), self._forgetting_on_not_found():
                container = await self.container()
                self.status.info(f"Opening {' '.join(command)} in {self.container_name} ...")
                session = await container.exec_session(list(command), tty=True,
                                                       size=self._terminal_size())
                self.shell = session
                self.shell_exit_code = None
                self._decoder.reset()
                self._typed = asyncio.Queue()
                self._loop = asyncio.get_running_loop()
                self.set_trait("shell_open", True)
                self.close_shell_button.disabled = False
                self._spawn(self._pump_output(session), "ghostpanel ExecConsole output")
                self._spawn(self._pump_input(session, self._typed),
                            "ghostpanel ExecConsole input")
                self.status.success(
                    f"Shell open in {self.container_name}: type in the terminal.")
                return session
            return None
        finally:
            self._opening = False
            if self.shell is None and not self._closed:
                self.shell_button.disabled = False

    def _key_typed(self, event: Any) -> None:
        # Panel sets ``value`` to each key (then back to "" without an event), in order.
        # The browser's messages may be handled off the event loop's thread (they are
        # in JupyterLab): a plain put_nowait would not wake the waiting sender there.
        typed, loop = self._typed, self._loop
        if event.new and typed is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(typed.put_nowait, event.new)

    def _terminal_resized(self, *events: Any) -> None:
        size, session, loop = self._terminal_size(), self.shell, self._loop
        if session is not None and size is not None and loop is not None \
                and not loop.is_closed() and not self._closed:
            loop.call_soon_threadsafe(
                self._spawn, self._resize(session, size), "ghostpanel ExecConsole resize")

    async def _resize(self, session: ExecSession, size: tuple[int, int]) -> None:
        with contextlib.suppress(Exception):  # a shell that just ended: nothing to size
            await session.resize(*size)

    async def _pump_input(self, session: ExecSession, typed: asyncio.Queue[str]) -> None:
        """Send the keys typed, in order, one write per burst."""
        with contextlib.suppress(Exception):
            while not session.ended:
                keys = [await typed.get()]
                while not typed.empty():
                    keys.append(typed.get_nowait())
                await session.send("".join(keys))

    async def _pump_output(self, session: ExecSession) -> None:
        """Show the shell's output until it ends, then its exit code.

        Closing the widget cancels this task: the session is closed on the way out,
        which ends the shell's process.
        """
        try:
            async for chunk in session:
                self._write(self._decoder.decode(chunk))
        except Exception as error:  # the connection broke: say so where it shows
            self.status.error(f"Shell in {self.container_name} failed: {error}")
        finally:
            await session.close()
            if self.shell is session:
                self._shell_ended(session)

    def _shell_ended(self, session: ExecSession) -> None:
        self.shell = None
        self._typed = None
        self.shell_exit_code = session.exit_code
        self.set_trait("shell_open", False)
        if self._closed:
            return
        self.shell_button.disabled = False
        self.close_shell_button.disabled = True
        code = "unknown" if session.exit_code is None else session.exit_code
        self._write(f"\r\n[shell ended, exit code {code}]\r\n")
        if session.exit_code in (0, None):
            self.status.info(f"The shell in {self.container_name} ended (exit code {code}).")
        else:
            self.status.warning(f"The shell in {self.container_name} exited with {code}.")

    async def close_shell(self) -> None:
        """End the shell: its process is hung up (the session's close)."""
        session = self.shell
        if session is not None:
            await session.close()
            if self.shell is session:
                self._shell_ended(session)
