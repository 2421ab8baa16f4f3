"""TemplateGallery: the app templates of every source as cards, deployed with Surge.

The gallery shows one card per template (title, source, categories, description) with
a search box (title, description, name and categories) and a category filter. *Deploy*
on a card opens the deploy panel below: one field per variable of the template (a
dropdown for a choice, a checkbox for a boolean, a password box for a secret), the
project name and, with several environments, where to deploy; the Boltfile it will
apply is shown as the fields change. *Deploy* there validates, then applies it with
Surge, with a progress bar and Surge's steps; a value that does not fit shows its
problem under its field, and a Boltfile the validator refuses shows the validator's
errors in the status line; nothing is deployed then.

Plain ipywidgets (no Panel): the gallery renders alike in JupyterLab, Voila and
headless tests.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from typing import Any

import ipywidgets

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.surge import SurgeProgress, SurgeResult
from ghostpanel_kernel.templates import (
    InvalidTemplateBoltfile,
    RenderedTemplate,
    Template,
    TemplateError,
    TemplateLibrary,
    Variable,
    VariableError,
    deploy_template,
    render_template,
)

from ._base import TaskBox, close_widget_tree
from ._live_table import EnvironmentsArg, close_later, open_environments, running_loop
from ._status import StatusLine, describe_error
from ._surge_log import SurgeRunLog

__all__ = ["TemplateGallery"]

ALL = "All"
# A card without a logo URL gets a coloured badge with its initial, by category
# (emoji would need a font a headless or minimal desktop may not have).
_COLOURS = {"games": "#6a1b9a", "media": "#c62828", "ai": "#00695c", "gpu": "#2e7d32"}
_LOG_LINES = 30


def _icon(template: Template) -> str:
    """A card's picture: its logo when it is a URL, else a badge with its initial."""
    if template.logo.startswith(("https://", "http://", "data:image/")):
        return (f'<img src="{html.escape(template.logo)}" alt="" '
                'style="width: 40px; height: 40px; object-fit: contain">')
    colour = next((_COLOURS[c.casefold()] for c in template.categories
                   if c.casefold() in _COLOURS), "#455a64")
    initial = html.escape(template.title[:1].upper() or "?")
    return (f'<span style="display: inline-block; width: 40px; height: 40px; '
            f'border-radius: 8px; background: {colour}; color: white; font-size: 22px; '
            f'line-height: 40px; text-align: center; flex: none">{initial}</span>')


def _matches(template: Template, words: Sequence[str]) -> bool:
    text = " ".join([template.name, template.title, template.description,
                     template.source, *template.categories]).casefold()
    return all(word in text for word in words)


class _Field:
    """One variable's input and the line under it that says what is wrong."""

    def __init__(self, variable: Variable) -> None:
        self.variable = variable
        label = variable.label or variable.name
        style = {"description_width": "14em"}
        layout = ipywidgets.Layout(width="34em")
        default = variable.default
        self.input: ipywidgets.ValueWidget
        if variable.type == "boolean":
            self.input = ipywidgets.Checkbox(value=bool(default), description=label,
                                             style={"description_width": "initial"},
                                             layout=ipywidgets.Layout(margin="0 0 0 14em"),
                                             indent=False)
        elif variable.type == "choice":
            self.input = ipywidgets.Dropdown(options=list(variable.choices),
                                             value=str(default) if default is not None
                                             else variable.choices[0],
                                             description=label, style=style, layout=layout)
        elif variable.type == "secret":
            self.input = ipywidgets.Password(value="" if default is None else str(default),
                                             description=label, style=style, layout=layout)
        else:
            # Integers and ports are typed as text too: the variable checks them, and a
            # wrong value is shown under the field rather than silently clamped.
            self.input = ipywidgets.Text(value="" if default is None else str(default),
                                         description=label, style=style, layout=layout,
                                         placeholder="(required)" if variable.required
                                         else "")
        self.input.add_class(f"gp-template-var-{variable.name}")
        self.error = ipywidgets.HTML()
        self.error.add_class("gp-template-field-error")
        parts: list[ipywidgets.Widget] = [self.input]
        if variable.help:
            parts.append(ipywidgets.HTML(f'<small style="margin-left: 14em; color: #666">'
                                         f'{html.escape(variable.help)}</small>'))
        parts.append(self.error)
        self.box = ipywidgets.VBox(parts)

    @property
    def value(self) -> Any:
        return self.input.value

    def show_error(self, problem: str | None) -> None:
        self.error.value = "" if not problem else (
            f'<div style="color: #c62828; margin-left: 14em">{html.escape(problem)}</div>')


