"""Reading a Boltfile and its options from an ``/api/v1`` request.

A Boltfile comes one of three ways:

- the body is the TOML text (``Content-Type: application/toml``), options in the query
  string (``?pull=true&break_lock=false``);
- the body is JSON, ``{"boltfile": "<toml text>", "pull": true, ...}``;
- the body is JSON naming a file on the agent's host, ``{"path": "/srv/Boltfile.toml"}``
  (an absolute path; a ``GET`` may give it as ``?path=``).

Options are typed (:data:`OptionKind`): a query string's ``true``/``false``/``1``/``0``
and numbers are read as such, and an option a route does not take is refused, so a typo
never passes for a default. Every refusal is an :class:`InputProblem` whose
:meth:`~InputProblem.response` is the problem answer: ``415`` for another body type,
``422`` for a Boltfile that is not TOML (with its line and column) or a bad option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from .._exceptions import BoltfileError
from ..bolt import Boltfile
from ._problems import problem_response
from ._request_body import BodyProblem, json_object, text_body

__all__ = ["TOML_TYPES", "BoltfileRequest", "InputProblem", "OptionKind", "boltfile_from_json",
           "boltfile_problem", "read_boltfile_request"]

#: Media types taken as a Boltfile's TOML text.
TOML_TYPES = frozenset({"application/toml", "application/x-toml", "text/toml",
                        "text/x-toml"})

#: The name a Boltfile sent as text has in messages (line and column refer to the body).
BODY_NAME = "<request body>"

OptionKind = Literal["bool", "int", "float", "str"]


class InputProblem(Exception):
    """A request the route cannot take: its problem answer's status, detail and members."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra: dict[str, Any] = extra

    def response(self) -> Response:
        """The problem answer."""
        return problem_response(self.status, self.detail, **self.extra)


@dataclass(frozen=True)
class BoltfileRequest:
    """A Boltfile and the options that came with it."""

    boltfile: Boltfile
    options: dict[str, Any]


def boltfile_problem(error: BoltfileError) -> InputProblem:
    """A Boltfile that cannot be read, as a ``422`` with where and what to change."""
    return InputProblem(422, str(error), path=error.path, line=error.line,
                        column=error.column)


def _option(name: str, value: object, kind: OptionKind, *, from_query: bool) -> Any:
    """``value`` as an option of ``kind``; raise :class:`InputProblem` when it is not."""
    if from_query and isinstance(value, str):
        if kind == "bool" and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
            return value.lower() in ("true", "1", "yes", "")  # ``?pull`` alone: true
        if kind in ("int", "float"):
            try:
                value = int(value) if kind == "int" else float(value)
            except ValueError:
                pass
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value) and value >= 0:
        return float(value)
    if kind == "str" and isinstance(value, str) and value:
        return value
    wanted = {"bool": "true or false", "int": "a whole number >= 0",
              "float": "a number >= 0", "str": "a non-empty string"}[kind]
    raise InputProblem(422, f"option `{name}` must be {wanted}, not {value!r}", option=name)


def _options(raw: Mapping[str, object], allowed: Mapping[str, OptionKind], *,
             from_query: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InputProblem(422, f"unknown option `{name}` (this route takes: {known})",
                               option=name)
        options[name] = _option(name, value, allowed[name], from_query=from_query)
    return options


def _load_path(path: object) -> Boltfile:
    if not isinstance(path, str) or not path.startswith("/"):
        raise InputProblem(422, f"`path` must be an absolute path of a Boltfile on the "
                                f"agent's host, not {path!r}", option="path")
    if not Path(path).is_file():
        raise InputProblem(422, f"no Boltfile at {path} on the agent's host; give an "
                                "existing file's absolute path, or send the Boltfile itself "
                                "(Content-Type: application/toml)", option="path")
    try:
        return Boltfile.load(path)
    except BoltfileError as error:
        raise boltfile_problem(error) from error


def _load_text(text: object) -> Boltfile:
    if not isinstance(text, str):
        raise InputProblem(422, "`boltfile` must be the Boltfile's TOML text (a string)",
                           option="boltfile")
    try:
        return Boltfile.loads(text, path=BODY_NAME)
    except BoltfileError as error:
        raise boltfile_problem(error) from error


def boltfile_from_json(document: Mapping[str, Any], query: Mapping[str, str],
                       allowed: Mapping[str, OptionKind]) -> BoltfileRequest:
    """The Boltfile and options of a JSON body already read (``{"boltfile"}`` or
    ``{"path"}``, options beside), with the query string's options.

    Raises
    ------
    InputProblem
        Not exactly one of ``boltfile`` and ``path``, a Boltfile that is not TOML, a bad
        option.
    """
    options = _options(query, allowed, from_query=True)
    sources = [key for key in ("boltfile", "path") if key in document]
    if len(sources) != 1:
        raise InputProblem(422, 'give exactly one of "boltfile" (the TOML text) and '
                                '"path" (a file on the agent\'s host)')
    rest = {k: v for k, v in document.items() if k not in ("boltfile", "path")}
    options.update(_options(rest, allowed, from_query=False))
    boltfile = _load_text(document["boltfile"]) if sources == ["boltfile"] \
        else _load_path(document["path"])
    return BoltfileRequest(boltfile, options)


async def read_boltfile_request(request: Request,
                                allowed: Mapping[str, OptionKind]) -> BoltfileRequest:
    """The Boltfile and options of ``request`` (see the module notes).

    Parameters
    ----------
    request
        The request; its body is read (at most :data:`~._request_body.MAX_BODY`).
    allowed
        The options the route takes, by name, with their kind.

    Raises
    ------
    InputProblem
        No Boltfile, one that is not TOML, a body of another type, a bad option.
    """
    query = {key: value for key, value in request.query_params.items() if key != "path"}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        if media_type in TOML_TYPES:
            return BoltfileRequest(_load_text(await text_body(request)),
                                   _options(query, allowed, from_query=True))
        if media_type == "application/json" or media_type.endswith("+json"):
            return boltfile_from_json(await json_object(request), query, allowed)
        if not media_type and "path" in request.query_params:
            return BoltfileRequest(_load_path(request.query_params["path"]),
                                   _options(query, allowed, from_query=True))
    except BodyProblem as error:
        raise InputProblem(error.status, error.detail) from error
    if not media_type:
        raise InputProblem(422, "send the Boltfile: its TOML text (Content-Type: "
                                "application/toml), JSON {\"boltfile\": ...} or "
                                "{\"path\": ...}, or ?path=/abs/Boltfile.toml")
    raise InputProblem(415, f"a Boltfile cannot be read from {media_type}; send "
                            "application/toml or application/json")
