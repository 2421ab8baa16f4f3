"""Alert rules: :class:`AlertRule`, read from TOML (a rules file or a Boltfile's
``[alerts]``) or made in Python (:func:`predicate_rule`).

A rules file::

    webhook = "https://hooks.example.com/ghostpanel"    # optional

    [[rules]]
    name = "web-leak"
    kind = "memory_growth"
    containers = ["web*"]          # name globs; none: every container
    match_labels = { team = "shop" }
    for = "5m"
    severity = "critical"          # info | warning | critical
    window = "30m"
    min_rate = "10MiB/h"

The same tables go under ``[alerts]`` in a Boltfile (``[[alerts.rules]]``). Reading is
strict (an unknown key or a bad value is a :class:`RuleError` naming the rule), so a
typo never silently disables an alert. Stdlib only: the agent reads rules without
pandas (see docs/alerts.md).
"""

from __future__ import annotations

import fnmatch
import importlib
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._units import parse_duration_ns, parse_size

__all__ = [
    "KINDS",
    "OPERATORS",
    "SEVERITIES",
    "AlertRule",
    "RuleError",
    "RuleSet",
    "load_rules",
    "parse_duration",
    "parse_rate",
    "parse_rules",
    "predicate_rule",
]

SEVERITIES: Final = ("info", "warning", "critical")

#: Comparison operators of ``threshold`` rules.
OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}

_AGGREGATES: Final = ("last", "mean", "max", "min")

#: Each kind's own parameters and their defaults (None: optional, no default). The
#: reader fills defaults in, so an evaluator never guesses.
KINDS: Final[dict[str, dict[str, Any]]] = {
    "down": {},
    "unhealthy": {},
    "restart_loop": {"restarts": 3, "window": "10m"},
    "memory_growth": {"window": "30m", "min_rate": "1MiB/h", "min_samples": 5},
    "cpu_saturated": {"fraction": 0.9, "cores": None},
    "disk_filling": {"volumes": None, "fraction": None, "max_bytes": None,
                     "time_to_full": None, "window": "1h"},
    "threshold": {"metric": None, "op": ">", "value": None, "aggregate": "last",
                  "window": "5m"},
    "python": {"predicate": None, "window": "15m"},
}

_COMMON: Final = ("name", "kind", "for", "keep_firing_for", "severity", "containers",
                  "match_labels", "labels", "repeat", "description")


class RuleError(ValueError):
    """A rule that cannot be read; the message names the rule and the key."""


