"""Canonical Engine API paths (``gateway/_canonical_path``): each rule refuses what it
names with a 400 and never normalises; everything canonical splits into a version and
decoded segments."""

from __future__ import annotations

import pytest

from ghostpanel_kernel.gateway._canonical_path import MIN_VERSION, canonical_path
from ghostpanel_kernel.gateway._refusal import Refusal


def _refused(path: bytes) -> str:
    with pytest.raises(Refusal) as caught:
        canonical_path(path)
    assert caught.value.status == 400
    assert "canonical" in caught.value.message
    return caught.value.message


@pytest.mark.parametrize(("path", "version", "decoded"), [
    (b"/_ping", None, ("_ping",)),
    (b"/v1.41/containers/json", "1.41", ("containers", "json")),
    (b"/v1.24/info", "1.24", ("info",)),
    (b"/v1.47/containers/web/stop", "1.47", ("containers", "web", "stop")),
    (b"/v2.0/info", "2.0", ("info",)),
    (b"/v1.41/containers/web%2Dfront/stop", "1.41", ("containers", "web-front", "stop")),
    (b"/v1.41/containers/caf%C3%A9/json", "1.41", ("containers", "caf\u00e9", "json")),
    (b"/v1.41/images/docker.io/library/busybox:latest/json", "1.41",
     ("images", "docker.io", "library", "busybox:latest", "json")),
    (b"/v1.41/containers/%2Fweb/kill", "1.41", ("containers", "/web", "kill")),
    (b"/v1.41/containers/a.b/json", "1.41", ("containers", "a.b", "json")),
    (b"/v1.41/containers/...x/json", "1.41", ("containers", "...x", "json")),
    (b"/version", None, ("version",)),
])
def test_canonical_paths_split(path: bytes, version: str | None,
                               decoded: tuple[str, ...]) -> None:
    split = canonical_path(path)
    assert split.version == version
    assert split.decoded == decoded
    assert split.path == "/" + "/".join(decoded)


@pytest.mark.parametrize("path", [
    b"/v1.41.0/containers/x/stop", b"/v01.41/containers/x/stop", b"/v1.041/info",
    b"/v1/info", b"/v1./info", b"/v.41/info", b"/v1..41/info", b"/v1.4.1/info",
    b"/v1.41", b"/v1.41/", b"/v1.41./info", b"/v1.%341/info",
])
def test_version_prefix_must_be_major_dot_minor_without_leading_zeros(path: bytes) -> None:
    _refused(path)


@pytest.mark.parametrize("version", ["1.23", "1.12", "0.41", "1.0"])
def test_versions_older_than_the_minimum_are_refused(version: str) -> None:
    assert f"older than {MIN_VERSION[0]}.{MIN_VERSION[1]}" in _refused(
        f"/v{version}/info".encode())


@pytest.mark.parametrize("path", [
    b"//v1.41/containers/json", b"/v1.41//containers/json", b"/v1.41/containers//json",
    b"/v1.41/containers/json/", b"/", b"",  b"v1.41/containers/json",
])
def test_empty_segments_and_relative_paths_are_refused(path: bytes) -> None:
    _refused(path)


@pytest.mark.parametrize("path", [
    b"/v1.41/containers/../images/json", b"/v1.41/./containers/json", b"/v1.41/containers/.",
    b"/v1.41/containers/%2e%2e/images/json", b"/v1.41/containers/%2E%2E/json",
    b"/v1.41/containers/%2e/json", b"/v1.41/containers/.%2e/json", b"/v1.41/..",
    b"/v1.41/containers/%2F../json", b"/v1.41/containers/%2F/json",
])
def test_dot_segments_raw_or_encoded_are_refused(path: bytes) -> None:
    _refused(path)


@pytest.mark.parametrize("path", [
    b"/v1.41/containers/x%2F..%2Fjson", b"/v1.41/containers/x%2fy/json",
    b"/v1.41/containers/x%2F/json", b"/v1.41/images/a%2Fb/json",
])
def test_percent_encoded_slash_is_refused_except_leading(path: bytes) -> None:
    assert "'/'" in _refused(path)


@pytest.mark.parametrize("path", [
    b"/v1.41/containers/a\\b/json", b"/v1.41/containers/a%5Cb/json",
    b"/v1.41/containers/a%5cb/json", b"/v1.41/containers/a%00b/json",
    b"/v1.41/containers/a%0Ab/json", b"/v1.41/containers/a%0d/json",
    b"/v1.41/containers/a%7Fb/json", b"/v1.41/containers/a\x00b/json",
    b"/v1.41/containers/a b/json", b"/v1.41/containers/a\tb/json",
    b"/v1.41/containers/caf\xc3\xa9/json", b"/v1.41/containers/\x7f/json",
])
def test_backslashes_control_characters_and_raw_non_ascii_are_refused(path: bytes) -> None:
    _refused(path)


@pytest.mark.parametrize("path", [
    b"/v1.41/containers/a%/json", b"/v1.41/containers/a%4/json",
    b"/v1.41/containers/a%zz/json", b"/v1.41/containers/%%41/json",
    b"/v1.41/containers/%C3/json", b"/v1.41/containers/%FF%FE/json",
])
def test_bad_escapes_and_non_utf8_are_refused(path: bytes) -> None:
    _refused(path)


def test_the_refusal_quotes_the_path_as_sent() -> None:
    assert "'/v1.41/containers/../images/json'" in _refused(
        b"/v1.41/containers/../images/json")
