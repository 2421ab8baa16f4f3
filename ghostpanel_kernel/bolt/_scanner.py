"""Reading a Boltfile's text into a :class:`SourceLayout`: one pass, no data decoded.

:func:`scan_layout` records where every header, key, value, comment and blank line is.
It follows the TOML that tomlkit has already accepted; a line it does not follow is
kept as an opaque line and the layout is marked incomplete, so that nothing rewrites
text from it.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Callable

import tomlkit

from ghostpanel_kernel.bolt._layout import (
    SourceComment,
    SourceItem,
    SourceKey,
    SourceLayout,
    SourceValue,
    TomlPath,
    split_blocks,
)

__all__ = ["scan_layout"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}#\r\n]+")  # numbers, booleans, dates: up to a delimiter


class _ScanError(Exception):
    """The scanner met text it does not understand (tomlkit accepted it, we did not)."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.items: list[SourceItem] = []
        self.table: TomlPath = ()
        self.aot: dict[TomlPath, int] = {}
        self.key_at: dict[TomlPath, int] = {}
        self.implicit_at: dict[TomlPath, int] = {}
        self.value_at: dict[TomlPath, SourceValue] = {}
        self.keys: dict[TomlPath, SourceKey] = {}
        self.entry_items: dict[TomlPath, SourceItem] = {}
        self.complete = True

    # -- character helpers
    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def _skip_ws(self) -> None:
        while self._peek() in (" ", "\t") and self._peek():
            self.pos += 1

    def _at_newline(self) -> bool:
        return self._peek() == "\n" or self.text.startswith("\r\n", self.pos)

    def _skip_newline(self) -> None:
        if self._peek() == "\n":
            self.pos += 1
        elif self.text.startswith("\r\n", self.pos):
            self.pos += 2

    def _skip_to_eol(self) -> None:
        while self.pos < len(self.text) and not self._at_newline():
            self.pos += 1

    # -- document
    def scan(self) -> SourceLayout:
        while self.pos < len(self.text):
            line_start = self.pos
            try:
                self._line(line_start)
            except _ScanError:
                # Keep going line by line: positions elsewhere stay useful. The layout
                # is marked incomplete so that nothing rewrites text from it.
                self.complete = False
                self.pos = line_start
                self._skip_to_eol()
                self._skip_newline()
                self.items.append(SourceItem("comment", line_start, self.pos))
        return SourceLayout(
            text=self.text, items=self.items, complete=self.complete, key_at=self.key_at,
            implicit_at=self.implicit_at, value_at=self.value_at, keys=self.keys,
            entry_items=self.entry_items,
        )

    def _line(self, line_start: int) -> None:
        self._skip_ws()
        char = self._peek()
        if char == "" or self._at_newline():
            self._skip_newline()
            self.items.append(SourceItem("blank", line_start, self.pos))
        elif char == "#":
            self._skip_to_eol()
            self._skip_newline()
            self.items.append(SourceItem("comment", line_start, self.pos))
        elif char == "[":
            self._header(line_start)
        else:
            self._entry(line_start)

    def _header(self, line_start: int) -> None:
        bracket = self.pos
        is_array = self.text.startswith("[[", self.pos)
        self.pos += 2 if is_array else 1
        self._skip_ws()
        key = self._key()
        self._skip_ws()
        closing = "]]" if is_array else "]"
        if not self.text.startswith(closing, self.pos):
            raise _ScanError(f"expected {closing!r}")
        self.pos += len(closing)
        path = self._resolve(key, is_array=is_array)
        self.key_at[path] = bracket
        if is_array:
            self.key_at.setdefault(path[:-1], bracket)
        self.table = path
        comment = self._end_of_line()
        self.items.append(SourceItem("header", line_start, self.pos, path=path, key=key,
                                is_array=is_array, comment=comment))

    def _resolve(self, key: SourceKey, *, is_array: bool) -> TomlPath:
        """The header's path, with the current index of each array of tables in it."""
        out: list[str | int] = []
        for i, part in enumerate(key.parts):
            out.append(part)
            prefix = tuple(out)
            last = i == len(key.parts) - 1
            if last and is_array:
                self.aot[prefix] = self.aot.get(prefix, -1) + 1
                out.append(self.aot[prefix])
            elif prefix in self.aot:
                self.implicit_at.setdefault(prefix, key.starts[i])
                out.append(self.aot[prefix])
            if not last:
                self.implicit_at.setdefault(tuple(out), key.starts[i])
        return tuple(out)

    def _entry(self, line_start: int) -> None:
        key = self._assigned_key()
        path = self.table + key.parts
        self._record_key(self.table, key)
        value = self._value(path)
        comment = self._end_of_line()
        item = SourceItem("entry", line_start, self.pos, path=path, table=self.table, key=key,
                     value=value, comment=comment)
        self.items.append(item)
        self.entry_items[path] = item

    def _record_key(self, table: TomlPath, key: SourceKey) -> None:
        for i in range(len(key.parts) - 1):
            self.implicit_at.setdefault(table + key.parts[: i + 1], key.starts[i])
        self.key_at[table + key.parts] = key.start
        self.keys[table + key.parts] = key

    def _end_of_line(self) -> tuple[int, int] | None:
        self._skip_ws()
        comment = None
        if self._peek() == "#":
            start = self.pos
            self._skip_to_eol()
            comment = (start, self.pos)
        elif self.pos < len(self.text) and not self._at_newline():
            raise _ScanError("unexpected text after a value")
        self._skip_newline()
        return comment

    # -- keys and values
    def _assigned_key(self) -> SourceKey:
        """Read ``key =``, up to the value."""
        key = self._key()
        self._skip_ws()
        if self._peek() != "=":
            raise _ScanError("expected '='")
        self.pos += 1
        self._skip_ws()
        return key

    def _key(self) -> SourceKey:
        parts: list[str] = []
        raws: list[str] = []
        starts: list[int] = []
        while True:
            self._skip_ws()
            start = self.pos
            char = self._peek()
            if char == '"':
                end = self._basic_string_end(start)
                raw = self.text[start:end]
                parts.append(_decode_key(raw))
            elif char == "'":
                end = self.text.find("'", start + 1) + 1
                if end == 0:
                    raise _ScanError("unterminated key")
                raw = self.text[start:end]
                parts.append(raw[1:-1])
            else:
                match = _BARE_KEY.match(self.text, start)
                if match is None:
                    raise _ScanError("expected a key")
                end = match.end()
                raw = match.group()
                parts.append(raw)
            raws.append(raw)
            starts.append(start)
            self.pos = end
            self._skip_ws()
            if self._peek() != ".":
                return SourceKey(tuple(parts), tuple(raws), tuple(starts), end)
            self.pos += 1

    def _basic_string_end(self, start: int) -> int:
        index = start + 1
        while index < len(self.text):
            char = self.text[index]
            if char == "\\":
                index += 2
            elif char == '"':
                return index + 1
            elif char == "\n":
                break
            else:
                index += 1
        raise _ScanError("unterminated string")

    def _multiline_end(self, start: int, quote: str) -> int:
        index = start + 3
        while index < len(self.text):
            if quote == '"' and self.text[index] == "\\":
                index += 2
                continue
            if self.text.startswith(quote * 3, index):
                end = index + 3
                # A closing delimiter may be preceded by one or two more quotes.
                while end < len(self.text) and self.text[end] == quote and end - index < 5:
                    end += 1
                return end
            index += 1
        raise _ScanError("unterminated multi-line string")

    def _value(self, path: TomlPath) -> SourceValue:
        start = self.pos
        char = self._peek()
        if self.text.startswith('"""', start) or self.text.startswith("'''", start):
            end = self._multiline_end(start, char)
            value = SourceValue(start, end, "scalar")
        elif char == '"':
            value = SourceValue(start, self._basic_string_end(start), "scalar")
        elif char == "'":
            end = self.text.find("'", start + 1) + 1
            if end == 0:
                raise _ScanError("unterminated string")
            value = SourceValue(start, end, "scalar")
        elif char == "[":
            value = self._array(path)
        elif char == "{":
            value = self._inline_table(path)
        else:
            match = _SCALAR.match(self.text, start)
            if match is None:
                raise _ScanError("expected a value")
            end = start + len(match.group().rstrip(" \t"))
            value = SourceValue(start, end, "scalar")
        self.pos = value.end
        self.value_at[path] = value
        return value

    def _skip_filler(self, parts: list[SourceValue | SourceComment]) -> None:
        """Skip whitespace, newlines and comments inside brackets, keeping the comments."""
        while True:
            self._skip_ws()
            if self._at_newline():
                self._skip_newline()
            elif self._peek() == "#":
                start = self.pos
                line_start = self.text.rfind("\n", 0, start) + 1
                own_line = not self.text[line_start:start].strip()
                self._skip_to_eol()
                parts.append(SourceComment(start, self.pos, own_line))
            else:
                return

    def _bracketed(self, value: SourceValue, closing: str, what: str,
                   element: Callable[[], None]) -> SourceValue:
        """Read an array or inline table from its opening bracket to ``closing``:
        ``element`` reads each element, this the commas, newlines and comments."""
        self.pos += 1
        while True:
            self._skip_filler(value.parts)
            if self._peek() == closing:
                self.pos += 1
                break
            if not self._peek():
                raise _ScanError(f"unterminated {what}")
            element()
            self._skip_filler(value.parts)
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != closing:
                raise _ScanError(f"expected ',' or {closing!r}")
        value.end = self.pos
        return value

    def _array(self, path: TomlPath) -> SourceValue:
        value = SourceValue(self.pos, self.pos, "array")
        indices = itertools.count()

        def element() -> None:
            value.parts.append(self._value((*path, next(indices))))

        return self._bracketed(value, "]", "array", element)

    def _inline_table(self, path: TomlPath) -> SourceValue:
        # Newlines and comments inside are TOML 1.1 (tomlkit reads them, Bolt does not).
        value = SourceValue(self.pos, self.pos, "inline")

        def member() -> None:
            key = self._assigned_key()
            self._record_key(path, key)
            value.members.append((key, self._value(path + key.parts)))

        return self._bracketed(value, "}", "inline table", member)


def _decode_key(raw: str) -> str:
    """The key a quoted basic-string key stands for (escapes resolved)."""
    try:
        return str(tomllib.loads(f"k = {raw}")["k"])
    except tomllib.TOMLDecodeError:
        return str(tomlkit.parse(f"k = {raw}")["k"])  # TOML 1.1 escapes such as \e


def scan_layout(text: str) -> SourceLayout:
    """Record where every header, key, value, comment and blank line of ``text`` is.

    Meant for text tomlkit has parsed; anything the scanner does not follow is kept as
    an opaque line and the layout is marked incomplete. Arrays and inline tables are
    read recursively, one call per level: callers check the text against
    :func:`~ghostpanel_kernel.bolt._limits.find_limit_problem` (nesting at most 32) first.
    """
    layout = _Scanner(text).scan()
    layout.preamble, layout.blocks = split_blocks(layout.items)
    return layout
