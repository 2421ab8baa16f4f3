"""Container metrics: a history store, a sampler, retention (docs/metrics.md).

Importing this package stays light (stdlib only): the agent samples and serves
``/metrics`` from it within its idle memory budget, so pandas is imported only
inside the methods that return DataFrames.
"""

from __future__ import annotations

from typing import Any

from ghostpanel_kernel.metrics._history import EnvironmentMetrics, events, history
from ghostpanel_kernel.metrics._names import (
    COUNTERS,
    EVENT_KINDS,
    METRICS,
    ContainerEvent,
    Sample,
)

# pandas-based names (history analytics, M4's): loaded on first use (PEP 562), so
# importing the package stays stdlib-only.
_LAZY: dict[str, str] = {
    "MetricsFrame": "._frame",
    "memory_leaks": "._fleet",
    "restart_loops": "._fleet",
    "right_size": "._fleet",
    "usage_percentiles": "._fleet",
    # Alerts (docs/alerts.md): stdlib and httpx only, loaded on first use all the same.
    "AlertEvaluator": "._alerts",
    "AlertRule": "._alert_rules",
    "AlertState": "._alert_state",
    "RuleError": "._alert_rules",
    "RuleSet": "._alert_rules",
    "load_rules": "._alert_rules",
    "parse_rules": "._alert_rules",
    "predicate_rule": "._alert_rules",
}

__all__ = [
    "COUNTERS",
    "EVENT_KINDS",
    "METRICS",
    "AlertEvaluator",
    "AlertRule",
    "AlertState",
    "ContainerEvent",
    "EnvironmentMetrics",
    "MetricsFrame",
    "RuleError",
    "RuleSet",
    "Sample",
    "events",
    "history",
    "load_rules",
    "memory_leaks",
    "parse_rules",
    "predicate_rule",
    "restart_loops",
    "right_size",
    "usage_percentiles",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
