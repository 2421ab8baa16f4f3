"""Fleet health over a metrics history: percentiles, right-sizing, leaks, restart loops.

Pure functions of the tidy frames that :func:`~ghostpanel_kernel.metrics.history`
and ``env.metrics.events()`` return, so the fleet-health notebook, the Voila
dashboard and a user's own cells compute the same numbers, and the tests check them
without an engine. They read like the agent's built-in alert kinds
(``_alert_builtin``: least-squares growth, restarts as the larger of the ``die`` and
``restart`` counts) but over pandas, for a whole history at once.

Imports pandas: reached only from code that already holds a frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from ._names import CPU_CORES, MEMORY_LIMIT_BYTES, MEMORY_WORKING_SET_BYTES
from ._time import parse_duration

__all__ = ["memory_leaks", "restart_loops", "right_size", "usage_percentiles"]

_BY: Final = ("environment", "container")
_MIB: Final = 1024.0 ** 2
#: Recommendations are rounded up to these steps: a twentieth of a core, 16 MiB.
CPU_STEP: Final = 0.05
MEMORY_STEP: Final = 16 * _MIB


def _series(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    part = frame[frame["metric"] == metric]
    return pd.DataFrame({"environment": part["environment"].astype(str),
                         "container": part["container"].astype(str),
                         "time": part["time"], "value": part["value"].astype("float64")})


def usage_percentiles(frame: pd.DataFrame, *,
                      metrics: Sequence[str] = (CPU_CORES, MEMORY_WORKING_SET_BYTES),
                      quantiles: Sequence[float] = (0.5, 0.95),
                      by: Sequence[str] = _BY) -> pd.DataFrame:
    """Percentiles of each metric per group (container, or environment).

    Parameters
    ----------
    frame
        A tidy history (``time, environment, container, metric, value``).
    metrics
        The metrics to summarise.
    quantiles
        Between 0 and 1; a column ``{metric}_p{100 q}`` each (``cpu_cores_p95``).
    by
        The grouping columns: per container by default, ``["environment"]`` for a
        whole host's samples pooled.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``by``; plus ``samples`` (the rows of the first metric).

    Examples
    --------
    >>> usage_percentiles(frame, by=["environment"])["cpu_cores_p95"]   # doctest: +SKIP
    """
    for q in quantiles:
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile is between 0 and 1, not {q}")
    keys = list(by)
    columns: dict[str, pd.Series] = {}
    for metric in metrics:
        grouped = _series(frame, metric).groupby(keys, observed=True, sort=True)["value"]
        if metric == metrics[0]:
            columns["samples"] = grouped.size()
        for q in quantiles:
            columns[f"{metric}_p{100 * q:g}"] = grouped.quantile(q)
    if not columns:
        return pd.DataFrame()
    return pd.DataFrame(columns).rename_axis(keys)


def _round_up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step if value > 0 else step


def right_size(frame: pd.DataFrame, *, quantile: float = 0.95,
               headroom: float = 0.25) -> pd.DataFrame:
    """Recommended CPU and memory limits per container, from a high percentile of use.

    The recommendation is the ``quantile`` of the container's use plus ``headroom``
    (a fraction), rounded up to :data:`CPU_STEP` cores and :data:`MEMORY_STEP` bytes:
    the 95th percentile leaves the rare peaks out, the headroom gives them room.
    Memory is the working set (what the kernel cannot reclaim: what an OOM kill
    counts), compared with the container's current limit (``memory_limit_bytes``,
    0 = none).

    Returns
    -------
    pandas.DataFrame
        Per ``environment, container``: ``cpu_cores_p{q}``, ``cpu_recommended``,
        ``memory_p{q}``, ``memory_limit`` (current, NaN for none), ``memory_recommended``,
        ``memory_change`` (recommended / current; NaN without a limit) and ``verdict``:
        ``set a limit``, ``too tight`` (use above 90 % of the limit), ``oversized``
        (recommended under half the limit) or ``ok``.
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], not {quantile}")
    if headroom < 0:
        raise ValueError(f"headroom is a fraction >= 0, not {headroom}")
    label = f"p{100 * quantile:g}"
    cpu = _series(frame, CPU_CORES).groupby(list(_BY), observed=True)["value"] \
        .quantile(quantile)
    memory = _series(frame, MEMORY_WORKING_SET_BYTES).groupby(list(_BY), observed=True)[
        "value"].quantile(quantile)
    limits = _series(frame, MEMORY_LIMIT_BYTES).sort_values("time") \
        .groupby(list(_BY), observed=True)["value"].last()
    table = pd.DataFrame({f"cpu_cores_{label}": cpu, f"memory_{label}": memory})
    table["memory_limit"] = limits.reindex(table.index).replace(0.0, np.nan)
    table["cpu_recommended"] = [
        _round_up(value * (1 + headroom), CPU_STEP) if not math.isnan(value) else np.nan
        for value in table[f"cpu_cores_{label}"]]
    table["memory_recommended"] = [
        _round_up(value * (1 + headroom), MEMORY_STEP) if not math.isnan(value) else np.nan
        for value in table[f"memory_{label}"]]
    table["memory_change"] = table["memory_recommended"] / table["memory_limit"]

    def verdict(row: pd.Series) -> str:
        limit, used = row["memory_limit"], row[f"memory_{label}"]
        if math.isnan(limit):
            return "set a limit"
        if used > 0.9 * limit:
            return "too tight"
        if row["memory_recommended"] < 0.5 * limit:
            return "oversized"
        return "ok"

    table["verdict"] = [verdict(row) for _, row in table.iterrows()] if len(table) else []
    return table[[f"cpu_cores_{label}", "cpu_recommended", f"memory_{label}",
                  "memory_limit", "memory_recommended", "memory_change", "verdict"]]


