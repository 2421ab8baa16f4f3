"""The agent's schedule task: started with the app given a Boltfile, cancelled at its
shutdown; no schedule code loaded by an agent without one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from ghostpanel_kernel.server._app import create_app
from ghostpanel_kernel.server._settings import AgentSettings
from ghostpanel_kernel.server._snapshot_schedule import check_boltfile

BOLTFILE = """\
project = "mc"

[snapshots.triggers]
daily = "02:00"

[services.world]
image = "docker.io/library/alpine"
volumes = ["world:/data"]
"""


def settings(tmp_path: Path, boltfile: Path | None) -> AgentSettings:
    return AgentSettings(engine_url="unix:///nonexistent/podman.sock", home=tmp_path,
                         snapshot_boltfile=boltfile)


async def test_the_schedule_runs_from_startup_to_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text(BOLTFILE)
    app = create_app(settings(tmp_path, path))
    await app.startup()
    task = app._schedule
    assert task is not None
    await asyncio.sleep(0)
    assert not task.done()  # sleeping until tomorrow's 02:00
    await app.shutdown()
    assert task.cancelled() and app._schedule is None


async def test_no_boltfile_no_schedule(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, None))
    await app.startup()
    assert app._schedule is None
    await app.shutdown()


def test_an_agent_without_a_boltfile_does_not_load_the_schedule(tmp_path: Path) -> None:
    code = ("import asyncio, sys; from pathlib import Path\n"
            "from ghostpanel_kernel.server._app import create_app\n"
            "from ghostpanel_kernel.server._settings import AgentSettings\n"
            "app = create_app(AgentSettings(engine_url='unix:///nonexistent.sock', "
            f"home=Path({str(tmp_path)!r})))\n"
            "asyncio.run(app.startup()); asyncio.run(app.shutdown())\n"
            "print('ghostpanel_kernel.server._snapshot_schedule' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("body", "message"), [
    (BOLTFILE.replace('"02:00"', '"2am"'), "snapshots.triggers.daily"),
    (BOLTFILE.replace('daily = "02:00"', "before_surge_up = true"), 'daily = "02:00"'),
    ("[snapshots]\nenabled = false\n" + BOLTFILE, "enabled = false"),
    ("project = [", "Boltfile.toml: "),
])
def test_a_boltfile_that_schedules_nothing_is_refused(tmp_path: Path, body: str,
                                                      message: str) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        check_boltfile(path)
