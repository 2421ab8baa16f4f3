"""Compose's variables: ``${VAR:-default}`` interpolation and ``.env``/``env_file`` files.

:func:`interpolate` substitutes variables in one string the way Docker Compose does:
``$VAR`` and ``${VAR}``; ``${VAR:-word}`` (``word`` when VAR is unset or empty),
``${VAR-word}`` (only when unset); ``${VAR:+word}`` / ``${VAR+word}`` (``word`` when
set and not empty / set); ``${VAR:?message}`` / ``${VAR?message}`` (an error when
unset or empty / unset); ``$$`` is a literal ``$``. The ``word`` of a default is
interpolated too, so ``${A:-${B:-x}}`` works. An unset variable without a default
becomes the empty string, and is recorded so the caller can say so (Compose warns).

:func:`read_env_file` reads the ``KEY=VALUE`` files that ``.env`` and a service's
``env_file`` are: ``#`` comments, an optional ``export``, single quotes (literal),
double quotes (``\\n``, ``\\t``, ``\\"``, ``\\\\`` escapes), unquoted values with a
trailing `` #comment`` removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ComposeError", "Interpolation", "interpolate", "parse_env_text", "read_env_file"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:=(.*))?$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class ComposeError(ValueError):
    """A Compose file GhostPanel cannot convert: not YAML, not a Compose file, or a
    required variable (``${VAR:?message}``) that is not set. The message names the key."""


class Interpolation:
    """Substitutes variables in strings, remembering the unset ones it met.

    Parameters
    ----------
    variables
        The project's variables: the process environment over the ``.env`` file.

    Examples
    --------
    >>> i = Interpolation({"TAG": "7"})
    >>> i("redis:${TAG:-latest} $$HOME ${NOPE}", "services.db.image")
    'redis:7 $HOME '
    >>> sorted(i.unset)
    ['NOPE']
    """

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        #: Names used without a value or default, each with the first key using it.
        self.unset: dict[str, str] = {}

    def __call__(self, text: str, where: str) -> str:
        """``text`` with its variables substituted; ``where`` names the key for errors.

        Raises
        ------
        ComposeError
            A ``${VAR:?message}`` whose variable is unset (or empty), or a ``${`` that
            is never closed.
        """
        out: list[str] = []
        index = 0
        while index < len(text):
            dollar = text.find("$", index)
            if dollar < 0:
                out.append(text[index:])
                break
            out.append(text[index:dollar])
            following = text[dollar + 1:dollar + 2]
            if following == "$":
                out.append("$")
                index = dollar + 2
            elif following == "{":
                end = _closing_brace(text, dollar + 2, where)
                out.append(self._braced(text[dollar + 2:end], where))
                index = end + 1
            elif (match := _NAME.match(text, dollar + 1)) is not None:
                out.append(self._value(match.group(0), where))
                index = match.end()
            else:  # a lone "$" stays, as in Compose
                out.append("$")
                index = dollar + 1
        return "".join(out)

    def _value(self, name: str, where: str) -> str:
        value = self.variables.get(name)
        if value is None:
            self.unset.setdefault(name, where)
            return ""
        return value

    def _braced(self, body: str, where: str) -> str:
        match = _NAME.match(body)
        if match is None:
            raise ComposeError(f"{where}: invalid interpolation format ${{{body}}}")
        name, rest = match.group(0), body[match.end():]
        if not rest:
            return self._value(name, where)
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise ComposeError(f"{where}: invalid interpolation format ${{{body}}}")
        word = rest[len(operator):]
        value = self.variables.get(name)
        present = value is not None and (value != "" or ":" not in operator)
        if operator.endswith("-"):
            return value if present and value is not None else self(word, where)
        if operator.endswith("+"):
            return self(word, where) if present else ""
        if not present:  # "?" and ":?"
            message = self(word, where) or f"{name} is not set"
            raise ComposeError(f"{where}: required variable {name} is missing a value: "
                               f"{message}")
        return value or ""


def _closing_brace(text: str, start: int, where: str) -> int:
    """The index of the ``}`` closing a ``${`` whose body starts at ``start``."""
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ComposeError(f"{where}: ${{ without a closing }} in {text!r}")


def interpolate(text: str, variables: Mapping[str, str], where: str = "value") -> str:
    """``text`` with Compose's variables substituted (see :class:`Interpolation`).

    Examples
    --------
    >>> interpolate("${PORT:-8080}:80", {})
    '8080:80'
    """
    return Interpolation(variables)(text, where)


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value[1:-1])
    # Unquoted: a comment starts at " #".
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def parse_env_text(text: str) -> dict[str, str]:
    """The variables of an env file's text; a line that is not ``KEY=VALUE`` (nor a
    comment) is skipped, and a bare ``KEY`` has no value (it is left out).

    Examples
    --------
    >>> parse_env_text('# c\\nA=1\\nexport B="x y" \\nC=\\'$lit\\'\\nD=v # note\\n')
    {'A': '1', 'B': 'x y', 'C': '$lit', 'D': 'v'}
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None or match.group(2) is None:
            continue
        found[match.group(1)] = _unquote(match.group(2))
    return found


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of the env file at ``path``.

    Raises
    ------
    OSError
        The file cannot be read (missing, a folder, no permission).
    """
    return parse_env_text(path.read_text(encoding="utf-8"))
