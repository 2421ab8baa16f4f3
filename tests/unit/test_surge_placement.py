"""Placement: which environment runs which replica, by ``replicas`` and ``regions``."""

from __future__ import annotations

import pytest

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.surge import DesiredState, Placement, SurgeError, desired_state, place
from ghostpanel_kernel.surge._placement import check_placement

EAST = ("east", {"region": "us-east"})
EAST_2 = ("east-2", {"region": "us-east"})
WEST = ("west", {"region": "eu-west"})
BARE = ("lab", {})


def state(services: str, project: str = "p") -> DesiredState:
    return desired_state(Boltfile.loads(f'project = "{project}"\n{services}'))


def names(placement: Placement, environment: str) -> list[str]:
    return [slot.name for slot in placement.slots[environment]]


def test_without_regions_every_environment_runs_the_replicas() -> None:
    wanted = state('[services.web]\nimage = "i"\nreplicas = 2\n'
                   '[services.db]\nimage = "i"\n')
    placement = place(wanted, [EAST, WEST, BARE])
    for env in ("east", "west", "lab"):
        assert names(placement, env) == ["p_web_1", "p_web_2", "p_db"]
        assert placement.desired(env, "web") == 2
    assert [s.replica for s in placement.slots["lab"]] == [1, 2, 1]
    assert placement.unplaced == ()


def test_replicas_spread_round_robin_over_matching_regions() -> None:
    wanted = state('[services.web]\nimage = "i"\nreplicas = 3\n'
                   'regions = ["us-east", "eu-west"]\n')
    placement = place(wanted, [WEST, BARE, EAST])
    # Ordered by the region list, then by name: east, west; replica numbers are global.
    assert names(placement, "east") == ["p_web_1", "p_web_3"]
    assert names(placement, "west") == ["p_web_2"]
    assert names(placement, "lab") == []
    assert placement.desired("east", "web") == 2
    # The order of the selection does not matter.
    assert place(wanted, [EAST, BARE, WEST]).slots == placement.slots


def test_several_environments_in_one_region_share_its_turns() -> None:
    wanted = state('[services.w]\nimage = "i"\nreplicas = 4\nregions = ["us-east"]\n')
    placement = place(wanted, [EAST_2, EAST, WEST])
    assert names(placement, "east") == ["p_w_1", "p_w_3"]
    assert names(placement, "east-2") == ["p_w_2", "p_w_4"]
    assert names(placement, "west") == []


def test_one_replica_in_regions_keeps_the_plain_name() -> None:
    wanted = state('[services.db]\nimage = "i"\nregions = ["eu-west", "us-east"]\n')
    placement = place(wanted, [EAST, WEST])
    assert names(placement, "west") == ["p_db"]
    assert names(placement, "east") == []


def test_zero_replicas_run_nowhere() -> None:
    placement = place(state('[services.w]\nimage = "i"\nreplicas = 0\n'), [EAST, WEST])
    assert placement.slots == {"east": (), "west": ()}
    assert placement.unplaced == ()


def test_a_service_no_selected_environment_may_run_is_refused() -> None:
    wanted = state('[services.w]\nimage = "i"\nregions = ["ap-south"]\n')
    described = [EAST, BARE]
    placement = place(wanted, described)
    assert placement.unplaced == ("w",)
    with pytest.raises(SurgeError, match=r"regions ap-south, but no selected environment "
                                         r"has one of them: east \(region us-east\), "
                                         r"lab \(region unset\)"):
        check_placement(wanted, placement, described)


def test_two_replicas_with_host_ports_on_one_host_are_refused() -> None:
    crowded = state('[services.web]\nimage = "i"\nreplicas = 2\nports = ["8080:80"]\n')
    with pytest.raises(SurgeError, match="would run 2 replicas on environment 'east'"):
        check_placement(crowded, place(crowded, [EAST]), [EAST])
    spread = state('[services.web]\nimage = "i"\nreplicas = 2\nports = ["8080:80"]\n'
                   'regions = ["us-east", "eu-west"]\n')
    check_placement(spread, place(spread, [EAST, WEST]), [EAST, WEST])  # one per host
