"""``ghostpanel metrics collect --alert-rules`` on a host without an agent, then
``ghostpanel alerts ls/ack --local`` on the state it keeps, on real Podman."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agent_process import run_cli
from tests.integration.conftest import MakeContainer, unique

pytestmark = pytest.mark.integration


async def test_collect_evaluates_rules_and_the_cli_reads_them(
        engine_url: str, make_container: MakeContainer, tmp_path: Path) -> None:
    prefix = unique("gp-alertc")
    failed = await make_container(name=f"{prefix}-job", command=["sh", "-c", "exit 4"])
    await failed.start()
    await failed.wait()
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rules]]\nname = "down"\nkind = "down"\n'
                     f'containers = ["{prefix}-*"]\n')
    home = tmp_path / "home"
    assert run_cli(home, "env", "add", "podman", engine_url).returncode == 0
    collected = run_cli(home, "metrics", "collect", "--env", "podman", "--interval", "0.2",
                        "--rounds", "3", "--alert-rules", str(rules))
    assert collected.returncode == 0, collected.stderr
    listed = run_cli(home, "alerts", "ls", "--local", "--json")
    assert listed.returncode == 0, listed.stderr
    [alert] = json.loads(listed.stdout)["alerts"]
    assert (alert["rule"], alert["container"], alert["state"], alert["value"]) == (
        "down", failed.name, "firing", 4.0)
    acked = run_cli(home, "alerts", "ack", str(alert["id"]), "--local", "--by", "ada")
    assert acked.returncode == 0 and "acknowledged by ada" in acked.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "x"\nkind = "restart_loop"\nrestarts = 0\n')
    refused = run_cli(home, "metrics", "collect", "--env", "podman", "--rounds", "1",
                      "--alert-rules", str(bad))
    assert refused.returncode == 2 and "rule 'x'" in refused.stderr
