"""``SnapshotPicker`` and ``GpuAllocator`` in a browser, in Voila (the dashboard's
Snapshots and GPUs tabs, served by ``ghostpanel up``) and in JupyterLab offline
(``ghostpanel lab``, a notebook with one cell per widget), one click in each:

- the picker takes a snapshot of a subvolume on a real loop-mounted BTRFS, and the
  new ``bolt-`` snapshot appears on its timeline;
- the allocator shows the simulated GPUs (``GHOSTPANEL_GPU_SIMULATE``), labelled
  "simulated", and Assign puts the workload's name on a card.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.agent_process import free_port
from tests.btrfs_mount import btrfs_loop_mount, make_subvolume
from tests.e2e.conftest import (
    Server,
    registered_environment,
    serving,
)
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, screenshot_page, write_notebook
from tests.nvml_data import MIXED
from tests.podman_service import PodmanService

ENV = "e2e-snap-gpu"
ACTION_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def subvolume() -> Iterator[Path]:
    """A BTRFS subvolume on a loop mount, holding one file."""
    with btrfs_loop_mount("150M") as mount_point:
        path = make_subvolume(mount_point / "world")
        (path / "level.dat").write_text("seed")
        yield path


@contextlib.contextmanager
def _serve(arguments: list[str], banner: str, url: str, port: int = 0,
           env: str = ENV) -> Iterator[Server]:
    with registered_environment(env, url), \
            serving([*arguments, "--port", str(port or free_port()), "--env", env,
                     "--no-browser"], banner=banner,
                    extra_env={"GHOSTPANEL_GPU_SIMULATE": str(MIXED)}) as server:
        yield server


def snapshot_now(picker: Locator) -> None:
    """Click Snapshot now; a ``bolt-`` snapshot must appear on the timeline."""
    expect(picker.locator(".gp-rows")).to_contain_text("No snapshots of this source yet",
                                                       timeout=ACTION_TIMEOUT_MS)
    picker.locator("button", has_text="Snapshot now").click()
    expect(picker.locator(".gp-status")).to_contain_text("Took snapshot bolt-",
                                                         timeout=ACTION_TIMEOUT_MS)
    expect(picker.locator(".gp-rows select option")).to_have_count(1)
    expect(picker.locator(".gp-rows select option").first).to_contain_text(
        re.compile(r"bolt-\d{8}-\d{6}.*manual"))


def assign(allocator: Locator, workload: str) -> None:
    """The simulated cards are shown and labelled; Assign puts ``workload`` on one."""
    expect(allocator.locator(".gp-gpu-card")).to_have_count(5, timeout=ACTION_TIMEOUT_MS)
    expect(allocator.locator(".gp-gpu-simulated").first).to_be_visible()
    expect(allocator.locator(".gp-gpu-bar").first).to_be_visible()
    allocator.get_by_placeholder("container or service name").fill(workload)
    allocator.locator("button", has_text="Assign").click()
    expect(allocator.locator(".gp-gpu-card", has_text=workload)).to_have_count(
        1, timeout=ACTION_TIMEOUT_MS)
    expect(allocator.locator(".gp-status")).to_contain_text(f"{workload} holds GPU")


# -- Voila: the dashboard's tabs ---------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(podman_engine: PodmanService) -> Iterator[Server]:
    with _serve(["up"], "GhostPanel dashboard:", podman_engine.url) as server:
        yield server


def test_voila_dashboard_tabs(browser: Browser, dashboard: Server, subvolume: Path) -> None:
    with screenshot_page(browser, dashboard.url, "voila-snapshots-gpus", dashboard) as page:
        page.get_by_role("tab", name="Snapshots", exact=True).click(timeout=LOAD_TIMEOUT_MS)
        picker = page.locator(".gp-snapshot-picker")
        picker.get_by_placeholder("volume:NAME, container:NAME or /path").fill(str(subvolume))
        picker.locator("button", has_text="Open").click()
        expect(picker.locator(".gp-status")).to_contain_text(
            f"0 snapshots of {subvolume}", timeout=ACTION_TIMEOUT_MS)
        snapshot_now(picker)
        page.get_by_role("tab", name="GPUs", exact=True).click()
        assign(page.locator(".gp-gpu-allocator"), f"voila-{uuid.uuid4().hex[:6]}")


# -- JupyterLab, offline -----------------------------------------------------------------


def test_jupyterlabwrite_notebook(browser: Browser, podman_engine: PodmanService,
                             subvolume: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-lab-"))
    workload = f"lab-{uuid.uuid4().hex[:6]}"
    # A second subvolume: the Voila test already snapshotted the first one.
    source = make_subvolume(subvolume.parent / f"lab-{workload}")
    write_notebook(folder / "snapshots-gpus.ipynb", [
        "import os\nfrom ghostpanel_kernel import connect\n"
        "from ghostpanel_widgets import SnapshotPicker\n"
        "env = connect(os.environ['GHOSTPANEL_ENV'])\n"
        f"SnapshotPicker(env, {str(source)!r})",
        "from ghostpanel_widgets import GpuAllocator\nGpuAllocator(env)",
    ])
    try:
        port = free_port()
        with _serve(["lab", "--dir", str(folder)], "GhostPanel notebooks:",
                    podman_engine.url, port, env=f"{ENV}-lab") as server:
            token = server.url.split("token=")[1]
            url = f"http://127.0.0.1:{port}/lab/tree/snapshots-gpus.ipynb?token={token}"
            with screenshot_page(browser, url, "jupyterlab-snapshots-gpus", server) as page:
                run_all_cells(page, 2)
                cells = page.locator(".jp-Notebook .jp-CodeCell .jp-OutputArea")
                picker = cells.nth(0).locator(".gp-snapshot-picker")
                snapshot_now(picker)
                allocator = cells.nth(1).locator(".gp-gpu-allocator")
                allocator.scroll_into_view_if_needed()
                assign(allocator, workload)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
