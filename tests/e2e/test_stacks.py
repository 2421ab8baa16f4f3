"""``StacksView`` in Voila, driven by Debian's Chromium through Playwright: the row of a
Surge project renders with its replicas and drift; selecting it and pressing Plan shows
Surge's plan.

One Voila server (``python -m voila`` with ``ghostpanel up``'s settings) on a notebook
of the test's own, over a project applied to the session's Podman engine beforehand and
destroyed after the test whatever happened.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.surge import apply_surge, destroy_surge
from tests.e2e.conftest import voila_notebook
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, screenshot_page, write_notebook
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

ACTION_TIMEOUT_MS = 60_000


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API holds this one's
    event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _apply(url: str, path: Path) -> bool:
    async with connect(url, name="e2e-stacks") as env:
        return (await apply_surge(Boltfile.load(path), [env], stop_timeout=0)).ok


async def _destroy(url: str, project: str) -> None:
    async with connect(url, name="e2e-stacks") as env:
        await destroy_surge(project, [env], volumes=True, stop_timeout=0)


def test_the_stacks_page_in_voila_lists_a_project_and_plans_it(
        browser: Browser, podman_engine: PodmanService) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-stacks-"))
    project = f"e2e{uuid.uuid4().hex[:8]}"
    boltfile = folder / "Boltfile.toml"
    boltfile.write_text(f'project = "{project}"\n[services.web]\nimage = "{BUSYBOX_REFERENCE}"\n'
                        'command = ["sleep", "300"]\nreplicas = 2\n', encoding="utf-8")
    write_notebook(folder / "stacks.ipynb", [
        "from ghostpanel_kernel import connect\n"
        "from ghostpanel_widgets import StacksView\n"
        f"StacksView([connect({podman_engine.url!r}, name='e2e')], stop_timeout=0)",
    ])
    try:
        assert _run(_apply(podman_engine.url, boltfile))
        # Drift: the file now wants a third replica.
        boltfile.write_text(boltfile.read_text().replace("replicas = 2", "replicas = 3"))
        with voila_notebook(folder / "stacks.ipynb") as server, \
                screenshot_page(browser, server.url, "voila-stacks", server) as page:
            stacks = page.locator(".gp-stacks")
            expect(stacks).to_be_visible(timeout=LOAD_TIMEOUT_MS)
            row = stacks.locator(".gp-stacks-grid select option", has_text=project)
            expect(row).to_have_count(1, timeout=ACTION_TIMEOUT_MS)
            expect(row).to_contain_text("e2e 2/3")
            expect(row).to_contain_text("1 change (1 create)")
            index = stacks.locator(".gp-stacks-grid select option").evaluate_all(
                "(rows, name) => rows.findIndex(row => row.textContent.includes(name))",
                project)
            stacks.locator(".gp-stacks-grid select").select_option(index=index)
            detail = stacks.locator(".gp-stack-detail")
            expect(detail).to_be_visible(timeout=ACTION_TIMEOUT_MS)
            expect(detail).to_contain_text(f"{project}_web_2")
            detail.locator(".gp-stack-plan").click()
            plan = detail.locator(".gp-surge-plan")
            expect(plan).to_be_visible(timeout=ACTION_TIMEOUT_MS)
            expect(plan.locator('tr[data-action="create"]')).to_contain_text(
                f"{project}_web_3")
            expect(plan.locator('tr[data-action="unchanged"]')).to_have_count(2)
            expect(stacks.locator(".gp-status")).to_contain_text(f"Planned {project}: 1 change")
    finally:
        _run(_destroy(podman_engine.url, project))
        shutil.rmtree(folder)
