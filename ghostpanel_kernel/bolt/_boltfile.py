"""Boltfile documents: load, edit, format and save, keeping comments and layout.

:class:`Boltfile` wraps a tomlkit document, so a file loaded and saved unchanged comes
back byte for byte, and edits touch only the lines they change.

Why this module also scans the text itself: tomlkit keeps the text but not positions,
and it files a comment written above a table header under the *previous* table (so
deleting a table through tomlkit eats the next table's comment). The validator needs
a line and column for every key, and structural edits need to know which comment lines
belong to which table. :func:`scan_layout` walks the text once and records where each
header, key, value, comment and blank line is. The tomlkit parse stays the source of
truth for what the keys and values *are*: every edit is re-parsed and compared with the
data the edit was meant to produce, and refused if they differ.
"""

from __future__ import annotations

import bisect
import copy
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import Any, Literal

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from ghostpanel_kernel.engine._errors import BoltfileError

__all__ = ["Boltfile", "BoltfileService", "PortMapping", "SourceLayout", "TomlPath", "VolumeMount",
           "scan_layout"]

TomlPath = tuple[str | int, ...]
"""A key's place in the document: table and key names, and 0-based indices for the
elements of arrays (``("services", "web", "ports", 1)``)."""

_VOLUME_OPTIONS = frozenset({"ro", "rw", "z", "Z"})
# Rust's ``str::parse::<u16>`` (what Bolt uses) accepts digits with an optional "+".
_PORT_NUMBER = re.compile(r"\+?[0-9]+")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class PortMapping:
    """A published port, as a Boltfile's ``ports`` list writes it.

    Bolt accepts ``"HOST:CONTAINER"`` and ``"PORT"`` (the same number on both sides),
    each 1-65535. GhostPanel also reads a ``/udp`` (or ``/tcp``) suffix, which Bolt
    rejects; :attr:`explicit_protocol` tells the validator to warn about it.

    Examples
    --------
    >>> PortMapping.parse("8080:80")
    PortMapping(host=8080, container=80, protocol='tcp', explicit_protocol=False)
    >>> str(PortMapping.parse("27015/udp"))
    '27015:27015/udp'
    """

    host: int
    container: int
    protocol: Literal["tcp", "udp"] = "tcp"
    explicit_protocol: bool = False

    @classmethod
    def parse(cls, spec: str) -> PortMapping:
        """Read one ``ports`` entry.

        Raises
        ------
        ValueError
            The entry is not a port mapping Bolt or GhostPanel accepts; the message
            says why (a host IP, a range, a number out of range...).
        """
        body, slash, protocol = spec.partition("/")
        if slash and protocol not in ("tcp", "udp"):
            raise ValueError(f"unknown protocol {protocol!r} in port {spec!r}")
        parts = body.split(":")
        if len(parts) > 2:
            raise ValueError(
                f"port {spec!r} has more than two parts; Bolt accepts no host IP, only "
                '"HOST:CONTAINER" or "PORT"'
            )
        if len(parts) == 2:
            host = _port_number(parts[0], "host port")
            container = _port_number(parts[1], "container port")
        else:
            host = container = _port_number(parts[0], "port")
        proto: Literal["tcp", "udp"] = "udp" if protocol == "udp" else "tcp"
        return cls(host=host, container=container, protocol=proto,
                   explicit_protocol=bool(slash))

    def __str__(self) -> str:
        suffix = f"/{self.protocol}" if self.explicit_protocol else ""
        return f"{self.host}:{self.container}{suffix}"


def _port_number(text: str, role: str) -> int:
    if not _PORT_NUMBER.fullmatch(text):
        if re.fullmatch(r"[0-9]+-[0-9]+", text):
            raise ValueError(f"{role} {text!r} is a range; Bolt accepts single ports only")
        raise ValueError(f"{role} {text!r} is not a number")
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(f"{role} {number} is out of range 1-65535")
    return number


@dataclass(frozen=True)
class VolumeMount:
    """A mount from a service's ``volumes`` list: ``"SOURCE:TARGET[:OPTIONS]"``.

    ``source`` is a host path or a named volume; a bare ``"/data"`` (no colon) is an
    anonymous volume with ``source`` ``None``. Bolt knows the options ``ro``, ``rw``,
    ``z`` and ``Z`` (comma separated) and only logs a warning for others.

    Examples
    --------
    >>> VolumeMount.parse("./site:/usr/share/nginx/html:ro")
    VolumeMount(source='./site', target='/usr/share/nginx/html', options=('ro',))
    """

    source: str | None
    target: str
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> VolumeMount:
        """Read one ``volumes`` entry the way Bolt does.

        Raises
        ------
        ValueError
            Bolt refuses the entry: more than three parts, or an empty source or target.
        """
        if ":" not in spec:
            return cls(source=None, target=spec)
        parts = spec.split(":")
        if len(parts) > 3:
            raise ValueError(
                f"volume {spec!r} has {len(parts)} parts; Bolt accepts SOURCE:TARGET[:OPTIONS]"
            )
        if not parts[0]:
            raise ValueError(f"volume {spec!r} has an empty source")
        if not parts[1]:
            raise ValueError(f"volume {spec!r} has an empty target")
        options = tuple(parts[2].split(",")) if len(parts) == 3 else ()
        return cls(source=parts[0], target=parts[1], options=options)

    @property
    def unknown_options(self) -> tuple[str, ...]:
        """Options other than ``ro``, ``rw``, ``z``, ``Z`` (Bolt warns and ignores them)."""
        return tuple(o for o in self.options if o not in _VOLUME_OPTIONS)


