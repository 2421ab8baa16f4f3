"""Boltfile validation: Bolt's own verdict, with line and column, plus warnings.

Errors are exactly what Bolt refuses when it loads a Boltfile (docs/boltfile-rules.md,
read from Bolt's source): TOML it cannot parse (Bolt's parser is TOML 1.0), a known key
of the wrong type or a required key missing (serde), and the checks of Bolt's
``BoltFile::validate``. Warnings are for what Bolt accepts but will not do what the
author meant -- above all keys Bolt silently drops, because serde ignores unknown
keys -- and for GhostPanel's own concerns (a ``/udp`` port, a snapshot time its
scheduler cannot read).

This module is the entry points and the TOML 1.0 syntax checks. The rules live in
:data:`~ghostpanel_kernel.bolt._schema.BOLTFILE_SCHEMA` (walked by
:func:`~ghostpanel_kernel.bolt._walk.walk`) and, for what no single key can check,
:data:`~ghostpanel_kernel.bolt._rules.RULES`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from os import PathLike, fspath
from typing import Any

from ghostpanel_kernel._exceptions import BoltfileError
from ghostpanel_kernel.bolt._boltfile import Boltfile
from ghostpanel_kernel.bolt._diagnostics import Diagnostic
from ghostpanel_kernel.bolt._layout import SourceLayout
from ghostpanel_kernel.bolt._limits import LimitProblem, find_limit_problem
from ghostpanel_kernel.bolt._parse import (
    decode_boltfile,
    parse_document,
    read_boltfile,
    read_problem,
    syntax_error_position,
)
from ghostpanel_kernel.bolt._report import Validation, dotted
from ghostpanel_kernel.bolt._rules import RULES
from ghostpanel_kernel.bolt._scanner import scan_layout
from ghostpanel_kernel.bolt._schema import BOLTFILE_SCHEMA, declared_keys
from ghostpanel_kernel.bolt._walk import walk

# declared_keys lives in _schema; it is re-exported here because the unit tests
# import it from this module.
__all__ = ["declared_keys", "validate", "validate_file"]


def _syntax_diagnostic(text: str, exc: Exception, *, path: str, line: int | None,
                       column: int | None, layout: SourceLayout | None) -> Diagnostic:
    """An error for TOML that Bolt's parser refuses (``layout`` when tomlkit read it)."""
    line, column = line or 1, column or 1
    message = re.sub(r" \(at line \d+, column \d+\)$", "", str(exc))
    message = re.sub(r" at line \d+ col \d+$", "", message)
    if layout is not None:
        key = dotted(layout.path_at(layout.offset(line, column)))
        message = f"TOML 1.0 syntax error (Bolt's parser refuses it): {message}"
    else:
        key = _key_near(text, line)
        message = f"TOML syntax error: {message}"
    return Diagnostic(severity="error", line=line, column=column, key=key, message=message,
                      hint="Fix the TOML syntax here; Bolt stops at the first syntax error.",
                      path=path)


def _multiline_inline_tables(v: Validation) -> list[tuple[int, int]]:
    """Report every inline table written over several lines, and return their spans.

    tomlkit reads them (TOML 1.1); Bolt's parser (the Rust toml 0.8 crate, TOML 1.0)
    stops at the first one. Reporting each saves a fix-and-retry round per table.
    """
    text = v.layout.text
    spans = []
    for path, value in v.layout.value_at.items():
        newline = text.find("\n", value.start, value.end)
        if value.kind != "inline" or newline < 0:
            continue
        spans.append((value.start, value.end))
        name = dotted(path)
        leaf = str(path[-1])
        newline -= text[newline - 1] == "\r"
        v.diagnostics.append(Diagnostic(
            severity="error", line=v.layout.line_col(newline)[0],
            column=v.layout.line_col(newline)[1], key=name,
            message="the inline table spans several lines, which TOML 1.0 (Bolt's parser, "
                    "the Rust toml 0.8 crate) does not allow",
            hint=f"Write {leaf} = {{ ... }} on one line without a trailing comma, or make it "
                 f"a [{name}] table; `ghostpanel boltfile fmt` does the first.",
            path=v.path,
        ))
    return spans


