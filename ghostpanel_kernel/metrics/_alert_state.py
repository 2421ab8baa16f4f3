"""The alerts' state machine, silences and acknowledgements, kept in SQLite.

One alert is one ``(rule, subject, environment)`` going through::

    (condition holds) -> pending --(held for `for`)--> firing --(no longer holds)--> resolved
                            \\--(stops holding before `for`)--> gone, nobody told

Notifications come out of :meth:`AlertState.apply` and only on the two transitions that
matter: ``firing`` once, ``resolved`` once (and only if its firing was notified). A
condition that flaps within ``for`` never leaves ``pending``, so it notifies nothing:
that is what keeps a flapping container from making an alert storm. A firing alert is
notified again only if its rule sets ``repeat`` and nobody acknowledged it.

A silence (label matchers with globs, and an end time) holds back the notifications of
the alerts it matches; an alert firing under a silence is notified when the silence
ends, if it still fires. The state is a SQLite file in the metrics folder (stdlib
``sqlite3``: the agent imports no SQLAlchemy for it), so an agent that restarts finds
its firing alerts firing and does not notify them again.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ._alert_builtin import Finding
from ._alert_rules import AlertRule

__all__ = ["ALERT_STATES", "AlertState", "Notification", "Silence", "iso_time"]

ALERT_STATES: Final = ("pending", "firing", "resolved")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    environment TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL,
    message TEXT NOT NULL,
    description TEXT NOT NULL,
    started_at REAL NOT NULL,
    fired_at REAL,
    resolved_at REAL,
    cleared_at REAL,
    notified_at REAL,
    acked_by TEXT,
    acked_at REAL,
    seq INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (rule, subject, environment)
    WHERE state IN ('pending', 'firing');
CREATE INDEX IF NOT EXISTS alerts_seq ON alerts (seq);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);
INSERT OR IGNORE INTO counter VALUES (1, 0);
"""

_COLUMNS: Final = ("id", "rule", "kind", "subject", "environment", "severity", "state",
                   "labels", "value", "message", "description", "started_at", "fired_at",
                   "resolved_at", "cleared_at", "notified_at", "acked_by", "acked_at", "seq")


def iso_time(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC (``2026-12-07T22:40:00.125Z``), None as None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True)
class Notification:
    """One thing to tell the deliveries: an alert that fired or resolved.

    Attributes
    ----------
    status
        ``firing`` or ``resolved``.
    alert
        The alert as :meth:`AlertState.alerts` shows it (JSON-ready).
    """

    status: str
    alert: dict[str, Any]


