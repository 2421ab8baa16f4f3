"""Fixtures for the Engine API client tests on a real Podman engine.

``env`` is a fresh :class:`Environment` on the session engine for each test. The
``make_*`` factories create what a test needs under unique names and record it; the
``track_*`` functions record what a test created some other way. Teardown removes all
of it (through ``env``, or a connection of its own if the test closed ``env``) and then
checks that it is gone: a teardown that cannot remove something fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from ipywidgets.widgets.widget import _instances  # open widgets, by model id

from ghostpanel_kernel import connect
from ghostpanel_kernel._procfs import command_line, is_running, process_ids
from ghostpanel_kernel.engine import (
    Container,
    Environment,
    Network,
    NotFound,
    Volume,
)
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

BUSYBOX = BUSYBOX_REFERENCE


def unique(prefix: str = "gp-test") -> str:
    """A name no other test (or earlier run) uses: ``prefix-<8 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Created:
    """What one test made on one engine, removed in teardown whatever the test did.

    Removal order: containers (forced: Podman kills a running one at once), then
    networks, volumes and images, which containers may hold.
    """

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.url = env.url
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.networks: list[str] = []
        self.images: list[str] = []

    async def remove_all(self) -> None:
        # The test's own environment when it is still open: a new one would pay the
        # engine's slow GET /version (~0.5 s on Podman) once more per test.
        if not self.env.client.closed:
            await self._remove_all(self.env)
            return
        async with connect(self.url, name="cleanup") as env:
            await self._remove_all(env)

    async def _remove_all(self, env: Environment) -> None:
        failures: list[str] = []
        removed: list[str] = []
        for ident in reversed(self.containers):
            with contextlib.suppress(NotFound):
                container = await env.containers.get(ident)
                await container.remove(force=True, volumes=True)
                removed.append(container.id)
        if removed:
            await _end_exec_monitors(removed)
        for ident in reversed(self.networks):
            with contextlib.suppress(NotFound):
                await (await env.networks.get(ident)).remove()
        for ident in reversed(self.volumes):
            with contextlib.suppress(NotFound):
                await (await env.volumes.get(ident)).remove(force=True)
        for reference in reversed(self.images):
            # By name, without force: Podman then drops only this tag when the image
            # has others (the shared busybox image must survive a test's extra tag).
            with contextlib.suppress(NotFound):
                await env.images.remove(reference)
        # Check, not trust: everything recorded is gone.
        for ident in self.containers:
            with contextlib.suppress(NotFound):
                await env.containers.get(ident)
                failures.append(f"container {ident}")
        for ident in self.volumes:
            with contextlib.suppress(NotFound):
                await env.volumes.get(ident)
                failures.append(f"volume {ident}")
        for ident in self.networks:
            with contextlib.suppress(NotFound):
                await env.networks.get(ident)
                failures.append(f"network {ident}")
        for reference in self.images:
            with contextlib.suppress(NotFound):
                await env.images.get(reference)
                failures.append(f"image {reference}")
        assert not failures, f"teardown left behind on {self.url}: {failures}"


def _exec_monitor_pids(container_ids: Collection[str]) -> list[int]:
    """PIDs of the conmon processes Podman keeps for API exec sessions of these containers.

    For every ``POST /exec/{id}/start``, Podman starts a conmon with ``--exit-delay 300``
    (containers.conf ``exit_command_delay``): it stays 5 minutes after the command ended,
    so that a client can still read the exit code, even after the container is removed.
    """
    wanted = set(container_ids)
    found = []
    for pid in process_ids():
        arguments = command_line(pid)  # None: ended while we looked
        if not arguments or not arguments[0].endswith("/conmon") \
                or "--exec-attach" not in arguments:
            continue
        # conmon names its container as "-c ID".
        if any(flag == "-c" and value in wanted
               for flag, value in itertools.pairwise(arguments)):
            found.append(pid)
    return found


