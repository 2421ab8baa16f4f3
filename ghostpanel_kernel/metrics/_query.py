"""Which stored table answers which part of a history window, and its SQL.

Each resolution covers the time before the next finer one begins: raw rounds where
they still exist, 1-minute buckets before the oldest raw round, 1-hour buckets before
the oldest 1-minute bucket. Downsampling rolls up eagerly, so coarser tables overlap
finer ones; reading each only where no finer one exists counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AGGREGATES", "Segment", "plan", "segment_sql"]

#: What ``aggregate`` may name: the rollup column it reads.
AGGREGATES = ("mean", "max", "min", "count")


@dataclass(frozen=True)
class Segment:
    """One table read over ``[start, end)`` (None: unbounded)."""

    table: str
    start: float | None
    end: float | None


def plan(raw_begins: float | None, minute_begins: float | None, since: float | None,
         until: float | None) -> list[Segment]:
    """The segments answering ``[since, until)``, oldest first, given where the raw and
    1-minute tables begin (None: empty)."""
    finer = [t for t in (raw_begins, minute_begins) if t is not None]
    bounds: list[tuple[str, float | None]] = [("hour", min(finer) if finer else None)]
    if minute_begins is not None:
        bounds.append(("minute", raw_begins))
    if raw_begins is not None:
        bounds.append(("raw", None))
    segments = []
    for table, end in bounds:
        high = end if until is None else (until if end is None else min(end, until))
        if since is not None and high is not None and since >= high:
            continue
        segments.append(Segment(table, since, high))
    return segments


def segment_sql(segment: Segment, series_ids: Sequence[int] | None
                ) -> tuple[str, list[object]]:
    """SQL for one segment, in time order: raw rounds ``(time, series blob, value
    blob)``, or rollup rows ``(time, series, mean, max, min, count)`` of the given
    series (None: all)."""
    where: list[str] = []
    params: list[object] = []
    if segment.start is not None:
        where.append("time >= ?")
        params.append(segment.start)
    if segment.end is not None:
        where.append("time < ?")
        params.append(segment.end)
    if segment.table == "raw":
        columns, order = "time, series, value", "time"
    else:
        columns, order = "time, series, mean, max, min, count", "time, series"
        if series_ids is not None:
            where.append(f"series IN ({','.join(str(int(i)) for i in series_ids)})")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {columns} FROM {segment.table}{clause} ORDER BY {order}", params
