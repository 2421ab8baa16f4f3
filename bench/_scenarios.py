"""The timed scenarios. Each returns :class:`Result` rows: every round's sample is kept,
the median is what the table shows.

Clients are measured round-robin (the order rotates each round) so that noise from
other work on the machine is spread over all of them instead of hitting one.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._clients import RAW_ASYNC, Adapter, RawAsyncio, call
from ._engine import BenchEngine, log


@dataclass
class Config:
    ping_rounds: int = 7
    ping_calls: int = 1000
    inflight_rounds: int = 5
    inflight_total: int = 5000
    inflight_width: int = 50
    list_sizes: tuple[int, ...] = (0, 50, 500)
    list_rounds: int = 5
    log_lines: int = 200_000
    log_rounds: int = 4
    import_reps: int = 10

    @classmethod
    def quick(cls) -> Config:
        return cls(ping_rounds=3, ping_calls=300, inflight_rounds=3, inflight_total=2000,
                   list_sizes=(0, 50), list_rounds=3, log_lines=50_000, log_rounds=3,
                   import_reps=5)


@dataclass
class Result:
    scenario: str
    case: str
    client: str
    unit: str
    better: str  # "lower" or "higher"
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def paired_ratio(self, ref: Result) -> float:
        """Median over rounds of (this round's value / the reference's same round).

        Clients of one round run back to back, so a per-round ratio cancels most of
        the load that other work puts on the machine; with unpaired samples it falls
        back to the ratio of the medians.
        """
        if len(self.samples) == len(ref.samples) and self.samples:
            return statistics.median(a / b for a, b in zip(self.samples, ref.samples, strict=True))
        return self.median / ref.median

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.samples), max(self.samples)


def _rotated(items: Sequence[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def _timed_sync(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


async def _timed_async(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return time.perf_counter() - start


async def _timed(adapter: Adapter, fn: Any, n: int) -> float:
    if adapter.is_async:
        return await _timed_async(fn, n)
    return _timed_sync(fn, n)


# -- ping ------------------------------------------------------------------------------

async def ping(adapters: Sequence[Adapter], cfg: Config) -> list[Result]:
    """Sequential ``GET /_ping`` on one keep-alive connection: milliseconds per call."""
    clients = [a for a in adapters if a.ping is not None]
    results = {a.name: Result("ping", "sequential", a.name, "ms/call", "lower")
               for a in clients}
    calls: dict[str, int] = {}
    for adapter in clients:  # warm-up (connect, negotiate, fill caches), then calibrate
        await _timed(adapter, adapter.ping, 50)
        per_call = await _timed(adapter, adapter.ping, 100) / 100
        # Slow clients get fewer calls per round (~0.4 s), so the run stays short.
        calls[adapter.name] = max(150, min(cfg.ping_calls, int(0.4 / per_call)))
    for round_no in range(cfg.ping_rounds):
        for adapter in _rotated(clients, round_no):
            n = calls[adapter.name]
            elapsed = await _timed(adapter, adapter.ping, n)
            results[adapter.name].samples.append(elapsed / n * 1000)
    for result in results.values():
        result.note = f"{calls[result.client]} calls x {cfg.ping_rounds} rounds"
    return list(results.values())


# -- requests in flight ------------------------------------------------------------------

async def _inflight_once(adapter: Adapter, width: int, per_worker: int) -> float:
    if isinstance(adapter, RawAsyncio):
        fns = [conn.ping for conn in await adapter.connections(width)]
    else:
        fns = [adapter.ping] * width

    async def worker(fn: Any) -> None:
        for _ in range(per_worker):
            await fn()

    start = time.perf_counter()
    await asyncio.gather(*(worker(fn) for fn in fns))
    return time.perf_counter() - start


async def inflight(adapters: Sequence[Adapter], cfg: Config) -> list[Result]:
    """``width`` workers each sending ``/_ping`` back to back: requests per second.

    Each round also times the same client sequentially (one request at a time) right
    before its in-flight run, so "never below sequential" is judged on paired rounds
    that saw the same load.
    """
    clients = [a for a in adapters if a.is_async and a.ping is not None]
    width = cfg.inflight_width
    most = max(4, cfg.inflight_total // width)
    results = {a.name: Result("in flight", f"{width} in flight", a.name, "req/s", "higher")
               for a in clients}
    sequential = {a.name: Result("in flight", "sequential (1 in flight)", a.name, "req/s",
                                 "higher") for a in clients}
    per_worker: dict[str, int] = {}
    seq_calls: dict[str, int] = {}
    for adapter in clients:  # warm-up (open the connections the pools keep), calibrate
        await _inflight_once(adapter, width, 4)
        rate = width * 4 / await _inflight_once(adapter, width, 4)
        # At most ~1 s per round for slow clients.
        per_worker[adapter.name] = max(4, min(most, int(rate / width)))
        per_call = await _timed(adapter, adapter.ping, 100) / 100
        seq_calls[adapter.name] = max(100, min(most * width // 4, int(0.3 / per_call)))
    for round_no in range(cfg.inflight_rounds):
        for adapter in _rotated(clients, round_no):
            n = seq_calls[adapter.name]
            elapsed = await _timed(adapter, adapter.ping, n)
            sequential[adapter.name].samples.append(n / elapsed)
            n = per_worker[adapter.name]
            elapsed = await _inflight_once(adapter, width, n)
            results[adapter.name].samples.append(width * n / elapsed)
    for result in results.values():
        result.note = (f"{width} x {per_worker[result.client]} requests x "
                       f"{cfg.inflight_rounds} rounds")
    for result in sequential.values():
        result.note = (f"{seq_calls[result.client]} calls, run just before the in-flight "
                       "run of the same round")
    return [*sequential.values(), *results.values()]


# -- listing ---------------------------------------------------------------------------

_LIST_CALLS = {0: 200, 50: 10, 500: 2}


async def listing(adapters: Sequence[Adapter], engine: BenchEngine, cfg: Config,
                  *, base_count: int) -> list[Result]:
    """``GET /containers/json?all=1`` (as each client lists): milliseconds per listing."""
    clients = [a for a in adapters if a.list_all is not None]
    results: list[Result] = []
    created = 0
    for size in cfg.list_sizes:
        if size > created:
            log(f"creating {size - created} containers (created, not started)")
            start = time.perf_counter()
            await engine.create_containers(size - created)
            log(f"  done in {time.perf_counter() - start:.1f} s")
            created = size
        expected = base_count + size
        calls = _LIST_CALLS.get(size, max(1, 1500 // max(size, 1)))
        case = f"{size} containers" + (f" (+{base_count} already there)" if base_count else "")
        rows = {a.name: Result("list", case, a.name, "ms/list", "lower") for a in clients}
        for adapter in clients:  # warm-up, and check every client sees them all
            count = await call(adapter, adapter.list_all)
            if count != expected:
                raise RuntimeError(f"{adapter.name} listed {count} containers, "
                                   f"expected {expected}")
        for round_no in range(cfg.list_rounds):
            for adapter in _rotated(clients, round_no):
                # docker-py inspects each container (N+1): one call per round is plenty.
                n = 1 if adapter.name == "docker-py" and size >= 50 else calls
                elapsed = await _timed(adapter, adapter.list_all, n)
                rows[adapter.name].samples.append(elapsed / n * 1000)
        for row in rows.values():
            if row.client == "docker-py":
                row.note = "containers.list(): sparse=False default, 1 + N inspects"
            elif row.client == "docker-py sparse":
                row.note = "containers.list(sparse=True): one request"
        results += rows.values()
    return results


# -- logs ------------------------------------------------------------------------------

async def logs(adapters: Sequence[Adapter], engine: BenchEngine, cfg: Config) -> list[Result]:
    """Read a stopped container's whole log (``follow=false``): lines per second."""
    clients = [a for a in adapters if a.logs is not None]
    lines = cfg.log_lines
    log(f"running a container that prints {lines:,} lines")
    (cid,) = await engine.create_containers(1, command=["seq", "1", str(lines)])
    status = await engine.start_and_wait(cid)
    if status != 0:
        raise RuntimeError(f"the log container exited with {status}")
    results = {a.name: Result("logs", f"{lines:,} lines", a.name, "lines/s", "higher")
               for a in clients}
    try:
        # Warm-up: one read brings the log file into the page cache. Every timed read
        # below also checks that the client got every line.
        await call(clients[0], clients[0].logs, cid)
        for round_no in range(cfg.log_rounds):
            for adapter in _rotated(clients, round_no):
                gc.collect()
                start = time.perf_counter()
                count = await call(adapter, adapter.logs, cid)
                elapsed = time.perf_counter() - start
                if count != lines:
                    raise RuntimeError(f"{adapter.name} read {count} lines, expected {lines}")
                results[adapter.name].samples.append(lines / elapsed)
    finally:
        await engine.remove([cid])
    for row in results.values():
        if row.client == "docker-py":
            row.note = "api.logs(): one bytes object, lines not split"
        elif row.client == "aiodocker":
            row.note = "log(): one str per frame (= per line here)"
        elif row.client == RAW_ASYNC:
            row.note = ""
    return list(results.values())
