"""GhostPanel's TOML templates: a Boltfile plus a ``[template]`` table.

.. code-block:: toml

    project = "minecraft"

    [template]
    title = "Minecraft (Java edition)"
    description = "A Minecraft server"
    categories = ["games"]
    logo = "https://example.org/minecraft.png"

    [template.variables.image]
    default = "docker.io/itzg/minecraft-server:latest"
    help = "The server's image"

    [template.variables.port]
    type = "port"
    default = 25565

    [services.minecraft]
    image = "${image}"
    ports = ["${port}:25565"]

The ``[template]`` table is not Bolt's: it is taken out (with tomlkit, keeping the rest
of the text as written) before the Boltfile is validated or applied, so a template's
Boltfile is exactly what Bolt would read. See :mod:`._model` for the placeholders.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ._model import Template, TemplateError, Variable, placeholders, variables_from_data

__all__ = ["dump_template", "load_template", "split_template"]

_CARD_KEYS = {"title", "description", "categories", "logo", "variables", "notes", "name"}


_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*([^\]]*?)[ \t]*\]")


def _without_template_text(text: str) -> str:
    """``text`` without the lines of its ``[template]`` and ``[template.*]`` tables (a
    line-wise cut: :func:`split_template` checks it and falls back to tomlkit)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line)
        if header is not None:
            name = header.group(1).replace('"', "").replace("'", "")
            inside = name == "template" or name.startswith("template.")
        if not inside:
            kept.append(line)
    return "".join(kept)


def split_template(text: str, *, where: str = "<string>") -> tuple[dict[str, Any], str]:
    """The ``[template]`` table (as plain data) and the Boltfile text without it.

    The table's lines are cut from the text, and the rest is checked to read as the
    same data less ``template``; where it does not (a multi-line string holding a
    ``[template]`` line, a dotted ``template.title = ...`` key), tomlkit takes the table
    out instead. tomllib parses several times faster than tomlkit, and listing
    templates parses every one.

    Raises
    ------
    TemplateError
        The text is not TOML, or has no ``[template]`` table.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TemplateError(f"{where}: not TOML: {error}") from None
    table = data.pop("template", None)
    if not isinstance(table, Mapping):
        raise TemplateError(f"{where}: no [template] table: a template is a Boltfile with "
                            "a [template] table (title, description, categories, logo, "
                            "variables)")
    body = _without_template_text(text).strip("\n") + "\n"
    try:
        same = tomllib.loads(body) == data
    except tomllib.TOMLDecodeError:
        same = False
    if not same:
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as error:  # tomllib read it: not expected
            raise TemplateError(f"{where}: not TOML: {error}") from None
        del document["template"]
        body = tomlkit.dumps(document).strip("\n") + "\n"
    return dict(table), body


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f"{where}: template.{key} must be a list of strings")
    return tuple(value)


def load_template(text: str, *, name: str, source: str = "",
                  where: str = "<string>") -> Template:
    """Read a TOML template.

    Parameters
    ----------
    text
        The template file's text.
    name
        Its name in its source (usually the file's stem; ``template.name`` wins).
    source
        The source it belongs to.
    where
        Where it came from, for messages.

    Raises
    ------
    TemplateError
        Not TOML, no ``[template]`` table, a missing title, a malformed variable, or a
        placeholder of a variable it does not declare.
    """
    data, body = split_template(text, where=where)
    unknown = set(data) - _CARD_KEYS
    if unknown:
        raise TemplateError(f"{where}: unknown key(s) in [template]: "
                            f"{', '.join(sorted(unknown))} (it takes "
                            f"{', '.join(sorted(_CARD_KEYS))})")
    title = data.get("title")
    if not isinstance(title, str) or not title:
        raise TemplateError(f"{where}: [template] needs a title")
    variables = variables_from_data(data.get("variables") or {},
                                    where=f"{where}: template.variables")
    declared = {v.name for v in variables}
    # `${toml:...}` must name a variable: it is not valid Boltfile text otherwise. A
    # plain `${NAME}` may be a Compose leftover the template keeps on purpose.
    missing = [n for n in placeholders(body) if n not in declared and f"${{toml:{n}}}" in body]
    if missing:
        raise TemplateError(f"{where}: placeholder(s) of undeclared variable(s): "
                            f"{', '.join(missing)}")
    return Template(name=str(data.get("name") or name), title=title, body=body,
                    description=str(data.get("description", "")),
                    categories=_strings(data.get("categories", ()), "categories", where),
                    logo=str(data.get("logo", "")), variables=variables, source=source,
                    notes=_strings(data.get("notes", ()), "notes", where))


def _variable_table(variable: Variable) -> Any:
    table = tomlkit.table()
    table.add("type", variable.type)
    if variable.default is not None:
        table.add("default", variable.default)
    if variable.label:
        table.add("label", variable.label)
    if variable.help:
        table.add("help", variable.help)
    if variable.choices:
        table.add("choices", list(variable.choices))
    return table


def dump_template(*, body: str, title: str, description: str = "",
                  categories: Iterable[str] = (), logo: str = "",
                  variables: Iterable[Variable] = (), notes: Iterable[str] = ()) -> str:
    """The text of a TOML template: ``body`` (a Boltfile) with its ``[template]`` table.

    The table goes after the Boltfile's top-level keys and before its first table, so
    the file reads card first.
    """
    card = tomlkit.table()
    card.add("title", title)
    if description:
        card.add("description", description)
    card.add("categories", list(categories))
    if logo:
        card.add("logo", logo)
    notes = list(notes)
    if notes:
        card.add("notes", notes)
    variables = list(variables)
    if variables:
        table = tomlkit.table(is_super_table=True)
        for variable in variables:
            table.add(variable.name, _variable_table(variable))
        card.add("variables", table)
    document = tomlkit.parse(body)
    out = tomlkit.document()
    rest: list[tuple[str, Any]] = []
    for key, value in document.body:
        if key is None:
            continue
        if isinstance(value, (tomlkit.items.Table, tomlkit.items.AoT)):
            rest.append((key.key, value))
        else:
            out.add(key.key, value)
    out.add(tomlkit.nl())
    out.add("template", card)
    for key_name, value in rest:
        out.add(key_name, value)
    return tomlkit.dumps(out)

