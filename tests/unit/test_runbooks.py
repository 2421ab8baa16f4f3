"""Runbooks without a kernel: cron, the catalog and parameters, the history store, the
scheduler on a fake clock, and the CLI commands that execute nothing."""

from __future__ import annotations

import ast
import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.runbooks import (
    CronError,
    RunbookNotFound,
    RunbookScheduler,
    RunHistory,
    RunRecord,
    ScheduleRecord,
    coerce_parameters,
    find_runbook,
    list_runbooks,
    parse_cron,
)

CURATED = ["bulk_redeploy", "health_report", "image_prune", "volume_backup"]


def write_runbook(folder: Path, name: str, parameters: str, *code: str) -> Path:
    notebook = new_notebook(cells=[
        new_markdown_cell(f"# {name.title()}\n\nWhat {name} does."),
        new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        *(new_code_cell(source) for source in code)])
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    folder = tmp_path / "books"
    folder.mkdir()
    write_runbook(folder, "sample", 'count: int = 3  # how many\nname = "web"\nloud = False\n'
                  'items = ["a"]', "print(count)")
    monkeypatch.setenv("GHOSTPANEL_RUNBOOKS", str(folder))
    return tmp_path / "home"


# -- cron ----------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "after", "due"), [
    ("*/15 2 * * mon-fri", datetime(2026, 12, 5, 12, 0), datetime(2026, 12, 7, 2, 0)),
    ("0 3 * * *", datetime(2026, 12, 5, 3, 0), datetime(2026, 12, 6, 3, 0)),
    ("30 4 1,15 * *", datetime(2026, 12, 5), datetime(2026, 12, 15, 4, 30)),
    ("0 0 29 2 *", datetime(2026, 12, 5), datetime(2028, 2, 29)),
    # Both day fields restricted: either one makes the day due (Vixie cron).
    ("0 0 13 * 5", datetime(2026, 12, 5), datetime(2026, 12, 11)),
    ("0 12 * jan,jul sun", datetime(2026, 12, 5), datetime(2027, 1, 3, 12)),
    ("5 * * * 7", datetime(2026, 12, 6, 10, 5), datetime(2026, 12, 6, 11, 5)),
    ("@daily", datetime(2026, 12, 5, 23, 59, 30), datetime(2026, 12, 6)),
    ("@hourly", datetime(2026, 12, 5, 10, 0), datetime(2026, 12, 5, 11, 0)),
    ("1-10/3 * * * *", datetime(2026, 12, 5, 10, 4), datetime(2026, 12, 5, 10, 7)),
])
def test_cron_next_due_time(expression: str, after: datetime, due: datetime) -> None:
    assert parse_cron(expression).next_after(after) == due


def test_every_is_an_interval_in_seconds_for_tests_and_short_loops() -> None:
    schedule = parse_cron("@every 2s")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.next_after(start) == start + timedelta(seconds=2)
    assert parse_cron("@every 5m").next_after(start) == start + timedelta(minutes=5)


@pytest.mark.parametrize(("expression", "words"), [
    ("* * * *", "has 4 fields"),
    ("60 * * * *", "minute: 60 is outside 0-59"),
    ("* 24 * * *", "hour: 24"),
    ("* * 0 * *", "day of month: 0"),
    ("* * * foo *", "month: 'foo' is not a number"),
    ("* * * * 1-9", "day of week: 9"),
    ("*/0 * * * *", "minute: the step"),
    ("5-1 * * * *", "runs backwards"),
    ("@sometimes", "unknown name"),
    ("@every 0s", "above 0"),
])
def test_bad_cron_names_the_field(expression: str, words: str) -> None:
    with pytest.raises(CronError, match=words.replace("(", r"\(").replace("*", r"\*")):
        parse_cron(expression)


def test_an_expression_never_due_says_so() -> None:
    with pytest.raises(CronError, match="never due"):
        parse_cron("0 0 31 2 *").next_after(datetime(2026, 1, 1))


# -- the catalog -----------------------------------------------------------------------


def test_the_curated_runbooks_declare_every_parameter_papermill_sees() -> None:
    books = {book.name: book for book in list_runbooks()}
    assert set(CURATED) <= set(books)
    for name in CURATED:
        book = books[name]
        cells = json.loads(book.path.read_text())["cells"]
        tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        # What Python assigns in the cell is what papermill's inspection must list: a
        # comment it cannot parse drops a parameter silently.
        assigned = [node.targets[0].id for node in ast.parse("".join(tagged[0]["source"])).body
                    if isinstance(node, ast.Assign)]
        assert [p.name for p in book.parameters()] == assigned, name
        assert "environment" in assigned
        assert book.title and book.description, name


