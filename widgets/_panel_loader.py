"""The browser's side of Panel in a notebook: BokehJS, Panel's models and the libraries
of Panel's extensions, sent by the kernel as one output that runs them as it is shown.

Why not Panel's own loader (what ``pn.extension`` displays): it defers its work with a
``setTimeout``, so in JupyterLab the widget shown by the same cell is drawn first, and
jupyter_bokeh's ``BokehView`` fails without ``window.Bokeh``. The loader here appends
each script (and stylesheet) to the page *while its output is rendered*: an inline
``<script>`` runs as it is appended, so by the time any widget view is made, BokehJS
and Panel are there. It carries every script inline (nothing is fetched: a Bolt host's
browser may reach no CDN), and runs each script at most once per page, and BokehJS and
Panel not at all when a page already has this version of them (loaded by Panel's own
loader, e.g. a notebook that calls ``pn.extension(inline=True)`` itself).

It is displayed with two MIME types, one of which each front end runs:
``application/vnd.bokehjs_load.v0+json`` (jupyter_bokeh's JupyterLab extension, the same
one whose views need BokehJS) and ``application/javascript`` (Voila, which writes it
into the page as a ``<script>``, and the classic notebook).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BOKEHJS_LOAD", "TABULATOR_DATA_FIX", "BrowserLoader", "Part", "bundle_parts",
           "in_cell", "loader_bundle", "loader_script"]

_log = logging.getLogger(__name__)

#: jupyter_bokeh's MIME type for "run this script now" (its JupyterLab renderer appends
#: the text as an inline ``<script>``).
BOKEHJS_LOAD = "application/vnd.bokehjs_load.v0+json"
_JAVASCRIPT = "application/javascript"
#: Panel's (pyviz_comms') MIME type for the same; its library loader is sent with it.
_PANEL_LOAD = "application/vnd.holoviews_load.v0+json"

# Bokeh's and Panel's own files, as Bokeh's inline resources head them.
_CORE_HEADER = re.compile(r"/\* BEGIN (bokeh[\w-]*|panel)(\.min)?\.js \*/")

Kind = Literal["core", "library", "css"]


@dataclass(frozen=True)
class Part:
    """One script or stylesheet of the loader.

    ``core`` parts are BokehJS and Panel (skipped where the page has this version of
    them already), ``library`` parts the scripts of Panel's extensions (Tabulator,
    Luxon, Ace...), ``css`` parts their stylesheets.
    """

    kind: Kind
    text: str

    @property
    def key(self) -> str:
        """What the page remembers the part by, once run."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:20]


def bundle_parts() -> list[Part]:
    """The scripts and stylesheets of BokehJS, Panel and the extensions loaded so far
    (``pn.extension``), inline, in the order Panel would run them."""
    from bokeh.resources import INLINE
    from panel.io.resources import Resources, bundle_resources, set_resource_mode

    with set_resource_mode("inline"):
        resources = Resources.from_bokeh(INLINE, notebook=True)  # type: ignore[no-untyped-call]
        bundle = bundle_resources(None, resources, notebook=True)
    remote = [*bundle.js_files, *bundle.js_modules]
    if remote:  # none for GhostPanel's extensions; a new one would need the network
        _log.warning("Panel resources that are not inline are left out: %s", remote)
    parts = [Part("css", css) for css in bundle.css_raw]
    for script in bundle.js_raw:
        core = _CORE_HEADER.match(script.lstrip())
        parts.append(Part("core" if core else "library", script))
    parts.append(Part("library", TABULATOR_DATA_FIX))  # after Panel: it patches Panel's view
    return parts