# --------------------------------------------------------------------------- layout

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}#\r\n]+")  # numbers, booleans, dates: up to a delimiter


class _ScanError(Exception):
    """The scanner met text it does not understand (tomlkit accepted it, we did not)."""


@dataclass
class _Key:
    """A (possibly dotted) key as written: decoded parts, their source text and offsets."""

    parts: tuple[str, ...]
    raws: tuple[str, ...]
    starts: tuple[int, ...]
    end: int

    @property
    def start(self) -> int:
        return self.starts[0]

    @property
    def text(self) -> str:
        return ".".join(self.raws)


@dataclass
class _Comment:
    start: int
    end: int
    own_line: bool  # nothing but whitespace before it on its line


@dataclass
class _Value:
    start: int
    end: int
    kind: Literal["scalar", "array", "inline"]
    # arrays: elements and comments in source order; inline tables: members.
    parts: list[_Value | _Comment] = field(default_factory=list)
    members: list[tuple[_Key, _Value]] = field(default_factory=list)

    @property
    def items(self) -> list[_Value]:
        return [p for p in self.parts if isinstance(p, _Value)]

    @property
    def has_comments(self) -> bool:
        return any(isinstance(p, _Comment) for p in self.parts)


@dataclass
class _Item:
    """One top-level line (or several, for a multi-line value) of the file.

    ``text[start:end]`` of all items, in order, is the whole file.
    """

    kind: Literal["blank", "comment", "header", "entry"]
    start: int
    end: int
    path: TomlPath = ()  # header: the table; entry: the full key path
    table: TomlPath = ()  # entry: the table the line is in
    key: _Key | None = None
    value: _Value | None = None
    is_array: bool = False
    comment: tuple[int, int] | None = None  # trailing "# ..." of a header or entry


@dataclass
class _Block:
    """A table header with its lines; block 0 is the root (no header).

    ``leading`` are the comment and blank lines above the header that belong to it,
    ``body`` runs from the first line after the header to its last key, ``tail`` are
    comment lines that follow the last key directly (they describe this table).
    """

    header: _Item | None
    leading: list[_Item] = field(default_factory=list)
    body: list[_Item] = field(default_factory=list)
    tail: list[_Item] = field(default_factory=list)

    @property
    def path(self) -> TomlPath:
        return self.header.path if self.header is not None else ()

    @property
    def entries(self) -> list[_Item]:
        return [it for it in self.body if it.kind == "entry"]


