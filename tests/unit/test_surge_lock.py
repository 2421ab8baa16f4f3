"""The project lock Surge holds on the engine, against the shared fake engine.

The fake plays the engine's side of the mutex: a create of a name in use answers 409,
as Docker and Podman do. The race itself, two real runs at once, is in
``tests/integration/test_surge_faults.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from ghostpanel_kernel.engine import Environment, GhostPanelError
from ghostpanel_kernel.surge import LABEL_LOCK, LockHolder, ProjectLocked, lock_name
from ghostpanel_kernel.surge._lock import RunIdentity, acquire_lock, release_lock

from .fake_engine import FakeEngine, env_for, json_answer

IMAGE = "localhost/busybox:latest"
LOCK = lock_name("p")
# Two hours ago: older than STALE_AFTER.
SINCE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def holder_labels(**changes: object) -> dict[str, str]:
    identity = RunIdentity("apply", run_id="0" * 32, host="ci-7", pid=4242, since=SINCE)
    labels = identity.labels("p")
    labels.update({f"{LABEL_LOCK}.{key}": str(value) for key, value in changes.items()})
    return labels


#: How each engine refuses a name in use: Docker with 409, Podman 4.3.1 with 500.
NAME_IN_USE = {
    "docker": httpx.Response(409, json={"message": f"Conflict. The container name "
                                                    f"\"/{LOCK}\" is already in use"}),
    "podman": httpx.Response(500, json={"message": f"container create: creating container "
                                                    f"storage: the container name \"{LOCK}\" "
                                                    "is already in use by c0ffee. You have "
                                                    "to remove that container to be able to "
                                                    "reuse that name: that name is already "
                                                    "in use"}),
}


def lock_engine(holder: dict[str, str] | None, refusal: str = "podman") -> FakeEngine:
    """An engine with the image, and a lock container ``holder`` (labels) or none."""
    engine = FakeEngine()
    engine.routes[("GET", f"/images/{quote(IMAGE, safe=':@')}/json")] = json_answer(
        {"Id": "sha256:" + "b" * 64})
    state = {"holder": holder}

    def create(request: httpx.Request) -> httpx.Response:
        if state["holder"] is not None:
            return NAME_IN_USE[refusal]
        state["holder"] = json.loads(request.content)["Labels"]
        return httpx.Response(201, json={"Id": "c" * 64, "Warnings": []})

    def inspect(request: httpx.Request) -> httpx.Response:
        if state["holder"] is None:
            return httpx.Response(404, json={"message": "no such container"})
        return httpx.Response(200, json={"Id": "c" * 64, "Name": LOCK,
                                         "State": {"Status": "created"},
                                         "Config": {"Labels": state["holder"]}})

    def remove(request: httpx.Request) -> httpx.Response:
        state["holder"] = None
        return httpx.Response(204)

    engine.routes[("POST", "/containers/create")] = create
    engine.routes[("GET", f"/containers/{LOCK}/json")] = inspect
    engine.routes[("GET", f"/containers/{'c' * 64}/json")] = inspect
    engine.routes[("DELETE", f"/containers/{'c' * 64}")] = remove
    return engine


def open_env(opened: list[Environment], engine: FakeEngine) -> Environment:
    env = env_for(engine, name="east")
    opened.append(env)
    return env


async def test_a_free_lock_is_a_container_labelled_with_its_holder(
        opened: list[Environment]) -> None:
    engine = lock_engine(None)
    identity = RunIdentity("scale")
    lock = await acquire_lock(open_env(opened, engine), "p", identity, images=[IMAGE])
    assert lock is not None and lock.name == LOCK
    create = next(r for r in engine.requests if r.url.path.endswith("/containers/create"))
    assert create.url.params["name"] == LOCK
    body = json.loads(create.content)
    # Never started, on no network, made from an image the engine has.
    assert body["Image"] == IMAGE and body["HostConfig"]["NetworkMode"] == "none"
    holder = LockHolder.from_labels(body["Labels"])
    assert (holder.operation, holder.pid, holder.run_id) == ("scale", identity.pid,
                                                              identity.run_id)
    assert holder.host == identity.host and holder.since is not None
    await release_lock(lock)
    assert engine.calls[-1][:2] == ("DELETE", f"/containers/{'c' * 64}")


@pytest.mark.parametrize("refusal", ["docker", "podman"])
async def test_a_held_lock_fails_the_second_run_naming_the_holder(
        opened: list[Environment], refusal: str) -> None:
    engine = lock_engine(holder_labels(), refusal)
    with pytest.raises(ProjectLocked) as caught:
        await acquire_lock(open_env(opened, engine), "p", RunIdentity("apply"),
                           images=[IMAGE])
    message = str(caught.value)
    assert message.startswith("project 'p' is locked on 'east' by apply (pid 4242 on "
                              f"ci-7, since {SINCE:%Y-%m-%d %H:%M:%S} UTC, 2 h ago): ")
    assert caught.value.holder.pid == 4242 and caught.value.environment == "east"
    # Another host's pid cannot be checked, and the lock is older than an hour.
    assert f"it looks stale (it has held the lock since {SINCE:%Y-%m-%d %H:%M} UTC)" \
        in message
    assert "--break-lock" in message
    # It did not touch the holder's lock.
    assert not any(method == "DELETE" for method, _, _ in engine.calls)


async def test_break_lock_removes_the_old_lock_and_takes_it(
        opened: list[Environment]) -> None:
    engine = lock_engine(holder_labels())
    notes: list[str] = []
    identity = RunIdentity("apply")
    lock = await acquire_lock(open_env(opened, engine), "p", identity, images=[IMAGE],
                              break_lock=True, report=notes.append)
    assert lock is not None and lock.labels[f"{LABEL_LOCK}.run"] == identity.run_id
    assert [call[:2] for call in engine.calls if call[0] != "GET"] == [
        ("POST", "/containers/create"), ("DELETE", f"/containers/{'c' * 64}"),
        ("POST", "/containers/create")]
    assert notes == [f"broke the lock of apply (pid 4242 on ci-7, since "
                     f"{SINCE:%Y-%m-%d %H:%M:%S} UTC, 2 h ago)"]


async def test_a_container_of_the_lock_name_that_is_no_lock_is_refused(
        opened: list[Environment]) -> None:
    engine = lock_engine({"app": "someone else's"})
    with pytest.raises(GhostPanelError, match="that is no Surge lock exists on 'east'"):
        await acquire_lock(open_env(opened, engine), "p", RunIdentity("apply"),
                           images=[IMAGE], break_lock=True)
    assert not any(method == "DELETE" for method, _, _ in engine.calls)


def test_a_holder_whose_process_is_gone_here_is_stale() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # reaped: no process has this pid (until it is reused)
    now = datetime.now(UTC)
    holder = LockHolder("here", dead, now, "apply", "")
    assert holder.stale_reason(now=now, this_host="here") == \
        f"process {dead} no longer runs on here"
    alive = LockHolder("here", os.getpid(), now, "apply", "")
    assert alive.stale_reason(now=now, this_host="here") is None
    elsewhere = LockHolder("there", dead, now - timedelta(minutes=5), "apply", "")
    assert elsewhere.stale_reason(now=now, this_host="here") is None
    assert elsewhere.stale_reason(now=now + timedelta(hours=1), this_host="here") == \
        f"it has held the lock since {now - timedelta(minutes=5):%Y-%m-%d %H:%M} UTC"


def test_a_holder_read_from_partial_labels_stays_describable() -> None:
    holder = LockHolder.from_labels({LABEL_LOCK: "p", f"{LABEL_LOCK}.since": "soon"})
    assert (holder.host, holder.pid, holder.since) == ("?", None, None)
    assert holder.describe() == "a Surge run (pid ? on ?)"
    assert holder.stale_reason() is None
