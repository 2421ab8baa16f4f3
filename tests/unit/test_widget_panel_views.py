"""Panel views held until a browser shows them: a table or chart changed before its
view exists reaches the browser whole when the view opens, and never as a change the
view could misread; closing such a view, shown or not, twice, raises nothing.

The browser is played by :class:`~tests.unit.fake_browser.FakeBrowser`: it records the
comm messages and rebuilds the document the browser would render.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pandas as pd
import pytest
from bokeh.models import ColumnDataSource
from ghostpanel_widgets._live_table import tabulator_view
from ghostpanel_widgets._panel import hold_changes_until_shown, load_panel
from ghostpanel_widgets._stats_monitor import StatsMonitor
from ipywidgets.widgets.widget import _instances  # open widgets, by model id

from ghostpanel_kernel.engine import Environment
from tests.unit.fake_browser import FakeBrowser
from tests.unit.fake_engine import URL


def tabulator_rows(browser: FakeBrowser, column: str) -> list[str]:
    """The rows of ``column`` in the table the browser renders."""
    (root,) = browser.document().roots
    return list(root.source.data[column])


def test_a_table_changed_before_its_view_exists_is_sent_whole_when_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    browser = FakeBrowser(view, monkeypatch)
    assert view._view_count == 0  # the page has not made its view yet

    table.value = pd.DataFrame({"name": ["web", "db"]}, dtype="str")
    table.patch({"name": [(0, "api")]})
    assert browser.patches == []  # nothing a view being made could take half of

    browser.show()
    assert tabulator_rows(browser, "name") == ["api", "db"]  # what the kernel has now

    table.patch({"name": [(1, "cache")]})  # once shown, changes go as they come
    assert browser.patches
    assert len(browser.bundles) == 1
    view.close()


def test_a_second_view_gets_changes_as_they_come(monkeypatch: pytest.MonkeyPatch) -> None:
    table, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    browser = FakeBrowser(view, monkeypatch)
    browser.show()
    sent = len(browser.messages)
    browser.show()  # the same output shown twice: the view count goes to 2
    table.patch({"name": [(0, "api")]})
    assert browser.patches
    assert len(browser.messages) > sent
    view.close()


def test_a_chart_changed_before_its_view_exists_is_sent_whole_when_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bokeh.plotting import figure

    pn = load_panel()
    source = ColumnDataSource(data={"x": [0], "y": [1]}, name="series")
    chart = figure()
    chart.line("x", "y", source=source)
    view = pn.ipywidget(pn.pane.Bokeh(chart))
    browser = FakeBrowser(view, monkeypatch)

    source.data = {"x": [0, 1, 2], "y": [1, 4, 9]}
    assert browser.patches == []
    browser.show()
    (shown,) = browser.document().select({"type": ColumnDataSource, "name": "series"})
    assert shown.data == {"x": [0, 1, 2], "y": [1, 4, 9]}
    view.close()


@pytest.fixture
async def env() -> AsyncIterator[Environment]:
    environment = Environment(URL, name="a")  # never asked anything: start=False below
    yield environment
    await environment.aclose()


async def test_the_stats_monitor_charts_are_held_too(
        env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = StatsMonitor(env, ["web"], start=False)
    try:
        browser = FakeBrowser(monitor.chart, monkeypatch)
        source = monitor.sources["web"]
        data = {column: [1.0, 2.0] for column in source.data}
        source.data = data
        assert browser.patches == []
        browser.show()
        (shown,) = browser.document().select({"type": ColumnDataSource, "name": "web"})
        assert shown.data == data
    finally:
        await monitor.aclose()


def test_closing_a_view_never_shown_twice_raises_nothing() -> None:
    table, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    model_id = view.model_id
    table.value = pd.DataFrame({"name": ["db"]}, dtype="str")  # held
    view.close()
    view.close()  # ipywidgets does it again when the widget is garbage collected
    assert view.comm is None and model_id not in _instances
    del table, view
    gc.collect()  # an error in Widget.__del__ fails the test (filterwarnings = error)


def test_closing_a_shown_view_twice_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    FakeBrowser(view, monkeypatch).show()
    view.close()
    view.close()
    assert view.comm is None
    del view
    gc.collect()


def test_a_view_already_shown_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    pn = load_panel("tabulator")
    table = pn.widgets.Tabulator(pd.DataFrame({"name": ["web"]}, dtype="str"))
    view = pn._module.ipywidget(table)  # Panel's own, without the hold
    browser = FakeBrowser(view, monkeypatch)
    browser.show()
    hold_changes_until_shown(view)  # shown already: nothing to hold
    table.patch({"name": [(0, "api")]})
    assert browser.patches
    view.close()
    view.close()