@dataclass
class SourceLayout:
    """Where everything is in one Boltfile text (see :func:`scan_layout`).

    Offsets are indices into ``text``; paths are :data:`TomlPath`. ``key_at`` maps a
    path to where its key or table header is written, ``implicit_at`` to where a table
    that has no header of its own is first named (``gaming`` in
    ``[services.web.gaming.gpu]``), ``value_at`` to the written value.
    """

    text: str
    items: list[_Item]
    complete: bool
    key_at: dict[TomlPath, int]
    implicit_at: dict[TomlPath, int]
    value_at: dict[TomlPath, _Value]
    keys: dict[TomlPath, _Key]
    entry_items: dict[TomlPath, _Item]
    preamble: list[_Item] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    _line_starts: list[int] = field(default_factory=list)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in characters) of ``offset``."""
        starts = self._starts()
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def offset(self, line: int, column: int) -> int:
        """The offset of a 1-based line and column (clamped to the text)."""
        starts = self._starts()
        start = starts[min(max(line, 1), len(starts)) - 1]
        return min(start + max(column, 1) - 1, len(self.text))

    def _starts(self) -> list[int]:
        if not self._line_starts:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return self._line_starts

    def key_offset(self, path: TomlPath) -> int:
        """Offset of the key or header naming ``path``, or of its nearest written parent."""
        probe = path
        while probe:
            for table in (self.key_at, self.implicit_at):
                if probe in table:
                    return table[probe]
            probe = probe[:-1]
        return 0

    def value_offset(self, path: TomlPath) -> int:
        """Offset of the value at ``path``, falling back to :meth:`key_offset`."""
        value = self.value_at.get(path)
        return value.start if value is not None else self.key_offset(path)

    def first_offset(self, path: TomlPath) -> int:
        """Where ``path`` is first mentioned (orders tables of unknown names)."""
        offsets = [t[path] for t in (self.key_at, self.implicit_at) if path in t]
        return min(offsets) if offsets else len(self.text)

    def path_at(self, offset: int) -> TomlPath:
        """The deepest written value whose text contains ``offset`` (or the table there)."""
        best: TomlPath = ()
        for path, value in self.value_at.items():
            if value.start <= offset <= value.end and len(path) >= len(best):
                best = path
        if best:
            return best
        table: TomlPath = ()
        for item in self.items:
            if item.start > offset:
                break
            if item.kind == "header":
                table = item.path
            elif item.kind == "entry" and item.end > offset:
                return item.path
        return table


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.items: list[_Item] = []
        self.table: TomlPath = ()
        self.aot: dict[TomlPath, int] = {}
        self.key_at: dict[TomlPath, int] = {}
        self.implicit_at: dict[TomlPath, int] = {}
        self.value_at: dict[TomlPath, _Value] = {}
        self.keys: dict[TomlPath, _Key] = {}
        self.entry_items: dict[TomlPath, _Item] = {}
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
                self.items.append(_Item("comment", line_start, self.pos))
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
            self.items.append(_Item("blank", line_start, self.pos))
        elif char == "#":
            self._skip_to_eol()
            self._skip_newline()
            self.items.append(_Item("comment", line_start, self.pos))
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
        self.items.append(_Item("header", line_start, self.pos, path=path, key=key,
                                is_array=is_array, comment=comment))

    def _resolve(self, key: _Key, *, is_array: bool) -> TomlPath:
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
        key = self._key()
        self._skip_ws()
        if self._peek() != "=":
            raise _ScanError("expected '='")
        self.pos += 1
        self._skip_ws()
        path = self.table + key.parts
        self._record_key(self.table, key)
        value = self._value(path)
        comment = self._end_of_line()
        item = _Item("entry", line_start, self.pos, path=path, table=self.table, key=key,
                     value=value, comment=comment)
        self.items.append(item)
        self.entry_items[path] = item

    def _record_key(self, table: TomlPath, key: _Key) -> None:
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
    def _key(self) -> _Key:
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
                return _Key(tuple(parts), tuple(raws), tuple(starts), end)
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

    def _value(self, path: TomlPath) -> _Value:
        start = self.pos
        char = self._peek()
        if self.text.startswith('"""', start) or self.text.startswith("'''", start):
            end = self._multiline_end(start, char)
            value = _Value(start, end, "scalar")
        elif char == '"':
            value = _Value(start, self._basic_string_end(start), "scalar")
        elif char == "'":
            end = self.text.find("'", start + 1) + 1
            if end == 0:
                raise _ScanError("unterminated string")
            value = _Value(start, end, "scalar")
        elif char == "[":
            value = self._array(path)
        elif char == "{":
            value = self._inline_table(path)
        else:
            match = _SCALAR.match(self.text, start)
            if match is None:
                raise _ScanError("expected a value")
            end = start + len(match.group().rstrip(" \t"))
            value = _Value(start, end, "scalar")
        self.pos = value.end
        self.value_at[path] = value
        return value

    def _skip_filler(self, parts: list[_Value | _Comment]) -> None:
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
                parts.append(_Comment(start, self.pos, own_line))
            else:
                return

    def _array(self, path: TomlPath) -> _Value:
        value = _Value(self.pos, self.pos, "array")
        self.pos += 1
        index = 0
        while True:
            self._skip_filler(value.parts)
            if self._peek() == "]":
                self.pos += 1
                break
            if not self._peek():
                raise _ScanError("unterminated array")
            value.parts.append(self._value((*path, index)))
            index += 1
            self._skip_filler(value.parts)
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != "]":
                raise _ScanError("expected ',' or ']'")
        value.end = self.pos
        return value

    def _inline_table(self, path: TomlPath) -> _Value:
        value = _Value(self.pos, self.pos, "inline")
        self.pos += 1
        while True:
            # Newlines and comments are TOML 1.1 (tomlkit reads them, Bolt does not).
            self._skip_filler(value.parts)
            if self._peek() == "}":
                self.pos += 1
                break
            if not self._peek():
                raise _ScanError("unterminated inline table")
            key = self._key()
            self._skip_ws()
            if self._peek() != "=":
                raise _ScanError("expected '='")
            self.pos += 1
            self._skip_ws()
            self._record_key(path, key)
            value.members.append((key, self._value(path + key.parts)))
            self._skip_filler(value.parts)
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != "}":
                raise _ScanError("expected ',' or '}'")
        value.end = self.pos
        return value


def _decode_key(raw: str) -> str:
    """The key a quoted basic-string key stands for (escapes resolved)."""
    try:
        return str(tomllib.loads(f"k = {raw}")["k"])
    except tomllib.TOMLDecodeError:
        return str(tomlkit.parse(f"k = {raw}")["k"])  # TOML 1.1 escapes such as \e


def scan_layout(text: str) -> SourceLayout:
    """Record where every header, key, value, comment and blank line of ``text`` is.

    Meant for text tomlkit has parsed; anything the scanner does not follow is kept as
    an opaque line and the layout is marked incomplete.
    """
    layout = _Scanner(text).scan()
    layout.preamble, layout.blocks = _split_blocks(layout.items)
    return layout


def _split_blocks(items: list[_Item]) -> tuple[list[_Item], list[_Block]]:
    """Group the lines into the root block and one block per header (see :class:`_Block`).

    Comment lines between two tables are shared out like this: a comment paragraph
    that directly follows a table's last line stays with that table (it usually
    comments a key out or explains it); everything from the first blank line on
    belongs to the next header (banners, and the comment right above the header that
    describes it). Comments before the first key of the file, up to the last blank
    line, are the file's preamble and stay on top.
    """
    segments: list[list[_Item]] = [[]]
    for item in items:
        if item.kind == "header":
            segments.append([])
        segments[-1].append(item)
    blocks: list[_Block] = []
    preamble: list[_Item] = []
    pending: list[_Item] = []  # lines handed on to the next header
    for number, segment in enumerate(segments):
        header = segment[0] if number else None
        rest = segment[1:] if number else segment
        block = _Block(header=header, leading=pending)
        pending = []
        entries = [i for i, it in enumerate(rest) if it.kind == "entry"]
        if number == 0:
            cut = entries[0] if entries else len(rest)
            blank = max((i for i in range(cut) if rest[i].kind == "blank"), default=-1)
            if not entries and len(segments) == 1:
                blank = len(rest) - 1
            preamble, rest = rest[: blank + 1], rest[blank + 1:]
            entries = [i - blank - 1 for i in entries]
            if not entries:
                blocks.append(block)
                pending = rest
                continue
        last = entries[-1] if entries else -1
        block.body = rest[: last + 1]
        run = rest[last + 1:]
        if number == len(segments) - 1:
            block.tail = run
        else:
            stays = 0
            while stays < len(run) and run[stays].kind == "comment":
                stays += 1
            block.tail, pending = run[:stays], run[stays:]
        blocks.append(block)
    if pending:  # a file of comments only
        blocks[-1].tail += pending
    return preamble, blocks


