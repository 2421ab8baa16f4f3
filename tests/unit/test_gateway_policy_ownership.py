"""Ownership labels and who may see an object (``gateway/_ownership``)."""

from __future__ import annotations

import pytest

from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._ownership import (
    OWNER_LABEL,
    TEAMS_LABEL,
    label_teams,
    may_see,
    owner_labels,
)

ADA = Identity("ada", groups=frozenset({"blue", "red"}))
BOB = Identity("bob", groups=frozenset({"green"}))
LONER = Identity("lone")
ROOT = Identity("root", admin=True)


def test_label_names() -> None:
    assert (OWNER_LABEL, TEAMS_LABEL) == ("io.ghostpanel.owner", "io.ghostpanel.teams")


def test_owner_labels_sort_and_join_the_teams() -> None:
    assert owner_labels(ADA) == {OWNER_LABEL: "ada", TEAMS_LABEL: "blue,red"}
    assert owner_labels(LONER) == {OWNER_LABEL: "lone", TEAMS_LABEL: ""}


def test_label_teams_reads_the_label_back() -> None:
    assert label_teams(owner_labels(ADA)) == ADA.teams
    assert label_teams({TEAMS_LABEL: ",blue,,"}) == {"blue"}
    assert label_teams(None) == frozenset()


@pytest.mark.parametrize(("identity", "labels", "seen"), [
    (ADA, {OWNER_LABEL: "carol", TEAMS_LABEL: "blue"}, True),     # a shared team
    (ADA, {OWNER_LABEL: "carol", TEAMS_LABEL: "green,red"}, True),
    (ADA, {OWNER_LABEL: "ada", TEAMS_LABEL: "green"}, False),     # teams decide, not owner
    (BOB, {OWNER_LABEL: "ada", TEAMS_LABEL: "blue,red"}, False),  # another team's
    (ADA, {}, False),                                             # not made via the gateway
    (ADA, None, False),
    (ADA, {TEAMS_LABEL: "blue"}, False),                          # no owner label
    (ADA, {OWNER_LABEL: "", TEAMS_LABEL: "blue"}, False),
    (ADA, {OWNER_LABEL: "carol", TEAMS_LABEL: "Blue"}, False),    # exact team names
    (LONER, {OWNER_LABEL: "lone", TEAMS_LABEL: ""}, True),        # no team: own objects
    (LONER, {OWNER_LABEL: "other", TEAMS_LABEL: ""}, False),
    (LONER, {OWNER_LABEL: "other", TEAMS_LABEL: "blue"}, False),
    (LONER, {OWNER_LABEL: "lone", TEAMS_LABEL: "blue"}, True),    # left every team
    (ADA, {OWNER_LABEL: "ada", TEAMS_LABEL: ""}, True),           # made before joining
    (ADA, {OWNER_LABEL: "ada"}, True),
    (ADA, {OWNER_LABEL: "carol", TEAMS_LABEL: ""}, False),
    (ROOT, {}, True),                                             # admins see everything
    (ROOT, {OWNER_LABEL: "ada", TEAMS_LABEL: "blue"}, True),
])
def test_may_see(identity: Identity, labels: dict[str, str] | None, seen: bool) -> None:
    assert may_see(identity, labels) is seen


def test_a_creator_always_sees_what_they_created() -> None:
    for identity in (ADA, BOB, LONER):
        assert may_see(identity, owner_labels(identity))