#: Panel's Tabulator view (``DataTabulatorView``, Panel 1.9) drops the rows that reach it
#: while its table is being built: ``setData`` returns at once while ``_building`` or
#: ``_initializing`` (Tabulator builds a table asynchronously, from a ``setTimeout``,
#: and Panel marks it built only on Tabulator's ``tableBuilt``), ``updateOrAddData``
#: (a ``patch`` of cells) fails the same way, and ``tableBuilt`` shows the data the view
#: was *made* with. A kernel's listing that lands in that window (tens to hundreds of
#: milliseconds after the view is rendered; longer on a busy machine, and a
#: ``pn.ipywidget`` view is rendered twice: when it is made and again when
#: :func:`~._panel.hold_changes_until_shown` sends its whole state) is never drawn: the
#: table stays empty while the kernel, and the widget's count beside it, have the rows.
#: This script makes the view remember that data came while it was building and set it
#: once the table is built. It waits for Panel (a page may load Panel's own bundle after
#: this loader) and patches each Panel once.
TABULATOR_DATA_FIX = """(function (root) {
  "use strict";
  // GhostPanel: rows sent to a Tabulator while its table is being built are drawn once
  // it is built (Panel's view drops them; see ghostpanel_widgets/_panel_loader.py).
  var tries = 0;
  function building(view) {
    return view._initializing || view._building || view.tabulator == null ||
        !view.tabulator.initialized;
  }
  function patch() {
    var panel = root.Bokeh && root.Bokeh.Panel;
    var model = panel && panel.DataTabulator;
    var View = model && model.prototype.default_view;
    if (View == null) {
      if (tries++ < 600) { setTimeout(patch, 100); }  // Panel not loaded yet (60 s)
      return;
    }
    var proto = View.prototype;
    if (proto.__ghostpanelDataFix) { return; }
    proto.__ghostpanelDataFix = true;
    var setData = proto.setData, updateOrAddData = proto.updateOrAddData,
        tableBuilt = proto.tableBuilt;
    proto.setData = function () {
      if (building(this)) {
        this.__ghostpanelPendingData = true;
        return Promise.resolve(undefined);
      }
      return setData.apply(this, arguments);
    };
    proto.updateOrAddData = function () {
      if (building(this)) {
        this.__ghostpanelPendingData = true;
        return undefined;
      }
      return updateOrAddData.apply(this, arguments);
    };
    proto.tableBuilt = function () {
      var result = tableBuilt.apply(this, arguments);
      if (this.__ghostpanelPendingData) {
        this.__ghostpanelPendingData = false;
        var view = this;
        // Hidden by default (a browser shows debug lines on request): says the race
        // happened, for whoever investigates an empty table.
        console.debug("GhostPanel: rows that came while the Tabulator was being built " +
                      "are drawn now");
        view.setData().then(function () {
          view.setSelection();  // the ticks of the rows just set
          view.postUpdate();
        });
      }
      return result;
    };
  }
  patch();
}(window));
"""


def _bokehjs_version() -> str:
    """``Bokeh.version`` as BokehJS spells the installed Bokeh's version."""
    import bokeh

    return str(bokeh.__version__).replace("rc", "-rc.").replace(".dev", "-dev.")


def loader_script(parts: Iterable[Part], bokehjs_version: str) -> str:
    """JavaScript that appends each of ``parts`` to the page at once, in order.

    A part runs once per page (``window.__ghostpanel_parts`` remembers it); core parts
    not at all where ``window.Bokeh`` is ``bokehjs_version`` with Panel already.
    """
    table = json.dumps([[part.key, part.kind, part.text] for part in parts])
    return f"""(function (root) {{
  "use strict";
  // GhostPanel: BokehJS, Panel and their libraries, run now (a widget view of this cell
  // may be made next and needs them), each once per page.
  var ran = root.__ghostpanel_parts || (root.__ghostpanel_parts = {{}});
  var bokeh = root.Bokeh;
  var present = bokeh != null && bokeh.version === {json.dumps(bokehjs_version)} &&
      bokeh.Panel != null;
  var parts = {table};
  for (var i = 0; i < parts.length; i++) {{
    var key = parts[i][0], kind = parts[i][1], text = parts[i][2];
    if (ran[key] || (kind === "core" && present)) {{
      continue;
    }}
    var node = document.createElement(kind === "css" ? "style" : "script");
    node.textContent = text;  // an inline script runs as it is appended
    document.head.appendChild(node);
    ran[key] = true;
  }}
}}(window));
"""


