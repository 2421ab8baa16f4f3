"""``OpsDashboard``: GhostPanel's operations dashboard, the widgets of one environment in
tabs, with a picker to move to another.

Layout, top to bottom: the title and the environment picker, the dashboard's status line
(the engine's health, the demo containers), then the tabs: Home (a card per
environment), Containers (the list, or a container's page in its place), Stacks, Create,
App templates, Logs, Stats, Images, Volumes, Networks, Snapshots, GPUs, Events, Runbooks
(kept across environments), and Audit where there is
an audit log to show (hub admins; see ``docs/gateway-client.md``).
``voila_apps/ops_dashboard.ipynb`` shows it, and ``ghostpanel up`` serves that notebook
with Voila; the dashboard is an ordinary widget, so it works the same in JupyterLab, and
headless (tests drive it without a browser).

How it is put together:

- the container list and the event feed follow the environment from the start (their
  engines' events keep them current); the picker moves both to another environment
  with ``set_environments``;
- the other tabs are built when first shown, and again when shown after the
  environment changed: an image browser the operator never opens costs nothing. Home
  and Stacks are about every environment: built once, kept;
- a click on a container's name (or Open) shows its page (``ContainerPage``) in place of
  the list; its "\u2190 Containers" button, or :meth:`OpsDashboard.close_container`,
  brings the list back. A home card's click moves the dashboard to its environment; a
  container made in the Create tab opens its page;
- the traits ``environment``, ``tab``, ``container`` and ``container_tab`` are the
  view, and ``query`` says it as a URL query (``env=prod&tab=logs&container=web``,
  :mod:`._url_state`). With ``link_url`` (what :meth:`OpsDashboard.from_query` does for
  Voila) the page's address follows the view and the browser's Back and Forward move
  it;
- the Logs and Stats tabs follow the containers ticked in the Containers tab, or else
  the running ones (the first six by name). Their toolbar says which, and Reload
  follows the ticked ones after the ticks changed;
- when the environment has no container at all, the Containers tab says so and offers
  one button that starts the demo containers (two busybox web servers and a log
  writer, :mod:`ghostpanel_kernel.demo`);
- the container list's health (engine unreachable, back again) is repeated in the
  dashboard's own status line, so that it shows whichever tab is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Int, TraitError, Unicode, observe, validate

from ghostpanel_kernel.engine import Environment, NotFound

from ._base import close_widget_tree
from ._container_list import ContainerList
from ._event_feed import EventFeed
from ._live_table import running_loop
from ._status import StatusLine, describe_error
from ._url_state import ViewState, parse_query, view_query

if TYPE_CHECKING:
    from ghostpanel_kernel.engine import Container
    from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec
    from ghostpanel_kernel.gateway._audit_source import AuditSource

    from ._environment_picker import EnvironmentPicker
    from ._url_state import UrlLink

__all__ = ["AUDIT_TAB", "PAGE_TABS", "TABS", "OpsDashboard", "demo_links_html"]

_log = logging.getLogger("ghostpanel_widgets")

#: The tabs, in order.
TABS = ("Home", "Containers", "Stacks", "Create", "App templates", "Logs", "Stats", "Images",
        "Volumes", "Networks", "Snapshots", "GPUs", "Events", "Runbooks")
#: The last tab, only where an audit log is shown (:func:`audit_source_for_session`): it
#: is about every environment, so it is built once and kept when the environment changes.
AUDIT_TAB = "Audit"
#: The tabs of a container's page (``ContainerPage.tab``), as ``container_tab`` takes them.
PAGE_TABS = ("Overview", "Logs", "Stats", "Exec", "Files", "Inspect")
#: The tabs built when first shown (and again after the environment changed).
_LAZY = ("Create", "App templates", "Logs", "Stats", "Images", "Volumes", "Networks",
         "Snapshots", "GPUs")
#: The tabs about every environment: built when first shown, then kept.
_ONCE = ("Home", "Stacks", "Runbooks")
#: The short names of tabs in the page's address where the lowercase title will not do.
_URL_NAMES = {"App templates": "templates"}


def _url_name(tab: str) -> str:
    """The name of ``tab`` in the page's address (lowercase, no spaces)."""
    return _URL_NAMES.get(tab, tab.lower())
#: The most containers the Logs and Stats tabs follow when none is ticked.
_DEFAULT_FOLLOWED = 6


