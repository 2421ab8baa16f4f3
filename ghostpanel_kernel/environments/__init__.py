"""Environments: named engine endpoints, the auto-detected ``local`` one, and fan-out.

>>> from ghostpanel_kernel.environments import EnvironmentRegistry, fan_out
>>> registry = EnvironmentRegistry()                                      # doctest: +SKIP
>>> results = await fan_out(registry.select(["all"]), lambda env: env.ping())
...                                                                       # doctest: +SKIP
"""

from ._fanout import FanOutResult, fan_out
from ._gateway import GatewayRegistry, session_registry
from ._health import (
    EnvironmentHealth,
    EnvironmentSkipped,
    fan_out_with_health,
    health_outcome,
)
from ._local import detect_local, local_candidates
from ._registry import EnvironmentRegistry, parse_labels
from ._spec import EnvironmentSpec

__all__ = [
    "EnvironmentHealth",
    "EnvironmentRegistry",
    "EnvironmentSkipped",
    "EnvironmentSpec",
    "FanOutResult",
    "GatewayRegistry",
    "detect_local",
    "fan_out",
    "fan_out_with_health",
    "health_outcome",
    "local_candidates",
    "parse_labels",
    "session_registry",
]
