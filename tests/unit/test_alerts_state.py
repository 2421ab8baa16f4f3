"""The alerts' state machine (metrics/_alert_state): pending -> firing -> resolved, one
notification each way, no storm on flapping, silences, acknowledgements, persistence."""

from __future__ import annotations

from pathlib import Path

from ghostpanel_kernel.metrics._alert_builtin import Finding
from ghostpanel_kernel.metrics._alert_rules import AlertRule
from ghostpanel_kernel.metrics._alert_state import AlertState

T0 = 1_800_000_000.0
RULE = AlertRule(name="hot", kind="cpu_saturated", for_=10.0, severity="critical",
                 labels={"team": "shop"})


def holds(*subjects: str) -> dict[str, list[Finding]]:
    return {"hot": [Finding(s, 1.0, f"{s} is hot") for s in subjects]}


def step(state: AlertState, at: float, *subjects: str, rule: AlertRule = RULE
         ) -> list[tuple[str, str]]:
    notes = state.apply([rule], "prod", holds(*subjects), T0 + at)
    return [(note.status, note.alert["container"]) for note in notes]


def test_fires_after_for_once_and_resolves_once() -> None:
    state = AlertState(":memory:")
    assert step(state, 0, "web") == []
    assert state.alerts()[0]["state"] == "pending"
    assert step(state, 5, "web") == []
    assert step(state, 10, "web") == [("firing", "web")]
    firing = state.alerts()[0]
    assert firing["state"] == "firing" and firing["severity"] == "critical"
    assert firing["labels"] == {"alertname": "hot", "container": "web",
                                "environment": "prod", "severity": "critical",
                                "team": "shop"}
    assert [step(state, at, "web") for at in (11, 20, 300)] == [[], [], []]  # no storm
    assert step(state, 301) == [("resolved", "web")]
    assert step(state, 302) == []
    resolved = state.alerts(states=("resolved",))
    assert [a["container"] for a in resolved] == ["web"] and resolved[0]["resolved_at"]


def test_flapping_within_for_notifies_nothing() -> None:
    state = AlertState(":memory:")
    notes = [step(state, at, *(["web"] if int(at) % 8 < 4 else []))
             for at in range(0, 120, 2)]
    assert all(n == [] for n in notes)
    assert state.alerts() == []  # a pending alert that stops holding leaves no trace


def test_a_rule_gone_from_the_file_resolves_its_alerts() -> None:
    state = AlertState(":memory:")
    step(state, 0, "web")
    step(state, 10, "web")
    assert state.apply([], "prod", {}, T0 + 11)[0].status == "resolved"


def test_silence_holds_back_notifications_until_it_ends() -> None:
    state = AlertState(":memory:")
    silence = state.add_silence({"container": "web*", "team": "shop"}, T0 + 100,
                                starts_at=T0, comment="deploy")
    assert step(state, 0, "web-1", "api") == []
    assert sorted(step(state, 10, "web-1", "api")) == [("firing", "api")]
    shown = {a["container"]: a for a in state.alerts(now=T0 + 10)}
    assert shown["web-1"]["silenced"] and shown["web-1"]["silenced_by"] == [silence.id]
    assert not shown["api"]["silenced"]
    assert step(state, 50, "web-1", "api") == []
    # The silence is over and the alert still fires: told now, once.
    assert step(state, 100, "web-1", "api") == [("firing", "web-1")]
    assert step(state, 110, "web-1", "api") == []


def test_silenced_alert_that_resolves_is_never_notified() -> None:
    state = AlertState(":memory:")
    state.add_silence({"alertname": "hot"}, T0 + 1000, starts_at=T0)
    step(state, 0, "web")
    assert step(state, 10, "web") == []
    assert step(state, 20) == []  # never told it fired: not told it resolved


def test_acknowledged_alerts_are_not_repeated() -> None:
    rule = AlertRule(name="hot", kind="cpu_saturated", for_=0.0, repeat=30.0)
    state = AlertState(":memory:")
    assert step(state, 0, "web", "api", rule=rule) == [("firing", "web"), ("firing", "api")]
    by_name = {a["container"]: a["id"] for a in state.alerts()}
    acked = state.acknowledge(by_name["web"], "ada", now=T0 + 1)
    assert acked is not None and acked["acked"] and acked["acked_by"] == "ada"
    assert step(state, 29, "web", "api", rule=rule) == []
    assert step(state, 30, "web", "api", rule=rule) == [("firing", "api")]  # repeat
    assert sorted(step(state, 31, rule=rule)) == [("resolved", "api"), ("resolved", "web")]
    assert state.acknowledge(9999, "ada") is None


def test_changes_advance_seq_for_the_feed() -> None:
    state = AlertState(":memory:")
    start = state.seq
    step(state, 0, "web")
    after_pending = state.seq
    assert after_pending > start
    assert state.alerts(after=after_pending) == []
    step(state, 10, "web")
    assert [a["state"] for a in state.alerts(after=after_pending)] == ["firing"]
    silence = state.add_silence({"container": "x"}, T0 + 10**6)
    assert state.seq > after_pending + 1
    assert state.remove_silence(silence.id) and not state.remove_silence(silence.id)


def test_state_survives_a_restart_without_renotifying(tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "alerts.sqlite3"
    state = AlertState(path)
    step(state, 0, "web")
    assert step(state, 10, "web") == [("firing", "web")]
    state.close()
    again = AlertState(path)
    assert step(again, 20, "web") == []  # still firing, already told
    assert step(again, 30) == [("resolved", "web")]
    again.close()


def test_old_resolved_alerts_are_pruned() -> None:
    state = AlertState(":memory:", keep_resolved=60.0)
    step(state, 0, "web")
    step(state, 10, "web")
    step(state, 20)
    assert len(state.alerts(states=("resolved",))) == 1
    step(state, 81)
    assert state.alerts(states=("resolved",)) == []


def test_keep_firing_for_rides_out_dips() -> None:
    rule = AlertRule(name="hot", kind="cpu_saturated", for_=0.0, keep_firing_for=10.0)
    state = AlertState(":memory:")
    assert step(state, 0, "web", rule=rule) == [("firing", "web")]
    assert step(state, 1, rule=rule) == []  # a dip: still firing
    assert step(state, 5, "web", rule=rule) == []  # back, no second firing
    assert step(state, 6, rule=rule) == []
    assert step(state, 15, rule=rule) == []  # absent 9 s only
    assert step(state, 16, rule=rule) == [("resolved", "web")]
