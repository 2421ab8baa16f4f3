"""The metrics store: writing, reading back as rows and DataFrames, filters, steps."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from ghostpanel_kernel.metrics import ContainerEvent, Sample
from ghostpanel_kernel.metrics._store import HistoryTooLarge, MetricsStore

T0 = 1_800_000_000.0  # a whole hour (and minute) in unix seconds


def _sample(when: float, container: str, metric: str, value: float,
            environment: str = "local") -> Sample:
    return Sample(when, environment, container, f"id-{container}", "busybox", metric, value)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricsStore]:
    with MetricsStore(tmp_path / "metrics") as opened:
        yield opened


def test_rows_come_back_in_time_order_with_their_labels(store: MetricsStore) -> None:
    store.write([_sample(T0 + 10, "web", "cpu_cores", 0.5),
                 _sample(T0, "web", "cpu_cores", 0.25),
                 _sample(T0, "db", "pids", 7.0)])
    assert store.rows() == [(T0, "local", "web", "cpu_cores", 0.25),
                            (T0, "local", "db", "pids", 7.0),
                            (T0 + 10, "local", "web", "cpu_cores", 0.5)]
    assert store.file.name == "metrics.sqlite3" and store.size_bytes() > 0


def test_filters_select_containers_metrics_environments_and_a_window(
        store: MetricsStore) -> None:
    store.write([_sample(T0 + i * 10, c, m, float(i), environment=e)
                 for i in range(6) for c in ("web", "db") for m in ("cpu_cores", "pids")
                 for e in ("local", "lab")])
    rows = store.rows(containers="web", metrics=["pids"], environments="lab",
                      since=T0 + 10, until=datetime.fromtimestamp(T0 + 40, UTC))
    assert rows == [(T0 + i * 10, "lab", "web", "pids", float(i)) for i in (1, 2, 3)]
    assert store.rows(containers="nobody") == []
    assert len(store.rows(since="1h", until="now")) == 0  # T0 is far from now


def test_unknown_values_read_as_none_and_nan(store: MetricsStore) -> None:
    store.write([_sample(T0, "web", "cpu_cores", math.nan),
                 _sample(T0 + 10, "web", "cpu_cores", 1.0)])
    assert [row[4] for row in store.rows()] == [None, 1.0]
    frame = store.samples()
    assert math.isnan(frame["value"].iloc[0]) and frame["value"].iloc[1] == 1.0
    # A mean over a bucket leaves the unknown value out rather than counting it as 0.
    assert store.rows(step=60)[0][4] == 1.0


def test_the_dataframe_is_tidy_and_matches_the_rows(store: MetricsStore) -> None:
    store.write([_sample(T0 + i, c, "memory_usage_bytes", i * 1000.0 + len(c))
                 for i in range(50) for c in ("web", "db", "cache")])
    frame = store.samples(containers=["web", "db"])
    assert list(frame.columns) == ["time", "environment", "container", "metric", "value"]
    assert str(frame["time"].dtype).startswith("datetime64") and frame["time"].dt.tz == UTC
    rows = store.rows(containers=["web", "db"])
    assert len(frame) == len(rows) == 100
    as_tuples = [(t.timestamp(), e, c, m, v) for t, e, c, m, v in
                 frame.itertuples(index=False)]
    assert as_tuples == rows


def test_empty_history_is_an_empty_frame_with_the_columns(store: MetricsStore) -> None:
    frame = store.samples()
    assert frame.empty and list(frame.columns) == ["time", "environment", "container",
                                                   "metric", "value"]


@pytest.mark.parametrize("aggregate", ["mean", "max", "min", "count"])
def test_steps_aggregate_each_bucket_and_rows_agree_with_the_frame(
        store: MetricsStore, aggregate: str) -> None:
    values = [1.0, 5.0, 3.0, 10.0, 2.0, 4.0]  # two per 20 s bucket
    store.write([_sample(T0 + 10 * i, "web", "cpu_cores", v) for i, v in enumerate(values)])
    rows = store.rows(step="20s", aggregate=aggregate)
    pairs = [values[i:i + 2] for i in range(0, 6, 2)]
    expected = {"mean": [sum(p) / 2 for p in pairs], "max": [max(p) for p in pairs],
                "min": [min(p) for p in pairs], "count": [2, 2, 2]}[aggregate]
    assert [r[0] for r in rows] == [T0, T0 + 20, T0 + 40]
    assert [r[4] for r in rows] == expected
    frame = store.samples(step=20, aggregate=aggregate)
    assert frame["value"].tolist() == expected
    assert [t.timestamp() for t in frame["time"]] == [T0, T0 + 20, T0 + 40]


def test_max_rows_refuses_a_larger_answer_in_every_resolution(store: MetricsStore) -> None:
    store.write([_sample(T0 + i, c, "pids", 1.0) for i in range(100) for c in ("a", "b")])
    assert len(store.rows(max_rows=200)) == 200
    with pytest.raises(HistoryTooLarge, match="more than 150 rows"):
        store.rows(max_rows=150)
    assert len(store.rows(step=50, max_rows=4)) == 4
    with pytest.raises(HistoryTooLarge):
        store.rows(step=50, max_rows=3)
    store.downsample(now=T0 + 3600)
    store._db.execute("DELETE FROM raw")  # only the 1-minute buckets are left
    assert len(store.rows(max_rows=4)) == 4
    with pytest.raises(HistoryTooLarge):
        store.rows(max_rows=3)


def test_an_unknown_aggregate_is_refused(store: MetricsStore) -> None:
    with pytest.raises(ValueError, match="aggregate"):
        store.rows(aggregate="median")


def test_events_round_trip_with_filters(store: MetricsStore) -> None:
    events = [ContainerEvent(T0, "local", "web", "id-web", "start", None, None),
              ContainerEvent(T0 + 5, "local", "web", "id-web", "die", 137, None),
              ContainerEvent(T0 + 6, "local", "db", "id-db", "health", None, "unhealthy")]
    assert store.write_events(events) == 3
    assert store.event_rows() == events
    assert store.event_rows(kinds="die") == [events[1]]
    assert store.event_rows(containers="db", since=T0 + 1) == [events[2]]
    frame = store.events()
    assert frame["exit_code"].dtype == "Int64" and frame["exit_code"].iloc[1] == 137
    assert pd.isna(frame["exit_code"].iloc[0]) and frame["time"].dt.tz == UTC


def test_a_store_reopened_keeps_its_history(tmp_path: Path) -> None:
    with MetricsStore(tmp_path) as first:
        first.write([_sample(T0, "web", "pids", 3.0)])
    with MetricsStore(tmp_path / "metrics.sqlite3") as again:
        again.write([_sample(T0 + 10, "web", "pids", 4.0)])
        assert [r[4] for r in again.rows(containers="web")] == [3.0, 4.0]