def loader_bundle(parts: Iterable[Part] | None = None) -> dict[str, str]:
    """The display data of the loader: its script under both MIME types; in a kernel
    Voila runs, ``application/javascript`` only."""
    script = loader_script(bundle_parts() if parts is None else parts, _bokehjs_version())
    if os.environ.get("VOILA_KERNEL_ID"):
        # Voila writes every MIME type of an output into the page, and the loader is
        # about 5 MB: once is enough (docs/dashboard-performance.md).
        return {_JAVASCRIPT: script}
    return {BOKEHJS_LOAD: script, _JAVASCRIPT: script}


def in_cell() -> bool:
    """Whether this code runs for a cell being executed in an IPython kernel, where what
    it displays reaches the cell's output (a widget's callback runs for a comm message
    instead, whose outputs no page shows)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return False
    parent = kernel.get_parent()  # the request this code runs for
    return bool(parent.get("header", {}).get("msg_type") == "execute_request")


Output = tuple[dict[str, Any], dict[str, Any]]  # display data, metadata


def _publish(data: dict[str, Any], metadata: dict[str, Any]) -> None:
    from IPython.display import publish_display_data

    publish_display_data(data, metadata=metadata)  # type: ignore[no-untyped-call]


class BrowserLoader:
    """What the browser needs for Panel's extensions, displayed once per kernel.

    :meth:`extension` runs ``pn.extension`` with what it displays held back, Panel's
    library loader replaced by :func:`loader_bundle`; :meth:`show` displays it all in
    the cell being run, the first time it is called from one (not from a widget
    callback: see :func:`in_cell`).

    Parameters
    ----------
    publish, in_cell, bundle, capture
        How to display an output, whether a cell runs now, the loader's display data,
        and what a call displays (:func:`displayed_by`); tests replace them.
    """

    def __init__(self, *, publish: Callable[[dict[str, Any], dict[str, Any]], None] = _publish,
                 in_cell: Callable[[], bool] = in_cell,
                 bundle: Callable[[], dict[str, str]] = loader_bundle,
                 capture: Callable[[Callable[[], object]], list[Output]] | None = None) -> None:
        self._publish = publish
        self._in_cell = in_cell
        self._bundle = bundle
        self._capture = displayed_by if capture is None else capture
        # Panel's outputs not shown yet; None where the loader goes.
        self._pending: list[Output | None] = []
        self._stale = False  # extensions were loaded since the loader was last shown

    def extension(self, pn: Any, names: list[str]) -> None:
        """``pn.extension(*names)`` for ipywidgets, inline; its outputs held back."""
        outputs = self._capture(lambda: pn.extension(*names, comms="ipywidgets",
                                                     inline=True))
        self._pending = [output for output in self._pending if output is not None]
        loader_at = len(self._pending)
        for data, metadata in outputs:
            if _is_panel_library_loader(data):
                loader_at = len(self._pending)
                continue
            self._pending.append((data, metadata))
        self._pending.insert(loader_at, None)
        self._stale = True

    def show(self) -> bool:
        """Display the loader and Panel's held outputs if not done since the last
        :meth:`extension`, and a cell runs now; whether they were displayed."""
        if not self._stale or not self._in_cell():
            return False
        for output in self._pending:
            if output is None:
                self._publish(self._bundle(), {})
            else:
                self._publish(*output)
        self._pending = []
        self._stale = False
        return True


def displayed_by(run: Callable[[], object]) -> list[Output]:
    """Call ``run`` and return what it displayed (data, metadata) instead of showing it;
    outside IPython, just call it."""
    try:
        from IPython import get_ipython
        from IPython.utils.capture import capture_output
    except ImportError:
        run()
        return []
    if get_ipython() is None:
        run()
        return []
    with capture_output(stdout=False, stderr=False, display=True) as captured:
        run()
    return [(dict(output.data), dict(output.metadata or {})) for output in captured.outputs]


def _is_panel_library_loader(data: dict[str, Any]) -> bool:
    """Whether ``data`` is Panel's (deferred) loader of BokehJS, which carries BokehJS
    itself; Panel's other outputs (its notebook stylesheet, its comm manager) are kept."""
    scripts = [data.get(_PANEL_LOAD), data.get(_JAVASCRIPT)]
    return any(isinstance(script, str) and _CORE_HEADER.search(script) is not None
               for script in scripts)
