"""The project a Surge integration test deploys, on the session's two real engines.

``east`` (region us-east) and ``west`` (eu-west) are the session's two Podman engines;
``project`` is a fresh project ``t<hex>`` on both, destroyed after the test and then
swept: anything still labelled with it, named after it, or its lock container, fails
the test. Test modules take the fixtures by assignment (``project = surge_project.project``).
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Container, Environment, NotFound
from ghostpanel_kernel.surge import LABEL_PROJECT, destroy_surge, lock_name
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

__all__ = ["BUSYBOX", "FAST", "SLEEPER", "Project", "east", "free_port", "project", "west"]

BUSYBOX = BUSYBOX_REFERENCE
SLEEPER = '["sleep", "300"]'
FAST = {"stop_timeout": 0, "health_timeout": 20.0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


class Project:
    """One test's project: its name, its engines, and helpers to look at them."""

    def __init__(self, east: Environment, west: Environment, tmp_path: Path) -> None:
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.east = east
        self.west = west
        self.envs = [east, west]
        self.tmp_path = tmp_path
        self.last: Boltfile | None = None

    def boltfile(self, body: str) -> Boltfile:
        """A Boltfile of this project, saved in the test's folder."""
        path = self.tmp_path / "Boltfile.toml"
        path.write_text(f'project = "{self.name}"\n{body}', encoding="utf-8")
        self.last = Boltfile.load(path)
        return self.last

    async def containers(self, env: Environment) -> dict[str, Container]:
        """The project's containers on ``env`` (labelled or named after it), by name."""
        labelled = await env.containers.list(
            all=True, filters={"label": [f"{LABEL_PROJECT}={self.name}"]})
        named = await env.containers.list(all=True, filters={"name": [f"{self.name}_"]})
        return {c.name: c for c in [*labelled, *named]}

    async def lock(self, env: Environment) -> Container | None:
        """The project's lock container on ``env``, if one is there."""
        try:
            return await env.containers.get(lock_name(self.name))
        except NotFound:
            return None

    async def ids(self) -> dict[tuple[str, str], str]:
        """(environment, container name) -> id, on both engines."""
        found = {}
        for env in self.envs:
            for name, container in (await self.containers(env)).items():
                found[(env.name, name)] = container.id
        return found

    async def sweep(self) -> list[str]:
        """Remove whatever of the project is left; return what was found."""
        left = []
        label = {"label": [f"{LABEL_PROJECT}={self.name}"]}
        for env in self.envs:
            lock = await self.lock(env)
            if lock is not None:
                left.append(f"{env.name}: lock {lock.name}")
                with contextlib.suppress(NotFound):
                    await lock.remove(force=True)
            for name, container in (await self.containers(env)).items():
                left.append(f"{env.name}: container {name}")
                with contextlib.suppress(NotFound):
                    await container.remove(force=True)
            for network in await env.networks.list(filters=label):
                left.append(f"{env.name}: network {network.name}")
                await network.remove()
            for volume in await env.volumes.list(filters=label):
                left.append(f"{env.name}: volume {volume.name}")
                await volume.remove(force=True)
        return left


@pytest.fixture
async def east(podman_engine: PodmanService) -> AsyncIterator[Environment]:
    env = connect(podman_engine.url, name="east", labels={"region": "us-east"})
    yield env
    await env.aclose()


@pytest.fixture
async def west(podman_engine_b: PodmanService) -> AsyncIterator[Environment]:
    env = connect(podman_engine_b.url, name="west", labels={"region": "eu-west"})
    yield env
    await env.aclose()


@pytest.fixture
async def project(east: Environment, west: Environment,
                  tmp_path: Path) -> AsyncIterator[Project]:
    """A fresh project on both engines; destroyed and swept afterwards."""
    made = Project(east, west, tmp_path)
    try:
        yield made
    finally:
        # The last Boltfile also names the unlabelled containers a test adopted.
        await destroy_surge(made.last or made.name, made.envs, volumes=True, stop_timeout=0)
        left = await made.sweep()
        assert not left, f"left behind after destroy: {left}"
