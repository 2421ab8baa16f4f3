"""GhostPanel's limits on what it reads as a Boltfile (``bolt/_limits.py``), and that
every step after them (parse, validate, format, edit) works up to each limit.

The limits exist because the TOML parsers recurse once per nesting level, Python's
``int()`` stops at 4300 digits, and tomlkit is quadratic in a run of blank lines; past
a limit the answer is one diagnostic with a position and a hint, never an exception.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostpanel_kernel._exceptions import BoltfileError
from ghostpanel_kernel.bolt import Boltfile, validate, validate_file
from ghostpanel_kernel.bolt._limits import (
    MAX_BLANK_RUN,
    MAX_BYTES,
    MAX_DOTTED_SIBLINGS,
    MAX_ENTRIES,
    MAX_NESTING,
    find_limit_problem,
)

HEAD = 'project = "demo"\n\n[services.web]\nimage = "nginx"\n'


def _nested_array(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """A call stack as a deep caller (a notebook, a web server) would leave it: what
    passes here does not depend on Python's default limit of 1000 frames."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_the_deepest_value_allowed_is_read_validated_and_formatted(
        low_recursion_limit: None) -> None:
    # [services.web] is 2 levels, `x` a 3rd, so the arrays may nest 29 deep.
    text = HEAD + "x = " + _nested_array(MAX_NESTING - 3) + "\n"
    assert find_limit_problem(text) is None
    boltfile = Boltfile.loads(text)
    assert [d.key for d in validate(boltfile)] == ["services.web.x"]  # unknown key only
    assert Boltfile.loads(boltfile.format()).to_dict() == boltfile.to_dict()


@pytest.mark.parametrize("value", [
    _nested_array(MAX_NESTING - 2),
    "{ a = " * (MAX_NESTING - 2) + "1" + " }" * (MAX_NESTING - 2),
    "[{ a = [" * 11 + "]}]" * 11,
])
def test_one_level_deeper_is_one_diagnostic(value: str, tmp_path: Path,
                                            low_recursion_limit: None) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(HEAD + "x = " + value + "\n")
    [diagnostic] = validate_file(path)
    assert (diagnostic.severity, diagnostic.line) == ("error", 5)
    assert "nested more than 32 levels deep" in diagnostic.message
    assert diagnostic.hint
    with pytest.raises(BoltfileError, match="nested more than 32 levels") as caught:
        Boltfile.load(path)
    assert (caught.value.line, caught.value.column) == (diagnostic.line, diagnostic.column)


def test_dotted_keys_and_headers_count_as_nesting() -> None:
    deep_key = ".".join(["k"] * (MAX_NESTING + 1)) + " = 1\n"
    deep_header = "[" + ".".join(["t"] * (MAX_NESTING + 1)) + "]\n"
    assert find_limit_problem(deep_key) is not None
    assert find_limit_problem(deep_header) is not None
    assert find_limit_problem(".".join(["k"] * MAX_NESTING) + " = 1\n") is None


def test_brackets_digits_and_blank_lines_inside_strings_and_comments_do_not_count() -> None:
    text = (HEAD + 'a = "[[[[ ' + "9" * 50 + '"\n' + "b = '" + "{" * 100 + "'\n"
            + 'c = """\n' + "\n" * (MAX_BLANK_RUN + 5) + '[[[ \\""" ]]] """\n'
            + "d = '''" + "[" * 100 + "'''\n" + "# " + "[" * 100 + " " + "9" * 50 + "\n"
            + "e = [ # ]]]]\n  1,\n]\n")
    assert find_limit_problem(text) is None


@pytest.mark.parametrize(("literal", "too_big"), [
    ("9223372036854775807", False), ("-9223372036854775808", False),
    ("9223372036854775808", True), ("-9223372036854775809", True),
    ("9_223_372_036_854_775_807", False), ("0x7fffffffffffffff", False),
    ("0x8000000000000000", True), ("0b" + "1" * 64, True), ("0o" + "7" * 30, True),
    ("000000000000000000000001", False), ("1" * 5000, True), ("1.5e308", False),
    ("1979-05-27T07:32:00Z", False), ("nan", False), ("-inf", False),
])
def test_integers_must_fit_in_64_bits(literal: str, too_big: bool) -> None:
    problem = find_limit_problem(f"x = {literal}\n")
    assert (problem is not None) == too_big
    if problem is not None:
        assert (problem.line, problem.column) == (1, 5)
        assert "does not fit in 64 bits" in problem.message
        assert len(problem.message) < 200  # the number is shortened, not printed whole


def test_a_huge_integer_in_a_list_is_found_where_it_is() -> None:
    problem = find_limit_problem(HEAD + 'ports = ["80:80",\n  ' + "1" * 5000 + "]\n")
    assert problem is not None and (problem.line, problem.column) == (6, 3)


def test_blank_line_runs_are_bounded_and_comments_break_them() -> None:
    assert find_limit_problem(HEAD + "\n" * MAX_BLANK_RUN + "[networks.n]\n") is None
    problem = find_limit_problem(HEAD + " \t\n" * (MAX_BLANK_RUN + 1) + "[networks.n]\n")
    assert problem is not None and (problem.line, problem.column) == (5, 1)
    broken = ("\n" * (MAX_BLANK_RUN - 1) + "# a comment\n") * 5
    assert find_limit_problem(broken) is None


