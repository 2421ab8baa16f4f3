"""``connect_sync``: the blocking facade over the same async client, on a real engine."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from ghostpanel_kernel import connect_sync
from ghostpanel_kernel.engine import Logs, NotFound, SyncProxy

pytestmark = pytest.mark.integration

BUSYBOX = "localhost/busybox:latest"


def test_sync_facade_lists_creates_starts_reads_follows_removes(
        engine_url: str, track_container: Callable[[str], None]) -> None:
    name = f"gp-sync-{uuid.uuid4().hex[:8]}"
    track_container(name)
    with connect_sync(engine_url, name="sync") as env:
        assert isinstance(env, SyncProxy)
        assert env.ping() is True
        assert name not in [c.name for c in env.containers.list(all=True)]

        container = env.containers.create(
            image=BUSYBOX, name=name,
            command=["sh", "-c", "echo ready; i=0; while :; do i=$((i+1)); echo tick$i; "
                                 "sleep 0.1; done"])
        assert isinstance(container, SyncProxy)
        assert container.name == name and container.environment == "sync"
        assert container.state == "created"
        container.start()
        container.reload()
        assert container.state == "running"
        listed = env.containers.list(filters={"name": name})
        assert [c.id for c in listed] == [container.id]
        assert all(isinstance(c, SyncProxy) for c in listed)

        deadline = time.monotonic() + 10
        while "ready" not in str(logs := container.logs(tail="all")):
            assert time.monotonic() < deadline, logs
            time.sleep(0.05)
        assert isinstance(logs, Logs) and logs[0].text == "ready"

        # Following is a plain iterator; closing it closes the stream.
        with contextlib.closing(iter(container.logs(follow=True))) as stream:
            followed = [line.text for _, line in zip(range(4), stream, strict=False)]
        assert followed == ["ready", "tick1", "tick2", "tick3"]
        assert env.ping() is True  # the facade is still usable after the break

        container.stop(timeout=0)
        container.reload()
        assert container.state == "exited"
        container.remove(force=True)
        with pytest.raises(NotFound):
            env.containers.get(name)


def test_sync_facade_ends_its_thread_when_closed(engine_url: str) -> None:
    def bridges() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "ghostpanel-sync"]

    before = set(bridges())
    with connect_sync(engine_url) as env:
        assert env.ping() is True
        assert len(set(bridges()) - before) == 1
    deadline = time.monotonic() + 1
    while set(bridges()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    # Closing the environment should also stop the event loop thread it ran on;
    # otherwise every connect_sync leaks a thread and an open event loop.
    assert set(bridges()) - before == set()
