"""``ghostpanel template``: app templates (Portainer's JSON, GhostPanel's TOML), deployed
with Surge.

``import FILE_OR_URL [--name SOURCE]`` adds (or refreshes) a named source (``sources``
lists them, ``remove-source`` forgets one); ``ls``,
``show`` and ``deploy`` read every source at once: the curated templates and each one
imported. A template is named ``NAME`` when one source alone has it, else
``SOURCE/NAME``. ``deploy NAME --set key=value ... [--env E] [--project P]`` renders
the template, validates the Boltfile and applies it as ``ghostpanel surge apply`` does
(progress on stderr, all or nothing, Ctrl-C rolls back); ``--dry-run`` prints the
Boltfile instead. See docs/templates.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..templates import (
    InvalidTemplateBoltfile,
    Template,
    TemplateError,
    TemplateLibrary,
    VariableError,
    deploy_template,
    deployed_path,
    render_template,
)
from ._app import CliContext, CommandGroup, env_option, json_option, pass_app
from ._output import CommandError, echo_json, one_line, render_table, warn
from ._surge import _changing, _ProgressBar, health_timeout_option, timeout_option

__all__ = ["template"]

LS_HEADERS = ("NAME", "SOURCE", "CATEGORIES", "TITLE")
VARIABLE_HEADERS = ("VARIABLE", "TYPE", "DEFAULT", "HELP")
SOURCE_HEADERS = ("SOURCE", "TEMPLATES", "REFUSED", "IMPORTED", "LOCATION")


def _library() -> TemplateLibrary:
    return TemplateLibrary()


def _get(name: str) -> Template:
    try:
        return _library().get(name)
    except TemplateError as error:
        raise CommandError(str(error)) from None


@click.group(cls=CommandGroup)
def template() -> None:
    """App templates: import Portainer or TOML templates, list, show and deploy them."""


@template.command("import")
@click.argument("location", metavar="FILE_OR_URL")
@click.option("--name", "source", metavar="SOURCE",
              help="The source's name (default: from the file name); importing again "
                   "under the same name refreshes it.")
@json_option
def import_(location: str, source: str | None, as_json: bool) -> None:
    """Import the templates of a Portainer JSON file (v2, v3), a TOML template or a
    folder of them (a path or an http(s) URL) as a named source."""
    try:
        result = _library().import_source(location, name=source)
    except TemplateError as error:
        raise CommandError(str(error)) from None
    if as_json:
        echo_json({"source": result.source.name,
                   "templates": [t.to_dict() for t in result.templates],
                   "refused": [{"title": r.title, "reason": r.reason}
                               for r in result.refused]})
        return
    click.echo(f"{result.source.name}: {len(result.templates)} template(s) imported")
    for imported in result.templates:
        click.echo(f"  {imported.name}: {imported.title}")
        for note in imported.notes:
            click.echo(f"    not carried over: {note}")
    for refusal in result.refused:
        warn(f"{refusal.title!r} not imported: {one_line(refusal.reason)}")


@template.command("sources")
@json_option
def sources(as_json: bool) -> None:
    """List the imported template sources (the curated one is always there)."""
    try:
        records = _library().sources()
    except TemplateError as error:
        raise CommandError(str(error)) from None
    if as_json:
        echo_json([{"name": r.name, "location": r.location, "imported_at": r.imported_at,
                    "templates": r.templates, "refused": r.refused} for r in records])
        return
    click.echo(render_table(SOURCE_HEADERS, [
        [r.name, len(r.templates), len(r.refused), r.imported_at, r.location]
        for r in records]))


@template.command("remove-source")
@click.argument("source")
def remove_source(source: str) -> None:
    """Forget the imported SOURCE and its templates (what they deployed stays)."""
    try:
        _library().remove_source(source)
    except KeyError:
        raise CommandError(f"no imported source {source!r} (ghostpanel template sources "
                           "lists them)") from None
    click.echo(f"removed source {source}")


@template.command("ls")
@click.option("--category", metavar="C", help="Only the templates of category C.")
@json_option
def ls(category: str | None, as_json: bool) -> None:
    """List the templates of every source (curated first)."""
    try:
        templates = _library().templates(category=category)
    except TemplateError as error:
        raise CommandError(str(error)) from None
    if as_json:
        echo_json([t.to_dict() for t in templates])
        return
    click.echo(render_table(LS_HEADERS, [
        [t.name, t.source, ",".join(t.categories) or "-", t.title] for t in templates]))


@template.command()
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show a template: its card, its variables and its Boltfile (with placeholders)."""
    chosen = _get(name)
    if as_json:
        echo_json({**chosen.to_dict(), "boltfile": chosen.body})
        return
    click.echo(f"{chosen.title}  ({chosen.qualified_name})")
    if chosen.description:
        click.echo(chosen.description)
    if chosen.categories:
        click.echo(f"categories: {', '.join(chosen.categories)}")
    for note in chosen.notes:
        click.echo(f"not carried over: {note}")
    click.echo()
    click.echo(render_table(VARIABLE_HEADERS, [
        [v.name, v.type + (f" ({'|'.join(v.choices)})" if v.choices else ""),
         "(required)" if v.required else ("***" if v.type == "secret" else
                                          repr(v.default) if v.default == "" else
                                          str(v.default).lower() if isinstance(v.default, bool)
                                          else v.default),
         v.help or v.label or "-"] for v in chosen.variables]))
    click.echo()
    click.echo(chosen.body, nl=False)


def _settings(values: Sequence[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        settings[key.strip()] = value
    return settings


@template.command()
@click.argument("name")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A variable's value (repeatable); the defaults fill the others.")
@click.option("--project", metavar="NAME",
              help="Deploy as this project (default: the template's); one per deployment.")
@click.option("--dry-run", is_flag=True,
              help="Print the Boltfile that would be applied; deploy nothing.")
@env_option
@timeout_option
@health_timeout_option
@json_option
@pass_app
def deploy(app: CliContext, name: str, settings: tuple[str, ...], project: str | None,
           dry_run: bool, env_names: tuple[str, ...], stop_timeout: int,
           health_timeout: float, as_json: bool) -> None:
    """Deploy template NAME with Surge: render its variables, validate, apply."""
    chosen = _get(name)
    try:
        rendered = render_template(chosen, _settings(settings), project=project)
    except VariableError as error:
        for variable, problem in error.problems.items():
            click.echo(f"Error: --set {variable}: {problem}", err=True)
        raise click.exceptions.Exit(2) from None
    except InvalidTemplateBoltfile as error:
        for diagnostic in error.diagnostics:
            click.echo(str(diagnostic), err=True)
        raise CommandError(f"{chosen.qualified_name} renders a Boltfile the validator "
                           "refuses") from None
    if dry_run:
        click.echo(rendered.text, nl=False)
        return
    for warning in rendered.warnings:
        click.echo(f"Warning: {warning}", err=True)
    path = deployed_path(rendered.project)
    click.echo(f"deploying {chosen.qualified_name} as project {rendered.project} "
               f"(Boltfile: {path})", err=True)
    bar = _ProgressBar("deploying")
    _changing(app, env_names, "deploy", as_json, bar, lambda envs, on_cancel: deploy_template(
        rendered, envs, progress=bar, on_cancel=on_cancel, stop_timeout=stop_timeout,
        health_timeout=health_timeout))
