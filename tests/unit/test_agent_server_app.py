"""The agent app's routing: /api/v1 to the API, the rest to the engine passthrough, and
a passthrough that cannot be loaded answering 503 rather than stopping the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.server import _app
from ghostpanel_kernel.server._app import create_app
from ghostpanel_kernel.server._settings import AgentSettings


class Passthrough:
    """Stands in for EnginePassthrough: records the paths it was given."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.closed = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"engine"})

    async def aclose(self) -> None:
        self.closed = True


def _client(tmp_path: Path, token: str) -> tuple[httpx.AsyncClient, _app.AgentApp]:
    settings = AgentSettings(engine_url=f"unix://{tmp_path}/engine.sock",
                             listen="127.0.0.1:9443", home=tmp_path)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    return httpx.AsyncClient(transport=transport, base_url="https://agent",
                             headers={"Authorization": f"Bearer {token}"}), app


async def test_routes(tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    passthrough = Passthrough()
    monkeypatch.setattr(_app, "_load_passthrough", lambda url: passthrough)
    client, app = _client(tmp_path, token)
    async with client:
        assert (await client.get("/containers/json")).text == "engine"
        assert (await client.get("/engine/v1.41/containers/json")).text == "engine"
        assert (await client.get("/api/v1x")).text == "engine"  # not the API's namespace
        missing = await client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        down = await client.get("/api/v1/health")  # the engine socket does not exist
        assert down.status_code == 502 and str(tmp_path / "engine.sock") in down.text
    assert passthrough.paths == ["/containers/json", "/engine/v1.41/containers/json",
                                 "/api/v1x"]
    await app.shutdown()
    assert passthrough.closed


async def test_a_passthrough_that_cannot_load_is_a_503(
        tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, package: str | None = None) -> Any:
        raise ImportError("No module named 'ghostpanel_kernel.server._passthrough'")

    monkeypatch.setattr(_app.importlib, "import_module", broken)
    client, app = _client(tmp_path, token)
    async with client:
        answer = await client.get("/containers/json")
        assert answer.status_code == 503
        assert "passthrough is not available" in answer.json()["detail"]
        # The API still serves.
        assert (await client.get("/api/v1/nothing")).status_code == 404
    await app.shutdown()
