"""CPU % from stats samples: the same figure as ``docker stats`` on Docker and Podman.

The Podman samples were recorded from Podman 4.3.1 (cgroup v1, 2 CPUs) with one
spinning shell in the container, while the host had idle time: Podman's
``system_cpu_usage`` then grows by the host's *busy* time only, so Docker's formula
over-reads there. The Docker-shaped samples follow Docker's rules: ``system_cpu_usage``
is ``/proc/stat``'s total, idle included (wall-clock time times the CPUs, in 10 ms
ticks), and a one-shot sample carries the reading before it (``precpu_stats``,
``preread``).
"""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any

import pytest

from ghostpanel_kernel.engine import StatsSample
from ghostpanel_kernel.engine._stats import cpu_percent


def podman_sample(read: str, total: int, percpu: list[int], system: int) -> dict[str, Any]:
    """A Podman 4.3.1 one-shot sample as recorded: no earlier reading in it."""
    return {
        "read": read, "preread": "0001-01-01T00:00:00Z", "pids_stats": {"current": 1},
        "blkio_stats": {"io_service_bytes_recursive": []}, "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": total, "percpu_usage": percpu},
                      "system_cpu_usage": system, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                       "usage_in_usermode": 0},
                         "cpu": 0, "throttling_data": {"periods": 0,
                                                       "throttled_periods": 0,
                                                       "throttled_time": 0}},
        "memory_stats": {"usage": 262144, "limit": 25276510208}, "name": "busy",
        "networks": {"network": {"rx_bytes": 586, "tx_bytes": 2580}},
    }


# Two one-shot samples of the busy container, about 1 s apart.
PODMAN_BUSY_BEFORE = podman_sample("2026-11-28T00:14:28.055754105Z", 5_810_743_990,
                                   [3_568_246_905, 2_242_497_085], 13_348_382_919_630)
PODMAN_BUSY_AFTER = podman_sample("2026-11-28T00:14:29.080712243Z", 6_819_776_957,
                                  [4_581_279_602, 2_242_497_085], 13_349_487_441_858)

# A streamed sample: Podman fills precpu_stats and preread from the sample before (5 s).
PODMAN_STREAMED: dict[str, Any] = {
    **podman_sample("2026-11-28T00:14:44.239248471Z", 21_132_220_814,
                    [16_267_636_269, 4_865_497_255], 13_369_451_978_256),
    "preread": "2026-11-28T00:14:39.218648432Z",
    "precpu_stats": {"cpu_usage": {"total_usage": 16_253_269_972,
                                   "percpu_usage": [12_604_085_914, 3_649_184_058]},
                     "system_cpu_usage": 13_362_777_444_407, "online_cpus": 2},
}


def docker_sample(*, read: str, preread: str, total: int, pretotal: int, system: int,
                  presystem: int, online: int = 4) -> dict[str, Any]:
    """A Docker one-shot sample (``stream=false``): it carries the reading before it."""
    return {
        "read": read, "preread": preread, "name": "/web",
        "cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system,
                      "online_cpus": online},
        "precpu_stats": {"cpu_usage": {"total_usage": pretotal},
                         "system_cpu_usage": presystem, "online_cpus": online},
        "memory_stats": {"usage": 1_000, "limit": 10_000},
    }


# 1.002 s between the readings; Docker's system time grew by 4 CPUs times that, in
# whole 10 ms ticks (401 of them). The container used 0.5 s of CPU.
DOCKER = docker_sample(read="2024-05-01T10:00:01.002Z", preread="2024-05-01T10:00:00Z",
                       total=1_700_000_000, pretotal=1_200_000_000,
                       system=80_016_010_000_000, presystem=80_012_000_000_000)


def seconds(stamp: str) -> float:
    """An engine stamp in seconds since the epoch (microseconds are plenty here)."""
    day, _, clock = stamp.rstrip("Z").partition("T")
    whole, _, fraction = clock.partition(".")
    moment = datetime.fromisoformat(f"{day}T{whole}+00:00")
    return moment.timestamp() + float(f"0.{fraction or 0}")


