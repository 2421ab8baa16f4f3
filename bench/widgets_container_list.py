"""ContainerList benchmark: building the widget over 1,000 containers, and how fast an
engine event reaches its row.

    PYTHONPATH=. .venv/bin/python bench/widgets_container_list.py [--engine unix:///p.sock]
        [--containers 1000] [--repeats 11] [--update-results]

A script, not a test. Without ``--engine`` it starts a private Podman engine (as
``bench/run.py`` does, through ``bench/_engine.py``), creates the containers there in
bulk through the Engine API, and removes everything at the end, also on Ctrl-C or
SIGTERM. ``--update-results`` writes the figures into bench/RESULTS.md, in this
script's own marked block under "## Widgets" (other widget benchmarks keep theirs).

What is measured (medians of the repeats, min..max beside):

- build, kernel side: ``ContainerList(env, live=False)`` until its 1,000 rows are in
  its frame, its Tabulator and the ipywidget the browser would render, with the
  engine's listing answered from memory: the widget's own cost. Listing 1,000
  containers costs the engine ~0.5 ms each whatever the client (docs/engine-facts.md), so it
  is measured on its own, and the build with a live listing too;
- the first build in the process, once: it also imports Panel and loads its extension;
- event -> row: a live ``ContainerList`` over the 1,000 containers; a container is
  created (a new row) or killed (a changed row) through the library, and the time is
  taken from the moment the widget's events stream hands it the event (traced by
  wrapping ``env.events``) until its row shows the change (observed on ``revision``).
  Also from the engine's own event time, which adds Podman's event delivery (its file
  events backend, ~100-200 ms), and from the call that caused it. No full listing is
  made meanwhile (counted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import (
    LABEL,
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
BUILD_TARGET_MS = 300.0
EVENT_TARGET_MS = 50.0


def _ms(seconds: float) -> float:
    return seconds * 1000.0


class Figures:
    """Named samples in ms, and the lines of the report."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.notes: dict[str, str] = {}

    def add(self, name: str, value_ms: float, note: str = "") -> None:
        self.samples.setdefault(name, []).append(value_ms)
        if note:
            self.notes[name] = note

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def table(self) -> list[str]:
        lines = ["| measure | median ms | min..max ms | samples | note |",
                 "|---|---:|---|---:|---|"]
        for name, values in self.samples.items():
            lines.append(f"| {name} | {statistics.median(values):.1f} | "
                         f"{min(values):.1f}..{max(values):.1f} | {len(values)} | "
                         f"{self.notes.get(name, '')} |")
        return lines


async def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not seen within {timeout:g} s")
        await asyncio.sleep(0.005)


