"""``FileBrowser`` and ``Container.stat_path`` together, on a real Podman engine.

The browser asks the engine what a path is before it downloads (a file too big is
refused before any of it travels; one the listing does not show is found) and follows
symlinks to where they resolve. Headless, as in ``test_widget_inspect_exec_files.py``;
each test closes its widgets (``shown``) and removes its containers (``make_container``).
"""

from __future__ import annotations

import base64
import tracemalloc

import pytest
from ghostpanel_widgets._file_browser import FileBrowser

from ghostpanel_kernel.engine import Container, Environment

pytestmark = pytest.mark.integration


async def _container_with_links(make_container) -> Container:
    container = await make_container()
    await container.start()
    made = await container.exec(
        "mkdir -p /gpdir/sub && printf alpha > /gpdir/a.txt && printf deep > /gpdir/sub/deep.txt"
        " && ln -s a.txt /gpdir/to-file && ln -s /gpdir/sub /gplink && ln -s to-file "
        "/gpdir/chain && dd if=/dev/zero of=/gpdir/big.bin bs=1048576 count=8 2>/dev/null")
    assert made.exit_code == 0, made.stderr
    return container


async def test_opening_a_symlink_to_a_file_downloads_the_file(env: Environment,
                                                             make_container, shown) -> None:
    container = await _container_with_links(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir"))
    for link in ("to-file", "chain"):  # one hop, and a link to a link
        browser.listing.value = link
        browser.open_button.click()
        await browser.task
        assert browser.status.level == "success", browser.status.message
        assert browser.path == "/gpdir"
        assert f'download="{link}"' in browser.download_view.value
        assert base64.b64encode(b"alpha").decode() in browser.download_view.value


async def test_a_symlink_to_a_directory_opens_as_the_directory(env: Environment,
                                                               make_container, shown) -> None:
    # Podman's archive follows a link to a directory (its stat says isDir): listed as is.
    container = await _container_with_links(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gplink"))
    assert browser.status.level != "error", browser.status.message
    assert browser.path == "/gplink"
    assert [row[0] for row in browser.listing.rows] == ["deep.txt"]
    assert browser.entries[0].path == "/gplink/deep.txt"
    link = await browser.download_link("deep.txt")
    assert link is not None and base64.b64encode(b"deep").decode() in link


async def test_a_download_too_big_is_refused_before_it_travels(env: Environment,
                                                               make_container, shown) -> None:
    container = await _container_with_links(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir/sub",
                                      max_download_bytes=1 << 20))
    tracemalloc.start()
    try:
        # An absolute path the listing does not show: its size comes from the engine.
        assert await browser.download_link("/gpdir/big.bin") is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert browser.status.message.startswith(
        "Download /gpdir/big.bin failed: big.bin is 8 MiB: downloads from this browser "
        "stop at 1 MiB")
    assert peak < 1 << 20, f"{peak} bytes held to refuse an 8 MiB download"


async def test_a_file_gone_since_the_listing_is_reported_by_path(env: Environment,
                                                                 make_container, shown) -> None:
    container = await _container_with_links(make_container)
    browser = await shown(FileBrowser(env, container.name, path="/gpdir"))
    assert "a.txt" in [row[0] for row in browser.listing.rows]
    assert (await container.exec("rm /gpdir/a.txt")).exit_code == 0
    assert await browser.download_link("a.txt") is None
    assert browser.status.message.startswith(
        "Download /gpdir/a.txt failed: [404] /gpdir/a.txt: no such file or directory")
    browser.listing.value = "to-file"  # now a dangling link
    browser.open_button.click()
    await browser.task
    assert browser.status.level == "error"
    assert "/gpdir/to-file: no such file or directory" in browser.status.message
    assert browser.path == "/gpdir"
