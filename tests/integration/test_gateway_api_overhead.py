"""What the gateway's ``/api/v1`` side adds to a request, measured on a real engine.

The same requests are made to the agent's own API app (bare) and through
:class:`GatewayApi` (roles from a real SQLite store, a real hash-chained audit log), in
process and interleaved, on the session's Podman engine; the difference of the medians
is the gateway's cost. Reads (a container by full id: classification, role, ownership
from the kept labels) must add under 1 ms at the median. A change adds the audit
record's write (SQLite, one transaction with the hash chain), which is the store's
cost, not this side's: the figures, and the store's own median time per record, are
printed (``-s``), and every change must be on record.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.gateway._api_gateway import GatewayApi
from ghostpanel_kernel.gateway._audit import AuditLog
from ghostpanel_kernel.gateway._context import CONTEXT, ENVIRONMENT, IDENTITY, REQUEST_ID
from ghostpanel_kernel.gateway._gateway_state import GatewayState
from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import OWNER_LABEL, TEAMS_LABEL
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings

pytestmark = pytest.mark.integration

ROUNDS = 150
OLGA = Identity("olga", groups=frozenset({"blue"}))


class _Router:
    """The scope keys the gateway's router sets, for one fixed caller."""

    def __init__(self, api: GatewayApi, state: GatewayState) -> None:
        self.api, self.state = api, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"].removeprefix("/env/prod")
        await self.api({**scope, "path": path, IDENTITY: OLGA, CONTEXT: self.state,
                        ENVIRONMENT: "prod", REQUEST_ID: "bench"}, receive, send)


async def _median_ms(http: httpx.AsyncClient, method: str, path: str) -> list[float]:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = await http.request(method, path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code < 300, answer.text
    return times


async def _compare(bare: httpx.AsyncClient, gated: httpx.AsyncClient, method: str,
                   path: str) -> tuple[float, float]:
    """Median milliseconds bare and through the gateway, measured in alternating
    batches so that a busy moment of the machine weighs on both."""
    bare_times: list[float] = []
    gated_times: list[float] = []
    for _ in range(3):
        bare_times += await _median_ms(bare, method, path)
        gated_times += await _median_ms(gated, method, f"/env/prod{path}")
    return statistics.median(bare_times), statistics.median(gated_times)


def _record_median_ms(audit: AuditLog) -> float:
    times = []
    for _ in range(20):
        started = time.perf_counter()
        audit.record(user="bench", environment=None, action="bench", target=None,
                     result="allowed", status=200, request_id="bench")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def test_authorisation_and_audit_overhead(
        env: Environment, engine_url: str, make_container: Callable[..., Awaitable[Container]],
        tmp_path: Path) -> None:
    container = await make_container(labels={OWNER_LABEL: "olga", TEAMS_LABEL: "blue"})
    await container.start()
    state = GatewayState(f"sqlite:///{tmp_path / 'gateway.db'}")
    state.registry.add("prod", engine_url)
    state.roles.grant("olga", "operator", "prod")
    app = api_app()
    app.state.engine = env
    app.state.settings = AgentSettings(engine_url=engine_url, listen="unix:///x.sock")
    app.state.started = time.monotonic()
    api = GatewayApi()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://agent") as bare, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=_Router(api, state)),
                                  base_url="http://gw") as gated:
            read = await _compare(bare, gated, "GET", f"/api/v1/containers/{container.id}")
            # Starting a running container changes nothing on the engine, but is a
            # change to the gateway: each one is written to the audit log.
            change = await _compare(bare, gated, "POST",
                                    f"/api/v1/containers/{container.id}/start")
        record_ms = _record_median_ms(state.audit)
    finally:
        await api.aclose()
        await state.aclose()
    print(f"read  p50: bare {read[0]:.3f} ms, gateway {read[1]:.3f} ms, "
          f"added {read[1] - read[0]:.3f} ms")
    print(f"change p50: bare {change[0]:.3f} ms, gateway {change[1]:.3f} ms, "
          f"added {change[1] - change[0]:.3f} ms (the audit record's write included)")
    print(f"AuditLog.record alone p50: {record_ms:.3f} ms")
    assert read[1] - read[0] < 1.0
    assert len(state.audit.entries(environment="prod")) == 3 * ROUNDS