def demo_links_html(containers: Sequence[Container]) -> str:
    """Links to the demo web servers' published ports, for the status area.

    Examples
    --------
    >>> from ghostpanel_kernel.engine import Container
    >>> web = Container(None, {"Id": "a" * 64, "Name": "/ghostpanel-demo-web-1",
    ...                        "NetworkSettings": {"Ports": {"8080/tcp": [
    ...                            {"HostIp": "127.0.0.1", "HostPort": "40001"}]}}})
    >>> demo_links_html([web])
    '<a href="http://127.0.0.1:40001/" target="_blank">ghostpanel-demo-web-1</a>'
    """
    links = []
    for container in containers:
        for port in container.ports:
            address, arrow, _ = port.partition("->")
            if arrow and ":" in address:
                host, _, number = address.rpartition(":")
                host = "127.0.0.1" if host in ("", "0.0.0.0") else host
                url = f"http://{host}:{number}/"
                links.append(f'<a href="{html.escape(url)}" target="_blank">'
                             f"{html.escape(container.name)}</a>")
    return ", ".join(links)


class OpsDashboard(ipywidgets.VBox):
    """Every environment at a glance, and the containers, stacks, logs, stats, images,
    volumes, networks and events of one of them, in tabs, with a picker for the
    environment.

    Parameters
    ----------
    environments
        The environments to offer: :class:`~ghostpanel_kernel.engine.Environment` or
        ``EnvironmentSpec`` objects (a dropdown picks among them). None: the registry's
        environments, through an :class:`EnvironmentPicker` (the Voila dashboard).
    environment
        The name of the environment shown first. Default: the first one given, or the
        registry's default environment. An unknown name is said in the status line and
        the first environment shown.
    registry
        The registry the picker reads when ``environments`` is None; the default one
        when None.
    tab
        The tab shown first. Default: Home when there are several environments and none
        was named, else Containers.
    audit
        The source of the Audit tab's entries (an ``AuditSource``), ``False`` for no
        Audit tab, or None to decide: a tab for hub admins in a hub session, and
        outside a hub when the local store holds audit entries
        (``ghostpanel_kernel.gateway._audit_source.audit_source_for_session``).
    stats_interval
        Seconds between two CPU/memory samples (the container list's columns, the Stats
        tab and a container page's).
    link_url
        Keep the page's address in step with the view (``?env=...&tab=...``), and follow
        the browser's Back and Forward: for a dashboard that is the page (Voila), not a
        notebook cell. :meth:`from_query` turns it on.

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> OpsDashboard([connect("unix:///run/podman/podman.sock", name="laptop")])
    ...                                                                # doctest: +SKIP
    >>> OpsDashboard(environment="us-east-1")       # from the registry  # doctest: +SKIP
    >>> OpsDashboard.from_query("env=prod&tab=logs&container=web")      # doctest: +SKIP
    """

    environment = Unicode("", help="The name of the environment shown.").tag(sync=True)
    tab = Unicode(TABS[1], help=f"The tab shown: one of {', '.join(TABS)}.").tag(sync=True)
    container = Unicode("", help="The container whose page the Containers tab shows "
                                 "('' for the list).").tag(sync=True)
    container_tab = Unicode(PAGE_TABS[0], help="The tab of the container's page: one of "
                                               f"{', '.join(PAGE_TABS)}.").tag(sync=True)
    query = Unicode("", read_only=True, help="The view as a URL query: "
                                             "env=NAME&tab=TAB&container=NAME.").tag(sync=True)
    container_count = Int(-1, read_only=True,
                          help="Containers on the environment as last listed; -1 until "
                               "it has been listed.").tag(sync=True)

    def __init__(self, environments: Environment | EnvironmentSpec
                 | Iterable[Environment | EnvironmentSpec] | None = None, *,
                 environment: str | None = None,
                 registry: EnvironmentRegistry | None = None, tab: str | None = None,
                 stats_interval: float = 2.0, audit: AuditSource | bool | None = None,
                 link_url: bool = False, **kwargs: Any) -> None:
        self._stats_interval = stats_interval
        if audit is None:
            from ghostpanel_kernel.gateway._audit_source import audit_source_for_session

            audit = audit_source_for_session()
        self._audit_source: AuditSource | None = None if isinstance(audit, bool) else audit
        #: The tabs this dashboard shows: TABS, and the Audit tab when there is a log.
        self.tab_names: tuple[str, ...] = TABS + (
            (AUDIT_TAB,) if self._audit_source is not None else ())
        self._choices: dict[str, Environment | EnvironmentSpec] = {}
        self._opened: Environment | None = None  # opened here from a spec: closed here
        self._env: Environment | None = None
        self._built: dict[str, tuple[str, tuple[str, ...]]] = {}  # tab -> (env, targets)
        self._built_once: set[str] = set()  # Home, Stacks, Audit: kept across environments
        self._audit_built = False  # not forgotten when the environment changes
        self._tab_widgets: dict[str, ipywidgets.Widget] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._demo_task: asyncio.Task[Any] | None = None
        self._listed_name = ""  # the environment the container list has listed once
        self._page: ipywidgets.Widget | None = None  # the open container's page
        self._view_hold = 0  # > 0 while one change of view is being made
        self._link: UrlLink | None = None
        self._closed = False

        self.status = StatusLine()
        self.links = ipywidgets.HTML()  # the demo web servers, once started
        self.title = ipywidgets.HTML(
            '<h2 style="margin: 4px 0">GhostPanel</h2>',
            layout=ipywidgets.Layout(margin="0 24px 0 0"))
        self.picker: EnvironmentPicker | ipywidgets.Dropdown
        if environments is None:
            from ._environment_picker import EnvironmentPicker

            self.picker = EnvironmentPicker(
                registry, multiple=False, value=[environment] if environment else None)
        else:
            self._choices = self._given(environments)
            names = list(self._choices)
            self.picker = ipywidgets.Dropdown(options=names, description="environment",
                                              style={"description_width": "initial"})
        self.demo_button = ipywidgets.Button(
            description="Start demo containers", icon="rocket", button_style="success",
            tooltip="Two busybox web servers and a log writer, labelled "
                    "io.ghostpanel.demo=true", layout=ipywidgets.Layout(width="auto"))
        self.empty_state = ipywidgets.VBox(
            [ipywidgets.HTML(), self.demo_button],
            layout=ipywidgets.Layout(display="none", padding="12px", margin="8px 0",
                                     border="1px dashed #999999"))
        self.empty_state.add_class("gp-empty-state")
        #: Where a container's page is shown, in place of the list.
        self.page_box = ipywidgets.VBox(layout=ipywidgets.Layout(display="none"))
        self.page_box.add_class("gp-container-page-box")

        first = self._first_environment(environment)
        self._env = first
        self.container_list = ContainerList(first, stats_interval=stats_interval)
        self.event_feed = EventFeed(first)
        self._tab_widgets["Containers"] = ipywidgets.VBox(
            [self.empty_state, self.container_list, self.page_box])
        self._tab_widgets["Events"] = self.event_feed
        for name in self.tab_names:
            self._tab_widgets.setdefault(name, ipywidgets.VBox())
        self.tabs = ipywidgets.Tab(children=[self._tab_widgets[name] for name in self.tab_names],
                                   titles=list(self.tab_names))

        super().__init__(**kwargs)
        self.add_class("gp-ops-dashboard")
        self.set_trait("environment", first.name)
        self.demo_button.on_click(lambda _: self.start_demo())
        self.tabs.observe(self._tab_selected, "selected_index")
        self.container_list.observe(lambda _: self._update_empty_state(), "revision")
        self.container_list.status.observe(self._container_status_changed, "message")
        self.container_list.on_open(self._row_opened)
        if isinstance(self.picker, ipywidgets.Dropdown):
            self.picker.value = first.name
            self.picker.observe(lambda change: self._picked(change["new"]), "value")
        else:
            self.picker.observe(self._registry_picked, "value")
        header = ipywidgets.HBox([self.title, self.picker],
                                 layout=ipywidgets.Layout(align_items="center",
                                                          flex_flow="row wrap"))
        self.children = [header, self.status, self.links, self.tabs]
        self._show_first_tab(tab, named=environment is not None)
        self._watch_listing()
        self._view_changed()
        if link_url:
            self.link_url()

    def link_url(self) -> UrlLink:
        """Keep the page's address in step with the view from now on (``link_url``).

        Made once the first view is settled, so that the browser's view of the link
        starts from it."""
        if self._link is None:
            from ._url_state import UrlLink

            self._link = UrlLink(self.query, self.show_query)
            self.children = [*self.children, self._link.view]
        return self._link

    @classmethod
    def from_query(cls, query: str | Mapping[str, Any] | None,
                   **kwargs: Any) -> OpsDashboard:
        """A dashboard showing the view a URL query names, its address kept in step.

        Parameters
        ----------
        query
            ``"env=prod&tab=logs&container=web"`` (a leading ``?`` allowed) or a mapping
            of the query's values (Voila's ``QUERY_STRING``, Tornado's arguments). With
            ``container``, ``tab`` names the container page's tab (``overview``,
            ``logs``, ``stats``, ``exec``, ``files``, ``inspect``); otherwise a
            dashboard tab, lowercase. What names nothing known is said in the status
            line, and the rest shown.
        **kwargs
            As :class:`OpsDashboard` takes them; ``environment`` is the one shown when
            the query names none, and ``link_url`` is True unless given.

        Examples
        --------
        >>> import os
        >>> OpsDashboard.from_query(os.environ.get("QUERY_STRING", ""),
        ...                         environment=os.environ.get("GHOSTPANEL_ENV"))
        ...                                                            # doctest: +SKIP
        """
        state = parse_query(query)
        link = kwargs.pop("link_url", True)
        if state.environment:
            kwargs["environment"] = state.environment
        lower = {_url_name(name): name for name in (*TABS, AUDIT_TAB)}
        if state.container:
            kwargs.setdefault("tab", "Containers")
        elif state.tab in lower:
            kwargs.setdefault("tab", lower[state.tab])
        dashboard = cls(**kwargs)
        # The environment is the constructor's business (and its status line's).
        dashboard.show_query(ViewState("", state.tab, state.container))
        if link:
            dashboard.link_url()
        return dashboard

    # -- environments
    @staticmethod
    def _given(environments: Environment | EnvironmentSpec
               | Iterable[Environment | EnvironmentSpec]) -> dict[str,
                                                             Environment | EnvironmentSpec]:
        from ghostpanel_kernel.environments import EnvironmentSpec

        items = ([environments] if isinstance(environments, (Environment, EnvironmentSpec))
                 else list(environments))
        choices: dict[str, Environment | EnvironmentSpec] = {}
        for item in items:
            if not isinstance(item, (Environment, EnvironmentSpec)):
                raise TypeError("environments must be Environment or EnvironmentSpec "
                                f"objects, not {type(item).__name__}")
            if item.name in choices:
                raise ValueError(f"two environments are named {item.name!r}")
            choices[item.name] = item
        if not choices:
            raise ValueError("give at least one environment (or None for the registry's)")
        return choices

    def _first_environment(self, wanted: str | None) -> Environment:
        if self._choices:
            name = wanted if wanted is not None else next(iter(self._choices))
            if name not in self._choices:  # a stale link: said, and the first one shown
                name = next(iter(self._choices))
                self.status.warning(f"No environment {wanted!r}: showing {name!r}.")
            return self._open(self._choices[name])
        assert not isinstance(self.picker, ipywidgets.Dropdown)
        specs = self.picker.specs
        if not specs:
            from ghostpanel_kernel.engine import EnvironmentNotFound

            raise EnvironmentNotFound(
                wanted, known=[spec.name for spec in self.picker.options],
                hint="Register an engine with `ghostpanel env add NAME URL`, or start one")
        if wanted is not None and specs[0].name != wanted:
            self.status.warning(f"No environment {wanted!r}: showing {specs[0].name!r}.")
        return self._open(specs[0])

    def _open(self, choice: Environment | EnvironmentSpec) -> Environment:
        if isinstance(choice, Environment):
            return choice
        environment = choice.open()
        self._opened = environment
        return environment

    @property
    def env(self) -> Environment:
        """The environment shown."""
        assert self._env is not None
        return self._env

    @validate("tab")
    def _valid_tab(self, proposal: dict[str, Any]) -> str:
        tab = str(proposal["value"])
        if tab not in self.tab_names:
            raise TraitError(f"tab must be one of {', '.join(self.tab_names)}, not {tab!r}")
        return tab

    @validate("environment")
    def _valid_environment(self, proposal: dict[str, Any]) -> str:
        name = str(proposal["value"])
        known = (list(self._choices) if self._choices else
                 [spec.name for spec in getattr(self.picker, "options", [])])
        if self._env is not None and name != self._env.name and name not in known:
            raise TraitError(f"no environment {name!r} (known: {', '.join(known)})")
        return name

    @observe("environment")
    def _environment_changed(self, change: dict[str, Any]) -> None:
        if self._env is None or change["new"] == self._env.name:
            return
        if isinstance(self.picker, ipywidgets.Dropdown):
            self.picker.value = change["new"]
        else:
            self.picker.value = (change["new"],)

    def _registry_picked(self, change: dict[str, Any]) -> None:
        names = change["new"]
        if names:
            self._picked(names[0])

    def _picked(self, name: str) -> None:
        """Show environment ``name``: move the live views, forget the lazy ones."""
        if self._closed or self._env is None or name == self._env.name:
            return
        if self._choices:
            choice: Environment | EnvironmentSpec = self._choices[name]
        else:
            assert not isinstance(self.picker, ipywidgets.Dropdown)
            choice = next(spec for spec in self.picker.specs if spec.name == name)
        previous = self._opened
        self._opened = None
        with self._one_view_change():
            self.container = ""  # a page is of the environment left
            self._env = self._open(choice)
            self.set_trait("environment", name)
            self._switch_environment()
        if previous is not None and running_loop("Closing the environment") is not None:
            self._spawn(previous.aclose())

    def _switch_environment(self) -> None:
        """Move the live views to the environment now shown, forget the lazy ones."""
        self.set_trait("container_count", -1)
        self.status.clear()
        self.links.value = ""
        self.container_list.set_environments(self.env)
        self.event_feed.set_environments(self.env)
        self._built.clear()  # the lazy tabs are rebuilt for the new one when shown
        for tab in _LAZY:
            self._replace_tab(tab, ipywidgets.VBox())
        self._update_empty_state()
        self._watch_listing()
        self._build(self.tab)

    # -- tabs
    def show_tab(self, name: str) -> ipywidgets.Widget:
        """Open the tab ``name`` (building its view if needed); the view."""
        if self.tab == name:
            self._build(name)
        else:
            self.tab = name
        return self._tab_widgets[name]

    def tab_widget(self, name: str) -> ipywidgets.Widget:
        """The view in tab ``name`` as it is now (an empty box until first shown)."""
        if name not in self.tab_names:
            raise KeyError(f"no tab {name!r}: the tabs are {', '.join(self.tab_names)}")
        return self._tab_widgets[name]

    @observe("tab")
    def _tab_changed(self, change: dict[str, Any]) -> None:
        index = self.tab_names.index(change["new"])
        if self.tabs.selected_index != index:
            self.tabs.selected_index = index
        self._build(change["new"])
        self._view_changed()

    def _show_first_tab(self, tab: str | None, *, named: bool) -> None:
        """Open the first tab: ``tab``, else Home for a choice among several
        environments, else Containers."""
        if tab is not None and tab not in self.tab_names:
            self.status.warning(f"No tab {tab!r}: the tabs are {', '.join(self.tab_names)}.")
            tab = None
        if tab is None:
            offered = (len(self._choices) if self._choices
                       else len(getattr(self.picker, "options", ())))
            tab = "Home" if offered > 1 and not named else "Containers"
        if self.tab == tab:  # the trait's default: no change to observe
            self.tabs.selected_index = self.tab_names.index(tab)
            self._build(tab)
        else:
            self.tab = tab

    def _tab_selected(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.tab = self.tab_names[change["new"]]

    def _replace_tab(self, name: str, widget: ipywidgets.Widget) -> None:
        old = self._tab_widgets.get(name)
        self._tab_widgets[name] = widget
        children = list(self.tabs.children)
        children[self.tab_names.index(name)] = widget
        self.tabs.children = children
        if old is not None and old is not widget:
            close_widget_tree(old)

    def _build(self, name: str, *, force: bool = False) -> None:
        """Build (or rebuild) the lazy tab ``name`` for the environment shown."""
        if self._closed:
            return
        if name == AUDIT_TAB:
            self._build_audit()
            return
        if name in _ONCE:
            self._build_once(name)
            return
        if name not in _LAZY:
            return
        if not force and name in self._built:  # forgotten when the environment changes
            return
        targets = self.followed() if name in ("Logs", "Stats") else ()
        self._built[name] = (self.env.name, tuple(targets))
        try:
            widget = self._make(name, targets)
        except Exception as error:  # shown in the tab: the dashboard stays usable
            _log.exception("building the %s tab failed", name)
            widget = StatusLine(f"Cannot show {name.lower()}: {describe_error(error)}",
                                "error")
        self._replace_tab(name, widget)

    def _build_once(self, name: str) -> None:
        """Build Home or Stacks, once: they show every environment."""
        if name in self._built_once:
            return
        self._built_once.add(name)
        environments: list[Environment | EnvironmentSpec] | None = (
            list(self._choices.values()) if self._choices else None)
        registry = None if self._choices else getattr(self.picker, "registry", None)
        try:
            widget: ipywidgets.Widget
            if name == "Runbooks":
                from ._runbook_launcher import RunbookLauncher

                # Runbooks run on the machine, not in one environment: kept as they are.
                widget = RunbookLauncher()
            elif name == "Home":
                from ._home import HomeView

                home = HomeView(environments, registry=registry)
                home.on_open(self._home_opened)
                widget = home
            else:
                from ._stacks import StacksView

                widget = StacksView(environments, registry=registry)
        except Exception as error:  # shown in the tab: the dashboard stays usable
            _log.exception("building the %s tab failed", name)
            widget = StatusLine(f"Cannot show {name.lower()}: {describe_error(error)}",
                                "error")
        self._replace_tab(name, widget)

    def _build_audit(self) -> None:
        """Build the Audit tab once (it shows every environment's entries)."""
        if self._audit_source is None or self._audit_built:
            return
        self._audit_built = True
        from ._audit_log import AuditLog

        try:
            widget: ipywidgets.Widget = AuditLog(self._audit_source)
        except Exception as error:  # shown in the tab: the dashboard stays usable
            _log.exception("building the Audit tab failed")
            widget = StatusLine(f"Cannot show the audit log: {describe_error(error)}",
                                "error")
        self._replace_tab(AUDIT_TAB, widget)

    def _make(self, name: str, targets: Sequence[str]) -> ipywidgets.Widget:
        from ._image_browser import ImageBrowser
        from ._network_browser import NetworkBrowser
        from ._volume_browser import VolumeBrowser

        env = self.env
        if name == "Create":
            from ._create_form import CreateContainerForm

            form = CreateContainerForm(env)
            form.on_created(lambda container: self.open_container(container.name))
            return form
        if name == "App templates":
            from ._template_gallery import TemplateGallery

            return TemplateGallery([env])
        if name == "Images":
            return ImageBrowser(env)
        if name == "Volumes":
            return VolumeBrowser(env)
        if name == "Networks":
            return NetworkBrowser(env)
        if name == "Snapshots":
            from ._snapshot_picker import SnapshotPicker

            return SnapshotPicker(env)  # the operator picks the volume or container
        if name == "GPUs":
            from ._gpu_allocator import GpuAllocator

            return GpuAllocator(env)
        reload_button = ipywidgets.Button(
            description="Reload", icon="sync",
            tooltip="Follow the containers ticked in the Containers tab (or the running "
                    "ones)")
        reload_button.on_click(lambda _: self._build(name, force=True))
        what = "logs" if name == "Logs" else "stats"
        if targets:
            shown = ", ".join(f"<code>{html.escape(t)}</code>" for t in targets)
            note = (f"{what.capitalize()} of {shown}. Tick containers in the Containers tab "
                    "and press Reload to follow others.")
        else:
            note = ("No running container to follow. Start one in the Containers tab (or "
                    "the demo containers), then press Reload.")
        toolbar = ipywidgets.HBox([reload_button, ipywidgets.HTML(note)],
                                  layout=ipywidgets.Layout(align_items="center"))
        if not targets:
            return ipywidgets.VBox([toolbar])
        if name == "Logs":
            from ._log_stream import LogStream

            view: ipywidgets.Widget = LogStream(env, list(targets), tail=100)
        else:
            from ._stats_monitor import StatsMonitor

            view = StatsMonitor(env, list(targets), interval=self._stats_interval)
        return ipywidgets.VBox([toolbar, view])

    def followed(self) -> list[str]:
        """The containers the Logs and Stats tabs follow: the ticked ones of this
        environment, else the running ones (at most six, by name)."""
        ticked = [name for environment, name in self.container_list.selected
                  if environment == self.env.name]
        if ticked:
            return ticked
        data = self.container_list.data
        if not len(data):
            return []
        running = data[(data["state"] == "running") & (data["environment"] == self.env.name)]
        return sorted(running["name"])[:_DEFAULT_FOLLOWED]

    # -- a home card, a row or a new container opens a view
    def _home_opened(self, name: str) -> None:
        """A home card was clicked: that environment's containers."""
        with self._one_view_change():
            try:
                self.environment = name
            except TraitError as error:
                self.status.error(f"Cannot open {name!r}: {error}")
                return
            self.container = ""
            self.tab = "Containers"

    def _row_opened(self, environment: str, name: str) -> None:
        if environment == self.env.name:
            self.open_container(name)

    # -- the container page
    def open_container(self, name: str, *, tab: str = PAGE_TABS[0]) -> None:
        """Show container ``name``'s page (its tab ``tab``) in the Containers tab."""
        with self._one_view_change():
            self.container_tab = tab
            self.container = name
            self.tab = "Containers"

    def close_container(self) -> None:
        """Close the container's page: the list again (its "\u2190 Containers")."""
        self.container = ""

    @property
    def page(self) -> ipywidgets.Widget | None:
        """The open container's page (a ``ContainerPage``), or None."""
        return self._page

    @validate("container_tab")
    def _valid_container_tab(self, proposal: dict[str, Any]) -> str:
        tab = str(proposal["value"])
        if tab not in PAGE_TABS:
            raise TraitError(f"container_tab must be one of {', '.join(PAGE_TABS)}, "
                             f"not {tab!r}")
        return tab

    @observe("container")
    def _container_changed(self, change: dict[str, Any]) -> None:
        self._close_page()
        if change["new"] and not self._closed:
            self._open_page(change["new"])
        shown = self._page is not None
        self.page_box.layout.display = "flex" if shown else "none"
        self.container_list.layout.display = "none" if shown else "flex"
        self._update_empty_state()
        self._view_changed()

    @observe("container_tab")
    def _container_tab_changed(self, change: dict[str, Any]) -> None:
        page = self._page
        if page is not None and getattr(page, "tab", change["new"]) != change["new"]:
            try:
                page.tab = change["new"]
            except TraitError as error:
                self.status.warning(str(error))
        self._view_changed()

    def _open_page(self, name: str) -> None:
        env = self.env
        try:
            from ._container_page import ContainerPage

            page: ipywidgets.Widget = ContainerPage(env, name, tab=self.container_tab,
                                                    stats_interval=self._stats_interval)
            page.on_back(self.close_container)
            page.observe(self._page_tab_changed, "tab")
            page.observe(self._page_removed, "removed")
        except Exception as error:  # shown in place of the page: the list is a click away
            _log.exception("opening the page of container %s failed", name)
            back = ipywidgets.Button(description="\u2190 Containers")
            back.on_click(lambda _: self.close_container())
            page = ipywidgets.VBox([back, StatusLine(
                f"Cannot show container {name!r}: {describe_error(error)}", "error")])
        self._page = page
        self.page_box.children = [page]
        if running_loop("Opening a container") is not None:
            self._spawn(self._check_container(env, name))

    def _page_removed(self, change: dict[str, Any]) -> None:
        """The container was removed (its page's Remove, or elsewhere): the list."""
        name = self.container
        if change["new"] and name:
            self.close_container()
            self.status.info(f"Container {name!r} was removed.")

    def _page_tab_changed(self, change: dict[str, Any]) -> None:
        if change["new"] in PAGE_TABS:
            self.container_tab = change["new"]

    async def _check_container(self, env: Environment, name: str) -> None:
        """Back to the list, saying why, when ``name`` is not on ``env`` (a stale link)."""
        try:
            await env.containers.get(name)
        except NotFound:
            if self.container == name and self._env is env:
                with self._one_view_change():
                    self.container = ""
                self.status.warning(f"No container {name!r} on {env.name}: showing its "
                                    "containers.")
        except Exception:  # unreachable and such: the page and the list say so
            _log.debug("checking container %s failed", name, exc_info=True)

    def _close_page(self) -> None:
        page, self._page = self._page, None
        if page is not None:
            self.page_box.children = []
            close_widget_tree(page)

    # -- the view, as a URL query
    @contextlib.contextmanager
    def _one_view_change(self) -> Iterator[None]:
        """Make several trait changes one change of view (one history entry)."""
        self._view_hold += 1
        try:
            yield
        finally:
            self._view_hold -= 1
            self._view_changed()

    def _view_changed(self) -> None:
        if self._view_hold or self._closed or self._env is None:
            return
        query = view_query(self.view_state)
        self.set_trait("query", query)
        if self._link is not None:
            self._link.query = query

    @property
    def view_state(self) -> ViewState:
        """The view shown, as :func:`~._url_state.parse_query` reads a URL."""
        if self.container and self.tab == "Containers":  # what shows: the page
            return ViewState(self.environment, self.container_tab.lower(), self.container)
        return ViewState(self.environment, _url_name(self.tab))

    @property
    def url_link(self) -> UrlLink | None:
        """What keeps the page's address in step (``link_url``), or None."""
        return self._link

    def show_query(self, query: str | Mapping[str, Any] | ViewState) -> None:
        """Show the view a URL query names (the browser's Back and Forward come here).

        What names nothing known (an environment, a tab) is said in the status line and
        the rest shown; a container that is not there is said once it was looked up.
        """
        state = query if isinstance(query, ViewState) else parse_query(query)
        problems: list[str] = []
        with self._one_view_change():
            if state.environment and state.environment != self.environment:
                try:
                    self.environment = state.environment
                except TraitError:
                    problems.append(f"no environment {state.environment!r}")
            if state.container:
                page_tabs = {name.lower(): name for name in PAGE_TABS}
                page_tab = page_tabs.get(state.tab or "overview")
                if page_tab is None and state.tab != "containers":
                    problems.append(f"no tab {state.tab!r} on a container's page")
                self.open_container(state.container, tab=page_tab or PAGE_TABS[0])
            else:
                self.container = ""
                tabs = {_url_name(name): name for name in self.tab_names}
                if state.tab in tabs:
                    self.tab = tabs[state.tab]
                elif state.tab:
                    problems.append(f"no tab {state.tab!r}")
        if problems:
            self.status.warning(f"The address names {' and '.join(problems)}: showing "
                                f"{self.environment}'s {self.tab.lower()}.")

    # -- the empty state and the demo containers
    def _watch_listing(self) -> None:
        """Note when the container list has listed the environment shown (or found it
        unreachable): before that, no containers does not mean an empty engine."""
        if running_loop("Listing containers") is None:
            return
        watched = self.env.name

        async def wait_for_listing() -> None:
            await self.container_list.ready(timeout=None)
            if self._env is not None and self._env.name == watched:
                self._listed_name = watched
                self._update_empty_state()

        self._spawn(wait_for_listing())

    def _listed(self) -> bool:
        return self._listed_name == self.env.name

    def _update_empty_state(self) -> None:
        if self._closed or self._env is None:
            return
        name = self.env.name
        if not self._listed() or self.container_list.health.is_down(name):
            self.empty_state.layout.display = "none"
            return
        count = int((self.container_list.data["environment"] == name).sum())
        self.set_trait("container_count", count)
        empty = count == 0 and self._page is None  # a page open is in the list's place
        self.empty_state.layout.display = "flex" if empty else "none"
        if empty:
            self.empty_state.children[0].value = (
                f'<div style="font-size: 1.2em"><b>No containers on '
                f"{html.escape(name)} yet.</b></div><p>Start a few demo containers to try "
                "GhostPanel: two busybox web servers (published on 127.0.0.1) and a log "
                "writer. They carry the label <code>io.ghostpanel.demo=true</code>; "
                "remove them like any other container.</p>")

    def start_demo(self) -> asyncio.Task[Any] | None:
        """Start the demo containers on the environment shown (the button's action)."""
        if self._demo_task is not None and not self._demo_task.done():
            self.status.warning("The demo containers are starting: wait a moment.")
            return None
        if running_loop("Starting the demo containers", self.status) is None:
            return None
        self.demo_button.disabled = True
        self._demo_task = self._spawn(self._start_demo(self.env))
        return self._demo_task

    async def _start_demo(self, env: Environment) -> None:
        from ghostpanel_kernel.demo import start_demo_containers

        try:
            self.status.info(f"Starting the demo containers on {env.name}...")
            with self.status.reporting("Starting the demo containers"):
                started = await start_demo_containers(env)
                links = demo_links_html(started)
                self.status.success(f"Started {len(started)} demo containers on "
                                    f"{env.name}: {', '.join(c.name for c in started)}.")
                if links:  # the status line escapes text: the links go below it
                    self.links.value = f"Demo web servers: {links}"
                await self.container_list.refresh()
        finally:
            self.demo_button.disabled = False

    # -- the engine's health, shown on every tab
    def _container_status_changed(self, change: dict[str, Any]) -> None:
        status = self.container_list.status
        if status.level == "error" and "unreachable" in status.message:
            self.status.error(status.message)
        elif status.level == "success" and " is back" in status.message:
            self.status.success(status.message)
            self._refresh_open_tab()
        self._update_empty_state()

    def _refresh_open_tab(self) -> None:
        """List the open browser's objects again (its own status line reports it)."""
        widget = self._tab_widgets.get(self.tab)
        refresh: Callable[[], Awaitable[Any]] | None = getattr(widget, "refresh", None)
        if self.tab in ("Images", "Volumes", "Networks") and callable(refresh):
            self._spawn(refresh())

    # -- lifecycle
    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Stop every view and task, close the environment opened here."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if not hasattr(self, "tabs"):
            # __init__ failed part way (no environment at all, say): ipywidgets' __del__
            # still calls close(); close what was made and nothing else.
            for name in ("picker", "status", "links", "title", "demo_button", "empty_state",
                         "page_box"):
                part = getattr(self, name, None)
                if part is not None:
                    part.close()
            super().close()
            return
        for task in list(self._tasks):
            task.cancel()
        self._close_page()
        for widget in self._tab_widgets.values():
            close_widget_tree(widget)
        for widget in (self.picker, self.status, self.links, self.title, self.demo_button,
                       self.empty_state, self.page_box, self.tabs):
            widget.close()
        if self._link is not None:
            self._link.close()
        opened, self._opened = self._opened, None
        if opened is not None:
            loop = running_loop("Closing the environment")
            if loop is not None:
                loop.create_task(opened.aclose())
        audit, self._audit_source = self._audit_source, None
        if audit is not None and not self._audit_built:
            # Never handed to an AuditLog (which closes its source): close it here.
            loop = running_loop("Closing the audit source")
            if loop is not None:
                loop.create_task(audit.aclose())
        super().close()