def test_entries_are_bounded() -> None:
    keys = "".join(f"k{i} = {i}\n" for i in range(MAX_ENTRIES))
    assert find_limit_problem(keys) is None
    problem = find_limit_problem(keys + "one_more = 1\n")
    assert problem is not None and problem.line == MAX_ENTRIES + 1
    elements = "x = [" + "1, " * (MAX_ENTRIES + 1) + "]\n"
    assert find_limit_problem(elements) is not None


def test_blank_and_comment_lines_count_as_entries() -> None:
    runs = ("\n" * (MAX_BLANK_RUN - 1) + "# c\n") * (MAX_ENTRIES // MAX_BLANK_RUN + 1)
    problem = find_limit_problem(runs)
    assert problem is not None and problem.line == MAX_ENTRIES + 1


def test_dotted_keys_sharing_a_first_part_are_bounded_per_table() -> None:
    def keys(prefix: str, count: int) -> str:
        return "".join(f"{prefix}.k{i} = {i}\n" for i in range(count))

    allowed = "".join(f"[t{j}]\n" + keys("gpu", MAX_DOTTED_SIBLINGS) for j in range(3))
    assert find_limit_problem(allowed + keys("other", MAX_DOTTED_SIBLINGS)) is None
    problem = find_limit_problem("[t]\n" + keys("gpu", MAX_DOTTED_SIBLINGS + 1))
    assert problem is not None and (problem.line, problem.column) == (MAX_DOTTED_SIBLINGS + 2, 1)
    assert "start with `gpu.`" in problem.message and "[...gpu]" in problem.hint
    inline = "x = { " + ", ".join(f"a.k{i} = 1" for i in range(MAX_DOTTED_SIBLINGS + 1)) + " }"
    assert find_limit_problem(inline) is not None


def test_size_is_bounded_in_bytes_not_characters(tmp_path: Path) -> None:
    ascii_text = "#" * (MAX_BYTES - 1) + "\n"
    assert find_limit_problem(ascii_text) is None
    wide = "# " + "\u00e9" * (MAX_BYTES // 2) + "\n"  # two bytes each in UTF-8
    assert find_limit_problem(wide) is not None
    path = tmp_path / "huge.toml"
    path.write_text(wide)
    [diagnostic] = validate_file(path)
    assert diagnostic.message.startswith("the file is larger than 1 MiB")


def test_a_file_cut_inside_a_character_is_reported_as_too_big(tmp_path: Path) -> None:
    # The reader stops after MAX_BYTES + 1 bytes, maybe in the middle of a character.
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" + "\u20ac".encode() * (MAX_BYTES // 3 + 10))
    [diagnostic] = validate_file(path)
    assert diagnostic.message.startswith("the file is larger than 1 MiB")
    with pytest.raises(BoltfileError, match="larger than 1 MiB"):
        Boltfile.load(path)


def test_the_checks_are_linear() -> None:
    # The largest text the limits allow, in the shapes that cost the parsers most.
    runs = ("\n" * MAX_BLANK_RUN + "# c\n") * 9
    started = time.perf_counter()
    assert find_limit_problem(runs) is None
    assert find_limit_problem("x = '" + "a" * (MAX_BYTES - 10) + "'\n") is None
    assert find_limit_problem("x = [" + "[1], " * (MAX_ENTRIES // 2 - 1) + "]\n") is None
    assert time.perf_counter() - started < 5


def test_a_bom_is_named_at_line_1_column_1() -> None:
    problem = find_limit_problem("\ufeff" + HEAD)
    assert problem is not None and (problem.line, problem.column) == (1, 1)
    assert "byte order mark (BOM" in problem.message
    assert "UTF-8 without BOM" in problem.hint
    with pytest.raises(BoltfileError, match=r"byte order mark") as caught:
        Boltfile.loads("\ufeff" + HEAD)
    assert str(caught.value).startswith("<string>:1:1: ")


def test_validate_checks_limits_on_edited_documents() -> None:
    # .document edits skip the checks of Boltfile.loads; validate must not hand tomllib
    # (which recurses once per level) a document deeper than the limit.
    boltfile = Boltfile.loads(HEAD)
    value: list[object] = []
    for _ in range(2 * MAX_NESTING):
        value = [value]
    boltfile.document["services"]["web"]["x"] = value
    [diagnostic] = validate(boltfile)
    assert "nested more than 32 levels deep" in diagnostic.message
    assert diagnostic.line == 5


def test_format_and_edits_refuse_a_document_edited_too_deep() -> None:
    boltfile = Boltfile.loads(HEAD)
    value: list[object] = []
    for _ in range(2 * MAX_NESTING):
        value = [value]
    boltfile.document["services"]["web"]["x"] = value
    with pytest.raises(BoltfileError, match="nested more than 32 levels"):
        boltfile.format()
    with pytest.raises(ValueError, match="beyond GhostPanel's limits"):
        boltfile.set_image("web", "redis")


def test_set_service_key_refuses_a_value_nested_too_deep() -> None:
    boltfile = Boltfile.loads(HEAD)
    value: list[object] = []
    for _ in range(MAX_NESTING):
        value = [value]
    with pytest.raises(ValueError, match="nested more than 32 levels"):
        boltfile.set_service_key("web", "x", value)
    assert boltfile.dumps() == HEAD
    boltfile.set_service_key("web", "x", [[["fine"]]])
    assert boltfile.service("web").get("x") == [[["fine"]]]
