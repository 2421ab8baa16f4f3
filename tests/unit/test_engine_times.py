"""The engines' timestamps (``ghostpanel_kernel.engine._times``): one reader for all.

Expected values are computed here another way -- integer arithmetic from a known instant,
and :mod:`datetime` for whole seconds -- never copied from the functions' output. The
stamps are written the way Go's ``time.RFC3339Nano`` writes them (trailing zeros of the
fraction dropped, "Z" or an offset), as Podman 4.3 and Docker send them.
"""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ghostpanel_kernel.engine import _times
from ghostpanel_kernel.engine._times import engine_time, engine_time_ns, sortable_engine_time

# 2026-11-28T00:10:37Z, computed from the calendar, not from the module under test.
WHOLE = datetime(2026, 11, 28, 0, 10, 37, tzinfo=UTC)
WHOLE_NS = (WHOLE - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
NANOS = 372_827_174
ZERO = "0001-01-01T00:00:00Z"


def go_fraction(nanos: int, digits: int) -> str:
    """The fraction as Go writes it, cut to ``digits`` digits: ".372" or "" for none."""
    text = f"{nanos:09d}"[:digits].rstrip("0")
    return f".{text}" if text else ""


# -- zones ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "hours", "minutes"), [
    ("Z", 0, 0), ("z", 0, 0), ("+00:00", 0, 0), ("-00:00", 0, 0),
    ("+01:00", 1, 0), ("-05:30", -5, -30), ("+0100", 1, 0), ("-0530", -5, -30),
    ("+14:00", 14, 0),
])
def test_a_zone_or_offset_names_the_same_instant(zone: str, hours: int,
                                                 minutes: int) -> None:
    offset = timedelta(hours=hours, minutes=minutes)
    local = (WHOLE + offset).replace(tzinfo=None)
    stamp = f"{local:%Y-%m-%dT%H:%M:%S}.{NANOS}{zone}"

    assert engine_time_ns(stamp) == WHOLE_NS + NANOS
    moment = engine_time(stamp)
    assert moment == WHOLE + timedelta(microseconds=NANOS // 1000)
    assert moment is not None and moment.utcoffset() == offset  # the stamp's own zone
    assert sortable_engine_time(stamp) == f"2026-11-28T00:10:37.{NANOS}Z"


def test_a_stamp_without_a_zone_is_utc() -> None:
    assert engine_time_ns("2026-11-28T00:10:37.5") == WHOLE_NS + 500_000_000
    assert engine_time("2026-11-28T00:10:37") == WHOLE
    assert sortable_engine_time("2026-11-28T00:10:37.5") == "2026-11-28T00:10:37.500000000Z"


@pytest.mark.parametrize("separator", ["T", "t", " "])
def test_the_date_and_time_may_be_separated_as_rfc_3339_allows(separator: str) -> None:
    stamp = f"2026-11-28{separator}00:10:37.25Z"
    assert engine_time_ns(stamp) == WHOLE_NS + 250_000_000
    assert sortable_engine_time(stamp) == "2026-11-28T00:10:37.250000000Z"


def test_an_offset_that_crosses_midnight_and_a_year_moves_the_date() -> None:
    stamp = "2027-01-01T01:30:00.000000001+02:00"
    expected = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert sortable_engine_time(stamp) == "2026-12-31T23:30:00.000000001Z"
    assert engine_time(stamp) == expected
    assert engine_time_ns(stamp) == engine_time_ns("2026-12-31T23:30:00.000000001Z")


# -- fraction digits -------------------------------------------------------------------------

@pytest.mark.parametrize("digits", range(10))
def test_zero_to_nine_fraction_digits(digits: int) -> None:
    kept = int(f"{NANOS:09d}"[:digits].ljust(9, "0"))  # the nanoseconds the stamp carries
    for zone, local in (("Z", WHOLE), ("+02:00", WHOLE + timedelta(hours=2))):
        stamp = f"{local.replace(tzinfo=None):%Y-%m-%dT%H:%M:%S}{go_fraction(NANOS, digits)}{zone}"

        assert engine_time_ns(stamp) == WHOLE_NS + kept
        assert engine_time(stamp) == WHOLE + timedelta(microseconds=kept // 1000)
        assert sortable_engine_time(stamp) == f"2026-11-28T00:10:37.{kept:09d}Z"


def test_more_than_nine_fraction_digits_are_cut_not_rounded() -> None:
    stamp = "2026-11-28T00:10:37.9999999999Z"
    assert engine_time_ns(stamp) == WHOLE_NS + 999_999_999
    assert engine_time(stamp) == WHOLE + timedelta(microseconds=999_999)
    assert sortable_engine_time(stamp) == "2026-11-28T00:10:37.999999999Z"


def test_nanoseconds_are_exact_where_a_float_is_not() -> None:
    earlier, later = "2026-11-28T00:10:37.123456788Z", "2026-11-28T00:10:37.123456789Z"
    earlier_ns, later_ns = engine_time_ns(earlier), engine_time_ns(later)
    assert earlier_ns is not None and later_ns is not None
    assert later_ns - earlier_ns == 1
    assert later_ns % 1_000_000_000 == 123_456_789
    # What the int is for: the same two stamps as float seconds cannot be told apart.
    assert earlier_ns / 1e9 == later_ns / 1e9


def test_times_before_the_epoch_count_down_exactly() -> None:
    assert engine_time_ns("1969-12-31T23:59:59.5Z") == -500_000_000
    assert engine_time_ns("1970-01-01T00:00:00Z") == 0


def test_sortable_text_sorts_as_the_times_do() -> None:
    stamps = ["2026-11-28T00:10:37.5Z", "2026-11-28T00:10:37.25Z", "2026-11-28T00:10:37Z",
              "2026-11-28T01:10:37.3+01:00", "2026-11-28T00:10:37.123456789Z",
              "2026-11-27T23:10:38-01:00", "2026-11-28T00:10:36.999999999Z"]
    assert sorted(stamps) != sorted(stamps, key=engine_time_ns)  # Go's text does not sort
    by_text = sorted(stamps, key=sortable_engine_time)
    assert by_text == sorted(stamps, key=engine_time_ns)
    assert all(len(sortable_engine_time(stamp) or "") == 30 for stamp in stamps)


def test_the_fast_and_full_paths_of_sortable_text_agree() -> None:
    # Docker's "…Z" stamps take a path that pads without parsing; the same instants
    # written any other way are parsed in full.
    for digits in range(10):
        fraction = go_fraction(NANOS, digits)
        fast = sortable_engine_time(f"2026-11-28T00:10:37{fraction}Z")
        assert fast == sortable_engine_time(f"2026-11-28t00:10:37{fraction}z")
        assert fast == sortable_engine_time(f"2026-11-28T01:10:37{fraction}+01:00")
        assert fast == sortable_engine_time(f" 2026-11-28T00:10:37{fraction}Z ")


# -- never, and not a time --------------------------------------------------------------------

def test_go_zero_time_is_never() -> None:
    assert engine_time(ZERO) is None
    assert engine_time_ns(ZERO) is None
    assert engine_time_ns("0001-01-01T00:00:00.000000001Z") is None
    # As sort text it is a time, the earliest of all, not "unreadable".
    assert sortable_engine_time(ZERO) == "0001-01-01T00:00:00.000000000Z"
    assert (sortable_engine_time(ZERO) or "") < (sortable_engine_time("1970-01-01T00:00:00Z")
                                                 or "")


NOT_TIMES = [
    None, "", "   ", "soon", "garbage",
    "2026-13-01T00:00:00Z",            # month 13
    "2026-02-30T00:00:00Z",            # no such day
    "2026-11-28T24:00:00Z",            # hour 24
    "2026-11-28T23:59:60Z",            # a leap second: Go never writes one
    "0000-01-01T00:00:00Z",            # year 0 does not exist
    "2026-11-28",                      # a date alone (fromisoformat takes it)
    "2026-11-28T00:10Z",               # no seconds (fromisoformat takes it)
    "20261128T001037Z",                # ISO 8601 basic format (fromisoformat takes it)
    "2026-W48-6T00:10:37Z",            # a week date (fromisoformat takes it)
    "2026-11-28T00:10:37,5Z",          # a comma before the fraction
    "2026-11-28T00:10:37.Z",           # a point without digits
    "2026-11-28T00:10:37+01",          # an hour-only offset
    "2026-11-28T00:10:37+01:00:30",    # seconds in the offset (fromisoformat takes it)
    "2026-11-28T00:10:37Z trailing",   # a log line, not its stamp
    "2026-11-28T00:10:37.\u0663Z",     # a digit of another script
    "\uff12026-11-28T00:10:37Z",       # a full-width digit
]


@pytest.mark.parametrize("value", [*NOT_TIMES, 0, 1795773600, b"2026-11-28T00:10:37Z"])
def test_what_is_not_an_engine_time_reads_as_none(value: object) -> None:
    assert engine_time(value) is None
    assert engine_time_ns(value) is None


# Sortable text trusts a stamp shaped as Go writes UTC ("YYYY-MM-DDTHH:MM:SS[.f]Z"): on
# the hot path it is padded unchecked. Anything else is read in full, and checked.
@pytest.mark.parametrize("stamp", [
    None, "", "   ", "soon", "garbage",
    "2026-13-01T00:00:00+01:00", "2026-02-30T00:00:00z", "2026-11-28T24:00:00+00:00",
    "2026-11-28t23:59:60Z", "0000-01-01T00:00:00-01:00",
    "2026-11-28", "2026-11-28T00:10Z", "20261128T001037Z", "2026-W48-6T00:10:37+00:00",
    "2026-11-28T00:10:37,5Z", "2026-11-28T00:10:37.Z", "2026-11-28T00:10:37+01",
    "2026-11-28T00:10:37+01:00:30", "2026-11-28T00:10:37Z trailing",
    "2026-11-28T00:10:37.\u0663Z", "2026-11-28T00:10:37.5\u0663Z",
])
def test_what_is_not_an_engine_time_has_no_sortable_text(stamp: str | None) -> None:
    assert sortable_engine_time(stamp) is None


def test_a_local_time_past_year_9999_in_utc_reads_as_none() -> None:
    stamp = "9999-12-31T23:30:00-01:00"
    assert sortable_engine_time(stamp) is None
    assert engine_time(stamp) == datetime(9999, 12, 31, 23, 30,
                                          tzinfo=timezone(timedelta(hours=-1)))


def test_the_module_examples_hold() -> None:
    results = doctest.testmod(_times)
    assert results.attempted >= 9
    assert results.failed == 0


# -- the other way: api_time, for since/until --------------------------------------------

WHOLE_S = WHOLE_NS // 1_000_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(WHOLE_S, f"{WHOLE_S}.000000000"),
     (WHOLE_S + 0.5, f"{WHOLE_S}.500000000"),
     (1.1, "1.100000000"),  # the float's own digits, not 1.099999999...
     (WHOLE, f"{WHOLE_S}.000000000"),
     (WHOLE.replace(microsecond=372827), f"{WHOLE_S}.372827000"),
     (WHOLE.astimezone(timezone(timedelta(hours=-5))), f"{WHOLE_S}.000000000"),
     (f"{WHOLE_S}", f"{WHOLE_S}.000000000"),
     (f"{WHOLE_S}.372827174", f"{WHOLE_S}.372827174"),
     (f"2026-11-28T00:10:37.{NANOS}Z", f"{WHOLE_S}.{NANOS}"),
     ("2026-11-28T01:10:37.5+01:00", f"{WHOLE_S}.500000000"),
     ("2026-11-28T00:10:37", f"{WHOLE_S}.000000000"),  # no zone: UTC, as engines mean it
     (" 2026-11-28T00:10:37Z ", f"{WHOLE_S}.000000000")],
    ids=["int", "float", "float-digits", "aware", "aware-micro", "offset", "digits",
         "digits-nanos", "rfc3339-nanos", "rfc3339-offset", "rfc3339-no-zone", "spaces"],
)
def test_api_time_of_each_form(value: object, expected: str) -> None:
    assert _times.api_time(value) == expected  # type: ignore[arg-type]


