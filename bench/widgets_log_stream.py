"""``LogStream`` under a firehose: does it keep up with 10,000 lines/s, with the kernel's
event loop still responsive and memory bounded?

    PYTHONPATH=. .venv/bin/python bench/widgets_log_stream.py            # both sources
    PYTHONPATH=. .venv/bin/python bench/widgets_log_stream.py --only fake --seconds 10
    PYTHONPATH=. .venv/bin/python bench/widgets_log_stream.py --engine unix:///x.sock
    PYTHONPATH=. .venv/bin/python bench/widgets_log_stream.py --no-results   # print only

A script, not a test. Two sources feed one ``LogStream`` (``buffer_lines=10_000``,
``view_lines=500``, default ``refresh``) at ``--rate`` lines/s (10,000) for
``--seconds`` (10):

* ``fake``: an engine answered in-process through ``httpx.MockTransport``: a follow
  request gets Docker's multiplexed frames with RFC 3339 nanosecond stamps (one line in
  ten on stderr), paced every 5 ms. Everything but the socket and the engine is real:
  the library's demux, the widget's ingest, merge, render. The pacing is exact.
* ``container``: a real busybox container on a Podman engine (a private one unless
  ``--engine``), writing 1,000-line bursts paced by ``sleep`` to the rate, followed
  through the unix socket. First, an unpaced ``yes`` container measures what the engine
  path delivers at most to ``log_batches`` (the ceiling of this source on this box).

While it runs, a ticker task sleeps 5 ms at a time and records how late it wakes: the
event-loop lag a notebook user would feel (a click, a widget update). RSS is sampled
every 0.25 s. Renders are timed and their HTML measured (what the kernel would send to
the browser). Results are printed and added to ``bench/RESULTS.md`` under "Widgets",
between markers, so a re-run replaces only its own block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import httpx

from bench._engine import LABEL, BenchEngine, log
from bench._results_file import RESULTS, markers, put_block
from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from tests.podman_service import BUSYBOX_REFERENCE

BEGIN, END = markers("bench/widgets_log_stream.py")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MIB = 1024 * 1024


def rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * _PAGE / _MIB


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Run:
    source: str
    note: str
    rate: int
    seconds: float
    elapsed: float = 0.0  # from the first line to the end of production
    produced: int = 0
    received_at_end: int = 0
    received: int = 0
    lag_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)
    render_kib: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    rss_before: float = 0.0
    peak_rss: float = 0.0
    cpu_seconds: float = 0.0
    held: int = 0
    buffer_mib: float = 0.0

    def summary(self) -> dict[str, Any]:
        second_half = [m for t, m in self.rss if t >= self.elapsed / 2]
        renders = len(self.render_ms)
        elapsed = self.elapsed or self.seconds
        return {
            "source": self.source, "note": self.note, "target lines/s": self.rate,
            "seconds": round(elapsed, 2), "lines produced": self.produced,
            "lines/s achieved": round(self.received_at_end / elapsed),
            "kept up at end (%)": round(100 * self.received_at_end / max(self.produced, 1),
                                        1),
            "all received after drain": self.received == self.produced,
            "loop lag p50 (ms)": round(percentile(self.lag_ms, 50), 2),
            "loop lag p99 (ms)": round(percentile(self.lag_ms, 99), 2),
            "loop lag max (ms)": round(max(self.lag_ms, default=float("nan")), 1),
            "renders": renders,
            "renders/s": round(renders / elapsed, 1),
            "render p50 (ms)": round(percentile(self.render_ms, 50), 2),
            "render max (ms)": round(max(self.render_ms, default=float("nan")), 1),
            "view HTML per render (KiB)": round(statistics.fmean(self.render_kib), 1)
            if self.render_kib else 0,
            "to the browser (KiB/s)": round(sum(self.render_kib) / elapsed),
            "process CPU (%)": round(100 * self.cpu_seconds / elapsed),
            "RSS before (MiB)": round(self.rss_before, 1),
            "peak RSS (MiB)": round(self.peak_rss, 1),
            "RSS growth, 2nd half (MiB)": round(max(second_half) - min(second_half), 1)
            if second_half else 0,
            "lines held": self.held, "buffer size (MiB)": round(self.buffer_mib, 2),
        }


def buffer_size_mib(entries: list[Any]) -> float:
    """Deep size of the buffered entries (shared strings counted once)."""
    seen: set[int] = set()
    total = 0
    for entry in entries:
        total += sys.getsizeof(entry)
        for value in entry:
            if id(value) not in seen:
                seen.add(id(value))
                total += sys.getsizeof(value)
    return total / _MIB


# -- the fake engine -------------------------------------------------------------------


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def _stamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z".encode()


class FirehoseEngine:
    """Answers what ``LogStream`` asks an engine: ping, inspect, logs (the first follow
    request gets the firehose; later ones wait, as an idle container's log would)."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate = rate
        self.seconds = seconds
        self.produced = 0
        self.started = asyncio.Event()
        self.done = asyncio.Event()
        self._served = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/_ping":
            return httpx.Response(200, headers={"Api-Version": "1.41",
                                                "Server": "Libpod/4.3.1 (linux)"},
                                  content=b"OK")
        if path.endswith("/containers/firehose/json"):
            return httpx.Response(200, json={
                "Id": "f" * 64, "Name": "/firehose", "Config": {"Tty": False},
                "State": {"Status": "running", "Running": True}})
        if path.endswith("/logs"):
            body = self._idle() if self._served else self._firehose()
            self._served = True
            return httpx.Response(200, headers={
                "Content-Type": "application/vnd.docker.multiplexed-stream"}, content=body)
        return httpx.Response(404, json={"message": f"no route {path}"})

    async def _firehose(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        self.started.set()
        number = 0
        while True:
            elapsed = loop.time() - begin
            due = int(min(elapsed, self.seconds) * self.rate) - number
            if due > 0:
                stamp = _stamp(time.time_ns())
                pieces = []
                for _ in range(due):
                    number += 1
                    stream = 2 if number % 10 == 0 else 1
                    pieces.append(_frame(stream, b"%s GET /api/v1/items?page=%d 200 %d us "
                                         b"request %d\n" % (stamp, number % 100,
                                                            number % 997, number)))
                self.produced = number
                yield b"".join(pieces)
            if elapsed >= self.seconds:
                break
            await asyncio.sleep(0.005)
        self.done.set()
        await asyncio.Event().wait()  # the container keeps running, silent

    async def _idle(self) -> AsyncIterator[bytes]:
        await asyncio.Event().wait()
        yield b""  # pragma: no cover


# -- measuring ---------------------------------------------------------------------------


async def measure(run: Run, make_widget: Callable[[], Any], produced: Callable[[], int],
                  production_started: asyncio.Event,
                  production_done: asyncio.Event) -> None:
    """Run the widget while the source produces; fill ``run``."""
    from ghostpanel_widgets._log_stream import LogStream

    gc.collect()
    run.rss_before = rss_mib()
    widget: LogStream = make_widget()
    original = widget.render

    def timed_render() -> None:
        began = time.perf_counter()
        original()
        run.render_ms.append((time.perf_counter() - began) * 1000)
        run.render_kib.append(len(widget.view.value) / 1024)

    widget.render = timed_render  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            began = loop.time()
            await asyncio.sleep(0.005)
            run.lag_ms.append((loop.time() - began - 0.005) * 1000)

    async def sampler(begin: float) -> None:
        while not stop.is_set():
            run.rss.append((loop.time() - begin, rss_mib()))
            await asyncio.sleep(0.25)

    try:
        await widget.start()
        await asyncio.wait_for(production_started.wait(), 30)
        begin = loop.time()
        cpu_begin = time.process_time()
        tasks = [asyncio.create_task(ticker()), asyncio.create_task(sampler(begin))]
        await asyncio.wait_for(production_done.wait(), run.seconds * 3 + 30)
        run.elapsed = loop.time() - begin
        run.received_at_end = widget.received
        run.produced = produced()
        run.cpu_seconds = time.process_time() - cpu_begin
        stop.set()
        await asyncio.gather(*tasks)
        deadline = loop.time() + 5
        while widget.received < produced() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        run.produced = produced()
        run.received = widget.received
        run.held = len(widget.lines)
        run.buffer_mib = buffer_size_mib(widget.lines)
        run.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if widget.status.level == "error":
            log(f"{run.source}: the widget says: {widget.status.message}")
    finally:
        await widget.aclose()


async def fake_run(rate: int, seconds: float) -> Run:
    from ghostpanel_widgets._log_stream import LogStream

    engine = FirehoseEngine(rate, seconds)
    env = Environment("unix:///fake/podman.sock", name="fake",
                      transport=httpx.MockTransport(engine.handler))
    run = Run("fake engine (MockTransport)", "paced every 5 ms, exact", rate, seconds)
    try:
        await measure(run, lambda: LogStream(env, "firehose", tail=0, start=False),
                      lambda: engine.produced, engine.started, engine.done)
    finally:
        await env.aclose()
    return run


async def _follow_count(env: Environment, name: str, seconds: float) -> tuple[int, float]:
    container = await env.containers.get(name)
    count = 0
    loop = asyncio.get_running_loop()
    begin = loop.time()
    async with contextlib.aclosing(container.log_batches(follow=True, tail=0,
                                                         timestamps=True)) as batches:
        async for batch in batches:
            count += len(batch)
            if loop.time() - begin >= seconds:
                break
    return count, loop.time() - begin


async def container_runs(url: str, run_id: str, rate: int, seconds: float,
                         ceiling_seconds: float) -> tuple[dict[str, Any], Run]:
    from ghostpanel_widgets._log_stream import LogStream

    labels = {LABEL: run_id}
    async with connect(url, name="bench") as env:
        # The ceiling: an unpaced writer, read by the library alone.
        yes = await env.containers.create(
            image=BUSYBOX_REFERENCE, labels=labels,
            command=["yes", "GET /api/v1/items?page=42 200 731 us request 123456"])
        await yes.start()
        try:
            count, took = await _follow_count(env, yes.id, ceiling_seconds)
        finally:
            await yes.remove(force=True)
        ceiling = {"source": "real busybox container, unpaced `yes`",
                   "log_batches(follow=True) lines/s": round(count / took),
                   "seconds": round(took, 1)}
        log(f"ceiling: {ceiling}")

        # The paced run: bursts of 1,000 lines, each due 1000/rate s after the one
        # before, on the clock of /proc/uptime (centiseconds; busybox sh has no finer
        # one), so that the time `yes | head` takes is made up, not added.
        bursts = max(1, round(rate * seconds / 1000))
        step = round(100_000 / rate)  # centiseconds per burst
        script = ("sleep 1; read up _ < /proc/uptime; t0=${up%.*}${up#*.}; i=0; "
                  f"while [ $i -lt {bursts} ]; do i=$((i+1)); "
                  "yes \"GET /api/v1/items?page=$i 200 731 us burst $i\" | head -n 1000; "
                  "read up _ < /proc/uptime; now=${up%.*}${up#*.}; "
                  f"w=$((t0 + i * {step} - now)); "
                  "if [ $w -gt 0 ]; then sleep $((w / 100)).$(printf %02d $((w % 100))); "
                  "fi; done; echo done >&2; "
                  "trap 'exit 0' TERM; while :; do sleep 1; done")
        paced = await env.containers.create(image=BUSYBOX_REFERENCE, labels=labels,
                                            command=["sh", "-c", script])
        started, finished = asyncio.Event(), asyncio.Event()
        widget_box: list[LogStream] = []
        expected = bursts * 1000 + 1

        def make() -> LogStream:
            widget = LogStream(env, paced.id, tail=0, start=False)
            widget_box.append(widget)
            return widget

        async def watch() -> None:
            # Production starts with the first line, and is over at the last ("done").
            while not widget_box or widget_box[0].received == 0:
                await asyncio.sleep(0.005)
            started.set()
            while not (widget_box[0].lines and widget_box[0].lines[-1].text == "done"):
                await asyncio.sleep(0.01)
            finished.set()

        run = Run("real busybox container (Podman, unix socket)",
                  f"{bursts} bursts of 1,000 lines, one every {step / 100:g} s "
                  "(on /proc/uptime)", rate,
                  seconds)
        await paced.start()
        watcher = asyncio.create_task(watch())
        try:
            await measure(run, make, lambda: expected, started, finished)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await paced.remove(force=True)
        return ceiling, run


async def quiet_lag(seconds: float) -> list[float]:
    """The same ticker with nothing else in the loop: the box's own noise."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        began = loop.time()
        await asyncio.sleep(0.005)
        lags.append((loop.time() - began - 0.005) * 1000)
    return lags


# -- report ----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "cpus": str(os.cpu_count()),
             "kernel": platform.release()}
    for dist in ("ipywidgets", "httpx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def markdown(runs: list[Run], ceiling: dict[str, Any] | None, args: argparse.Namespace,
             wall: float, quiet: list[float]) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [run.summary() for run in runs]
    keys = [k for k in rows[0] if k not in ("source", "note")] if rows else []
    lines = [
        BEGIN,
        "### LogStream: 10,000 lines/s (`bench/widgets_log_stream.py`)",
        "",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC  "
        + "  ".join(f"{k}={v}" for k, v in versions().items())
        + f"  wall {wall:.0f} s; load average at end {load}",
        "",
        f"One `LogStream` (buffer_lines=10,000, view_lines=500, refresh 0.15 s) fed "
        f"{args.rate:,} lines/s for {args.seconds:g} s; a ticker task sleeping 5 ms "
        "measures how late the event loop wakes it. The machine is 2 shared cores with "
        "other suites running: lag maxima are noisy.",
        "",
    ]
    lines += [f"The same ticker in an otherwise empty loop, just before: lag p50 "
              f"{percentile(quiet, 50):.2f} ms, p99 {percentile(quiet, 99):.2f} ms, max "
              f"{max(quiet, default=float('nan')):.1f} ms (the box's own noise).", ""]
    if ceiling:
        lines += [f"Ceiling of the real-container source on this box: "
                  f"{ceiling['log_batches(follow=True) lines/s']:,} lines/s through "
                  f"`log_batches(follow=True)` from an unpaced `yes` "
                  f"({ceiling['seconds']} s), so 10,000 lines/s is within what a busybox "
                  "container and Podman deliver.", ""]
    lines += ["| measure | " + " | ".join(row["source"] for row in rows) + " |",
              "|---|" + "---:|" * len(rows)]
    lines.append("| how | " + " | ".join(row["note"] for row in rows) + " |")
    for key in keys:
        cells = []
        for row in rows:
            value = row[key]
            cells.append(f"{value:,}" if isinstance(value, int) and not isinstance(
                value, bool) else str(value))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to feed")
    parser.add_argument("--only", choices=("fake", "container"), help="one source only")
    parser.add_argument("--engine", help="use this engine (unix://...) instead of a "
                        "private one; it needs localhost/busybox:latest")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--no-results", action="store_true",
                        help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)

    began = time.monotonic()
    quiet = asyncio.run(quiet_lag(3.0))
    runs: list[Run] = []
    ceiling: dict[str, Any] | None = None
    if args.only in (None, "fake"):
        log(f"fake engine: {args.rate:,} lines/s for {args.seconds:g} s")
        runs.append(asyncio.run(fake_run(args.rate, args.seconds)))
        log(json.dumps(runs[-1].summary()))
    if args.only in (None, "container"):
        engine = BenchEngine(args.engine)
        try:
            engine.start()
            log(f"real container on {engine.url}: {args.rate:,} lines/s for "
                f"{args.seconds:g} s")
            ceiling, run = asyncio.run(container_runs(engine.url, engine.run_id, args.rate,
                                                      args.seconds, args.ceiling_seconds))
            runs.append(run)
            log(json.dumps(run.summary()))
        finally:
            engine.close()
    block = markdown(runs, ceiling, args, time.monotonic() - began, quiet)
    print(block)
    if args.json:
        args.json.write_text(json.dumps({"ceiling": ceiling, "runs": [
            {**run.summary(), "raw": asdict(run)} for run in runs]}, indent=1))
    if not args.no_results:
        put_block(block, BEGIN, END)
        log(f"added to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
