"""The metrics history: :class:`MetricsStore`, one SQLite file (docs/metrics.md).

SQLite (the stdlib's ``sqlite3``) rather than a columnar format, on measurement
(``bench/metrics_store.py``, figures in docs/metrics.md): the agent appends a few
hundred rows every 10 s within a 50 MB memory budget, which rules out loading pyarrow
or DuckDB there, and a million samples still come back as a DataFrame in well under a
second. pandas is imported only by the methods that return DataFrames.

Writes and reads share one connection behind a lock, so a store can be used from the
agent's event loop (through worker threads) and from other threads alike; WAL mode lets
other processes (``ghostpanel metrics export``, a notebook) read while the agent writes.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._chunks import Buckets, decode, encode
from ._names import ContainerEvent, Sample
from ._query import AGGREGATES, Segment, plan, segment_sql
from ._retention import RetentionPolicy
from ._schema import ROLLUP_TABLES, SCHEMA
from ._time import TimeLike, parse_duration, parse_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DB_NAME", "HistoryRow", "HistoryTooLarge", "MetricsStore", "default_metrics_dir"]

#: The file the store keeps in its folder.
DB_NAME = "metrics.sqlite3"

#: One history row: (unix seconds, environment, container, metric, value).
HistoryRow = tuple[float, str, str, str, float | None]

#: The columns of :meth:`MetricsStore.rows` and :meth:`MetricsStore.samples`.
SAMPLE_COLUMNS = ("time", "environment", "container", "metric", "value")
#: The columns of :meth:`MetricsStore.event_rows` and :meth:`MetricsStore.events`.
EVENT_COLUMNS = ContainerEvent._fields


def default_metrics_dir() -> Path:
    """``<data_dir()>/metrics``: where a store lives when not told.

    Imported here, not at the top: the store's module pulls in SQLAlchemy, which the
    agent (that always passes its own folder) does without.
    """
    from ghostpanel_kernel.store._database import data_dir

    return data_dir() / "metrics"


@dataclass(frozen=True)
class _Found:
    """What :meth:`MetricsStore._read` found: the selected series (None: all), every
    series' (environment, container, metric), and each segment's stored rows."""

    ids: set[int] | None
    labels: dict[int, tuple[str, str, str]]
    parts: list[tuple[str, list[Any]]]


class HistoryTooLarge(ValueError):
    """A history answer would exceed the rows allowed (``max_rows``)."""


def _check_size(rows: int, max_rows: int | None) -> None:
    if max_rows is not None and rows > max_rows:
        raise HistoryTooLarge(f"the answer has more than {max_rows:,} rows: narrow the "
                              f"window (since/until), filter containers or metrics, or "
                              f"give a step")


def _strings(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class MetricsStore:
    """Container metrics and events over time, in one SQLite file.

    Parameters
    ----------
    path
        The folder holding ``metrics.sqlite3`` (created when missing); None for
        :func:`default_metrics_dir`. A path ending in ``.sqlite3`` or ``.db`` is taken
        as the file itself.
    retention
        How long each resolution is kept (see :meth:`downsample`).

    Examples
    --------
    >>> store = MetricsStore(tmp_path)                                  # doctest: +SKIP
    >>> store.write([Sample(time.time(), "local", "web", "0123", "nginx",
    ...                     "cpu_cores", 0.25)])                         # doctest: +SKIP
    >>> store.samples(since="1h", metrics="cpu_cores")                  # doctest: +SKIP
    """

    def __init__(self, path: Path | str | None = None, *,
                 retention: RetentionPolicy | None = None) -> None:
        folder = Path(path) if path is not None else default_metrics_dir()
        if folder.suffix in (".sqlite3", ".db"):
            self.file = folder
        else:
            self.file = folder / DB_NAME
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention or RetentionPolicy()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.file, check_same_thread=False,
                                   isolation_level=None, timeout=30.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # A crash can lose the last round, never corrupt the file: good enough for
            # samples, and it spares an fsync per round.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        self._series: dict[tuple[str, str, str, str, str], int] = {}

    # -- writing ----------------------------------------------------------------------

    def _series_id(self, environment: str, container: str, container_id: str, image: str,
                   metric: str) -> int:
        key = (environment, container_id, metric, container, image)
        found = self._series.get(key)
        if found is not None:
            return found
        self._db.execute("INSERT OR IGNORE INTO series (environment, container, "
                         "container_id, image, metric) VALUES (?, ?, ?, ?, ?)",
                         (environment, container, container_id, image, metric))
        row = self._db.execute(
            "SELECT id FROM series WHERE environment = ? AND container_id = ? AND "
            "metric = ? AND container = ? AND image = ?", key).fetchone()
        self._series[key] = int(row[0])
        return int(row[0])

    def write(self, samples: Iterable[Sample]) -> int:
        """Append samples, one stored round per distinct time; return how many were
        written."""
        rounds: dict[float, tuple[list[int], list[float]]] = {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                count = 0
                for s in samples:
                    ids, values = rounds.setdefault(float(s.time), ([], []))
                    ids.append(self._series_id(s.environment, s.container,
                                               s.container_id, s.image, s.metric))
                    values.append(float(s.value))
                    count += 1
                self._db.executemany(
                    "INSERT INTO raw (time, series, value) VALUES (?, ?, ?)",
                    [(when, *encode(ids, values))
                     for when, (ids, values) in rounds.items()])
            except BaseException:
                self._db.execute("ROLLBACK")
                self._series.clear()  # ids inserted in the rolled-back transaction
                raise
            self._db.execute("COMMIT")
        return count

    def write_events(self, events: Iterable[ContainerEvent]) -> int:
        """Append container events; return how many were written."""
        rows = [tuple(event) for event in events]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        return len(rows)

    # -- reading ----------------------------------------------------------------------

    def _series_ids(self, containers: list[str] | None, environments: list[str] | None,
                    metrics: list[str] | None) -> list[int] | None:
        """The series the filters select; None when there are no filters."""
        where: list[str] = []
        params: list[str] = []
        for column, values in (("container", containers), ("environment", environments),
                               ("metric", metrics)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if not where:
            return None
        sql = f"SELECT id FROM series WHERE {' AND '.join(where)}"
        return [int(row[0]) for row in self._db.execute(sql, params)]

    def _plan(self, since: float | None, until: float | None) -> list[Segment]:
        raw_begins, minute_begins = (
            self._db.execute(f"SELECT MIN(time) FROM {table}").fetchone()[0]
            for table in ("raw", "minute"))
        return plan(raw_begins, minute_begins, since, until)

    def _read(self, containers: str | Iterable[str] | None,
              environments: str | Iterable[str] | None,
              metrics: str | Iterable[str] | None, since: TimeLike | None,
              until: TimeLike | None, aggregate: str) -> _Found:
        """What a history window holds, segment by segment, as stored."""
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, "
                             f"got {aggregate!r}")
        now = _time.time()
        start = None if since is None else parse_time(since, now=now)
        end = None if until is None else parse_time(until, now=now)
        with self._lock:
            ids = self._series_ids(_strings(containers), _strings(environments),
                                   _strings(metrics))
            labels = {int(row[0]): (row[1], row[2], row[3]) for row in self._db.execute(
                "SELECT id, environment, container, metric FROM series")}
            parts: list[tuple[str, list[Any]]] = []
            if ids != []:
                for segment in self._plan(start, end):
                    sql, params = segment_sql(segment, ids)
                    parts.append((segment.table, self._db.execute(sql, params).fetchall()))
        return _Found(None if ids is None else set(ids), labels, parts)

    def rows(self, containers: str | Iterable[str] | None = None,
             environments: str | Iterable[str] | None = None,
             metrics: str | Iterable[str] | None = None, since: TimeLike | None = None,
             until: TimeLike | None = None, step: float | str | None = None,
             aggregate: str = "mean", max_rows: int | None = None) -> list[HistoryRow]:
        """History as plain tuples ``(time, environment, container, metric, value)``,
        in time order: what the agent serves, without pandas or numpy.

        Parameters
        ----------
        containers, environments, metrics
            Only these (a name or several); None for all.
        since, until
            The window ``[since, until)``: a datetime, unix seconds, ``"1h"`` (an hour
            ago), ISO 8601 text; None for unbounded.
        step
            Buckets of this many seconds (or ``"1m"``, ``"1h"``...), one row per series
            and bucket; None for the rows as stored (raw samples where they are still
            kept, 1-minute or 1-hour rollups before that).
        aggregate
            What a bucket, or a stored rollup row, gives: ``mean`` (weighted by
            count), ``max``, ``min`` or ``count``. Raw samples are their own value
            (count 1, or 0 when unknown).
        max_rows
            Refuse (:class:`HistoryTooLarge`) an answer of more rows than this, before
            building it all: the agent's bound on what one request may cost it.
        """
        found = self._read(containers, environments, metrics, since, until, aggregate)
        column = 2 + AGGREGATES.index(aggregate)
        labels = found.labels
        out: list[HistoryRow] = []
        if step is not None:
            buckets = Buckets(parse_duration(step))
            for table, stored in found.parts:
                for row in stored:
                    if table == "raw":
                        buckets.add_round(row[0], *decode(row[1], row[2]), found.ids)
                    else:
                        buckets.add(*row)
            cells = buckets.rows()
            _check_size(len(cells), max_rows)
            for cell in cells:
                environment, container, metric = labels[cell[1]]
                out.append((cell[0], environment, container, metric, cell[column]))
            return out
        for table, stored in found.parts:
            if table != "raw":
                _check_size(len(out) + len(stored), max_rows)
                for row in stored:
                    environment, container, metric = labels[row[1]]
                    out.append((row[0], environment, container, metric, row[column]))
                continue
            for when, series_blob, value_blob in stored:
                _check_size(len(out), max_rows)
                for sid, value in zip(*decode(series_blob, value_blob), strict=True):
                    if found.ids is not None and sid not in found.ids:
                        continue
                    known = not math.isnan(value)
                    environment, container, metric = labels[sid]
                    out.append((when, environment, container, metric,
                                (1 if known else 0) if aggregate == "count"
                                else (value if known else None)))
        _check_size(len(out), max_rows)
        return out

    def samples(self, containers: str | Iterable[str] | None = None,
                environments: str | Iterable[str] | None = None,
                metrics: str | Iterable[str] | None = None, since: TimeLike | None = None,
                until: TimeLike | None = None, step: float | str | None = None,
                aggregate: str = "mean") -> pd.DataFrame:
        """History as a tidy DataFrame: ``time`` (datetime64, UTC), ``environment``,
        ``container``, ``metric``, ``value``, in time order; the parameters as
        :meth:`rows`'s.

        The label columns are categoricals (a million rows name a few hundred series);
        unknown values are NaN.
        """
        from ._frame_build import history_frame

        found = self._read(containers, environments, metrics, since, until, aggregate)
        width = None if step is None else parse_duration(step)
        return history_frame(found.parts, found.ids, found.labels, width, aggregate)

    def event_rows(self, containers: str | Iterable[str] | None = None,
                   environments: str | Iterable[str] | None = None,
                   kinds: str | Iterable[str] | None = None, since: TimeLike | None = None,
                   until: TimeLike | None = None) -> list[ContainerEvent]:
        """Container events in time order, as :class:`ContainerEvent` tuples; the
        filters as :meth:`rows`'s, ``kinds`` among start, die, restart, oom, health,
        destroy."""
        now = _time.time()
        where: list[str] = []
        params: list[object] = []
        for column, values in (("container", _strings(containers)),
                               ("environment", _strings(environments)),
                               ("kind", _strings(kinds))):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if since is not None:
            where.append("time >= ?")
            params.append(parse_time(since, now=now))
        if until is not None:
            where.append("time < ?")
            params.append(parse_time(until, now=now))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            found = self._db.execute(f"SELECT * FROM events{clause} ORDER BY time",
                                     params).fetchall()
        return [ContainerEvent(*row) for row in found]

    def events(self, containers: str | Iterable[str] | None = None,
               environments: str | Iterable[str] | None = None,
               kinds: str | Iterable[str] | None = None, since: TimeLike | None = None,
               until: TimeLike | None = None) -> pd.DataFrame:
        """Container events as a DataFrame (columns as :class:`ContainerEvent`'s,
        ``time`` as datetime64 UTC, ``exit_code`` as a nullable integer)."""
        import pandas as pd

        found = self.event_rows(containers, environments, kinds, since, until)
        frame = pd.DataFrame(found, columns=list(EVENT_COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
        frame["exit_code"] = frame["exit_code"].astype("Int64")
        return frame

    # -- retention --------------------------------------------------------------------

    def downsample(self, now: float | None = None) -> dict[str, int]:
        """Roll complete minutes up into 1-minute buckets and complete hours into 1-hour
        buckets (mean, max, min, count), then drop what the retention policy no longer
        keeps. Idempotent; the agent runs it every few minutes.

        Returns
        -------
        dict
            Rows added per rollup table and rows deleted per table.
        """
        current = _time.time() if now is None else now
        report: dict[str, int] = {}
        with self._lock:
            self._db.execute("BEGIN")
            source = "raw"
            for table, width in ROLLUP_TABLES:
                report[table] = self._roll_up(source, table, width, current)
                source = table
            keep = {"raw": self.retention.raw, "minute": self.retention.minute,
                    "hour": self.retention.hour, "events": self.retention.hour}
            for table, seconds in keep.items():
                # Cut at a whole hour, so the finer table begins on a bucket boundary
                # of the coarser one and the seam between them double-counts nothing.
                cutoff = math.floor((current - seconds) / 3600.0) * 3600.0
                deleted = self._db.execute(f"DELETE FROM {table} WHERE time < ?",
                                           (cutoff,)).rowcount
                report[f"{table}_deleted"] = deleted
            self._db.execute("COMMIT")
        return report

    def _roll_up(self, source: str, table: str, width: float, now: float) -> int:
        """Aggregate ``source`` rows of complete ``width`` buckets not rolled up yet."""
        mark_key = f"rolled_up:{table}"
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (mark_key,)).fetchone()
        done = float(row[0]) if row else None
        upto = math.floor(now / width) * width  # the current bucket is not complete
        if done is not None and done >= upto:
            return 0
        segment = Segment(source, done, upto)
        sql, params = segment_sql(segment, None)
        buckets = Buckets(width)
        for stored in self._db.execute(sql, params):
            if source == "raw":
                buckets.add_round(stored[0], *decode(stored[1], stored[2]), None)
            else:
                buckets.add(*stored)
        rolled = buckets.rows()
        self._db.executemany("INSERT OR REPLACE INTO " + table +
                             " (time, series, mean, max, min, count) "
                             "VALUES (?, ?, ?, ?, ?, ?)", rolled)
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (mark_key, upto))
        return len(rolled)

    # -- housekeeping -----------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes the store takes on disk (the database and its write-ahead log)."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            candidate = self.file.with_name(self.file.name + suffix)
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> MetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsStore {self.file}>"