# --------------------------------------------------------------------------- format

KeyOrder = Callable[[TomlPath], Sequence[str] | None]
"""The declared key order of the table at a path (``None``: no declared order)."""


@dataclass
class _Row:
    code: str  # "" for a blank line
    comment: str | None = None
    entry: bool = False  # a single-line ``key = value``: its comment may be aligned
    pad: str = "  "  # spaces between code and comment


class _Formatter:
    """Re-emit a layout with keys in declared order and uniform spacing.

    Values are copied as written (strings keep their quotes, numbers their spelling);
    only the spacing inside arrays and inline tables is normalised. Comments travel
    with the key or header they sit above.
    """

    def __init__(self, layout: SourceLayout, key_order: KeyOrder) -> None:
        self.layout = layout
        self.text = layout.text
        self.key_order = key_order
        self.newline = "\r\n" if "\r\n" in layout.text else "\n"
        self.rows: list[_Row] = []

    def run(self) -> str:
        self._trivia(self.layout.preamble)
        root, *tables = self.layout.blocks
        self._body(root)
        self._trivia(root.tail)
        for block in sorted(tables, key=lambda b: self._table_rank(b.path)):
            self._blank()
            self._trivia(_strip_blanks(block.leading))
            assert block.header is not None and block.header.key is not None
            brackets = ("[[", "]]") if block.header.is_array else ("[", "]")
            self.rows.append(_Row(brackets[0] + block.header.key.text + brackets[1],
                                  self._comment(block.header.comment)))
            self._body(block)
            self._trivia(block.tail)
        while self.rows and not self.rows[-1].code:
            self.rows.pop()
        _align_comments(self.rows)
        lines = [r.code + (r.pad + r.comment if r.comment else "") for r in self.rows]
        return self.newline.join(lines) + self.newline if lines else ""

    # -- rows
    def _blank(self) -> None:
        if self.rows and self.rows[-1].code:
            self.rows.append(_Row(""))

    def _trivia(self, items: Sequence[_Item]) -> None:
        for item in items:
            if item.kind == "blank":
                self._blank()
            else:
                self.rows.append(_Row(self.text[item.start:item.end].strip()))

    def _comment(self, span: tuple[int, int] | None) -> str | None:
        return self.text[span[0]:span[1]].rstrip() if span else None

    def _body(self, block: _Block) -> None:
        groups: list[tuple[list[_Item], _Item]] = []
        lead: list[_Item] = []
        for item in block.body:
            if item.kind == "entry":
                groups.append((lead, item))
                lead = []
            else:
                lead.append(item)
        groups.sort(key=lambda g: self._key_rank(block.path, g[1]))
        for number, (lead, entry) in enumerate(groups):
            self._trivia(_strip_blanks(lead, trailing=False) if number == 0 else lead)
            assert entry.key is not None and entry.value is not None
            code = f"{entry.key.text} = {self._value(entry.value)}"
            self.rows.append(_Row(code, self._comment(entry.comment), entry="\n" not in code))

    # -- order
    def _rank(self, table: TomlPath, name: str | int) -> tuple[int, int]:
        if isinstance(name, int):
            return (0, name)  # elements of an array of tables keep their order
        order = self.key_order(table)
        if order is not None and name in order:
            return (0, list(order).index(name))
        return (1, self.layout.first_offset((*table, name)))

    def _key_rank(self, table: TomlPath, entry: _Item) -> tuple[int, int]:
        assert entry.key is not None
        rank = self._rank(table, entry.key.parts[0])
        return (rank[0], rank[1] if rank[0] == 0 else 0)  # unknown keys keep their order

    def _table_rank(self, path: TomlPath) -> tuple[tuple[int, int], ...]:
        return tuple(self._rank(path[:i], path[i]) for i in range(len(path)))

    # -- values
    def _value(self, value: _Value) -> str:
        source = self.text[value.start:value.end]
        if value.kind == "scalar":
            return source
        if value.kind == "inline":
            if value.has_comments:
                return source
            members = [f"{k.text} = {self._value(v)}" for k, v in value.members]
            if any("\n" in m for m in members):
                return source
            # A multi-line inline table (TOML 1.1, refused by Bolt) becomes one line.
            return "{ " + ", ".join(members) + " }" if members else "{}"
        items = [self._value(v) for v in value.items]
        if any("\n" in i for i in items):
            return source
        if "\n" not in source:
            return "[" + ", ".join(items) + "]"
        rows = [_Row("[")]
        elements = iter(items)
        for part in value.parts:
            if isinstance(part, _Comment):
                comment = self.text[part.start:part.end].rstrip()
                if part.own_line:
                    rows.append(_Row("    " + comment))
                else:
                    rows[-1].comment = comment
            else:
                rows.append(_Row(f"    {next(elements)},", entry=True))
        rows.append(_Row("]"))
        _align_comments(rows)
        return self.newline.join(r.code + (r.pad + r.comment if r.comment else "") for r in rows)


def _strip_blanks(items: Sequence[_Item], *, trailing: bool = True) -> list[_Item]:
    out = list(items)
    while out and out[0].kind == "blank":
        out.pop(0)
    while trailing and out and out[-1].kind == "blank":
        out.pop()
    return out