def test_a_naive_datetime_is_local_time() -> None:
    naive = datetime(2026, 11, 28, 0, 10, 37)
    local = naive.astimezone()  # the same wall clock, in this machine's zone
    expected_s = (local - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    assert _times.api_time(naive) == f"{expected_s}.000000000"


@pytest.mark.parametrize(("text", "ago_ns"),
                         [("10m", 600 * 10**9), ("1h30m", 5400 * 10**9),
                          ("1.5s", 1_500_000_000), ("250ms", 250_000_000), ("90s", 90 * 10**9)])
def test_a_go_duration_is_that_long_ago(text: str, ago_ns: int) -> None:
    now = WHOLE_S
    assert _times.api_time_ns(text, now=now) == now * 10**9 - ago_ns


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [("yesterday", ValueError, "cannot read 'yesterday' as a time"),
     ("10 minutes", ValueError, "cannot read"),
     ("-5", ValueError, "cannot read"),
     (-5, ValueError, "before 1970"),
     (float("nan"), ValueError, "finite"),
     (float("inf"), ValueError, "finite"),
     (True, TypeError, "seconds, a datetime or text"),
     ([1], TypeError, "seconds, a datetime or text")],
)
def test_api_time_refuses_what_is_not_a_time(value: object, error: type[Exception],
                                             words: str) -> None:
    with pytest.raises(error, match=words):
        _times.api_time(value)  # type: ignore[arg-type]


