"""``ghostpanel boltfile validate`` and ``fmt`` through click's ``CliRunner``.

The verdicts are the validator's own (its correctness is pinned by
``test_boltfile_corpus.py``); these tests pin what the command makes of them: exit
statuses, the compiler-style text, the ``--json`` shape, and that ``fmt`` writes only
what it should.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel.bolt import Boltfile, validate_file
from ghostpanel_kernel.cli import cli

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bolt-corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.toml"))

VALID = 'project = "demo"\n\n[services.web]\nimage = "nginx"\nports = ["80:80"]\n'
# Host port 80 twice: Bolt refuses it; the second "80:8080" is at line 4, column 19.
DUPLICATE_PORT = ('project = "demo"\n[services.web]\nimage = "nginx"\n'
                  'ports = ["80:80", "80:8080"]\n')
# Bolt accepts it, but silently drops `replicas_hint`.
WARNING_ONLY = 'project = "demo"\n[services.web]\nimage = "nginx"\nreplicas_hint = 3\n'
# An unclosed table header on line 2.
SYNTAX_ERROR = 'project = "demo"\n[services.web\nimage = "nginx"\n'
UNFORMATTED = ('# my stack\nproject="demo"\n[services.web]\nports=["80:80"]   # public\n'
               'image="nginx"\n')

DIAGNOSTIC_KEYS = {"severity", "line", "column", "key", "message", "hint", "path"}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["boltfile", *args])


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(text.encode())
    return path


def test_the_corpus_is_there() -> None:
    assert len(CORPUS_FILES) >= 9, f"no Boltfile corpus at {CORPUS}"


# -- validate ------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_validate_exit_status_is_the_validators_verdict(path: Path) -> None:
    diagnostics = validate_file(path)
    result = run("validate", str(path))
    assert result.exit_code == (1 if any(d.is_error for d in diagnostics) else 0), result.output
    lines = result.stdout.splitlines()
    errors = sum(d.is_error for d in diagnostics)
    assert lines[-1].startswith(f"{path}: {errors} error")
    assert lines[-1].endswith("Bolt refuses this file" if errors else "Bolt accepts this file")
    # Every finding on its own line, as path:line:column: severity: message, then its hint.
    for diagnostic in diagnostics:
        head = (f"{path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.severity}: "
                f"{diagnostic.message}")
        index = next(i for i, line in enumerate(lines) if line.startswith(head))
        assert lines[index + 1] == f"    hint: {diagnostic.hint}"
    assert len(lines) == 2 * len(diagnostics) + 1


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_validate_json_is_every_diagnostic(path: Path) -> None:
    result = run("validate", "--json", str(path))
    found = json.loads(result.stdout)
    assert found == [d.to_dict() for d in validate_file(path)]
    for item in found:
        assert set(item) == DIAGNOSTIC_KEYS
        assert item["severity"] in {"error", "warning"}
        assert isinstance(item["line"], int) and item["line"] >= 1
        assert isinstance(item["column"], int) and item["column"] >= 1
        assert item["path"] == str(path)


def test_a_file_bolt_accepts_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", VALID)
    result = run("validate", str(path))
    assert result.exit_code == 0
    assert result.output == f"{path}: 0 errors, 0 warnings; Bolt accepts this file\n"
    assert json.loads(run("validate", "--json", str(path)).stdout) == []


def test_json_positions_are_one_based(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", DUPLICATE_PORT)
    result = run("validate", "--json", str(path))
    assert result.exit_code == 1
    [item] = json.loads(result.stdout)
    assert (item["severity"], item["line"], item["column"], item["key"]) == (
        "error", 4, 19, "services.web.ports")
    line = DUPLICATE_PORT.splitlines()[item["line"] - 1]
    assert line[item["column"] - 1:].startswith('"80:8080"')
    assert item["message"] and item["hint"]


def test_human_output_reads_like_a_compiler(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", DUPLICATE_PORT)
    lines = run("validate", str(path)).stdout.splitlines()
    assert lines[0].startswith(f"{path}:4:19: error: ")
    assert lines[0].endswith(" [services.web.ports]")
    assert lines[1].startswith("    hint: ")
    assert lines[2] == f"{path}: 1 error, 0 warnings; Bolt refuses this file"


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", WARNING_ONLY)
    result = run("validate", "--json", str(path))
    assert result.exit_code == 0
    [item] = json.loads(result.stdout)
    assert (item["severity"], item["line"], item["key"]) == (
        "warning", 4, "services.web.replicas_hint")
    text = run("validate", str(path))
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-1].endswith("0 errors, 1 warning; Bolt accepts this file")


def test_a_syntax_error_is_an_error_diagnostic(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", SYNTAX_ERROR)
    result = run("validate", "--json", str(path))
    assert result.exit_code == 1
    [item] = json.loads(result.stdout)
    assert item["severity"] == "error"
    assert item["line"] == 2
    assert "syntax error" in item["message"]
    assert run("validate", str(path)).stdout.startswith(f"{path}:2:")


def test_several_files_one_list_and_the_worst_verdict(tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", VALID)
    bad = write(tmp_path, "bad.toml", DUPLICATE_PORT)
    result = run("validate", "--json", str(good), str(bad))
    assert result.exit_code == 1
    assert [item["path"] for item in json.loads(result.stdout)] == [str(bad)]
    text = run("validate", str(good), str(bad)).stdout.splitlines()
    assert text[0] == f"{good}: 0 errors, 0 warnings; Bolt accepts this file"
    assert text[-1] == f"{bad}: 1 error, 0 warnings; Bolt refuses this file"
    assert run("validate", str(good), str(good)).exit_code == 0


@pytest.mark.parametrize("command", ["validate", "fmt"])
@pytest.mark.parametrize("what", ["missing", "directory"])
def test_an_unreadable_path_is_a_one_line_error(tmp_path: Path, command: str,
                                                what: str) -> None:
    path = tmp_path / "nope.toml" if what == "missing" else tmp_path
    result = run(command, str(path))
    assert result.exit_code == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith(f"Error: {path}: cannot read the Boltfile: ")
    assert "Traceback" not in result.output


def test_an_unreadable_file_does_not_hide_the_others(tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", VALID)
    result = run("validate", "--json", str(tmp_path / "missing.toml"), str(good))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == []
    assert "missing.toml" in result.stderr


def test_files_are_required() -> None:
    result = run("validate")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


# -- fmt -----------------------------------------------------------------------------


@pytest.fixture
def corpus_copy(tmp_path: Path) -> list[Path]:
    copies = []
    for path in CORPUS_FILES:
        copies.append(Path(shutil.copy(path, tmp_path / path.name)))
    return copies


def test_fmt_rewrites_the_corpus_keeping_its_data_and_is_idempotent(
        corpus_copy: list[Path]) -> None:
    before = {path: Boltfile.load(path).to_dict() for path in corpus_copy}
    expected = {path: Boltfile.load(path).format() for path in corpus_copy}
    result = run("fmt", *map(str, corpus_copy))
    assert result.exit_code == 0, result.output
    for path in corpus_copy:
        assert path.read_text(encoding="utf-8") == expected[path]
        assert Boltfile.load(path).to_dict() == before[path]
        assert f"reformatted {path}" in result.stderr
    # A second run finds nothing to change.
    again = run("fmt", "--check", *map(str, corpus_copy))
    assert again.exit_code == 0, again.output
    assert again.stderr.endswith(f"0 files would be reformatted, {len(corpus_copy)} left "
                                 "unchanged\n")
    snapshot = {path: path.read_bytes() for path in corpus_copy}
    assert run("fmt", *map(str, corpus_copy)).exit_code == 0
    assert {path: path.read_bytes() for path in corpus_copy} == snapshot


def test_fmt_check_writes_nothing_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", UNFORMATTED)
    result = run("fmt", "--check", str(path))
    assert result.exit_code == 1
    assert path.read_text() == UNFORMATTED
    assert f"would reformat {path}" in result.stderr
    assert result.stdout == ""


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", UNFORMATTED)
    result = run("fmt", "--diff", str(path))
    assert result.exit_code == 0  # as black: --diff alone reports, --check decides
    assert path.read_text() == UNFORMATTED
    formatted = Boltfile.load(path).format()
    assert result.stdout.startswith(f"--- {path}\n+++ {path} (formatted)\n@@ ")
    removed = [line[1:] for line in result.stdout.splitlines()[2:] if line.startswith("-")]
    added = [line[1:] for line in result.stdout.splitlines()[2:] if line.startswith("+")]
    assert set(removed) <= set(UNFORMATTED.splitlines())
    assert set(added) <= set(formatted.splitlines())
    assert 'project="demo"' in removed and 'project = "demo"' in added
    assert run("fmt", "--diff", "--check", str(path)).exit_code == 1


def test_fmt_diff_marks_a_missing_final_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", 'project="demo"')
    result = run("fmt", "--diff", str(path))
    assert result.stdout.endswith('-project="demo"\n\\ No newline at end of file\n'
                                  '+project = "demo"\n')


def test_fmt_of_a_formatted_file_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", VALID)
    result = run("fmt", "--diff", "--check", str(path))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "0 files would be reformatted, 1 left unchanged\n"


def test_fmt_keeps_crlf_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", UNFORMATTED.replace("\n", "\r\n"))
    assert run("fmt", str(path)).exit_code == 0
    data = path.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 0
    assert b'project = "demo"' in data


def test_fmt_leaves_a_file_with_syntax_errors_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "Boltfile.toml", SYNTAX_ERROR)
    good = write(tmp_path, "good.toml", UNFORMATTED)
    result = run("fmt", str(path), str(good))
    assert result.exit_code == 1
    assert path.read_text() == SYNTAX_ERROR
    assert f"{path}:2:" in result.stderr and "error: TOML syntax error" in result.stderr
    assert f"Error: {path}: not reformatted; fix the error above first" in result.stderr
    # The other file is still formatted.
    assert good.read_text() == Boltfile.loads(UNFORMATTED).format()


def test_the_boltfile_command_is_registered() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "boltfile" in result.output
    sub = CliRunner().invoke(cli, ["boltfile", "--help"])
    assert sub.exit_code == 0
    assert "validate" in sub.output and "fmt" in sub.output