def _key_near(text: str, line: int) -> str:
    """Best guess at the key on ``line`` of text no parser reads: its table and key."""
    rows = text.splitlines()
    table = ""
    for row in rows[: line - 1]:
        header = re.match(r"\s*\[\[?\s*([^\]#]+?)\s*\]", row)
        if header:
            table = re.sub(r"\s*\.\s*", ".", header.group(1))
    key = ""
    if 0 < line <= len(rows):
        header = re.match(r"\s*\[\[?\s*([^\]#=]+?)\s*(\]|#|$)", rows[line - 1])
        if header:  # a broken header names its own table
            return re.sub(r"\s*\.\s*", ".", header.group(1))
        match = re.match(r"\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", rows[line - 1])
        key = re.sub(r"\s*\.\s*", ".", match.group(1)) if match else ""
    return ".".join(p for p in (table, key) if p)


def _limit_diagnostic(problem: LimitProblem, *, path: str) -> Diagnostic:
    return Diagnostic(severity="error", line=problem.line, column=problem.column, key="",
                      message=problem.message, hint=problem.hint, path=path)


def _validate_text(text: str, data: Mapping[str, Any], *, path: str) -> list[Diagnostic]:
    # Text from a loaded Boltfile passed these limits when it was parsed, but edits made
    # through .document did not: check again before tomllib recurses into it.
    problem = find_limit_problem(text)
    if problem is not None:
        return [_limit_diagnostic(problem, path=path)]
    layout = scan_layout(text)
    validation = Validation(layout, path)
    inline_spans = _multiline_inline_tables(validation)
    try:
        # tomlkit reads some TOML 1.1 that Bolt's TOML 1.0 parser refuses.
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column = syntax_error_position(text, exc)
        offset = layout.offset(line or 1, column or 1)
        if not any(start <= offset <= end for start, end in inline_spans):
            validation.diagnostics.append(_syntax_diagnostic(
                text, exc, path=path, line=line, column=column, layout=layout))
    walk(validation, data, BOLTFILE_SCHEMA, (), False)
    for rule in RULES:
        rule(validation, data)
    return sorted(validation.diagnostics,
                  key=lambda d: (d.line, d.column, d.severity != "error", d.key, d.message))


def validate(boltfile: Boltfile) -> list[Diagnostic]:
    """Check a loaded Boltfile against Bolt's rules.

    Returns
    -------
    list of Diagnostic
        Sorted by position. Bolt accepts the file exactly when none is an ``error``.

    Examples
    --------
    >>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n'
    ...                     'ports = ["80:80", "80:8080"]\\n')
    >>> [(d.severity, d.line, d.column, d.key) for d in validate(bf)]
    [('error', 4, 19, 'services.web.ports')]
    """
    return _validate_text(boltfile.dumps(), boltfile.to_dict(), path=boltfile.path)


def validate_file(path: str | PathLike[str]) -> list[Diagnostic]:
    """Check the Boltfile at ``path``; a TOML syntax error becomes an error diagnostic.

    Raises
    ------
    BoltfileError
        The file cannot be read at all (missing, a directory, no permission). Everything
        else, a file too big or nested too deep included, is a diagnostic.
    """
    name = fspath(path)
    raw = read_boltfile(name)
    try:
        text = decode_boltfile(raw, path=name)
    except BoltfileError as exc:
        # A file too big to read whole is cut short, maybe inside a character: its
        # size is the problem to report, not its encoding.
        problem = read_problem(raw, None)
        if problem is not None:
            return [_limit_diagnostic(problem, path=name)]
        return [Diagnostic(severity="error", line=exc.line or 1, column=exc.column or 1,
                           key="", message=exc.message, hint="Save the file as UTF-8.",
                           path=name)]
    problem = read_problem(raw, text)
    if problem is not None:
        return [_limit_diagnostic(problem, path=name)]
    try:
        document = parse_document(text, path=name)
    except BoltfileError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        return [_syntax_diagnostic(text, cause, path=name, line=exc.line, column=exc.column,
                                   layout=None)]
    return _validate_text(text, document.unwrap(), path=name)
