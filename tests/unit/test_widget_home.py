"""The Home view's parts without an engine: what a summary reads (on the canned Podman
of tests/unit/fake_engine.py), what a card says, and the view's clicks and arguments.

The real engines, events and a dead host are tests/integration/test_widget_home.py's.
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import HomeView
from ghostpanel_widgets._home_card import card_html
from ipywidgets.widgets.widget import _instances

from ghostpanel_kernel.engine import EngineTimeout, Environment
from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec
from ghostpanel_kernel.environments._summary import EnvironmentSummary, SummaryReader
from tests.unit.fake_engine import FakeEngine, env_for, json_answer

GiB = 1024 ** 3


def _container(ident: str, state: str) -> dict[str, Any]:
    return {"Id": ident, "Names": [f"/{ident}"], "State": state, "Status": state,
            "Image": "busybox"}


class Podman:
    """A canned Podman with three containers (two running, one unhealthy) whose CPU
    counters advance 0.5 s of CPU per second of the stats' ``read`` stamps."""

    def __init__(self, *, silent_stats: set[str] | None = None,
                 silent_listing: bool = False, stats_delay: float = 0.0) -> None:
        self.reads: dict[str, int] = {}
        self.stats_delay = stats_delay
        self.silent_stats = silent_stats or set()
        self.silent_listing = silent_listing
        self.engine = FakeEngine({
            ("GET", "/containers/json"): self.listing,
            ("GET", "/images/json"): json_answer([{"Id": "i1"}, {"Id": "i2"}]),
            ("GET", "/volumes"): json_answer({"Volumes": [{"Name": "v1"}]}),
            ("GET", "/info"): json_answer({"NCPU": 4, "MemTotal": 8 * GiB}),
            ("GET", "/containers/web/stats"): self.stats("web", 100 * 2**20),
            ("GET", "/containers/db/stats"): self.stats("db", 50 * 2**20),
        })

    async def listing(self, request: httpx.Request) -> httpx.Response:
        if self.silent_listing:
            await asyncio.sleep(3600)
        if "unhealthy" in request.url.params.get("filters", ""):
            return httpx.Response(200, json=[_container("db", "running")])
        return httpx.Response(200, json=[_container("web", "running"),
                                         _container("db", "running"),
                                         _container("old", "exited")])

    def stats(self, ident: str, memory: int) -> Any:
        async def answer(request: httpx.Request) -> httpx.Response:
            if ident in self.silent_stats:
                await asyncio.sleep(3600)
            await asyncio.sleep(self.stats_delay)
            count = self.reads[ident] = self.reads.get(ident, 0) + 1
            return httpx.Response(200, json={
                "read": f"2026-12-08T01:00:{2 * count:02d}Z",
                "preread": "0001-01-01T00:00:00Z",
                "cpu_stats": {"cpu_usage": {"total_usage": count * 1_000_000_000},
                              "online_cpus": 4},
                "precpu_stats": {"cpu_usage": {"total_usage": 0}},
                "memory_stats": {"usage": memory, "limit": 8 * GiB}})
        return answer

    def environment(self, name: str = "a") -> Environment:
        return env_for(self.engine, f"tcp://{name}.example:2375", name=name)


# -- SummaryReader --------------------------------------------------------------------


async def test_a_summary_counts_and_measures_cpu_between_two_reads() -> None:
    podman = Podman()
    reader = SummaryReader()
    async with podman.environment() as env:
        first = await reader.read(env)
        second = await reader.read(env)
    assert first.reachable and first.reason == ""
    assert (first.engine, first.version) == ("Podman", "4.3.1")
    assert (first.running, first.stopped, first.paused, first.unhealthy) == (2, 1, 0, 1)
    assert (first.images, first.volumes, first.containers) == (2, 1, 3)
    assert (first.host_cpus, first.host_memory) == (4, 8 * GiB)
    # One Podman sample tells no CPU share; the second read measures it: each
    # container used 1 s of CPU in 2 s of the engine's clock, 0.5 cores each.
    assert first.cpu_cores is None and first.memory_bytes == 150 * 2**20
    assert second.cpu_cores == pytest.approx(1.0)
    assert second.sampled == 2
    # /info is slow on Podman (0.45 s): read once, not on every refresh.
    assert podman.engine.count("/v1.41/info") == 1