def parse_duration(value: float | int | str, *, what: str = "duration") -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1h30m"`` or ``"7d"``.

    Raises
    ------
    RuleError
        Not a duration, or negative.

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("2d"), parse_duration(1.5)
    (5400.0, 172800.0, 1.5)
    """
    if isinstance(value, bool):
        raise RuleError(f"{what} must be a number of seconds or text like \"5m\"")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        days = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)d", text)
        try:
            seconds = (float(days.group(1)) * 86400 if days
                       else parse_duration_ns(text) / 1e9)
        except ValueError:
            raise RuleError(f"{what} {value!r} is not a duration; write e.g. \"30s\", "
                            "\"5m\", \"1h\" or \"7d\"") from None
    else:
        raise RuleError(f"{what} must be a number of seconds or text like \"5m\"")
    if seconds < 0 or not math.isfinite(seconds):
        raise RuleError(f"{what} must be 0 or more, not {value!r}")
    return seconds


def parse_rate(value: float | int | str) -> float:
    """Bytes per second from a number (bytes/s) or ``"SIZE/DURATION"``.

    Examples
    --------
    >>> parse_rate("1MiB/h") * 3600 == 1024 ** 2, parse_rate(512)
    (True, 512.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and "/" in value:
        size, _, per = value.partition("/")
        try:
            amount = parse_size(size.strip())
        except ValueError:
            raise RuleError(f"min_rate {value!r}: {size!r} is not a size") from None
        # "10MiB/h": a bare unit means one of it; "min", "hour", "day" read as words.
        per = {"sec": "s", "min": "m", "hour": "h", "day": "d"}.get(per.strip(), per.strip())
        seconds = parse_duration(per if per[:1].isdigit() else f"1{per}", what="min_rate")
        if seconds <= 0:
            raise RuleError(f"min_rate {value!r} divides by a zero duration")
        return amount / seconds
    raise RuleError(f"min_rate {value!r} must be bytes per second or text like \"10MiB/h\"")


@dataclass(frozen=True)
class AlertRule:
    """One alert rule.

    Parameters
    ----------
    name
        Unique among the rules; alerts carry it.
    kind
        One of :data:`KINDS`.
    for_
        Seconds the condition must hold before the alert fires (``for`` in TOML).
    keep_firing_for
        Seconds the condition must be absent before a firing alert resolves: a noisy
        measure that dips below its bound for a round does not resolve and re-fire.
    severity
        ``info``, ``warning`` or ``critical``.
    containers
        Name globs of the containers the rule watches; empty: all of them.
    match_labels
        Container labels that must all be present with these values.
    labels
        Labels added to the rule's alerts (for routing and silences).
    params
        The kind's parameters, defaults filled in (durations already in seconds).
    repeat
        Seconds after which a firing alert that nobody acknowledged is notified again;
        None: once per firing.
    description
        Free text shown with the alert.
    predicate
        For ``python`` rules: called with the tidy metrics frame of the rule's window,
        returns the containers for which the condition holds (names, or a mapping of
        name to the value shown).
    """

    name: str
    kind: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    severity: str = "warning"
    containers: tuple[str, ...] = ()
    match_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    repeat: float | None = None
    description: str = ""
    predicate: Callable[[Any], Any] | None = None

    def selects(self, name: str, labels: Mapping[str, str] | None = None) -> bool:
        """Whether the container ``name`` with ``labels`` is one this rule watches."""
        if self.containers and not any(fnmatch.fnmatchcase(name, pattern)
                                       for pattern in self.containers):
            return False
        found = labels or {}
        return all(found.get(key) == value for key, value in self.match_labels.items())

    @property
    def exact_names(self) -> tuple[str, ...]:
        """The ``containers`` entries without glob characters: containers expected to
        exist (a ``down`` rule fires for one that is missing)."""
        return tuple(name for name in self.containers if not any(c in name for c in "*?["))


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, and where their alerts are delivered."""

    rules: tuple[AlertRule, ...] = ()
    webhook: str | None = None

    @property
    def longest_window(self) -> float:
        """The longest history any rule reads, in seconds (what to fetch per round)."""
        windows = [float(rule.params.get("window", 0.0)) for rule in self.rules]
        return max([0.0, *windows])


def _text(rule: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"rule {rule!r}: {key} must be non-empty text, not {value!r}")
    return value


def _text_map(rule: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RuleError(f"rule {rule!r}: {key} must be a table of text values")
    return dict(value)


def _number(rule: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"rule {rule!r}: {key} must be a number, not {value!r}")
    if positive and value <= 0:
        raise RuleError(f"rule {rule!r}: {key} must be more than 0, not {value!r}")
    return float(value)


def _kind_params(rule: str, kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The kind's parameters from ``given``, checked, defaults filled in."""
    params = dict(KINDS[kind])
    params.update(given)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            out[key] = None
        elif key in ("window", "time_to_full"):
            out[key] = parse_duration(value, what=f"rule {rule!r}: {key}")
        elif key == "min_rate":
            out[key] = parse_rate(value)
        elif key == "max_bytes":
            try:
                out[key] = parse_size(value)
            except (TypeError, ValueError):
                raise RuleError(f"rule {rule!r}: max_bytes {value!r} is not a size") from None
        elif key in ("restarts", "min_samples"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RuleError(f"rule {rule!r}: {key} must be a whole number >= 1")
            out[key] = value
        elif key in ("fraction", "cores", "value"):
            out[key] = _number(rule, key, value, positive=key != "value")
        elif key == "volumes":
            out[key] = _globs(rule, key, value)
        else:  # metric, op, aggregate, predicate: text
            out[key] = _text(rule, key, value)
    if kind == "threshold":
        if out["metric"] is None or out["value"] is None:
            raise RuleError(f"rule {rule!r}: a threshold rule needs metric and value")
        if out["op"] not in OPERATORS:
            raise RuleError(f"rule {rule!r}: op must be one of {' '.join(OPERATORS)}")
        if out["aggregate"] not in _AGGREGATES:
            raise RuleError(f"rule {rule!r}: aggregate must be one of "
                            f"{', '.join(_AGGREGATES)}")
    if kind == "cpu_saturated" and not 0 < out["fraction"] <= 1:
        raise RuleError(f"rule {rule!r}: fraction must be in (0, 1]")
    if kind == "disk_filling" and all(out[k] is None for k in
                                      ("fraction", "max_bytes", "time_to_full")):
        raise RuleError(f"rule {rule!r}: a disk_filling rule needs fraction, max_bytes "
                        "or time_to_full")
    if kind == "python" and out["predicate"] is None:
        raise RuleError(f"rule {rule!r}: a python rule needs predicate = \"module:function\"")
    return out


def _globs(rule: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"rule {rule!r}: {key} must be a list of names or globs")
    return tuple(value)


def _import_predicate(rule: str, reference: str) -> Callable[[Any], Any]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise RuleError(f"rule {rule!r}: predicate {reference!r} must be "
                        "\"module:function\"")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise RuleError(f"rule {rule!r}: cannot import predicate {reference!r}: "
                        f"{error}") from error
    if not callable(target):
        raise RuleError(f"rule {rule!r}: predicate {reference!r} is not callable")
    return target  # type: ignore[no-any-return]


def parse_rule(table: Mapping[str, Any], *, index: int = 0,
               import_predicates: bool = True) -> AlertRule:
    """One rule from its TOML table (see the module notes); ``import_predicates=False``
    checks a ``python`` rule's reference without importing it (a validator must not run
    a file's code).

    Raises
    ------
    RuleError
        A missing name or kind, an unknown key, or a bad value.
    """
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"rule {index + 1} needs a name")
    kind = table.get("kind")
    if kind not in KINDS:
        raise RuleError(f"rule {name!r}: kind must be one of {', '.join(KINDS)}, "
                        f"not {kind!r}")
    unknown = sorted(set(table) - set(_COMMON) - set(KINDS[kind]))
    if unknown:
        raise RuleError(f"rule {name!r}: unknown key {unknown[0]!r} for kind {kind!r}"
                        f" (it takes {', '.join([*_COMMON, *KINDS[kind]])})")
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RuleError(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}")
    params = _kind_params(name, kind, {k: v for k, v in table.items() if k in KINDS[kind]})
    repeat = table.get("repeat")
    return AlertRule(
        name=name, kind=kind,
        for_=parse_duration(table.get("for", 0), what=f"rule {name!r}: for"),
        keep_firing_for=parse_duration(table.get("keep_firing_for", 0),
                                       what=f"rule {name!r}: keep_firing_for"),
        severity=severity,
        containers=_globs(name, "containers", table.get("containers", [])),
        match_labels=_text_map(name, "match_labels", table.get("match_labels", {})),
        labels=_text_map(name, "labels", table.get("labels", {})),
        params=params,
        repeat=None if repeat is None else parse_duration(repeat, what=f"rule {name!r}: "
                                                                       "repeat"),
        description=str(table.get("description", "")),
        predicate=(_import_predicate(name, params["predicate"])
                   if kind == "python" and import_predicates else None))


def parse_rules(document: Mapping[str, Any], *, import_predicates: bool = True) -> RuleSet:
    """The rules of a parsed TOML document: a rules file's top level, or a Boltfile's
    ``[alerts]`` table (pass ``document["alerts"]``).

    Raises
    ------
    RuleError
        Any rule that cannot be read, or two rules with one name.

    Examples
    --------
    >>> rules = parse_rules({"rules": [{"name": "hot", "kind": "cpu_saturated",
    ...                                 "for": "1m", "fraction": 0.8}]})
    >>> rules.rules[0].for_, rules.rules[0].params["fraction"]
    (60.0, 0.8)
    """
    unknown = sorted(set(document) - {"rules", "webhook"})
    if unknown:
        raise RuleError(f"unknown key {unknown[0]!r}: alert rules take rules and webhook")
    tables = document.get("rules", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RuleError("rules must be an array of tables ([[rules]])")
    rules = tuple(parse_rule(table, index=index, import_predicates=import_predicates)
                  for index, table in enumerate(tables))
    names = [rule.name for rule in rules]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise RuleError(f"two rules are named {twice[0]!r}; names must be unique")
    webhook = document.get("webhook")
    if webhook is not None and (not isinstance(webhook, str)
                                or not webhook.startswith(("http://", "https://"))):
        raise RuleError(f"webhook must be an http(s) URL, not {webhook!r}")
    return RuleSet(rules, webhook)


def load_rules(path: Path) -> RuleSet:
    """The rules of a TOML file: a rules file, or a Boltfile (its ``[alerts]`` table;
    a Boltfile without one has no rules).

    Raises
    ------
    RuleError
        The file cannot be read or parsed, or a rule is bad (the message names the file).
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RuleError(f"{path}: {error}") from error
    if "services" in document or "project" in document:  # a Boltfile
        document = document.get("alerts", {})
        if not isinstance(document, dict):
            raise RuleError(f"{path}: [alerts] must be a table")
    try:
        return parse_rules(document)
    except RuleError as error:
        raise RuleError(f"{path}: {error}") from error


def predicate_rule(name: str, predicate: Callable[[Any], Any], *, for_: float = 0.0,
                   severity: str = "warning", window: float = 900.0,
                   containers: Sequence[str] = (), labels: Mapping[str, str] | None = None,
                   description: str = "") -> AlertRule:
    """A rule whose condition is Python: ``predicate(frame)`` over the tidy metrics
    frame of the last ``window`` seconds (columns time, environment, container, metric,
    value) returns the containers for which it holds, as names or ``{name: value}``.

    Examples
    --------
    >>> rule = predicate_rule("many-pids", lambda frame: frame.loc[
    ...     (frame.metric == "pids") & (frame.value > 500), "container"].unique())
    >>> rule.kind, rule.params["window"]
    ('python', 900.0)
    """
    if severity not in SEVERITIES:
        raise RuleError(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}")
    return AlertRule(name=name, kind="python", for_=for_, severity=severity,
                     containers=tuple(containers), labels=dict(labels or {}),
                     params={"predicate": getattr(predicate, "__qualname__", "predicate"),
                             "window": float(window)},
                     description=description, predicate=predicate)
