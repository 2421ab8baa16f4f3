"""Snapshot names, targets, the undo runner, and the CLI's handling of bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.cli import CliContext, cli
from ghostpanel_kernel.snapshots import (
    RestoreError,
    SnapshotError,
    SnapshotManager,
    Target,
    UnsupportedFilesystem,
    bolt_name,
    check_name,
    parse_target,
)
from ghostpanel_kernel.snapshots._steps import Step, run_steps


def test_bolt_name_is_utc() -> None:
    from datetime import timedelta, timezone
    when = datetime(2026, 1, 1, 1, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert bolt_name(when) == "bolt-20251231-233005"


@pytest.mark.parametrize("name", ["bolt-20261207-190503", "before-update", "v1.2_x"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-x", "x.json", "a b",
                                  "x" * 200, "tank@x"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid snapshot name"):
        check_name(name)


def test_parse_target(tmp_path: Path) -> None:
    assert parse_target("volume:data") == Target("volume", "data")
    assert parse_target("container:mc") == Target("container", "mc")
    assert parse_target(str(tmp_path / "x" / "..")) == Target("path", str(tmp_path))
    assert str(parse_target("volume:data")) == "volume:data"
    for bad in ("", "volume:", "container:"):
        with pytest.raises(ValueError):
            parse_target(bad)


async def test_run_steps_undoes_finished_steps_newest_first() -> None:
    log: list[str] = []

    def step(name: str, *, fail: bool = False, undo_fails: bool = False) -> Step:
        async def do() -> None:
            if fail:
                raise OSError(f"{name} broke")
            log.append(f"do {name}")

        async def undo() -> None:
            if undo_fails:
                raise OSError(f"undo {name} broke")
            log.append(f"undo {name}")

        return Step(name, f"did {name}", do, undo)

    with pytest.raises(RestoreError) as caught:
        await run_steps([step("a"), step("b"), step("c", fail=True), step("d")],
                        what="test")
    assert log == ["do a", "do b", "undo b", "undo a"]
    assert caught.value.step == "c"
    assert "while it did c: c broke; everything was put back" in str(caught.value)

    log.clear()
    with pytest.raises(RestoreError) as caught:
        await run_steps([step("a"), step("b", undo_fails=True), step("c", fail=True)],
                        what="test")
    # One undo failing does not stop the others; the error says what is left.
    assert log == ["do a", "do b", "undo a"]
    assert caught.value.undo_failures == ["undo of 'b' (did b): undo b broke"]
    assert "undoing it failed too" in str(caught.value)


async def test_run_steps_undoes_then_lets_cancellation_through() -> None:
    log: list[str] = []

    async def done() -> None:
        log.append("a")

    async def undo() -> None:
        log.append("undo a")

    async def hang() -> None:
        await asyncio.sleep(60)

    task = asyncio.create_task(run_steps([Step("a", "a", done, undo), Step("b", "b", hang)],
                                         what="test"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["a", "undo a"]


async def test_volume_targets_need_an_environment() -> None:
    with pytest.raises(SnapshotError, match="needs an engine environment"):
        await SnapshotManager().list("volume:data")


async def test_a_path_on_another_filesystem_names_it(tmp_path: Path) -> None:
    async def run(argv: object) -> str:
        return '{"filesystems": [{"fstype": "ext4", "target": "/", "source": "/dev/sda1"}]}'

    with pytest.raises(UnsupportedFilesystem) as caught:
        await SnapshotManager(run=run).create(str(tmp_path))
    assert caught.value.filesystem == "ext4"
    assert str(caught.value) == (f"{tmp_path} is on ext4 (mounted at /), not on btrfs or "
                                 "zfs: snapshots need a btrfs subvolume or a zfs dataset")


def invoke(*args: str) -> object:
    def no_environment(names: object) -> list[object]:
        raise AssertionError("no environment should be opened")

    return CliRunner().invoke(cli, ["snapshot", *args],
                              obj=CliContext(open_environments=no_environment))


@pytest.mark.parametrize(("args", "message"), [
    (("ls", "volume:"), "give the volume's name"),
    (("create", "/", "--name", "a/b"), "invalid snapshot name"),
    (("prune", "/", "--keep-daily", "-3"), "-1 (all), 0 (off) or more"),
    (("prune", "/", "--max-total", "-1"), "0 or more"),
    (("create", "/proc"), "/proc is on proc"),
    (("ls", "/no/such/place"), "/no/such/place does not exist"),
    (("diff", "/", "a"), "Missing argument 'B'"),
])
def test_cli_bad_input_exits_2(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert message in result.output  # type: ignore[attr-defined]


def test_cli_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["snapshot", "--help"])
    for command in ("ls", "create", "restore", "rm", "diff", "prune"):
        assert f"  {command} " in result.output


def test_snapshot_to_json_is_rfc3339_utc() -> None:
    from ghostpanel_kernel.snapshots import Snapshot
    snapshot = Snapshot("n", "/s", "/s", "/l", "btrfs",
                        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert snapshot.to_json()["created"] == "2026-01-02T03:04:05Z"


def test_examples_in_the_docstrings_hold() -> None:
    import doctest

    from ghostpanel_kernel.snapshots import _model, _retention, _source, _targets

    for module in (_model, _retention, _source, _targets):
        assert doctest.testmod(module).failed == 0, module.__name__
