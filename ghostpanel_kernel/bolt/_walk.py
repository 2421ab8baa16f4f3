"""The schema walk: a Boltfile's data checked against ``BOLTFILE_SCHEMA``, key by key.

:func:`walk` reports a value of the wrong type (with a hint how to write it), a
required key that is missing, a key Bolt does not read (serde drops unknown keys
silently, so each is a warning with a "did you mean"), and runs each key's value
checks. It knows nothing about particular keys: that is all in the schema.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from ghostpanel_kernel.bolt._diagnostics import Severity
from ghostpanel_kernel.bolt._layout import TomlPath
from ghostpanel_kernel.bolt._report import Site, Validation, dotted
from ghostpanel_kernel.bolt._schema import Key, Kind

__all__ = ["walk"]

_EXPECTED = {
    "string": "a string", "bool": "true or false",
    "u32": "a whole number from 0 to 4294967295",
    "i32": "a whole number from -2147483648 to 2147483647",
    "port": "a port number from 1 to 65535", "strings": "a list of strings",
    "string_map": "a table of strings", "table": "a table", "map": "a table",
    "tables": "a list of tables",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a date/time ({value})"


def _type_ok(value: Any, kind: Kind) -> bool:
    integer = isinstance(value, int) and not isinstance(value, bool)
    match kind:
        case "string":
            return isinstance(value, str)
        case "bool":
            return isinstance(value, bool)
        case "u32":
            return integer and 0 <= value <= 2**32 - 1
        case "i32":
            return integer and -(2**31) <= value <= 2**31 - 1
        case "port":
            return integer and 1 <= value <= 65535
        case "strings" | "tables":
            return isinstance(value, list)
        case _:
            return isinstance(value, dict)


def _type_hint(key: Key, value: Any, name: str) -> str:
    if key.type_hint is not None:
        return key.type_hint(value)
    if key.kind == "string" and isinstance(value, int | float | bool):
        written = str(value).lower() if isinstance(value, bool) else str(value)
        return f"Quote it: {name} = {json.dumps(written)}."
    unquote = key.kind == "bool" and value in ("true", "false")
    unquote |= key.kind in ("u32", "i32", "port") and isinstance(value, str) and (
        value.strip("+-").isdigit())
    if unquote:
        return f"Write {name} = {value} without quotes."
    if key.kind == "strings" and isinstance(value, str):
        return f"Make it a list: {name} = [{json.dumps(value)}]."
    return f"Write {_EXPECTED[key.kind]}."


def walk(v: Validation, value: Any, key: Key, path: TomlPath, extension: bool) -> None:
    # Recursive, but only into keys the schema declares (unknown keys are reported, not
    # entered), so the depth is the schema's, a few levels, whatever the file holds.
    extension = extension or key.extension
    severity: Severity = "warning" if extension else "error"
    name = str(path[-1]) if path else ""
    who = "GhostPanel" if extension else "Bolt"
    if not _type_ok(value, key.kind):
        v.add(severity, path, f"`{name}` must be {_EXPECTED[key.kind]}, not {_describe(value)}"
              + ("" if extension else "; Bolt refuses the file"),
              _type_hint(key, value, name))
        return
    if key.kind == "strings" or (key.kind == "tables" and key.item is not None):
        wanted: Kind = "string" if key.kind == "strings" else "table"
        bad = [i for i, element in enumerate(value) if not _type_ok(element, wanted)]
        for index in bad:
            v.add(severity, path if key.kind == "strings" else (*path, index),
                  f"`{name}` must hold only {wanted}s, not {_describe(value[index])}",
                  "Quote the entry." if wanted == "string" else "Make each entry a table.",
                  element=index if key.kind == "strings" else None)
        if bad:
            return
    if key.kind == "string_map":
        for entry, entry_value in value.items():
            if not isinstance(entry_value, str):
                v.add(severity, (*path, entry), f"`{entry}` in {dotted(path)} must be a "
                      f"string, not {_describe(entry_value)}",
                      f"Quote it: {entry} = {json.dumps(str(entry_value))}.")
    elif key.kind == "table":
        _walk_table(v, value, key, path, extension, who)
    elif key.kind == "map" and key.item is not None:
        for entry, entry_value in value.items():
            walk(v, entry_value, key.item, (*path, entry), extension)
    elif key.kind == "tables" and key.item is not None:
        for index, element in enumerate(value):
            walk(v, element, key.item, (*path, index), extension)
    site = Site(v, path, extension)
    for check in key.checks:
        check(value, site)


def _walk_table(v: Validation, value: Mapping[str, Any], key: Key, path: TomlPath,
                extension: bool, who: str) -> None:
    table = dotted(path)
    for name, child in value.items():
        spec = key.fields.get(name)
        if spec is not None:
            walk(v, child, spec, (*path, name), extension)
            continue
        hint = key.unknown_hints.get(name, "").replace("{table}", table)
        if not hint:
            close = difflib.get_close_matches(name, list(key.fields), n=1, cutoff=0.75)
            hint = (f"Did you mean `{close[0]}`?" if close else
                    "Remove it, or move its settings to keys " + who + " reads.")
        what = "table" if isinstance(child, dict) else "key"
        where = f"in {_label(path)}" if table else "at the top level"
        if extension:
            drops = "ignores it"
        elif what == "table":
            drops = "silently drops it, with everything in it"
        else:
            drops = "silently drops it"
        v.add("warning", (*path, name), f"{who} does not read the {what} `{name}` {where} "
              f"and {drops}", hint, at="key")
    missing = [n for n, spec in key.fields.items() if spec.required and n not in value]
    if not missing:
        return
    examples = []
    for name in missing:
        example = key.fields[name].example
        examples.append(f"{name} = {example(value) if callable(example) else example}")
    severity: Severity = "warning" if extension else "error"
    if not path:
        for name, example_line in zip(missing, examples, strict=True):
            v.add(severity, (name,), f"the required key `{name}` is missing; Bolt refuses "
                  "the file", f"Add {example_line} at the top of the file.", at="key")
        return
    listed = ", ".join(f"`{n}`" for n in missing)
    plural = "keys" if len(missing) > 1 else "key"
    refuses = "GhostPanel ignores the table" if extension else "Bolt refuses the file"
    v.add(severity, path, f"{_label(path)} is missing the required {plural} {listed}; "
          f"{refuses}", f"Add to {_label(path)}: " + "; ".join(examples) + ".", at="key")



def _label(path: TomlPath) -> str:
    """How messages name a table: ``[services.web]``, or ``snapshots.named_snapshots[1]``
    for an element of an array of tables (which has no header of its own name)."""
    if any(isinstance(p, int) for p in path):
        return f"`{dotted(path)}`"
    return f"[{dotted(path)}]"

