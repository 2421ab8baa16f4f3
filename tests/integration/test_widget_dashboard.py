"""``OpsDashboard`` without a browser, against real Podman engines: rows opening the
container page, the view as a URL query (``from_query``, Back and Forward), home cards,
stale links.

A click on a name cell is what Panel makes of the browser's event
(``CellClickEvent``); Back and Forward are what the page's link reports
(``UrlLink.navigated``). tests/e2e/test_dashboard_links.py does the same in Chromium.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._container_page import ContainerPage
from ghostpanel_widgets._dashboard import OpsDashboard
from panel.models.tabulator import CellClickEvent

from ghostpanel_kernel.engine import Environment
from tests.integration.waiting import until

pytestmark = pytest.mark.integration

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


@pytest.fixture
async def dashboards() -> AsyncIterator[Callable[..., OpsDashboard]]:
    """``dashboards(*args, query=None, **kwargs)``: an OpsDashboard (``from_query`` with
    ``query``), no Audit tab; closed after the test, its lists' tasks ended."""
    made: list[OpsDashboard] = []

    def make(*args: Any, query: str | None = None, **kwargs: Any) -> OpsDashboard:
        kwargs.setdefault("audit", False)
        dashboard = (OpsDashboard.from_query(query, **kwargs) if query is not None
                     else OpsDashboard(*args, **kwargs))
        made.append(dashboard)
        return dashboard

    yield make
    for dashboard in made:
        page = dashboard.page
        dashboard.close()
        await dashboard.container_list.aclose()
        await dashboard.event_feed.aclose()
        if page is not None and getattr(page, "task", None) is not None:
            await page.task


def click_name(dashboard: OpsDashboard, name: str) -> None:
    """What a click on ``name``'s name cell becomes in the kernel."""
    frame = dashboard.container_list.frame
    position = list(frame["name"]).index(name)
    dashboard.container_list.table._process_event(
        CellClickEvent(model=None, column="name", row=position))


def showing_the_list(dashboard: OpsDashboard) -> bool:
    return (dashboard.page is None and dashboard.page_box.layout.display == "none"
            and dashboard.container_list.layout.display == "flex")


async def test_a_row_opens_its_page_in_place_and_back_returns(
        env: Environment, make_container, dashboards) -> None:
    web = await make_container(command=SLEEPER)
    await web.start()
    dashboard = dashboards([env])
    assert dashboard.tab == "Containers"  # one environment: no home to choose from
    assert dashboard.tabs.selected_index == dashboard.tab_names.index("Containers")
    await dashboard.container_list.ready()
    assert dashboard.query == f"env={env.name}&tab=containers"

    click_name(dashboard, web.name)
    page = dashboard.page
    assert isinstance(page, ContainerPage)
    assert page.container == web.name and page.tab == "Overview"
    assert dashboard.page_box.children == (page,)
    assert dashboard.container_list.layout.display == "none"
    assert (dashboard.container, dashboard.tab) == (web.name, "Containers")
    assert dashboard.query == f"env={env.name}&tab=overview&container={web.name}"

    page.tab = "Logs"  # a tab of the page is part of the view
    assert dashboard.container_tab == "Logs"
    assert dashboard.query == f"env={env.name}&tab=logs&container={web.name}"
    dashboard.container_tab = "Inspect"  # and the other way
    assert page.tab == "Inspect"

    page.back_button.click()
    assert showing_the_list(dashboard)
    assert dashboard.container == ""
    assert dashboard.query == f"env={env.name}&tab=containers"


async def test_the_address_opens_a_view_and_back_and_forward_move_it(
        env: Environment, make_container, dashboards) -> None:
    web = await make_container(command=SLEEPER)
    dashboard = dashboards(query=f"?env={env.name}&tab=logs&container={web.name}",
                           environments=[env])
    page = dashboard.page
    assert isinstance(page, ContainerPage)
    assert (page.container, page.tab) == (web.name, "Logs")
    assert dashboard.tab == "Containers"
    link = dashboard.url_link
    assert link is not None and link.query == f"env={env.name}&tab=logs&container={web.name}"
    assert link.view in dashboard.children

    dashboard.show_tab("Images")  # a change of view is a new query for the address
    assert link.query == f"env={env.name}&tab=images"  # what shows
    assert dashboard.page is not None  # the page waits in its tab
    dashboard.show_tab("Containers")
    assert link.query == f"env={env.name}&tab=logs&container={web.name}"
    dashboard.close_container()
    assert link.query == f"env={env.name}&tab=containers"
    dashboard.show_tab("Images")

    link.navigated(f"env={env.name}&tab=logs&container={web.name}")  # Back
    page = dashboard.page
    assert isinstance(page, ContainerPage) and page.tab == "Logs"
    assert (dashboard.tab, dashboard.container) == ("Containers", web.name)
    assert link.query == f"env={env.name}&tab=logs&container={web.name}"
    link.navigated(f"env={env.name}&tab=volumes")  # Forward, somewhere else
    assert showing_the_list(dashboard)
    assert dashboard.tab == "Volumes"
    assert dashboard.status.level != "warning"


