"""CPU % that cannot be known is NaN everywhere, never a false 0 %: the sample's own
figure and the figure since another sample agree, the CLI prints ``--`` (and JSON
``null``), the stats chart leaves a gap and the container table a blank cell.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ghostpanel_widgets._stats_monitor import derive_point

from ghostpanel_kernel.cli._containers import ContainerStats, stats_record, stats_row
from ghostpanel_kernel.engine import StatsSample
from ghostpanel_kernel.engine._stats import cpu_percent


def raw(read: str, used: int, *, system: int = 0) -> dict[str, Any]:
    """A raw Podman-style one-shot sample: no earlier reading of its own."""
    return {"read": read, "name": "web",
            "cpu_stats": {"cpu_usage": {"total_usage": used}, "system_cpu_usage": system,
                          "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
            "memory_stats": {"usage": 1024, "limit": 4096}}


BEFORE = raw("2026-11-28T00:14:28Z", 5_000_000_000)
AFTER = raw("2026-11-28T00:14:29Z", 5_500_000_000)
RESTARTED = raw("2026-11-28T00:14:30Z", 100_000_000)  # the counter went back


def test_known_cpu_is_the_same_by_both_readings() -> None:
    assert cpu_percent(AFTER, BEFORE) == 50.0
    assert StatsSample.from_attrs(AFTER).cpu_percent_since(
        StatsSample.from_attrs(BEFORE)) == 50.0


def test_nothing_to_compare_with_is_unknown_not_idle() -> None:
    assert math.isnan(cpu_percent(AFTER))
    assert math.isnan(StatsSample.from_attrs(AFTER).cpu_percent)


def test_a_counter_that_went_back_is_unknown_by_both_readings() -> None:
    assert math.isnan(cpu_percent(RESTARTED, AFTER))
    assert math.isnan(StatsSample.from_attrs(RESTARTED, previous=AFTER).cpu_percent)
    assert math.isnan(StatsSample.from_attrs(RESTARTED).cpu_percent_since(
        StatsSample.from_attrs(AFTER)))


def test_the_cli_prints_unknown_cpu_as_dashes_and_null() -> None:
    unknown = ContainerStats("laptop", "abc", StatsSample.from_attrs(AFTER))
    known = ContainerStats("laptop", "abc", StatsSample.from_attrs(AFTER, previous=BEFORE))
    assert stats_row(unknown)[2] == "--"
    assert stats_row(known)[2] == "50.00%"
    # Strict JSON: NaN is not JSON, a reader of --json would choke on it.
    text = json.dumps(stats_record(unknown), allow_nan=False)
    assert json.loads(text)["cpu_percent"] is None
    assert stats_record(known)["cpu_percent"] == 50.0


def test_the_chart_shows_a_gap_for_a_first_sample_without_a_window() -> None:
    point = derive_point(StatsSample.from_attrs(AFTER), None)
    assert math.isnan(point.cpu)  # was a false 0 %
    assert point.memory == 1024.0
    later = derive_point(StatsSample.from_attrs(RESTARTED), StatsSample.from_attrs(AFTER))
    assert math.isnan(later.cpu)