class TemplateGallery(TaskBox):
    """The app templates of every source as cards; deploy one with a form.

    Parameters
    ----------
    environments
        Where templates are deployed: an Environment, an EnvironmentSpec or a list of
        them (specs are opened here and closed with the gallery). None: the default
        environment of the registry, opened when a deployment starts.
    library
        The templates (default: a :class:`~ghostpanel_kernel.templates.TemplateLibrary`
        of ``$GHOSTPANEL_HOME``: the curated templates and every imported source).
    apply_options
        Passed to :func:`~ghostpanel_kernel.surge.apply_surge` (``stop_timeout``,
        ``health_timeout``...).

    Examples
    --------
    >>> from ghostpanel_widgets import TemplateGallery
    >>> gallery = TemplateGallery(env)
    >>> gallery.search.value = "minecraft"
    >>> gallery.visible_names
    ['curated/minecraft']
    >>> gallery.open_deploy("minecraft")                               # doctest: +SKIP
    >>> await gallery.deploy()                                         # doctest: +SKIP
    """

    def __init__(self, environments: EnvironmentsArg | None = None, *,
                 library: TemplateLibrary | None = None, **apply_options: Any) -> None:
        self._tasks = set()
        self._closed = False
        self._opened: list[Environment] = []
        self._environments: list[Environment] | None = None
        if environments is not None:
            self._environments, self._opened = open_environments(environments)
        self._apply_options = apply_options
        self.library = library or TemplateLibrary()
        self.status = StatusLine()
        self._templates: list[Template] = []
        self.search = ipywidgets.Text(placeholder="Search templates",
                                      layout=ipywidgets.Layout(width="22em"))
        self.search.add_class("gp-template-search")
        self.category = ipywidgets.Dropdown(options=[ALL], value=ALL,
                                            description="Category")
        self.reload_button = ipywidgets.Button(description="Reload", icon="refresh",
                                               tooltip="Read the template sources again")
        # Import (or refresh) a named source: a Portainer file, a TOML template or a
        # folder of them, by path or URL.
        self.import_location = ipywidgets.Text(
            placeholder="Portainer JSON or TOML: path or https URL",
            layout=ipywidgets.Layout(width="26em"))
        self.import_location.add_class("gp-template-import-location")
        self.import_name = ipywidgets.Text(placeholder="source name (optional)",
                                           layout=ipywidgets.Layout(width="14em"))
        self.import_button = ipywidgets.Button(description="Import", icon="download",
                                               tooltip="Import these templates as a "
                                                       "named source")
        self.import_button.add_class("gp-template-import")
        self.cards = ipywidgets.GridBox(layout=ipywidgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(17em, 1fr))", grid_gap="8px"))
        self.cards.add_class("gp-template-cards")
        self.empty = ipywidgets.HTML()
        # The deploy panel, hidden until a card's Deploy is pressed.
        self.selected: Template | None = None
        self._fields: list[_Field] = []
        self.panel_title = ipywidgets.HTML()
        self.notes = ipywidgets.HTML()
        self.form = ipywidgets.VBox()
        self.project = ipywidgets.Text(description="Project",
                                       style={"description_width": "14em"},
                                       layout=ipywidgets.Layout(width="34em"))
        self.project.add_class("gp-template-project")
        self.project_error = ipywidgets.HTML()
        self.target = ipywidgets.Dropdown(description="Environment",
                                          style={"description_width": "14em"})
        self.preview = ipywidgets.HTML()
        #: The Boltfile the form's values give now ("" while a field is wrong).
        self.boltfile_text = ""
        self.preview.add_class("gp-template-preview")
        self.deploy_button = ipywidgets.Button(description="Deploy", icon="rocket",
                                               button_style="primary")
        self.deploy_button.add_class("gp-template-deploy")
        self.cancel_button = ipywidgets.Button(description="Close", icon="times")
        self._run_log = SurgeRunLog("gp-template-log", limit=_LOG_LINES)
        self.progress = self._run_log.progress
        self.log_view = self._run_log.log_view
        self.deploy_panel = ipywidgets.VBox(
            [self.panel_title, self.notes, self.form, self.project, self.project_error,
             self.target, ipywidgets.HTML("<b>The Boltfile it will apply</b>"), self.preview,
             ipywidgets.HBox([self.deploy_button, self.cancel_button]),
             self.progress, self.log_view],
            layout=ipywidgets.Layout(display="none", border="1px solid #ccc",
                                     padding="8px", margin="8px 0"))
        self.deploy_panel.add_class("gp-template-deploy-panel")
        super().__init__([ipywidgets.HBox([self.search, self.category, self.reload_button]),
                          ipywidgets.HBox([self.import_location, self.import_name,
                                           self.import_button]),
                          self.status, self.cards, self.empty, self.deploy_panel])
        self.add_class("gp-template-gallery")
        self.search.observe(lambda _: self._show_cards(), "value")
        self.category.observe(lambda _: self._show_cards(), "value")
        self.project.observe(lambda _: self.update_preview(), "value")
        self.reload_button.on_click(lambda _: self.reload())
        self.import_button.on_click(lambda _: self._start_import())
        self.deploy_button.on_click(lambda _: self._start_deploy())
        self.cancel_button.on_click(lambda _: self.close_deploy())
        if self._environments is not None:
            self.target.options = [e.name for e in self._environments]
        self._set_target_visible()
        self.reload()

    # -- the cards
    def reload(self) -> None:
        """Read every template source again and show the cards."""
        with self.status.reporting("Reading the templates"):
            self._templates = self.library.templates()
            categories = sorted({c for t in self._templates for c in t.categories},
                                key=str.casefold)
            current = self.category.value
            self.category.options = [ALL, *categories]
            self.category.value = current if current in self.category.options else ALL
            self._show_cards()

    @property
    def templates(self) -> list[Template]:
        """Every template the gallery read."""
        return list(self._templates)

    @property
    def visible(self) -> list[Template]:
        """The templates the search and the category select, in order."""
        words = self.search.value.casefold().split()
        category = self.category.value
        return [t for t in self._templates
                if (category == ALL or category.casefold() in
                    (c.casefold() for c in t.categories)) and _matches(t, words)]

    @property
    def visible_names(self) -> list[str]:
        """``source/name`` of each card shown."""
        return [t.qualified_name for t in self.visible]

    def _card(self, template: Template) -> ipywidgets.Widget:
        categories = " ".join(
            f'<span style="background: #e3f2fd; border-radius: 8px; padding: 0 6px; '
            f'font-size: 11px">{html.escape(c)}</span>' for c in template.categories)
        body = ipywidgets.HTML(
            f'<div style="line-height: 1.35"><div style="display: flex; gap: 8px; '
            f'align-items: center">{_icon(template)}'
            f'<div><b class="gp-template-title">{html.escape(template.title)}</b><br>'
            f'<small style="color: #666">{html.escape(template.qualified_name)}</small>'
            f'</div></div><div style="margin: 4px 0">{categories}</div>'
            f'<div style="font-size: 12px; white-space: normal">'
            f'{html.escape(template.description)}</div></div>')
        button = ipywidgets.Button(description="Deploy…", icon="rocket",
                                   tooltip=f"Deploy {template.title}")
        button.add_class("gp-template-open")
        button.on_click(lambda _: self.open_deploy(template.qualified_name))
        card = ipywidgets.VBox([body, button], layout=ipywidgets.Layout(
            border="1px solid #ddd", padding="8px"))
        card.add_class("gp-template-card")
        return card

    def _show_cards(self) -> None:
        old = list(self.cards.children)
        shown = self.visible
        self.cards.children = [self._card(t) for t in shown]
        for card in old:
            close_widget_tree(card)
        self.empty.value = "" if shown else (
            '<i class="gp-template-none">No template matches.</i>')

    # -- importing a source
    def _start_import(self) -> asyncio.Task[Any] | None:
        if running_loop("Importing templates", self.status) is None:
            return None
        return self._spawn(self.import_source())

    async def import_source(self, location: str | None = None,
                            name: str | None = None) -> list[Template] | None:
        """Import (or refresh) the source at ``location`` (default: the Import box) as
        ``name`` (default: the name box, else from the file name); its templates, or
        None (the reason shown) when nothing was imported. Refused templates are said
        in the status line; the cards are read again."""
        location = (location if location is not None else self.import_location.value).strip()
        name = (name if name is not None else self.import_name.value).strip() or None
        if not location:
            self.status.error("Give a Portainer JSON file, a TOML template or a folder "
                              "(a path or an http(s) URL) to import")
            return None
        self.import_button.disabled = True
        try:
            self.status.info(f"Importing {location}...")
            try:
                # A download or a git clone blocks: not on the kernel's event loop.
                result = await asyncio.to_thread(self.library.import_source, location,
                                                 name=name)
            except TemplateError as error:
                self.status.error(f"Import failed: {error}")
                return None
            self.reload()
            refused = "; ".join(f"{r.title}: {r.reason}" for r in result.refused)
            message = (f"Imported {len(result.templates)} template(s) as source "
                       f"{result.source.name}")
            if refused:
                self.status.warning(f"{message}; not imported: {refused}")
            else:
                self.status.success(message + ".")
            return result.templates
        finally:
            self.import_button.disabled = False

    # -- the deploy panel
    def _find(self, name: str) -> Template:
        source, _, short = name.rpartition("/")
        matches = [t for t in self._templates
                   if t.name == short and (not source or t.source == source)]
        if len(matches) != 1:
            raise TemplateError(f"no single template {name!r} in the gallery")
        return matches[0]

    def open_deploy(self, name: str) -> None:
        """Open the deploy panel for template ``name`` (``NAME`` or ``SOURCE/NAME``)."""
        with self.status.reporting(f"Opening {name}"):
            template = self._find(name)
            self.selected = template
            old = self._fields
            self._fields = [_Field(v) for v in template.variables]
            for field in self._fields:
                field.input.observe(lambda _: self.update_preview(), "value")
            self.form.children = [f.box for f in self._fields]
            for field in old:
                close_widget_tree(field.box)
            self.panel_title.value = (f"<h4 style='margin: 0 0 4px'>Deploy "
                                      f"{html.escape(template.title)}</h4>")
            self.notes.value = "".join(
                f'<div style="color: #b26a00">Not carried over: {html.escape(n)}</div>'
                for n in template.notes)
            self.project.value = self._default_project(template)
            self._run_log.clear()
            self.deploy_panel.layout.display = "flex"
            self.status.clear()
            self.update_preview()

    @staticmethod
    def _default_project(template: Template) -> str:
        try:
            return render_template(template).project
        except TemplateError:
            return template.name

    def close_deploy(self) -> None:
        """Hide the deploy panel."""
        self.deploy_panel.layout.display = "none"
        self.selected = None

    def values(self) -> dict[str, Any]:
        """The form's values by variable name (as typed: the template converts them).

        An empty box of a variable without a default is no value: it is required.
        """
        return {f.variable.name: f.value for f in self._fields
                if not (f.variable.required and f.value == "")}

    def render(self) -> RenderedTemplate | None:
        """The Boltfile for the form's values, validated; None (problems shown next to
        their fields, or the validator's errors in the status line) when it cannot be."""
        if self.selected is None:
            return None
        for field in self._fields:
            field.show_error(None)
        self.project_error.value = ""
        project = self.project.value.strip()
        if not project or " " in project:
            self.project_error.value = ('<div style="color: #c62828; margin-left: 14em">'
                                        'a project name without spaces is required</div>')
            return None
        try:
            return render_template(self.selected, self.values(), project=project)
        except VariableError as error:
            for field in self._fields:
                field.show_error(error.problems.get(field.variable.name))
            return None
        except InvalidTemplateBoltfile as error:
            self.status.error("The Boltfile is refused: " + "; ".join(
                f"{d.key}: {d.message}" for d in error.diagnostics))
            return None
        except TemplateError as error:
            self.status.error(str(error))
            return None

    def update_preview(self) -> None:
        """Show the Boltfile the form's values give (or why there is none)."""
        if self.selected is None:
            return
        rendered = self.render()
        self.boltfile_text = rendered.text if rendered is not None else ""
        text = self.boltfile_text or "(fix the fields above)"
        if rendered is not None:  # a secret is not shown on screen, even here
            for variable in rendered.template.variables:
                secret = rendered.values.get(variable.name)
                if variable.type == "secret" and secret:
                    text = text.replace(f'"{secret}"', '"********"')
        self.preview.value = ('<pre class="gp-template-boltfile" style="max-height: 24em; '
                              'overflow: auto; background: #f7f7f7; padding: 6px; '
                              'line-height: 1.3">'
                              f'{html.escape(text)}</pre>')

    def _set_target_visible(self) -> None:
        several = self._environments is not None and len(self._environments) > 1
        self.target.layout.display = "flex" if several else "none"

    def _target(self) -> list[Environment]:
        if self._environments is None:
            from ghostpanel_kernel.environments import session_registry

            registry = session_registry()
            try:
                specs = registry.select(None)
            finally:
                registry.close()
            self._environments, opened = open_environments(specs)
            self._opened.extend(opened)
            self.target.options = [e.name for e in self._environments]
            self._set_target_visible()
        chosen = self.target.value
        return [e for e in self._environments if e.name == chosen] or self._environments[:1]

    def _start_deploy(self) -> asyncio.Task[Any] | None:
        if running_loop("Deploying", self.status) is None:
            return None
        return self._spawn(self.deploy())

    async def deploy(self) -> SurgeResult | None:
        """Deploy the selected template with the form's values; the result, or None
        (the reason shown) when nothing was applied."""
        rendered = self.render()
        if rendered is None:
            if self.selected is None:
                self.status.error("Choose a template first")
            return None
        self.deploy_button.disabled = True
        try:
            with self.status.reporting(f"Deploying {rendered.template.title}"):
                environments = self._target()
                self._begin(f"Deploying {rendered.template.title} as {rendered.project}")
                result = await deploy_template(rendered, environments,
                                               progress=self._on_progress,
                                               **self._apply_options)
                self._end(result, rendered)
                return result
            return None
        finally:
            self.deploy_button.disabled = False

    def _begin(self, what: str) -> None:
        self._run_log.begin(what)
        self.status.info(what + "...")

    def _on_progress(self, progress: SurgeProgress) -> None:
        self._run_log.step(progress)

    def _end(self, result: SurgeResult, rendered: RenderedTemplate) -> None:
        self._run_log.end(result)
        if result.ok:
            summary = "; ".join(result.summary())
            self.status.success(f"Deployed {rendered.template.title} as "
                                f"{rendered.project}" + (f": {summary}." if summary else "."))
        else:
            problems = [*(f"{env}: {describe_error(error)}"
                          for env, error in result.errors.items()), *result.conclusion()]
            self.status.error(f"Deploying {rendered.project} failed: " + "; ".join(problems))

    async def wait_idle(self) -> None:
        """Wait for the deployments started so far."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- closing
    def _release(self) -> None:
        opened, self._opened = self._opened, []
        close_later(opened)

