"""Reading a body as Go's ``encoding/json`` does (``gateway/_go_json``): keys Go would
merge under simple case folding are refused at any depth, Go's folding is not Python's
``casefold``, and text Go would read differently is refused or mapped as Go maps it."""

from __future__ import annotations

import json

import pytest

from ghostpanel_kernel.gateway._go_json import (
    fold_key,
    go_equal_fold,
    go_get,
    go_items,
    read_go_json,
)
from ghostpanel_kernel.gateway._refusal import Refusal


def _refused(body: bytes | str) -> Refusal:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(Refusal) as caught:
        read_go_json(raw)
    return caught.value


@pytest.mark.parametrize(("left", "right"), [
    ("Privileged", "privileged"), ("Binds", "BINDS"), ("Binds", "Bind\u017f"),
    ("Kind", "\u212aind"), ("key", "\u212aEY"), ("Angstrom\u00e5", "Angstrom\u212b"),
    ("\u00b5", "\u03bc"), ("\u00b5", "\u039c"), ("\u03c3", "\u03c2"), ("\u03b8", "\u03d1"),
    ("\u03b9", "\u1fbe"), ("\u0345", "\u0399"), ("\u00df", "\u1e9e"), ("\u01c4", "\u01c5"),
    ("\u1f80", "\u1f88"), ("\u0432", "\u1c80"), ("\u1e61", "\u1e9b"), ("\u03c9", "\u2126"),
])
def test_go_equal_fold_matches_simple_case_folding(left: str, right: str) -> None:
    assert go_equal_fold(left, right)
    assert go_equal_fold(right, left)


@pytest.mark.parametrize(("left", "right"), [
    # Full case folding ("ß" -> "ss") is what Python's casefold does; Go does not.
    ("stra\u00dfe", "strasse"), ("\u1e9e", "ss"), ("\ufb01", "fi"), ("\u0149", "\u02bcn"),
    ("Binds", "Bind"), ("Binds", "Bindz"), ("\u0131", "i"), ("\u0131", "I"),
    ("Privileged", "Privileged "),
])
def test_go_equal_fold_is_not_pythons_casefold(left: str, right: str) -> None:
    assert not go_equal_fold(left, right)


def test_dotted_capital_i_is_folded_cautiously() -> None:
    # Go leaves U+0130 alone, a lower-casing decoder reads it as "i": judged as "i".
    assert fold_key("Pr\u0130vileged") == fold_key("privileged")


def test_a_plain_body_decodes_like_json() -> None:
    body = {"Image": "busybox", "Cmd": ["sh", "-c", "echo \u00e9"], "N": 12345678901234567890,
            "F": 1.5, "HostConfig": {"Binds": None, "Privileged": False}}
    assert read_go_json(json.dumps(body).encode()) == body


@pytest.mark.parametrize("body", [
    '{"HostConfig":{"Privileged":false,"privileged":true}}',
    '{"HostConfig":{"Binds":[],"Bind\u017f":["/:/host"]}}',
    '{"Image":"a","image":"b"}',
    '{"\u212aey":1,"key":2}',
    '{"a":[{"b":{"Deep":1,"DEEP":2}}]}',
    '{"Labels":{"x":"1","X":"2"}}',
    '[{"a":1},{"b":1,"B":2}]',
    '{"HostConfig":{"Privileged":true},"hostconfig":{}}',
])
def test_case_folded_duplicates_are_refused_at_any_depth(body: str) -> None:
    refusal = _refused(body)
    assert refusal.status == 403
    assert "twice" in refusal.message and "only the last" in refusal.message


def test_the_refusal_names_both_spellings() -> None:
    refusal = _refused('{"Privileged":false,"PRIVILEGED":true}')
    assert "'Privileged'" in refusal.message and "'PRIVILEGED'" in refusal.message


def test_exact_duplicates_are_refused_too() -> None:
    assert _refused('{"Privileged":false,"Privileged":true}').status == 403


def test_keys_that_differ_under_go_but_not_casefold_are_kept() -> None:
    # "ß" and "ss" are one key to casefold(), two to Go: both are kept, not refused.
    assert read_go_json('{"stra\u00dfe":1,"strasse":2}'.encode()) == {
        "stra\u00dfe": 1, "strasse": 2}