def used(stats: dict[str, Any], key: str = "cpu_stats") -> int:
    return int(stats[key]["cpu_usage"]["total_usage"])


def docker_formula(now: dict[str, Any], before: dict[str, Any],
                   key: str = "cpu_stats") -> float:
    """What ``docker stats`` computes: CPU delta / system delta * online CPUs * 100."""
    cpu = used(now) - used(before, key)
    system = now["cpu_stats"]["system_cpu_usage"] - before[key]["system_cpu_usage"]
    return cpu / system * now["cpu_stats"]["online_cpus"] * 100.0


# -- Podman ------------------------------------------------------------------------------


def test_podman_cpu_is_cpu_time_over_the_time_between_the_readings() -> None:
    expected = ((used(PODMAN_BUSY_AFTER) - used(PODMAN_BUSY_BEFORE)) / 1e9
                / (seconds(PODMAN_BUSY_AFTER["read"]) - seconds(PODMAN_BUSY_BEFORE["read"]))
                * 100.0)
    assert cpu_percent(PODMAN_BUSY_AFTER, PODMAN_BUSY_BEFORE) == pytest.approx(expected)
    # One spinning shell uses at most one CPU; Docker's formula, dividing by Podman's
    # busy-only system time, read far more than that for these very samples.
    assert cpu_percent(PODMAN_BUSY_AFTER, PODMAN_BUSY_BEFORE) <= 100.0
    assert docker_formula(PODMAN_BUSY_AFTER, PODMAN_BUSY_BEFORE) > 150.0


def test_a_podman_streamed_sample_is_measured_against_its_own_preread() -> None:
    elapsed = seconds(PODMAN_STREAMED["read"]) - seconds(PODMAN_STREAMED["preread"])
    expected = (used(PODMAN_STREAMED) - used(PODMAN_STREAMED, "precpu_stats")) / 1e9
    expected = expected / elapsed * 100.0
    sample = StatsSample.from_attrs(PODMAN_STREAMED)
    assert sample.cpu_percent == pytest.approx(expected)
    assert sample.cpu_percent <= 100.0
    assert docker_formula(PODMAN_STREAMED, PODMAN_STREAMED, "precpu_stats") > 120.0


def test_a_podman_one_shot_sample_alone_has_nothing_to_compare_with() -> None:
    # Unknown, not idle: NaN, as cpu_percent_since says it.
    assert math.isnan(cpu_percent(PODMAN_BUSY_AFTER))
    assert math.isnan(StatsSample.from_attrs(PODMAN_BUSY_AFTER).cpu_percent)


def test_from_attrs_measures_against_the_previous_sample() -> None:
    sample = StatsSample.from_attrs(PODMAN_BUSY_AFTER, previous=PODMAN_BUSY_BEFORE)
    assert sample.cpu_percent == cpu_percent(PODMAN_BUSY_AFTER, PODMAN_BUSY_BEFORE)
    assert 0 < sample.cpu_percent <= 100.0


def test_cpu_percent_since_between_two_samples() -> None:
    before = StatsSample.from_attrs(PODMAN_BUSY_BEFORE)
    after = StatsSample.from_attrs(PODMAN_BUSY_AFTER)
    assert after.cpu_percent_since(before) == cpu_percent(PODMAN_BUSY_AFTER,
                                                          PODMAN_BUSY_BEFORE)
    # A counter that did not move in a second: 0 %.
    still = copy.deepcopy(PODMAN_BUSY_BEFORE)
    still["read"] = PODMAN_BUSY_AFTER["read"]
    assert StatsSample.from_attrs(still).cpu_percent_since(before) == 0.0


