"""Who owns an object on an engine: the labels the gateway stamps, and who may see it.

The gateway labels every container, volume and network it creates with the creator
(:data:`OWNER_LABEL`) and the creator's teams (:data:`TEAMS_LABEL`, comma-joined and
sorted). A caller who is not an admin sees and acts only on objects one of their teams
owns, or, when the caller or the object has no team, on objects they own themselves. Objects without
the labels were not made through the gateway and are admin-only (``docs/rbac.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._identity import Identity

__all__ = ["OWNER_LABEL", "TEAMS_LABEL", "label_teams", "may_see", "owner_labels"]

OWNER_LABEL: Final = "io.ghostpanel.owner"
TEAMS_LABEL: Final = "io.ghostpanel.teams"


def owner_labels(identity: Identity) -> dict[str, str]:
    """The two ownership labels for an object ``identity`` creates.

    Examples
    --------
    >>> owner_labels(Identity("ada", groups=frozenset({"red", "blue"})))
    {'io.ghostpanel.owner': 'ada', 'io.ghostpanel.teams': 'blue,red'}
    """
    return {OWNER_LABEL: identity.name, TEAMS_LABEL: ",".join(sorted(identity.teams))}


def label_teams(labels: Mapping[str, str] | None) -> frozenset[str]:
    """The teams named by an object's :data:`TEAMS_LABEL` (empty names dropped).

    Examples
    --------
    >>> sorted(label_teams({TEAMS_LABEL: "blue,red"}))
    ['blue', 'red']
    """
    raw = (labels or {}).get(TEAMS_LABEL) or ""
    return frozenset(team for team in raw.split(",") if team)


def may_see(identity: Identity, labels: Mapping[str, str] | None) -> bool:
    """Whether ``identity`` may see and act on an object with these labels.

    Admins see everything. Otherwise the object must carry the gateway's owner label,
    and one of its teams must be one of the caller's; where the caller or the object
    has no team, its owner must be the caller.

    Examples
    --------
    >>> ada = Identity("ada", groups=frozenset({"blue"}))
    >>> may_see(ada, {OWNER_LABEL: "bob", TEAMS_LABEL: "blue"}), may_see(ada, {})
    (True, False)
    """
    if identity.admin:
        return True
    labels = labels or {}
    owner = labels.get(OWNER_LABEL)
    if not owner:
        return False
    teams = label_teams(labels)
    if identity.teams and teams:
        return bool(identity.teams & teams)
    # A caller in no team acts alone, and so does an object made by one: then the
    # owner alone decides (a user who has since joined a team keeps what they made).
    return owner == identity.name
