"""Surge: apply a Boltfile to one or many environments (plan, apply, destroy, status).

Bolt's ``surge`` is a stub; GhostPanel's applies a Boltfile through the Engine API:
services become containers named by Bolt's rule (``{project}_{service}``, replicas
``{project}_{service}_{i}``), labelled with project, service, replica and config hash;
networks and volumes are created; ``depends_on`` orders the starts and a healthcheck is
waited for. ``plan`` diffs the file against what runs; ``apply`` is idempotent,
recreates only what changed and rolls back everywhere when anything fails (or is
cancelled); one run at a time changes a project on an environment (a lock container
on the engine itself); replicas
spread over environments by their ``region`` label (GhostPanel's ``replicas`` and
``regions`` service keys). Containers already running under Bolt's names are adopted.

>>> from ghostpanel_kernel.bolt import Boltfile
>>> from ghostpanel_kernel.surge import apply_surge, plan_surge, surge_status
>>> bf = Boltfile.load("Boltfile.toml")                               # doctest: +SKIP
>>> plan = await plan_surge(bf, [east, west])                         # doctest: +SKIP
>>> result = await apply_surge(bf, [east, west], progress=print)      # doctest: +SKIP
>>> result.ok, result.summary()                                       # doctest: +SKIP
(True, ['east: 2 created', 'west: 1 created'])

The modules, one concern each: ``_desired`` (Boltfile → desired state, config hash),
``_placement`` (replicas → environments), ``_observe`` (what runs), ``_plan``,
``_apply`` (apply, scale: forward, commit, rollback), ``_journal`` (undo log),
``_undo`` (what undoes each change),
``_lock`` (one run per project and environment, held by the engine),
``_destroy``, ``_status``, ``_projects`` (the stacks on environments, by labels and
Bolt's names), ``_adopt`` (a Bolt CLI stack made a Surge project), ``_redeploy`` (the latest
images, nothing else), ``_health``
(healthcheck waits), ``_logs``, ``_hosts`` (parallel per host), ``_progress``,
``_result``, ``_naming``, ``_errors``.
"""

from ._adopt import Adoption, adopt_stack, describe_adoption, plan_adoption
from ._apply import CancelCallback, MissingImage, apply_surge, scale_surge
from ._desired import DesiredState, NetworkSpec, ServiceSpec, VolumeSpec, desired_state
from ._destroy import destroy_surge
from ._errors import SurgeError
from ._health import HealthTimeout
from ._lock import LABEL_LOCK, LockHolder, ProjectLocked, lock_name
from ._logs import SurgeLogLine, surge_logs
from ._naming import (
    LABEL_BOLTFILE,
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_RUN,
    LABEL_SERVICE,
)
from ._placement import Placement, Slot, place
from ._plan import Action, EnvironmentPlan, SurgePlan, plan_surge
from ._progress import SurgeProgress
from ._projects import StackContainer, StackDiscovery, StackProject, discover_stacks
from ._redeploy import project_updates, redeploy_latest
from ._result import SurgeResult
from ._status import ServiceStatus, SurgeStatus, surge_status
from ._undo import NotRestored

__all__ = [
    "LABEL_BOLTFILE",
    "LABEL_CONFIG_HASH",
    "LABEL_LOCK",
    "LABEL_PROJECT",
    "LABEL_REPLICA",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "Action",
    "Adoption",
    "CancelCallback",
    "DesiredState",
    "EnvironmentPlan",
    "HealthTimeout",
    "LockHolder",
    "MissingImage",
    "NetworkSpec",
    "NotRestored",
    "Placement",
    "ProjectLocked",
    "ServiceSpec",
    "ServiceStatus",
    "Slot",
    "StackContainer",
    "StackDiscovery",
    "StackProject",
    "SurgeError",
    "SurgeLogLine",
    "SurgePlan",
    "SurgeProgress",
    "SurgeResult",
    "SurgeStatus",
    "VolumeSpec",
    "adopt_stack",
    "apply_surge",
    "describe_adoption",
    "desired_state",
    "destroy_surge",
    "discover_stacks",
    "lock_name",
    "place",
    "plan_adoption",
    "plan_surge",
    "project_updates",
    "redeploy_latest",
    "scale_surge",
    "surge_logs",
    "surge_status",
]
