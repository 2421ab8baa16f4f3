"""An ``/api/v1`` app over a FakeEngine, reached with httpx through ASGI (no sockets).

For the unit tests of the API's routes: ``async with api_client(engine) as http``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings
from tests.unit.fake_engine import FakeEngine, env_for

__all__ = ["PROBLEM", "api_client", "problem_of"]

PROBLEM = "application/problem+json"


@contextlib.asynccontextmanager
async def api_client(engine: FakeEngine | None = None, *, environment: Environment | None = None
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh :func:`api_app` whose engine is ``engine`` (or ``environment``)."""
    app = api_app()
    env = environment if environment is not None else env_for(engine or FakeEngine())
    app.state.engine = env
    app.state.settings = AgentSettings(engine_url=env.url, listen="127.0.0.1:9443",
                                       home=Path("/nonexistent"))
    app.state.started = time.monotonic()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://agent") as http:
            yield http
    finally:
        await env.aclose()


def problem_of(response: httpx.Response, status: int) -> dict[str, object]:
    """The problem document of ``response``, asserting its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)
