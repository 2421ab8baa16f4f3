"""``StatsMonitor`` without a browser, against real Podman engines.

A busy container (a shell spinning) and an idle one are sampled for real; what the
monitor measured is read through ``.frame()`` and ``.samples``, what the charts would
draw through their ``ColumnDataSource``\\ s (the kernel side of what the browser shows).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ghostpanel_widgets._stats_monitor import StatsMonitor, derive_point
from traitlets import TraitError

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment, StatsSample
from tests.integration.waiting import until as wait_until
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

BUSY = ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


# This widget waits on the engine's streams and samples: a longer default wait.
until = functools.partial(wait_until, timeout=15.0)


async def new_samples(monitor: StatsMonitor, name: str, count: int) -> None:
    """Wait until the sampling loop has taken ``count`` more samples of ``name``."""
    for _ in range(count):
        kept = monitor.samples[name]
        last = kept[-1] if kept else None

        def newer(last: StatsSample | None = last) -> bool:
            kept = monitor.samples[name]
            return bool(kept) and kept[-1] is not last

        await until(newer, what=f"a sample of {name}")


@pytest.fixture
async def monitors() -> AsyncIterator[Callable[..., StatsMonitor]]:
    """``monitors(target, containers, **options)``: a StatsMonitor, closed (its sampling
    loop ended) after the test."""
    made: list[StatsMonitor] = []

    def make(*args: Any, **options: Any) -> StatsMonitor:
        monitor = StatsMonitor(*args, **options)
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        async with asyncio.timeout(10):  # a loop that does not end fails the test
            await monitor.aclose()
        assert monitor.task is None or monitor.task.done()


async def test_a_busy_container_shows_its_cpu_and_the_window_stays_bounded(
        env: Environment, make_container, monitors) -> None:
    busy = await make_container(command=BUSY)
    idle = await make_container(command=IDLE)
    await busy.start()
    await idle.start()

    monitor = monitors(env, [busy.name, idle.name], interval=0.3, window=4)
    assert monitor.interval_picker.value == 0.3  # a custom interval joins the choices
    await new_samples(monitor, busy.name, 6)  # more than the window holds
    # One more, by hand: it waits for the loop's tick in flight, so that every
    # container's sample of this tick is in and charted.
    await monitor.sample_once()

    frame = monitor.frame()
    assert set(frame["container"]) == {busy.name, idle.name}
    assert list(frame.columns[:3]) == ["time", "environment", "container"]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["time"].is_monotonic_increasing
    cpu = frame.groupby("container")["cpu_percent"].max()
    assert cpu[busy.name] > 20, frame
    # One spinning shell uses at most one CPU: 100 % (Podman's own figures, divided by
    # its busy-only system_cpu_usage, read near 200 % here on a quiet 2-CPU host).
    assert frame.loc[frame["container"] == busy.name, "cpu_percent"].max() < 150, frame
    assert cpu[idle.name] < cpu[busy.name]
    assert (frame["memory_usage"] > 0).all()
    assert (frame["memory_limit"] >= frame["memory_usage"]).all()

    # The window bounds everything kept and everything charted.
    for name in (busy.name, idle.name):
        assert len(monitor.samples[name]) == 4
        data = monitor.sources[name].data
        assert {len(column) for column in data.values()} == {4}
        times = list(data["time"])
        assert times == sorted(times)
        assert data["cpu"] == [point.cpu for point in monitor.points[name]]
    assert len(frame) == 8
    # One line per container in each chart, with a legend.
    cpu_legend = [item.label.value for item in monitor.figures["cpu"].legend[0].items]
    assert cpu_legend == [busy.name, idle.name]
    net_legend = [item.label.value for item in monitor.figures["network"].legend[0].items]
    assert net_legend == [f"{busy.name} rx", f"{busy.name} tx", f"{idle.name} rx",
                          f"{idle.name} tx"]
    assert monitor.status.level == "info"
    assert f"Sampling {busy.name}, {idle.name} every 0.3 s" in monitor.status.message

    # A smaller window keeps the newest samples, charts included.
    newest = monitor.samples[busy.name][-2:]
    monitor.window = 2
    assert monitor.samples[busy.name][-2:] == newest
    assert len(monitor.sources[busy.name].data["time"]) <= 3  # a tick may have landed


async def test_sample_once_by_hand(env: Environment, make_container, monitors) -> None:
    busy = await make_container(command=BUSY)
    await busy.start()
    monitor = monitors(env, busy.name, interval=5, window=10, start=False)
    assert monitor.task is None
    first = await monitor.sample_once()
    assert [sample.container for sample in first] == [busy.name]
    # The first sample takes two readings (cpu_window apart): CPU is measured at once.
    assert first[0].cpu_percent > 20
    await asyncio.sleep(0.5)
    second = await monitor.sample_once()
    assert second[0].cpu_percent > 20
    assert len(monitor.samples[busy.name]) == 2
    assert len(monitor.sources[busy.name].data["cpu"]) == 2
    # The first sample took two readings: it has rates already.
    points = monitor.points[busy.name]
    assert points[0].net_rx >= 0 and points[1].net_rx >= 0
    assert [p.cpu for p in points] == [s.cpu_percent for s in monitor.samples[busy.name]]


async def test_the_interval_selector_sets_the_interval(
        env: Environment, make_container, monitors) -> None:
    idle = await make_container(command=IDLE)
    await idle.start()
    monitor = monitors(env, idle.name, interval=30)
    await until(lambda: len(monitor.samples[idle.name]) == 1, what="the first sample")
    assert [value for _, value in monitor.interval_picker.options] == [
        1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
    monitor.interval_picker.value = 1.0  # picked in the browser
    assert monitor.interval == 1.0
    # The loop takes the new interval at once, not after the old 30 s.
    await until(lambda: len(monitor.samples[idle.name]) >= 3, timeout=6,
                what="samples at the new interval")
    with pytest.raises(TraitError, match=r"at least 0\.1"):
        monitor.interval = 0
    assert monitor.interval == 1.0
    # An interval set in code joins the selector's choices.
    monitor.interval = 3
    assert monitor.interval_picker.value == 3.0
    assert 3.0 in [value for _, value in monitor.interval_picker.options]


async def test_a_missing_container_is_said_and_the_others_go_on(
        env: Environment, make_container, monitors) -> None:
    idle = await make_container(command=IDLE)
    await idle.start()
    monitor = monitors(env, [idle.name, "gp-test-no-such-container"], interval=0.2,
                       start=False)
    await monitor.sample_once()
    await monitor.sample_once()
    assert monitor.status.level == "error"
    assert monitor.status.message == "gp-test-no-such-container: no such container on a"
    assert len(monitor.samples[idle.name]) == 2
    assert monitor.samples["gp-test-no-such-container"] == []
    assert set(monitor.frame()["container"]) == {idle.name}


async def test_containers_on_two_engines(env: Environment, env_b: Environment,
                                         make_container, make_container_b,
                                         monitors) -> None:
    here = await make_container(command=IDLE)
    there = await make_container_b(command=BUSY)
    await here.start()
    await there.start()
    monitor = monitors([(env, here.name), (env_b, there.name)], start=False)
    await monitor.sample_once()
    frame = monitor.frame()
    assert sorted(zip(frame["environment"], frame["container"], strict=True)) == [
        ("a", f"a/{here.name}"), ("b", f"b/{there.name}")]
    assert set(monitor.sources) == {f"a/{here.name}", f"b/{there.name}"}


async def test_an_engine_that_goes_away_is_said_and_charted_again_when_back(
        extra_podman_engine: Callable[..., PodmanService], monitors) -> None:
    engine = extra_podman_engine()
    async with connect(engine.url, name="doomed") as env:
        busy = await env.containers.create(image=BUSYBOX_REFERENCE, name="gp-busy",
                                           command=BUSY)
        await busy.start()
        monitor = monitors(env, busy.name, interval=0.3, start=False)
        try:
            await monitor.sample_once()
            assert monitor.status.level == "info"

            await asyncio.to_thread(engine.stop)
            assert await monitor.sample_once() == []
            assert monitor.status.level == "error"
            assert monitor.status.message.startswith("gp-busy: ")
            assert str(engine.socket_path) in monitor.status.message
            assert len(monitor.samples["gp-busy"]) == 1  # what was measured stays

            await asyncio.to_thread(engine.start)
            again = await monitor.sample_once()
            assert [sample.container for sample in again] == ["gp-busy"]
            assert monitor.status.level == "info"
            assert len(monitor.samples["gp-busy"]) == 2
        finally:
            await monitor.aclose()


def test_rates_come_from_counter_deltas() -> None:
    def sample(read: str, rx: int, written: int, cpu_ns: int) -> StatsSample:
        attrs = {"cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}}}
        return StatsSample(container="web", read=read, cpu_percent=180.0, memory_usage=10,
                           memory_limit=100, memory_percent=10.0, net_rx=rx, net_tx=0,
                           block_read=0, block_write=written, pids=1, attrs=attrs)

    before = sample("2024-05-01T10:00:00.5Z", 1_000, 4_096, 7_000_000_000)
    after = sample("2024-05-01T10:00:02.5Z", 3_000, 12_288, 8_500_000_000)
    point = derive_point(after, before)
    assert point.net_rx == 1_000.0 and point.block_write == 4_096.0
    assert point.cpu == 75.0  # 1.5 s of CPU in 2 s, whatever the engine's own figure
    assert point.net_tx == 0.0
    assert point.time == 1714557602500.0  # ms since the epoch, the engine's time
    first = derive_point(before, None)
    assert math.isnan(first.net_rx) and math.isnan(first.block_write)
    assert first.cpu == 180.0  # no earlier reading: the engine's figure
    # A counter that went back (the container restarted) has no rate.
    restarted = derive_point(sample("2024-05-01T10:00:04.5Z", 10, 0, 1_000), after)
    assert math.isnan(restarted.net_rx) and math.isnan(restarted.cpu)
