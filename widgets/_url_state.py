"""The dashboard's view in the page's address: ``?env=prod&tab=logs&container=web``.

Two halves:

- :class:`ViewState`, :func:`parse_query` and :func:`view_query` turn a URL query into
  the view it names and back (pure functions: the dashboard's ``from_query`` and its
  tests use them without a browser);
- :class:`UrlLink` keeps the browser's address in step with the kernel: a change of view
  in the kernel becomes a new history entry (``history.pushState``), so the address can
  be copied and shared, and the browser's Back and Forward (``popstate``) come back to
  the kernel as the query of the entry returned to.

The browser half is a tiny Panel ``ReactiveHTML`` component, shown through
:func:`~._panel.load_panel`'s ``pn.ipywidget`` like every Panel object here: its
scripts are plain JavaScript sent with the component, so nothing is loaded from
elsewhere and no new dependency is needed. Panel's own ``Location`` model pushes
history entries too but does not listen to ``popstate`` (Back would change the address
and nothing else), and it is not a layout element ``pn.ipywidget`` can show.

Only the three keys are the link's: other parameters in the address (Voila's own, a
proxy's) are kept as they are.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

__all__ = ["URL_KEYS", "UrlLink", "ViewState", "parse_query", "view_query"]

_log = logging.getLogger("ghostpanel_widgets")

#: The query keys the dashboard reads and writes, in the order it writes them.
URL_KEYS = ("env", "tab", "container")


@dataclass(frozen=True)
class ViewState:
    """A view of the dashboard as a URL names it.

    Attributes
    ----------
    environment
        The environment's name ('' for the dashboard's default).
    tab
        The tab, lowercase as in the URL: a dashboard tab (``containers``, ``logs``...),
        or with ``container`` the container page's tab (``overview``, ``logs``...). ''
        for the default.
    container
        The container whose page is open ('' for none).
    """

    environment: str = ""
    tab: str = ""
    container: str = ""


def _first(value: str | Sequence[str] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return str(value[0]).strip() if len(value) else ""


def parse_query(query: str | Mapping[str, str | Sequence[str]] | None) -> ViewState:
    """The view a URL query names; unknown keys are ignored.

    Parameters
    ----------
    query
        ``"env=prod&tab=logs"`` (a leading ``?`` allowed), or a mapping such as
        Tornado's or ``parse_qs``'s (a list's first value counts).

    Examples
    --------
    >>> parse_query("?env=prod&tab=Logs&container=web&voila-theme=dark")
    ViewState(environment='prod', tab='logs', container='web')
    >>> parse_query({"env": ["lab"]})
    ViewState(environment='lab', tab='', container='')
    """
    if not query:
        return ViewState()
    if isinstance(query, str):
        values: Mapping[str, str | Sequence[str]] = parse_qs(query.lstrip("?"))
    else:
        values = query
    return ViewState(environment=_first(values.get("env")),
                     tab=_first(values.get("tab")).lower(),
                     container=_first(values.get("container")))


def view_query(state: ViewState) -> str:
    """The URL query of ``state``: its non-empty parts, in :data:`URL_KEYS` order.

    Examples
    --------
    >>> view_query(ViewState("prod", "logs", "web"))
    'env=prod&tab=logs&container=web'
    >>> view_query(ViewState("lab east", "home"))
    'env=lab+east&tab=home'
    """
    parts = zip(URL_KEYS, (state.environment, state.tab.lower(), state.container),
                strict=True)
    return urlencode([(key, value) for key, value in parts if value])


# -- the browser's half ------------------------------------------------------------------

# The component's scripts. ``state`` is per view. "render" runs when the view is drawn:
# it listens to popstate, and leaves the address as it is: a view may first be drawn
# from the state its model had when it was made (_panel.hold_changes_until_shown), older
# than the kernel's. An address naming no view ("/", the page's first entry) stands for
# the first view shown; reloaded, it is the default view again, which a preheated
# kernel has ready. "query" runs when the kernel's view changes (and when a popstate
# set it): a new history entry, unless the address already says it.
_KEYS_JS = "[" + ", ".join(f'"{key}"' for key in URL_KEYS) + "]"
_RENDER = """
const KEYS = @KEYS@
// Panel sends a component's text escaped for HTML ("&" as "&amp;"): read it back.
state.text = (escaped) => {
  const area = document.createElement("textarea")
  area.innerHTML = escaped
  return area.value
}
state.ours = (search) => {
  const found = new URLSearchParams(search)
  const out = new URLSearchParams()
  for (const key of KEYS) {
    const value = found.get(key)
    if (value) { out.set(key, value) }
  }
  return out.toString()
}
state.url = (query) => {
  const params = new URLSearchParams(window.location.search)
  for (const key of KEYS) { params.delete(key) }
  for (const [key, value] of new URLSearchParams(query)) { params.append(key, value) }
  const search = params.toString()
  return window.location.pathname + (search ? "?" + search : "") + window.location.hash
}
state.apply = (push) => {
  const query = state.text(data.query)
  // An address without a view ("/", the page's first entry) shows the first view.
  const here = state.ours(window.location.search) || state.first
  if (here === state.ours(query)) { return }
  const url = state.url(query)
  if (push) {
    window.history.pushState({ghostpanel: query}, "", url)
  } else {
    window.history.replaceState({ghostpanel: query}, "", url)
  }
}
state.first = state.ours(state.text(data.query))
state.listener = () => {
  // The page's own first entry may carry no view ("/"): it is the view first shown.
  data.navigated = state.ours(window.location.search) || state.first
  data.pops = data.pops + 1
}
window.addEventListener("popstate", state.listener)
""".replace("@KEYS@", _KEYS_JS)
_QUERY = """
if (state.apply) { state.apply(true) }
"""
_REMOVE = """
if (state.listener) { window.removeEventListener("popstate", state.listener) }
"""

_component_class: Any = None


def _component() -> Any:
    """The ReactiveHTML class (made once, when first needed: it imports Panel)."""
    global _component_class
    if _component_class is None:
        import param
        from panel.reactive import ReactiveHTML

        class GhostPanelUrlLink(ReactiveHTML):
            """Mirrors ``query`` into the address; ``navigated``/``pops`` report
            Back and Forward."""

            query = param.String(default="", doc="The view's query, kernel side.")
            navigated = param.String(default="", doc="The query of the history entry "
                                                     "the browser went back/forth to.")
            pops = param.Integer(default=0, doc="Counts popstate events (a change "
                                                "even when the same entry comes back).")

            _template = '<div id="link" class="gp-url-link"></div>'
            _scripts: ClassVar[dict[str, str]] = {
                "render": _RENDER, "query": _QUERY, "remove": _REMOVE}

        _component_class = GhostPanelUrlLink
    return _component_class


class UrlLink:
    """Keeps the page's address in step with a view's query (see the module's text).

    Parameters
    ----------
    query
        The view's query now (``"env=prod&tab=containers"``).
    on_navigate
        Called with the query of the history entry the browser went to (Back, Forward),
        as :func:`view_query` writes it (only the keys of :data:`URL_KEYS`).

    Attributes
    ----------
    view
        The ipywidget to put in the page (it takes no room).

    Examples
    --------
    >>> link = UrlLink("env=prod&tab=containers", print)               # doctest: +SKIP
    >>> link.query = "env=prod&tab=logs"   # a new history entry         # doctest: +SKIP
    """

    def __init__(self, query: str, on_navigate: Callable[[str], None]) -> None:
        from ._panel import load_panel

        pn = load_panel()
        self._on_navigate = on_navigate
        self.component = _component()(query=query, height=0, width=0, margin=0,
                                      sizing_mode="fixed")
        self.component.param.watch(self._popped, "pops")
        self.view = pn.ipywidget(self.component)
        self.view.layout.height = "0px"
        self.view.layout.overflow = "hidden"
        self.view.add_class("gp-url-link")

    @property
    def query(self) -> str:
        """The query the address shows (or will, once the browser has the change)."""
        return str(self.component.query)

    @query.setter
    def query(self, value: str) -> None:
        self.component.query = value

    def _popped(self, event: Any) -> None:
        navigated = html.unescape(str(self.component.navigated))  # as the query is sent
        try:
            self._on_navigate(navigated)
        except Exception:  # a bug in the view must not break the page's link
            _log.exception("following the address %r failed", navigated)

    def navigated(self, query: str) -> None:
        """What the browser does on Back or Forward to an entry of ``query`` (tests
        without a browser call it)."""
        self.component.param.update(navigated=query, pops=self.component.pops + 1)

    def close(self) -> None:
        """Close the view."""
        self.view.close()
