"""Fleet-health analytics over tidy history frames: percentiles, right-sizing from the
95th percentile, leak detection by a steady straight-line growth, restart loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ghostpanel_kernel.metrics._fleet import (
    MEMORY_STEP,
    memory_leaks,
    restart_loops,
    right_size,
    usage_percentiles,
)
from ghostpanel_kernel.metrics._frame import events_from_columns, frame_from_columns

T0 = 1_765_000_000.0
MIB = 1024.0 ** 2


def _frame(series: dict[tuple[str, str, str], list[float]], step: float = 60.0
           ) -> pd.DataFrame:
    rows = []
    for (environment, container, metric), values in series.items():
        rows += [[T0 + step * i, environment, container, metric, value]
                 for i, value in enumerate(values)]
    return frame_from_columns(["time", "environment", "container", "metric", "value"], rows)


def test_percentiles_per_container_and_per_environment() -> None:
    frame = _frame({("lab", "web", "cpu_cores"): [float(v) for v in range(1, 101)],
                    ("lab", "web", "memory_working_set_bytes"): [100.0] * 100,
                    ("lab", "db", "cpu_cores"): [2.0] * 10,
                    ("lab", "db", "memory_working_set_bytes"): [50.0] * 10})
    per_container = usage_percentiles(frame)
    web = per_container.loc[("lab", "web")]
    assert web["cpu_cores_p50"] == pytest.approx(50.5)
    assert web["cpu_cores_p95"] == pytest.approx(95.05)
    assert web["samples"] == 100
    per_env = usage_percentiles(frame, by=["environment"], quantiles=[0.5])
    assert per_env.loc["lab", "memory_working_set_bytes_p50"] == 100.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        usage_percentiles(frame, quantiles=[95])


def test_right_sizing_recommends_p95_plus_headroom_and_judges_the_limit() -> None:
    rng = np.random.default_rng(7)
    busy = [*rng.uniform(0.1, 0.5, 99), 4.0]  # one spike the p95 leaves out
    frame = _frame({
        ("lab", "web", "cpu_cores"): busy,
        ("lab", "web", "memory_working_set_bytes"): [100 * MIB] * 100,
        ("lab", "web", "memory_limit_bytes"): [1024 * MIB] * 100,
        ("lab", "db", "cpu_cores"): [1.0] * 100,
        ("lab", "db", "memory_working_set_bytes"): [500 * MIB] * 100,
        ("lab", "db", "memory_limit_bytes"): [512 * MIB] * 100,
        ("lab", "job", "cpu_cores"): [0.2] * 100,
        ("lab", "job", "memory_working_set_bytes"): [64 * MIB] * 100,
        ("lab", "job", "memory_limit_bytes"): [0.0] * 100})
    table = right_size(frame, headroom=0.25)
    web, db, job = (table.loc[("lab", name)] for name in ("web", "db", "job"))
    assert web["cpu_cores_p95"] < 0.6 and web["cpu_recommended"] <= 0.65
    assert web["memory_recommended"] == 128 * MIB  # 125 MiB up to a 16 MiB step
    assert web["memory_recommended"] % MEMORY_STEP == 0
    assert web["verdict"] == "oversized" and web["memory_change"] == pytest.approx(0.125)
    assert db["verdict"] == "too tight" and db["memory_recommended"] == 640 * MIB
    assert job["verdict"] == "set a limit" and pd.isna(job["memory_limit"])
    assert db["cpu_recommended"] == pytest.approx(1.25)


def test_a_steady_growth_is_a_leak_a_sawtooth_and_a_flat_line_are_not() -> None:
    minutes = np.arange(60)
    leak = list(50 * MIB + minutes * 1 * MIB)  # 60 MiB an hour, steady
    sawtooth = list(50 * MIB + (minutes % 10) * 8 * MIB)
    frame = _frame({("lab", "leaky", "memory_working_set_bytes"): leak,
                    ("lab", "gc", "memory_working_set_bytes"): sawtooth,
                    ("lab", "flat", "memory_working_set_bytes"): [30 * MIB] * 60,
                    ("lab", "new", "memory_working_set_bytes"): [1.0, 2.0]})
    table = memory_leaks(frame, min_rate=10 * MIB).set_index("container")
    assert table.loc["leaky", "leak"]
    assert table.loc["leaky", "growth_per_hour"] == pytest.approx(60 * MIB)
    assert table.loc["leaky", "fit"] == pytest.approx(1.0)
    assert not table.loc["gc", "leak"] and not table.loc["flat", "leak"]
    assert "new" not in table.index  # two samples say nothing
    assert table.index[0] == "leaky"


def test_restart_loops_count_the_most_crashes_in_any_window() -> None:
    rows = []
    for i in range(5):  # crash-looping: die + restart every 30 s
        rows.append([T0 + 30 * i, "crash", "id", "die", 1, None])
        rows.append([T0 + 30 * i + 1, "crash", "id", "restart", None, None])
    rows.append([T0, "web", "id2", "die", 0, None])
    rows.append([T0 + 3600, "web", "id2", "die", 137, None])
    rows.append([T0, "web", "id2", "health", None, "unhealthy"])
    events = events_from_columns(
        ["time", "container", "container_id", "kind", "exit_code", "health"], rows,
        environment="lab")
    table = restart_loops(events, window="5m", min_restarts=3).set_index("container")
    assert table.loc["crash", "restarts"] == 5  # not 10: die and restart are one crash
    assert table.loc["crash", "loop"] and table.loc["crash", "last_exit_code"] == 1
    assert table.loc["web", "restarts"] == 1 and not table.loc["web", "loop"]
    assert table.loc["web", "deaths"] == 2 and table.loc["web", "last_exit_code"] == 137
    narrow = restart_loops(events, window=60, min_restarts=3).set_index("container")
    assert narrow.loc["crash", "restarts"] == 2 and not narrow.loc["crash", "loop"]
    empty = restart_loops(events.iloc[0:0])
    assert empty.empty and "loop" in empty.columns
