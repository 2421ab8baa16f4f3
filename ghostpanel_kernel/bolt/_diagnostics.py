"""What the Boltfile validator reports: one :class:`Diagnostic` per problem.

A diagnostic is plain data so that the CLI (``ghostpanel boltfile validate --json``),
the REST API and the widgets render the same thing: where (path, line, column, the
dotted TOML key), what is wrong (``message``) and what to change (``hint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Diagnostic", "Severity"]

Severity = Literal["error", "warning"]
"""``error``: Bolt itself refuses the file. ``warning``: Bolt accepts it, but something
will not do what the author meant (a key Bolt silently drops) or GhostPanel has a
concern of its own (a ``/udp`` port, a snapshot time it cannot schedule)."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a Boltfile.

    Parameters
    ----------
    severity
        ``"error"`` when Bolt rejects the file, ``"warning"`` otherwise.
    line, column
        1-based position in the file of the key, value or table header at fault.
    key
        The dotted TOML path of the key at fault, e.g. ``services.web.ports``.
        Elements of an array of tables are named by a 0-based index,
        ``snapshots.named_snapshots[1].name``; elements of a plain array are not (the
        position points at the element).
    message
        What is wrong.
    hint
        What to change.
    path
        The file (``"<string>"`` for text that did not come from a file).

    Examples
    --------
    >>> d = Diagnostic(severity="error", line=3, column=10, key="services.web.ports",
    ...                message="port 70000 is out of range", hint="Use 1-65535.",
    ...                path="Boltfile.toml")
    >>> str(d)
    'Boltfile.toml:3:10: error: port 70000 is out of range [services.web.ports]'
    >>> sorted(d.to_dict())
    ['column', 'hint', 'key', 'line', 'message', 'path', 'severity']
    """

    severity: Severity
    line: int
    column: int
    key: str
    message: str
    hint: str
    path: str

    @property
    def is_error(self) -> bool:
        """Whether Bolt rejects the file because of this problem."""
        return self.severity == "error"

    def to_dict(self) -> dict[str, str | int]:
        """The JSON shape of ``ghostpanel boltfile validate --json``."""
        return {
            "severity": self.severity,
            "line": self.line,
            "column": self.column,
            "key": self.key,
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
        }

    def __str__(self) -> str:
        where = f" [{self.key}]" if self.key else ""
        return f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}{where}"
