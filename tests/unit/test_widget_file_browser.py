"""``FileBrowser`` on a canned Docker engine: stat before download, symlinks followed.

Docker differs from Podman where symlinks are concerned: its ``GET /archive`` of a
symlink sends the link itself, not what it points to, and its path stat has no
``isDir``. So a link to a directory cannot be listed as one; the browser asks the
engine where it resolves (``HEAD /archive``: ``linkTarget``) and lists that. The
integration tests cover Podman, which follows such links itself.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import tarfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ghostpanel_widgets._file_browser import FileBrowser

from tests.unit.fake_engine import DOCKER, FakeEngine, json_answer

ID = "5f0c" * 16
MTIME = 1714557600
# Go's os.FileMode type bits, as Docker puts them in the path stat.
GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27

# path -> ("dir", None) | ("file", content) | ("symlink", absolute target)
FILES: dict[str, tuple[str, Any]] = {
    "/srv": ("dir", None),
    "/srv/app.conf": ("file", b"port = 80\n"),
    "/srv/big.bin": ("file", b"\0" * (3 << 20)),
    "/srv/current": ("symlink", "/srv/releases/v2"),
    "/srv/conf-link": ("symlink", "/srv/app.conf"),
    "/srv/releases": ("dir", None),
    "/srv/releases/v2": ("dir", None),
    "/srv/releases/v2/index.html": ("file", b"<h1>v2</h1>"),
}


def _stat(path: str) -> dict[str, Any]:
    kind, value = FILES[path]
    mode = {"dir": GO_DIR | 0o755, "symlink": GO_SYMLINK | 0o777, "file": 0o644}[kind]
    size = 4096 if kind == "dir" else len(value)
    return {"name": posixpath.basename(path), "size": size, "mode": mode,
            "mtime": "2024-05-01T10:00:00Z", "linkTarget": value if kind == "symlink" else ""}


def _tar(path: str) -> bytes:
    """Docker's tar of ``path``: members named from its base name; a link as a link."""
    buffer = io.BytesIO()
    base = posixpath.basename(path)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in [path, *sorted(p for p in FILES if p.startswith(path + "/"))]:
            kind, value = FILES[name]
            info = tarfile.TarInfo(base + name[len(path):])
            info.mtime = MTIME
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o644
                tar.addfile(info, io.BytesIO(value))
    return buffer.getvalue()


def _archive(request: httpx.Request) -> httpx.Response:
    path = request.url.params["path"].rstrip("/") or "/"
    if path not in FILES:
        if request.method == "HEAD":
            return httpx.Response(404)
        return httpx.Response(404, json={"message": f"Could not find the file {path} in "
                                                    "container web"})
    stat = base64.b64encode(json.dumps(_stat(path)).encode()).decode()
    headers = {"X-Docker-Container-Path-Stat": stat, "Content-Type": "application/x-tar"}
    return httpx.Response(200, headers=headers,
                          content=b"" if request.method == "HEAD" else _tar(path))


def docker_engine() -> FakeEngine:
    inspect = {"Id": ID, "Name": "/web", "State": {"Status": "running", "Running": True,
                                                   "StartedAt": "2024-05-01T10:00:00Z"}}
    return FakeEngine({("GET", "/containers/web/json"): json_answer(inspect),
                       ("HEAD", f"/containers/{ID}/archive"): _archive,
                       ("GET", f"/containers/{ID}/archive"): _archive}, profile=DOCKER)


@pytest.fixture
def open_browser(open_engine_widget: Callable[..., Any]) -> Callable[..., Any]:
    """``await open_browser(engine, path=...)``: a FileBrowser, shown; closed after."""
    return lambda engine, **options: open_engine_widget(FileBrowser, engine, "web",
                                                        **options)


def _archive_calls(engine: FakeEngine) -> list[tuple[str, str]]:
    return [(method, query["path"]) for method, path, query in engine.calls
            if path.endswith("/archive")]


async def test_a_link_to_a_directory_opens_where_it_resolves(open_browser) -> None:
    engine = docker_engine()
    browser = await open_browser(engine, path="/srv/current")
    assert browser.status.level != "error", browser.status.message
    assert browser.path == "/srv/releases/v2"
    assert [row[0] for row in browser.listing.rows] == ["index.html"]
    assert _archive_calls(engine) == [
        ("GET", "/srv/current"),  # a link, not a directory: then what is it?
        ("HEAD", "/srv/current"), ("HEAD", "/srv/releases/v2"), ("GET", "/srv/releases/v2")]


async def test_opening_links_from_the_listing(open_browser) -> None:
    engine = docker_engine()
    browser = await open_browser(engine, path="/srv")
    assert [row[0] for row in browser.listing.rows] == [
        "releases/", "app.conf", "big.bin", "conf-link -> /srv/app.conf",
        "current -> /srv/releases/v2"]

    browser.listing.value = "conf-link"  # to a file: downloaded, under the link's name
    browser.open_button.click()
    await browser.task
    assert browser.status.level == "success", browser.status.message
    assert 'download="conf-link"' in browser.download_view.value
    assert base64.b64encode(b"port = 80\n").decode() in browser.download_view.value

    browser.listing.value = "current"  # to a directory: opened
    browser.open_button.click()
    await browser.task
    assert browser.path == "/srv/releases/v2"


async def test_a_download_too_big_is_refused_without_reading_it(open_browser) -> None:
    engine = docker_engine()
    browser = await open_browser(engine, path="/srv/releases", max_download_bytes=1 << 20)
    engine.requests.clear()
    assert await browser.download_link("/srv/big.bin") is None  # not in the listing shown
    assert browser.status.message.startswith(
        "Download /srv/big.bin failed: big.bin is 3 MiB: downloads from this browser "
        "stop at 1 MiB")
    assert _archive_calls(engine) == [("HEAD", "/srv/big.bin")]


async def test_a_missing_file_is_named_in_the_error(open_browser) -> None:
    engine = docker_engine()
    browser = await open_browser(engine, path="/srv")
    assert await browser.download_link("gone.txt") is None
    assert browser.status.message == (
        "Download /srv/gone.txt failed: [404] Could not find the file /srv/gone.txt in "
        "container web (GET /v1.43/containers/" + ID + "/archive)")
