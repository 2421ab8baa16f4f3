"""History rows to a tidy DataFrame with numpy (the store's notebook side).

Imported only by :meth:`MetricsStore.samples`: the agent never loads numpy or pandas.
Raw rounds are decoded with ``numpy.frombuffer`` (no per-sample Python objects), and
rollup rows go through one record array; stepped history is grouped by pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["history_frame"]

#: Columns of every part once decoded: stored (or bucket) time, series id, then the
#: mean, max, min and count that a rollup row keeps (a raw value is all three, count 1).
_ROLLUP = np.dtype([("time", "f8"), ("series", "i8"), ("mean", "f8"), ("max", "f8"),
                    ("min", "f8"), ("count", "f8")])


def _raw_columns(rounds: list[Any], ids: set[int] | None) -> dict[str, np.ndarray]:
    if not rounds:
        return {name: np.empty(0, dtype=_ROLLUP[name]) for name in _ROLLUP.names or ()}
    series = [np.frombuffer(row[1], dtype=np.int32) for row in rounds]
    values = np.concatenate([np.frombuffer(row[2], dtype=np.float64) for row in rounds])
    times = np.repeat(np.array([row[0] for row in rounds], dtype=np.float64),
                      [len(part) for part in series])
    sids = np.concatenate(series).astype(np.int64)
    if ids is not None:
        keep = np.isin(sids, np.fromiter(ids, dtype=np.int64, count=len(ids)))
        times, sids, values = times[keep], sids[keep], values[keep]
    known = ~np.isnan(values)
    return {"time": times, "series": sids, "mean": values, "max": values, "min": values,
            "count": known.astype(np.float64)}


def _rollup_columns(rows: list[Any]) -> dict[str, np.ndarray]:
    table = np.fromiter(
        ((r[0], r[1], *(np.nan if v is None else v for v in r[2:])) for r in rows),
        dtype=_ROLLUP, count=len(rows))
    return {name: table[name] for name in _ROLLUP.names or ()}


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                         "environment": pd.Categorical([]), "container": pd.Categorical([]),
                         "metric": pd.Categorical([]),
                         "value": pd.Series([], dtype="float64")})


def _stepped(columns: dict[str, np.ndarray], width: float) -> dict[str, np.ndarray]:
    """Group into ``width``-second buckets per series, weighting means by count."""
    valid = columns["count"] > 0
    frame = pd.DataFrame({
        "time": np.floor(columns["time"][valid] / width) * width,
        "series": columns["series"][valid],
        "weighted": columns["mean"][valid] * columns["count"][valid],
        "max": columns["max"][valid], "min": columns["min"][valid],
        "count": columns["count"][valid]})
    grouped = frame.groupby(["time", "series"], sort=True).agg(
        weighted=("weighted", "sum"), max=("max", "max"), min=("min", "min"),
        count=("count", "sum")).reset_index()
    return {"time": grouped["time"].to_numpy(), "series": grouped["series"].to_numpy(),
            "mean": (grouped["weighted"] / grouped["count"]).to_numpy(),
            "max": grouped["max"].to_numpy(), "min": grouped["min"].to_numpy(),
            "count": grouped["count"].to_numpy()}


def history_frame(parts: list[tuple[str, list[Any]]], ids: set[int] | None,
                  labels: dict[int, tuple[str, str, str]], width: float | None,
                  aggregate: str) -> pd.DataFrame:
    """The tidy DataFrame of :meth:`MetricsStore.samples` from what it read.

    Parameters
    ----------
    parts
        Each segment's table name and stored rows (raw rounds or rollup rows).
    ids
        The series selected (raw rounds hold every series); None for all.
    labels
        Every series' (environment, container, metric).
    width
        Bucket width in seconds; None for the rows as stored.
    aggregate
        ``mean``, ``max``, ``min`` or ``count``: the column each row's value is.
    """
    decoded = [_raw_columns(rows, ids) if table == "raw" else _rollup_columns(rows)
               for table, rows in parts]
    if not decoded:
        return _empty()
    columns = {name: np.concatenate([part[name] for part in decoded])
               for name in _ROLLUP.names or ()}
    if width is not None:
        columns = _stepped(columns, width)
    if len(columns["time"]) == 0:
        return _empty()
    value = columns[aggregate]
    if aggregate != "count":
        value = np.where(columns["count"] > 0, value, np.nan)
    known = np.array(sorted(labels), dtype=np.int64)
    position = np.searchsorted(known, columns["series"])
    frame: dict[str, Any] = {"time": pd.to_datetime(columns["time"], unit="s", utc=True)}
    for index, name in enumerate(("environment", "container", "metric")):
        names = [labels[int(i)][index] for i in known]
        categories = sorted(set(names))
        code_of = {label: code for code, label in enumerate(categories)}
        codes = np.array([code_of[label] for label in names], dtype=np.int32)
        frame[name] = pd.Categorical.from_codes(codes[position], pd.Index(categories))
    frame["value"] = value.astype(np.float64)
    return pd.DataFrame(frame)
