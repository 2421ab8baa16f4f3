"""``ghostpanel boltfile ...``: check and format Boltfiles, without an engine.

``validate`` gives Bolt's own verdict on each file (exit 1 when Bolt would refuse one)
and prints the findings the way a compiler does::

    Boltfile.toml:4:19: error: host port 80 is used twice [services.web.ports]
        hint: Give each service its own host port.
    Boltfile.toml: 1 error, 0 warnings; Bolt refuses this file

``fmt`` rewrites each file as :meth:`Boltfile.format` normalises it (keys in Bolt's
order, uniform spacing, comments kept). As black does, ``--diff`` prints what would
change instead of writing it, and ``--check`` turns "would change" into exit status 1.
A file that is not TOML, or that GhostPanel refuses to read (too big, nested too deep:
see ``ghostpanel_kernel.bolt._limits``), is never rewritten: ``fmt`` prints its
diagnostics and exits 1.

Findings and diffs go to stdout (so ``fmt --diff | patch -p0`` works); ``fmt``'s
"reformatted ..." lines and every error go to stderr.

``from-compose`` converts a Docker Compose file into a Boltfile and ``export --to
kubernetes`` a Boltfile into Kubernetes manifests (docs/conversions.md); each writes
the result to stdout or ``-o FILE`` and prints what could not be carried over as
``note:`` lines on stderr.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import click

from ..bolt import Boltfile, Diagnostic, validate_file
from ..engine import BoltfileError
from ._app import CommandGroup, json_option
from ._output import echo_json, one_line

__all__ = ["boltfile", "export", "fmt", "from_compose_command", "render_diagnostic",
           "summary_line", "unified_diff", "validate"]

_SEVERITY_COLOURS = {"error": "red", "warning": "yellow"}

_FILES = click.argument("files", nargs=-1, required=True, metavar="FILE...",
                        type=click.Path(path_type=Path))


@click.group(cls=CommandGroup)
def boltfile() -> None:
    """Check and format Boltfiles (Bolt's TOML project files); no engine needed."""


# -- validate ------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_diagnostic(diagnostic: Diagnostic, *, colour: bool = False) -> str:
    """A finding as a compiler prints it: ``path:line:column: error: message [key]``,
    then its hint on an indented line.

    Examples
    --------
    >>> d = Diagnostic(severity="warning", line=2, column=1, key="metadata",
    ...                message="Bolt ignores `metadata`", hint="Remove it.", path="B.toml")
    >>> print(render_diagnostic(d))
    B.toml:2:1: warning: Bolt ignores `metadata` [metadata]
        hint: Remove it.
    """
    where = f"{diagnostic.path}:{diagnostic.line}:{diagnostic.column}:"
    label = f"{diagnostic.severity}:"
    if colour:
        label = click.style(label, fg=_SEVERITY_COLOURS[diagnostic.severity], bold=True)
    key = f" [{diagnostic.key}]" if diagnostic.key else ""
    text = f"{where} {label} {diagnostic.message}{key}"
    if diagnostic.hint:
        text += f"\n    hint: {diagnostic.hint}"
    return text


def summary_line(path: str, diagnostics: Sequence[Diagnostic]) -> str:
    """The verdict on one file: counts, and whether Bolt accepts it.

    Examples
    --------
    >>> summary_line("Boltfile.toml", [])
    'Boltfile.toml: 0 errors, 0 warnings; Bolt accepts this file'
    """
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    verdict = "Bolt refuses this file" if errors else "Bolt accepts this file"
    return f"{path}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}; {verdict}"


def _error_line(message: str) -> None:
    """One ``Error: ...`` line on stderr, as :class:`CommandError` prints it."""
    click.echo(f"Error: {one_line(message)}", err=True)


@boltfile.command()
@_FILES
@json_option
@click.pass_context
def validate(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Check each FILE against Bolt's rules, with line and column.

    Exit status 1 when Bolt would refuse a file (an error) or a file cannot be read;
    warnings (keys Bolt silently drops, GhostPanel's own concerns) do not change it.
    GhostPanel also refuses, with an error, files over 1 MiB, nested more than 32
    levels, with more than 10,000 entries or 1,000 blank lines in a row, integers
    beyond 64 bits, a byte order mark or a NUL byte.
    --json prints one list of every file's diagnostics, each with severity, line,
    column (1-based), key (dotted TOML path), message, hint and path.
    """
    failed = False
    found: list[Diagnostic] = []
    for path in files:
        try:
            diagnostics = validate_file(path)
        except BoltfileError as error:
            _error_line(str(error))
            failed = True
            continue
        failed = failed or any(d.is_error for d in diagnostics)
        found.extend(diagnostics)
        if as_json:
            continue
        for diagnostic in diagnostics:
            click.echo(render_diagnostic(diagnostic, colour=True))
        click.echo(summary_line(str(path), diagnostics))
    if as_json:
        echo_json([d.to_dict() for d in found])
    if failed:
        ctx.exit(1)


# -- fmt -----------------------------------------------------------------------------


def _formatted(path: Path) -> tuple[str, str] | list[Diagnostic]:
    """``(original, formatted)`` text of the file, or the diagnostics of a file that
    is not TOML or is beyond GhostPanel's limits (there is nothing to format).

    Raises
    ------
    BoltfileError
        The file cannot be read.
    """
    try:
        bf = Boltfile.load(path)
    except BoltfileError:
        diagnostics = validate_file(path)  # raises for an unreadable file
        if not diagnostics:  # never expected: the loader and the validator disagree
            raise
        return diagnostics
    return bf.dumps(), bf.format()


def unified_diff(original: str, formatted: str, *, path: str) -> str:
    """The change as a unified diff, ``path`` naming both sides; a last line without
    a newline is marked as ``diff`` marks it, so the output always ends in one.

    Examples
    --------
    >>> print(unified_diff('a=1\\n', 'a = 1\\n', path="B.toml"), end="")
    --- B.toml
    +++ B.toml (formatted)
    @@ -1 +1 @@
    -a=1
    +a = 1
    """
    lines = difflib.unified_diff(original.splitlines(keepends=True),
                                 formatted.splitlines(keepends=True),
                                 fromfile=path, tofile=f"{path} (formatted)")
    return "".join(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
                   for line in lines)


def _write(path: Path, text: str) -> None:
    # newline="" writes the text's own newlines, so a CRLF file stays CRLF.
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


@boltfile.command()
@_FILES
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if a file would be reformatted.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Write nothing; print a unified diff of the changes.")
@click.pass_context
def fmt(ctx: click.Context, files: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Reformat each FILE in place: keys in Bolt's order, uniform spacing, comments kept.

    Values keep their spelling and the data does not change. A file that is not TOML
    is left alone and its syntax errors are printed (exit 1).
    """
    failed = would_change = False
    changed = unchanged = 0
    for path in files:
        try:
            result = _formatted(path)
        except (BoltfileError, RuntimeError) as error:
            # RuntimeError: the formatter refused a result that reads back differently.
            _error_line(str(error))
            failed = True
            continue
        if isinstance(result, list):
            for diagnostic in result:
                click.echo(render_diagnostic(diagnostic, colour=True), err=True)
            _error_line(f"{path}: not reformatted; fix the error above first")
            failed = True
            continue
        original, formatted = result
        if formatted == original:
            unchanged += 1
            continue
        would_change = True
        changed += 1
        if show_diff:
            click.echo(unified_diff(original, formatted, path=str(path)), nl=False)
        if check or show_diff:
            click.echo(f"would reformat {path}", err=True)
            continue
        try:
            _write(path, formatted)
        except OSError as error:
            _error_line(f"{path}: cannot write the file: {error.strerror or error}")
            failed = True
            changed -= 1
            continue
        click.echo(f"reformatted {path}", err=True)
    verb = "would be reformatted" if check or show_diff else "reformatted"
    click.echo(f"{_plural(changed, 'file')} {verb}, {unchanged} left unchanged", err=True)
    if failed or (check and would_change):
        ctx.exit(1)


# -- conversions (docs/conversions.md) ------------------------------------------------


def _emit(text: str, output: Path | None, notes: Sequence[str]) -> None:
    """The result to stdout or ``output``, the notes to stderr."""
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(text, nl=False)
        return
    _write(output, text)
    click.echo(f"wrote {output} ({_plural(len(notes), 'note')})", err=True)


_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                       help="Write the result to this file instead of stdout.")


@boltfile.command("from-compose")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_OUTPUT
@click.option("--project", help="The Boltfile's project (default: the Compose name, "
              "else the file's folder name).")
@click.option("--for-bolt", is_flag=True, help="Keep the keys Bolt reads that "
              "GhostPanel's Surge refuses (container_name, dns, sysctls...).")
def from_compose_command(file: Path, output: Path | None, project: str | None,
                         for_bolt: bool) -> None:
    """Convert a Docker Compose FILE into a Boltfile.

    Variables (${VAR:-default}) come from the environment over a .env file beside
    FILE, as Compose reads them. What has no place in a Boltfile (secrets, configs,
    build options, profiles...) is left out and printed as `note:` lines on stderr
    (and as comments at the top of the Boltfile). Write the Boltfile beside FILE:
    relative bind mounts start from the Boltfile's folder.
    """
    from ..bolt import from_compose

    result = from_compose(file, project=project, for_bolt=for_bolt)
    notes = list(result.notes)
    if output is not None and output.resolve().parent != file.resolve().parent and any(
            str(volume).startswith(".") for name in result.boltfile().services
            for volume in result.boltfile().service(name).volumes):
        # Surge resolves relative bind sources from the Boltfile's own folder.
        notes.append(f"{output}: relative bind mounts start from the Boltfile's folder, "
                     f"not {file.resolve().parent}; write it beside {file.name} or fix "
                     "the paths")
    _emit(result.boltfile_text, output, notes)


@boltfile.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["kubernetes"]), required=True,
              help="The format to export to.")
