"""Sizes and durations: the one reader and the one writer of each, and who uses them.

The expected values are docker's and Go's own: ``docker run --memory`` reads sizes with
go-units ``RAMInBytes`` (every unit binary), healthcheck intervals and ``--since`` with
Go's ``time.ParseDuration``; ``docker ps`` writes ages with go-units ``HumanDuration``.
"""

from __future__ import annotations

import pytest

from ghostpanel_kernel._units import (
    format_duration_ns,
    human_duration,
    human_size,
    parse_duration_ns,
    parse_size,
)
from ghostpanel_kernel.cli._app import parse_time
from ghostpanel_kernel.engine._container_spec import build_create_body, parse_memory
from ghostpanel_kernel.surge import SurgeError
from ghostpanel_kernel.surge._desired import _duration_ns, _size

MI = 1024**2


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 * MI), ("512M", 512 * MI), ("512mb", 512 * MI), ("512MB", 512 * MI),
    ("512Mi", 512 * MI), ("512mi", 512 * MI), ("512MiB", 512 * MI), ("512 m", 512 * MI),
    ("1k", 1024), ("1KB", 1024), ("1Ki", 1024), ("1KiB", 1024), ("2g", 2 * 1024**3),
    ("2Gi", 2 * 1024**3), ("1t", 1024**4), ("1p", 1024**5), ("10", 10), ("10b", 10),
    ("10B", 10), ("1.5k", 1536), ("0.1g", 107374182), ("  64m ", 64 * MI), ("0", 0),
])
def test_sizes_read_as_docker_reads_memory(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", [
    "lots", "", "m", "12x", "-1m", "1e3", "512i", "512 Mi B", "512  m", "1.m", "512mbb",
    "512kk", "\u0661\u0662m",  # Arabic-Indic digits: int() reads them, docker does not
])
def test_what_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read the size"):
        parse_size(text)


def test_a_size_in_bytes_is_taken_as_it_is_but_not_negative_nor_a_bool() -> None:
    assert parse_size(536870912) == 536870912
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)
    with pytest.raises(TypeError):
        parse_size(True)
    with pytest.raises(TypeError):
        parse_size(1.5)  # type: ignore[arg-type]


def test_the_engine_and_surge_read_sizes_alike() -> None:
    # parse_memory("512Mi") used to fail while Surge's reader took it.
    for text in ("512Mi", "512m", "512MB", "1.5g", "1GiB"):
        assert parse_memory(text) == _size(text, "web.memory_limit") == parse_size(text)
    body = build_create_body(image="busybox", memory="512Mi")
    assert body["HostConfig"]["Memory"] == 512 * MI
    with pytest.raises(ValueError, match="invalid memory size: cannot read the size 'x'"):
        parse_memory("x")
    with pytest.raises(SurgeError, match=r"web\.memory_limit: cannot read the size 'x'"):
        _size("x", "web.memory_limit")


@pytest.mark.parametrize(("size", "binary", "space", "text"), [
    (0, False, False, "0B"), (2131015, False, False, "2.131MB"), (1536, True, False, "1.5KiB"),
    (1536, True, True, "1.5 KiB"), (20 * MI, True, True, "20 MiB"), (999, False, True, "999 B"),
    (1000**6 * 3, False, False, "3000PB"), (-2048, True, False, "-2KiB"),
])
def test_byte_counts_are_written_with_four_significant_digits(
        size: float, binary: bool, space: bool, text: str) -> None:
    assert human_size(size, binary=binary, space=space) == text


def test_an_unknown_size_writes_nothing() -> None:
    assert human_size(None) == ""


@pytest.mark.parametrize(("text", "nanoseconds"), [
    ("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("1h", 3600 * 10**9), ("500ms", 5 * 10**8),
    ("1.5s", 1_500_000_000), ("2us", 2000), ("2µs", 2000), ("2μs", 2000), ("7ns", 7),
    ("1h2m3s4ms", 3723004000000), (".5s", 5 * 10**8), ("1.s", 10**9), ("0", 0),
    ("0s", 0), (" 10m ", 600 * 10**9), ("0.9ns", 0),
])
def test_durations_read_as_go_reads_them(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "10", "1x", "-1s", "+1s", "1 s", "1h 30m", "soon",
                                  "1m30", "s", "1.2.3s"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read the duration"):
        parse_duration_ns(text)


def test_surge_and_the_cli_read_durations_alike() -> None:
    for text in ("90s", "1m30s", "1h30m", "500ms", "1.5m"):
        seconds = parse_duration_ns(text) / 1e9
        assert _duration_ns(text, "web.healthcheck.interval") == parse_duration_ns(text)
        assert parse_time(text, now=10_000.0) == pytest.approx(10_000.0 - seconds)
    with pytest.raises(SurgeError, match=r"web\.healthcheck\.interval: cannot read the duration"):
        _duration_ns("soon", "web.healthcheck.interval")
    assert parse_time("0", now=10_000.0) == 0.0  # a Unix time, as docker reads "0"


@pytest.mark.parametrize(("nanoseconds", "text"), [
    (0, "0s"), (7, "7ns"), (1500, "1.5µs"), (250_000_000, "250ms"), (10**9, "1s"),
    (1_500_000_000, "1.5s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
    (3723004000000, "1h2m3.004s"), (-90 * 10**9, "-1m30s"),
])
def test_durations_are_written_as_go_writes_them(nanoseconds: int, text: str) -> None:
    assert format_duration_ns(nanoseconds) == text
    if nanoseconds >= 0:
        assert parse_duration_ns(text) == nanoseconds  # and read back the same


@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"),
    (59.9, "59 seconds"), (60, "About a minute"), (3599, "59 minutes"),
    (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
    (730 * 86400, "2 years"),
])
def test_human_durations_are_dockers(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
