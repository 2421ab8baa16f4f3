"""A browser logs into the hub and reaches the gateway through the OAuth cookie flow.

Real parts only: ``ghostpanel hub`` (JupyterHub, configurable-http-proxy, the gateway
as a hub-managed service), Chromium driven by Playwright, and the session's Podman
engine registered as ``prod``. The user never handles a token: the hub's login form,
then the hub's OAuth authorisation, then the gateway's callback sets its cookie.
"""

from __future__ import annotations

import json
import time
import uuid

from playwright.sync_api import Browser

from tests.hub_process import start_hub
from tests.podman_service import PodmanService

PASSWORD = "demo-" + uuid.uuid4().hex[:12]


def test_a_browser_login_reaches_the_gateway_and_its_cookie_cannot_change_anything(
        browser: Browser, podman_engine: PodmanService) -> None:
    with start_hub(environments={"prod": podman_engine.url},
                   extra_env={"GHOSTPANEL_HUB_PASSWORD": PASSWORD}) as hub:
        hub.add_user("lena", groups=("blue",))
        hub.grant("lena", "operator", "prod")
        hub.wait_for_gateway()
        whoami = f"{hub.gateway_url}api/v1/whoami"
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(whoami)
            # No cookie yet: the gateway sends the browser to the hub, which asks for a
            # login first.
            page.wait_for_selector("input[name=username]", timeout=60_000)
            assert "/hub/login" in page.url, page.url
            page.fill("input[name=username]", "lena")
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(whoami, timeout=60_000)
            shown = json.loads(page.inner_text("body"))
            assert shown["name"] == "lena" and shown["teams"] == ["blue"], shown
            assert "lifecycle" in shown["permissions"]["prod"], shown
            cookies = {cookie["name"] for cookie in context.cookies()}
            assert any(name.startswith("ghostpanel") or "service" in name
                       for name in cookies), cookies

            # The cookie reads; it never changes anything (a page of another site
            # could make the browser send it): a POST with it alone is refused before
            # the engine is asked, even for an operator's own action.
            started = time.time()
            status = page.evaluate(
                """async (url) => (await fetch(url, {method: "POST"})).status""",
                f"{hub.gateway_url}env/prod/engine/v1.41/containers/nothing-here/stop")
            assert status == 401, status
            listed = page.evaluate(
                """async (url) => (await fetch(url)).status""",
                f"{hub.gateway_url}env/prod/engine/v1.41/containers/json")
            assert listed == 200
            assert time.time() - started < 30
        finally:
            context.close()
