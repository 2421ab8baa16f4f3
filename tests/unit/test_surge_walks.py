"""Surge's walks over services stay iterative and linear: a ``depends_on`` chain of
1,500 services (which crashed the validator with RecursionError) plans, in order."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator

import pytest

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.surge import SurgeError, desired_state, plan_surge
from ghostpanel_kernel.surge._desired import start_order
from ghostpanel_kernel.surge._observe import _named_service

from .fake_engine import FakeEngine, env_for, json_answer

CHAIN = 1_500


def chain_boltfile(length: int) -> str:
    """``s0`` <- ``s1`` <- ... each service depending on the one before, listed last
    first so that the file's order is the reverse of the start order."""
    services = [f'[services.s{i}]\nimage = "localhost/busybox:latest"\n'
                + (f'depends_on = ["s{i - 1}"]\n' if i else "")
                for i in reversed(range(length))]
    return 'project = "p"\n\n' + "\n".join(services)


def test_start_order_of_a_long_chain_is_iterative_and_linear() -> None:
    chain = {f"s{i}": [f"s{i - 1}"] if i else [] for i in reversed(range(20_000))}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursion through the chain would fail at once
    try:
        began = time.perf_counter()
        order = start_order(chain)
        took = time.perf_counter() - began
    finally:
        sys.setrecursionlimit(limit)
    assert order == [f"s{i}" for i in range(20_000)]
    assert took < 1.0, f"20,000 services took {took:.2f} s: the walk is not linear"


def test_start_order_keeps_the_rounds_and_the_file_order() -> None:
    assert start_order({"web": ["api"], "api": ["db"], "db": [], "cache": []}) == [
        "db", "cache", "api", "web"]
    # Two dependencies of one service, one listed twice: it waits for both, once each.
    assert start_order({"app": ["b", "a", "b"], "b": ["a"], "a": []}) == ["a", "b", "app"]
    with pytest.raises(SurgeError, match="depends_on has a cycle among: x, y"):
        start_order({"x": ["y"], "y": ["x"], "z": []})
    with pytest.raises(SurgeError, match="depends on `nowhere`, which is not defined"):
        start_order({"x": ["nowhere"]})


def test_names_are_read_by_lookup_and_the_first_listed_service_wins() -> None:
    position = {"web": 0, "web_2": 1, "db": 2}
    assert _named_service("p", "p_web", position) == ("web", 1)
    assert _named_service("p", "p_web_3", position) == ("web", 3)
    assert _named_service("p", "p_web_2", position) == ("web", 2)  # web is listed first
    assert _named_service("p", "p_web_2", {"web_2": 0, "web": 1}) == ("web_2", 1)
    for name in ("p_web_0", "p_web_x", "p_cache", "q_web", "p_", "p_db_01"):
        assert _named_service("p", name, position) is None, name


@pytest.fixture
async def empty_engine() -> AsyncIterator[Environment]:
    engine = FakeEngine()
    engine.routes[("GET", "/containers/json")] = json_answer([])
    engine.routes[("GET", "/networks")] = json_answer([{"Name": "podman", "Labels": {}}])
    engine.routes[("GET", "/volumes")] = json_answer({"Volumes": []})
    env = env_for(engine, name="east")
    yield env
    await env.aclose()


async def test_plan_of_a_1500_service_depends_on_chain(empty_engine: Environment) -> None:
    boltfile = Boltfile.loads(chain_boltfile(CHAIN))
    assert list(desired_state(boltfile).services)[:3] == ["s0", "s1", "s2"]
    began = time.perf_counter()
    plan = await plan_surge(boltfile, [empty_engine])
    took = time.perf_counter() - began
    [east] = plan.environments
    assert east.error is None
    assert [(a.kind, a.container) for a in east.actions] == [
        ("create", "p_default"), *(("create", f"p_s{i}") for i in range(CHAIN))]
    assert took < 10, f"planning {CHAIN} chained services took {took:.1f} s"
