"""Docker's status text from an inspect's ``State``: every branch, at a fixed "now".

The ``State`` objects are Podman 4.3.1's own (recorded from ``podman system service``):
every one carries ``Health`` (``{"Status": ""}`` without a healthcheck), Go's zero
time ``0001-01-01T00:00:00Z`` for "never", and nanosecond times with trailing zeros
trimmed (``...37.07380012Z``). The expected texts are what ``docker ps`` and Podman's
listing (``GET /containers/json``) wrote for the same containers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ghostpanel_kernel.engine import Container
from ghostpanel_kernel.engine._state_text import engine_time, human_duration, status_text

ZERO = "0001-01-01T00:00:00Z"
STARTED = "2026-11-28T00:10:37.07380012Z"
T0 = datetime(2026, 11, 28, 0, 10, 37, 73800, tzinfo=UTC)


def state(**fields: Any) -> dict[str, Any]:
    """A Podman 4.3.1 ``State``: running since ``STARTED`` unless ``fields`` say else."""
    return {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 14172, "ExitCode": 0, "Error": "",
            "StartedAt": STARTED, "FinishedAt": ZERO,
            "Health": {"Status": "", "FailingStreak": 0, "Log": None}, **fields}


def after(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


# -- go-units HumanDuration, at each boundary ----------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "Less than a second"),  # the client's clock a little behind the engine's
    (0, "Less than a second"), (0.999, "Less than a second"),
    (1, "1 second"), (1.9, "1 second"), (2, "2 seconds"), (59.9, "59 seconds"),
    (60, "About a minute"), (119.9, "About a minute"), (120, "2 minutes"),
    (59 * 60 + 59, "59 minutes"),
    # Hours are rounded: 60 min to 89 min 59 s is "About an hour".
    (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
    (47.49 * 3600, "47 hours"), (47.5 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"),
    (729 * 86400, "24 months"), (730 * 86400, "2 years"), (3 * 365 * 86400, "3 years"),
])
def test_human_duration_follows_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# -- timestamps ------------------------------------------------------------------------------

def test_engine_times_with_nanoseconds_zones_and_zero() -> None:
    assert engine_time(STARTED) == T0  # 8 digits of fraction: cut to microseconds
    assert engine_time("2026-11-28T00:10:37.372827174Z") == T0.replace(microsecond=372827)
    assert engine_time("2026-11-28T01:10:37.07380012+01:00") == T0
    assert engine_time("2026-11-28T00:10:37.0738") == T0  # no zone: UTC
    for never in (ZERO, "", None, 0, "yesterday"):
        assert engine_time(never) is None


# -- State.String() ---------------------------------------------------------------------------

def test_running() -> None:
    assert status_text(state(), now=after(seconds=0.2)) == "Up Less than a second"
    assert status_text(state(), now=after(minutes=1, seconds=30)) == "Up About a minute"
    assert status_text(state(), now=after(hours=2)) == "Up 2 hours"


def test_running_again_after_an_exit_counts_from_the_new_start() -> None:
    restarted = state(FinishedAt="2026-11-28T00:10:30.5Z", ExitCode=0)
    assert status_text(restarted, now=after(seconds=5)) == "Up 5 seconds"


@pytest.mark.parametrize(("health", "suffix"), [
    ("healthy", " (healthy)"), ("unhealthy", " (unhealthy)"),
    ("starting", " (health: starting)"),
    ("", ""),  # Podman's Health of a container without a healthcheck
])
def test_running_with_a_healthcheck(health: str, suffix: str) -> None:
    checked = state(Health={"Status": health, "FailingStreak": 0, "Log": None})
    assert status_text(checked, now=after(hours=2)) == f"Up 2 hours{suffix}"


def test_running_without_a_health_object_as_docker_sends_it() -> None:
    docker = state()
    del docker["Health"]
    assert status_text(docker, now=after(minutes=3)) == "Up 3 minutes"


def test_paused_says_so_whatever_its_health() -> None:
    paused = state(Status="paused", Paused=True, Health={"Status": "healthy"})
    assert status_text(paused, now=after(minutes=3)) == "Up 3 minutes (Paused)"


def test_restarting_counts_from_the_last_exit() -> None:
    restarting = state(Status="restarting", Restarting=True, ExitCode=1,
                       FinishedAt="2026-11-28T00:10:40Z")
    assert status_text(restarting, now=after(seconds=8)) == "Restarting (1) 5 seconds ago"


def test_exited() -> None:
    exited = state(Status="exited", Running=False, ExitCode=137, Pid=0,
                   FinishedAt="2026-11-28T00:12:00.372827174Z")
    assert status_text(exited, now=after(minutes=4)) == "Exited (137) 2 minutes ago"
    assert status_text(exited, now=after(hours=30)) == "Exited (137) 30 hours ago"


def test_podman_stopped_reads_as_exited_as_in_its_listing() -> None:
    # Podman 4.3's "stopped": exited, cleanup not yet done; its listing says "Exited (1)".
    stopped = state(Status="stopped", Running=False, ExitCode=1, Pid=0,
                    FinishedAt="2026-11-28T00:10:38Z")
    assert status_text(stopped, now=after(seconds=1.5)) == "Exited (1) Less than a second ago"


def test_created_never_started() -> None:
    created = state(Status="created", Running=False, Pid=0, StartedAt=ZERO)
    assert status_text(created, now=after(days=3)) == "Created"
    assert status_text({**created, "Status": "configured"}, now=after(days=3)) == "Created"


def test_dead_and_removal_in_progress() -> None:
    ended = state(Running=False, Pid=0, FinishedAt="2026-11-28T00:11:00Z")
    assert status_text({**ended, "Status": "dead", "Dead": True}, now=after(hours=1)) == "Dead"
    assert status_text({**ended, "Status": "removing"}, now=after(hours=1)) \
        == "Removal In Progress"


def test_started_not_running_never_finished_names_the_state() -> None:
    # Docker writes "" here; Podman's listing writes "Stopping" for this state.
    stopping = state(Status="stopping", Running=False)
    assert status_text(stopping, now=after(seconds=1)) == "Stopping"


def test_status_alone_decides_for_an_engine_without_the_flags() -> None:
    bare = {"Status": "running", "StartedAt": STARTED}
    assert status_text(bare, now=after(minutes=5)) == "Up 5 minutes"
    assert status_text({**bare, "Status": "paused"}, now=after(minutes=5)) \
        == "Up 5 minutes (Paused)"


def test_a_missing_exit_code_reads_zero() -> None:
    exited = {"Status": "exited", "StartedAt": STARTED, "FinishedAt": STARTED, "ExitCode": None}
    assert status_text(exited, now=after(seconds=3)) == "Exited (0) 3 seconds ago"


def test_now_defaults_to_the_real_time() -> None:
    just_started = state(StartedAt=datetime.now(UTC).isoformat())
    assert status_text(just_started) == "Up Less than a second"


# -- Container.status ------------------------------------------------------------------------

def test_container_status_from_a_listing_is_the_engines_text() -> None:
    listed = Container(None, {"Id": "1df8", "State": "running",  # type: ignore[arg-type]
                              "Status": "Up 3 seconds"})
    assert listed.status == "Up 3 seconds"


def test_container_status_from_an_inspect_is_built_from_state() -> None:
    fresh = state(StartedAt=(datetime.now(UTC) - timedelta(minutes=3, seconds=5)).isoformat())
    inspected = Container(None, {"Id": "1df8", "State": fresh})  # type: ignore[arg-type]
    assert inspected.status == "Up 3 minutes"
    assert inspected.state == "running"


def test_container_status_without_state_or_status_is_the_state_word() -> None:
    assert Container(None, {"Id": "1df8", "State": "exited"}).status == "exited"  # type: ignore[arg-type]
