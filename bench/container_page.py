"""``ContainerPage``: how long a page takes to show its header and Overview, how soon
its header follows a change made on the engine (through the engine's events), how long
its Logs tab takes to show a line, and what importing it costs.

    PYTHONPATH=. .venv/bin/python bench/container_page.py                  # private engine
    PYTHONPATH=. .venv/bin/python bench/container_page.py --engine unix:///x.sock
    PYTHONPATH=. .venv/bin/python bench/container_page.py --update-results

A script, not a test. One running busybox container (labelled for the bench, removed at
the end). Measured, ``--repeats`` times each, headless (no browser: what the kernel
does):

* **open**: ``ContainerPage(env, name)`` until its first inspect is shown (``page.task``:
  header, buttons, Overview), then closed;
* **follow**: the container paused or unpaused by another client, until the page's
  ``state`` says so (the engine's event, then the page's own handling);
* **Logs tab**: ``page.tab = "Logs"`` until the container's first log line is in the
  view (the ``LogStream`` built, its reader connected, the tail read and rendered);
* **import**: ``import ghostpanel_widgets._container_page`` in a fresh interpreter,
  and whether it loaded Panel (it must not: Panel comes with the Stats and Exec tabs,
  or when the page is made in a notebook cell).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
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
from bench._report import load_average
from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, EngineAPIError, Environment
from tests.podman_service import BUSYBOX_REFERENCE

LINE = "bench-page-line"
_IMPORT = ("import sys, time; t = time.perf_counter(); import ghostpanel_widgets._container_page;"
           " print(time.perf_counter() - t, 'panel' in sys.modules)")


async def _until(condition: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not get there")
        await asyncio.sleep(0.001)


def _row(what: str, values: list[float]) -> str:
    shown = [value * 1000.0 for value in values]
    return (f"| {what} | {statistics.median(shown):.1f} | {min(shown):.1f}..{max(shown):.1f} "
            f"| {len(values)} |")


async def _flip(container: Container, action: str) -> None:
    """Pause or unpause; again after a moment when runc's freeze fails (it does, now and
    then, on a loaded machine), which the figures do not include."""
    for attempt in range(5):
        try:
            await getattr(container, action)()
            return
        except EngineAPIError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)


async def _raw_event_latency(env: Environment, container: Container, repeats: int
                             ) -> list[float]:
    """What the engine itself takes: from a pause/unpause answered to its event read."""
    seen: asyncio.Queue[float] = asyncio.Queue()

    async def read() -> None:
        async with contextlib.aclosing(env.events(  # type: ignore[type-var]
                filters={"type": ["container"], "container": [container.id]})) as events:
            async for event in events:
                if event.action in ("pause", "unpause"):
                    seen.put_nowait(time.perf_counter())

    reader = asyncio.create_task(read())
    latencies = []
    try:
        await asyncio.sleep(0.5)  # subscribed
        for index in range(repeats * 2):
            await _flip(container, "pause" if index % 2 == 0 else "unpause")
            answered = time.perf_counter()
            latencies.append(max(0.0, await asyncio.wait_for(seen.get(), 30) - answered))
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return latencies


async def _measure(engine: BenchEngine, repeats: int) -> str:
    from ghostpanel_widgets._container_page import ContainerPage

    opens: list[float] = []
    follows: list[float] = []
    logs: list[float] = []
    async with connect(engine.url, name="bench") as env:
        container = await env.containers.create(
            image=BUSYBOX_REFERENCE, labels={LABEL: engine.run_id},
            command=["sh", "-c", f"trap 'exit 0' TERM; echo {LINE}; "
                     "while :; do sleep 1; done"])
        engine.created.add(container.id)
        await container.start()
        for _ in range(repeats):
            started = time.perf_counter()
            page = ContainerPage(env, container.name)
            assert page.task is not None
            await page.task
            opens.append(time.perf_counter() - started)
            assert page.state == "running", page.status.message
            await page.aclose()

        page = ContainerPage(env, container.name)
        try:
            assert page.task is not None
            await page.task
            await asyncio.sleep(0.5)  # the follower is subscribed
            for index in range(repeats * 2):
                action, state = ("pause", "paused") if index % 2 == 0 else ("unpause",
                                                                            "running")
                await _flip(container, action)
                answered = time.perf_counter()
                await _until(lambda state=state: page.state == state)
                # 0 when the event came before the engine's answer to the action did.
                follows.append(time.perf_counter() - answered)
        finally:
            await page.aclose()

        raw = await _raw_event_latency(env, container, repeats)

        for _ in range(repeats):
            page = ContainerPage(env, container.name)
            try:
                assert page.task is not None
                await page.task
                started = time.perf_counter()
                page.tab = "Logs"
                view = page.views["Logs"]
                await _until(lambda view=view: LINE in view.view.value)  # type: ignore[attr-defined]
                logs.append(time.perf_counter() - started)
            finally:
                await page.aclose()

    imports: list[float] = []
    panel = False
    for _ in range(5):
        result = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True,
                                text=True, check=True)
        seconds, loaded = result.stdout.split()
        imports.append(float(seconds))
        panel = panel or loaded == "True"

    return "\n".join([
        "### Container page (issue 11, C)",
        "",
        f"`PYTHONPATH=. .venv/bin/python bench/container_page.py`, on {engine.label}, "
        f"{time.strftime('%Y-%m-%d')}, load average {load_average()} (2 shared cores):",
        "",
        "| what | median ms | min..max ms | runs |",
        "|---|---:|---|---:|",
        _row("open: made until header and Overview shown", opens),
        _row("follow: a pause/unpause by another client until the header says it", follows),
        _row("(baseline: the same, until env.events() yields the event)", raw),
        _row("Logs tab: clicked until the first log line is in the view", logs),
        _row("import ghostpanel_widgets._container_page (fresh interpreter)", imports),
        "",
        f"The import loads Panel: {'yes' if panel else 'no'}. The header follows a change "
        "as soon as the engine's event stream delivers it: the page adds no measurable "
        "time to the engine's own event latency (the baseline row; Podman's, here).",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_engine_option(parser)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--update-results", action="store_true")
    arguments = parser.parse_args()
    interrupt_on_sigterm()
    engine = BenchEngine(arguments.engine)
    log("measuring the container page")
    report = measure_on(engine, lambda: asyncio.run(_measure(engine, arguments.repeats)))
    if report is None:
        return 130
    publish_report(report, "bench/container_page.py", update=arguments.update_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