async def test_stats_past_their_budget_are_left_out_and_said() -> None:
    reader = SummaryReader(stats_budget=0.2)
    async with Podman(silent_stats={"db"}).environment() as env:
        summary = await reader.read(env)
    assert summary.reachable
    assert (summary.running, summary.sampled) == (2, 1)
    assert summary.memory_bytes == 100 * 2**20
    assert "1 of 2 running containers sampled" in card_html("a", env.url, summary)


async def test_the_stats_round_keeps_within_the_read_s_timeout() -> None:
    # A budget longer than the timeout: the round is cut at the deadline, and the
    # counts still arrive (a partial sum), rather than the whole read timing out.
    reader = SummaryReader(timeout=0.5, stats_budget=2.0)
    async with Podman(silent_stats={"db"}).environment() as env:
        summary = await reader.read(env)
    assert summary.reachable, summary.reason
    assert (summary.running, summary.sampled) == (2, 1)


async def test_a_slow_stats_round_is_not_repeated_at_once() -> None:
    podman = Podman(stats_delay=0.15)  # a round of 0.15 s: paced for 4 x 0.15 s after it
    reader = SummaryReader()
    async with podman.environment() as env:
        first = await reader.read(env)
        again = await reader.read(env)  # at once: the round's figures are reused
        assert podman.reads == {"web": 1, "db": 1}
        assert (again.memory_bytes, again.sampled) == (first.memory_bytes, 2)
        _, _, duration = reader._rounds["a"]
        await asyncio.sleep(reader.stats_pacing * duration + 0.05)
        later = await reader.read(env)
    assert podman.reads == {"web": 2, "db": 2}
    assert later.cpu_cores == pytest.approx(1.0)


async def test_an_engine_that_does_not_answer_in_time_is_a_timeout_error() -> None:
    reader = SummaryReader(timeout=0.3)
    async with Podman(silent_listing=True).environment() as env:
        summary = await reader.read(env)
    assert not summary.reachable
    assert isinstance(summary.error, EngineTimeout)
    assert summary.reason.startswith("no answer within 0.3 s")
    assert "a.example" in summary.reason


async def test_read_all_reports_dead_specs_beside_live_environments(tmp_path: Path) -> None:
    dead = EnvironmentSpec("dead", f"unix://{tmp_path}/nothing.sock")
    async with Podman().environment("live") as live:
        summaries = await SummaryReader().read_all([live, dead])
    assert [s.name for s in summaries] == ["live", "dead"]
    assert summaries[0].running == 2
    # The one failure, not a task group of six identical ones.
    assert summaries[1].reason.startswith(f"engine socket {tmp_path}/nothing.sock does not "
                                          "exist")


def test_bad_reader_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SummaryReader(timeout=0)


# -- card_html ------------------------------------------------------------------------

MOMENT = datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)


def test_a_card_before_its_first_answer_says_it_is_connecting() -> None:
    text = card_html("edge", "tcp://edge:2375", None)
    assert "connecting" in text and "tcp://edge:2375" in text and "Refreshed" not in text


def test_a_dead_card_says_why_and_when_it_last_answered() -> None:
    answered = EnvironmentSummary("edge", "unix:///run/x.sock", MOMENT, running=2, stopped=1,
                                  engine="Docker", version="24.0.7")
    dead = EnvironmentSummary("edge", "unix:///run/x.sock", MOMENT,
                              error=OSError("engine socket /run/x.sock does not exist\n"
                                            "(start the engine)"))
    text = html.unescape(card_html("edge", dead.url, dead, last_answer=answered))
    assert "unreachable" in text
    assert "Unreachable: engine socket /run/x.sock does not exist (start the engine)" in text
    assert "Last answered at 01:02:03 UTC: 3 containers, 2 running." in text
    assert "Docker" not in text  # nothing about the engine that no longer answers


