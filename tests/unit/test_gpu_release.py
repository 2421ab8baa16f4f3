"""The agent's GPU releaser costs nothing where no GPU is reserved: the start check reads
the SQLite store with the standard library, and an agent whose store holds no
reservation starts no subscriber and imports no GPU kernel (nor SQLAlchemy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ghostpanel_kernel.gpus import GpuAllocator, GpuRequest, load_simulation, read_inventory
from ghostpanel_kernel.server._gpu_release import has_reservations
from ghostpanel_kernel.store import open_database
from tests.nvml_data import MIXED


def test_has_reservations_reads_the_sqlite_store_as_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ghostpanel.db'}"
    assert has_reservations(url) is False  # no file yet: and none is made
    assert not (tmp_path / "ghostpanel.db").exists()
    engine = open_database(url)
    try:
        assert has_reservations(url) is False  # the table, empty
        inventory = read_inventory(load_simulation(MIXED), source=str(MIXED), host="lab")
        allocator = GpuAllocator(inventory, engine=engine)
        allocator.allocate("steam", GpuRequest(gpus=("0",)))
        assert has_reservations(url) is True
        allocator.release("steam")
        assert has_reservations(url) is False
    finally:
        engine.dispose()
    (tmp_path / "other.db").write_bytes(b"")  # a database without the table
    assert has_reservations(f"sqlite:///{tmp_path / 'other.db'}") is False


def test_an_idle_agent_starts_no_releaser_and_imports_no_gpu_kernel(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from ghostpanel_kernel.server._app import create_app\n"
        "from ghostpanel_kernel.server._settings import AgentSettings\n"
        f"settings = AgentSettings(engine_url='unix:///nonexistent.sock', "
        f"home=Path({str(tmp_path)!r}))\n"
        "app = create_app(settings)\n"
        "async def main():\n"
        "    await app.startup()\n"
        "    print(app.gpu_releaser.running)\n"
        "    await app.shutdown()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('sqlalchemy', 'ghostpanel_kernel.gpus') "
        "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["False", "[]"]
