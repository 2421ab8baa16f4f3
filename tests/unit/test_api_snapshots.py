"""``/api/v1/snapshots`` and ``POST /api/v1/containers/{id}/snapshot`` over a FakeEngine.

The snapshot commands go to :class:`tests.unit.test_snapshot_zfs.FakePool` (a model of
one ZFS dataset mounted at the test's folder), put in place of the commands the routes
run; every other answer is the kernel's own. A folder on this machine's real
filesystem (not BTRFS or ZFS) is refused by the real ``findmnt``.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.server import _routes_snapshots
from tests.unit.api_client import api_client, problem_of
from tests.unit.fake_engine import WEB_ID, WEB_INSPECT, empty, json_answer, web_engine
from tests.unit.test_snapshot_zfs import FakePool

SNAPSHOTS = "/api/v1/snapshots"


@pytest.fixture(name="pool")
def pool_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePool:
    """A ZFS dataset ``tank/games`` mounted at ``tmp_path``, behind the routes."""
    pool = FakePool(tmp_path)
    monkeypatch.setattr(_routes_snapshots, "run_command", pool)
    return pool


def _engine_with_mount(path: Path) -> Any:
    inspect = copy.deepcopy(WEB_INSPECT)
    inspect["Mounts"] = [{"Type": "bind", "Source": str(path), "Destination": "/data"},
                         {"Type": "tmpfs", "Destination": "/tmp"}]
    listing = [{"Id": WEB_ID, "Names": ["web"], "State": "running",
                "Mounts": inspect["Mounts"]}]
    return web_engine({("GET", f"/containers/{WEB_ID}/json"): json_answer(inspect),
                       ("GET", "/containers/web/json"): json_answer(inspect),
                       ("GET", "/containers/json"): json_answer(listing),
                       ("POST", f"/containers/{WEB_ID}/pause"): empty(),
                       ("POST", f"/containers/{WEB_ID}/unpause"): empty()})


async def test_create_list_delete_a_path_s_snapshots(pool: FakePool, tmp_path: Path) -> None:
    async with api_client(web_engine()) as http:
        made = await http.post(SNAPSHOTS, json={
            "source": str(tmp_path), "name": "before-update", "keep_forever": True,
            "description": "the 1.21 update"})
        assert made.status_code == 201, made.text
        [snapshot] = made.json()["snapshots"]
        assert snapshot["name"] == "before-update"
        assert snapshot["location"] == "tank/games@before-update"
        assert snapshot["keep_forever"] is True and snapshot["filesystem"] == "zfs"
        listed = await http.get(SNAPSHOTS, params={"source": str(tmp_path)})
        assert [s["name"] for s in listed.json()] == ["before-update"]
        again = problem_of(await http.post(SNAPSHOTS, json={"source": str(tmp_path),
                                                            "name": "before-update"}), 409)
        deleted = await http.delete(f"{SNAPSHOTS}/before-update",
                                    params={"source": str(tmp_path)})
        assert [s["name"] for s in deleted.json()["deleted"]] == ["before-update"]
        gone = problem_of(await http.delete(f"{SNAPSHOTS}/before-update",
                                            params={"source": str(tmp_path)}), 404)
    assert "before-update" in str(again["detail"])
    assert "no snapshot 'before-update'" in str(gone["detail"])
    assert pool.snapshots == {}


async def test_a_container_s_bind_mounts_are_snapshotted_paused(
        pool: FakePool, tmp_path: Path) -> None:
    engine = _engine_with_mount(tmp_path)
    async with api_client(engine) as http:
        made = await http.post("/api/v1/containers/web/snapshot",
                               json={"pause": True, "description": "nightly"})
        unknown = problem_of(await http.post("/api/v1/containers/nope/snapshot"), 404)
    assert made.status_code == 201, made.text
    [snapshot] = made.json()["snapshots"]
    assert snapshot["container"] == "web" and snapshot["source"] == str(tmp_path)
    assert snapshot["description"] == "nightly"
    calls = [(method, path) for method, path, *_ in engine.calls]
    pause = calls.index(("POST", f"/containers/{WEB_ID}/pause"))
    unpause = calls.index(("POST", f"/containers/{WEB_ID}/unpause"))
    assert pause < unpause  # taken while paused, and unpaused afterwards
    assert unknown["detail"] == "no container 'nope' on this agent's engine"


async def test_restore_answers_what_it_kept(pool: FakePool, tmp_path: Path) -> None:
    async with api_client(web_engine({("GET", "/containers/json"): json_answer([])})) as http:
        made = await http.post(SNAPSHOTS, json={"source": str(tmp_path)})
        name = made.json()["snapshots"][0]["name"]
        pool.datasets["tank/games"]["data"] = "changed"
        restored = await http.post(f"{SNAPSHOTS}/{name}/restore",
                                   json={"source": str(tmp_path)})
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert [s["name"] for s in body["restored"]] == [name]
    [aside] = body["safety"]
    assert aside.startswith("tank/games.pre-restore-")
    assert pool.datasets["tank/games"]["data"] != "changed"
    assert pool.datasets[aside]["data"] == "changed"


async def test_a_failed_restore_names_its_step_and_leaves_the_original(
        pool: FakePool, tmp_path: Path) -> None:
    async with api_client(web_engine({("GET", "/containers/json"): json_answer([])})) as http:
        made = await http.post(SNAPSHOTS, json={"source": str(tmp_path)})
        name = made.json()["snapshots"][0]["name"]
        pool.datasets["tank/games"]["data"] = "changed"
        pool.fail_at = pool.mutations + 1  # the clone works, moving the original aside fails
        failed = problem_of(await http.post(f"{SNAPSHOTS}/{name}/restore",
                                            json={"source": str(tmp_path)}), 500)
    assert failed["step"] == "set-aside" and failed["undo_failures"] == []
    assert "injected" in str(failed["detail"])
    assert pool.datasets == {"tank/games": {"data": "changed", "readonly": False,
                                            "mountpoint": None, "canmount": "on"}}


async def test_prune_dry_run_plans_and_deletes_nothing_then_deletes(
        pool: FakePool, tmp_path: Path) -> None:
    async with api_client(web_engine()) as http:
        for name in ("a1", "a2", "a3"):
            made = await http.post(SNAPSHOTS, json={"source": str(tmp_path), "name": name})
            assert made.status_code == 201
        policy = {"max_total": 1}
        dry = await http.post(f"{SNAPSHOTS}/prune", json={
            "source": str(tmp_path), "policy": policy, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert len(pool.snapshots) == 3
        done = await http.post(f"{SNAPSHOTS}/prune", json={"source": str(tmp_path),
                                                           "policy": policy})
        bad = problem_of(await http.post(f"{SNAPSHOTS}/prune", json={
            "source": str(tmp_path), "policy": {"keep_hourly": "lots"}}), 422)
    plan = dry.json()
    assert plan["dry_run"] is True and plan["deleted"] == []
    assert len(plan["keep"]) == 1 and len(plan["remove"]) == 2
    assert sorted(s["name"] for s in done.json()["deleted"]) == sorted(plan["remove"])
    assert list(pool.snapshots) == [f"tank/games@{plan['keep'][0]}"]
    assert "keep_hourly" in str(bad["detail"])


async def test_a_path_not_on_btrfs_or_zfs_is_a_422_naming_it(tmp_path: Path) -> None:
    if subprocess.run(["findmnt", "--version"], capture_output=True).returncode != 0:
        pytest.skip("findmnt is not installed")
    async with api_client(web_engine()) as http:
        listed = problem_of(await http.get(SNAPSHOTS, params={"source": str(tmp_path)}), 422)
        missing = problem_of(await http.post(SNAPSHOTS, json={
            "source": str(tmp_path / "nowhere")}), 422)
    assert listed["path"] == str(tmp_path)
    assert listed["filesystem"] not in ("btrfs", "zfs", "missing")
    assert str(listed["filesystem"]) in str(listed["detail"])
    assert missing["filesystem"] == "missing" and "does not exist" in str(missing["detail"])


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("post", SNAPSHOTS, {}, 422, "needs 'source'"),
    ("post", SNAPSHOTS, {"source": "relative/path"}, 422, "absolute path"),
    ("post", SNAPSHOTS, {"source": "/srv", "pause": "yes"}, 422, "'pause' must be true"),
    ("post", SNAPSHOTS, {"source": "/srv", "colour": 1}, 422, "unknown member 'colour'"),
    ("post", SNAPSHOTS, {"source": "/srv", "snapshot_dir": "snaps"}, 422, "absolute"),
    ("post", SNAPSHOTS, [1], 422, "JSON object"),
    ("post", f"{SNAPSHOTS}/prune", {"source": "/srv"}, 422, "needs 'policy'"),
    ("post", f"{SNAPSHOTS}/x/restore", {"source": "/srv", "stop_timeout": True}, 422,
     "'stop_timeout' must be an integer"),
    ("post", f"{SNAPSHOTS}/../restore", {"source": "/srv"}, 404, "no route"),
    ("post", f"{SNAPSHOTS}/..%2E/restore", {"source": "/srv"}, 422, "invalid snapshot name"),
    ("delete", f"{SNAPSHOTS}/x", None, 422, "?source is required"),
    ("get", f"{SNAPSHOTS}?source=volume:", None, 422, "give the volume's name"),
])
async def test_invalid_requests_are_problems_and_run_nothing(
        pool: FakePool, method: str, path: str, body: Any, status: int,
        words: str) -> None:
    engine = web_engine()
    async with api_client(engine) as http:
        kwargs = {} if body is None else {"json": body}
        answer = problem_of(await http.request(method.upper(), path, **kwargs), status)
    assert words in str(answer["detail"])
    assert pool.commands == [] and engine.requests == []


async def test_a_body_that_is_not_json_is_a_400(pool: FakePool) -> None:
    async with api_client(web_engine()) as http:
        answer = problem_of(await http.post(SNAPSHOTS, content=b"{nope",
                                            headers={"content-type": "application/json"}),
                            400)
        empty = problem_of(await http.post(SNAPSHOTS), 400)
    assert "not JSON" in str(answer["detail"]) and "empty" in str(empty["detail"])
