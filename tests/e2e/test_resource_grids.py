"""The images grid in Voila, in Chromium: rows sorted by a click on a column's header,
filtered by the box, and two ticked rows removed after a confirmation that names them.

A small notebook (written here) shows ``ImageBrowser`` on the session's engine, where
two extra tags of busybox (unique names) are made for the module; whatever is left of
them is removed at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import NotFound
from tests.e2e.conftest import voila_notebook, wait_until
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, screenshot_page, write_notebook
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

MARK = f"gp-grid-{uuid.uuid4().hex[:6]}"
TAGS = [f"localhost/{MARK}-a:v1", f"localhost/{MARK}-b:v1", f"localhost/{MARK}-c:v1"]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` in a thread of its own (Playwright's sync API keeps an event
    loop running in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _tag(url: str) -> None:
    async with connect(url, name="grid") as env:
        busybox = await env.images.get(BUSYBOX_REFERENCE)
        for tag in TAGS:
            await busybox.tag(*tag.rsplit(":", 1))


async def _untag(url: str) -> None:
    async with connect(url, name="grid") as env:
        for tag in TAGS:
            with contextlib.suppress(NotFound):
                await env.images.remove(tag)  # the tag only: busybox stays


async def _tags(url: str) -> set[str]:
    async with connect(url, name="grid") as env:
        return {tag for image in await env.images.list() for tag in image.tags}


@pytest.fixture(scope="module")
def grid_page(browser: Browser, podman_engine: PodmanService) -> Iterator[Page]:
    """The notebook's page in Voila, the three tags made for the module."""
    run(_tag(podman_engine.url))
    try:
        with tempfile.TemporaryDirectory(prefix="grids-e2e-") as folder:
            notebook = write_notebook(Path(folder) / "grids.ipynb", [
                "from ghostpanel_kernel import connect\n"
                "from ghostpanel_widgets import ImageBrowser\n"
                f"ImageBrowser(connect({podman_engine.url!r}, name='grid'))"])
            with voila_notebook(notebook) as server, \
                    screenshot_page(browser, server.url, "voila-image-grid", server) as page:
                yield page
    finally:
        run(_untag(podman_engine.url))


def _tag_cells(grid: Locator) -> list[str]:
    """The Tag column's cells of the rows shown, top to bottom, ours only."""
    cells = grid.locator(".tabulator-row .tabulator-cell[tabulator-field='tag']")
    return [text.strip() for text in cells.all_inner_texts() if MARK in text]


def test_the_images_grid_sorts_filters_and_removes_ticked_rows(
        grid_page: Page, podman_engine: PodmanService) -> None:
    grid = grid_page.locator(".gp-image-browser")
    for tag in TAGS:
        expect(grid.locator(".tabulator-row", has_text=tag)).to_be_visible(
            timeout=LOAD_TIMEOUT_MS)
    assert _tag_cells(grid) == TAGS  # listed in tag order

    # A click on the Tag header sorts (the kernel sorts: remote pagination); the next
    # click reverses.
    header = grid.locator(".tabulator-col[tabulator-field='tag']")
    header.click()
    header.click()
    wait_until(lambda: _tag_cells(grid) == TAGS[::-1], timeout=30,
               message=f"descending tags, not {_tag_cells(grid)}")

    grid.get_by_placeholder("filter images...").fill(MARK)
    expect(grid.locator(".tabulator-row")).to_have_count(3, timeout=30_000)
    expect(grid).to_contain_text("3 of ")

    for tag in TAGS[:2]:
        grid.locator(".tabulator-row", has_text=tag).locator(
            "input[type='checkbox']").check()
    expect(grid).to_contain_text("2 ticked", timeout=30_000)
    grid.get_by_role("button", name="Remove").click()
    question = grid.locator(".gp-confirmation")
    expect(question).to_contain_text(f"Remove 2 images: {TAGS[1]}, {TAGS[0]}?")
    assert TAGS[0] in run(_tags(podman_engine.url))  # nothing before Confirm
    question.get_by_role("button", name="Confirm").click()

    expect(grid.locator(".gp-status")).to_contain_text(
        f"Removed 2 images: {TAGS[1]}, {TAGS[0]}.", timeout=60_000)
    expect(grid.locator(".tabulator-row")).to_have_count(1)
    assert _tag_cells(grid) == [TAGS[2]]
    left = run(_tags(podman_engine.url))
    assert TAGS[2] in left and not {TAGS[0], TAGS[1]} & left
    assert BUSYBOX_REFERENCE in left
