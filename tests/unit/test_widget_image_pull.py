"""``ImageBrowser``'s pull progress on a canned engine: the bar follows the layers.

No test registry can run here, so the engine's pull stream is played by
:class:`~tests.unit.fake_engine.FakeEngine`: Docker's event sequence (layers announced,
downloading in steps, extraction starting again from 0, completion) and Podman's
(a last ``Download complete`` that names the image, not a layer).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ghostpanel_widgets._image_browser import ImageBrowser, PullProgress
from traitlets import TraitError

from ghostpanel_kernel.engine import PullEvent
from tests.unit.fake_engine import FakeEngine, json_answer, lines_answer, podman_pull_events

REFERENCE = "localhost:5000/app:1"
IMAGE_ID = "sha256:" + "ab" * 32

IMAGE = {"Id": IMAGE_ID, "RepoTags": [REFERENCE], "Size": 3000, "Created": 1700000000,
         "Config": {"Labels": {}}}
LISTED = {"Id": IMAGE_ID, "RepoTags": [REFERENCE], "Size": 3000, "Created": 1700000000}

# docker pull's stream for a two-layer image (sizes made small and round).
DOCKER_PULL = [
    {"status": "Pulling from app", "id": "1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
    {"status": "Downloading", "progressDetail": {"current": 100, "total": 1000},
     "id": "aaaaaaaaaaaa"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 2000},
     "id": "bbbbbbbbbbbb"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 1000},
     "id": "aaaaaaaaaaaa"},
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Download complete", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Extracting", "progressDetail": {"current": 32, "total": 1000},
     "id": "aaaaaaaaaaaa"},
    {"status": "Pull complete", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Downloading", "progressDetail": {"current": 2000, "total": 2000},
     "id": "bbbbbbbbbbbb"},
    {"status": "Download complete", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
    {"status": "Pull complete", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
    {"status": "Digest: sha256:" + "cd" * 32},
    {"status": f"Status: Downloaded newer image for {REFERENCE}"},
]

PODMAN_PULL = podman_pull_events(IMAGE_ID[7:19])

PULL_ROUTE = ("POST", "/images/create")
GET_ROUTE = ("GET", "/images/localhost:5000%2Fapp:1/json")


def _engine(pull: list[dict[str, Any]], *, listed: list[dict[str, Any]] | None = None,
            containers: list[dict[str, Any]] | None = None) -> FakeEngine:
    return FakeEngine({
        ("GET", "/images/json"): json_answer(listed if listed is not None else [LISTED]),
        # The grid's in-use count: the containers made from each image, by image id.
        ("GET", "/containers/json"): json_answer(containers or []),
        PULL_ROUTE: lines_answer(pull),
        GET_ROUTE: json_answer(IMAGE),
    })


@pytest.fixture
def open_browser(open_engine_widget: Callable[..., Any]) -> Callable[..., Any]:
    """``await open_browser(engine)``: an ImageBrowser on that engine, listed; closed
    (and its environment) after the test."""
    return functools.partial(open_engine_widget, ImageBrowser)


def _record_bar(browser: ImageBrowser) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    browser.progress.observe(
        lambda change: seen.append((browser.progress.value, browser.progress.max)),
        ["value", "max"])
    return seen


def test_pull_progress_sums_the_layers_and_never_moves_back() -> None:
    progress = PullProgress()
    fractions = []
    for line in DOCKER_PULL:
        progress.update(PullEvent.from_attrs(line))
        if progress.total:
            fractions.append(progress.current / progress.total)
    assert progress.current == progress.total == 3000
    assert sorted(fractions) == fractions  # extraction restarting at 0 does not count
    assert fractions[0] == pytest.approx(100 / 1000)
    assert progress.text == f"Status: Downloaded newer image for {REFERENCE}: 2.93 KiB of " \
                            "2.93 KiB, 2 of 2 layers"


def test_podman_final_event_names_the_image_not_a_layer() -> None:
    progress = PullProgress()
    for line in PODMAN_PULL:
        progress.update(PullEvent.from_attrs(line))
    assert sorted(progress.layers) == ["cccccccccccc", "dddddddddddd"]
    assert (progress.current, progress.total) == (1400, 1400)
    # "Already exists" is in the store; the downloaded layer waits for the stream's clean
    # end (Podman never reports extraction), when the widget calls finish().
    assert progress.done == {"dddddddddddd"}
    progress.finish()
    assert progress.done == {"cccccccccccc", "dddddddddddd"}


@pytest.mark.parametrize(("stream", "total"), [(DOCKER_PULL, 3000), (PODMAN_PULL, 1400)],
                         ids=["docker", "podman"])
async def test_pull_button_drives_the_bar_to_full(open_browser, stream, total) -> None:
    engine = _engine(stream)
    browser = await open_browser(engine)
    browser.progress_interval = 0  # every event: the canned stream comes in microseconds
    seen = _record_bar(browser)

    browser.reference.value = REFERENCE
    browser.pull_button.click()
    assert browser.busy and browser.pull_button.disabled  # a second click cannot start
    await browser.task

    assert browser.status.level == "success", browser.status.message
    assert browser.status.message == f"Pulled {REFERENCE} ({IMAGE_ID[7:19]}, 2.93 KiB)."
    assert (browser.progress.value, browser.progress.max) == (total, total)
    assert browser.progress.bar_style == "success"
    # It moved through the download, never backwards, and never past its maximum.
    partial = [(value, top) for value, top in seen if 0 < value < top]
    assert partial, seen
    ratios = [value / top for value, top in seen if top > 1]
    assert ratios == sorted(ratios)
    assert all(value <= top for value, top in seen)
    assert not browser.busy and not browser.pull_button.disabled
    # The engine was asked for that image, then listed again.
    create = [c for c in engine.calls if c[:2] == PULL_ROUTE]
    assert create == [("POST", "/images/create", {"fromImage": "localhost:5000/app",
                                                  "tag": "1"})]
    assert [c[:2] for c in engine.calls[-2:]] == [("GET", "/images/json"),
                                                  ("GET", "/containers/json")]


async def test_the_bar_is_updated_at_most_every_progress_interval(open_browser) -> None:
    browser = await open_browser(_engine(DOCKER_PULL * 20))
    seen = _record_bar(browser)
    await browser.pull(REFERENCE)
    # 300 events in far less than 0.1 s: the bar shows the first and the end only.
    assert len(seen) <= 4, seen
    assert seen[-1] == (3000, 3000)
    with pytest.raises(TraitError):
        browser.progress_interval = -1


async def test_enter_in_the_reference_field_pulls(open_browser) -> None:
    browser = await open_browser(_engine(DOCKER_PULL))
    browser.reference.value = REFERENCE
    browser.reference._handle_custom_msg({"event": "submit"}, [])  # what Enter sends
    await browser.task
    assert browser.status.level == "success", browser.status.message


async def test_a_failed_pull_shows_the_engine_error_and_resets_the_bar(open_browser) -> None:
    failing = [*DOCKER_PULL[:5],
               {"errorDetail": {"message": "unexpected EOF"}, "error": "unexpected EOF"}]
    engine = _engine(failing)
    browser = await open_browser(engine)
    browser.progress_interval = 0
    seen = _record_bar(browser)

    assert await browser.pull(REFERENCE) is None

    assert browser.status.level == "error"
    assert browser.status.message.startswith(f"Pull {REFERENCE} failed: pull failed: "
                                             "unexpected EOF (POST /v1.41/images/create)")
    assert any(0 < value < top for value, top in seen)  # it had moved
    assert (browser.progress.value, browser.progress.max) == (0, 1)
    assert browser.progress.bar_style == ""
    assert browser.progress_text.value == ""
    assert ("GET", GET_ROUTE[1], {}) not in engine.calls


async def test_an_engine_that_refuses_the_pull_is_an_error_in_the_widget(open_browser) -> None:
    engine = _engine([])
    engine.routes[PULL_ROUTE] = json_answer({"message": "denied: access forbidden"}, 500)
    browser = await open_browser(engine)
    assert await browser.pull(REFERENCE) is None
    assert browser.status.level == "error"
    assert "denied: access forbidden" in browser.status.message
    assert browser.progress.value == 0


async def test_pull_without_a_reference_asks_for_one(open_browser) -> None:
    engine = _engine(DOCKER_PULL)
    browser = await open_browser(engine)
    browser.pull_button.click()
    await browser.task
    assert browser.status.level == "error"
    assert browser.status.message == ("Pull failed: type an image reference first, e.g. "
                                      "alpine:3.20")
    assert not any(c[:2] == PULL_ROUTE for c in engine.calls)


async def test_listing_has_one_row_per_tag_and_untagged_images(open_browser) -> None:
    untagged = {"Id": "sha256:" + "ef" * 32, "RepoTags": None, "Size": 10,
                "Created": 1700000000}
    twice = {**LISTED, "RepoTags": [REFERENCE, "localhost/app:latest"]}
    users = [{"Id": f"c{n}", "Names": [f"/web-{n}"], "ImageID": IMAGE_ID} for n in (1, 2)]
    browser = await open_browser(_engine([], listed=[untagged, twice], containers=users))
    assert browser.row_keys == ["localhost/app:latest", REFERENCE, untagged["Id"]]
    assert browser.row(untagged["Id"]) == {
        "key": untagged["Id"], "tag": "<none>", "id": "efefefefefef", "size": 10,
        "created": "2023-11-14 22:13 UTC", "containers": 0, "dangling": True}
    # Both tags are the same image: both rows count its two containers.
    assert [browser.row(key)["containers"] for key in browser.row_keys[:2]] == [2, 2]
    assert browser.count_label.value == "3 images"
    browser.show = "dangling"
    assert browser.row_keys == [untagged["Id"]]
    assert browser.count_label.value == "1 of 3 images shown"


async def test_remove_asks_first_then_removes_the_ticked_tags(open_browser) -> None:
    engine = _engine([], listed=[{**LISTED, "RepoTags": [REFERENCE, "localhost/app:2"]}])
    engine.routes[("DELETE", "/images/localhost:5000%2Fapp:1")] = json_answer(
        [{"Untagged": REFERENCE}])
    engine.routes[("DELETE", "/images/localhost%2Fapp:2")] = json_answer(
        [{"Untagged": "localhost/app:2"}])
    browser = await open_browser(engine)

    browser.remove_button.click()
    assert browser.status.message == "Tick the images to remove first."
    browser.select([REFERENCE, "localhost/app:2"])
    browser.remove_button.click()
    assert browser.confirmation.question == (
        f"Remove 2 images: localhost/app:2, {REFERENCE}?")
    assert not any(c[0] == "DELETE" for c in engine.calls)  # not before Confirm
    browser.confirmation.confirm_button.click()
    await browser.task
    assert sorted(c[:2] for c in engine.calls if c[0] == "DELETE") == [
        ("DELETE", "/images/localhost%2Fapp:2"), ("DELETE", "/images/localhost:5000%2Fapp:1")]
    assert browser.status.level == "success"
    assert browser.status.message == f"Removed 2 images: localhost/app:2, {REFERENCE}."


async def test_a_refusal_is_reported_and_the_confirmation_names_at_most_eight(
        open_browser) -> None:
    tags = [f"localhost/app:{n}" for n in range(10)]
    engine = _engine([], listed=[{**LISTED, "RepoTags": tags}])
    for tag in tags:
        engine.routes[("DELETE", "/images/" + tag.replace("/", "%2F"))] = json_answer(
            [{"Untagged": tag}])
    engine.routes[("DELETE", "/images/localhost%2Fapp:3")] = json_answer(
        {"message": "image is in use by a container"}, status=409)
    browser = await open_browser(engine)

    browser.select(tags)
    browser.remove_button.click()
    assert browser.confirmation.question == (
        f"Remove 10 images: {', '.join(tags[:8])} and 2 more?")
    browser.confirmation.confirm_button.click()
    await browser.task
    deletes = [c[1] for c in engine.calls if c[0] == "DELETE"]
    assert len(deletes) == 10  # the refusal stopped none of the others
    assert browser.status.level == "warning"
    assert browser.status.message.startswith(
        "Removed 9 images: localhost/app:0, localhost/app:1, localhost/app:2, "
        "localhost/app:4, ")
    assert browser.status.message.endswith(
        " and 1 more. The engine refused localhost/app:3: [409] image is in use by a "
        "container (DELETE /v1.41/images/localhost%2Fapp:3)")

    report = await browser.remove(["localhost/app:3"])
    assert report is not None and report.removed == [] and list(report.refused) == [
        "localhost/app:3"]
    assert browser.status.level == "error"
    assert browser.status.message.startswith("Removed no images. The engine refused ")


async def test_prune_reports_what_the_engine_removed(open_browser) -> None:
    engine = _engine([])
    engine.routes[("POST", "/images/prune")] = json_answer(
        {"ImagesDeleted": [{"Deleted": "sha256:1"}, {"Deleted": "sha256:2"}],
         "SpaceReclaimed": 3 * 1024 * 1024})
    browser = await open_browser(engine)
    browser.prune_button.click()
    browser.confirmation.cancel_button.click()
    assert browser.task is not None and browser.task.done()  # only the first listing ran
    browser.prune_button.click()
    browser.confirmation.confirm_button.click()
    await browser.task
    assert browser.status.message == "Pruned 2 images, reclaimed 3 MiB."
    (prune,) = [c for c in engine.calls if c[1] == "/images/prune"]
    assert json.loads(prune[2]["filters"]) == {"dangling": ["true"]}


async def test_an_unreachable_engine_is_an_error_in_the_widget(open_browser) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    engine = FakeEngine({("GET", "/images/json"): refuse})
    browser = await open_browser(engine)
    assert browser.status.level == "error"
    assert browser.status.message.startswith("Listing images failed: ")
    assert "unix:///run/podman/podman.sock" in browser.status.message


def test_the_widgets_refuse_the_sync_facade() -> None:
    with pytest.raises(TypeError, match="connect_sync facade"):
        ImageBrowser(object())  # type: ignore[arg-type]


async def test_a_click_while_an_action_runs_is_refused_in_the_widget(open_browser) -> None:
    engine = _engine(DOCKER_PULL)
    gate = asyncio.Event()
    answer = engine.routes[PULL_ROUTE]

    async def slow_pull(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        response = answer(request)
        assert isinstance(response, httpx.Response)
        return response

    engine.routes[PULL_ROUTE] = slow_pull
    browser = await open_browser(engine)
    browser.reference.value = REFERENCE
    browser.pull_button.click()
    pulling = browser.task
    await asyncio.sleep(0.01)
    browser.refresh_button.click()  # disabled in the page; a stale view could still send it
    assert browser.task is pulling
    assert browser.status.level == "warning"
    assert browser.status.message == "Refresh: wait until pull ends."
    gate.set()
    await browser.task
    assert browser.status.level == "success"
    assert sum(1 for call in engine.calls if call[:2] == ("GET", "/images/json")) == 2


async def test_close_cancels_a_running_action(open_browser) -> None:
    engine = _engine(DOCKER_PULL)
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")

    engine.routes[PULL_ROUTE] = hang
    browser = await open_browser(engine)
    browser.reference.value = REFERENCE
    browser.pull_button.click()
    task = browser.task
    assert task is not None
    await asyncio.sleep(0.01)
    browser.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert browser.busy is False
