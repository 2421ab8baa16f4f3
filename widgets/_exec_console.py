"""``ExecConsole``: run a command in a running container and see what it did.

Not a terminal: each command runs to its end (``sh -c`` in the container, as
``docker exec c sh -c '...'``), then its stdout, its stderr (in red) and its exit code
are shown. Previous commands stay in a history to pick and run again.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets
from traitlets import Int, TraitError, validate

from ghostpanel_kernel.engine import Container, Environment, ExecResult

from ._base import ContainerWidget

__all__ = ["ExecConsole", "exec_output_html"]

#: Characters of each stream shown; the rest is cut (the result keeps all of it).
MAX_SHOWN = 200_000

_ERROR = "#b00020"
_OK = "#1b7f3b"


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
        super().__init__(env, container, **kwargs)
        self.add_class("gp-exec-console")
        self.history_limit = history_limit
        self.run_button.on_click(lambda _: self._start("Run", self.run))
        self.command.on_msg(self._command_message)
        self.rerun_button.on_click(lambda _: self._rerun_clicked())
        self.history_list.observe(self._history_picked, "value")
        self.children = [
            ipywidgets.HBox([self.command, self.run_button]), self.status, self.output,
            ipywidgets.HBox([self.history_list, self.rerun_button]),
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
