"""Where the validator's findings go: collected for one text and placed at the line and
column of the key or value at fault.

The schema walk, the value checks and the whole-file rules all report through
:class:`Validation` (a check through its :class:`Site`), naming what is wrong by its
:data:`~ghostpanel_kernel.bolt._layout.TomlPath`; the text's layout turns that into a
position.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from ghostpanel_kernel.bolt._diagnostics import Diagnostic, Severity
from ghostpanel_kernel.bolt._layout import SourceLayout, TomlPath

__all__ = ["Site", "Validation", "dotted"]


class Validation:
    """Collects diagnostics for one text, placing them with the text's layout."""

    def __init__(self, layout: SourceLayout, path: str) -> None:
        self.layout = layout
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def add(self, severity: Severity, path: TomlPath, message: str, hint: str, *,
            element: int | None = None, at: Literal["key", "value"] = "value") -> None:
        if element is not None:
            offset = self.layout.value_offset((*path, element))
        elif at == "key":
            offset = self.layout.key_offset(path)
        else:
            offset = self.layout.value_offset(path)
        line, column = self.layout.line_col(offset)
        self.diagnostics.append(Diagnostic(
            severity=severity, line=line, column=column,
            key=dotted(path), message=message, hint=hint,
            path=self.path,
        ))


@dataclass
class Site:
    """Where a check runs: the value's path; reports become warnings in extensions."""

    validation: Validation
    path: TomlPath
    extension: bool

    def problem(self, severity: Severity, message: str, hint: str, *,
                element: int | None = None) -> None:
        self.validation.add("warning" if self.extension else severity, self.path, message,
                            hint, element=element)


def dotted(path: TomlPath) -> str:
    """``("services", "web app", "ports")`` as ``services."web app".ports``; indices of
    arrays of tables as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
        out += f".{text}" if out else text
    return out