async def measure(engine: BenchEngine, count: int, repeats: int) -> tuple[Figures, dict[str, Any]]:
    from ghostpanel_kernel import connect
    from tests.podman_service import BUSYBOX_REFERENCE

    figures = Figures()
    facts: dict[str, Any] = {}
    existing = len(await engine.labelled())
    if existing < count:
        log(f"creating {count - existing} containers through the Engine API")
        started = time.monotonic()
        await engine.create_containers(count - existing)
        log(f"created in {time.monotonic() - started:.0f} s")

    env = connect(engine.url, name="bench")
    try:
        listing = await env.containers.list(all=True)
        facts["containers"] = len(listing)
        for _ in range(max(3, repeats // 2)):
            started = time.perf_counter()
            await env.containers.list(all=True)
            figures.add("engine listing (all containers)", _ms(time.perf_counter() - started),
                        "the engine's own cost, any client")

        # The widget's own cost: the listing answered from memory.
        live_list = env.containers.list

        async def from_memory(**_: Any) -> list[Any]:
            return listing

        env.containers.list = from_memory  # type: ignore[method-assign]
        from ghostpanel_widgets._container_list import ContainerList

        for round_ in range(repeats + 1):
            started = time.perf_counter()
            widget = ContainerList(env, live=False)
            await widget.ready()
            elapsed = _ms(time.perf_counter() - started)
            assert len(widget.data) == len(listing), (len(widget.data), len(listing))
            if round_ == 0:
                figures.add("first build in the process (imports Panel)", elapsed,
                            "once per kernel")
                model = next(iter(widget.table._models.values()))[0]
                facts["rows sent to the browser"] = len(model.source.data["name"])
            else:
                figures.add("build, kernel side (listing from memory)", elapsed,
                            f"target < {BUILD_TARGET_MS:.0f} ms")
            await widget.aclose()
        env.containers.list = live_list  # type: ignore[method-assign]
        for _ in range(max(3, repeats // 2)):
            started = time.perf_counter()
            widget = ContainerList(env, live=False)
            await widget.ready()
            figures.add("build with a live listing", _ms(time.perf_counter() - started),
                        "engine listing + build")
            await widget.aclose()

        # Event -> row, on a live widget. The clock starts when the widget's own events
        # stream hands it the event: a second subscriber is no reference, since Podman
        # (file events backend) delivers one event to two subscribers ~50 ms apart.
        arrivals: dict[tuple[str, str], tuple[float, float]] = {}  # arrival, engine time
        original_events = env.events

        def traced_events(**options: Any) -> Any:
            async def events() -> Any:
                async with contextlib.aclosing(original_events(**options)) as stream:
                    async for event in stream:
                        arrivals.setdefault((event.actor_id, event.action),
                                            (time.time(), event.time))
                        yield event
            return events()

        env.events = traced_events  # type: ignore[method-assign]
        widget = ContainerList(env)
        await widget.ready()

        def row_of(name: str) -> dict[str, Any] | None:
            frame = widget.data
            found = frame[frame["name"] == name]
            return None if found.empty else found.iloc[0].to_dict()

        shown_at: dict[tuple[str, str], float] = {}
        # (container name, what) -> the test a row must pass
        watched: dict[tuple[str, str], Callable[[dict[str, Any]], bool]] = {}

        def on_revision(_: dict[str, Any]) -> None:
            now = time.time()  # the flush that changed the rows has just ended
            for (name, what), test in list(watched.items()):
                row = row_of(name)
                if row is not None and test(row):
                    shown_at[(name, what)] = now
                    del watched[(name, what)]

        widget.observe(on_revision, "revision")
        label = {LABEL: engine.run_id}

        async def one_round(round_: int) -> None:
            # A new container: a new row. Watched by name, before it exists.
            name = f"gp-bench-{engine.run_id}-{round_}"
            watched[(name, "added")] = lambda row: row["state"] == "created"
            watched[(name, "complete")] = lambda row: row["status"] != ""
            started = time.time()
            created = await env.containers.create(image=BUSYBOX_REFERENCE, name=name,
                                                  command=SLEEPER, labels=label)
            engine.created.add(created.id)
            await _wait_for(lambda: (name, "complete") in shown_at
                            and (created.id, "create") in arrivals, f"{name}: new row")
            arrived, engine_time = arrivals[(created.id, "create")]
            shown = shown_at[(name, "added")]
            figures.add("new container: event received -> row added",
                        _ms(shown - arrived), f"target < {EVENT_TARGET_MS:.0f} ms")
            figures.add("new container: event received -> row complete",
                        _ms(shown_at[(name, "complete")] - arrived),
                        "status and ports from the inspect")
            figures.add("new container: engine event time -> row added",
                        _ms(shown - engine_time), "adds Podman's event delivery")
            figures.add("new container: create call -> row added", _ms(shown - started),
                        "adds the engine's create")

            # A running container killed: a changed row.
            await created.start()
            await _wait_for(lambda: (row_of(name) or {}).get("state") == "running",
                            f"{name}: running")
            await asyncio.sleep(0.3)  # its start events are all in
            watched[(name, "exited")] = lambda row: row["state"] == "exited"
            watched[(name, "exited, complete")] = lambda row: row["status"].startswith(
                "exited") or row["status"].startswith("Exited")
            started = time.time()
            await created.kill()
            await _wait_for(lambda: (name, "exited") in shown_at
                            and (name, "exited, complete") in shown_at, f"{name}: exited")
            shown = shown_at[(name, "exited")]
            # From the first event about it after the kill (Podman sends "kill", then
            # "died" a millisecond later): the widget cannot know earlier.
            first = min((value for (ident, _), value in arrivals.items()
                         if ident == created.id and value[0] >= started), default=None)
            if first is not None:
                figures.add("stopped container: event received -> row changed",
                            _ms(shown - first[0]), f"target < {EVENT_TARGET_MS:.0f} ms")
                figures.add("stopped container: event received -> row complete",
                            _ms(shown_at[(name, "exited, complete")] - first[0]),
                            "status from the inspect; may come first")
                figures.add("stopped container: engine event time -> row changed",
                            _ms(shown - first[1]), "adds Podman's event delivery")
            figures.add("stopped container: kill call -> row changed",
                        _ms(shown - started), "adds the engine's kill")
            await created.remove(force=True)
            engine.created.discard(created.id)

        listings: list[dict[str, Any]] = []

        async def counted(**options: Any) -> list[Any]:
            listings.append(options)
            return await live_list(**options)

        env.containers.list = counted  # type: ignore[method-assign]
        failed = 0
        try:
            for round_ in range(repeats):
                try:
                    await one_round(round_)
                except TimeoutError as error:  # said, counted, and the next round runs
                    failed += 1
                    name = f"gp-bench-{engine.run_id}-{round_}"
                    log(f"round {round_} failed: {error}; the widget shows "
                        f"{row_of(name)}; its status line: {widget.status.message!r}; "
                        f"events seen: {sorted(a for (_, a) in arrivals)[-8:]}")
                    watched.clear()
            facts["engine listings during the event rounds"] = len(listings)
            facts["rounds that timed out"] = failed
        finally:
            await widget.aclose()
            env.events = original_events  # type: ignore[method-assign]
            env.containers.list = live_list  # type: ignore[method-assign]
    finally:
        await env.aclose()
    return figures, facts


def _versions() -> str:
    parts = [f"python={platform.python_version()}", f"cpus={os.cpu_count()}"]
    for dist in ("panel", "bokeh", "jupyter_bokeh", "ipywidgets", "pandas"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=not installed")
    return "  ".join(parts)


def _verdicts(figures: Figures, containers: int) -> list[str]:
    lines = []
    build = figures.median("build, kernel side (listing from memory)")
    lines.append(f"- [{'MET' if build < BUILD_TARGET_MS else 'NOT MET'}] ContainerList with "
                 f"{containers:,} containers built kernel-side in under "
                 f"{BUILD_TARGET_MS:.0f} ms: "
                 f"{build:.1f} ms (median; the engine's listing, "
                 f"{figures.median('engine listing (all containers)'):.0f} ms, not counted)")
    for name in ("new container: event received -> row added",
                 "stopped container: event received -> row changed"):
        if name in figures.samples:
            value = figures.median(name)
            lines.append(f"- [{'MET' if value < EVENT_TARGET_MS else 'NOT MET'}] an engine "
                         f"event reflected in the row in under {EVENT_TARGET_MS:.0f} ms "
                         f"({name.split(':')[0]}): {value:.1f} ms (median)")
    return lines


def report(figures: Figures, facts: dict[str, Any], started: float) -> str:
    lines = [
        f"### ContainerList: {facts.get('containers', 0):,} containers "
        "(`bench/widgets_container_list.py`)",
        "",
        "`PYTHONPATH=. .venv/bin/python bench/widgets_container_list.py --update-results` "
        "(a private Podman engine, the containers created through the Engine API; see "
        "the script's docstring for what each line measures).",
        "",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {_versions()}",
        f"wall time {time.monotonic() - started:.0f} s; load average at end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        + "; ".join(f"{key}: {value}" for key, value in facts.items()),
        "",
        *figures.table(),
        "",
        "Targets:",
        "",
        *_verdicts(figures, int(facts.get("containers", 0))),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_engine_option(parser)
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--update-results", action="store_true",
                        help="write the figures into bench/RESULTS.md (its block under "
                        "## Widgets)")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    started = time.monotonic()
    engine = BenchEngine(args.engine)
    measured = measure_on(engine, lambda: asyncio.run(measure(engine, args.containers,
                                                               args.repeats)))
    if measured is None:
        return 130
    figures, facts = measured
    section = report(figures, facts, started)
    publish_report(section, "bench/widgets_container_list.py", update=args.update_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