async def test_a_stale_address_says_what_it_names_and_shows_the_rest(
        env: Environment, dashboards) -> None:
    dashboard = dashboards(query="env=mars&tab=stats", environments=[env])
    assert dashboard.environment == env.name
    assert dashboard.tab == "Stats"
    assert dashboard.status.level == "warning" and "'mars'" in dashboard.status.message

    dashboard.show_query("tab=bogus")
    assert "no tab 'bogus'" in dashboard.status.message and dashboard.tab == "Stats"

    dashboard.show_query(f"env={env.name}&container=gp-test-no-such-container")
    assert dashboard.container == "gp-test-no-such-container"  # until it was looked up
    await until(lambda: dashboard.container == "", what="back to the list")
    assert showing_the_list(dashboard)
    assert "No container 'gp-test-no-such-container'" in dashboard.status.message
    assert dashboard.query == f"env={env.name}&tab=containers"


async def test_moving_to_another_environment_closes_the_page(
        env: Environment, env_b: Environment, make_container, dashboards) -> None:
    web = await make_container(command=SLEEPER)
    dashboard = dashboards([env, env_b], environment=env.name)
    assert dashboard.tab == "Containers"  # an environment was named
    dashboard.open_container(web.name, tab="Files")
    assert isinstance(dashboard.page, ContainerPage)
    dashboard.environment = env_b.name
    assert showing_the_list(dashboard)
    assert dashboard.container_list.environments == [env_b]
    assert dashboard.query == f"env={env_b.name}&tab=containers"


async def test_home_first_among_several_environments_and_a_card_opens_one(
        env: Environment, env_b: Environment, dashboards) -> None:
    from ghostpanel_widgets._home import HomeView

    dashboard = dashboards([env, env_b])
    assert dashboard.tab_names[:4] == ("Home", "Containers", "Stacks", "Create")
    assert dashboard.tab == "Home" and dashboard.tabs.selected_index == 0
    home = dashboard.tab_widget("Home")
    assert isinstance(home, HomeView)
    assert dashboard.query == f"env={env.name}&tab=home"

    home.open_environment(env_b.name)  # what a click on its card does
    assert (dashboard.environment, dashboard.tab) == (env_b.name, "Containers")
    assert dashboard.container_list.environments == [env_b]
    assert dashboard.query == f"env={env_b.name}&tab=containers"
    dashboard.show_tab("Home")
    assert dashboard.tab_widget("Home") is home  # about every environment: kept


async def test_a_container_made_in_the_create_tab_opens_its_page(
        env: Environment, dashboards, track_container) -> None:
    from ghostpanel_widgets._create_form import CreateContainerForm

    from tests.integration.conftest import unique
    from tests.podman_service import BUSYBOX_REFERENCE

    dashboard = dashboards([env])
    form = dashboard.show_tab("Create")
    assert isinstance(form, CreateContainerForm)
    name = unique("gp-dash")
    track_container(name)
    await until(lambda: BUSYBOX_REFERENCE in form.fields["image"].options,
                what="the form lists the images")
    form.set_fields(image=BUSYBOX_REFERENCE, name=name, command="sleep 300")
    assert await form.create(start=False) is not None
    page = dashboard.page
    assert isinstance(page, ContainerPage) and page.container == name
    assert (dashboard.tab, dashboard.container) == ("Containers", name)


async def test_a_container_removed_from_its_page_leaves_the_list(
        env: Environment, make_container, dashboards) -> None:
    web = await make_container(command=SLEEPER)
    dashboard = dashboards([env])
    dashboard.open_container(web.name)
    page = dashboard.page
    assert isinstance(page, ContainerPage)
    await page.wait_idle()
    assert await page.act("remove")
    await until(lambda: dashboard.container == "", what="the list again")
    assert showing_the_list(dashboard)
    assert f"'{web.name}' was removed" in dashboard.status.message


async def test_app_templates_follow_the_environment_and_runbooks_stay(
        env: Environment, env_b: Environment, dashboards) -> None:
    from ghostpanel_widgets._runbook_launcher import RunbookLauncher
    from ghostpanel_widgets._template_gallery import TemplateGallery

    dashboard = dashboards(query=f"?env={env.name}&tab=templates",
                           environments=[env, env_b])
    tabs = dashboard.tab_names
    assert tabs.index("App templates") == tabs.index("Create") + 1
    assert tabs.index("Runbooks") == tabs.index("Events") + 1
    gallery = dashboard.tab_widget("App templates")  # the address opened it
    assert isinstance(gallery, TemplateGallery) and dashboard.tab == "App templates"
    assert gallery._environments == [env]
    assert dashboard.query == f"env={env.name}&tab=templates"

    launcher = dashboard.show_tab("Runbooks")
    assert isinstance(launcher, RunbookLauncher)
    assert dashboard.query == f"env={env.name}&tab=runbooks"
    dashboard.environment = env_b.name
    assert dashboard.tab_widget("Runbooks") is launcher  # runbooks are the machine's: kept
    moved = dashboard.show_tab("App templates")  # built again for the new environment
    assert isinstance(moved, TemplateGallery) and moved is not gallery
    assert moved._environments == [env_b]
