"""Templates as data: typed variables, a Boltfile body with placeholders, rendering.

A template is a Boltfile whose strings may hold placeholders ``${name}`` of its declared
variables. Rendering replaces them with values read and checked against each variable's
type, in the TOML text itself, so comments and layout survive:

- ``${name}`` inside a double-quoted string is replaced by the value, escaped for TOML;
- a value that is exactly ``"${toml:name}"`` becomes the value's own TOML literal
  (``enabled = "${toml:gpu}"`` → ``enabled = true``; a ``command`` variable → an
  array of strings), and a key whose ``command`` variable is empty is left out
  altogether (so the image's own command runs). Strings stay strings otherwise: an
  ``environment`` entry ``PORT = "${port}"`` is ``PORT = "25565"``, as it must be.

Placeholders of names that are not declared are left as they are: a Compose file's
``${VAR}`` that the template does not ask for stays visible rather than vanishing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import tomlkit

__all__ = ["VARIABLE_TYPES", "Template", "TemplateError", "Variable", "VariableError",
           "VariableType"]

VariableType = Literal["string", "integer", "boolean", "port", "choice", "secret", "command"]
VARIABLE_TYPES: Final[tuple[VariableType, ...]] = (
    "string", "integer", "boolean", "port", "choice", "secret", "command")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE = re.compile(r'^(?P<indent>[ \t]*)(?P<key>[^\s=#][^=\n]*?)[ \t]*=[ \t]*'
                    r'"\$\{toml:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}"(?P<rest>[ \t]*(?:#.*)?)$',
                    re.MULTILINE)
_TYPED = re.compile(r'"\$\{toml:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}"')
_INSIDE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})


class TemplateError(ValueError):
    """A template that cannot be read, imported, rendered or deployed (says why)."""


class VariableError(TemplateError):
    """Values for a template's variables that do not fit them.

    Attributes
    ----------
    problems
        Variable name -> what is wrong with its value, for a form to show by its field.
    """

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {problem}"
                                   for name, problem in self.problems.items()))


@dataclass(frozen=True)
class Variable:
    """One value a template asks for.

    Parameters
    ----------
    name
        The placeholder name (``${name}``): letters, digits and ``_``.
    type
        One of :data:`VARIABLE_TYPES`; ``command`` is a command line, split as a shell
        would, and empty means "the image's own command".
    default
        The value when none is given; None makes the variable required.
    label, help
        What a form shows.
    choices
        For ``choice``: the allowed values.
    """

    name: str
    type: VariableType = "string"
    default: Any = None
    label: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise TemplateError(f"variable name {self.name!r}: use letters, digits and _")
        if self.type not in VARIABLE_TYPES:
            raise TemplateError(f"variable {self.name!r}: type {self.type!r} is not one "
                                f"of {', '.join(VARIABLE_TYPES)}")
        if self.type == "choice" and not self.choices:
            raise TemplateError(f"variable {self.name!r} is a choice without choices")
        if self.default is not None:
            try:
                self.convert(self.default)
            except ValueError as error:
                raise TemplateError(f"variable {self.name!r}: default {self.default!r}: "
                                    f"{error}") from None

    @property
    def required(self) -> bool:
        """Whether a value must be given (there is no default)."""
        return self.default is None

    def convert(self, value: Any) -> Any:
        """``value`` (typed, or text from a form or ``--set``) as this variable's type.

        Raises
        ------
        ValueError
            It does not fit (says why, without the variable's name).
        """
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"{value!r} is not true or false")
        if self.type in ("integer", "port"):
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a whole number")
            try:
                number = int(str(value).strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a whole number") from None
            if self.type == "port" and not 1 <= number <= 65535:
                raise ValueError(f"port {number} is not between 1 and 65535")
            return number
        if self.type == "command":
            if isinstance(value, (list, tuple)):
                return [str(part) for part in value]
            try:
                return shlex.split(str(value))
            except ValueError as error:
                raise ValueError(f"cannot split the command: {error}") from None
        text = str(value)
        if self.type == "choice" and text not in self.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        return text

    def to_dict(self) -> dict[str, Any]:
        """The variable as JSON-able data (``template show --json``)."""
        data: dict[str, Any] = {"name": self.name, "type": self.type,
                                "required": self.required}
        for key in ("default", "label", "help"):
            if getattr(self, key) not in (None, ""):
                data[key] = getattr(self, key)
        if self.choices:
            data["choices"] = list(self.choices)
        return data


@dataclass(frozen=True)
class Template:
    """An app template: what a gallery shows, its variables and its Boltfile body.

    Parameters
    ----------
    name
        Its name in its source (a slug: ``minecraft``).
    title, description, categories, logo
        What a gallery card shows.
    variables
        In the order a form asks for them.
    body
        The Boltfile text with placeholders, without the ``[template]`` table.
    source
        The name of the source it came from (``curated`` for those shipped).
    notes
        What an import could not carry over, one line each (naming the key).
    """

    name: str
    title: str
    body: str
    description: str = ""
    categories: tuple[str, ...] = ()
    logo: str = ""
    variables: tuple[Variable, ...] = ()
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def qualified_name(self) -> str:
        """``source/name``, which names it whatever other sources hold."""
        return f"{self.source}/{self.name}" if self.source else self.name

    def variable(self, name: str) -> Variable:
        """The variable called ``name`` (KeyError when there is none)."""
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def values(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every variable's value: ``given`` (converted) over the defaults.

        Raises
        ------
        VariableError
            A value does not fit its variable, a required one is missing, or a name is
            not a variable of this template; every problem at once.
        """
        given = dict(given or {})
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        for variable in self.variables:
            if variable.name in given:
                raw = given.pop(variable.name)
            elif variable.default is not None:
                raw = variable.default
            else:
                problems[variable.name] = "a value is required"
                continue
            try:
                values[variable.name] = variable.convert(raw)
            except ValueError as error:
                problems[variable.name] = str(error)
        for unknown in given:
            known = ", ".join(v.name for v in self.variables) or "none"
            problems[unknown] = f"{self.name} has no such variable (it has: {known})"
        if problems:
            raise VariableError(problems)
        return values

    def render(self, given: Mapping[str, Any] | None = None) -> str:
        """The Boltfile text for ``given`` values (the defaults for the others).

        Raises
        ------
        VariableError
            See :meth:`values`.
        """
        return render_text(self.body, self.values(given))

    def to_dict(self) -> dict[str, Any]:
        """The template's card as JSON-able data (``template ls --json``)."""
        return {"name": self.name, "source": self.source, "title": self.title,
                "description": self.description, "categories": list(self.categories),
                "logo": self.logo, "variables": [v.to_dict() for v in self.variables],
                "notes": list(self.notes)}


def _escaped(value: Any) -> str:
    """``value`` as the inside of a TOML basic string."""
    text = " ".join(value) if isinstance(value, list) else str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    literal: str = tomlkit.string(text).as_string()
    return literal[1:-1]


def _literal(value: Any) -> str:
    """``value`` as a TOML literal on one line."""
    literal: str = tomlkit.item(value).as_string()
    return literal


def render_text(body: str, values: Mapping[str, Any]) -> str:
    """Replace the placeholders of ``values``' names in ``body`` (see the module).

    Examples
    --------
    >>> print(render_text('a = "${toml:n}"\\nb = "port ${n}"\\nc = "${toml:cmd}"\\n',
    ...                   {"n": 8080, "cmd": []}), end="")
    a = 8080
    b = "port 8080"
    """
    def whole_line(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in values:
            return match.group(0)
        value = values[name]
        if isinstance(value, list) and not value:
            return "\x00"  # the key is left out: the line goes below
        return f"{match['indent']}{match['key']} = {_literal(value)}{match['rest']}"

    text = _WHOLE.sub(whole_line, body)
    text = "".join(line for line in text.splitlines(keepends=True)
                   if line.rstrip("\r\n") != "\x00")

    # In an inline table or an array: the literal (an empty command stays [] there).
    text = _TYPED.sub(lambda m: _literal(values[m["name"]]) if m["name"] in values
                      else m.group(0), text)
    return _INSIDE.sub(lambda m: _escaped(values[m["name"]]) if m["name"] in values
                       else m.group(0), text)


def placeholders(body: str) -> list[str]:
    """The placeholder names ``body`` uses, in order, once each."""
    names = [m["name"] for m in _TYPED.finditer(body)]
    names += [m["name"] for m in _INSIDE.finditer(body)]
    return list(dict.fromkeys(names))


def variables_from_data(data: Mapping[str, Any], *, where: str) -> tuple[Variable, ...]:
    """The variables of a ``[template.variables]`` table (name -> settings).

    Raises
    ------
    TemplateError
        A setting of the wrong kind, naming ``where`` and the variable.
    """
    found: list[Variable] = []
    for name, settings in data.items():
        if not isinstance(settings, Mapping):
            raise TemplateError(f"{where}.{name} must be a table (type, default, help...)")
        unknown = set(settings) - {"type", "default", "label", "help", "choices"}
        if unknown:
            raise TemplateError(f"{where}.{name}: unknown setting(s) "
                                f"{', '.join(sorted(unknown))}")
        choices = settings.get("choices", ())
        if not isinstance(choices, Sequence) or isinstance(choices, str):
            raise TemplateError(f"{where}.{name}.choices must be a list")
        kind = settings.get("type", "choice" if choices else "string")
        found.append(Variable(name=str(name), type=kind, default=_plain(settings.get("default")),
                              label=str(settings.get("label", "")),
                              help=str(settings.get("help", "")),
                              choices=tuple(str(c) for c in choices)))
    return tuple(found)


def _plain(value: Any) -> Any:
    """A tomlkit value as a plain Python one."""
    return value.unwrap() if hasattr(value, "unwrap") else value
