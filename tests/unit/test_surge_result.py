"""How a run that did not succeed is said: once, and truly.

An engine killed mid-apply used to print "every change of this run was rolled back" and
then "rollback incomplete": the result now decides one conclusion, and the CLI prints
it as it is.
"""

from __future__ import annotations

import click
import pytest

from ghostpanel_kernel.cli._surge import _report_result
from ghostpanel_kernel.surge import SurgePlan, SurgeResult
from ghostpanel_kernel.surge._apply import _undone_result
from ghostpanel_kernel.surge._plan import Action, EnvironmentPlan

PLAN = SurgePlan("p", (
    EnvironmentPlan("a", (Action("create", "web", "p_web", "new service"),)),
    EnvironmentPlan("b", (Action("create", "web", "p_web", "new service"),)),
    EnvironmentPlan("c", (Action("unchanged", "web", "p_web", "up to date"),))))


def test_a_complete_rollback_says_so_once() -> None:
    result = _undone_result(PLAN, {"a", "b"}, {"b": OSError("port taken")}, {})
    assert result.rolled_back and not result.ok
    assert result.outcomes == {"a": "rolled-back", "b": "failed", "c": "unchanged"}
    assert result.conclusion() == ["every change of this run was rolled back"]


def test_an_incomplete_rollback_never_claims_every_change_was_undone() -> None:
    gone = OSError("cannot connect to the engine")
    result = _undone_result(PLAN, {"a", "b"}, {"b": gone},
                            {"a": ["a: undo create p_web: cannot connect to the engine"]})
    assert not result.rolled_back
    assert result.outcomes["a"] == "rollback-incomplete"
    assert result.conclusion() == [
        "rollback incomplete: a: undo create p_web: cannot connect to the engine"]
    assert result.summary()[0] == "a: rollback-incomplete (planned: 1 created)"
    assert result.to_dict()["conclusion"] == result.conclusion()


def test_a_cancelled_run_says_what_it_left() -> None:
    nothing = _undone_result(PLAN, set(), {}, {}, cancelled=True)
    assert not nothing.ok and not nothing.rolled_back
    assert nothing.outcomes == {"a": "not-applied", "b": "not-applied", "c": "unchanged"}
    assert nothing.conclusion() == ["cancelled before it changed anything"]
    undone = _undone_result(PLAN, {"a"}, {}, {}, cancelled=True)
    assert undone.conclusion() == ["every change of this run was rolled back"]


def test_the_cli_prints_the_one_conclusion(capsys: pytest.CaptureFixture[str]) -> None:
    result = _undone_result(PLAN, {"a", "b"}, {"b": OSError("engine gone")},
                            {"a": ["a: undo create p_web: engine gone"],
                             "b": ["b: undo create p_web: engine gone"]})
    with pytest.raises(click.exceptions.Exit) as caught:
        _report_result(result, as_json=False)
    assert caught.value.exit_code == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["a: rollback-incomplete (planned: 1 created)",
                                "b: failed: engine gone", "c: 1 unchanged"]
    assert err.splitlines() == ["Error: environment 'b': engine gone",
                                "Error: rollback incomplete: a: undo create p_web: engine gone",
                                "Error: rollback incomplete: b: undo create p_web: engine gone"]
    assert "rolled back" not in err


def test_a_success_has_no_conclusion() -> None:
    result = SurgeResult("p", PLAN, {"a": "applied", "b": "applied", "c": "unchanged"})
    assert result.ok and result.conclusion() == []
