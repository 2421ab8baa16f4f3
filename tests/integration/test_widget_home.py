"""The Home view on real engines: the session's Podman (``a``), a second one (``b``), a
socket with nothing behind it (``dead``) and one that accepts and never answers
(``silent``).

Counts are compared with what each engine had before the test (other tests of the
session share its engines), and change as containers are made, started and stopped:
on :meth:`HomeView.refresh`, and by themselves after an engine event.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from ghostpanel_widgets import HomeView
from ipywidgets.widgets.widget import _instances

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.environments import EnvironmentSpec
from ghostpanel_kernel.environments._summary import EnvironmentSummary
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration

BURN = ["sh", "-c", "while :; do :; done"]


@pytest.fixture
def dead_spec() -> Iterator[EnvironmentSpec]:
    """An environment whose socket path has nothing behind it."""
    with tempfile.TemporaryDirectory(prefix="homeview-") as folder:
        yield EnvironmentSpec("dead", f"unix://{folder}/nothing.sock")


@pytest.fixture
def silent_spec() -> Iterator[EnvironmentSpec]:
    """An environment whose socket accepts connections and never answers."""
    with tempfile.TemporaryDirectory(prefix="homeview-") as folder:
        path = f"{folder}/silent.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(64)  # connections wait in the backlog: accepted, never read
            yield EnvironmentSpec("silent", f"unix://{path}")


@pytest.fixture
async def views() -> AsyncIterator[Callable[..., HomeView]]:
    """``views(...)`` makes a HomeView; all closed after the test, none left open."""
    made: list[HomeView] = []
    before = set(_instances)

    def make(*args: object, **kwargs: object) -> HomeView:
        view = HomeView(*args, **kwargs)  # type: ignore[arg-type]
        made.append(view)
        return view

    yield make
    for view in made:
        tasks = list(view._tasks)
        view.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.05)  # the environments the views opened close
    left = set(_instances) - before
    assert not left, f"{len(left)} widgets left open"


async def until(condition: Callable[[], object], *, timeout: float = 20.0,
                what: str = "the condition") -> None:
    """Wait (on the loop the view's tasks run on) until ``condition()`` is truthy."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def figures(summary: EnvironmentSummary | None) -> tuple[int, int, int]:
    assert summary is not None and summary.reachable, summary
    return summary.running, summary.stopped, summary.unhealthy


async def test_cards_count_each_engine_and_the_dead_one_says_why(
        env: Environment, env_b: Environment, make_container, make_container_b,
        podman_engine: PodmanService, dead_spec: EnvironmentSpec, views) -> None:
    view = views([env, env_b, dead_spec], refresh=60, events=False)
    a0, b0, dead = await view.refresh()
    assert [card.name for card in view.cards.values()] == ["a", "b", "dead"]

    # The dead card: which socket, and why, in words.
    assert not dead.reachable
    text = html.unescape(view.cards["dead"].body.value)
    assert "unreachable" in text and dead_spec.url in text
    assert f"engine socket {dead_spec.url[len('unix://'):]} does not exist" in text
    assert "gp-home-card-down" in view.cards["dead"]._dom_classes

    # a: one running burner, one created, one running with a failing healthcheck.
    burner = await make_container(command=BURN)
    await burner.start()
    await make_container()
    sick = await make_container(healthcheck={"Test": ["CMD", "false"], "Retries": 1,
                                             "Interval": 3600 * 10**9})
    await sick.start()
    # No systemd timers here: run the check the way its timer would.
    await asyncio.to_thread(podman_engine.podman, "healthcheck", "run", sick.id, check=False)
    # b: two made, one started.
    started_b = await make_container_b()
    await started_b.start()
    await make_container_b()

    a1, b1, _ = await view.refresh()
    assert figures(a1) == (a0.running + 2, a0.stopped + 1, a0.unhealthy + 1)
    assert figures(b1) == (b0.running + 1, b0.stopped + 1, b0.unhealthy)
    assert (a1.engine, b1.engine) == ("Podman", "Podman") and a1.version
    assert a1.images >= 1 and a1.host_cpus and a1.host_memory
    body = view.cards["a"].body.value
    assert f'class="gp-home-running"><b>{a1.running}</b>' in body
    assert f"Podman {a1.version}" in body

    # Stopping and starting shows on the next refresh; the burner's CPU is measured
    # between two reads (Podman's one-shot stats carry no earlier reading).
    await sick.stop(timeout=0)
    await started_b.stop(timeout=0)
    await asyncio.sleep(0.5)
    a2, b2, dead2 = await view.refresh()
    assert figures(a2) == (a1.running - 1, a1.stopped + 1, a1.unhealthy - 1)
    assert figures(b2) == (b1.running - 1, b1.stopped + 1, b1.unhealthy)
    assert a2.cpu_cores is not None and a2.cpu_cores > 0.05  # one busy loop
    assert a2.memory_bytes is not None and a2.memory_bytes > 0
    assert a2.sampled == a2.running
    assert not dead2.reachable and "Refreshed" in view.cards["dead"].body.value


async def test_a_silent_host_does_not_hold_up_the_other_cards(
        env: Environment, env_b: Environment, silent_spec: EnvironmentSpec, views) -> None:
    # The live engines' version is negotiated beforehand, so that on a busy machine
    # their first read surely fits in the view's timeout.
    await asyncio.gather(env.version(), env_b.version())
    view = views([silent_spec, env, env_b], refresh=60, timeout=4, events=False)
    await until(lambda: view.summaries["a"] and view.summaries["b"], what="the live cards")
    # Both live cards are shown while the silent one still waits for its answer.
    assert view.summaries["silent"] is None
    assert "connecting" in view.cards["silent"].body.value
    assert figures(view.summaries["a"]) and figures(view.summaries["b"])

    await until(lambda: view.summaries["silent"], what="the silent card's timeout")
    silent = view.summaries["silent"]
    assert silent is not None and not silent.reachable
    assert silent.reason.startswith("no answer within 4 s")
    assert "no answer within 4 s" in view.cards["silent"].body.value


async def test_an_engine_event_refreshes_the_card_by_itself(
        env: Environment, make_container, views) -> None:
    view = views([env], refresh=600, timeout=10)
    await until(lambda: view.summaries["a"], what="the first read")
    first = view.summaries["a"]
    await until(lambda: view._slots["a"].watcher is not None, what="the events watcher")
    await asyncio.sleep(0.3)  # the events request reached the engine
    container = await make_container()
    await container.start()
    # No refresh asked for, and the next timed one is 10 minutes away: the events did it.
    await until(lambda: figures(view.summaries["a"])[0] == figures(first)[0] + 1,
                what="the card to count the new container")


async def test_the_registry_s_environments_by_default(
        env: Environment, dead_spec: EnvironmentSpec, views) -> None:
    from ghostpanel_kernel.environments import EnvironmentRegistry

    with tempfile.TemporaryDirectory(prefix="homeview-registry-") as folder:
        registry = EnvironmentRegistry(f"sqlite:///{Path(folder)}/registry.db",
                                       detect=lambda: None)
        with contextlib.closing(registry):
            registry.add("session", env.url)
            registry.add("dead", dead_spec.url)
            view = views(registry=registry, refresh=60, events=False)
            dead, session = await view.refresh()
    assert list(view.cards) == ["dead", "session"]  # the registry's order: by name
    assert session.reachable and session.engine == "Podman"
    assert not dead.reachable
