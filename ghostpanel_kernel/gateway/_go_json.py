"""Read a JSON body the way the engine (a Go program) will read it.

Docker and Podman decode request bodies with Go's ``encoding/json`` into structs. That
decoder matches an object key to a struct field case-insensitively, using Unicode
*simple case folding* (Go's ``strings.EqualFold``: U+017F LONG S matches ``s`` and
``K`` U+212A KELVIN SIGN matches ``k``), and when two keys match the same field the
last one wins. Python's :mod:`json` keeps the last *exactly equal* key only, so a body
such as ``{"Privileged": false, "privileged": true}`` looks harmless to Python and
privileged to the engine. :func:`read_go_json` refuses any object holding two keys
that Go would treat as one, at any depth, so that what the gateway judges is what the
engine would do; the caller then forwards the judged data re-encoded, never the raw
bytes.

Go also reads JSON text a little differently from Python; the differences that matter
are handled here too: the body must be UTF-8 (Python would also accept UTF-16 and
UTF-32), ``NaN``/``Infinity`` are not JSON, and a lone UTF-16 surrogate escape
(``"\\ud800"``) decodes to U+FFFD in Go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from ._refusal import Refusal

__all__ = ["fold_key", "go_equal_fold", "go_get", "go_items", "read_go_json"]

# Simple case folding is CaseFolding.txt's C and S entries. ``str.casefold`` applies C
# and F (full folding: "ß" -> "ss"); where the full folding of a character is a single
# character it is the C entry, the same in both. Characters with an F entry may also
# have an S entry that Python does not expose: these (Unicode 15, the data Go's
# ``unicode`` package is generated from) are listed here.
_SIMPLE_ONLY: Final[Mapping[int, int]] = {
    0x1E9E: 0x00DF,  # LATIN CAPITAL LETTER SHARP S -> ß
    **{upper: upper - 8 for start in (0x1F88, 0x1F98, 0x1FA8)
       for upper in range(start, start + 8)},  # Greek with prosgegrammeni
    0x1FBC: 0x1FB3, 0x1FCC: 0x1FC3, 0x1FFC: 0x1FF3,
}

# Go's simple folding leaves U+0130 (capital I with dot above) alone, but a decoder
# that lower-cases keys (``unicode.ToLower``, as some Go JSON libraries do) reads it as
# "i". Folding it to "i" here too is the cautious side: two keys that either reading
# could merge are refused, and a field spelt with it is judged.
_EXTRA_FOLDS: Final[Mapping[int, str]] = {0x0130: "i"}

_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _fold_char(char: str) -> str:
    special = _SIMPLE_ONLY.get(ord(char))
    if special is not None:
        return chr(special)
    extra = _EXTRA_FOLDS.get(ord(char))
    if extra is not None:
        return extra
    folded = char.casefold()
    # A multi-character result is a full (F) folding, which Go does not use: with no
    # simple mapping the character folds to itself.
    return folded if len(folded) == 1 else char


def fold_key(key: str) -> str:
    """The key under Go's simple case folding: two keys match in Go iff these are equal.

    Examples
    --------
    >>> fold_key("Privileged") == fold_key("privileged")
    True
    >>> fold_key("Bind\\u017f") == fold_key("Binds"), fold_key("\\u212aey") == fold_key("key")
    (True, True)
    >>> fold_key("\\u00df") == fold_key("ss")
    False
    """
    return "".join(_fold_char(char) for char in key)


def go_equal_fold(left: str, right: str) -> bool:
    """Go's ``strings.EqualFold``: equal under Unicode simple case folding.

    Examples
    --------
    >>> go_equal_fold("HostConfig", "hostconfig"), go_equal_fold("stra\\u00dfe", "strasse")
    (True, False)
    """
    return len(left) == len(right) and fold_key(left) == fold_key(right)


def go_get(data: Mapping[str, Any], field: str) -> Any:
    """The value Go would decode into struct field ``field`` (None when absent).

    The object is assumed to come from :func:`read_go_json`, so at most one key matches.

    Examples
    --------
    >>> go_get({"hostconfig": {"PRIVILEGED": True}}, "HostConfig")
    {'PRIVILEGED': True}
    """
    for _key, value in go_items(data, field):
        return value
    return None


def go_items(data: Mapping[str, Any], field: str) -> list[tuple[str, Any]]:
    """Every ``(key, value)`` of ``data`` whose key Go matches to struct field ``field``."""
    wanted = fold_key(field)
    return [(key, value) for key, value in data.items() if fold_key(key) == wanted]


def _no_constant(name: str) -> NoReturn:
    raise Refusal(400, f"the body is not valid JSON: {name} is not a JSON value")


def _go_string(text: str) -> str:
    # Go replaces an unpaired surrogate escape with U+FFFD; Python keeps it.
    return _LONE_SURROGATE.sub("\ufffd", text)


def _go_value(value: Any) -> Any:
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return [_go_value(item) for item in value]
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    result: dict[str, Any] = {}
    for raw_key, value in pairs:
        key = _go_string(raw_key)
        folded = fold_key(key)
        if folded in seen:
            first = seen[folded]
            raise Refusal(403, f"the body holds the key {first!r} twice (as {first!r} and "
                               f"{key!r}): refused, because the engine would read only "
                               "the last")
        seen[folded] = key
        result[key] = _go_value(value)
    return result


def read_go_json(body: bytes) -> Any:
    """Decode a request body as the engine would see it, refusing ambiguous bodies.

    Parameters
    ----------
    body
        The whole request body.

    Returns
    -------
    Any
        The decoded value. Objects are dicts in key order; strings have lone
        surrogates replaced with U+FFFD, as Go decodes them.

    Raises
    ------
    Refusal
        ``403`` when any object, at any depth, holds two keys that are equal under Go's
        case folding (the engine would silently use the last; the gateway cannot know
        which one it judged); ``400`` when the body is not one valid UTF-8 JSON value.

    Examples
    --------
    >>> read_go_json(b'{"Image": "busybox", "HostConfig": {"Privileged": false}}')
    {'Image': 'busybox', 'HostConfig': {'Privileged': False}}
    >>> read_go_json(b'{"HostConfig": {"Privileged": false, "privileged": true}}')
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ghostpanel_kernel.gateway._refusal.Refusal: the body holds the key 'Privileged' twice ...
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the body is not UTF-8 JSON (byte {exc.start} is not "
                           "UTF-8)") from None
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Refusal(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}") from None
    except RecursionError:
        raise Refusal(400, "the body is not valid JSON the gateway can judge: it is "
                           "nested too deeply") from None
    return _go_value(value)
