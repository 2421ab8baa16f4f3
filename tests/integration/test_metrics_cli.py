"""``ghostpanel metrics collect`` (foreground, Ctrl-C clean) and ``metrics export``."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pandas as pd
import pytest

from ghostpanel_kernel.engine import Container
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.agent_process import cli_environment, ghostpanel_command, run_cli

pytestmark = pytest.mark.integration


async def test_collect_until_ctrl_c_then_export_csv_and_parquet(
        engine_url: str, make_container: Callable[..., Awaitable[Container]],
        tmp_path: Path) -> None:
    container = await make_container()
    await container.start()
    home = tmp_path / "home"
    assert run_cli(home, "env", "add", "podman", engine_url).returncode == 0
    store_dir = tmp_path / "metrics"
    process = subprocess.Popen(
        ghostpanel_command(home, "metrics", "collect", "--env", "podman", "--interval",
                           "0.2", "--store", str(store_dir)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_environment(home))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (store_dir / "metrics.sqlite3").exists():
                with MetricsStore(store_dir) as store:
                    if len(store.rows(containers=container.name, metrics="pids")) >= 3:
                        break
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped after" in err and "Traceback" not in err

    csv = run_cli(home, "metrics", "export", "--since", "1h", "--store", str(store_dir),
                  "--container", container.name, "--metric", "pids")
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0] == "time,environment,container,metric,value"
    assert len(lines) >= 4 and all(f",podman,{container.name},pids," in line
                                   for line in lines[1:])
    assert lines[1].split(",")[0].endswith("Z")

    parquet = tmp_path / "out.parquet"
    result = run_cli(home, "metrics", "export", "--since", "1h", "--store", str(store_dir),
                     "--format", "parquet", "--output", str(parquet), "--step", "1h")
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(parquet)
    mine = frame[(frame["container"] == container.name) & (frame["metric"] == "pids")]
    assert len(mine) in (1, 2) and (mine["value"] >= 1).all()  # 2 if an hour began
    assert str(frame["time"].dt.tz) == "UTC"


def test_export_refuses_bad_input(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(home, "metrics", "export", "--format", "parquet", "--store",
                     str(tmp_path))
    assert result.returncode != 0 and "--output" in result.stderr
    result = run_cli(home, "metrics", "export", "--since", "someday", "--store",
                     str(tmp_path))
    assert result.returncode == 2 and "not a time" in result.stderr