def memory_leaks(frame: pd.DataFrame, *, min_rate: float = 10 * _MIB,
                 min_fit: float = 0.8, min_samples: int = 5) -> pd.DataFrame:
    """Containers whose working set grows steadily: a straight-line fit per container.

    Parameters
    ----------
    frame
        A tidy history.
    min_rate
        Growth, in bytes per hour, from which a container is flagged.
    min_fit
        The fit's R² from which the growth counts as steady (a sawtooth of garbage
        collections or one jump fits badly, a leak well).
    min_samples
        Fewer working-set samples than this say nothing.

    Returns
    -------
    pandas.DataFrame
        Per ``environment, container`` with enough samples: ``growth_per_hour``
        (bytes), ``fit`` (R²), ``first``, ``last`` (bytes), ``samples`` and ``leak``
        (bool), the fastest growth first.
    """
    rows = []
    for (environment, container), part in _series(frame, MEMORY_WORKING_SET_BYTES) \
            .groupby(list(_BY), observed=True, sort=True):
        part = part.sort_values("time")
        if len(part) < min_samples:
            continue
        hours = (part["time"] - part["time"].iloc[0]).dt.total_seconds().to_numpy() / 3600
        values = part["value"].to_numpy()
        if np.ptp(hours) == 0:
            continue
        slope, intercept = np.polyfit(hours, values, 1)
        predicted = slope * hours + intercept
        total = float(((values - values.mean()) ** 2).sum())
        fit = 1.0 - float(((values - predicted) ** 2).sum()) / total if total > 0 else 0.0
        rows.append({"environment": environment, "container": container,
                     "growth_per_hour": float(slope), "fit": fit,
                     "first": float(values[0]), "last": float(values[-1]),
                     "samples": len(values),
                     "leak": bool(slope >= min_rate and fit >= min_fit)})
    columns = ["environment", "container", "growth_per_hour", "fit", "first", "last",
               "samples", "leak"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("growth_per_hour", ascending=False, ignore_index=True)


def restart_loops(events: pd.DataFrame, *, window: str | float = "10m",
                  min_restarts: int = 3) -> pd.DataFrame:
    """Containers that restarted ``min_restarts`` times or more within ``window``.

    An engine may send ``die`` and ``restart`` for one crash, or only one of them: the
    restarts in a window are the larger of the two counts, never their sum.

    Returns
    -------
    pandas.DataFrame
        Per ``environment, container`` that died or restarted: ``restarts`` (the most
        in any ``window``), ``worst_window_end`` (when that window ended), ``deaths``
        (all ``die`` events), ``last_exit_code`` and ``loop`` (bool), loops first.
    """
    seconds = parse_duration(window)
    rows = []
    crashes = events[events["kind"].isin(["die", "restart"])]
    for (environment, container), part in crashes.groupby(
            [crashes["environment"].astype(str), crashes["container"].astype(str)],
            sort=True):
        part = part.sort_values("time", kind="stable")
        worst, worst_end = 0, part["time"].iloc[-1]
        for kind in ("die", "restart"):
            times = part.loc[part["kind"] == kind, "time"]
            if times.empty:
                continue
            counts = pd.Series(1, index=pd.DatetimeIndex(times)).rolling(
                f"{seconds:g}s").sum()
            if int(counts.max()) > worst:
                worst, worst_end = int(counts.max()), counts.idxmax()
        dies = part[part["kind"] == "die"]
        codes = dies["exit_code"].dropna()
        rows.append({"environment": environment, "container": container,
                     "restarts": worst, "worst_window_end": worst_end,
                     "deaths": len(dies),
                     "last_exit_code": int(codes.iloc[-1]) if len(codes) else pd.NA,
                     "loop": worst >= min_restarts})
    columns = ["environment", "container", "restarts", "worst_window_end", "deaths",
               "last_exit_code", "loop"]
    table = pd.DataFrame(rows, columns=columns)
    table["last_exit_code"] = table["last_exit_code"].astype("Int64")
    return table.sort_values(["loop", "restarts"], ascending=False, ignore_index=True)