async def _end_exec_monitors(container_ids: Collection[str]) -> None:
    """End the exec monitors of containers this test made and has removed, by PID.

    Their containers are gone, so the exit codes they keep can no longer be asked for;
    left alone they would outlive the session's engine (whose teardown checks that no
    process of it survives) by up to 5 minutes.
    """
    pids = _exec_monitor_pids(container_ids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


@pytest.fixture
async def env(engine_url: str) -> AsyncIterator[Environment]:
    """An environment named ``a`` on the session engine, closed after the test."""
    environment = connect(engine_url, name="a")
    try:
        yield environment
    finally:
        await environment.aclose()


@pytest.fixture
async def env_b(podman_engine_b: PodmanService) -> AsyncIterator[Environment]:
    """An environment named ``b`` on the second engine, closed after the test."""
    environment = connect(podman_engine_b.url, name="b")
    try:
        yield environment
    finally:
        await environment.aclose()


@pytest.fixture
async def created(env: Environment) -> AsyncIterator[Created]:
    """Record of what a test made on the session engine; all of it removed afterwards."""
    record = Created(env)
    yield record
    await record.remove_all()


@pytest.fixture
async def created_b(env_b: Environment) -> AsyncIterator[Created]:
    """The same record for the second engine (``env_b``)."""
    record = Created(env_b)
    yield record
    await record.remove_all()


MakeContainer = Callable[..., Awaitable[Container]]


def _container_factory(environment: Environment, record: Created) -> MakeContainer:
    async def make(**options: Any) -> Container:
        options.setdefault("image", BUSYBOX)
        options.setdefault("name", unique())
        options.setdefault("command", ["sleep", "300"])
        # Recorded before the engine answers: a create that half-succeeded is removed too.
        record.containers.append(options["name"])
        container = await environment.containers.create(**options)
        record.containers[-1] = container.id
        return container

    return make


@pytest.fixture
def make_container(env: Environment, created: Created) -> MakeContainer:
    """``await make_container(command=[...], **create_options)``: a busybox container.

    Unique name (``gp-test-<hex>``) and ``sleep 300`` unless given; not started. Every
    container made is force-removed with its anonymous volumes after the test.
    """
    return _container_factory(env, created)


@pytest.fixture
def make_container_b(env_b: Environment, created_b: Created) -> MakeContainer:
    """``make_container`` on the second engine."""
    return _container_factory(env_b, created_b)


@pytest.fixture
def make_volume(env: Environment, created: Created) -> Callable[..., Awaitable[Volume]]:
    """``await make_volume(labels=...)``: a uniquely named volume, removed afterwards."""

    async def make(name: str | None = None, **options: Any) -> Volume:
        name = name or unique("gp-vol")
        created.volumes.append(name)
        return await env.volumes.create(name, **options)

    return make


@pytest.fixture
def make_network(env: Environment, created: Created) -> Callable[..., Awaitable[Network]]:
    """``await make_network(subnet=...)``: a uniquely named network, removed afterwards."""

    async def make(name: str | None = None, **options: Any) -> Network:
        name = name or unique("gp-net")
        created.networks.append(name)
        return await env.networks.create(name, **options)

    return make


@pytest.fixture
def track_container(created: Created) -> Callable[[str], None]:
    """Record a container (id or name) made without ``make_container``."""
    return created.containers.append


@pytest.fixture
def track_image(created: Created) -> Callable[[str], None]:
    """Record an image reference a test tagged, imported or loaded on the session engine."""
    return created.images.append


# -- widgets ---------------------------------------------------------------------------

if TYPE_CHECKING:
    from ghostpanel_widgets._base import EngineWidget

W = TypeVar("W", bound="EngineWidget")


@pytest.fixture
async def shown(created: Any) -> AsyncIterator[Callable[[W], Any]]:
    """``await shown(widget)``: wait for the widget's first load; closed after the test
    (before ``created`` removes what the test made), with nothing of it left open."""
    widgets: list[EngineWidget] = []
    before = set(_instances)

    async def show(widget: W) -> W:
        widgets.append(widget)
        if widget.task is not None:
            await widget.task
        return widget

    yield show
    for widget in widgets:
        task = widget.task
        widget.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
    left = set(_instances) - before
    assert not left, f"{len(left)} widgets left open"
