"""``BoltfileEditor``: a Boltfile's TOML text and a form over it, kept in sync, with
Bolt's verdict inline and a Surge plan one click away.

Layout, top to bottom: a toolbar (file, Save, Format, Validate, Plan, Apply), the status
line, the text editor beside the form, the diagnostics list, then the plan and the
apply progress bar.

How the two views stay in sync:

- the text is the truth. The Ace editor (Panel's ``CodeEditor`` inside
  ``pn.ipywidget``) and the synced ``value`` trait always hold the same text; typing
  changes ``value`` at once and re-reads the text once typing pauses (``debounce``
  seconds): a new :class:`~ghostpanel_kernel.bolt.Boltfile`, its diagnostics (listed,
  and shown as Ace gutter annotations at their lines) and the form's fields;
- a form field becomes an edit of a copy of that Boltfile through its edit methods
  (comments and layout kept); its text becomes the new ``value``. An edit that fails
  changes nothing and says why in the status line;
- while the text is not TOML the form is disabled and the syntax error is listed.

Save writes the text even when Bolt would refuse it (an editor must not lose work); the
status line then says so in orange. Apply is only offered for the text that was planned:
editing after a plan greys it out until Plan runs again.
"""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.bolt import Boltfile, Diagnostic
from ghostpanel_kernel.bolt import validate as validate_boltfile
from ghostpanel_kernel.engine import BoltfileError, Environment

from ._boltfile_form import BoltfileForm, Edit
from ._panel import load_panel
from ._status import StatusLine, describe_error

if TYPE_CHECKING:
    from panel.widgets import CodeEditor

    from ghostpanel_kernel.surge import SurgePlan, SurgeProgress, SurgeResult

__all__ = ["BoltfileEditor", "ace_annotations", "diagnostics_html", "plan_html"]

_COLOURS = {"error": "#b00020", "warning": "#a15c00"}
_ACTION_COLOURS = {"create": "#1b7f3b", "recreate": "#a15c00", "start": "#1b7f3b",
                   "remove": "#b00020", "unchanged": "#777777", "error": "#b00020"}

_ACE_THEME = "github_light_default"

# Ace loads a mode or theme as a <script> file beside ace.js. Inlined (no CDN on a Bolt
# host's network), there is no such file: the load fails, and since Ace does not watch
# for the failure, the mode waits forever (no highlighting, no theme). When the
# document is ready in the browser, this defines them from their source (Panel ships
# them) and hands them to whatever waits.
_ACE_MODULES_JS = """
const ace = window.ace
if (ace == null || ace.config == null) {
  return
}
const lookup = (id) => {
  try {
    return ace.require(id)
  } catch (error) {
    return undefined
  }
}
for (const [id, source] of Object.entries(modules)) {
  let module = lookup(id)
  if (module == null) {
    new Function(source)()
    module = lookup(id)
  }
  const waiting = ace.config.$loading != null ? ace.config.$loading[id] : null
  if (module != null && waiting) {
    ace.config.$loading[id] = null
    for (const callback of waiting) {
      if (callback) {
        callback(module)
      }
    }
  }
}
"""


def _ace_module_sources(pn: Any) -> dict[str, str]:
    """The TOML mode and the theme, from the Ace files bundled with Panel."""
    folder = Path(pn.__file__).parent / "dist" / "bundled" / "aceplot"
    sources = {}
    for module, name in (("mode", "toml"), ("theme", _ACE_THEME)):
        found = sorted(folder.glob(f"ace-builds@*/src-min-noconflict/{module}-{name}.js"))
        if found:
            sources[f"ace/{module}/{name}"] = found[-1].read_text(encoding="utf-8")
    return sources


def _ace_ipywidget(pn: Any, editor: CodeEditor) -> Any:
    """``pn.ipywidget(editor)``, able to highlight TOML offline."""
    from bokeh.models import CustomJS

    view = pn.ipywidget(editor)
    define_modules = CustomJS(args={"modules": _ace_module_sources(pn)},
                              code=_ACE_MODULES_JS)

    def with_ace_modules() -> None:
        # jupyter_bokeh puts the model in a Document of its own (and Panel makes a new
        # one when a page is reloaded): the callback goes on whichever it is now.
        callbacks = view._document.callbacks.js_event_callbacks.get("document_ready", [])
        if define_modules not in callbacks:
            view._document.js_on_event("document_ready", define_modules)
            view.update_from_model(view._model)

    with_ace_modules()
    view.observe(lambda _: with_ace_modules(), "_view_count")
    return view


