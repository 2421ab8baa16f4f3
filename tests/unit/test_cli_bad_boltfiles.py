"""``ghostpanel boltfile validate`` and ``fmt`` on hostile and broken input, as a table.

Each row is a file (or a path that is not one), the command, the exit status and the
exact first line it must print: a ``path:line:column: error: ...`` diagnostic with a
``hint:`` line below it, or one ``Error: ...`` line that says what to do. No row may
end in a traceback (an exception other than ``SystemExit`` escaping the command).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.bolt import _parse
from ghostpanel_kernel.cli import cli

VALID = 'project = "demo"\n\n[services.web]\nimage = "nginx"\n'


def _chain(count: int, *, cycle: bool = False) -> str:
    """``count`` services, each depending on the next (the last on the first: ``cycle``)."""
    parts = ['project = "chain"\n']
    for index in range(count):
        after = f"s{index + 1}" if index + 1 < count else ("s0" if cycle else None)
        parts.append(f'\n[services.s{index}]\nimage = "busybox"\n')
        if after is not None:
            parts.append(f'depends_on = ["{after}"]\n')
    return "".join(parts)


FILES: dict[str, bytes] = {
    # Deep nesting: 1 KB that made tomllib's re-parse hit RecursionError.
    "nested-600.toml": (VALID + "x = " + "[" * 600 + "]" * 600 + "\n").encode(),
    "inline-600.toml": (VALID + "x = " + "{ a = " * 600 + "1" + " }" * 600 + "\n").encode(),
    "header-600.toml": (VALID + "[" + ".".join(["t"] * 600) + "]\n").encode(),
    # 1,500 services in a depends_on chain: the cycle check recursed once per service.
    "chain-1500.toml": _chain(1500).encode(),
    "cycle-1500.toml": _chain(1500, cycle=True).encode(),
    # Python's int() refuses more than 4300 digits, with no file or line.
    "int-5000.toml": (VALID + "replicas = " + "9" * 5000 + "\n").encode(),
    "bom.toml": b"\xef\xbb\xbf" + VALID.encode(),
    "utf16.toml": VALID.encode("utf-16"),
    "latin1.toml": 'project = "d\xe9mo"\n'.encode("latin-1"),
    "nul.toml": b'project = "demo"\x00\n',
    "garbage.toml": bytes(range(256)) * 4,
    "blank-2mb.toml": b"\n" * 2_000_000,
    "blank-run.toml": (VALID + "\n" * 1500 + "[networks.n]\n").encode(),
    "empty.toml": b"",
    "comments.toml": b"# just\n# comments\n",
    "invalid.toml": b'project = "demo"\n[services.web\nimage = "nginx"\n',
    "duplicate.toml": (VALID + 'image = "redis"\n').encode(),
    "wrong-type.toml": b'project = 5\n\n[services.web]\nimage = "nginx"\n',
    "unknown.toml": (VALID + '\n[metadata]\nname = "demo"\n').encode(),
    "nan.toml": (VALID + "\n[services.web.limits]\nratio = nan\nceiling = -inf\n").encode(),
    "comment-at-end.toml": (VALID + "# the end").encode(),
}

NESTED = "the value is nested more than 32 levels deep; GhostPanel refuses deeper nesting"
NOT_UTF8 = "TOML files must be saved as UTF-8"
MISSING_PROJECT = "error: the required key `project` is missing; Bolt refuses the file [project]"

# (command, file, exit status, first line); {path} is the file as given on the command line.
CASES: list[tuple[str, str, int, str]] = [
    ("validate", "nested-600.toml", 1, f"{{path}}:5:35: error: {NESTED}"),
    ("validate", "inline-600.toml", 1, "{path}:5:181: error: the key is nested more than 32 "
     "levels deep; GhostPanel refuses deeper nesting"),
    ("validate", "header-600.toml", 1, "{path}:5:1: error: the table header is nested more "
     "than 32 levels deep; GhostPanel refuses deeper nesting"),
    ("validate", "chain-1500.toml", 0, "{path}: 0 errors, 0 warnings; Bolt accepts this file"),
    ("validate", "cycle-1500.toml", 1, "{path}:6001:15: error: dependency cycle s0 -> s1 -> "
     "s2 -> ... -> s1498 -> s1499 -> s0 (1500 services); Bolt refuses circular depends_on "
     "[services.s1499.depends_on]"),
    ("validate", "int-5000.toml", 1, "{path}:5:12: error: the integer 999999999999...999999 "
     "(5000 digits) does not fit in 64 bits; TOML integers (and Bolt's parser) stop at "
     "9223372036854775807"),
    ("validate", "bom.toml", 1, "{path}:1:1: error: the file starts with a byte order mark "
     "(BOM, the bytes EF BB BF), which TOML parsers read as text: Python's tomllib and "
     "tomlkit see an empty key"),
    ("validate", "utf16.toml", 1, "{path}:1:1: error: the file is saved as UTF-16 (it starts "
     f"with a UTF-16 byte order mark); {NOT_UTF8}"),
    ("validate", "latin1.toml", 1, "{path}:1:13: error: the file is not UTF-8 text (byte "
     f"0xe9); {NOT_UTF8}"),
    ("validate", "nul.toml", 1, "{path}:1:17: error: the file contains a NUL byte: it is "
     "binary, or saved as UTF-16 or UTF-32, not a UTF-8 text file"),
    ("validate", "garbage.toml", 1, "{path}:2:118: error: the file is not UTF-8 text (byte "
     f"0x80); {NOT_UTF8}"),
    ("validate", "blank-2mb.toml", 1, "{path}:1:1: error: the file is larger than 1 MiB; "
     "GhostPanel reads Boltfiles up to 1048576 bytes"),
    ("validate", "blank-run.toml", 1, "{path}:5:1: error: more than 1000 blank lines in a "
     "row start here; GhostPanel's TOML library slows down quadratically on such runs"),
    ("validate", "empty.toml", 1, f"{{path}}:1:1: {MISSING_PROJECT}"),
    ("validate", "comments.toml", 1, f"{{path}}:1:1: {MISSING_PROJECT}"),
    ("validate", "invalid.toml", 1, "{path}:2:14: error: TOML syntax error: Unexpected "
     "character: '\\n' [services.web]"),
    ("validate", "duplicate.toml", 1, '{path}:5:16: error: TOML syntax error: Key "image" '
     "already exists. [services.web.image]"),
    ("validate", "wrong-type.toml", 1, "{path}:1:11: error: `project` must be a string, not "
     "the number 5; Bolt refuses the file [project]"),
    ("validate", "unknown.toml", 0, "{path}:6:1: warning: Bolt does not read the table "
     "`metadata` at the top level and silently drops it, with everything in it [metadata]"),
    ("validate", "nan.toml", 0, "{path}:6:1: warning: Bolt does not read the table `limits` "
     "in [services.web] and silently drops it, with everything in it [services.web.limits]"),
    ("validate", "missing.toml", 1, "Error: {path}: cannot read the Boltfile: there is no "
     "such file; check the path"),
    ("validate", "a-directory", 1, "Error: {path}: cannot read the Boltfile: it is a "
     "directory; name the file in it, e.g. {path}/Boltfile.toml"),
    ("fmt", "nested-600.toml", 1, f"{{path}}:5:35: error: {NESTED}"),
    ("fmt", "int-5000.toml", 1, "{path}:5:12: error: the integer 999999999999...999999 "
     "(5000 digits) does not fit in 64 bits; TOML integers (and Bolt's parser) stop at "
     "9223372036854775807"),
    ("fmt", "bom.toml", 1, "{path}:1:1: error: the file starts with a byte order mark "
     "(BOM, the bytes EF BB BF), which TOML parsers read as text: Python's tomllib and "
     "tomlkit see an empty key"),
    ("fmt", "blank-2mb.toml", 1, "{path}:1:1: error: the file is larger than 1 MiB; "
     "GhostPanel reads Boltfiles up to 1048576 bytes"),
    ("fmt", "garbage.toml", 1, "{path}:2:118: error: the file is not UTF-8 text (byte "
     f"0x80); {NOT_UTF8}"),
    ("fmt", "invalid.toml", 1, "{path}:2:14: error: TOML syntax error: Unexpected "
     "character: '\\n' [services.web]"),
    # nan and inf are TOML floats: fmt formats the file (it is formatted already).
    ("fmt", "nan.toml", 0, "0 files would be reformatted, 1 left unchanged"),
    ("fmt", "comment-at-end.toml", 1, "would reformat {path}"),
    ("fmt", "missing.toml", 1, "Error: {path}: cannot read the Boltfile: there is no "
     "such file; check the path"),
    ("fmt", "a-directory", 1, "Error: {path}: cannot read the Boltfile: it is a "
     "directory; name the file in it, e.g. {path}/Boltfile.toml"),
]


@pytest.fixture
def bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "a-directory").mkdir()
    monkeypatch.chdir(tmp_path)  # paths in the output are short and exact
    return tmp_path


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["boltfile", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("traceback instead of a message") from result.exception
    return result


@pytest.mark.parametrize(("command", "name", "status", "first"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_gives_one_clear_line(bad_files: Path, command: str, name: str,
                                        status: int, first: str) -> None:
    args = ["--check", name] if command == "fmt" else [name]
    result = _run(command, *args)
    lines = result.output.splitlines()
    assert (result.exit_code, lines[0]) == (status, first.format(path=name)), result.output
    if ": error: " in lines[0] or ": warning: " in lines[0]:
        assert lines[1].startswith("    hint: ") and len(lines[1]) > len("    hint: ") + 10
    assert "Traceback" not in result.output


def test_validate_reports_every_file_past_a_bad_one(bad_files: Path) -> None:
    (bad_files / "good.toml").write_text(VALID)
    names = ["int-5000.toml", "missing.toml", "nested-600.toml", "bom.toml", "good.toml"]
    result = _run("validate", *names)
    assert result.exit_code == 1
    summary = re.compile(r"(\S+): \d+ errors?, \d+ warnings?; Bolt (accepts|refuses) this file")
    summaries = [m.group(1) for m in map(summary.fullmatch, result.output.splitlines()) if m]
    assert summaries == ["int-5000.toml", "nested-600.toml", "bom.toml", "good.toml"]
    assert ("Error: missing.toml: cannot read the Boltfile: there is no such file; check "
            "the path") in result.output.splitlines()


def test_fmt_leaves_a_refused_file_alone(bad_files: Path) -> None:
    before = (bad_files / "int-5000.toml").read_bytes()
    result = _run("fmt", "int-5000.toml", "comment-at-end.toml")
    assert result.exit_code == 1
    assert "Error: int-5000.toml: not reformatted; fix the error above first" in result.output
    assert (bad_files / "int-5000.toml").read_bytes() == before
    assert (bad_files / "comment-at-end.toml").read_text() == VALID + "# the end\n"


def test_oversized_input_is_refused_quickly(bad_files: Path) -> None:
    # Before the size limit, 2 MB of blank lines took about two minutes (tomlkit merges
    # each blank line into the run before it by copying the run).
    started = time.perf_counter()
    result = _run("validate", "blank-2mb.toml", "blank-run.toml")
    assert result.exit_code == 1
    assert time.perf_counter() - started < 10


def test_an_unreadable_file_is_one_line(bad_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, who reads any file: make open() refuse as it would a user.
    real_open = open

    def refusing_open(file: str, *args: object, **kwargs: object) -> object:
        if str(file).endswith("locked.toml"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(_parse, "open", refusing_open, raising=False)
    (bad_files / "locked.toml").write_text(VALID)
    result = _run("validate", "locked.toml", "unknown.toml")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == ("Error: locked.toml: cannot read the Boltfile: "
                                             "permission denied; make it readable (chmod a+r) "
                                             "or run as its owner")
    assert "unknown.toml: 0 errors, 1 warning; Bolt accepts this file" in result.output
