"""Alert rules (metrics/_alert_rules) and the built-in conditions (_alert_builtin),
over hand-made observations: no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpanel_kernel.metrics._alert_builtin import (
    ContainerInfo,
    Observation,
    VolumeUsage,
    findings,
    slope,
)
from ghostpanel_kernel.metrics._alert_rules import (
    RuleError,
    load_rules,
    parse_duration,
    parse_rate,
    parse_rules,
    predicate_rule,
)
from ghostpanel_kernel.metrics._names import ContainerEvent, Sample

NOW = 1_800_000_000.0


def rule(**table: object):  # type: ignore[no-untyped-def]
    return parse_rules({"rules": [{"name": "r", **table}]}).rules[0]


def running(name: str, **options: object) -> ContainerInfo:
    return ContainerInfo(name, f"id-{name}", "busybox", str(options.pop("state", "running")),
                         **options)  # type: ignore[arg-type]


def sample(container: str, metric: str, value: float, age: float) -> Sample:
    return Sample(NOW - age, "e", container, "", "", metric, value)


# -- reading rules ------------------------------------------------------------------------

def test_durations_rates_and_defaults() -> None:
    assert parse_duration("90s") == 90 and parse_duration("1.5d") == 129600
    assert parse_rate("60MiB/min") == 1024 ** 2
    loop = rule(kind="restart_loop", severity="critical", containers="web*")
    assert loop.params == {"restarts": 3, "window": 600.0}
    assert loop.containers == ("web*",) and loop.severity == "critical"


@pytest.mark.parametrize(("table", "message"), [
    ({"kind": "nope"}, "kind must be one of"),
    ({"kind": "down", "window": "1m"}, "unknown key 'window'"),
    ({"kind": "down", "severity": "loud"}, "severity must be one of"),
    ({"kind": "down", "for": "soon"}, "is not a duration"),
    ({"kind": "threshold", "metric": "pids"}, "needs metric and value"),
    ({"kind": "threshold", "metric": "pids", "value": 1, "op": "=~"}, "op must be"),
    ({"kind": "cpu_saturated", "fraction": 1.5}, "fraction must be in"),
    ({"kind": "disk_filling"}, "needs fraction, max_bytes or time_to_full"),
    ({"kind": "restart_loop", "restarts": 0}, "whole number >= 1"),
    ({"kind": "python", "predicate": "no_such_module_xyz:f"}, "cannot import"),
])
def test_bad_rules_are_refused_naming_the_rule(table: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message) as caught:
        rule(**table)
    assert "'r'" in str(caught.value)


def test_rule_names_are_unique_and_webhooks_are_urls() -> None:
    with pytest.raises(RuleError, match="two rules are named"):
        parse_rules({"rules": [{"name": "a", "kind": "down"}, {"name": "a", "kind": "down"}]})
    with pytest.raises(RuleError, match="webhook"):
        parse_rules({"webhook": "ftp://x", "rules": []})


def test_rules_file_and_boltfile_alerts_table(tmp_path: Path) -> None:
    plain = tmp_path / "rules.toml"
    plain.write_text('webhook = "http://127.0.0.1:1/h"\n[[rules]]\nname = "a"\n'
                     'kind = "unhealthy"\nfor = "10s"\n')
    assert load_rules(plain).webhook == "http://127.0.0.1:1/h"
    bolt = tmp_path / "Boltfile"
    bolt.write_text('project = "p"\n[services.web]\nimage = "nginx"\n'
                    '[[alerts.rules]]\nname = "b"\nkind = "down"\ncontainers = ["web"]\n')
    rules = load_rules(bolt)
    assert [r.name for r in rules.rules] == ["b"] and rules.rules[0].exact_names == ("web",)
    bolt.write_text('project = "p"\n[services.web]\nimage = "nginx"\n')
    assert load_rules(bolt).rules == ()


def test_selectors_by_glob_and_label() -> None:
    chosen = rule(kind="down", containers=["web-*"], match_labels={"team": "shop"})
    assert chosen.selects("web-1", {"team": "shop"})
    assert not chosen.selects("web-1", {"team": "ops"})
    assert not chosen.selects("db", {"team": "shop"})


# -- conditions ---------------------------------------------------------------------------

def test_down_skips_clean_exits_unless_named_and_reports_missing() -> None:
    seen = Observation(NOW, "e", [
        running("web"), running("job", state="exited", status="Exited (0) 1 minute ago"),
        running("api", state="exited", status="Exited (137) 2 seconds ago")])
    found = findings(rule(kind="down"), seen)
    assert [(f.subject, f.value) for f in found] == [("api", 137.0)]
    named = findings(rule(kind="down", containers=["job", "cache"]), seen)
    assert sorted(f.subject for f in named) == ["cache", "job"]


def test_unhealthy_from_listing_or_events() -> None:
    seen = Observation(NOW, "e", [running("a", health="unhealthy"), running("b"),
                                  running("c")],
                       health={"id-b": "unhealthy", "id-c": "healthy", "c": "unhealthy"})
    assert sorted(f.subject for f in findings(rule(kind="unhealthy"), seen)) == ["a", "b"]


def test_restart_loop_counts_within_the_window_without_double_counting() -> None:
    events = [ContainerEvent(NOW - age, "e", "loop", "id", kind, 1, None)
              for age in (10, 20, 30) for kind in ("die", "restart")]
    events.append(ContainerEvent(NOW - 5000, "e", "old", "id", "die", 1, None))
    seen = Observation(NOW, "e", [running("loop"), running("old")], events=events)
    found = findings(rule(kind="restart_loop", restarts=3, window="1m"), seen)
    assert [(f.subject, f.value) for f in found] == [("loop", 3.0)]
    assert findings(rule(kind="restart_loop", restarts=4, window="1m"), seen) == []


def test_memory_growth_needs_a_slope_over_the_window() -> None:
    mib = 1024 ** 2
    leak = [sample("leak", "memory_working_set_bytes", 100 * mib + age * -mib, age)
            for age in range(0, 60, 5)]  # +1 MiB/s
    flat = [sample("flat", "memory_working_set_bytes", 50 * mib + (age % 2) * mib, age)
            for age in range(0, 60, 5)]
    young = [sample("young", "memory_working_set_bytes", 10 * mib - age * mib, age)
             for age in range(0, 10, 2)]  # grows, but for a sixth of the window only
    seen = Observation(NOW, "e", [running("leak"), running("flat"), running("young")],
                       samples=leak + flat + young)
    found = findings(rule(kind="memory_growth", window="1m", min_rate="1MiB/min"), seen)
    assert [f.subject for f in found] == ["leak"]
    assert found[0].value == pytest.approx(mib)
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == 2.0


def test_memory_growth_is_not_tilted_by_spikes() -> None:
    mib = 1024 ** 2
    # Flat at 100 MiB with two transient doublings at the window's end: least squares
    # would call it a leak of several MiB/s; the robust slope sees none.
    series = [sample("gc", "memory_working_set_bytes",
                     (200 if age in (0, 5) else 100) * mib, age) for age in range(0, 60, 5)]
    seen = Observation(NOW, "e", [running("gc")], samples=series)
    assert slope([(s.time, s.value) for s in series]) > mib
    assert findings(rule(kind="memory_growth", window="1m", min_rate="1MiB/min"), seen) == []


def test_cpu_saturated_against_limit_rule_cores_or_host() -> None:
    samples = [sample("a", "cpu_cores", 0.95, 1), sample("b", "cpu_cores", 0.5, 1),
               sample("c", "cpu_cores", 1.9, 1)]
    seen = Observation(NOW, "e", [running("a"), running("b"), running("c")],
                       samples=samples, cpu_limits={"a": 1.0, "b": 0.5}, host_cores=4.0)
    found = findings(rule(kind="cpu_saturated", fraction=0.9), seen)
    assert sorted(f.subject for f in found) == ["a", "b"]  # c: 1.9 of 4 host cores
    assert [f.subject for f in findings(rule(kind="cpu_saturated", cores=2), seen)] == ["c"]


def test_disk_filling_by_size_fraction_and_time_to_full() -> None:
    gib = 1024 ** 3
    volumes = {
        "big": [(NOW, VolumeUsage("big", 5 * gib, 100 * gib, 80 * gib))],
        "full": [(NOW, VolumeUsage("full", gib, 100 * gib, 5 * gib))],
        "grows": [(NOW - 60, VolumeUsage("grows", 0, 100 * gib, 60 * gib)),
                  (NOW, VolumeUsage("grows", 30 * gib, 100 * gib, 30 * gib))]}
    seen = Observation(NOW, "e", [], volumes=volumes)
    assert [f.subject for f in findings(rule(kind="disk_filling", max_bytes="4g"),
                                        seen)] == ["volume:big", "volume:grows"]
    assert [f.subject for f in findings(rule(kind="disk_filling", fraction=0.9),
                                        seen)] == ["volume:full"]
    ttf = findings(rule(kind="disk_filling", time_to_full="5m", volumes=["gr*"]), seen)
    assert [(f.subject, f.value) for f in ttf] == [("volume:grows", pytest.approx(60.0))]


def test_threshold_with_aggregates() -> None:
    samples = [sample("a", "pids", value, age) for value, age in ((10, 30), (50, 20),
                                                                  (20, 1))]
    seen = Observation(NOW, "e", [running("a")], samples=samples)
    last = rule(kind="threshold", metric="pids", op=">", value=40)
    assert findings(last, seen) == []
    peak = rule(kind="threshold", metric="pids", op=">", value=40, aggregate="max")
    assert [f.value for f in findings(peak, seen)] == [50.0]


def test_python_predicates_over_the_frame() -> None:
    samples = [sample("a", "pids", 600, 1), sample("b", "pids", 3, 1)]
    seen = Observation(NOW, "e", [running("a"), running("b")], samples=samples)
    many = predicate_rule("many-pids", lambda frame: frame.loc[
        (frame.metric == "pids") & (frame.value > 500), "container"].unique())
    assert [f.subject for f in findings(many, seen)] == ["a"]
    valued = predicate_rule("v", lambda frame: {"b": 3.0, "ghost": 1.0})
    assert [(f.subject, f.value) for f in findings(valued, seen)] == [("b", 3.0)]


# -- the Boltfile's [alerts] table --------------------------------------------------------

def test_boltfile_validator_reads_the_alerts_table() -> None:
    from ghostpanel_kernel.bolt import Boltfile, validate

    base = 'project = "p"\n[services.web]\nimage = "nginx"\n'
    good = Boltfile.loads(base + '[alerts]\nwebhook = "http://127.0.0.1:1/h"\n'
                                 '[[alerts.rules]]\nname = "d"\nkind = "down"\n'
                                 '[[alerts.rules]]\nname = "p"\nkind = "python"\n'
                                 'predicate = "not_imported_xyz:f"\n')
    assert validate(good) == []  # no "unknown table", and predicates are not imported
    bad = Boltfile.loads(base + '[[alerts.rules]]\nname = "hot"\nkind = "cpu_saturated"\n'
                                'fraction = 2\n')
    [problem] = validate(bad)
    assert problem.severity == "warning"  # Bolt itself ignores the table
    assert "rule 'hot': fraction must be in (0, 1]" in problem.message


def test_the_package_exposes_the_alert_names_lazily() -> None:
    import ghostpanel_kernel.metrics as metrics
    from ghostpanel_kernel.metrics._alerts import AlertEvaluator

    assert metrics.predicate_rule is predicate_rule
    assert metrics.AlertEvaluator is AlertEvaluator