def test_a_folder_in_ghostpanel_runbooks_comes_first(home: Path, tmp_path: Path) -> None:
    shadow = write_runbook(tmp_path / "books", "health_report", 'x = 1')
    assert find_runbook("health_report").path == shadow
    assert find_runbook("sample").title == "Sample"
    with pytest.raises(RunbookNotFound, match=r"known: .*sample"):
        find_runbook("nope")
    assert find_runbook(str(shadow)).name == "health_report"


def test_parameters_are_coerced_to_their_types(home: Path) -> None:
    book = find_runbook("sample")
    by_name = {p.name: p for p in book.parameters()}
    assert by_name["count"].type_name == "int" and by_name["count"].help == "how many"
    values = coerce_parameters(book, {"count": "7", "name": "db", "loud": "yes",
                                      "items": '["x", "y"]'})
    assert values == {"count": 7, "name": "db", "loud": True, "items": ["x", "y"]}
    with pytest.raises(ValueError, match="count takes a number"):
        coerce_parameters(book, {"count": "many"})
    with pytest.raises(ValueError, match="loud takes true or false"):
        coerce_parameters(book, {"loud": "perhaps"})
    with pytest.raises(ValueError, match="no parameter 'colour'"):
        coerce_parameters(book, {"colour": "red"})


# -- the history -------------------------------------------------------------------------


def _record(run_id: str, started: float, runbook: str = "sample") -> RunRecord:
    return RunRecord(run_id, runbook, {"count": 1}, None, "manual", "running", started,
                     None, None, f"/runs/{run_id}.ipynb", None)


def test_history_keeps_runs_newest_first_with_duration(tmp_path: Path) -> None:
    history = RunHistory(tmp_path)
    history.start(_record("20261201-a", 100.0))
    history.start(_record("20261202-b", 200.0, runbook="other"))
    history.finish("20261201-a", status="failed", finished=103.5, error="boom",
                   html="/runs/a.html")
    runs = history.runs()
    assert [run.id for run in runs] == ["20261202-b", "20261201-a"]
    assert runs[1].status == "failed" and runs[1].duration == 3.5 and runs[1].error == "boom"
    assert runs[0].duration is None and runs[0].parameters == {"count": 1}
    assert [run.id for run in history.runs("other")] == ["20261202-b"]
    assert history.get("20261201").html == "/runs/a.html"
    with pytest.raises(KeyError, match="several runs"):
        history.get("2026120")
    with pytest.raises(ValueError, match="status must be"):
        history.finish("20261201-a", status="done")
    history.link_audit("20261201-a", 42)
    assert history.get("20261201-a").audit_seq == 42


def test_schedules_are_added_listed_and_removed(tmp_path: Path) -> None:
    history = RunHistory(tmp_path)
    first = history.add_schedule("sample", "0 3 * * *", {"count": 2}, "prod")
    second = history.add_schedule("other", "@every 2s", {})
    assert [item.id for item in history.schedules()] == [first.id, second.id]
    assert history.schedules()[0].parameters == {"count": 2}
    assert history.remove_schedule(first.id) and not history.remove_schedule(first.id)
    assert [item.runbook for item in history.schedules()] == ["other"]


# -- the scheduler on a fake clock ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 10, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 0.001))
        await asyncio.sleep(0)  # let the started runs go on


async def test_a_failed_run_does_not_stop_the_next_one(tmp_path: Path) -> None:
    history = RunHistory(tmp_path)
    schedule = history.add_schedule("sample", "* * * * *", {})
    clock = FakeClock()
    runs: list[int] = []

    async def runner(record: ScheduleRecord) -> object:
        runs.append(record.id)
        if len(runs) == 1:
            raise RuntimeError("the first run fails")
        return None

    scheduler = RunbookScheduler(history, runner=runner, clock=clock, sleep=clock.sleep,
                                 tick=30.0)
    task = asyncio.create_task(scheduler.run_forever())
    while len(runs) < 3:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Due at each whole minute after the start, the failed one included.
    assert [(key, due.strftime("%H:%M:%S")) for key, due in scheduler.fired[:3]] == [
        (schedule.id, "10:01:00"), (schedule.id, "10:02:00"), (schedule.id, "10:03:00")]


