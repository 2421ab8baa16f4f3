"""The RunbookLauncher without running a kernel: the form made from the parameters
cell, bad values shown beside their field, the history grid and the inline output."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import pytest

from ghostpanel_kernel.runbooks import RunHistory, RunRecord
from tests.unit.test_runbooks import write_runbook


@pytest.fixture
def books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    write_runbook(folder, "sample", 'count: int = 3  # how many\nname = "web"\n'
                  "loud = False", "print(count)")
    monkeypatch.setenv("GHOSTPANEL_RUNBOOKS", str(folder))
    return tmp_path / "home"


async def test_the_form_follows_the_parameters_and_refuses_bad_values(books: Path) -> None:
    from ghostpanel_widgets import RunbookLauncher

    launcher = RunbookLauncher(runbook="sample", home=books)
    try:
        assert launcher.picker.value == "sample"
        assert "What sample does." in launcher.description.value
        assert list(launcher.fields) == ["count", "name", "loud"]
        assert isinstance(launcher.fields["loud"].input, ipywidgets.Checkbox)
        assert launcher.fields["name"].input.value == "web"  # the string, unquoted
        assert "how many" in launcher.fields["count"].help.value
        launcher.fields["count"].input.value = "lots"
        assert await launcher.run() is None  # nothing started
        assert "count takes a number" in launcher.fields["count"].error.value
        assert launcher.status.level == "error" and "count" in launcher.status.message
        assert not (books / "runbooks" / "runs").exists()
        launcher.fields["count"].input.value = "7"
        launcher.fields["loud"].input.value = True
        assert launcher.values() == {"count": 7, "name": "web", "loud": True}
        assert launcher.fields["count"].error.value == ""
    finally:
        launcher.close()


def test_the_history_grid_and_the_output_of_a_run(books: Path, tmp_path: Path) -> None:
    from ghostpanel_widgets import RunbookLauncher

    page = tmp_path / "page.html"
    page.write_text("<html><body><p>all <b>fine</b></p></body></html>")
    history = RunHistory(books)
    history.start(RunRecord("r-ok", "sample", {}, None, "schedule:3", "running", 100.0,
                            None, None, "/runs/r-ok.ipynb", None))
    history.finish("r-ok", status="succeeded", finished=102.0, html=str(page))
    history.start(RunRecord("r-bad", "sample", {}, None, "manual", "running", 200.0,
                            None, None, "/runs/r-bad.ipynb", None))
    history.finish("r-bad", status="failed", finished=201.0,
                   error="cell 2: RuntimeError: boom\ntraceback")
    launcher = RunbookLauncher(home=books)
    try:
        grid = launcher.history.value
        assert grid.index("failed") < grid.index("succeeded")  # newest first
        assert "RuntimeError: boom" in grid and "traceback" not in grid
        assert "2.0 s" in grid and "schedule:3" in grid
        assert [value for _, value in launcher.run_picker.options] == ["r-ok"]
        assert "srcdoc=" in launcher.output.value
        assert "&lt;b&gt;fine&lt;/b&gt;" in launcher.output.value  # escaped into srcdoc
        page.unlink()  # a page removed since: said in the status line, not raised
        launcher.show_output()
        assert launcher.status.level == "error"
    finally:
        launcher.close()
    assert launcher.run_button.comm is None  # closed with the launcher
