"""A hub session against a REAL JupyterHub, its configurable-http-proxy and the gateway
it runs as a service (``tests/hub_process.py``), on the session's Podman engine.

The process is given only what the hub gives a single-user server: the user's API token
(``JUPYTERHUB_API_TOKEN``) and the hub's API URL (``JUPYTERHUB_API_URL``, the proxy's),
from which the gateway's URL is derived. ``connect()`` must then reach the environment
through the proxy and the gateway, with the hub checking the token, and a viewer's stop
must read "your role on ... does not allow lifecycle".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from ghostpanel_kernel import PermissionDenied, connect
from ghostpanel_kernel.environments import GatewayRegistry, session_registry
from tests.hub_process import RunningHub, hub_factory_fixture  # noqa: F401
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

ENV = "gwc-hub"


async def test_a_hub_session_goes_through_the_real_hub_and_gateway(
        hub_factory: Callable[..., RunningHub], podman_engine: PodmanService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_factory(environments={ENV: podman_engine.url})
    hub.add_user("gwc-dora", groups=("gwc-team",))
    hub.add_user("gwc-vic", groups=("gwc-team",))
    hub.grant("gwc-dora", "deployer", ENV)
    hub.grant("gwc-vic", "viewer", ENV)
    hub.wait_for_gateway()
    monkeypatch.delenv("GHOSTPANEL_GATEWAY_URL", raising=False)
    monkeypatch.delenv("GHOSTPANEL_ENVIRONMENT", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_NAME", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub.api_url)

    name = f"gwc-{uuid.uuid4().hex[:6]}"
    ident = ""
    try:
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub.token("gwc-dora"))
        registry = session_registry()
        assert isinstance(registry, GatewayRegistry)
        assert registry.gateway.url == hub.gateway_url
        env = connect()  # her only environment
        try:
            assert env.name == ENV
            container = await env.containers.create(image=BUSYBOX_REFERENCE, name=name,
                                                    command=["sleep", "600"])
            ident = container.id
            await container.start()
            await container.reload()
            # Stamped by the gateway with her name and team.
            assert container.labels["io.ghostpanel.owner"] == "gwc-dora"
            assert container.labels["io.ghostpanel.teams"] == "gwc-team"
        finally:
            await env.aclose()

        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub.token("gwc-vic"))
        env = connect(ENV)
        try:
            seen = await env.containers.get(name)
            with pytest.raises(PermissionDenied) as caught:
                await seen.stop(timeout=1)
            await seen.reload()
            assert seen.state == "running"
        finally:
            await env.aclose()
        assert str(caught.value).startswith(f"your role on {ENV} does not allow lifecycle "
                                            "(POST /v1.")
    finally:
        if ident:
            socket_path = podman_engine.url.removeprefix("unix://")
            with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path),
                              base_url="http://engine", timeout=30) as http:
                http.delete(f"/v1.41/containers/{ident}", params={"force": "1"})
