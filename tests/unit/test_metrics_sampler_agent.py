"""The agent's side of the metrics: its history routes, its settings, its sampler."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel.metrics import ContainerEvent, Sample
from ghostpanel_kernel.metrics._store import MetricsStore
from ghostpanel_kernel.server._api import api_app
from ghostpanel_kernel.server._settings import AgentSettings
from tests.unit.api_client import problem_of


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    now = time.time()
    with MetricsStore(tmp_path / "metrics") as store:
        store.write([Sample(now - age, "local", name, f"id-{name}", "busybox", metric,
                            float(age)) for age in (7200, 600, 60)
                     for name in ("web", "db") for metric in ("cpu_cores", "pids")])
        store.write_events([ContainerEvent(now - 30, "local", "web", "id-web", "die", 3,
                                           None),
                            ContainerEvent(now - 20, "local", "web", "id-web", "restart",
                                           3, None)])
    app = api_app()
    app.state.settings = AgentSettings(engine_url="unix:///nonexistent.sock",
                                       home=tmp_path, metrics_interval=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://agent") as client:
        yield client
    app.state.metrics_store.close()


async def test_history_answers_the_last_hour_as_columns_and_rows(
        http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/v1/metrics/history", params={"container": "web",
                                                               "metric": "pids"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["columns"] == ["time", "environment", "container", "metric", "value"]
    assert [row[2:] for row in body["rows"]] == [["web", "pids", 600.0],
                                                 ["web", "pids", 60.0]]
    assert body["rows"][0][0] < body["rows"][1][0] <= time.time()


async def test_history_filters_window_and_steps(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/v1/metrics/history?since=3h&container=web,db"
                            "&metric=cpu_cores&step=1d&aggregate=max")
    rows = answer.json()["rows"]
    # One or two daily buckets per container (two when a day began in between).
    assert {row[2] for row in rows} == {"web", "db"} and len(rows) in (2, 4)
    assert all(max(r[4] for r in rows if r[2] == name) == 7200.0 for name in ("web", "db"))
    answer = await http.get("/api/v1/metrics/history",
                            params={"since": "3h", "until": "5m", "metric": "pids",
                                    "container": "db"})
    assert [row[4] for row in answer.json()["rows"]] == [7200.0, 600.0]


@pytest.mark.parametrize("query", ["since=yesterday", "step=fast", "aggregate=median"])
async def test_bad_parameters_are_a_422_problem(http: httpx.AsyncClient, query: str) -> None:
    problem_of(await http.get(f"/api/v1/metrics/history?{query}"), 422)


async def test_an_answer_too_large_is_refused_not_built(
        http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostpanel_kernel.server import _routes_metrics_history

    monkeypatch.setattr(_routes_metrics_history, "MAX_ROWS", 3)
    problem = problem_of(await http.get("/api/v1/metrics/history"), 422)
    assert "more than 3 rows" in str(problem["detail"])
    answer = await http.get("/api/v1/metrics/history?container=web&metric=pids")
    assert len(answer.json()["rows"]) == 2


async def test_events_are_served_from_the_store(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/v1/metrics/events?kind=restart")).json()
    assert body["columns"] == ["time", "environment", "container", "container_id", "kind",
                               "exit_code", "health"]
    assert [row[2:] for row in body["rows"]] == [["web", "id-web", "restart", 3, None]]
    problem_of(await http.get("/api/v1/metrics/events?until=later"), 422)


def test_settings_say_where_metrics_go_and_refuse_a_negative_interval(
        tmp_path: Path) -> None:
    settings = AgentSettings(engine_url="unix:///e.sock", home=tmp_path)
    assert settings.metrics_interval == 10.0 and settings.metrics_path == tmp_path / "metrics"
    moved = AgentSettings(engine_url="unix:///e.sock", home=tmp_path, metrics_dir=Path("/m"))
    assert moved.metrics_path == Path("/m")
    with pytest.raises(ValueError, match="metrics_interval"):
        AgentSettings(engine_url="unix:///e.sock", metrics_interval=-1)


def test_a_sampling_agent_serves_history_without_pandas_or_sqlalchemy(
        tmp_path: Path) -> None:
    # The agent's idle budget is 50 MB: sampling, storing and serving history use
    # sqlite3 only, never pandas, numpy, pyarrow, duckdb or SQLAlchemy.
    code = (
        "import sys, asyncio, pathlib, httpx\n"
        "from ghostpanel_kernel.server._app import create_app\n"
        "from ghostpanel_kernel.server._settings import AgentSettings\n"
        f"home = pathlib.Path({str(tmp_path)!r})\n"
        "settings = AgentSettings(engine_url=f'unix://{home}/engine.sock', "
        "listen='127.0.0.1:9', home=home, metrics_interval=0.05)\n"
        "app = create_app(settings)\n"
        "async def main():\n"
        "    await app.startup()\n"
        "    await asyncio.sleep(0.2)  # rounds fail (no engine) and go on\n"
        "    transport = httpx.ASGITransport(app=app.api)\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://a') as c:\n"
        "        print((await c.get('/api/v1/metrics/history?step=1m')).status_code)\n"
        "    print(app.api.state.sampler is not None)\n"
        "    await app.shutdown()\n"
        "asyncio.run(main())\n"
        "heavy = ('pandas', 'numpy', 'pyarrow', 'duckdb', 'sqlalchemy')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.splitlines() == ["200", "True", "[]"]
