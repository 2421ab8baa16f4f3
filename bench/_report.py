"""The table (absolute numbers, ratios vs the raw floor and vs aiodocker) and the targets."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from typing import Any

from ._clients import AIODOCKER, GHOSTPANEL, RAW, RAW_ASYNC, RAW_SOCKET
from ._scenarios import Result

GP_BATCHES = "ghostpanel log_batches"
CANDIDATE = "ghostpanel candidate"



def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank ``fraction`` percentile of ``values`` (0.99: p99), rounded down.

    Examples
    --------
    >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5)
    3.0
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` gives them (Linux):
    a report says how busy the machine was, since that moves every figure."""
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def run_line(engine: str) -> str:
    """``date: ... UTC  python=3.11.2  cpus=2  engine=Podman 4.3.1``: when and on what a
    script measured, the first line under its report's heading."""
    return (f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
            f"python={platform.python_version()}  cpus={os.cpu_count()}  engine={engine}")


#: The floor each scenario's "vs raw" column divides by.
REFERENCE = {"ping": RAW_SOCKET, "in flight": RAW_ASYNC, "list": RAW, "logs": RAW}


def _fmt(value: float, unit: str) -> str:
    if unit.startswith("ms"):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit in ("req/s", "lines/s"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _ratio(row: Result, ref: Result | None) -> str:
    if ref is None or ref is row or not ref.samples:
        return "" if ref is not row else "1.00x"
    return f"{row.paired_ratio(ref):.2f}x"


def _reference(rows: Sequence[Result], name: str) -> Result | None:
    return next((r for r in rows if r.client == name), None)


def table(results: Sequence[Result]) -> str:
    """Markdown table: one section per scenario/case, ratios as value / reference value."""
    lines = ["| scenario | client | median | unit | min..max | vs raw | vs aiodocker | note |",
             "|---|---|---:|---|---|---:|---:|---|"]
    groups: dict[tuple[str, str], list[Result]] = {}
    for row in results:
        if row.scenario == "import":
            continue
        groups.setdefault((row.scenario, row.case), []).append(row)
    for (scenario, case), rows in groups.items():
        raw = _reference(rows, REFERENCE.get(scenario, RAW))
        aio = _reference(rows, AIODOCKER)
        for row in rows:
            low, high = row.spread
            lines.append(
                f"| {scenario}: {case} | {row.client} | {_fmt(row.median, row.unit)} | "
                f"{row.unit} ({row.better} is better) | "
                f"{_fmt(low, row.unit)}..{_fmt(high, row.unit)} | "
                f"{_ratio(row, raw)} | {_ratio(row, aio)} | {row.note} |")
    return "\n".join(lines)


def import_table(results: Sequence[Result]) -> str:
    rows: dict[str, dict[str, Result]] = {}
    for row in results:
        if row.scenario == "import":
            rows.setdefault(row.case, {})[row.unit] = row
    lines = ["| statement | import time ms (median, min..max) | RSS added MiB | RSS total MiB |",
             "|---|---:|---:|---:|"]
    for case, by_unit in rows.items():
        t, added, total = by_unit["ms"], by_unit["MiB RSS added"], by_unit["MiB RSS total"]
        lines.append(f"| `{case}` | {t.median:.1f} ({t.spread[0]:.1f}..{t.spread[1]:.1f}) | "
                     f"{added.median:.2f} | {total.median:.2f} |")
    return "\n".join(lines)


def _find(results: Sequence[Result], scenario: str, case: str | None, client: str,
          unit: str | None = None) -> Result | None:
    for row in results:
        if row.scenario == scenario and row.client == client and \
                (case is None or row.case == case) and (unit is None or row.unit == unit):
            return row
    return None


def targets(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Each target of the issue: the numbers it compares and whether it is met."""
    checks: list[dict[str, Any]] = []

    def add(name: str, met: bool | None, detail: str) -> None:
        checks.append({"target": name, "met": met, "detail": detail})

    gp_clients = [c for c in (GHOSTPANEL, CANDIDATE) if any(r.client == c for r in results)]
    aio = _find(results, "ping", None, AIODOCKER)
    raw_sock = _find(results, "ping", None, RAW_SOCKET)
    raw_async = _find(results, "ping", None, RAW_ASYNC)
    raw_http = _find(results, "ping", None, RAW)
    for client in gp_clients:
        gp = _find(results, "ping", None, client)
        if gp and aio:
            ratio = gp.paired_ratio(aio)
            add(f"ping: {client} <= aiodocker", ratio <= 1.0,
                f"{gp.median:.3f} ms vs {aio.median:.3f} ms (paired ratio {ratio:.2f}x)")
        if gp and raw_sock:
            others = "".join(f"; vs {ref.client} {gp.paired_ratio(ref):.2f}x"
                             for ref in (raw_async, raw_http) if ref)
            ratio = gp.paired_ratio(raw_sock)
            add(f"ping: {client} <= 1.5x raw socket (aim)", ratio <= 1.5,
                f"{gp.median:.3f} ms vs {raw_sock.median:.3f} ms ({ratio:.2f}x){others}")

    width = next((r.case for r in results if r.scenario == "in flight"
                  and not r.case.startswith("sequential")), None)
    aio_c = _find(results, "in flight", width, AIODOCKER)
    for client in gp_clients:
        gp_c = _find(results, "in flight", width, client)
        gp_s = _find(results, "in flight", "sequential (1 in flight)", client)
        if gp_c and aio_c:
            ratio = gp_c.paired_ratio(aio_c)
            add(f"{width}: {client} >= aiodocker", ratio >= 1.0,
                f"{gp_c.median:,.0f} vs {aio_c.median:,.0f} req/s (paired ratio {ratio:.2f}x)")
        if gp_c and gp_s and len(gp_c.samples) == len(gp_s.samples):
            ratios = [a / b for a, b in zip(gp_c.samples, gp_s.samples, strict=True)]
            add(f"{width}: {client} never below its sequential rate", min(ratios) >= 1.0,
                f"in flight / sequential, same round: median {gp_c.paired_ratio(gp_s):.2f}x, "
                f"worst round {min(ratios):.2f}x ({gp_c.median:,.0f} vs {gp_s.median:,.0f} "
                "req/s)")

    for row in results:
        if row.scenario == "list" and row.client in gp_clients:
            ref = _find(results, "list", row.case, RAW)
            if ref:
                ratio = row.paired_ratio(ref)
                add(f"list {row.case}: {row.client} within 5% of raw", ratio <= 1.05,
                    f"{row.median:.3f} vs {ref.median:.3f} ms (paired ratio {ratio:.3f}x)")

    ref = _find(results, "logs", None, RAW)
    for client in (GHOSTPANEL, GP_BATCHES, CANDIDATE, CANDIDATE + " log_batches"):
        row = _find(results, "logs", None, client)
        if row and ref:
            ratio = row.paired_ratio(ref)
            add(f"logs: {client} >= raw http.client", ratio >= 1.0,
                f"{row.median:,.0f} vs {ref.median:,.0f} lines/s (paired ratio {ratio:.2f}x)")

    for case in ("import ghostpanel_kernel", "from ghostpanel_kernel import connect",
                 "import ghostpanel_kernel.engine", "candidate: import ghostpanel_kernel",
                 "candidate: from ghostpanel_kernel import connect",
                 "candidate: import ghostpanel_kernel.engine"):
        t = _find(results, "import", case, "", "ms")
        m = _find(results, "import", case, "", "MiB RSS added")
        if t and m:
            add(f"`{case}`: <= 80 ms and <= +20 MiB", t.median <= 80 and m.median <= 20,
                f"{t.median:.1f} ms ({'met' if t.median <= 80 else 'over'}), "
                f"+{m.median:.2f} MiB ({'met' if m.median <= 20 else 'over'})")
    return checks


def targets_text(checks: Sequence[dict[str, Any]]) -> str:
    lines = []
    for check in checks:
        mark = {True: "MET", False: "NOT MET", None: "n/a"}[check["met"]]
        lines.append(f"- [{mark}] {check['target']}: {check['detail']}")
    return "\n".join(lines)
