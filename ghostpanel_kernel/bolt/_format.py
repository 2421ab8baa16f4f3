"""``ghostpanel boltfile fmt``: re-emit a Boltfile with keys in Bolt's order and uniform
spacing, keeping every comment and every value's spelling.

The key order comes from the schema (:func:`~ghostpanel_kernel.bolt._schema.declared_keys`);
the text comes from the source layout, so nothing is re-rendered by tomlkit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ghostpanel_kernel.bolt._data import same_data
from ghostpanel_kernel.bolt._layout import (
    SourceBlock,
    SourceComment,
    SourceItem,
    SourceLayout,
    SourceValue,
    TomlPath,
)
from ghostpanel_kernel.bolt._limits import find_limit_problem
from ghostpanel_kernel.bolt._parse import limit_error
from ghostpanel_kernel.bolt._scanner import scan_layout
from ghostpanel_kernel.bolt._schema import declared_keys

__all__ = ["KeyOrder", "format_text"]

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
        footer: list[SourceItem] = []
        tails = {id(block): block.tail for block in tables}
        if tables:
            # The comments after the file's last table that are not attached to its last
            # key (a blank line comes first) close the file, wherever that table goes:
            # emitted above the next table, they would attach to it, and a second run
            # would format the file differently.
            last = tables[-1]
            attached = 0
            while attached < len(last.tail) and last.tail[attached].kind == "comment":
                attached += 1
            tails[id(last)], footer = last.tail[:attached], last.tail[attached:]
        for block in sorted(tables, key=lambda b: self._table_rank(b.path)):
            self._blank()
            self._trivia(_strip_blanks(block.leading))
            assert block.header is not None and block.header.key is not None
            brackets = ("[[", "]]") if block.header.is_array else ("[", "]")
            self.rows.append(_Row(brackets[0] + block.header.key.text + brackets[1],
                                  self._comment(block.header.comment)))
            self._body(block)
            self._trivia(tails[id(block)])
        self._trivia(footer)
        while self.rows and not self.rows[-1].code:
            self.rows.pop()
        _align_comments(self.rows)
        lines = [r.code + (r.pad + r.comment if r.comment else "") for r in self.rows]
        return self.newline.join(lines) + self.newline if lines else ""

    # -- rows
    def _blank(self) -> None:
        if self.rows and self.rows[-1].code:
            self.rows.append(_Row(""))

    def _trivia(self, items: Sequence[SourceItem]) -> None:
        for item in items:
            if item.kind == "blank":
                self._blank()
            else:
                self.rows.append(_Row(self.text[item.start:item.end].strip()))

    def _comment(self, span: tuple[int, int] | None) -> str | None:
        return self.text[span[0]:span[1]].rstrip() if span else None

    def _body(self, block: SourceBlock) -> None:
        groups: list[tuple[list[SourceItem], SourceItem]] = []
        lead: list[SourceItem] = []
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

    def _key_rank(self, table: TomlPath, entry: SourceItem) -> tuple[int, int]:
        assert entry.key is not None
        rank = self._rank(table, entry.key.parts[0])
        return (rank[0], rank[1] if rank[0] == 0 else 0)  # unknown keys keep their order

    def _table_rank(self, path: TomlPath) -> tuple[tuple[int, int], ...]:
        return tuple(self._rank(path[:i], path[i]) for i in range(len(path)))

    # -- values
    def _value(self, value: SourceValue) -> str:
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
            if isinstance(part, SourceComment):
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


def _strip_blanks(items: Sequence[SourceItem], *, trailing: bool = True) -> list[SourceItem]:
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


def format_text(text: str, data: Mapping[str, Any], *, path: str) -> str:
    """``text`` normalised (see :meth:`Boltfile.format`); ``data`` is what it must still
    read as, ``path`` names the file in the error.

    Text the scanner does not fully follow comes back unchanged.

    Raises
    ------
    BoltfileError
        ``text`` is beyond one of GhostPanel's limits (see
        :mod:`~ghostpanel_kernel.bolt._limits`).
    RuntimeError
        The formatted text would not read back as ``data`` (a bug).
    """
    # The scanner and the formatter recurse once per nesting level: text from a
    # document edited through .document has not been through the loader's limits.
    problem = find_limit_problem(text)
    if problem is not None:
        raise limit_error(problem, path=path)
    layout = scan_layout(text)
    if not layout.complete:
        return text
    formatted = _Formatter(layout, declared_keys).run()
    try:
        same = same_data(tomlkit.parse(formatted).unwrap(), data)
    except TOMLKitError:
        same = False
    if not same:
        raise RuntimeError(f"formatting {path} would change its data; this is a "
                           "GhostPanel bug, please report it with the file")
    return formatted
