"""A widget on an environment behind the gateway shows a refusal in its status line, in
the caller's terms ("your role on ENV does not allow X"), through the shared
``StatusLine.reporting`` every widget uses.
"""

from __future__ import annotations

import asyncio

import httpx
from ghostpanel_widgets import VolumeBrowser

from ghostpanel_kernel.engine import Environment
from tests.unit.test_gateway_client import GATEWAY, TOKEN, _problem


def _viewer_without_volumes(request: httpx.Request) -> httpx.Response:
    """A gateway where the caller is refused the volume list (it answers the version ping)."""
    if request.url.path.endswith("/engine/_ping"):
        return httpx.Response(200, text="OK", headers={"Api-Version": "1.41"})
    return _problem(403, "your role on prod does not allow read", environment="prod",
                    permission="read")


async def test_a_widget_shows_the_refusal_in_its_status_line() -> None:
    env = Environment(f"{GATEWAY}env/prod", name="prod", token=TOKEN,
                      transport=httpx.MockTransport(_viewer_without_volumes))
    browser = VolumeBrowser(env)
    try:
        assert browser.task is not None
        await asyncio.gather(browser.task, return_exceptions=True)
        assert browser.status.level == "error"
        assert browser.status.message == (
            "Listing volumes failed: your role on prod does not allow read "
            "(GET /v1.41/volumes)")
    finally:
        browser.close()
        await env.aclose()