def _align_comments(rows: list[_Row]) -> None:
    """Line up the trailing comments of consecutive one-line keys (as taplo does)."""
    run: list[_Row] = []
    for row in [*rows, _Row("")]:
        if row.entry:
            run.append(row)
            continue
        commented = [r for r in run if r.comment]
        width = max((len(r.code) for r in commented), default=0)
        for r in commented:
            r.pad = " " * (width - len(r.code) + 2)
        run = []


# --------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------- documents


def _render_key(name: str) -> str:
    return tomlkit.key(name).as_string()


def _render_value(value: Any, *, multiline: bool = False) -> str:
    if isinstance(value, Mapping):
        members = ", ".join(f"{_render_key(k)} = {_render_value(v)}" for k, v in value.items())
        return "{ " + members + " }" if members else "{}"
    if isinstance(value, list | tuple):
        items = [_render_value(v) for v in value]
        if multiline and items:
            return "[\n" + "".join(f"    {i},\n" for i in items) + "]"
        return "[" + ", ".join(items) + "]"
    return str(tomlkit.item(value).as_string())


def _plain(value: Any) -> Any:
    """``value`` as tomlkit's ``unwrap()`` gives it back (lists and dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check_service_name(name: str) -> None:
    if not name or " " in name:
        raise ValueError(f"invalid service name {name!r}: Bolt wants a non-empty name "
                         "without spaces")


class BoltfileService:
    """One ``[services.<name>]`` table of a :class:`Boltfile`, read live.

    The view reads the Boltfile's current document on every access, so it stays
    right across edits; use the Boltfile's methods to change it.

    Examples
    --------
    >>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n'
    ...                     'ports = ["80:80"]\\n')
    >>> web = bf.service("web")
    >>> web.image, web.ports
    ('nginx', ('80:80',))
    """

    def __init__(self, boltfile: Boltfile, name: str) -> None:
        self._boltfile = boltfile
        self._name = name

    @property
    def name(self) -> str:
        """The service's name (its key under ``services``)."""
        return self._name

    def to_dict(self) -> dict[str, Any]:
        """The service table as plain Python data.

        Raises
        ------
        KeyError
            The service is no longer in the Boltfile.
        """
        data = self._boltfile.to_dict().get("services")
        if not isinstance(data, dict) or not isinstance(data.get(self._name), dict):
            raise KeyError(f"no service {self._name!r} in {self._boltfile.path}")
        table: dict[str, Any] = data[self._name]
        return table

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the service table, as plain Python data."""
        return self.to_dict().get(key, default)

    def _string(self, key: str) -> str | None:
        value = self.get(key)
        return value if isinstance(value, str) else None

    def _strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list):
            return ()
        return tuple(v for v in value if isinstance(v, str))

    @property
    def image(self) -> str | None:
        """The ``image`` the service runs, if it names one."""
        return self._string("image")

    @property
    def build(self) -> str | None:
        """The ``build`` context, if the service is built."""
        return self._string("build")

    @property
    def capsule(self) -> str | None:
        """The Bolt ``capsule``, if the service is one."""
        return self._string("capsule")

    @property
    def ports(self) -> tuple[str, ...]:
        """The ``ports`` entries as written (see :class:`PortMapping` to read them)."""
        return self._strings("ports")

    @property
    def volumes(self) -> tuple[str, ...]:
        """The ``volumes`` entries as written (see :class:`VolumeMount`)."""
        return self._strings("volumes")

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The services this one starts after."""
        return self._strings("depends_on")

    @property
    def networks(self) -> tuple[str, ...]:
        """The networks the service joins."""
        return self._strings("networks")

    def __repr__(self) -> str:
        return f"<BoltfileService {self._name!r} of {self._boltfile.path}>"