async def test_schedules_are_read_again_and_a_running_one_is_not_doubled(
        tmp_path: Path) -> None:
    history = RunHistory(tmp_path)
    clock = FakeClock()
    started: list[int] = []
    release = asyncio.Event()

    async def runner(record: ScheduleRecord) -> object:
        started.append(record.id)
        await release.wait()  # still running when its next time comes
        return None

    scheduler = RunbookScheduler(history, runner=runner, clock=clock, sleep=clock.sleep,
                                 tick=1.0)
    assert await scheduler.step() == 1.0  # nothing stored: the tick
    schedule = history.add_schedule("sample", "@every 10s", {})
    await scheduler.step()  # read: first due 10 s from now
    clock.now += timedelta(seconds=10)
    await scheduler.step()
    await asyncio.sleep(0)
    clock.now += timedelta(seconds=10)
    await scheduler.step()  # the first run still going: skipped
    await asyncio.sleep(0)
    assert started == [schedule.id]
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    history.remove_schedule(schedule.id)
    clock.now += timedelta(seconds=10)
    await scheduler.step()
    assert started == [schedule.id] and len(scheduler.fired) == 1


# -- the CLI, nothing executed ----------------------------------------------------------------


def test_cli_ls_and_schedules(home: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["runbook", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert [p["name"] for p in rows["sample"]["parameters"]] == ["count", "name", "loud",
                                                                  "items"]
    assert set(CURATED) <= set(rows)
    bad = runner.invoke(cli, ["runbook", "schedule", "add", "sample", "61 * * * *"])
    assert bad.exit_code == 2 and "minute: 61" in bad.output
    wrong = runner.invoke(cli, ["runbook", "schedule", "add", "sample", "@daily",
                                "-p", "count=lots"])
    assert wrong.exit_code == 2 and "count takes a number" in wrong.output
    added = runner.invoke(cli, ["runbook", "schedule", "add", "sample", "0 3 * * *",
                                "-p", "count=5", "--env", "prod"])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(cli, ["runbook", "schedule", "ls", "--json"])
    [item] = json.loads(shown.output)
    assert (item["runbook"], item["cron"], item["parameters"], item["environment"]) == (
        "sample", "0 3 * * *", {"count": 5}, "prod")
    assert runner.invoke(cli, ["runbook", "schedule", "rm", str(item["id"])]).exit_code == 0
    gone = runner.invoke(cli, ["runbook", "schedule", "rm", str(item["id"])])
    assert gone.exit_code == 1 and "no schedule" in gone.output


def test_cli_run_refuses_unknown_runbooks_and_parameters(home: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["runbook", "run", "nope"])
    assert unknown.exit_code == 2 and "no runbook named 'nope'" in unknown.output
    bad = runner.invoke(cli, ["runbook", "run", "sample", "-p", "colour=red"])
    assert bad.exit_code == 2 and "no parameter 'colour'" in bad.output
    assert not (home / "runbooks" / "runs").exists()  # nothing was started


async def test_the_agent_runs_the_scheduler_only_when_told(tmp_path: Path) -> None:
    from ghostpanel_kernel.server._app import create_app
    from ghostpanel_kernel.server._settings import AgentSettings

    for enabled in (False, True):
        settings = AgentSettings(engine_url=f"unix://{tmp_path}/engine.sock",
                                 listen="127.0.0.1:9", home=tmp_path, metrics_interval=0,
                                 runbook_schedules=enabled)
        app = create_app(settings)
        await app.startup()
        try:
            task = app._runbooks
            assert (task is not None) is enabled
            if task is not None:
                assert not task.done() and task.get_name() == "ghostpanel-runbook-schedules"
        finally:
            await app.shutdown()
        assert app._runbooks is None and (task is None or task.cancelled())


def test_a_wheel_ships_the_curated_runbooks_where_the_catalog_looks() -> None:
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[2]
    with open(root / "pyproject.toml", "rb") as file:
        data_files = tomllib.load(file)["tool"]["setuptools"]["data-files"]
    assert data_files["share/ghostpanel/runbooks"] == ["runbooks/*.ipynb"]
    from ghostpanel_kernel.runbooks import runbook_folders

    assert Path(sys.prefix) / "share" / "ghostpanel" / "runbooks" in runbook_folders()
    assert {path.stem for path in (root / "runbooks").glob("*.ipynb")} == set(CURATED)