@_OUTPUT
@click.option("--host-ports", is_flag=True, help="Also bind each published port on the "
              "node (hostPort), as Bolt publishes it on the host.")
@click.option("--service-type", type=click.Choice(["ClusterIP", "NodePort", "LoadBalancer"]),
              default="ClusterIP", show_default=True, help="The Services' type.")
@click.option("--volume-size", default="1Gi", show_default=True,
              help="The storage each PersistentVolumeClaim asks for.")
@click.option("--namespace", help="Put every object in this namespace.")
def export(file: Path, target: str, output: Path | None, host_ports: bool,
           service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"],
           volume_size: str, namespace: str | None) -> None:
    """Export the Boltfile FILE to another format: --to kubernetes writes Deployments,
    Services and PersistentVolumeClaims as one multi-document YAML.

    What Kubernetes has no equivalent for (restart policies other than always,
    depends_on, gaming settings, snapshots...) is printed as `note:` lines on stderr
    and as comments at the top of the YAML. Exit status 1 when the Boltfile has an
    error (see `ghostpanel boltfile validate`).
    """
    from ..bolt import to_kubernetes

    exported = to_kubernetes(file, host_ports=host_ports, service_type=service_type,
                             volume_size=volume_size, namespace=namespace)
    _emit(exported.yaml_text, output, exported.notes)
