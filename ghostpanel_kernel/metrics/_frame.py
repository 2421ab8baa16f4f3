"""``MetricsFrame``: the tidy pandas frame metrics history comes back as.

One row per sample, five columns: ``time`` (``datetime64[ns, UTC]``), ``environment``,
``container``, ``metric`` and ``value`` (float). Tidy rather than wide because the
metrics of one container are not sampled at the same moments once downsampled or
merged over several environments, and because ``groupby`` / ``pivot_table`` start
from it; :meth:`MetricsFrame.wide` gives one column per metric when that is wanted.

A history read over several environments keeps going when one of them fails: what
failed is in :attr:`MetricsFrame.failures` (``frame.attrs["failures"]``, name ->
message), so a notebook can show nine hosts and say which one was missing.

This module imports pandas: only :mod:`._history` imports it, inside the calls that
return frames, so the agent (which samples and serves ``/metrics``) never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

import pandas as pd

__all__ = ["COLUMNS", "EVENT_COLUMNS", "MetricsFrame", "as_metrics_frame", "concat_frames",
           "empty_frame", "events_from_columns", "frame_from_columns"]

#: The columns of a tidy history frame, in order.
COLUMNS: Final = ("time", "environment", "container", "metric", "value")
_INDEX: Final = ["time", "environment", "container"]
_TEXT: Final = ("environment", "container", "metric")
#: The columns of an events frame, in order (a :class:`ContainerEvent`'s fields).
EVENT_COLUMNS: Final = ("time", "environment", "container", "container_id", "kind",
                        "exit_code", "health")


class MetricsFrame(pd.DataFrame):
    """A tidy metrics history: ``time, environment, container, metric, value``.

    A :class:`pandas.DataFrame` in every way (slicing, ``groupby`` and ``query`` keep the
    type while the columns are there), with :meth:`wide` and :attr:`failures`.

    Examples
    --------
    >>> frame = MetricsFrame({"time": pd.to_datetime([0, 0], unit="s", utc=True),
    ...                       "environment": "lab", "container": "web",
    ...                       "metric": ["cpu_cores", "pids"], "value": [0.5, 3.0]})
    >>> frame.wide()["pids"].tolist()
    [3.0]
    """

    # Operations that build a new frame from this one build a MetricsFrame (see
    # "Subclassing pandas data structures" in the pandas docs); ``attrs`` (the
    # failures) travel with them by pandas' own rules.
    @property
    def _constructor(self) -> type[MetricsFrame]:
        return MetricsFrame

    @property
    def failures(self) -> dict[str, str]:
        """Environments whose history could not be read: name -> what went wrong."""
        failures = self.attrs.get("failures") or {}
        return dict(failures)

    def wide(self, *, aggregate: str = "mean") -> pd.DataFrame:
        """One column per metric, indexed by ``time, environment, container``.

        Parameters
        ----------
        aggregate
            How two values of one metric at the same time and container combine
            (``"mean"``, ``"max"``, ``"last"``...): there are none in a store's own
            rows, but frames concatenated by hand may hold some.

        Returns
        -------
        pandas.DataFrame
            Sorted by the index; a metric a container lacks at a time is NaN. The
            columns' name is ``metric``.
        """
        missing = [column for column in COLUMNS if column not in self.columns]
        if missing:
            raise ValueError(f"wide() needs the tidy columns; this frame lacks "
                             f"{', '.join(missing)}")
        plain = pd.DataFrame(self[list(COLUMNS)])
        if plain.empty:
            index = pd.MultiIndex.from_arrays(
                [pd.DatetimeIndex([], tz="UTC"), pd.Index([], dtype=object),
                 pd.Index([], dtype=object)], names=_INDEX)
            return pd.DataFrame(index=index, columns=pd.Index([], name="metric"),
                                dtype=float)
        wide = plain.pivot_table(index=_INDEX, columns="metric", values="value",
                                 aggfunc=cast(Any, aggregate), observed=True, sort=True)
        wide.columns = pd.Index(list(wide.columns), name="metric")
        return wide


def empty_frame(failures: Mapping[str, str] | None = None) -> MetricsFrame:
    """An empty history, with the tidy columns and their types."""
    frame = MetricsFrame({
        "time": pd.Series([], dtype="datetime64[ns, UTC]"),
        **{column: pd.Series([], dtype=object) for column in _TEXT},
        "value": pd.Series([], dtype="float64"),
    })
    frame.attrs["failures"] = dict(failures or {})
    return frame


def _times(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Times as ``datetime64[ns, UTC]``: unix seconds, ISO 8601 text or datetimes."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        moments = pd.to_datetime(series, utc=True)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        moments = pd.to_datetime(series.astype("float64"), unit="s", utc=True)
    else:
        moments = pd.to_datetime(series, utc=True, format="ISO8601")
    return moments.astype("datetime64[ns, UTC]")


def frame_from_columns(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                       environment: str | None = None) -> MetricsFrame:
    """A tidy frame from column names and rows (an agent's ``{"columns", "rows"}``).

    Parameters
    ----------
    columns
        The rows' column names; ``time``, ``container``, ``metric`` and ``value`` are
        needed, others (``image``, ``container_id``, downsampled ``max``...) are kept
        after the five tidy ones.
    rows
        One sequence per sample, in ``columns`` order.
    environment
        Fills the ``environment`` column when the rows carry none.

    Raises
    ------
    ValueError
        A needed column is missing.
    """
    raw = pd.DataFrame.from_records(cast(Any, list(rows)), columns=list(columns))
    needed = [c for c in COLUMNS if c not in raw.columns
              and not (c == "environment" and environment is not None)]
    if needed:
        raise ValueError(f"a metrics history needs the columns {', '.join(COLUMNS)}; "
                         f"missing: {', '.join(needed)}")
    if "environment" not in raw.columns:
        raw["environment"] = environment
    raw["time"] = _times(raw["time"])
    raw["value"] = pd.to_numeric(raw["value"], errors="coerce").astype("float64")
    extra = [c for c in raw.columns if c not in COLUMNS]
    frame = MetricsFrame(raw[[*COLUMNS, *extra]])
    frame.attrs["failures"] = {}
    return frame


def as_metrics_frame(frame: pd.DataFrame, *, environment: str | None = None) -> MetricsFrame:
    """``frame`` (a store's tidy DataFrame) as a :class:`MetricsFrame`, times in UTC."""
    if frame.empty and not len(frame.columns):
        return empty_frame()
    if "environment" not in frame.columns:
        frame = frame.assign(environment=environment)
    if not isinstance(frame["time"].dtype, pd.DatetimeTZDtype) or \
            str(frame["time"].dtype) != "datetime64[ns, UTC]":
        frame = frame.assign(time=_times(frame["time"]))
    extra = [c for c in frame.columns if c not in COLUMNS]
    result = MetricsFrame(frame[[*COLUMNS, *extra]])
    result.attrs["failures"] = {}
    return result


def concat_frames(frames: Sequence[pd.DataFrame],
                  failures: Mapping[str, str]) -> MetricsFrame:
    """Frames of several environments as one, sorted by time, with their failures."""
    useful = [frame for frame in frames if not frame.empty]
    if not useful:
        return empty_frame(failures)
    if len(useful) == 1:
        result = MetricsFrame(useful[0])  # a store's rows come in time order already
    else:
        # Each environment's rows are in time order; a stable sort on time alone
        # interleaves them and keeps each one's own order (a four-key sort costs ~1 s
        # per million rows, text keys being slow).
        joined = pd.concat(useful, ignore_index=True)
        result = MetricsFrame(joined.sort_values("time", kind="stable", ignore_index=True))
    result.attrs["failures"] = dict(failures)
    return result


def events_from_columns(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                        environment: str) -> pd.DataFrame:
    """Container events from column names and rows (a store's, or an agent's answer).

    ``environment`` names every row (an agent calls its own engine ``local``); times
    become UTC datetimes, ``exit_code`` a nullable integer. Columns the rows lack are
    empty; others are dropped.
    """
    raw = pd.DataFrame.from_records(cast(Any, list(rows)), columns=list(columns))
    for column in EVENT_COLUMNS:
        if column not in raw.columns:
            raw[column] = None
    raw["environment"] = environment
    raw["time"] = _times(raw["time"]) if len(raw) else \
        pd.Series([], dtype="datetime64[ns, UTC]")
    raw["exit_code"] = pd.to_numeric(raw["exit_code"], errors="coerce").astype("Int64")
    return raw[list(EVENT_COLUMNS)].reset_index(drop=True)
