"""From a Boltfile on disk to a tomlkit document: each step's failure is a
:class:`~ghostpanel_kernel._exceptions.BoltfileError` with the line and column.

Both :meth:`Boltfile.load` and :func:`validate_file` read files through here; the
validator turns these errors into diagnostics instead of raising them.
"""

from __future__ import annotations

import os
import re
import tomllib

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from ghostpanel_kernel._exceptions import BoltfileError
from ghostpanel_kernel.bolt._limits import (
    MAX_BYTES,
    LimitProblem,
    find_limit_problem,
    size_problem,
)

__all__ = ["decode_boltfile", "limit_error", "parse_document", "read_boltfile", "read_problem",
           "syntax_error_position"]


def read_boltfile(path: str) -> bytes:
    """The bytes of the file at ``path``: at most :data:`MAX_BYTES` + 1 of them, so that
    :func:`read_problem` can refuse a file that is too big without reading all of it.

    Raises
    ------
    BoltfileError
        The file cannot be read (missing, a directory, no permission); the message says
        what to do.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except IsADirectoryError as exc:
        raise BoltfileError("cannot read the Boltfile: it is a directory; name the file in "
                            "it, e.g. " + os.path.join(path, "Boltfile.toml"),
                            path=path) from exc
    except FileNotFoundError as exc:
        raise BoltfileError("cannot read the Boltfile: there is no such file; check the "
                            "path", path=path) from exc
    except PermissionError as exc:
        raise BoltfileError("cannot read the Boltfile: permission denied; make it readable "
                            "(chmod a+r) or run as its owner", path=path) from exc
    except OSError as exc:
        raise BoltfileError(f"cannot read the Boltfile: {exc.strerror or exc}",
                            path=path) from exc


def read_problem(data: bytes, text: str | None) -> LimitProblem | None:
    """Why GhostPanel refuses a Boltfile's ``data`` (decoded as ``text`` when it is
    UTF-8) before parsing it: too big, or beyond a limit of
    :func:`~ghostpanel_kernel.bolt._limits.find_limit_problem`."""
    problem = size_problem(len(data))
    if problem is None and text is not None:
        problem = find_limit_problem(text)
    return problem


def limit_error(problem: LimitProblem, *, path: str) -> BoltfileError:
    """``problem`` as the error :meth:`Boltfile.load` raises: message, then what to do."""
    return BoltfileError(f"{problem.message}. {problem.hint}", path=path, line=problem.line,
                         column=problem.column)


_OTHER_ENCODINGS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                    (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


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
        for mark, encoding in _OTHER_ENCODINGS:
            if data.startswith(mark):
                raise BoltfileError(
                    f"the file is saved as {encoding} (it starts with a {encoding} byte order "
                    "mark); TOML files must be saved as UTF-8", path=path, line=1,
                    column=1) from exc
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
        tomlkit cannot read it, or it is beyond one of GhostPanel's limits (size, nesting,
        64-bit integers: see :mod:`~ghostpanel_kernel.bolt._limits`); the error carries
        the 1-based line and column.
    """
    problem = find_limit_problem(text)
    if problem is not None:
        raise limit_error(problem, path=path)
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
