"""The demo containers' image on a canned engine: this host's busybox goes only where it runs.

The demo imports ``localhost/busybox:latest`` from this machine's static busybox when an
engine lacks it. That binary runs only on the same CPU architecture, so the engine's
``Arch`` (``GET /version``) is checked first; the host's architecture is pinned here, so
the tests read the same on any machine.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ghostpanel_kernel import demo
from ghostpanel_kernel._busybox import host_architecture
from ghostpanel_kernel.demo import DEMO_IMAGE, DemoError, start_demo_containers
from tests.unit.fake_engine import (
    PODMAN,
    EngineProfile,
    FakeEngine,
    env_for,
    json_answer,
)

IMAGE_ROUTE = ("GET", "/images/localhost%2Fbusybox:latest/json")
IMAGE = {"Id": "sha256:" + "ab" * 32, "RepoTags": [DEMO_IMAGE], "Size": 1000}


def engine_on(arch: str) -> FakeEngine:
    """A Podman 4.3.1 fake reporting ``arch``, without the demo image nor containers."""
    profile = EngineProfile(PODMAN.ping_headers, {**PODMAN.version, "Arch": arch},
                            PODMAN.prefix)
    return FakeEngine({("GET", "/containers/json"): json_answer([])}, profile=profile)


@pytest.fixture
def amd64_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """This host is amd64; its busybox archive is a stand-in file (the paths built)."""
    built: list[Path] = []

    def build(dest: Path) -> Path:
        dest.write_bytes(b"rootfs")
        built.append(dest)
        return dest

    monkeypatch.setattr(demo, "host_architecture", lambda: "amd64")
    monkeypatch.setattr(demo, "build_busybox_archive", build)
    return built


async def test_another_architecture_gets_a_clear_error_and_nothing_imported(
        amd64_host: list[Path]) -> None:
    engine = engine_on("arm64")
    async with env_for(engine, name="pi") as env:
        with pytest.raises(DemoError) as caught:
            await start_demo_containers(env)
    message = str(caught.value)
    assert "environment 'pi'" in message
    assert "busybox (amd64) would not run on its engine (arm64)" in message
    assert amd64_host == []  # not even built
    assert [(method, path) for method, path, _ in engine.calls] == [
        ("GET", "/containers/json"), ("GET", "/images/localhost%2Fbusybox:latest/json")]


@pytest.mark.parametrize("arch", ["amd64", "AMD64", ""], ids=["same", "case", "unsaid"])
async def test_the_same_or_an_unsaid_architecture_imports_the_image(
        amd64_host: list[Path], arch: str) -> None:
    engine = engine_on(arch)
    imported: list[httpx.Request] = []

    def import_rootfs(request: httpx.Request) -> httpx.Response:
        imported.append(request)
        engine.routes[IMAGE_ROUTE] = json_answer(IMAGE)  # there from now on
        return httpx.Response(200, json={"status": "sha256:" + "ab" * 32})

    engine.routes[("POST", "/images/create")] = import_rootfs
    async with env_for(engine) as env:
        await demo._ensure_image(env)
    (request,) = imported
    assert request.url.params["fromSrc"] == "-"
    assert request.url.params["repo"] == DEMO_IMAGE
    assert request.content == b"rootfs"
    assert len(amd64_host) == 1


def test_the_host_architecture_is_named_as_the_engine_api_names_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for machine, arch in [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm"),
                          ("ppc64le", "ppc64le"), ("mips", "mips")]:
        monkeypatch.setattr("platform.machine", lambda machine=machine: machine)
        assert host_architecture() == arch
