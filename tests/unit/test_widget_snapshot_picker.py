"""``SnapshotPicker`` on the kernel's BTRFS driver over a real loop-mounted BTRFS (root
only; skipped elsewhere), with a canned engine for the containers that use the data:
the timeline, create, restore (its question, its progress, the container stopped and
started again, the old files back), delete, and the retention preview before a prune.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ghostpanel_widgets import SnapshotPicker

from ghostpanel_kernel.snapshots import SnapshotManager
from tests.btrfs_mount import btrfs_loop_mount, make_subvolume
from tests.unit.fake_engine import FakeEngine, empty, json_answer

ID = "ab12" * 16


@pytest.fixture(name="btrfs", scope="module")
def btrfs_fixture() -> Iterator[Path]:
    with btrfs_loop_mount("200M") as mount_point:
        yield mount_point


@pytest.fixture
def data(btrfs: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh subvolume holding ``world.txt`` (``v1``)."""
    path = make_subvolume(btrfs / request.node.name[:40])
    (path / "world.txt").write_text("v1")
    return path


class Clock:
    """The manager's clock: an hour later at each reading, so that names and retention
    buckets differ without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


def engine_with_user(path: Path, state: str = "running") -> FakeEngine:
    """An engine with a volume, and a container ``web`` bind-mounting ``path``."""
    actions: list[str] = []

    def act(action: str) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            actions.append(action)
            return httpx.Response(204)
        return answer

    container = {"Id": ID, "Names": ["/web"], "State": state, "Image": "busybox",
                 "Mounts": [{"Type": "bind", "Source": os.fspath(path),
                             "Destination": "/data"}]}
    engine = FakeEngine({
        ("GET", "/volumes"): json_answer({"Volumes": [{"Name": "mc-world",
                                                        "Driver": "local"}]}),
        ("GET", "/containers/json"): json_answer([container]),
        ("POST", f"/containers/{ID}/stop"): act("stop"),
        ("POST", f"/containers/{ID}/start"): act("start"),
        ("POST", f"/containers/{ID}/pause"): empty(),
        ("POST", f"/containers/{ID}/unpause"): empty(),
    })
    engine.actions = actions  # type: ignore[attr-defined]
    return engine


async def open_picker(open_engine_widget: Callable[..., Any], engine: FakeEngine, path: Path,
                      **options: Any) -> SnapshotPicker:
    manager = SnapshotManager(env=None, clock=Clock())
    picker: SnapshotPicker = await open_engine_widget(SnapshotPicker, engine, os.fspath(path),
                                                      manager=manager, **options)
    manager.env = picker.env  # the users of the data are the picker's engine's
    return picker


async def test_create_shows_the_snapshot_on_the_timeline(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    picker = await open_picker(open_engine_widget, engine_with_user(data), data)
    assert picker.source == os.fspath(data) and picker.timeline.rows == []
    assert "volume:mc-world" in picker.source_field.options
    assert "container:web" in picker.source_field.options
    picker.description_field.value = "before the update"
    picker.keep_forever_box.value = True
    picker.create_button.click()
    await picker.task
    assert picker.status.level == "success", picker.status.message
    [row] = picker.timeline.rows
    name, created, size, trigger, keep, description = row
    assert name.startswith("bolt-20261207-") and created.endswith("UTC")
    assert size.endswith("B") and trigger == "manual" and keep == "forever"
    assert description == "before the update"
    assert picker.timeline.value == name and picker.description_field.value == ""
    # The strip: one dot, blue (manual), ringed (kept forever), its name in the tooltip.
    strip = picker.timeline_strip.value
    assert strip.count('class="gp-snapshot-dot"') == 1 and name in strip
    assert 'fill="#1565c0"' in strip and 'stroke="#333"' in strip


async def test_restore_asks_what_it_stops_shows_progress_and_brings_old_files_back(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    engine = engine_with_user(data)
    picker = await open_picker(open_engine_widget, engine, data)
    [snapshot] = await picker.create(description="v1")
    (data / "world.txt").write_text("v2")
    picker.timeline.value = snapshot.name
    picker.restore_button.click()
    await picker.task
    question = picker.confirmation.question
    assert f"Restore {data} to {snapshot.name}?" in question
    assert "stops web while the data is swapped, then starts it again" in question
    assert "kept as a read-only pre-restore safety snapshot" in question
    assert engine.actions == []  # nothing happens before Confirm  # type: ignore[attr-defined]
    picker.confirmation.confirm_button.click()
    await picker.task
    assert picker.status.level == "success", picker.status.message
    assert (data / "world.txt").read_text() == "v1"
    assert engine.actions == ["stop", "start"]  # type: ignore[attr-defined]
    assert picker.progress.value == picker.progress.max > 1
    assert picker.progress_label.value == "done"
    triggers = {row[0]: row[3] for row in picker.timeline.rows}
    assert triggers[snapshot.name] == "manual" and "pre-restore" in triggers.values()
    assert "Restarted web" in picker.status.message
    strip = picker.timeline_strip.value
    assert strip.count('class="gp-snapshot-dot"') == 2 and 'fill="#ef6c00"' in strip


async def test_a_failed_restore_is_shown_and_the_original_stays(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    engine = engine_with_user(data)
    engine.routes[("POST", f"/containers/{ID}/stop")] = json_answer(
        {"message": "cannot stop: device busy"}, 500)
    picker = await open_picker(open_engine_widget, engine, data)
    [snapshot] = await picker.create()
    (data / "world.txt").write_text("v2")
    assert await picker.restore(snapshot.name) is None
    assert picker.status.level == "error" and "cannot stop" in picker.status.message
    assert "failed" in picker.progress_label.value
    assert (data / "world.txt").read_text() == "v2"


async def test_delete_asks_then_deletes(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    picker = await open_picker(open_engine_widget, engine_with_user(data, "exited"), data)
    [first] = await picker.create()
    await picker.create()
    picker.timeline.value = first.name
    picker.delete_button.click()
    assert f"Delete snapshot {first.name}" in picker.confirmation.question
    assert len(picker.timeline.rows) == 2
    picker.confirmation.confirm_button.click()
    await picker.task
    assert picker.status.level == "success", picker.status.message
    assert [row[0] for row in picker.timeline.rows] != [first.name]
    assert first.name not in [row[0] for row in picker.timeline.rows]


async def test_retention_preview_says_why_then_prune_deletes_what_it_showed(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    picker = await open_picker(open_engine_widget, engine_with_user(data, "exited"), data)
    names = [(await picker.create())[0].name for _ in range(3)]  # an hour apart, one day
    assert picker.retention.prune_button.disabled
    picker.retention.fields["keep_hourly"].value = 2
    picker.retention.preview_button.click()
    await picker.task
    plan_view = picker.retention.plan_view.value
    assert "1</b> would be deleted" in plan_view and "keep_hourly" in plan_view
    assert names[0] in plan_view and "no rule keeps it" in plan_view
    assert not picker.retention.prune_button.disabled
    # A changed field makes the preview stale: Prune waits for a new one.
    picker.retention.fields["keep_daily"].value = 1
    assert picker.retention.prune_button.disabled
    picker.retention.fields["keep_daily"].value = 0
    await picker.preview()
    picker.retention.prune_button.click()
    assert "delete the snapshots the plan marks remove" in picker.confirmation.question
    picker.confirmation.confirm_button.click()
    await picker.task
    assert picker.status.level == "success", picker.status.message
    assert sorted(row[0] for row in picker.timeline.rows) == sorted(names[1:])


async def test_errors_are_shown_in_the_status_line(
        data: Path, tmp_path: Path, open_engine_widget: Callable[..., Any]) -> None:
    picker = await open_picker(open_engine_widget, engine_with_user(data), data)
    assert await picker.open_source("/proc") is None  # not btrfs: named with its filesystem
    assert picker.status.level == "error"
    assert "/proc is on proc" in picker.status.message
    assert await picker.delete("no-such-snapshot") is False
    assert "no snapshot 'no-such-snapshot'" in picker.status.message
    assert picker.source == os.fspath(data)  # the failed open left it shown
    await picker.open_source(os.fspath(data))
    picker.restore_button.click()  # nothing selected
    await picker.task
    assert "select a snapshot" in picker.status.message
    assert await picker.preview({"keep_daily": "x"}) is None
    assert "must be an integer" in picker.status.message


async def test_a_container_source_offers_pause_and_pauses_its_users_while_taken(
        data: Path, open_engine_widget: Callable[..., Any]) -> None:
    engine = engine_with_user(data)
    inspect = {"Id": ID, "Name": "/web", "State": {"Status": "running", "Running": True},
               "Config": {"Image": "busybox"},
               "Mounts": [{"Type": "bind", "Source": os.fspath(data), "Destination": "/data"}]}
    engine.routes[("GET", "/containers/web/json")] = json_answer(inspect)
    paused: list[str] = []
    for action in ("pause", "unpause"):
        engine.routes[("POST", f"/containers/{ID}/{action}")] = (
            lambda request, action=action: paused.append(action) or httpx.Response(204))
    picker = await open_picker(open_engine_widget, engine, data)
    assert picker.pause_box.layout.display == "none"  # a path: nothing to pause
    assert await picker.open_source("container:web") is not None, picker.status.message
    assert picker.pause_box.layout.display == ""
    picker.pause_box.value = True
    picker.create_button.click()
    await picker.task
    assert picker.status.level == "success", picker.status.message
    assert paused == ["pause", "unpause"]
    assert len(picker.timeline.rows) == 1
