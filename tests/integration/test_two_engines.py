"""Two environments on two engines: separate worlds, driven at the same time."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest

from ghostpanel_kernel.engine import Container, Environment, NotFound

pytestmark = pytest.mark.integration

TICKER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done"]


async def test_a_container_in_one_environment_is_not_in_the_other(
        env: Environment, env_b: Environment, make_container, make_container_b) -> None:
    name = f"gp-twin-{uuid.uuid4().hex[:8]}"
    # The same name on both engines: two hosts, two namespaces.
    in_a = await make_container(name=name)
    in_b = await make_container_b(name=name)
    assert in_a.id != in_b.id
    assert (in_a.environment, in_b.environment) == ("a", "b")

    listed_a = await env.containers.list(all=True, filters={"name": name})
    listed_b = await env_b.containers.list(all=True, filters={"name": name})
    assert [c.id for c in listed_a] == [in_a.id]
    assert [c.id for c in listed_b] == [in_b.id]
    assert {c.environment for c in listed_a} == {"a"}
    assert {c.environment for c in listed_b} == {"b"}
    with pytest.raises(NotFound):
        await env_b.containers.get(in_a.id)
    with pytest.raises(NotFound):
        await env.containers.get(in_b.id)

    # Starting one leaves the other alone.
    await in_a.start()
    await in_b.reload()
    assert in_b.state == "created"
    running_b = await env_b.containers.list(filters={"name": name})
    assert running_b == []


async def test_operations_run_concurrently_on_both(env: Environment, env_b: Environment,
                                                   make_container, make_container_b) -> None:
    # Created on both engines at once, then started one after the other: the two engines
    # share the host's default bridge and its iptables chains, and netavark setting up
    # both at the same instant fails ("iptables: Chain already exists"), an engine race
    # that is none of the client's business.
    in_a, in_b = await asyncio.gather(make_container(command=TICKER),
                                      make_container_b(command=TICKER))
    await in_a.start()
    await in_b.start()
    await asyncio.gather(in_a.reload(), in_b.reload())
    assert (in_a.state, in_b.state) == ("running", "running")

    # Two live log streams read side by side: lines of both arrive interleaved, so
    # neither stream waits for the other.
    arrivals: list[tuple[float, str, str]] = []

    async def read(container: Container, count: int) -> None:
        async with contextlib.aclosing(container.logs(follow=True)) as stream:
            async for line in stream:
                arrivals.append((time.monotonic(), container.environment, line.text))
                if sum(1 for _, where, _ in arrivals if where == container.environment) \
                        == count:
                    return

    async with asyncio.timeout(15):
        await asyncio.gather(read(in_a, 6), read(in_b, 6))
    from_a = [text for _, where, text in arrivals if where == "a"]
    from_b = [text for _, where, text in arrivals if where == "b"]
    assert from_a == [f"line{n}" for n in range(1, 7)]
    assert from_b == [f"line{n}" for n in range(1, 7)]
    order = [where for _, where, _ in sorted(arrivals)]
    # Interleaved: b's first line came before a's last one, and the other way round.
    assert order.index("b") < len(order) - 1 - order[::-1].index("a")
    assert order.index("a") < len(order) - 1 - order[::-1].index("b")

    # Reads on both at once agree with reads one after the other.
    together = await asyncio.gather(env.containers.list(), env_b.containers.list(),
                                    env.system.info(), env_b.system.info())
    assert in_a.id in [c.id for c in together[0]]
    assert in_b.id in [c.id for c in together[1]]
    assert in_a.id not in [c.id for c in together[1]]
    assert together[2]["ID"] != together[3]["ID"] or \
        together[2]["DockerRootDir"] != together[3]["DockerRootDir"]
