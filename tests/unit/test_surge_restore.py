"""The rollback's restore of a set-aside container, against the shared fake engine.

Podman shows a container it is still stopping as ``stopping``, and a start does nothing
to it (the stop then ends it, ``Exited (137)``): the restore waits for the stop to end
before it starts the container, and says so when the container does not run after.
The same on real Podman, interrupted by Ctrl-C: ``tests/integration/test_surge_faults.py``.
"""

from __future__ import annotations

import httpx
import pytest

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.surge import NotRestored
from ghostpanel_kernel.surge._undo import AsideState, restorer

from .fake_engine import FakeEngine, env_for

IDENT = "d" * 64


class StoppingEngine(FakeEngine):
    """One container, set aside, whose stop is still under way for ``stopping`` looks;
    after a start it is in ``after_start``."""

    def __init__(self, *, stopping: int, after_start: str) -> None:
        super().__init__()
        self.stopping = stopping
        self.after_start = after_start
        self.state = "stopping"
        self.name = "p_web-surge-old-dddddddddddd"
        self.events: list[str] = []
        self.routes[("GET", f"/containers/{IDENT}/json")] = self.inspect
        self.routes[("POST", f"/containers/{IDENT}/start")] = self.start
        self.routes[("POST", f"/containers/{IDENT}/rename")] = self.rename

    def inspect(self, request: httpx.Request) -> httpx.Response:
        if self.state == "stopping":
            if self.stopping:
                self.stopping -= 1
            else:
                self.state = "exited"  # the stop ended: killed after its timeout
        self.events.append(self.state)
        code = 137 if self.state == "exited" else 0
        return httpx.Response(200, json={"Id": IDENT, "Name": f"/{self.name}",
                                         "State": {"Status": self.state, "ExitCode": code},
                                         "Config": {"Labels": {}}})

    def start(self, request: httpx.Request) -> httpx.Response:
        # Podman's start of a stopping container: nothing happens.
        self.events.append("start")
        if self.state != "stopping":
            self.state = self.after_start
        return httpx.Response(204)

    def rename(self, request: httpx.Request) -> httpx.Response:
        self.name = request.url.params["name"]
        self.events.append(f"rename {self.name}")
        return httpx.Response(204)


async def restore(opened: list[Environment], engine: StoppingEngine) -> None:
    env = env_for(engine, name="east")
    opened.append(env)
    container = await env.containers.get(IDENT)
    engine.events.clear()
    aside = AsideState(container, "p_web", running=True, stop_timeout=5, stop_sent=True)
    await restorer(aside)()


async def test_the_restore_waits_for_the_stop_to_end_then_starts(
        opened: list[Environment]) -> None:
    engine = StoppingEngine(stopping=4, after_start="running")
    await restore(opened, engine)
    ended = engine.events.index("exited")
    assert ended >= 3 and set(engine.events[:ended]) == {"stopping"}  # polled meanwhile
    rest = engine.events[ended:]
    assert rest[:2] == ["exited", "rename p_web"]
    assert rest[-2:] == ["start", "running"] and rest.count("start") == 1
    assert (engine.name, engine.state) == ("p_web", "running")


async def test_a_container_that_does_not_run_again_is_reported(
        opened: list[Environment]) -> None:
    engine = StoppingEngine(stopping=0, after_start="exited")
    with pytest.raises(NotRestored, match=r"p_web was not restored: it is exited "
                                          r"\(.+\) after its start"):
        await restore(opened, engine)
    assert engine.name == "p_web"
