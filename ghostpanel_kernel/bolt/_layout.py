"""Where things are written in a Boltfile's text: the records a :class:`SourceLayout` holds.

Why GhostPanel records positions itself: tomlkit keeps the text but not positions, and
it files a comment written above a table header under the *previous* table (so deleting
a table through tomlkit eats the next table's comment). The validator needs a line and
column for every key, and structural edits need to know which comment lines belong to
which table. ``_scanner.scan_layout`` walks the text once and fills these records;
:func:`split_blocks` decides which comment and blank lines belong to which table. The
tomlkit parse stays the source of truth for what the keys and values *are*.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SourceBlock", "SourceComment", "SourceItem", "SourceKey", "SourceLayout",
           "SourceValue", "TomlPath", "split_blocks"]

TomlPath = tuple[str | int, ...]
"""A key's place in the document: table and key names, and 0-based indices for the
elements of arrays (``("services", "web", "ports", 1)``)."""


@dataclass
class SourceKey:
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
class SourceComment:
    start: int
    end: int
    own_line: bool  # nothing but whitespace before it on its line


@dataclass
class SourceValue:
    start: int
    end: int
    kind: Literal["scalar", "array", "inline"]
    # arrays: elements and comments in source order; inline tables: members.
    parts: list[SourceValue | SourceComment] = field(default_factory=list)
    members: list[tuple[SourceKey, SourceValue]] = field(default_factory=list)

    @property
    def items(self) -> list[SourceValue]:
        return [p for p in self.parts if isinstance(p, SourceValue)]

    @property
    def has_comments(self) -> bool:
        return any(isinstance(p, SourceComment) for p in self.parts)


@dataclass
class SourceItem:
    """One top-level line (or several, for a multi-line value) of the file.

    ``text[start:end]`` of all items, in order, is the whole file.
    """

    kind: Literal["blank", "comment", "header", "entry"]
    start: int
    end: int
    path: TomlPath = ()  # header: the table; entry: the full key path
    table: TomlPath = ()  # entry: the table the line is in
    key: SourceKey | None = None
    value: SourceValue | None = None
    is_array: bool = False
    comment: tuple[int, int] | None = None  # trailing "# ..." of a header or entry


@dataclass
class SourceBlock:
    """A table header with its lines; block 0 is the root (no header).

    ``leading`` are the comment and blank lines above the header that belong to it,
    ``body`` runs from the first line after the header to its last key, ``tail`` are
    comment lines that follow the last key directly (they describe this table).
    """

    header: SourceItem | None
    leading: list[SourceItem] = field(default_factory=list)
    body: list[SourceItem] = field(default_factory=list)
    tail: list[SourceItem] = field(default_factory=list)

    @property
    def path(self) -> TomlPath:
        return self.header.path if self.header is not None else ()

    @property
    def entries(self) -> list[SourceItem]:
        return [it for it in self.body if it.kind == "entry"]


@dataclass
class SourceLayout:
    """Where everything is in one Boltfile text (see ``_scanner.scan_layout``).

    Offsets are indices into ``text``; paths are :data:`TomlPath`. ``key_at`` maps a
    path to where its key or table header is written, ``implicit_at`` to where a table
    that has no header of its own is first named (``gaming`` in
    ``[services.web.gaming.gpu]``), ``value_at`` to the written value.
    """

    text: str
    items: list[SourceItem]
    complete: bool
    key_at: dict[TomlPath, int]
    implicit_at: dict[TomlPath, int]
    value_at: dict[TomlPath, SourceValue]
    keys: dict[TomlPath, SourceKey]
    entry_items: dict[TomlPath, SourceItem]
    preamble: list[SourceItem] = field(default_factory=list)
    blocks: list[SourceBlock] = field(default_factory=list)
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



def split_blocks(items: list[SourceItem]) -> tuple[list[SourceItem], list[SourceBlock]]:
    """Group the lines into the root block and one block per header (see :class:`SourceBlock`).

    Comment lines between two tables are shared out like this: a comment paragraph
    that directly follows a table's last line stays with that table (it usually
    comments a key out or explains it); everything from the first blank line on
    belongs to the next header (banners, and the comment right above the header that
    describes it). Comments before the first key of the file, up to the last blank
    line, are the file's preamble and stay on top.
    """
    segments: list[list[SourceItem]] = [[]]
    for item in items:
        if item.kind == "header":
            segments.append([])
        segments[-1].append(item)
    blocks: list[SourceBlock] = []
    preamble: list[SourceItem] = []
    pending: list[SourceItem] = []  # lines handed on to the next header
    for number, segment in enumerate(segments):
        header = segment[0] if number else None
        rest = segment[1:] if number else segment
        block = SourceBlock(header=header, leading=pending)
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
