"""Structural edits as text: each function takes the layout of a Boltfile's current
text and returns the new text, changing only the lines the edit must change.

Comments stay with the table or key they describe (see
:func:`~ghostpanel_kernel.bolt._layout.split_blocks`). These functions do not check
that the result is right: :class:`~ghostpanel_kernel.bolt.Boltfile` re-parses every
edit and refuses it unless it reads back as the data the edit was meant to produce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tomlkit

from ghostpanel_kernel.bolt._layout import SourceBlock, SourceItem, SourceLayout, TomlPath

__all__ = ["add_service_text", "delete_key_text", "plain", "remove_service_text",
           "replace_service_key_text", "set_key_text"]


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


def plain(value: Any) -> Any:
    """``value`` as tomlkit's ``unwrap()`` gives it back (lists and dicts)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def set_key_text(layout: SourceLayout, table: TomlPath, key: str, value: Any) -> str:
    """Text with ``key`` of ``table`` set to ``value``: replaced where it is written (a
    multi-line list stays multi-line), or added after the table's last key."""
    path = (*table, key)
    old = layout.value_at.get(path)
    if old is not None and path in layout.keys:
        written = layout.text[old.start:old.end]
        rendered = _render_value(value, multiline=old.kind == "array" and "\n" in written)
        return layout.text[: old.start] + rendered + layout.text[old.end:]
    return _insert_key_text(layout, table, key, _render_value(value))


def add_service_text(layout: SourceLayout, name: str, table: Mapping[str, Any]) -> str:
    """Text with a ``[services.<name>]`` table holding ``table`` after the last service."""
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
    return before + gap + header + lines + trailer + after


def remove_service_text(layout: SourceLayout, name: str) -> str:
    """Text without the service ``name``: its tables, its keys and the comment lines
    right above them."""
    if ("services",) in layout.value_at:
        return delete_key_text(layout, ("services", name))
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
    return _drop_items(layout, drop)


def replace_service_key_text(layout: SourceLayout, service: str, old: str, new: str,
                             value: Any) -> str:
    """Text with the key ``old`` of ``service`` renamed to ``new`` and set to ``value``,
    in place (its line keeps its comment)."""
    path = ("services", service, old)
    key, written = layout.keys.get(path), layout.value_at.get(path)
    if key is None or written is None:
        raise ValueError(f"`{old}` of {service!r} is not a plain key here; edit it "
                         "through .document")
    text = layout.text
    text = text[: written.start] + _render_value(value) + text[written.end:]
    return text[: key.starts[-1]] + new + text[key.end:]


def _block_end(block: SourceBlock) -> int:
    if block.tail or block.body:
        return (block.tail or block.body)[-1].end
    assert block.header is not None
    return block.header.end


def _attached(items: Sequence[SourceItem]) -> list[SourceItem]:
    """The comment lines at the end of ``items`` with no blank line below them."""
    out: list[SourceItem] = []
    for item in reversed(items):
        if item.kind != "comment":
            break
        out.append(item)
    return out


def _drop_items(layout: SourceLayout, drop: set[int]) -> str:
    """The text without the dropped lines, and without a doubled blank line where
    they were."""
    kept: list[SourceItem] = []
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

    def after(item: SourceItem, content: str) -> str:
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


def delete_key_text(layout: SourceLayout, path: TomlPath) -> str:
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
