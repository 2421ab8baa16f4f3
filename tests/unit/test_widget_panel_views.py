"""Panel views held until a browser shows them: a table or chart changed before its
view exists reaches the browser whole when the view opens, and never as a change the
view could misread; closing such a view, shown or not, twice, raises nothing.

The browser is played by :class:`~tests.unit.fake_browser.FakeBrowser`: it records the
comm messages and rebuilds the document the browser would render.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from typing import Any

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


# -- the jupyter_bokeh internals the hold relies on (pinned in pyproject.toml) ----------


def test_every_view_is_held_through_jupyter_bokehs_internals() -> None:
    # hold_changes_until_shown() leaves alone what it does not recognise; were
    # jupyter_bokeh's BokehModel to lose these, views would silently go unheld.
    _, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    assert type(view).__module__ == "jupyter_bokeh.widgets"
    assert view._view_count == 0  # Panel counts the views the browser reports
    assert callable(view.update_from_model) and view._model is not None
    assert view._close_once
    # The document calls the view's _document_patched as looked up on the instance:
    # the hold's replacement, not jupyter_bokeh's method.
    assert view._document_patched.__qualname__.startswith("hold_changes_until_shown")
    view.close()


def test_a_second_view_is_sent_the_whole_state_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table, view = tabulator_view(pd.DataFrame({"name": ["web"]}, dtype="str"))
    browser = FakeBrowser(view, monkeypatch)
    browser.show()
    table.patch({"name": [(0, "api")]})
    bundles = len(browser.bundles)
    browser.show()  # a second view (another cell, a reloaded page) starts from this
    assert len(browser.bundles) == bundles + 1
    assert tabulator_rows(browser, "name") == ["api"]
    view.close()


# -- the browser's side: BokehJS and Panel, sent by the first widget of a kernel --------


def test_the_loader_carries_bokehjs_panel_and_every_extension_inline() -> None:
    from ghostpanel_widgets._panel import EXTENSIONS
    from ghostpanel_widgets._panel_loader import BOKEHJS_LOAD, bundle_parts, loader_bundle

    load_panel()  # any widget: every extension GhostPanel uses comes with it
    assert set(EXTENSIONS) <= {"tabulator", "codeeditor", "terminal"}
    parts = bundle_parts()
    core = [part.text.lstrip()[:40] for part in parts if part.kind == "core"]
    assert core[0].startswith("/* BEGIN bokeh.min.js */")
    assert any(text.startswith("/* BEGIN panel.min.js */") for text in core)
    libraries = "\n".join(part.text[:300] for part in parts if part.kind == "library")
    assert "Tabulator" in libraries and "ace" in libraries
    # xterm.js, for ExecConsole's terminal (Panel's "terminal" extension).
    assert any("xterm" in part.text for part in parts if part.kind == "library")
    assert any("tabulator" in part.text[:200] for part in parts if part.kind == "css")
    data = loader_bundle(parts)
    assert set(data) == {BOKEHJS_LOAD, "application/javascript"}
    script = data[BOKEHJS_LOAD]
    # Nothing deferred and nothing fetched: every part is in the script, in order.
    assert "setTimeout" not in script.split("var parts =")[0]
    assert "cdn.bokeh.org" not in script and "src=" not in script.split("var parts =")[0]
    positions = [script.index(json.dumps(part.key)) for part in parts]
    assert positions == sorted(positions)


_HTML = ({"text/html": "<style>panel</style>"}, {})
_PANELS_LOADER = ({"application/javascript": "setTimeout(...) /* BEGIN bokeh.min.js */",
                   "application/vnd.holoviews_load.v0+json": "(same)"}, {})
_COMMS = ({"application/javascript": "window.PyViz = {}",
           "application/vnd.holoviews_load.v0+json": "window.PyViz = {}"}, {})
_OURS = {"application/vnd.bokehjs_load.v0+json": "ours"}


class _Kernel:
    """What a BrowserLoader displays, and whether a cell runs (a widget's callback
    otherwise)."""

    def __init__(self) -> None:
        self.shown: list[dict[str, Any]] = []
        self.cell = True
        self.calls: list[tuple[str, ...]] = []

    def loader(self) -> Any:
        from ghostpanel_widgets._panel_loader import BrowserLoader

        return BrowserLoader(publish=lambda data, metadata: self.shown.append(data),
                             in_cell=lambda: self.cell, bundle=lambda: _OURS,
                             capture=self._capture)

    @staticmethod
    def _capture(run: Any) -> list[Any]:
        run()
        return [_HTML, _PANELS_LOADER, _COMMS]

    def extension(self, *names: str, **params: Any) -> None:
        self.calls.append(names)


def test_the_loader_patches_panels_tabulator_view_after_panel() -> None:
    # The Tabulator fix (rows that came while the table was built) runs after Panel's
    # bundle, and patches methods and flags that Panel's view still has: were a Panel
    # upgrade to rename them, the fix would silently do nothing (the browser side is
    # tests/e2e/test_jupyterlab_widgets.py::test_a_tabulator_draws_the_rows_...).
    from ghostpanel_widgets._panel_loader import TABULATOR_DATA_FIX, bundle_parts

    load_panel()
    parts = bundle_parts()
    assert parts[-1].text == TABULATOR_DATA_FIX and parts[-1].kind == "library"
    (panel,) = [part.text for part in parts
                if part.kind == "core" and "BEGIN panel" in part.text[:40]]
    for name in ("DataTabulatorView", "tableBuilt(){", "setData(){", "updateOrAddData(){",
                 "postUpdate(){", "setSelection(){", "this._building",
                 "this._initializing"):
        assert name in panel, name
    for name in ("Bokeh.Panel", "DataTabulator", "default_view", ".setData",
                 ".tableBuilt", ".updateOrAddData", "_building", "_initializing"):
        assert name in TABULATOR_DATA_FIX, name


def test_panels_deferred_loader_is_replaced_by_one_that_runs_at_once() -> None:
    kernel = _Kernel()
    loader = kernel.loader()
    loader.extension(kernel, ["tabulator", "codeeditor"])
    assert kernel.calls == [("tabulator", "codeeditor")] and kernel.shown == []
    assert loader.show()
    # Panel's stylesheet and comm manager stay where Panel put them.
    assert kernel.shown == [_HTML[0], _OURS, _COMMS[0]]
    assert not loader.show()  # once per kernel
    assert len(kernel.shown) == 3


def test_the_loader_waits_for_a_cell_when_first_asked_from_a_callback() -> None:
    kernel = _Kernel()
    loader = kernel.loader()
    kernel.cell = False  # e.g. a dashboard tab built when clicked: no page shows this
    loader.extension(kernel, ["tabulator"])
    assert not loader.show() and kernel.shown == []
    kernel.cell = True  # the next widget made in a cell brings it
    assert loader.show()
    assert _OURS in kernel.shown


def test_a_new_extension_later_sends_the_loader_again() -> None:
    kernel = _Kernel()
    loader = kernel.loader()
    loader.extension(kernel, ["tabulator"])
    loader.show()
    loader.extension(kernel, ["vega"])  # the loader skips in the page what ran there
    assert loader.show()
    assert kernel.shown.count(_OURS) == 2
