"""``fmt`` is idempotent: ``fmt(fmt(x)) == fmt(x)``, and keeps the data, over the whole
Bolt corpus (``tests/data/bolt-corpus/``) in several spellings and over edge cases.

A formatter that changes its own output makes ``fmt --check`` fail right after
``fmt``; each variant below is a way real files end or are written that once did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.bolt._data import same_data
from ghostpanel_kernel.cli import cli

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bolt-corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.toml"))

VARIANTS: dict[str, Callable[[str], str]] = {
    "as-is": lambda text: text,
    "no-final-newline": lambda text: text.rstrip("\n"),
    "comment-at-end-no-newline": lambda text: text.rstrip("\n") + "\n# the end",
    "detached-comment-at-end-no-newline": lambda text: text.rstrip("\n") + "\n\n# the end",
    "detached-comment-at-end": lambda text: text.rstrip("\n") + "\n\n# the end\n",
    "trailing-comment-no-newline": lambda text: text.rstrip("\n") + "  # the end",
    "crlf-comment-at-end": lambda text: text.replace("\n", "\r\n").rstrip("\r\n")
    + "\r\n\r\n# the end",
    "nan-and-inf": lambda text: "nan_key = nan\ninf_key = -inf\n" + text,
    "blank-lines": lambda text: text.replace("\n[", "\n\n\n\n["),
}

EDGE_CASES = {
    "empty": "",
    "only-blank-lines": "\n\n\n",
    "only-comments": "# a\n# b",
    "comment-paragraphs": "# a\n\n# b\n\n\n# c",
    "key-and-comment": 'project = "x"  # name',
    "nan-everywhere": 'project = "x"\nf = [nan, +nan, -nan, inf, +inf, -inf]\n'
                      "[services.web]\nimage = 'n'\nratio = nan\n",
    "tables-out-of-order-with-footer": 'project = "x"\n[volumes.v]\ndriver = "local"\n'
                                       '[services.web]\nimage = "n"\n\n# footer\n# two',
    "array-with-comment-at-end": 'x = [\n  1,  # one\n  2,\n]  # list',
    "header-comment-at-end": '[services.web]  # web\nimage = "n"\n[networks.a]  # a',
    "aot-with-footer": '[[snapshots.named_snapshots]]\nname = "a"\n\n'
                       '[[snapshots.named_snapshots]]\nname = "b"\n\n# footer',
}


def _check_idempotent(text: str) -> None:
    original = Boltfile.loads(text)
    once = original.format()
    twice = Boltfile.loads(once).format()
    assert twice == once
    assert same_data(Boltfile.loads(once).to_dict(), original.to_dict())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_fmt_is_idempotent_on_the_corpus(path: Path, variant: str) -> None:
    _check_idempotent(VARIANTS[variant](path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_fmt_is_idempotent_on_edge_cases(name: str) -> None:
    _check_idempotent(EDGE_CASES[name])


def test_a_detached_comment_at_the_end_stays_at_the_end() -> None:
    # The last table moves up (Bolt's order puts services before volumes); the footer
    # comment used to move with it, and a second run glued it to the next header.
    formatted = Boltfile.loads(EDGE_CASES["tables-out-of-order-with-footer"]).format()
    assert formatted == ('project = "x"\n\n[services.web]\nimage = "n"\n\n[volumes.v]\n'
                         'driver = "local"\n\n# footer\n# two\n')


def test_fmt_keeps_nan_and_infinity_as_written() -> None:
    formatted = Boltfile.loads(EDGE_CASES["nan-everywhere"]).format()
    assert "f = [nan, +nan, -nan, inf, +inf, -inf]" in formatted
    ratio = Boltfile.loads(formatted).to_dict()["services"]["web"]["ratio"]
    assert math.isnan(ratio)


def test_edits_work_on_a_file_with_nan() -> None:
    boltfile = Boltfile.loads('project = "x"\nratio = nan\n[services.web]\nimage = "n"\n')
    boltfile.set_image("web", "nginx")
    assert boltfile.service("web").image == "nginx"


def test_fmt_then_check_passes_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text(VARIANTS["detached-comment-at-end-no-newline"](
        (CORPUS / "bolt__examples_ollama-gpu.bolt.toml").read_text(encoding="utf-8")))
    first = CliRunner().invoke(cli, ["boltfile", "fmt", str(path)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["boltfile", "fmt", "--check", str(path)])
    assert again.exit_code == 0, again.output