def test_a_live_card_shows_its_figures_escaped() -> None:
    summary = EnvironmentSummary("a<b", "tcp://h:2375", MOMENT, engine="Podman",
                                 version="4.3.1", running=3, stopped=2, unhealthy=1, images=4,
                                 volumes=5, cpu_cores=1.234, memory_bytes=3 * 2**20,
                                 sampled=3, host_cpus=8, host_memory=16 * GiB, elapsed=0.042)
    text = card_html(summary.name, summary.url, summary)
    assert "a&lt;b" in text and "a<b" not in text
    plain = html.unescape(text)
    for expected in ("Podman 4.3.1", "1.23 of 8 cores", "3 MiB of 16 GiB",
                     "Refreshed 01:02:03 UTC (0.04 s)"):
        assert expected in plain, expected
    assert 'class="gp-home-running"><b>3</b>' in text
    assert 'class="gp-home-unhealthy" style="color: #a15c00"><b>1</b>' in text
    assert "sampled" not in text  # every running container was


# -- HomeView --------------------------------------------------------------------------


async def test_clicking_a_card_opens_its_environment() -> None:
    before = set(_instances)
    async with Podman().environment("a") as a, Podman().environment("b") as b:
        view = HomeView([a, b], refresh=60, events=False)
        try:
            summaries = await view.refresh()
            assert [s.running for s in summaries] == [2, 2]
            assert view.cards["b"].summary is summaries[1]
            opened: list[str] = []
            view.on_open(opened.append)
            view.cards["b"].open_button.click()
            view.cards["b"].open_button.click()  # again: callbacks hear every click
            assert view.opened == "b" and opened == ["b", "b"]

            def broken(name: str) -> None:
                raise RuntimeError("dashboard bug")

            view.on_open(broken)
            view.open_environment("a")
            assert view.opened == "a" and opened[-1] == "a"
            assert view.status.level == "error"
            assert view.status.message == "Opening a failed: RuntimeError: dashboard bug"
            with pytest.raises(KeyError, match="no environment 'c'"):
                view.open_environment("c")

            # Live off stops the reading loops; the toggle turns them on again.
            loops = [slot.loop for slot in view._slots.values()]
            assert all(loop is not None and not loop.done() for loop in loops)
            view.live = False
            assert view.live_toggle.value is False and view.live_toggle.icon == "play"
            assert all(slot.loop is None for slot in view._slots.values())
            view.live_toggle.value = True
            assert view.live and all(slot.loop is not None for slot in view._slots.values())
        finally:
            view.close()
        await asyncio.sleep(0)  # the cancelled loops end
        assert all(task.done() for task in view._tasks)
    assert set(_instances) == before, "the view left widgets open"


def test_the_registry_s_environments_without_an_event_loop(tmp_path: Path) -> None:
    registry = EnvironmentRegistry(f"sqlite:///{tmp_path}/registry.db", detect=lambda: None)
    try:
        registry.add("east", f"unix://{tmp_path}/east.sock")
        registry.add("west", f"unix://{tmp_path}/west.sock")
        view = HomeView(registry=registry)
        try:
            assert list(view.cards) == ["east", "west"]
            assert "connecting" in view.cards["east"].body.value
            assert view.status.message.startswith("Reading the environments needs a "
                                                  "running asyncio event loop")
        finally:
            view.close()
    finally:
        registry.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="refresh must be a positive"):
        HomeView([], refresh=0)
    with pytest.raises(TypeError, match="Environment"):
        HomeView(["tcp://host:2375"])  # type: ignore[list-item]
    empty = HomeView([])
    try:
        assert empty.status.level == "warning" and "ghostpanel env add" in empty.status.message
    finally:
        empty.close()