@pytest.mark.parametrize("body", [
    b"", b"{", b'{"a":1} {"b":2}', b'{"a":1}x', b"NaN", b'{"a":Infinity}',
    b'{"a":-Infinity}', b"\xef\xbb\xbf{}", b'{"a":"\x01"}', b"{'a':1}", b'{"a":1,}',
    b"\xff\xfe{\x00}\x00", b'{"a":"\xc3"}',
])
def test_anything_but_one_utf8_json_value_is_a_400(body: bytes) -> None:
    assert _refused(body).status == 400


def test_utf16_is_not_json_here() -> None:
    # Python's json.loads(bytes) would detect UTF-16; Go reads UTF-8 only.
    assert _refused('{"Privileged":true}'.encode("utf-16")).status == 400


def test_deep_nesting_is_a_400_not_a_crash() -> None:
    assert _refused(b"[" * 100_000 + b"]" * 100_000).status == 400


def test_lone_surrogates_become_replacement_characters_as_in_go() -> None:
    data = read_go_json(b'{"a":"x\\ud800y","l":["\\udfff"],"\\ud800":1}')
    assert data == {"a": "x\ufffdy", "l": ["\ufffd"], "\ufffd": 1}
    # And two keys that only Go sees as equal (both U+FFFD) are refused.
    assert _refused(b'{"\\ud800":1,"\\udc00":2}').status == 403


def test_escaped_keys_are_compared_decoded() -> None:
    assert _refused(b'{"Privileged":false,"\\u0070rivileged":true}').status == 403


def test_go_get_and_go_items_match_fields_the_go_way() -> None:
    data = {"hostCONFIG": {"Bind\u017f": ["/:/h"]}, "Image": "x"}
    assert go_get(data, "HostConfig") == {"Bind\u017f": ["/:/h"]}
    assert go_get(go_get(data, "HostConfig"), "Binds") == ["/:/h"]
    assert go_get(data, "Missing") is None
    assert go_items(data, "image") == [("Image", "x")]


# The case orbits of Go's unicode package (unicode/tables.go, caseOrbit, plus the
# two-member pairs SimpleFold takes from ToLower/ToUpper): within an orbit every two
# runes are EqualFold, across orbits none are.
_GO_ORBITS = [
    "K" "k" "\u212a", "S" "s" "\u017f", "\u00b5\u039c\u03bc", "\u00c5\u00e5\u212b",
    "\u00df\u1e9e", "\u01c4\u01c5\u01c6", "\u01c7\u01c8\u01c9", "\u01ca\u01cb\u01cc",
    "\u01f1\u01f2\u01f3", "\u0345\u0399\u03b9\u1fbe", "\u0392\u03b2\u03d0",
    "\u0395\u03b5\u03f5", "\u0398\u03b8\u03d1\u03f4", "\u039a\u03ba\u03f0",
    "\u03a0\u03c0\u03d6", "\u03a1\u03c1\u03f1", "\u03a3\u03c2\u03c3", "\u03a6\u03c6\u03d5",
    "\u03a9\u03c9\u2126", "\u0412\u0432\u1c80", "\u0414\u0434\u1c81", "\u041e\u043e\u1c82",
    "\u0421\u0441\u1c83", "\u0422\u0442\u1c84\u1c85", "\u042a\u044a\u1c86",
    "\u0462\u0463\u1c87", "\u1e60\u1e61\u1e9b", "\ua64a\ua64b\u1c88", "\u0131", "Aa",
    "\u0410\u0430", "\u13a0\uab70", "\U00010400\U00010428", "\u1f80\u1f88",
]


@pytest.mark.parametrize("orbit", _GO_ORBITS)
def test_every_go_case_orbit_folds_together(orbit: str) -> None:
    assert len({fold_key(char) for char in orbit}) == 1


def test_go_case_orbits_stay_apart() -> None:
    keys = [fold_key(orbit[0]) for orbit in _GO_ORBITS]
    assert len(set(keys)) == len(keys)
