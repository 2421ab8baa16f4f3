"""The kernel's one pull-progress aggregator, fed the engines' own event sequences.

Docker reports each layer's download, then its extraction (whose count starts again at
0), then ``Pull complete``; Podman 4.3 stops at ``Download complete`` and ends with an
event about the image, not a layer.
"""

from __future__ import annotations

from typing import Any

import pytest

from ghostpanel_kernel.engine import LayerProgress, PullEvent, PullProgress
from tests.unit.fake_engine import podman_pull_events

# docker pull of two layers, 1000 and 2000 bytes.
DOCKER = [
    {"status": "Pulling from library/app", "id": "1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "b2"},
    {"status": "Waiting", "progressDetail": {}, "id": "b2"},
    {"status": "Downloading", "progressDetail": {"current": 100, "total": 1000}, "id": "a1"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 2000}, "id": "b2"},
    {"status": "Downloading", "progressDetail": {"current": 1000, "total": 1000}, "id": "a1"},
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "a1"},
    {"status": "Download complete", "progressDetail": {}, "id": "a1"},
    {"status": "Extracting", "progressDetail": {"current": 32, "total": 1000}, "id": "a1"},
    {"status": "Extracting", "progressDetail": {"current": 1000, "total": 1000}, "id": "a1"},
    {"status": "Pull complete", "progressDetail": {}, "id": "a1"},
    {"status": "Downloading", "progressDetail": {"current": 2000, "total": 2000}, "id": "b2"},
    {"status": "Download complete", "progressDetail": {}, "id": "b2"},
    {"status": "Extracting", "progressDetail": {"current": 500, "total": 2000}, "id": "b2"},
    {"status": "Pull complete", "progressDetail": {}, "id": "b2"},
    {"status": "Digest: sha256:" + "cd" * 32},
    {"status": "Status: Downloaded newer image for app:1"},
]

PODMAN = podman_pull_events("ab" * 6)


def fed(lines: list[dict[str, Any]]) -> tuple[PullProgress, list[tuple[int, int, int]]]:
    """The progress after ``lines``, and (current, total, extracted) after each."""
    progress = PullProgress()
    seen = []
    for line in lines:
        progress.update(PullEvent.from_attrs(line))
        seen.append((progress.current, progress.total, progress.extracted))
    return progress, seen


def test_extraction_restarting_at_zero_never_moves_the_bar_back() -> None:
    progress, seen = fed(DOCKER)
    for column in range(3):
        counts = [step[column] for step in seen]
        assert counts == sorted(counts), (column, seen)
    # Before: 1500 of 3000 fell to 532 when the first layer's extraction began.
    assert (1500, 3000, 0) in seen and (1500, 3000, 32) in seen
    assert (progress.current, progress.total, progress.extracted) == (3000, 3000, 3000)
    assert progress.done == {"a1", "b2"} and progress.fraction == 1.0
    assert progress.text == ("Status: Downloaded newer image for app:1: 2.93 KiB of "
                             "2.93 KiB, 2 of 2 layers")


def test_each_layer_keeps_its_download_and_its_extraction() -> None:
    progress, _ = fed(DOCKER[:10])  # up to a1's first Extracting
    assert progress.layers == {
        "a1": LayerProgress(size=1000, downloaded=1000, extracted=32, done=False),
        "b2": LayerProgress(size=2000, downloaded=500, extracted=0, done=False),
    }
    assert progress.layers["a1"].extracting and not progress.layers["b2"].extracting
    assert progress.text == "Extracting: 1.465 KiB of 2.93 KiB, 0 of 2 layers"


def test_podman_layers_end_at_download_and_the_image_is_not_a_layer() -> None:
    progress, seen = fed(PODMAN)
    assert list(progress.layers) == ["cccccccccccc", "dddddddddddd"]
    assert (progress.current, progress.total) == (1400, 1400)
    assert progress.done == {"dddddddddddd"}  # no Pull complete for the downloaded one
    assert [current for current, _, _ in seen] == sorted(current for current, _, _ in seen)
    progress.finish()  # the stream ended without an error
    assert progress.done == {"cccccccccccc", "dddddddddddd"}
    assert (progress.current, progress.total, progress.fraction) == (1400, 1400, 1.0)


def test_a_shorter_report_or_an_extraction_on_another_scale_does_not_go_back() -> None:
    progress = PullProgress()
    progress.update(PullEvent("Downloading", "a1", current=800, total=1000))
    progress.update(PullEvent("Downloading", "a1", current=300, total=1000))  # a retry
    assert progress.current == 800
    # An engine counting extraction in uncompressed bytes: scaled to the layer's size.
    progress.update(PullEvent("Extracting", "a1", current=2500, total=5000))
    assert (progress.current, progress.extracted) == (1000, 500)
    progress.update(PullEvent("Extracting", "a1", current=1000, total=5000))
    assert progress.extracted == 500


@pytest.mark.parametrize("event", [
    PullEvent("Pulling from library/app", "latest"), PullEvent("Digest: sha256:ab"),
    PullEvent("Download complete", "never-announced"),
    PullEvent("Downloading", "", current=1, total=2),
])
def test_events_about_no_layer_add_none(event: PullEvent) -> None:
    progress = PullProgress()
    progress.update(event)
    assert progress.layers == {} and progress.fraction == 0.0
    assert progress.text == event.status


def test_layers_of_unknown_size_show_as_such_and_finish_whole() -> None:
    progress = PullProgress()
    progress.update(PullEvent("Pulling fs layer", "a1"))
    assert progress.text == "Pulling fs layer: size unknown, 0 of 1 layer"
    assert progress.fraction == 0.0
    progress.update(PullEvent("Pull complete", "a1"))
    assert progress.fraction == 1.0 and progress.done == {"a1"}