@dataclass(frozen=True)
class Silence:
    """Holds back notifications of alerts whose labels match every matcher (globs)."""

    id: str
    matchers: Mapping[str, str]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches the label of its name."""
        return all(fnmatch.fnmatchcase(labels.get(key, ""), pattern)
                   for key, pattern in self.matchers.items())

    def active(self, now: float) -> bool:
        """Whether the silence is in force at ``now``."""
        return self.starts_at <= now < self.ends_at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"id": self.id, "matchers": dict(self.matchers),
                "starts_at": iso_time(self.starts_at), "ends_at": iso_time(self.ends_at),
                "comment": self.comment, "created_by": self.created_by}


def alert_labels(rule: AlertRule, subject: str, environment: str) -> dict[str, str]:
    """The labels silences match: the rule's own, plus ``alertname``, ``container``,
    ``environment`` and ``severity``."""
    return {**rule.labels, "alertname": rule.name, "container": subject,
            "environment": environment, "severity": rule.severity}


class AlertState:
    """Alerts and silences in the SQLite file ``path`` (``":memory:"`` for tests).

    Examples
    --------
    >>> state = AlertState(":memory:")
    >>> state.alerts()
    []
    """

    def __init__(self, path: Path | str, *, keep_resolved: float = 86400.0) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, serialised by a lock: the agent's routes and its evaluator
        # share it; an evaluation round is a few statements.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.keep_resolved = keep_resolved

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    # -- reading ------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The change counter: it grows with every change to an alert."""
        row = self._db.execute("SELECT seq FROM counter").fetchone()
        return int(row[0])

    def alerts(self, *, states: Iterable[str] = ALERT_STATES, after: int = 0,
               now: float | None = None) -> list[dict[str, Any]]:
        """Alerts in ``states`` changed after ``after`` (a :attr:`seq`), active first,
        newest first, each JSON-ready (see docs/alerts.md for the shape)."""
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM alerts WHERE state IN ({marks}) AND seq > ?"
            " ORDER BY state = 'resolved', started_at DESC, id DESC",
            (*wanted, after)).fetchall()
        silences = self.silences(now=now)
        return [self._shown(dict(zip(_COLUMNS, row, strict=True)), silences, now)
                for row in rows]

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert by id, or None."""
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alerts WHERE id = ?",
                               (alert_id,)).fetchone()
        if row is None:
            return None
        return self._shown(dict(zip(_COLUMNS, row, strict=True)), self.silences(), None)

    @staticmethod
    def _shown(row: dict[str, Any], silences: Sequence[Silence],
               now: float | None) -> dict[str, Any]:
        labels = json.loads(row["labels"])
        moment = time.time() if now is None else now
        silenced_by = [s.id for s in silences if s.active(moment) and s.matches(labels)]
        return {
            "id": row["id"], "rule": row["rule"], "kind": row["kind"],
            "container": row["subject"], "environment": row["environment"],
            "severity": row["severity"], "state": row["state"], "labels": labels,
            "value": row["value"], "message": row["message"],
            "description": row["description"],
            "started_at": iso_time(row["started_at"]), "fired_at": iso_time(row["fired_at"]),
            "resolved_at": iso_time(row["resolved_at"]),
            "notified": row["notified_at"] is not None,
            "acked": row["acked_by"] is not None, "acked_by": row["acked_by"],
            "acked_at": iso_time(row["acked_at"]),
            "silenced": bool(silenced_by), "silenced_by": silenced_by, "seq": row["seq"]}

    # -- the state machine ----------------------------------------------------------------

    def _next_seq(self) -> int:
        row = self._db.execute("UPDATE counter SET seq = seq + 1 RETURNING seq").fetchone()
        return int(row[0])

    def apply(self, rules: Sequence[AlertRule], environment: str,
              found: Mapping[str, Sequence[Finding]], now: float) -> list[Notification]:
        """Move every alert of ``environment`` on by one evaluation round.

        Parameters
        ----------
        rules
            The rules in force; active alerts of other rules resolve.
        environment
            Whose alerts.
        found
            Per rule name, the subjects whose condition holds now.
        now
            Unix seconds of the round.

        Returns
        -------
        list of Notification
            What to deliver, in order.
        """
        by_name = {rule.name: rule for rule in rules}
        silences = [s for s in self.silences(now=now) if s.active(now)]
        out: list[tuple[str, int]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                active = {(row[1], row[2]): row for row in self._db.execute(
                    "SELECT id, rule, subject, state, started_at, notified_at, acked_by,"
                    " labels, cleared_at FROM alerts WHERE environment = ? AND state IN"
                    " ('pending', 'firing')", (environment,))}
                for rule_name, findings in found.items():
                    rule = by_name[rule_name]
                    for finding in findings:
                        row = active.pop((rule_name, finding.subject), None)
                        note = self._holds(rule, environment, finding, row, now, silences)
                        if note is not None:
                            out.append(note)
                for row in active.values():  # no longer holds (or its rule is gone)
                    gone = by_name.get(row[1])
                    note = self._ends(row, now, 0.0 if gone is None else gone.keep_firing_for)
                    if note is not None:
                        out.append(note)
                self._db.execute("DELETE FROM alerts WHERE state = 'resolved' AND "
                                 "resolved_at < ?", (now - self.keep_resolved,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        notes = []
        for status, alert_id in out:
            shown = self.alert(alert_id)
            if shown is not None:
                notes.append(Notification(status, shown))
        return notes

    def _holds(self, rule: AlertRule, environment: str, finding: Finding,
               row: tuple[Any, ...] | None, now: float,
               silences: Sequence[Silence]) -> tuple[str, int] | None:
        """The condition holds for ``finding``: start, keep or fire its alert."""
        if row is None:
            labels = alert_labels(rule, finding.subject, environment)
            cursor = self._db.execute(
                "INSERT INTO alerts (rule, kind, subject, environment, severity, state,"
                " labels, value, message, description, started_at, seq) VALUES"
                " (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (rule.name, rule.kind, finding.subject, environment, rule.severity,
                 json.dumps(labels, sort_keys=True), finding.value, finding.message,
                 rule.description, now, self._next_seq()))
            alert_id = int(cursor.lastrowid or 0)
            state, started, notified, acked = "pending", now, None, None
        else:
            alert_id, _, _, state, started, notified, acked, labels_text, _ = row
            labels = json.loads(labels_text)
            self._db.execute("UPDATE alerts SET value = ?, message = ?, cleared_at = NULL"
                             " WHERE id = ?", (finding.value, finding.message, alert_id))
        silenced = any(s.matches(labels) for s in silences)
        if state == "pending":
            if now - started < rule.for_:
                return None
            self._db.execute("UPDATE alerts SET state = 'firing', fired_at = ?, seq = ?"
                             " WHERE id = ?", (now, self._next_seq(), alert_id))
        elif notified is not None and (rule.repeat is None or acked is not None
                                       or now - notified < rule.repeat):
            return None  # firing, told already: no storm
        if silenced:
            return None  # told when the silence ends, if it still fires
        self._db.execute("UPDATE alerts SET notified_at = ?, seq = ? WHERE id = ?",
                         (now, self._next_seq(), alert_id))
        return "firing", alert_id

    def _ends(self, row: tuple[Any, ...], now: float, keep: float) -> tuple[str, int] | None:
        """The condition no longer holds: a pending alert goes quietly, a firing one
        resolves (notified if its firing was) once absent for ``keep`` seconds."""
        alert_id, _, _, state, _, notified, _, _, cleared = row
        if state == "pending":
            self._db.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))
            return None
        if keep > 0 and (cleared is None or now - cleared < keep):
            if cleared is None:
                self._db.execute("UPDATE alerts SET cleared_at = ? WHERE id = ?",
                                 (now, alert_id))
            return None
        self._db.execute("UPDATE alerts SET state = 'resolved', resolved_at = ?, seq = ?"
                         " WHERE id = ?", (now, self._next_seq(), alert_id))
        return ("resolved", alert_id) if notified is not None else None

    # -- acknowledging and silencing -------------------------------------------------------

    def acknowledge(self, alert_id: int, by: str, *, now: float | None = None
                    ) -> dict[str, Any] | None:
        """Mark a pending or firing alert as acknowledged by ``by``: it is not notified
        again (its resolution still is). None if no such alert; a resolved alert is
        returned unchanged."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND state IN"
                " ('pending', 'firing') AND acked_by IS NULL",
                (by, time.time() if now is None else now, alert_id))
            if cursor.rowcount:  # a change the feed's long poll must see
                self._db.execute("UPDATE alerts SET seq = ? WHERE id = ?",
                                 (self._next_seq(), alert_id))
        return self.alert(alert_id)

    def add_silence(self, matchers: Mapping[str, str], ends_at: float, *,
                    starts_at: float | None = None, comment: str = "",
                    created_by: str = "") -> Silence:
        """Store a silence and return it (with its new id).

        Raises
        ------
        ValueError
            No matchers, or an end before the start.
        """
        start = time.time() if starts_at is None else starts_at
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= start:
            raise ValueError("a silence must end after it starts")
        silence = Silence(uuid.uuid4().hex[:12], dict(matchers), start, ends_at, comment,
                          created_by)
        with self._lock:
            self._db.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                             (silence.id, json.dumps(silence.matchers, sort_keys=True),
                              start, ends_at, comment, created_by))
            self._next_seq()  # the alerts it matches show as silenced now
        return silence

    def silences(self, *, now: float | None = None) -> list[Silence]:
        """The silences not yet over at ``now`` (default: all stored), soonest end
        first."""
        rows = self._db.execute(
            "SELECT id, matchers, starts_at, ends_at, comment, created_by FROM silences"
            " WHERE ends_at > ? ORDER BY ends_at",
            (-1.0 if now is None else now,)).fetchall()
        return [Silence(row[0], json.loads(row[1]), row[2], row[3], row[4], row[5])
                for row in rows]

    def remove_silence(self, silence_id: str) -> bool:
        """Delete a silence; whether there was one."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM silences WHERE id = ?", (silence_id,))
            if cursor.rowcount:
                self._next_seq()
        return bool(cursor.rowcount)