def test_cpu_percent_since_is_nan_when_the_counter_went_back() -> None:
    # The container restarted between the two: its CPU time began again from zero.
    restarted = copy.deepcopy(PODMAN_BUSY_AFTER)
    restarted["cpu_stats"]["cpu_usage"]["total_usage"] = 1_000
    before = StatsSample.from_attrs(PODMAN_BUSY_BEFORE)
    assert math.isnan(StatsSample.from_attrs(restarted).cpu_percent_since(before))
    # docker stats shows 0.00 % there; the one-shot figure says unknown too, not idle.
    assert math.isnan(cpu_percent(restarted, PODMAN_BUSY_BEFORE))


# -- Docker ------------------------------------------------------------------------------


def test_docker_agrees_with_the_docker_stats_formula() -> None:
    sample = StatsSample.from_attrs(DOCKER)
    # Within the 10 ms tick of /proc/stat, on which Docker's system time is counted.
    assert sample.cpu_percent == pytest.approx(docker_formula(DOCKER, DOCKER,
                                                              "precpu_stats"), rel=0.01)
    assert sample.cpu_percent == pytest.approx(
        (used(DOCKER) - used(DOCKER, "precpu_stats")) / 1e9
        / (seconds(DOCKER["read"]) - seconds(DOCKER["preread"])) * 100.0)


def test_docker_samples_one_after_the_other() -> None:
    later = docker_sample(read="2024-05-01T10:00:02.003Z", preread=DOCKER["read"],
                          total=2_900_000_000, pretotal=used(DOCKER),
                          system=80_020_010_000_000,
                          presystem=DOCKER["cpu_stats"]["system_cpu_usage"])
    between = StatsSample.from_attrs(later).cpu_percent_since(StatsSample.from_attrs(DOCKER))
    # 1.2 s of CPU (two busy threads) in about a second: more than one CPU, as docker
    # stats shows it, and the same whether from precpu_stats or the previous sample.
    assert between > 100.0
    assert between == pytest.approx(StatsSample.from_attrs(later).cpu_percent)
    assert between == pytest.approx(docker_formula(later, DOCKER), rel=0.01)


def test_without_times_docker_formula_is_used() -> None:
    timeless = copy.deepcopy(DOCKER)
    del timeless["read"], timeless["preread"]
    assert cpu_percent(timeless) == pytest.approx(docker_formula(DOCKER, DOCKER,
                                                                 "precpu_stats"))
    # Docker's first streamed sample: a zeroed earlier reading, nothing to compare with.
    first = copy.deepcopy(DOCKER)
    first["preread"] = "0001-01-01T00:00:00Z"
    first["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
    assert math.isnan(cpu_percent(first))


# -- the engines' time stamps --------------------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [
    # Go drops trailing zeros of the nanoseconds: 8 digits, then 9.
    ("2026-11-28T00:14:32.12386789Z", "2026-11-28T00:14:32.623867891Z"),
    # Podman stamps local time: an offset, not Z.
    ("2026-11-28T00:14:32Z", "2026-11-28T01:14:32.5+01:00"),
    ("2026-11-28T00:14:32.9-02:00", "2026-11-28T02:14:33.4Z"),
])
def test_half_a_second_of_cpu_in_half_a_second_whatever_the_stamps(before: str,
                                                                   after: str) -> None:
    first = {"read": before, "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}}}
    second = {"read": after, "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}}}
    assert cpu_percent(second, first) == pytest.approx(100.0, abs=1e-3)


def test_a_reading_not_after_the_other_has_no_cpu_figure() -> None:
    later = copy.deepcopy(PODMAN_BUSY_AFTER)
    later["read"] = PODMAN_BUSY_BEFORE["read"]
    del later["cpu_stats"]["system_cpu_usage"]  # and no system time to fall back on
    assert math.isnan(cpu_percent(later, PODMAN_BUSY_BEFORE))
    assert math.isnan(StatsSample.from_attrs(later).cpu_percent_since(
        StatsSample.from_attrs(PODMAN_BUSY_BEFORE)))