class Boltfile:
    """A Boltfile (Bolt's TOML project file), loaded for reading and editing.

    Loading and saving an unchanged file gives it back byte for byte. The edits
    (:meth:`add_service`, :meth:`set_image`, :meth:`set_ports`, :meth:`remove_service`,
    :meth:`set_service_key`, ...) change only the lines they must and keep every
    comment. Whether Bolt accepts the file is :func:`ghostpanel_kernel.bolt.validate`'s
    business: a Boltfile that Bolt would refuse loads fine, as long as it is TOML.

    Parameters
    ----------
    document
        The parsed tomlkit document.
    path
        Where it came from (``"<string>"`` for text).

    Examples
    --------
    >>> bf = Boltfile.loads('project = "demo"  # my stack\\n\\n[services.web]\\n'
    ...                     'image = "nginx:1.27"  # pinned\\n')
    >>> bf.set_image("web", "nginx:1.28")
    >>> bf.add_service("cache", image="redis:7", ports=["6379:6379"])
    <BoltfileService 'cache' of <string>>
    >>> print(bf.dumps(), end="")
    project = "demo"  # my stack
    <BLANKLINE>
    [services.web]
    image = "nginx:1.28"  # pinned
    <BLANKLINE>
    [services.cache]
    image = "redis:7"
    ports = ["6379:6379"]
    """

    def __init__(self, document: TOMLDocument, *, path: str = "<string>") -> None:
        self._document = document
        self._path = path

    # -- loading and saving
    @classmethod
    def load(cls, path: str | PathLike[str]) -> Boltfile:
        """Read the Boltfile at ``path``.

        Raises
        ------
        BoltfileError
            The file cannot be read, is not UTF-8, or is not TOML (with line and column).
        """
        name = fspath(path)
        try:
            with open(name, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise BoltfileError(f"cannot read the Boltfile: {exc.strerror or exc}",
                                path=name) from exc
        return cls.loads(decode_boltfile(data, path=name), path=name)

    @classmethod
    def loads(cls, text: str, *, path: str = "<string>") -> Boltfile:
        """Parse Boltfile text; ``path`` only names it in messages.

        Raises
        ------
        BoltfileError
            The text is not TOML (with line and column).
        """
        return cls(parse_document(text, path=path), path=path)

    @property
    def path(self) -> str:
        """The file this Boltfile was loaded from or last saved to."""
        return self._path

    @property
    def document(self) -> TOMLDocument:
        """The tomlkit document, for edits the methods here do not cover.

        Structural edits (:meth:`add_service`, :meth:`remove_service`, ...) replace the
        document with a fresh parse: hold on to the Boltfile, not to this object.
        """
        return self._document

    def dumps(self) -> str:
        """The document as TOML text (an unchanged file comes back byte for byte)."""
        return self._document.as_string()

    def to_dict(self) -> dict[str, Any]:
        """The whole document as plain Python data."""
        return self._document.unwrap()

    def save(self, path: str | PathLike[str] | None = None) -> None:
        """Write the document to ``path`` (default: where it was loaded from).

        Raises
        ------
        ValueError
            No ``path`` was given and the Boltfile did not come from a file.
        OSError
            The file cannot be written.
        """
        target = fspath(path) if path is not None else self._path
        if target == "<string>":
            raise ValueError("this Boltfile was read from a string; pass save(path=...)")
        # newline="" writes the text's own newlines (CRLF files stay CRLF).
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(self.dumps())
        self._path = target

    def format(self) -> str:
        """The document as normalised text, what ``ghostpanel boltfile fmt`` writes.

        Tables and keys come in the order Bolt declares them (``project``, the GhostPanel
        tables ``quic_fabric`` and ``dns_config``, ``services`` with ``image``/``build``/
        ``capsule`` first, ``networks``, ``volumes``, ``snapshots``; unknown keys after,
        in their order); one blank line before each table; ``key = value`` with single
        spaces; arrays and inline tables spaced as ``["a", "b"]`` and ``{ a = 1 }``;
        trailing comments of consecutive keys aligned. Comments stay with the key or
        table below them. Values keep their spelling. The document itself is not changed.

        Raises
        ------
        RuntimeError
            The formatted text would not read back as the same data (a bug; nothing
            is written in that case).
        """
        # The schema (and so the key order) lives with the validator, which imports
        # this module: import it here, not at the top, to keep the modules acyclic.
        from ghostpanel_kernel.bolt._validator import declared_keys

        text = self.dumps()
        layout = scan_layout(text)
        if not layout.complete:
            return text
        formatted = _Formatter(layout, declared_keys).run()
        try:
            same = tomlkit.parse(formatted).unwrap() == self.to_dict()
        except TOMLKitError:
            same = False
        if not same:
            raise RuntimeError(f"formatting {self._path} would change its data; this is a "
                               "GhostPanel bug, please report it with the file")
        return formatted

    # -- reading
    @property
    def project(self) -> str | None:
        """The ``project`` name, or ``None`` when it is missing or not a string."""
        value = self.to_dict().get("project")
        return value if isinstance(value, str) else None

    @property
    def services(self) -> list[str]:
        """The service names, in file order."""
        services = self.to_dict().get("services")
        return list(services) if isinstance(services, dict) else []

    def service(self, name: str) -> BoltfileService:
        """The service called ``name``.

        Raises
        ------
        KeyError
            There is no such service.
        """
        if name not in self.services:
            raise KeyError(f"no service {name!r} in {self._path}")
        return BoltfileService(self, name)

    # -- edits
    def set_project(self, name: str) -> None:
        """Set the top-level ``project`` name (Bolt wants it non-empty, without spaces).

        Raises
        ------
        ValueError
            ``name`` is empty or has a space, or ``project`` is written as a table.
        """
        if not name or " " in name:
            raise ValueError(f"invalid project name {name!r}: Bolt wants a non-empty name "
                             "without spaces")
        data = self.to_dict()
        if "project" in data and not isinstance(data["project"], str):
            raise ValueError("`project` is not a string here (a [project] table?); remove "
                             "it first through .document")
        expected = copy.deepcopy(data)
        expected["project"] = name
        self._set_key(self._layout(), (), "project", name, expected)

    def add_service(
        self,
        name: str,
        *,
        image: str | None = None,
        build: str | None = None,
        capsule: str | None = None,
        ports: Sequence[str] = (),
        volumes: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        depends_on: Sequence[str] = (),
        networks: Sequence[str] = (),
        command: Sequence[str] | None = None,
        restart: str | None = None,
    ) -> BoltfileService:
        """Add a ``[services.<name>]`` table after the last service.

        Parameters
        ----------
        name
            The new service's name (non-empty, no spaces).
        image, build, capsule
            Where the service comes from; give exactly one (Bolt's rule).
        ports
            ``"HOST:CONTAINER"`` or ``"PORT"`` entries.
        volumes
            ``"SOURCE:TARGET[:OPTIONS]"`` entries.
        environment
            Environment variables (written as an inline table).
        depends_on, networks, command, restart
            Written as given when set.

        Returns
        -------
        BoltfileService
            The new service.

        Raises
        ------
        ValueError
            A bad name, not exactly one source, a malformed port or volume, a service
            of that name already there, or a ``services`` inline table to add to.
        """
        _check_service_name(name)
        sources = {k: v for k, v in (("image", image), ("build", build), ("capsule", capsule))
                   if v is not None}
        if len(sources) != 1:
            raise ValueError("give exactly one of image=, build=, capsule= (Bolt requires "
                             "exactly one per service)")
        for spec in ports:
            PortMapping.parse(spec)
        for spec in volumes:
            VolumeMount.parse(spec)
        data = self.to_dict()
        services = data.get("services", {})
        if not isinstance(services, dict):
            raise ValueError("`services` is not a table in this Boltfile")
        if name in services:
            raise ValueError(f"service {name!r} already exists")
        table: dict[str, Any] = dict(sources)
        optional: dict[str, Any] = {
            "ports": list(ports), "volumes": list(volumes), "environment": environment,
            "depends_on": list(depends_on), "networks": list(networks),
            "command": None if command is None else list(command), "restart": restart,
        }
        table.update({k: _plain(v) for k, v in optional.items() if v})
        expected = copy.deepcopy(data)
        expected.setdefault("services", {})[name] = table

        layout = self._layout()
        if ("services",) in layout.value_at:
            raise ValueError("`services` is written as an inline table; add the service "
                             "through .document")
        header = f"[services.{_render_key(name)}]\n"
        lines = "".join(f"{_render_key(k)} = {_render_value(v)}\n" for k, v in table.items())
        anchors = [b for b in layout.blocks[1:] if b.path[:1] == ("services",)]
        text = layout.text
        position = _block_end(anchors[-1]) if anchors else len(text)
        before, after = text[:position], text[position:]
        if before and not before.endswith("\n"):
            before += "\n"
        gap = "" if not before.strip() or before.endswith(("\n\n", "\n\r\n")) else "\n"
        trailer = "" if not after.strip() or after.startswith(("\n", "\r\n")) else "\n"
        self._apply(before + gap + header + lines + trailer + after, expected)
        return BoltfileService(self, name)

    def remove_service(self, name: str) -> None:
        """Remove a service: its tables, its keys and the comment lines right above them.

        Other services' ``depends_on`` entries naming it are left alone; the validator
        reports them.

        Raises
        ------
        KeyError
            There is no such service.
        """
        if name not in self.services:
            raise KeyError(f"no service {name!r} in {self._path}")
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][name]
        layout = self._layout()
        if ("services",) in layout.value_at:
            self._apply(_delete_key_text(layout, ("services", name)), expected)
            return
        prefix: TomlPath = ("services", name)
        drop: set[int] = set()
        for block in layout.blocks[1:]:
            if block.path[: len(prefix)] == prefix:
                assert block.header is not None
                drop.update(id(it) for it in (*_attached(block.leading), block.header,
                                              *block.body, *block.tail))
        for index, item in enumerate(layout.items):
            if item.kind == "entry" and item.path[: len(prefix)] == prefix:
                drop.add(id(item))
                drop.update(id(it) for it in _attached(layout.items[:index]))
        self._apply(_drop_items(layout, drop), expected)

    def set_image(self, service: str, image: str) -> None:
        """Make ``service`` run ``image``.

        A service has exactly one source, so a ``build`` or ``capsule`` key is replaced
        (in place, keeping its line's comment).

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            ``image`` is empty.
        """
        if not image:
            raise ValueError("image must not be empty")
        table = self.service(service).to_dict()
        others = [k for k in ("build", "capsule") if k in table]
        if "image" in table or not others:
            self.set_service_key(service, "image", image)
            for other in others:
                self.unset_service_key(service, other)
            return
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][service][others[0]]
        expected["services"][service]["image"] = image
        layout = self._layout()
        path = ("services", service, others[0])
        key, value = layout.keys.get(path), layout.value_at.get(path)
        if key is None or value is None:
            raise ValueError(f"`{others[0]}` of {service!r} is not a plain key here; edit it "
                             "through .document")
        text = layout.text
        text = text[: value.start] + _render_value(image) + text[value.end:]
        text = text[: key.starts[-1]] + "image" + text[key.end:]
        self._apply(text, expected)
        for extra in others[1:]:
            self.unset_service_key(service, extra)

    def set_ports(self, service: str, ports: Sequence[str]) -> None:
        """Replace the ``ports`` of ``service`` (a multi-line list stays multi-line).

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            An entry is not a port mapping (see :meth:`PortMapping.parse`).
        """
        for index, spec in enumerate(ports):
            try:
                PortMapping.parse(spec)
            except ValueError as exc:
                raise ValueError(f"ports[{index}]: {exc}") from None
        self.set_service_key(service, "ports", list(ports))

    def set_service_key(self, service: str, key: str, value: Any) -> None:
        """Set one key of a service table to a TOML value (string, number, bool, list,
        or a mapping, written as an inline table).

        An existing value is replaced where it is written; a new key goes after the
        table's last key.

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            ``key`` is written as a table of its own (``[services.web.environment]``);
            change that through :attr:`document`.
        """
        table = self.service(service).to_dict()
        layout = self._layout()
        path = ("services", service, key)
        if key in table and (path not in layout.keys or path not in layout.value_at):
            raise ValueError(f"`{key}` of {service!r} is written as a table; edit it "
                             "through .document")
        expected = copy.deepcopy(self.to_dict())
        expected["services"][service][key] = _plain(value)
        self._set_key(layout, ("services", service), key, value, expected)

    def unset_service_key(self, service: str, key: str) -> None:
        """Remove one key of a service table.

        Raises
        ------
        KeyError
            There is no such service, or it has no such key.
        ValueError
            ``key`` is a table of its own; remove it through :attr:`document`.
        """
        table = self.service(service).to_dict()
        if key not in table:
            raise KeyError(f"service {service!r} has no key {key!r}")
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][service][key]
        self._apply(_delete_key_text(self._layout(), ("services", service, key)), expected)

    # -- edit plumbing
    def _layout(self) -> SourceLayout:
        layout = scan_layout(self.dumps())
        if not layout.complete:
            raise ValueError("this Boltfile uses TOML syntax GhostPanel's editor does not "
                             "follow; make this change through .document")
        return layout

    def _set_key(self, layout: SourceLayout, table: TomlPath, key: str, value: Any,
                 expected: dict[str, Any]) -> None:
        path = (*table, key)
        old = layout.value_at.get(path)
        if old is not None and path in layout.keys:
            written = layout.text[old.start:old.end]
            rendered = _render_value(value, multiline=old.kind == "array" and "\n" in written)
            text = layout.text[: old.start] + rendered + layout.text[old.end:]
        else:
            text = _insert_key_text(layout, table, key, _render_value(value))
        self._apply(text, expected)

    def _apply(self, text: str, expected: dict[str, Any]) -> None:
        """Adopt ``text`` if it reads back as ``expected``; otherwise change nothing."""
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as exc:
            raise ValueError(f"this edit does not fit the file's layout ({exc}); make it "
                             "through .document") from exc
        actual = document.unwrap()
        if expected.get("services") == {} and "services" not in actual:
            expected = {k: v for k, v in expected.items() if k != "services"}
        if actual != expected:
            raise RuntimeError("an edit would have changed more than asked; this is a "
                               "GhostPanel bug, nothing was changed")
        self._document = document

    def __repr__(self) -> str:
        return f"<Boltfile {self._path} project={self.project!r} services={self.services}>"