def test_api_time_of_none_is_none() -> None:
    assert _times.api_time(None) is None


# -- every call that sends a time sends it through api_time ------------------------------


async def test_logs_and_events_send_since_and_until_as_api_time() -> None:
    from ghostpanel_kernel.engine import Container
    from tests.unit.fake_engine import DOCKER, FakeEngine, env_for, streamed

    engine = FakeEngine({
        ("GET", "/containers/web/logs"): streamed(
            [b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"],
            "application/vnd.docker.multiplexed-stream"),
        ("GET", "/events"): streamed([b""], "application/json")}, profile=DOCKER)
    env = env_for(engine)
    container = Container(env.client, {"Id": "web", "Name": "/web"})
    since = WHOLE.replace(microsecond=5)
    # The bug: a datetime went out as str(datetime), "2026-11-28 00:10:37.000005+00:00".
    assert [line.text for line in await container.logs(since=since, until="1h")] == ["hi"]
    params = engine.requests[-1].url.params
    assert params["since"] == f"{WHOLE_S}.000005000"
    assert float(params["until"]) == pytest.approx(datetime.now(UTC).timestamp() - 3600, abs=60)
    async for _ in env.events(since=f"{WHOLE_S}.25", until=WHOLE):
        pass
    params = engine.requests[-1].url.params
    assert (params["since"], params["until"]) == (f"{WHOLE_S}.250000000",
                                                  f"{WHOLE_S}.000000000")
    with pytest.raises(ValueError, match="cannot read 'soon'"):
        await container.logs(since="soon")
    await env.aclose()
