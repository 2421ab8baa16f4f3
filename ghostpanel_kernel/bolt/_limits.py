"""What GhostPanel refuses to read before any TOML parser sees a Boltfile, and why.

Boltfiles are a few kilobytes. The parsers behind GhostPanel (tomlkit, and Python's
``tomllib`` for Bolt's TOML 1.0 verdict) recurse once per nesting level, stop on
integers of more than 4300 digits (Python's int-to-str limit) with no position, and
tomlkit merges each blank line into the run before it by copying the whole run, so a
long run of blank lines costs quadratic time. :func:`find_limit_problem` checks all of
that in one linear pass over the text, with no recursion, so that every later step
(parse, layout scan, schema walk, formatting) runs on input of bounded size and depth:

- :data:`MAX_BYTES`, 1 MiB: real Boltfiles are a few KB, so this is generous.
- :data:`MAX_NESTING`, 32 levels of tables, arrays and dotted keys; Bolt's own parser
  (toml_edit) also refuses deep nesting.
- :data:`MAX_ENTRIES`, 10,000 lines and list elements: tomlkit reads a few thousand a
  second; Boltfiles have a few dozen.
- :data:`MAX_BLANK_RUN`, 1000 blank lines in a row (tomlkit's quadratic merge).
- :data:`MAX_DOTTED_SIBLINGS`, 16 dotted keys of one table with the same first part
  (``gpu.a = 1``, ``gpu.b = 2``...): tomlkit's time is quadratic in their number.
- Integers must fit in 64 bits, as TOML says; Bolt's parser refuses larger ones.

Two more things stop the parsers with a message that names neither the cause nor the
fix, so they are checked here too: a UTF-8 byte order mark (tomllib and tomlkit read it
as an "Empty key") and a NUL byte (a binary file, or one saved as UTF-16).

``docs/boltfile-limits.md`` lists the limits for users, with what each costs at most.
A problem is one :class:`LimitProblem`: where (1-based line and column), what is
wrong and what to change. The checks read the text leniently: text that is not TOML
is left for the parsers to report with their own message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_BLANK_RUN", "MAX_BYTES", "MAX_DOTTED_SIBLINGS", "MAX_ENTRIES", "MAX_NESTING",
           "LimitProblem", "find_limit_problem", "size_problem"]

MAX_BYTES = 1024 * 1024
"""The largest Boltfile GhostPanel reads, in bytes of UTF-8."""

MAX_NESTING = 32
"""The deepest nesting GhostPanel reads: tables, dotted keys, arrays and inline tables,
each one level (``a.b.c = [[1]]`` is 5)."""

MAX_BLANK_RUN = 1000
"""The most blank (or whitespace-only) lines in a row GhostPanel reads."""

MAX_ENTRIES = 10_000
"""The most entries GhostPanel reads: lines (blank and comment lines too) plus the
elements of arrays and inline tables."""

MAX_DOTTED_SIBLINGS = 16
"""The most dotted keys of one table that share a first part (``gpu.a``, ``gpu.b``...)."""

_INT64_MAX = 2**63 - 1
_DECIMAL = re.compile(r"[+-]?[0-9][0-9_]*")
_PREFIXED = re.compile(r"[+-]?0([xob])([0-9A-Fa-f_]+)")
_BITS_PER_DIGIT = {"x": 4, "o": 3, "b": 1}
_BASES = {"x": 16, "o": 8, "b": 2}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A scalar value (number, boolean, date) runs up to one of these.
_SCALAR_END = re.compile(r"[\s,\]}#]")


@dataclass(frozen=True)
class LimitProblem:
    """Why GhostPanel will not read a text, and where.

    Parameters
    ----------
    line, column
        1-based position of the problem.
    message
        What is wrong.
    hint
        What to change.
    """

    line: int
    column: int
    message: str
    hint: str


def size_problem(size: int) -> LimitProblem | None:
    """A problem when a Boltfile of ``size`` bytes is above :data:`MAX_BYTES` (files are
    read up to one byte more, so ``size`` need not be the whole file's).

    Examples
    --------
    >>> size_problem(2_000_000).message
    'the file is larger than 1 MiB; GhostPanel reads Boltfiles up to 1048576 bytes'
    >>> size_problem(4096) is None
    True
    """
    if size <= MAX_BYTES:
        return None
    return LimitProblem(
        1, 1, f"the file is larger than 1 MiB; GhostPanel reads Boltfiles up to {MAX_BYTES} "
        "bytes", "Check that this is the Boltfile you meant: Boltfiles are a few KB. "
        "Remove what does not belong in it (generated data, long runs of blank lines).")


def find_limit_problem(text: str) -> LimitProblem | None:
    """The first limit ``text`` breaks (see the module docstring), or ``None``.

    One pass, no recursion; the cost is linear in the length of ``text``.

    Examples
    --------
    >>> find_limit_problem('x = 1\\n') is None
    True
    >>> p = find_limit_problem('x = ' + '[' * 40 + ']' * 40)
    >>> (p.line, p.column, p.message.split(';')[0])
    (1, 37, 'the value is nested more than 32 levels deep')
    """
    # Characters count at least one byte each, so most texts need no encoding to measure.
    if len(text) > MAX_BYTES or (4 * len(text) > MAX_BYTES
                                 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES):
        return size_problem(MAX_BYTES + 1)
    bom = _bom_problem(text)
    if bom is not None:
        return bom
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _line_col(text, nul)
        return LimitProblem(line, column, "the file contains a NUL byte: it is binary, or "
                            "saved as UTF-16 or UTF-32, not a UTF-8 text file",
                            "Save the file as UTF-8 text (TOML files are UTF-8).")
    return _Lexer(text).run()


def _bom_problem(text: str) -> LimitProblem | None:
    if not text.startswith("\ufeff"):
        return None
    return LimitProblem(
        1, 1, "the file starts with a byte order mark (BOM, the bytes EF BB BF), which "
        "TOML parsers read as text: Python's tomllib and tomlkit see an empty key",
        "Save the file as UTF-8 without BOM (most editors call it \"UTF-8\", not \"UTF-8 "
        "with BOM\"), or delete the mark: sed -i '1s/^\\xEF\\xBB\\xBF//' FILE")


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


class _Lexer:
    """Just enough of TOML to count nesting, entries, blank-line runs and integer sizes.

    Strings and comments are skipped whole (their brackets and digits do not count);
    ``stack`` holds, per open ``[`` or ``{`` of a value, its kind and nesting depth.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.table_depth = 0  # of the last [table] or [[array]] header
        self.entries = 0
        self.table = -1  # offset of the last header (-1: the root table)
        self.stack: list[tuple[str, int]] = []
        self.stack_starts: list[int] = []  # offsets of the open brackets
        self.dotted: dict[tuple[int, str], int] = {}  # (table, first part): dotted keys
        self.problem: LimitProblem | None = None

    def fail(self, offset: int, message: str, hint: str) -> None:
        if self.problem is None:
            line, column = _line_col(self.text, offset)
            self.problem = LimitProblem(line, column, message, hint)

    def count(self, offset: int) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            self.fail(offset, f"the file has more than {MAX_ENTRIES} lines and list elements "
                      "by here; GhostPanel refuses larger Boltfiles",
                      "Check that this is the Boltfile you meant: Boltfiles have a few "
                      "dozen keys.")

    def run(self) -> LimitProblem | None:
        blank_run, run_start = 0, 0
        while self.pos < len(self.text) and self.problem is None:
            line_start = self.pos
            self._skip_ws()
            self.count(line_start)
            if self._peek() in ("", "\n") or self.text.startswith("\r\n", self.pos):
                if blank_run == 0:
                    run_start = line_start
                blank_run += 1
                if blank_run > MAX_BLANK_RUN:
                    self.fail(run_start, f"more than {MAX_BLANK_RUN} blank lines in a row "
                              "start here; GhostPanel's TOML library slows down "
                              "quadratically on such runs", "Delete the blank lines "
                              "(one is enough between tables).")
            else:
                blank_run = 0
                if self._peek() == "[":
                    self._header()
                elif self._peek() != "#":
                    depth = self._assignment(self.table_depth, self.table)
                    if depth is not None:
                        self._value(depth)
            # The rest of the line (a comment, or text the parsers will refuse).
            newline = self.text.find("\n", self.pos)
            self.pos = len(self.text) if newline < 0 else newline + 1
        return self.problem

    # -- characters
    def _peek(self) -> str:
        return self.text[self.pos: self.pos + 1]

    def _skip_ws(self) -> None:
        while self._peek() in (" ", "\t") and self.pos < len(self.text):
            self.pos += 1

    # -- headers and keys
    def _header(self) -> None:
        start = self.pos
        is_array = self.text.startswith("[[", self.pos)
        self.pos += 2 if is_array else 1
        parts, _ = self._key()
        self.table_depth = parts + is_array
        self.table = start
        if self.table_depth > MAX_NESTING:
            self.fail(start, f"the table header is nested more than {MAX_NESTING} levels "
                      "deep; GhostPanel refuses deeper nesting", "Use fewer dotted parts "
                      "in the header: Boltfile tables are a few levels deep.")

    def _key(self) -> tuple[int, str]:
        """Skip a (dotted) key; return how many parts it has, and the first as written."""
        parts, first = 0, ""
        while True:
            self._skip_ws()
            start = self.pos
            if self._peek() in ('"', "'"):
                self._string()
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    return max(parts, 1), first
                self.pos = match.end()
            first = first or self.text[start:self.pos]
            parts += 1
            self._skip_ws()
            if self._peek() != ".":
                return parts, first
            self.pos += 1

    def _assignment(self, container_depth: int, container: int) -> int | None:
        """Skip ``key =`` of the table that starts at offset ``container``; return the
        depth of the value (``None``: no ``=``)."""
        start = self.pos
        parts, first = self._key()
        depth = container_depth + parts
        if parts > 1:
            # tomlkit rebuilds a view of all the dotted keys that share a first part each
            # time it adds one: quadratic in their number.
            siblings = self.dotted.get((container, first), 0) + 1
            self.dotted[(container, first)] = siblings
            if siblings > MAX_DOTTED_SIBLINGS:
                self.fail(start, f"more than {MAX_DOTTED_SIBLINGS} dotted keys in this table "
                          f"start with `{first}.`; GhostPanel's TOML library slows down "
                          "quadratically on them", f"Make `{first}` a table of its own "
                          f"([...{first}]) and write its keys without the `{first}.` prefix.")
        if depth > MAX_NESTING:
            self.fail(start, f"the key is nested more than {MAX_NESTING} levels deep; "
                      "GhostPanel refuses deeper nesting", "Use fewer dotted parts: "
                      "Boltfile keys are a few levels deep.")
            return None
        self._skip_ws()
        if self._peek() != "=":
            return None  # not a key/value line: the parsers will say what it is
        self.pos += 1
        self._skip_ws()
        return depth

    # -- values
    def _value(self, depth: int) -> None:
        """Skip one value and, iteratively, everything nested in it."""
        self._one_value(depth)
        while self.stack and self.problem is None and self.pos < len(self.text):
            before = self.pos
            self._skip_filler()
            kind, inner = self.stack[-1]
            char = self._peek()
            if char in ("]", "}"):
                self.stack.pop()
                self.stack_starts.pop()
                self.pos += 1
            elif char == ",":
                self.pos += 1
            elif char == "":
                break
            elif kind == "{":
                self.count(self.pos)
                member = self._assignment(inner, self.stack_starts[-1])
                if member is not None:
                    self._one_value(member)
            else:
                self.count(self.pos)
                self._one_value(inner + 1)
            if self.pos == before:
                self.pos += 1  # text no parser reads: step over it, the parsers report it
        self.stack.clear()
        self.stack_starts.clear()

    def _one_value(self, depth: int) -> None:
        """Skip a scalar, or open an array or inline table (pushed on the stack)."""
        start = self.pos
        char = self._peek()
        if depth > MAX_NESTING:
            self.fail(start, f"the value is nested more than {MAX_NESTING} levels deep; "
                      "GhostPanel refuses deeper nesting", "Flatten the value: Boltfile "
                      "values are strings, lists of strings or small tables.")
        elif char in ("[", "{"):
            self.stack.append((char, depth))
            self.stack_starts.append(start)
            self.pos += 1
        elif char in ('"', "'"):
            self._string()
        else:
            match = _SCALAR_END.search(self.text, self.pos)
            self.pos = len(self.text) if match is None else match.start()
            self._integer(start, self.text[start:self.pos])

    def _skip_filler(self) -> None:
        """Whitespace, newlines and comments between the elements of a value."""
        while self.pos < len(self.text):
            char = self._peek()
            if char in (" ", "\t", "\r", "\n"):
                self.pos += 1
            elif char == "#":
                newline = self.text.find("\n", self.pos)
                self.pos = len(self.text) if newline < 0 else newline
            else:
                return

    def _string(self) -> None:
        quote = self._peek()
        if self.text.startswith(quote * 3, self.pos):
            end = self.pos + 3
            while True:
                end = self.text.find(quote * 3, end)
                if end < 0:
                    self.pos = len(self.text)
                    return
                if quote == '"' and _escaped(self.text, end):
                    end += 1
                    continue
                break
            end += 3
            while self.text[end: end + 1] == quote:  # up to two quotes before the closing
                end += 1
            self.pos = end
            return
        end = self.pos + 1
        while end < len(self.text):
            char = self.text[end]
            if char == "\\" and quote == '"':
                end += 2
                continue
            end += 1
            if char in (quote, "\n"):
                break
        self.pos = min(end, len(self.text))

    def _integer(self, start: int, token: str) -> None:
        prefixed = _PREFIXED.fullmatch(token)
        if prefixed is not None:
            base = prefixed.group(1)
            digits = prefixed.group(2).replace("_", "").lstrip("0")
            # Hexadecimal, octal and binary have no digit limit in Python; bound them anyway.
            too_big = len(digits) * _BITS_PER_DIGIT[base] > 66 or (
                bool(digits) and int(digits, _BASES[base]) > _INT64_MAX)
        elif _DECIMAL.fullmatch(token):
            digits = token.lstrip("+-").replace("_", "").lstrip("0")
            # The length test comes first: Python refuses int() on more than 4300 digits.
            too_big = len(digits) > 19 or (
                bool(digits) and int(digits) > _INT64_MAX + token.startswith("-"))
        else:
            return
        if too_big:
            shown = token if len(token) <= 30 else f"{token[:12]}...{token[-6:]}"
            self.fail(start, f"the integer {shown} ({len(digits)} digits) does not fit in "
                      f"64 bits; TOML integers (and Bolt's parser) stop at {_INT64_MAX}",
                      "Use a smaller number, or quote it if it is text.")


def _escaped(text: str, quote_at: int) -> bool:
    """Whether the quote at ``quote_at`` follows an odd number of backslashes."""
    count = 0
    while quote_at - count - 1 >= 0 and text[quote_at - count - 1] == "\\":
        count += 1
    return count % 2 == 1