def _block_end(block: _Block) -> int:
    if block.tail or block.body:
        return (block.tail or block.body)[-1].end
    assert block.header is not None
    return block.header.end


def _attached(items: Sequence[_Item]) -> list[_Item]:
    """The comment lines at the end of ``items`` with no blank line below them."""
    out: list[_Item] = []
    for item in reversed(items):
        if item.kind != "comment":
            break
        out.append(item)
    return out


def _drop_items(layout: SourceLayout, drop: set[int]) -> str:
    """The text without the dropped lines, and without a doubled blank line where
    they were."""
    kept: list[_Item] = []
    junction = False
    for item in layout.items:
        if id(item) in drop:
            junction = True
            continue
        if junction and item.kind == "blank" and (not kept or kept[-1].kind == "blank"):
            continue
        if item.kind != "blank":
            junction = False
        kept.append(item)
    if junction:
        while kept and kept[-1].kind == "blank":
            kept.pop()
    return "".join(layout.text[it.start:it.end] for it in kept)


def _insert_key_text(layout: SourceLayout, table: TomlPath, key: str, rendered: str) -> str:
    """Text with ``key = rendered`` added to ``table`` wherever that table is written."""
    text = layout.text
    line = f"{_render_key(key)} = {rendered}"

    def after(item: _Item, content: str) -> str:
        lead = "" if text[: item.end].endswith("\n") else "\n"
        return text[: item.end] + lead + content + "\n" + text[item.end:]

    if not table:
        root = layout.blocks[0]
        if root.entries:
            return after(root.entries[-1], line)
        position = layout.preamble[-1].end if layout.preamble else 0
        gap = "\n" if text[position:].strip() else ""
        return text[:position] + line + "\n" + gap + text[position:]
    for block in layout.blocks[1:]:
        if block.path == table:
            assert block.header is not None
            return after((block.entries or [block.header])[-1], line)
    value = layout.value_at.get(table)
    if value is not None and value.kind == "inline":
        if value.members:
            end = value.members[-1][1].end
            return text[:end] + f", {line}" + text[end:]
        return text[: value.start] + "{ " + line + " }" + text[value.end:]
    dotted = [it for it in layout.items if it.kind == "entry"
              and len(it.table) < len(table) < len(it.path) and it.path[: len(table)] == table]
    if dotted:
        last = dotted[-1]
        assert last.key is not None
        keep = len(table) - len(last.table)
        return after(last, ".".join((*last.key.raws[:keep], line)))
    children = [b for b in layout.blocks[1:] if b.path[: len(table)] == table]
    if children and all(isinstance(p, str) for p in table):
        first = children[0]
        assert first.header is not None
        position = (first.leading or [first.header])[0].start
        header = "[" + ".".join(_render_key(str(p)) for p in table) + "]"
        return text[:position] + f"{header}\n{line}\n\n" + text[position:]
    raise ValueError(f"cannot find where {'.'.join(map(str, table))} is written")


def _delete_key_text(layout: SourceLayout, path: TomlPath) -> str:
    """Text without the key at ``path`` (a line of its own or an inline-table member)."""
    text = layout.text
    item = layout.entry_items.get(path)
    if item is not None:
        return text[: item.start] + text[item.end:]
    for owner_path, owner in layout.value_at.items():
        if owner.kind != "inline":
            continue
        for index, (key, value) in enumerate(owner.members):
            if (*owner_path, *key.parts) != path:
                continue
            if len(owner.members) == 1:
                return text[: owner.start] + "{}" + text[owner.end:]
            if index < len(owner.members) - 1:
                return text[: key.start] + text[owner.members[index + 1][0].start:]
            return text[: owner.members[index - 1][1].end] + text[value.end:]
    raise ValueError(f"`{'.'.join(map(str, path))}` is not a plain key here; remove it "
                     "through .document")

