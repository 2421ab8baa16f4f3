"""Bad settings (``GHOSTPANEL_DATABASE_URL``, ``GHOSTPANEL_HOME``, ``--home``): one line
naming the setting and what to change, exit status 2, never a traceback, whatever the
command.

A table: each bad setting with the exact first line expected, run through the commands
that use the registry. The commands' own arguments are valid, so the registry is the
first thing to fail.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostpanel_kernel.cli import cli

REPOSITORY = Path(__file__).resolve().parents[2]

CHANGE_URL = ("change or unset GHOSTPANEL_DATABASE_URL (e.g. sqlite:////home/ada/ghostpanel.db "
              "or postgresql+psycopg://user@host/db)")

#: (id, environment variables, extra global options, exact first line of stderr).
BAD_SETTINGS = [
    ("not-a-url", {"GHOSTPANEL_DATABASE_URL": "nonsense"}, [],
     f"Error: GHOSTPANEL_DATABASE_URL is not a database URL ('nonsense'): {CHANGE_URL}"),
    ("unknown-database", {"GHOSTPANEL_DATABASE_URL": "nosuchdb://db/gp"}, [],
     "Error: GHOSTPANEL_DATABASE_URL names a database SQLAlchemy does not know "
     f"('nosuchdb' in nosuchdb://db/gp): {CHANGE_URL}"),
    ("driver-not-installed", {"GHOSTPANEL_DATABASE_URL": "postgresql+psycopg2://gp:pw@db/gp"},
     [], "Error: GHOSTPANEL_DATABASE_URL (postgresql+psycopg2://gp:***@db/gp) needs the "
         "Python module 'psycopg2', which is not installed: install that database driver, "
         f"or {CHANGE_URL}"),
    ("sqlite-in-a-file", {"GHOSTPANEL_DATABASE_URL": "sqlite:///{blocker}/sub/gp.db"}, [],
     "Error: cannot create {blocker}/sub, the directory of the registry database (from "
     f"GHOSTPANEL_DATABASE_URL): Not a directory: {CHANGE_URL}"),
    ("sqlite-is-a-directory", {"GHOSTPANEL_DATABASE_URL": "sqlite:///{tmp}"}, [],
     "Error: cannot open the registry database sqlite:///{tmp} (from "
     f"GHOSTPANEL_DATABASE_URL): unable to open database file: {CHANGE_URL}"),
    ("home-in-a-file", {"GHOSTPANEL_HOME": "{blocker}/home"}, [],
     "Error: cannot create {blocker}/home, the directory of the registry database (from "
     "GHOSTPANEL_HOME): Not a directory: set GHOSTPANEL_HOME (or --home) to a directory "
     "you can write, or GHOSTPANEL_DATABASE_URL to another database"),
    ("home-option-in-a-file", {}, ["--home", "{blocker}/home"],
     "Error: cannot create {blocker}/home, the directory of the registry database (from "
     "GHOSTPANEL_HOME): Not a directory: set GHOSTPANEL_HOME (or --home) to a directory "
     "you can write, or GHOSTPANEL_DATABASE_URL to another database"),
]

#: Every command that reads or writes the registry, with valid arguments.
COMMANDS = [
    ["env", "ls"], ["env", "add", "x", "tcp://127.0.0.1:9"], ["env", "use", "x"],
    ["env", "rm", "x"], ["ps"], ["ps", "--env", "all"], ["images"], ["volumes"],
    ["networks"], ["version"], ["info"], ["logs", "web"], ["inspect", "web"],
    ["start", "web"], ["stop", "web"], ["restart", "web"], ["rm", "web"], ["stats"],
    ["events"], ["pull", "busybox"], ["up", "--no-browser"],
    ["lab", "--no-browser", "--env", "x"], ["surge", "plan", "-f", "{boltfile}"],
    ["surge", "status", "-f", "{boltfile}"], ["surge", "apply", "-f", "{boltfile}"],
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a directory is expected\n")
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text('[services.web]\nimage = "busybox"\n')
    return {"blocker": str(blocker), "tmp": str(tmp_path), "boltfile": str(boltfile)}


def filled(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace(f"{{{name}}}", value)
    return text


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("variables", "options", "first_line"),
                         [case[1:] for case in BAD_SETTINGS],
                         ids=[case[0] for case in BAD_SETTINGS])
def test_a_bad_setting_is_one_line_and_exit_2(
        places: dict[str, str], variables: dict[str, str], options: list[str],
        first_line: str, command: list[str]) -> None:
    if "psycopg2" in first_line and importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    env: dict[str, str | None] = {"GHOSTPANEL_DATABASE_URL": None, "GHOSTPANEL_HOME": None}
    env |= {name: filled(value, places) for name, value in variables.items()}
    args = [filled(item, places) for item in options + command]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    assert (result.exit_code, result.stderr.splitlines()) == (
        2, [filled(first_line, places)])
    assert result.stdout == ""


def test_a_real_process_prints_no_traceback(places: dict[str, str]) -> None:
    environment = {**os.environ, "GHOSTPANEL_DATABASE_URL": "nonsense",
                   "PYTHONPATH": str(REPOSITORY)}
    finished = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "ps"],
                              capture_output=True, text=True, env=environment, timeout=60,
                              check=False)
    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        f"Error: GHOSTPANEL_DATABASE_URL is not a database URL ('nonsense'): {CHANGE_URL}"]


def test_the_exit_status_is_documented() -> None:
    text = " ".join(CliRunner().invoke(cli, ["--help"]).stdout.split())
    assert ("2 a usage error or a setting that cannot work (GHOSTPANEL_DATABASE_URL, "
            "GHOSTPANEL_HOME or --home)") in text
