"""Token checks through JupyterHub's own HubAuth, against a stand-in hub on loopback.

The stand-in answers ``GET /hub/api/user`` as the hub does (the token's owner, or 403)
from a table the test changes, so that what is tested is HubAuth as the gateway
configures it: the identity it builds, its short cache (a revoked token stops working
within 5 s, never 300 s or "forever"), and a hub that fails.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ghostpanel_kernel.gateway._hub_identity import CACHE_MAX_AGE, HubCheckFailed, HubLogin


class StandInHub:
    """Answers ``GET /hub/api/user`` from :attr:`users` (token -> model)."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.asked = 0
        self.broken = False
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                self.asked += 1
                token = ""
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "authorization":
                        token = value.strip().partition(" ")[2]
                model = self.users.get(token)
                if self.broken:
                    status, body = "500 Internal Server Error", b"{}"
                elif model is None:
                    status, body = "403 Forbidden", b'{"status": 403}'
                else:
                    status, body = "200 OK", json.dumps(model).encode()
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hub(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StandInHub]:
    stand_in = StandInHub()
    server = await asyncio.start_server(stand_in.serve, "127.0.0.1", 0)
    stand_in.port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{stand_in.port}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "gateway-service-token")
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-ghostpanel")
    async with server:
        yield stand_in


async def test_a_token_is_checked_with_the_hub_and_revocation_is_seen_within_5_s(
        hub: StandInHub) -> None:
    hub.users["t1"] = {"kind": "user", "name": "olga", "groups": ["blue"], "admin": False,
                       "scopes": ["custom:ghostpanel:prod:read", "read:users:name!user"]}
    login = HubLogin(prefix="/services/ghostpanel/", cookie_secret=b"k" * 32)
    assert login.hub_auth.cache_max_age == CACHE_MAX_AGE <= 5
    identity = await login.identity_for_token("t1")
    assert identity is not None
    assert (identity.name, identity.teams) == ("olga", frozenset({"blue"}))
    assert "custom:ghostpanel:prod:read" in identity.scopes
    asked = hub.asked
    assert await login.identity_for_token("t1") == identity
    assert hub.asked == asked, "a second check within the cache time asks the hub again"
    del hub.users["t1"]  # revoked at the hub
    revoked = time.monotonic()
    while await login.identity_for_token("t1") is not None:
        assert time.monotonic() - revoked <= CACHE_MAX_AGE + 1, "the revocation was missed"
        await asyncio.sleep(0.25)
    assert await login.identity_for_token("never-issued") is None


async def test_a_failing_hub_is_a_hub_check_failure(hub: StandInHub) -> None:
    hub.broken = True
    login = HubLogin(prefix="/services/ghostpanel/", cookie_secret=b"k" * 32)
    with pytest.raises(HubCheckFailed, match="upstream"):
        await login.identity_for_token("t1")
