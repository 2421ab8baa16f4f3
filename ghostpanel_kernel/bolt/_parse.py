"""From a Boltfile on disk to a tomlkit document: each step's failure is a
:class:`~ghostpanel_kernel.engine._errors.BoltfileError` with the line and column.

Both :meth:`Boltfile.load` and :func:`validate_file` read files through here; the
validator turns these errors into diagnostics instead of raising them.
"""

from __future__ import annotations

import re
import tomllib

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from ghostpanel_kernel.engine._errors import BoltfileError

__all__ = ["decode_boltfile", "parse_document", "read_boltfile", "syntax_error_position"]


def read_boltfile(path: str) -> bytes:
    """The bytes of the file at ``path``.

    Raises
    ------
    BoltfileError
        The file cannot be read (missing, no permission).
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise BoltfileError(f"cannot read the Boltfile: {exc.strerror or exc}",
                            path=path) from exc


def decode_boltfile(data: bytes, *, path: str) -> str:
    """Decode a Boltfile's bytes (TOML is UTF-8), keeping its newlines as they are.

    Raises
    ------
    BoltfileError
        The bytes are not UTF-8; line and column point at the first bad byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise BoltfileError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); TOML files must be "
            "saved as UTF-8", path=path, line=line, column=column,
        ) from exc


def parse_document(text: str, *, path: str) -> TOMLDocument:
    """Parse ``text`` with tomlkit.

    Raises
    ------
    BoltfileError
        tomlkit cannot read it; the error carries the 1-based line and column.
    """
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        line, column = syntax_error_position(text, exc)
        message = re.sub(r" at line \d+ col \d+$", "", str(exc))
        raise BoltfileError(f"TOML syntax error: {message}", path=path, line=line,
                            column=column) from exc


def syntax_error_position(text: str, exc: Exception) -> tuple[int | None, int | None]:
    """1-based line and column of a TOML syntax error in ``text``.

    The position comes from Python's TOML 1.0 parser (``tomllib``) when it also refuses
    the text -- it is the kind of parser Bolt uses -- and otherwise from tomlkit's error.
    """
    strict: Exception | None = exc if isinstance(exc, tomllib.TOMLDecodeError) else None
    if strict is None:
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            strict = error
    if strict is not None:
        if str(strict).endswith("(at end of document)"):
            return text.count("\n") + 1, len(text) - text.rfind("\n")
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(strict))
        if match is not None:
            return int(match.group(1)), int(match.group(2))
    if isinstance(exc, ParseError):
        return exc.line, exc.col + 1  # tomlkit counts columns from 0
    return None, None
