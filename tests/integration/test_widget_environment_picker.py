"""``EnvironmentPicker`` over a real registry (an SQLite database of its own), whose
environments are real Podman engines: what it offers, what it opens, and a
``ContainerList`` that follows the pick."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from ghostpanel_widgets._container_list import ContainerList
from ghostpanel_widgets._environment_picker import EnvironmentPicker
from traitlets import TraitError

from ghostpanel_kernel.environments import EnvironmentRegistry, EnvironmentSpec
from tests.integration.waiting import until
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration



@pytest.fixture
def registry(tmp_path: Path, podman_engine: PodmanService,
             podman_engine_b: PodmanService) -> Iterator[EnvironmentRegistry]:
    """``eu`` and ``gpu`` on the two session engines; no local engine detected."""
    registry = EnvironmentRegistry(f"sqlite:///{tmp_path / 'gp.db'}", detect=lambda: None)
    registry.add("eu", podman_engine.url, labels={"region": "eu-west"})
    registry.add("gpu", podman_engine_b.url, labels={"region": "us-east", "tier": "gpu"})
    yield registry
    registry.close()


def texts(picker: EnvironmentPicker) -> dict[str, str]:
    return {name: text for text, name in picker.selector.options}


def test_registered_environments_are_offered_with_their_labels(
        registry: EnvironmentRegistry, podman_engine: PodmanService) -> None:
    picker = EnvironmentPicker(registry)
    try:
        assert list(texts(picker)) == ["eu", "gpu"]
        assert texts(picker)["eu"] == f"eu \u2014 {podman_engine.url} \u00b7 region=eu-west"
        assert "region=us-east, tier=gpu" in texts(picker)["gpu"]
        assert picker.value == ("eu",)  # no default, no local: the first
        assert "eu-west" in picker.details.value
        assert picker.status.message == ""
    finally:
        picker.close()


def test_the_default_and_a_detected_local_engine(tmp_path: Path,
                                                  podman_engine: PodmanService) -> None:
    local = EnvironmentSpec("local", podman_engine.url, labels={"detected": "true"},
                            detected=True)
    registry = EnvironmentRegistry(f"sqlite:///{tmp_path / 'gp.db'}", detect=lambda: local)
    try:
        registry.add("gpu", podman_engine.url, labels={"tier": "gpu"})
        picker = EnvironmentPicker(registry)
        assert list(texts(picker)) == ["local", "gpu"]
        assert texts(picker)["local"] == f"local (detected) \u2014 {podman_engine.url}"
        assert picker.value == ("local",)  # no default: the local engine

        registry.use("gpu")
        picker.reload()
        assert picker.value == ("local",)  # a reload keeps what was picked
        assert picker.default_name == "gpu"
        assert "(default)" in texts(picker)["gpu"]
        assert EnvironmentPicker(registry).value == ("gpu",)  # a new picker: the default
        picker.close()
    finally:
        registry.close()


async def test_picked_environments_open_and_answer(registry: EnvironmentRegistry) -> None:
    picker = EnvironmentPicker(registry)
    seen: list[tuple[str, ...]] = []
    picker.observe(lambda change: seen.append(change["new"]), "value")
    picker.selector.value = ("gpu", "eu")  # ticked in the browser
    assert picker.value == ("eu", "gpu")  # the registry's order
    assert seen == [("eu", "gpu")]
    environments = picker.environments()
    try:
        assert [e.name for e in environments] == ["eu", "gpu"]
        assert environments[1].labels == {"region": "us-east", "tier": "gpu"}
        assert await asyncio.gather(*(e.ping() for e in environments)) == [True, True]
    finally:
        for environment in environments:
            await environment.aclose()
        picker.close()


def test_bad_picks_are_refused(registry: EnvironmentRegistry) -> None:
    picker = EnvironmentPicker(registry, multiple=False)
    try:
        assert isinstance(picker.selector.value, str)
        with pytest.raises(TraitError, match=r"no environment 'mars' \(known: eu, gpu\)"):
            picker.value = ("mars",)
        with pytest.raises(TraitError, match="takes one environment"):
            picker.value = ("eu", "gpu")
        picker.selector.value = "gpu"  # picked in the dropdown
        assert picker.value == ("gpu",)
        assert picker.specs[0].url == registry.get("gpu").url
    finally:
        picker.close()
    other = EnvironmentPicker(registry, value=["nowhere"])
    try:
        assert other.value == ("eu",)
        assert other.status.level == "warning" and "'nowhere'" in other.status.message
    finally:
        other.close()


def test_an_empty_or_unreadable_registry_is_said_in_the_widget(tmp_path: Path) -> None:
    empty = EnvironmentRegistry("sqlite://", detect=lambda: None)
    picker = EnvironmentPicker(empty)
    try:
        assert picker.value == ()
        assert picker.status.level == "warning"
        assert "ghostpanel env add" in picker.status.message
        assert picker.environments() == []
    finally:
        picker.close()
        empty.close()

    database = tmp_path / "gp.db"
    registry = EnvironmentRegistry(f"sqlite:///{database}", detect=lambda: None)
    registry.add("eu", "tcp://127.0.0.1:2375")
    picker = EnvironmentPicker(registry)
    try:
        database.write_bytes(b"this is not a database" * 100)
        picker.reload()
        assert picker.status.level == "error"
        assert picker.status.message.startswith("Cannot read the environments:")
        assert picker.value == ("eu",)  # the list is left as it was
    finally:
        picker.close()
        registry.close()


async def test_a_container_list_follows_the_pick(registry: EnvironmentRegistry,
                                                 make_container_b) -> None:
    made = await make_container_b()
    picker = EnvironmentPicker(registry)
    # Specs, not open environments: the list opens them, and closes them when it is
    # done with them (on a new pick, and on close).
    table = ContainerList(picker.specs)
    picker.observe(lambda _: table.set_environments(picker.specs), "value")
    try:
        await table.ready()
        assert made.name not in set(table.data["name"])
        picker.value = ("gpu",)
        await table.ready()
        await until(lambda: made.name in set(table.data["name"]), what="the gpu row")
        assert set(table.data["environment"]) == {"gpu"}
        assert [e.name for e in table.environments] == ["gpu"]
    finally:
        await table.aclose()
        picker.close()
