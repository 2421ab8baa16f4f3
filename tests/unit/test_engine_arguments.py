"""Arguments the engine would answer with a 500 are refused before any request is sent.

Podman 4.3 answers ``tail=-5``, ``stop?t=-5``, a host port of 99999 or an empty name with
an internal error that names neither the argument nor the call; GhostPanel refuses them
with a ``ValueError`` (``TypeError`` for the wrong type) that does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.engine._arguments import check_port, check_signal, check_tail
from tests.unit.fake_engine import FakeEngine, empty, env_for

Call = Callable[[Environment, Container], Awaitable[Any]]


async def _logs(env: Environment, c: Container, **options: Any) -> Any:
    return await c.logs(**options)


async def _log_batches(env: Environment, c: Container, **options: Any) -> Any:
    return [batch async for batch in c.log_batches(**options)]


BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("logs tail=-5", lambda env, c: _logs(env, c, tail=-5), ValueError, "tail must be 0 or more"),
    ("logs tail='last'", lambda env, c: _logs(env, c, tail="last"), ValueError, "'all' or a"),
    ("logs tail=True", lambda env, c: _logs(env, c, tail=True), TypeError, "tail must be an int"),
    ("log_batches tail=-1", lambda env, c: _log_batches(env, c, tail=-1), ValueError, "tail"),
    ("stop timeout=-5", lambda env, c: c.stop(timeout=-5), ValueError, "timeout must be 0"),
    ("restart timeout=-1", lambda env, c: c.restart(timeout=-1), ValueError, "timeout"),
    ("stop timeout=1.5", lambda env, c: c.stop(timeout=1.5), TypeError,  # type: ignore[arg-type]
     "timeout must be an integer"),
    ("kill signal=0", lambda env, c: c.kill(signal=0), ValueError, "1-64"),
    ("kill signal=99", lambda env, c: c.kill(signal=99), ValueError, "1-64"),
    ("kill signal=''", lambda env, c: c.kill(signal=""), ValueError, "SIGTERM"),
    ("kill signal='TERM; rm'", lambda env, c: c.kill(signal="TERM; rm"), ValueError, "signal"),
    ("rename ''", lambda env, c: c.rename(""), ValueError, "not a valid name"),
    ("rename '-x'", lambda env, c: c.rename("-x"), ValueError, "start with a letter"),
    ("wait condition", lambda env, c: c.wait(condition="gone"),  # type: ignore[arg-type]
     ValueError, "not-running"),
    ("wait timeout=0", lambda env, c: c.wait(timeout=0), ValueError, "positive"),
    ("exec []", lambda env, c: c.exec([]), ValueError, "needs a command"),
    ("create name=''", lambda env, c: env.containers.create(image="busybox", name=""),
     ValueError, "name '' is not a valid name"),
    ("create name='a b'", lambda env, c: env.containers.create(image="busybox", name="a b"),
     ValueError, "not a valid name"),
    ("create host port 99999", lambda env, c: env.containers.create(
        image="busybox", ports={8080: 99999}), ValueError, "host port must be 1-65535"),
    ("create host port 0", lambda env, c: env.containers.create(
        image="busybox", ports={8080: ("127.0.0.1", 0)}), ValueError, "1-65535"),
    ("create host address", lambda env, c: env.containers.create(
        image="busybox", ports={8080: ("localhost:80", 8080)}), ValueError, "IP address"),
    ("create stop_signal", lambda env, c: env.containers.create(
        image="busybox", stop_signal="SIG TERM"), ValueError, "signal"),
    ("create device relative", lambda env, c: env.containers.create(
        image="busybox", devices=["dev/fuse"]), ValueError, "device 'dev/fuse'"),
    ("create device permissions", lambda env, c: env.containers.create(
        image="busybox", devices=["/dev/fuse:/dev/fuse:rwx"]), ValueError, "rwm"),
    ("volume name ''", lambda env, c: env.volumes.create(""), ValueError, "volume name"),
    ("network name ''", lambda env, c: env.networks.create(""), ValueError, "network name"),
    ("network subnet", lambda env, c: env.networks.create("n", subnet="10.0.0/33"),
     ValueError, "CIDR"),
    ("network gateway", lambda env, c: env.networks.create("n", subnet="10.0.0.0/24",
                                                           gateway="10.0.0"),
     ValueError, "gateway"),
    ("image tag ''", lambda env, c: _tag(env, ""), ValueError, "repository"),
]


async def _tag(env: Environment, repository: str) -> None:
    from ghostpanel_kernel.engine import Image

    await Image(env.client, {"Id": "sha256:abc"}).tag(repository)


@pytest.mark.parametrize(("call", "error", "words"), [row[1:] for row in BAD_CALLS],
                         ids=[row[0] for row in BAD_CALLS])
async def test_refused_before_any_request(call: Call, error: type[Exception],
                                          words: str) -> None:
    engine = FakeEngine()
    env = env_for(engine)
    container = Container(env.client, {"Id": "web", "Name": "/web", "Config": {"Tty": False}})
    with pytest.raises(error, match=words):
        await call(env, container)
    assert engine.paths == []  # not even the version negotiation
    await env.aclose()


@pytest.mark.parametrize("tail", ["all", 0, 10])
def test_good_tails_pass(tail: int | str) -> None:
    assert check_tail(tail) == tail


@pytest.mark.parametrize("signal", ["SIGKILL", "TERM", "sigterm", "SIGRTMIN+3", 9, "15", 64])
def test_good_signals_pass(signal: str | int) -> None:
    assert check_signal(signal) == signal


@pytest.mark.parametrize("port", [1, 80, "8080", 65535])
def test_good_ports_pass(port: int | str) -> None:
    assert check_port("host port", port) == int(port)


async def test_good_arguments_are_sent_as_given() -> None:
    engine = FakeEngine({("POST", "/containers/web/stop"): empty(),
                         ("POST", "/containers/web/kill"): empty()})
    env = env_for(engine)
    container = Container(env.client, {"Id": "web", "Name": "/web"})
    await container.stop(timeout=0)
    await container.kill(signal="SIGTERM")
    queries = [dict(request.url.params) for request in engine.requests]
    assert queries == [{"t": "0"}, {"signal": "SIGTERM"}]
    await env.aclose()
