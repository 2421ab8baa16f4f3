"""The preheated dashboard's two halves without Voila: ``ghostpanel up``'s Voila settings
and readiness check, and the notebook's side (``ghostpanel_widgets._preheat``): waiting
for the page request on Voila's WebSocket protocol, and moving the prebuilt dashboard to
the view the request names."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
from click.testing import CliRunner
from ghostpanel_widgets import _preheat
from websockets.asyncio.server import ServerConnection, serve

from ghostpanel_kernel.cli import _up

# -- ghostpanel up ------------------------------------------------------------------------


def test_voila_config_preheats_only_with_a_pool() -> None:
    pooled = _up.voila_config(3)
    assert pooled["VoilaConfiguration"]["preheat_kernel"] is True
    assert pooled["VoilaConfiguration"]["default_pool_size"] == 3
    # Preheating is incompatible with these: they must stay off.
    assert "progressive_rendering" not in pooled["VoilaConfiguration"]
    assert "prelaunch_hook" not in json.dumps(pooled)
    unpooled = _up.voila_config(0)
    assert "preheat_kernel" not in unpooled["VoilaConfiguration"]
    # The base settings (xsrf for the unload beacon, ipc, culling) are kept, unchanged.
    for config in (pooled, unpooled):
        assert config["Voila"] == _up._VOILA_CONFIG["Voila"]
        assert config["MappingKernelManager"] == _up._VOILA_CONFIG["MappingKernelManager"]
    assert "VoilaConfiguration" not in _up._VOILA_CONFIG


def test_up_offers_the_pool_option() -> None:
    result = CliRunner().invoke(_up.up, ["--help"])
    assert result.exit_code == 0
    assert "--pool" in result.output
    refused = CliRunner().invoke(_up.up, ["--pool", "-1"])
    assert refused.exit_code == 2


def test_pool_ready_waits_for_the_listener_and_the_marker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ready"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        ready = _up._PoolReady(marker)
        assert not ready(port)  # nothing listens yet
        listener.listen()
        assert not ready(port)  # listens, no kernel ready
        marker.write_text("1234\n")
        assert ready(port)


def test_pool_ready_gives_up_waiting_for_a_kernel(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(_up, "warn", warnings.append)
    monkeypatch.setattr(_up, "_POOL_READY_TIMEOUT", 0.0)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready = _up._PoolReady(tmp_path / "never")
        assert ready(listener.getsockname()[1])
    assert warnings and "no preheated kernel is ready" in warnings[0]


# -- the notebook's side --------------------------------------------------------------------


async def test_wait_for_request_reads_voilas_message(monkeypatch: pytest.MonkeyPatch) -> None:
    paths: list[str] = []

    async def voila(connection: ServerConnection) -> None:
        assert connection.request is not None
        paths.append(connection.request.path)
        await connection.send(json.dumps({"QUERY_STRING": "env=prod&tab=logs",
                                          "SERVER_NAME": "127.0.0.1"}))

    monkeypatch.delenv("QUERY_STRING", raising=False)
    async with serve(voila, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        monkeypatch.setenv("VOILA_APP_PORT", str(port))
        monkeypatch.setenv("VOILA_SERVER_URL", "/base/")
        monkeypatch.setenv("VOILA_KERNEL_ID", "kernel-1")
        monkeypatch.delenv("VOILA_WS_BASE_URL", raising=False)
        await asyncio.wait_for(_preheat.wait_for_request(), 10)
    assert paths == ["/base/voila/query/kernel-1"]
    assert os.environ["QUERY_STRING"] == "env=prod&tab=logs"


async def test_wait_for_request_connects_again_after_a_drop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tries = 0

    async def voila(connection: ServerConnection) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            await connection.close()  # a drop before the request came
        else:
            await connection.send(json.dumps({"QUERY_STRING": "container=web"}))

    monkeypatch.delenv("QUERY_STRING", raising=False)
    async with serve(voila, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        await asyncio.wait_for(
            _preheat.wait_for_request(f"ws://127.0.0.1:{port}/voila/query/k"), 10)
    assert tries == 2
    assert os.environ["QUERY_STRING"] == "container=web"


class FakeDashboard(ipywidgets.VBox):
    """What the preheat code reads of an OpsDashboard."""

    def __init__(self, count: int = 3) -> None:
        super().__init__()
        self.container_count = count
        self.shown: list[Any] = []

    def show_query(self, query: Any) -> None:
        self.shown.append(query)


async def test_wait_for_view_outside_a_preheated_kernel_returns_at_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOILA_PREHEAT", "False")
    monkeypatch.setenv("QUERY_STRING", "tab=stats")
    monkeypatch.setenv(_preheat.READY_VARIABLE, str(tmp_path / "ready"))

    async def never() -> None:
        raise AssertionError("waited for a request outside a preheated kernel")

    monkeypatch.setattr(_preheat, "wait_for_request", never)
    dashboard = FakeDashboard()
    assert await _preheat.wait_for_view(dashboard) == "tab=stats"
    assert not (tmp_path / "ready").exists()
    dashboard.close()


async def test_wait_for_view_says_ready_once_listed(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv(_preheat.READY_VARIABLE, str(marker))
    dashboard = FakeDashboard(count=-1)  # not listed yet
    seen_marker: list[bool] = []

    async def request() -> None:
        seen_marker.append(marker.exists())
        os.environ["QUERY_STRING"] = "env=b"

    monkeypatch.setattr(_preheat, "wait_for_request", request)
    waiting = asyncio.create_task(_preheat.wait_for_view(dashboard))
    await asyncio.sleep(0.2)
    assert not waiting.done() and not marker.exists()  # waits for the first listing
    dashboard.container_count = 2
    assert await asyncio.wait_for(waiting, 5) == "env=b"
    assert seen_marker == [True]
    assert marker.read_text() == f"{os.getpid()}\n"
    dashboard.close()


def test_for_query_moves_the_prebuilt_dashboard() -> None:
    dashboard = FakeDashboard()
    assert _preheat.for_query(dashboard, "") is dashboard
    assert dashboard.shown == []  # the plain address: nothing to change
    assert _preheat.for_query(dashboard, "env=b&tab=logs") is dashboard
    assert dashboard.shown == ["env=b&tab=logs"]
    dashboard.close()


def test_for_query_tries_again_when_nothing_was_built(monkeypatch: pytest.MonkeyPatch) -> None:
    error = ipywidgets.HTML("GhostPanel cannot start")
    built: list[Any] = []
    replacement = ipywidgets.HTML("dashboard")
    monkeypatch.setattr(_preheat, "build_dashboard",
                        lambda query, **kwargs: built.append(query) or replacement)
    assert _preheat.for_query(error, "env=new") is replacement
    assert built == ["env=new"]
    assert error.comm is None  # closed
    replacement.close()


def test_build_dashboard_says_why_without_an_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_widgets._dashboard import OpsDashboard

    from ghostpanel_kernel.engine import EnvironmentNotFound

    asked: list[tuple[Any, dict[str, Any]]] = []

    def from_query(query: Any, **kwargs: Any) -> Any:
        asked.append((query, kwargs))
        raise EnvironmentNotFound("prod", known=[], hint="Register an engine")

    monkeypatch.setattr(OpsDashboard, "from_query", from_query)
    monkeypatch.setenv("GHOSTPANEL_ENV", "prod")
    shown = _preheat.build_dashboard("tab=logs", stats_interval=5)
    assert asked == [("tab=logs", {"stats_interval": 5, "environment": "prod"})]
    assert isinstance(shown, ipywidgets.HTML)
    assert "GhostPanel cannot start" in shown.value and "prod" in shown.value
    shown.close()


def test_a_voila_kernel_sends_the_script_loader_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_widgets._panel_loader import BOKEHJS_LOAD, Part, loader_bundle

    parts = [Part("library", "window.gpLoaded = true;")]
    monkeypatch.delenv("VOILA_KERNEL_ID", raising=False)
    both = loader_bundle(parts)
    assert set(both) == {BOKEHJS_LOAD, "application/javascript"}
    # Voila writes every MIME type of an output into its page: one copy there.
    monkeypatch.setenv("VOILA_KERNEL_ID", "kernel-1")
    assert loader_bundle(parts) == {"application/javascript": both["application/javascript"]}