# -- rendering -----------------------------------------------------------------------


def ace_annotations(diagnostics: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    """Diagnostics as Ace gutter annotations (Ace counts rows and columns from 0).

    Examples
    --------
    >>> d = Diagnostic(severity="error", line=4, column=19, key="services.web.ports",
    ...                message="host port 80 is used twice", hint="Use another.",
    ...                path="B.toml")
    >>> ace_annotations([d])
    [{'row': 3, 'column': 18, 'text': 'host port 80 is used twice\\nhint: Use another.', \
'type': 'error'}]
    """
    return [{"row": d.line - 1, "column": d.column - 1,
             "text": f"{d.message}\nhint: {d.hint}" if d.hint else d.message,
             "type": d.severity} for d in diagnostics]


def _counts(diagnostics: Sequence[Diagnostic]) -> tuple[int, int]:
    errors = sum(d.is_error for d in diagnostics)
    return errors, len(diagnostics) - errors


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def diagnostics_html(diagnostics: Sequence[Diagnostic]) -> str:
    """The diagnostics list: a verdict line, then ``line:column severity message [key]``
    with the hint below, coloured by severity."""
    errors, warnings = _counts(diagnostics)
    verdict = "Bolt refuses this file" if errors else "Bolt accepts this file"
    head = (f"<b>{_plural(errors, 'error')}, {_plural(warnings, 'warning')}</b> "
            f"&mdash; {verdict}")
    items = []
    for d in diagnostics:
        key = f" <code>[{html.escape(d.key)}]</code>" if d.key else ""
        hint = (f'<br><span style="color: #555; margin-left: 4.5em">hint: '
                f"{html.escape(d.hint)}</span>") if d.hint else ""
        items.append(
            f'<li data-line="{d.line}" data-severity="{d.severity}">'
            f"<code>{d.line}:{d.column}</code> "
            f'<span style="color: {_COLOURS[d.severity]}; font-weight: bold">'
            f"{d.severity}</span> {html.escape(d.message)}{key}{hint}</li>")
    body = (f'<ul style="list-style: none; padding-left: 0; margin: 4px 0">'
            f"{''.join(items)}</ul>") if items else ""
    return f'<div class="gp-diagnostics">{head}{body}</div>'


def plan_rows(plan: SurgePlan) -> list[dict[str, str]]:
    """A Surge plan as table rows (environment, action, service, container, reason): one
    per action, and one ``error`` row for an environment that could not be read."""
    rows = []
    for environment in plan.environments:
        if environment.error is not None:
            rows.append({"environment": environment.environment, "action": "error",
                         "service": "", "container": "",
                         "reason": describe_error(environment.error)})
        for action in environment.actions:
            service = action.service or f"({action.resource})"
            rows.append({"environment": environment.environment, "action": action.kind,
                         "service": service, "container": action.container,
                         "reason": action.reason})
    return rows


def plan_html(rows: Sequence[dict[str, str]]) -> str:
    """A plan as an HTML table, one row per action, the action coloured by kind."""
    if not rows:
        return "<i>The plan is empty: nothing to run.</i>"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    header = "".join(f'<th style="text-align: left; padding: 2px 12px 2px 0">{name}</th>'
                     for name in ("Environment", "Action", "Service", "Container", "Reason"))
    body = []
    for row in rows:
        colour = _ACTION_COLOURS.get(row["action"], "#000000")
        cells = [html.escape(row["environment"]),
                 f'<span style="color: {colour}; font-weight: bold">'
                 f'{html.escape(row["action"])}</span>',
                 html.escape(row["service"]), f'<code>{html.escape(row["container"])}</code>',
                 html.escape(row["reason"])]
        body.append(f'<tr data-action="{html.escape(row["action"])}">' + "".join(
            f'<td style="padding: 2px 12px 2px 0">{cell}</td>' for cell in cells) + "</tr>")
    return (f'<div class="gp-surge-plan"><b>Surge plan</b>: {summary}'
            f'<table style="border-collapse: collapse"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _syntax_diagnostic(error: BoltfileError) -> Diagnostic:
    return Diagnostic(severity="error", line=error.line or 1, column=error.column or 1,
                      key="", message=error.message,
                      hint="Fix the TOML syntax here; the form is back once it parses.",
                      path=error.path)


def _looks_like_text(source: str) -> bool:
    # TOML has an "=" or a "[" header on every meaningful line; a path has neither and
    # no newline. Paths with "=" in them: pass a pathlib.Path.
    return "\n" in source or "=" in source or source.lstrip().startswith("[")


# -- the widget ----------------------------------------------------------------------


class BoltfileEditor(ipywidgets.VBox):
    """Edit a Boltfile as TOML text or as a form, see Bolt's verdict at each line, and
    plan (then apply) it with Surge.

    Parameters
    ----------
    path_or_text
        A Boltfile's path (``str`` or ``os.PathLike``), or its TOML text: a ``str``
        with a newline, an ``=`` or a leading ``[`` is read as text. A path that does
        not exist yet starts an empty file that Save creates.
    environments
        Where Plan and Apply run Surge. ``None``: the registry's default environment
        (``ghostpanel env use``), opened for each plan and closed after it.
    debounce
        Seconds of quiet typing before the text is read again.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> editor = BoltfileEditor("Boltfile.toml",
    ...                         environments=[connect("unix:///run/podman/podman.sock")])
    ...                                                                 # doctest: +SKIP
    >>> editor                                                          # doctest: +SKIP
    >>> editor.form.image.value = "nginx:1.28"     # the text follows   # doctest: +SKIP
    >>> editor.save()                                                   # doctest: +SKIP
    """

    value = Unicode("", help="The Boltfile's TOML text, as in the text editor.").tag(sync=True)
    path = Unicode("", help="The file Save writes; empty for text that came from a string.",
                   ).tag(sync=True)
    dirty = Bool(False, read_only=True,
                 help="Whether the text differs from the file as last read or saved.",
                 ).tag(sync=True)
    error_count = Int(0, read_only=True, help="Errors in the text: Bolt refuses it if > 0.")
    warning_count = Int(0, read_only=True, help="Warnings in the text.")
    debounce = Float(0.3, help="Seconds of quiet typing before the text is read again.")

    def __init__(self, path_or_text: str | os.PathLike[str] = "", *,
                 environments: Sequence[Environment] | None = None, debounce: float = 0.3,
                 **kwargs: Any) -> None:
        pn = load_panel("codeeditor")
        self._environments = None if environments is None else list(environments)
        self._boltfile: Boltfile | None = None
        self._diagnostics: list[Diagnostic] = []
        self._saved_text = ""
        self._typing = False
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._plan: SurgePlan | None = None
        self._planned_text: str | None = None

        self.status = StatusLine()
        # The Ace view is made after the text is loaded: jupyter_bokeh renders a view
        # from the state the model had when it was wrapped, and changes sent before
        # the first view exists are lost.
        self.ace: CodeEditor = pn.widgets.CodeEditor(
            value="", language="toml", annotations=[], theme=_ACE_THEME,
            sizing_mode="stretch_width", height=480, min_width=320)
        self.form = BoltfileForm(on_edit=self._apply_edit,
                                 layout=ipywidgets.Layout(flex="2 1 0%", min_width="280px"))
        self.diagnostics_view = ipywidgets.HTML()
        self.plan_view = ipywidgets.HTML()
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="Apply",
                                               layout=ipywidgets.Layout(visibility="hidden"))
        self.progress_label = ipywidgets.Label()

        self.file_field = ipywidgets.Text(description="file", placeholder="Boltfile.toml",
                                          continuous_update=False,
                                          layout=ipywidgets.Layout(flex="1 1 auto"))
        self.save_button = ipywidgets.Button(description="Save", icon="save",
                                             tooltip="Write the text to the file")
        self.format_button = ipywidgets.Button(description="Format", icon="align-left",
                                               tooltip="ghostpanel boltfile fmt")
        self.validate_button = ipywidgets.Button(description="Validate", icon="check",
                                                 tooltip="Check the text against Bolt's rules")
        self.plan_button = ipywidgets.Button(description="Plan", icon="list",
                                             tooltip="What Surge would do, per environment")
        self.apply_button = ipywidgets.Button(description="Apply", icon="play",
                                              button_style="warning", disabled=True,
                                              tooltip="Run the plan shown below")
        self.pull = ipywidgets.Checkbox(description="pull images", indent=False,
                                        layout=ipywidgets.Layout(width="auto"))

        super().__init__(**kwargs)
        self.add_class("gp-boltfile-editor")
        self.debounce = debounce
        self._load(path_or_text)

        self.ace_view = _ace_ipywidget(pn, self.ace)
        # Set on the view's own Layout: a replaced Layout would stay open after close().
        self.ace_view.layout.flex = "3 1 0%"
        self.ace_view.layout.min_width = "320px"
        self.ace_view.layout.margin = "0 12px 0 0"
        self.file_field.observe(self._file_field_changed, "value")
        self.save_button.on_click(lambda _: self._save_clicked())
        self.format_button.on_click(lambda _: self._format_clicked())
        self.validate_button.on_click(lambda _: self._validate_clicked())
        self.plan_button.on_click(lambda _: self._start("Plan", self._plan_action))
        self.apply_button.on_click(lambda _: self._start("Apply", self._apply_action))
        self.ace.param.watch(self._ace_changed, "value")

        toolbar = ipywidgets.HBox([self.file_field, self.save_button, self.format_button,
                                   self.validate_button, self.plan_button, self.apply_button,
                                   self.pull])
        views = ipywidgets.HBox([self.ace_view, self.form],
                                layout=ipywidgets.Layout(width="100%"))
        self.children = [toolbar, self.status, views, self.diagnostics_view, self.plan_view,
                         ipywidgets.HBox([self.progress, self.progress_label])]

    # -- traits
    @validate("path")
    def _valid_path(self, proposal: dict[str, Any]) -> str:
        path = str(proposal["value"]).strip()
        if path and os.path.isdir(path):
            raise TraitError(f"{path} is a directory, not a Boltfile")
        return os.path.expanduser(path) if path else ""

    @validate("debounce")
    def _valid_debounce(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if seconds < 0:
            raise TraitError(f"debounce must be 0 seconds or more, not {seconds}")
        return seconds

    @observe("path")
    def _path_changed(self, change: dict[str, Any]) -> None:
        self.file_field.value = change["new"]

    @observe("value")
    def _value_changed(self, change: dict[str, Any]) -> None:
        text = change["new"]
        if self.ace.value != text:
            self.ace.value = text
        self.set_trait("dirty", text != self._saved_text)
        self._plan_still_valid()
        if self._typing and self.debounce > 0:
            self._schedule_reparse()
        else:
            self._reparse()

    # -- read-only views
    @property
    def boltfile(self) -> Boltfile | None:
        """The Boltfile the text reads as; ``None`` while it is not TOML."""
        self.flush()
        return self._boltfile

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Bolt's verdict on the current text, sorted by position."""
        self.flush()
        return list(self._diagnostics)

    @property
    def plan_result(self) -> SurgePlan | None:
        """The last Surge plan shown (``None`` before the first)."""
        return self._plan

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The Plan or Apply that runs now, or ran last (``await`` it to wait)."""
        return self._task

    # -- loading and reading the text
    def _load(self, source: str | os.PathLike[str]) -> None:
        if isinstance(source, str) and (not source or _looks_like_text(source)):
            self._show_text(source)
            return
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            self.path = path
            self.status.info(f"{path} does not exist yet; Save creates it.")
            self._show_text("")
            return
        except OSError as error:
            # No path: Save must not overwrite a file that could not be read.
            self.status.error(f"Cannot open {path}: {error.strerror or error}")
            self._show_text("")
            return
        try:
            text = data.decode("utf-8")  # newlines as they are: saved unchanged, same bytes
        except UnicodeDecodeError as error:
            self.status.error(f"Cannot open {path}: it is not UTF-8 text (byte "
                              f"0x{data[error.start]:02x} at offset {error.start}); TOML "
                              "files are UTF-8.")
            self._show_text("")
            return
        self.path = path
        self._show_text(text)

    def _show_text(self, text: str) -> None:
        """Show ``text`` as the file's content as last read."""
        self._saved_text = text
        unchanged = self.value == text
        self.value = text
        if unchanged:  # the observer did not run: read it here
            self.set_trait("dirty", False)
            self._reparse()

    def _ace_changed(self, event: Any) -> None:
        if event.new == self.value:
            return
        self._typing = True
        try:
            self.value = event.new
        finally:
            self._typing = False

    def _schedule_reparse(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._reparse()
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(self.debounce, self._reparse)

    def flush(self) -> None:
        """Read the text now if typing left it unread (Save, Plan... do this first)."""
        if self._pending is not None:
            self._reparse()

    def _reparse(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        text, name = self.value, self.path or "<string>"
        try:
            boltfile: Boltfile | None = Boltfile.loads(text, path=name)
        except BoltfileError as error:
            boltfile = None
            diagnostics = [_syntax_diagnostic(error)]
        else:
            assert boltfile is not None
            diagnostics = validate_boltfile(boltfile)
        self._boltfile = boltfile
        self._diagnostics = diagnostics
        errors, warnings = _counts(diagnostics)
        self.set_trait("error_count", errors)
        self.set_trait("warning_count", warnings)
        self.ace.annotations = ace_annotations(diagnostics)
        self.diagnostics_view.value = diagnostics_html(diagnostics)
        problem = ("" if boltfile is not None else
                   f"The text is not TOML (line {diagnostics[0].line}, column "
                   f"{diagnostics[0].column}): fix it to use the form.")
        self.form.refresh(boltfile, problem=problem)

    # -- form -> text
    def _apply_edit(self, what: str, edit: Edit) -> None:
        self.flush()
        if self._boltfile is None:
            self.status.error(f"Cannot change {what}: the text is not TOML.")
            self.form.refresh(None, problem="The text is not TOML: fix it to use the form.")
            return
        copy = Boltfile.loads(self.value, path=self._boltfile.path)
        try:
            edit(copy)
        except (ValueError, KeyError, RuntimeError, BoltfileError) as error:
            # The copy may be half-changed; the editor's Boltfile is not.
            self.status.error(f"Cannot change {what}: {describe_error(error)}")
            self.form.refresh(self._boltfile)
            return
        text = copy.dumps()
        if text != self.value:
            self.value = text
            self.status.info(f"Changed {what}.")

    # -- toolbar
    def _file_field_changed(self, change: dict[str, Any]) -> None:
        try:
            self.path = change["new"]
        except TraitError as error:
            self.status.error(f"Cannot use that file: {describe_error(error)}")
            self.file_field.value = self.path

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the text to ``path`` (default: :attr:`path`), byte for byte.

        The text is written whether Bolt accepts it or not.

        Raises
        ------
        ValueError
            There is no path to write to.
        OSError
            The file cannot be written.
        """
        target = os.fspath(path) if path is not None else self.path
        if not target:
            raise ValueError("no file to save to: type a path in the file field first")
        text = self.value
        # newline="": the text's own newlines, so a file saved unchanged is the same bytes.
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        self._saved_text = text
        self.path = target
        self.set_trait("dirty", self.value != text)

    def _save_clicked(self) -> None:
        with self.status.reporting("Save"):
            self.flush()
            self.save()
            if self.error_count:
                self.status.warning(f"Saved {self.path}, but Bolt would refuse it: "
                                    f"{_plural(self.error_count, 'error')} (listed below).")
            else:
                self.status.success(f"Saved {self.path}.")

    def format(self) -> None:
        """Replace the text by its formatted form (``ghostpanel boltfile fmt``).

        Raises
        ------
        ValueError
            The text is not TOML.
        """
        self.flush()
        if self._boltfile is None:
            raise ValueError("the text is not TOML; fix the syntax error first")
        self.value = self._boltfile.format()

    def _format_clicked(self) -> None:
        with self.status.reporting("Format"):
            before = self.value
            self.format()
            self.status.info("Formatted." if self.value != before else
                             "Already formatted: nothing to change.")

    def _validate_clicked(self) -> None:
        self._reparse()
        errors, warnings = self.error_count, self.warning_count
        counts = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
        if errors:
            self.status.error(f"Bolt refuses this file: {counts}.")
        elif warnings:
            self.status.warning(f"Bolt accepts this file: {counts}.")
        else:
            self.status.success("Bolt accepts this file: no errors, no warnings.")

    # -- Surge
    @asynccontextmanager
    async def _opened_environments(self) -> AsyncIterator[list[Environment]]:
        if self._environments is not None:
            yield self._environments
            return
        from ghostpanel_kernel.environments import session_registry

        registry = session_registry()
        try:
            opened = [spec.open() for spec in registry.select(None)]
        finally:
            registry.close()
        try:
            yield opened
        finally:
            for environment in opened:
                await environment.aclose()

    def _start(self, action: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` as a task on the running loop (a kernel's own), its errors shown
        in the status line."""
        if self._task is not None and not self._task.done():
            self.status.warning(f"{action}: wait until the running plan or apply ends.")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.status.error(f"{action} needs a running asyncio event loop; a Jupyter "
                              "kernel has one, a plain script does not.")
            return

        async def run() -> None:
            try:
                with self.status.reporting(action):
                    await work()
            finally:
                self._busy(False)

        self._busy(True)  # at once, so that a second click cannot start a second run
        self._task = loop.create_task(run())

    def _busy(self, busy: bool) -> None:
        self.plan_button.disabled = busy
        self.apply_button.disabled = busy or not self._plan_is_current()

    def _plan_is_current(self) -> bool:
        return self._plan is not None and self._planned_text == self.value

    def _plan_still_valid(self) -> None:
        if self._plan is not None and not self._plan_is_current():
            self.apply_button.disabled = True
            if "stale" not in self.plan_view.value:
                self.plan_view.value = (
                    '<div class="gp-surge-plan-stale" style="color: #a15c00">The text '
                    "changed since this plan: press Plan again before Apply.</div>"
                    + self.plan_view.value)

    def _checked_boltfile(self, action: str) -> Boltfile:
        self.flush()
        if self._boltfile is None:
            raise ValueError("the text is not TOML; fix the syntax error first")
        if self.error_count:
            raise ValueError(f"Bolt refuses this file ({_plural(self.error_count, 'error')}, "
                             f"listed below); fix them before {action}")
        return self._boltfile

    async def plan(self) -> SurgePlan:
        """Ask Surge what it would do with the current text, and show it.

        An environment that cannot be read (engine down) gets an ``error`` row and
        makes the status line red; the others are still planned.

        Returns
        -------
        SurgePlan
            Also kept as :attr:`plan_result`; Apply carries out the same text.

        Raises
        ------
        ValueError
            The text is not TOML, or Bolt refuses it.
        GhostPanelError
            Surge refuses the file (``SurgeError``).
        """
        boltfile = self._checked_boltfile("planning")
        from ghostpanel_kernel.surge import plan_surge

        text = self.value
        self.status.info("Planning...")
        async with self._opened_environments() as environments:
            plan = await plan_surge(boltfile, environments, pull=self.pull.value)
        self._plan, self._planned_text = plan, text
        rows = plan_rows(plan)
        self.plan_view.value = plan_html(rows)
        self.apply_button.disabled = not self._plan_is_current()
        failed = [p for p in plan.environments if p.error is not None]
        changes = sum(len(p.changes) for p in plan.environments)
        if failed:
            self.status.error("Plan failed on " + "; ".join(
                f"{p.environment}: {describe_error(p.error)}" for p in failed
                if p.error is not None))
        elif changes:
            self.status.success(f"Planned: {_plural(changes, 'change')} to apply.")
        else:
            self.status.success("Planned: everything is up to date.")
        return plan

    async def _plan_action(self) -> None:
        await self.plan()

    async def apply(self) -> SurgeResult:
        """Apply the current text with Surge, driving the progress bar.

        Returns
        -------
        SurgeResult
            Per environment, how it ended; a failure is also shown in the status line.

        Raises
        ------
        ValueError
            The text is not TOML, or Bolt refuses it.
        GhostPanelError
            Surge refuses the file, or an engine fails before anything is changed.
        """
        boltfile = self._checked_boltfile("applying")
        from ghostpanel_kernel.surge import apply_surge

        self.progress.layout.visibility = "visible"
        self.progress.bar_style = ""
        self.progress.value = 0
        self.progress_label.value = ""
        self.status.info("Applying...")
        try:
            async with self._opened_environments() as environments:
                result = await apply_surge(boltfile, environments, pull=self.pull.value,
                                           progress=self._show_progress)
        except BaseException:
            self.progress.bar_style = "danger"
            raise
        # What ran is no longer a plan to apply: Plan again to see the engines now.
        self._plan = None
        self.apply_button.disabled = True
        summary = "; ".join(result.summary())
        if result.ok:
            self.progress.bar_style = "success"
            self.progress.value = self.progress.max
            self.status.success(f"Applied: {summary}" if summary else "Applied.")
        else:
            self.progress.bar_style = "danger"
            undone = " (rolled back)" if result.rolled_back else ""
            self.status.error(f"Apply failed{undone}: {summary}")
        return result

    async def _apply_action(self) -> None:
        await self.apply()

    def _show_progress(self, progress: SurgeProgress) -> None:
        self.progress.max = max(progress.total, 1)
        self.progress.value = min(progress.step, self.progress.max)
        self.progress_label.value = (f"{progress.environment}: {progress.message}"
                                     if progress.environment else progress.message)
