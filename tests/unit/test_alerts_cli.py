"""``ghostpanel alerts``: rules check, and ls / ack / silence on this machine's alert
state (``--local``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.metrics._alert_builtin import Finding
from ghostpanel_kernel.metrics._alert_rules import AlertRule
from ghostpanel_kernel.metrics._alert_state import AlertState


def test_rules_check(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[rules]]\nname = "a"\nkind = "down"\n'
                    '[[rules]]\nname = "p"\nkind = "python"\npredicate = "nowhere:f"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "b"\nkind = "cpu_saturated"\nfraction = 3\n')
    result = CliRunner().invoke(cli, ["alerts", "rules", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "2 rule(s): a (down), p (python)" in result.output  # predicate not imported
    result = CliRunner().invoke(cli, ["alerts", "rules", "check", str(good), str(bad)])
    assert result.exit_code == 1
    assert "rule 'b': fraction must be in (0, 1]" in result.output


def test_local_ls_ack_and_silence(tmp_path: Path) -> None:
    state = AlertState(tmp_path / "metrics" / "alerts.sqlite3")
    rule = AlertRule(name="hot", kind="cpu_saturated", severity="critical")
    state.apply([rule], "local", {"hot": [Finding("web", 0.9, "web is hot")]}, time.time())
    state.close()
    runner = CliRunner(env={"GHOSTPANEL_HOME": str(tmp_path)})
    listed = runner.invoke(cli, ["alerts", "ls", "--local"])
    assert listed.exit_code == 0, listed.output
    assert "firing" in listed.output and "web is hot" in listed.output
    acked = runner.invoke(cli, ["alerts", "ack", "1", "--by", "ada", "--local"])
    assert acked.exit_code == 0, acked.output
    assert "acknowledged by ada" in acked.output
    made = runner.invoke(cli, ["alerts", "silence", "--match", "container=web*",
                               "--for", "2h", "--local", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["matchers"] == {"container": "web*"}
    shown = json.loads(runner.invoke(cli, ["alerts", "ls", "--local", "--json"]).output)
    assert shown["alerts"][0]["acked"] and shown["alerts"][0]["silenced"]
    bad = runner.invoke(cli, ["alerts", "silence", "--match", "nolabel", "--for", "1h",
                              "--local"])
    assert bad.exit_code == 2
