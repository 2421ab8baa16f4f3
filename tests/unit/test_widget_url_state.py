"""The dashboard's view as a URL query (widgets/_url_state.py), without a browser."""

from __future__ import annotations

import pytest
from ghostpanel_widgets._url_state import URL_KEYS, UrlLink, ViewState, parse_query, view_query


@pytest.mark.parametrize("state", [
    ViewState("prod", "logs", "web"),
    ViewState("lab east", "containers"),
    ViewState("a&b=c", "overview", "name with spaces"),  # escaped, and back
    ViewState(),
])
def test_a_view_survives_its_query(state: ViewState) -> None:
    assert parse_query(view_query(state)) == state
    assert parse_query("?" + view_query(state)) == state


def test_only_the_view_s_keys_count_and_the_first_value_wins() -> None:
    assert parse_query("voila-theme=dark&tab=GPUs&env=a&env=b") == ViewState("a", "gpus")
    assert parse_query({"container": ["web", "db"], "other": "x"}) == ViewState(
        container="web")
    assert parse_query(None) == parse_query("") == ViewState()
    assert view_query(ViewState(tab="Logs")) == "tab=logs"
    assert URL_KEYS == ("env", "tab", "container")  # what links already shared use


def test_the_link_reports_back_and_forward_and_survives_a_broken_callback() -> None:
    seen: list[str] = []
    link = UrlLink("env=a&tab=home", seen.append)
    try:
        assert link.query == "env=a&tab=home"
        link.query = "env=a&tab=logs"
        assert link.component.query == "env=a&tab=logs"  # what the browser is sent
        link.navigated("env=a&tab=home")
        link.navigated("env=a&tab=home")  # the same entry twice is two moves
        # Panel sends a component's text HTML-escaped: read back as written.
        link.component.param.update(navigated="env=a&amp;tab=stats",
                                    pops=link.component.pops + 1)
        assert seen == ["env=a&tab=home", "env=a&tab=home", "env=a&tab=stats"]

        def broken(query: str) -> None:
            raise RuntimeError("view gone")

        link._on_navigate = broken
        link.navigated("env=a&tab=logs")  # logged, not raised into Panel's comm handler
    finally:
        link.close()
