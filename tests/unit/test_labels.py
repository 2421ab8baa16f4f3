"""``KEY=VALUE`` text: one reader for ``--label``, ``--filter``, the registry and text boxes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ghostpanel_kernel._labels import parse_labels, parse_labels_text, split_key_value
from ghostpanel_kernel.cli import CliContext, cli
from ghostpanel_kernel.environments import parse_labels as registry_parse_labels


@pytest.mark.parametrize(("item", "pair"), [
    ("region=us-east", ("region", "us-east")), ("url=http://x/?a=b", ("url", "http://x/?a=b")),
    ("flag=", ("flag", "")), (" tier = db ", ("tier", "db")),
    ("label=app=web", ("label", "app=web")),
])
def test_the_first_equals_sign_splits(item: str, pair: tuple[str, str]) -> None:
    assert split_key_value(item) == pair


@pytest.mark.parametrize("item", ["region", "=us-east", " = x", ""])
def test_no_equals_sign_or_no_key_is_refused_with_what_it_was(item: str) -> None:
    with pytest.raises(ValueError, match=r"^filter .* is not KEY=VALUE"):
        split_key_value(item, what="filter")


def test_labels_from_options_and_from_one_text_box_read_alike() -> None:
    assert parse_labels(["team=web", "tier = db", "team=api"]) == {"team": "api", "tier": "db"}
    assert parse_labels_text("team=web, tier = db\n\nzone=a,") == {
        "team": "web", "tier": "db", "zone": "a"}
    assert registry_parse_labels is parse_labels  # the registry's is the same reader
    with pytest.raises(ValueError, match="label 'oops' is not KEY=VALUE"):
        parse_labels_text("team=web, oops")


def test_the_cli_filter_option_uses_the_same_reader() -> None:
    def unreachable(names: object) -> list[object]:
        raise AssertionError("a bad filter must be refused before any engine is opened")

    result = CliRunner().invoke(cli, ["ps", "--filter", "=web"],
                                obj=CliContext(open_environments=unreachable))
    assert result.exit_code == 2
    assert "filter '=web' is not KEY=VALUE (e.g. region=us-east)" in result.stderr
