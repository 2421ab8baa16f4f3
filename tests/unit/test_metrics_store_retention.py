"""Downsampling keeps means and maxima; retention drops what is too old; the seams
between resolutions count nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpanel_kernel.metrics import Sample
from ghostpanel_kernel.metrics._retention import DAY, RetentionPolicy
from ghostpanel_kernel.metrics._store import MetricsStore

T0 = 1_800_000_000.0  # a whole hour


def _round(when: float, value: float, container: str = "web") -> list[Sample]:
    return [Sample(when, "local", container, "id", "busybox", "cpu_cores", value)]


def test_downsampling_keeps_the_mean_and_the_spike(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    # Two hours at 10 s: a flat 1.0 with one 9.0 spike in the first hour.
    for i in range(720):
        store.write(_round(T0 + 10 * i, 9.0 if i == 100 else 1.0))
    report = store.downsample(now=T0 + 7200 + 1)
    assert report["minute"] == 120 and report["hour"] == 2
    minute = store._db.execute("SELECT time, mean, max, min, count FROM minute "
                               "WHERE time = ?", (T0 + 960,)).fetchone()
    assert minute == (T0 + 960, pytest.approx((5 + 9) / 6), 9.0, 1.0, 6)
    hour = store._db.execute("SELECT mean, max, min, count FROM hour ORDER BY time"
                             ).fetchall()
    assert hour[0] == (pytest.approx((359 + 9) / 360), 9.0, 1.0, 360)
    assert hour[1] == (1.0, 1.0, 1.0, 360)
    # Idempotent: nothing new to roll up.
    assert store.downsample(now=T0 + 7200 + 1)["minute"] == 0


def test_old_raw_samples_go_and_history_falls_back_to_rollups(tmp_path: Path) -> None:
    policy = RetentionPolicy(raw=3600, minute=2 * 3600, hour=DAY)
    store = MetricsStore(tmp_path, retention=policy)
    for i in range(360 * 3):  # three hours at 10 s, each hour a different level
        store.write(_round(T0 + 10 * i, float(i // 360) + (5.0 if i == 30 else 0.0)))
    report = store.downsample(now=T0 + 3 * 3600 + 1)
    assert report["raw_deleted"] == 720  # the first two hours (cut on the hour)
    assert report["minute_deleted"] == 60  # the first hour's minutes
    rows = store.rows(containers="web")
    # hour 0 from the hour table, hour 1 from minutes, hour 2 raw: each counted once.
    assert rows[0] == (T0, "local", "web", "cpu_cores", pytest.approx(5.0 / 360))
    assert [r[0] for r in rows[1:61]] == [T0 + 3600 + 60 * i for i in range(60)]
    assert all(r[4] == 1.0 for r in rows[1:61])
    assert len(rows) == 1 + 60 + 360
    # Per-hour maxima across all three resolutions: the spike survives downsampling.
    maxima = store.rows(step="1h", aggregate="max")
    assert [r[4] for r in maxima] == [5.0, 1.0, 2.0]
    counts = store.rows(step="1h", aggregate="count")
    assert [r[4] for r in counts] == [360, 360, 360]
    frame = store.samples(step="1h", aggregate="mean")
    assert frame["value"].tolist() == pytest.approx([5.0 / 360, 1.0, 2.0])


def test_hour_buckets_expire_after_their_retention(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path, retention=RetentionPolicy(raw=3600, minute=3600,
                                                             hour=2 * 3600))
    store.write(_round(T0, 1.0))
    store.downsample(now=T0 + 3601)
    assert store._db.execute("SELECT COUNT(*) FROM hour").fetchone()[0] == 1
    store.downsample(now=T0 + 3 * 3600 + 1)
    assert store.rows() == []


def test_a_policy_must_grow_with_coarser_resolutions() -> None:
    with pytest.raises(ValueError, match="retention"):
        RetentionPolicy(raw=2 * DAY, minute=DAY)
