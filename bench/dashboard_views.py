"""The dashboard as a browser sees it: navigation to the first container row, kernels and
memory per viewer, for ``ghostpanel up`` with and without its pool of preheated kernels.

    PYTHONPATH=. .venv/bin/python bench/dashboard_views.py [--engine unix:///p.sock]
        [--sizes 3,1000] [--pools 0,1] [--cold 10] [--warm 10] [--leak 100]
        [--viewers 1,5,10] [--update-results]

A script, not a test. Without ``--engine`` it starts a private Podman engine (as the
other bench scripts do, through ``bench/_engine.py``) and removes everything it made at
the end, also on Ctrl-C or SIGTERM. Its GhostPanel home and Jupyter folders are
temporary, so the developer's registry and Jupyter settings are neither read nor
written. The browser is Debian's Chromium through Playwright, headless, with every
non-loopback request sent to a dead proxy (as tests/e2e/conftest.py does).

What is measured, for each number of containers (3 running; 1,000 = 3 running and 997
created) and each pool size (``--pool 0``: a kernel started per view, what the dashboard
did before; ``--pool 1``: one preheated kernel kept ready):

- **first row**: navigation start -> a Tabulator row of the container list with a
  container's name in it, as the page itself sees it (``performance.now()`` in a
  MutationObserver installed before the page's own scripts). Beside it, from the
  Navigation Timing entry: the first byte of the HTML, its last byte (Voila sends the
  page as the notebook's cells finish) and DOMContentLoaded;
- **cold**: the first view of a server just started (``ghostpanel up`` prints its URL
  once the pool's first kernel is ready; the view starts right then), one per start;
- **warm**: later views of the same server, each once the previous page was left and
  (with a pool) its replacement kernel is ready;
- **back to back**: views one right after the other (the pool has no time to refill);
- **kernel side**: in a fresh interpreter, what the notebook's first cell costs: imports
  of ipywidgets, Panel (with its extensions), pandas and the dashboard, and the
  dashboard's first listing;
- **memory**: RSS, PSS and USS of the Voila server and of each kernel with 1, 5 and 10
  pages open at once; one more viewer's cost is the growth of the total PSS per page;
- **leak**: kernel processes and the server's RSS before and after 100 views.

Figures: p50 and p90 (nearest rank) of the views, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from bench._raw import AsyncRawConnection
from bench._report import load_average, percentile, run_line

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
]
ENV_NAME = "bench"
#: What each view opens: the Containers tab, by its link (the plain address shows the
#: Home tab when the dashboard decides so).
VIEW_QUERY = "?tab=containers"
NAME_PREFIX = "gpbench-"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
RUNNING = 3
VIEW_TIMEOUT_MS = 120_000
TARGET_MS = {3: 1500.0, 1000: 3000.0}
TARGET_VIEWER_MIB = 100.0

# Installed before the page's own scripts: the time (ms since navigation start) at which
# a container-list row with a container's name first shows (and first is in the page at
# all: a row drawn in a tab that is not shown), polled every 10 ms.
FIRST_ROW_PROBE = """
(() => {
  window.__gpFirstRow = null;
  window.__gpRowInDom = null;
  window.__gpMarks = {};
  const mark = (name) => {
    if (!(name in window.__gpMarks)) window.__gpMarks[name] = performance.now();
  };
  // Panel draws the Tabulator inside shadow roots: look through them (a
  // MutationObserver on the document would not see those changes, hence a poll).
  const rows = (root, found) => {
    for (const element of root.querySelectorAll('*')) {
      if (element.classList.contains('tabulator-row')) found.push(element);
      if (element.shadowRoot) rows(element.shadowRoot, found);
    }
    return found;
  };
  const probe = () => {
    if (window.Bokeh !== undefined) mark('bokeh_loaded');
    if (document.querySelector('.gp-ops-dashboard') !== null) mark('dashboard_shown');
    for (const list of document.querySelectorAll('.gp-container-list')) {
      mark('list_shown');
      if (rows(list, []).length === 0 && list.querySelector('*') !== null) {
        for (const element of list.querySelectorAll('*')) {
          if (element.shadowRoot) { mark('table_view'); break; }
        }
      }
      for (const row of rows(list, [])) {
        if (!row.textContent.includes('NAME_PREFIX')) continue;
        if (window.__gpRowInDom === null) window.__gpRowInDom = performance.now();
        if (row.getClientRects().length > 0) {
          window.__gpFirstRow = performance.now();
          clearInterval(timer);
          return;
        }
      }
    }
  };
  const timer = setInterval(probe, 10);
})();
""".replace("NAME_PREFIX", NAME_PREFIX)

VISIBLE = "window.__gpFirstRow !== null"
IN_DOM = "window.__gpRowInDom !== null"
#: The dashboard shows a tab other than Containers (``.lm-mod-current`` is Lumino's
#: current tab).
OTHER_TAB = ("(() => { const tab = document.querySelector("
             "'.gp-ops-dashboard .lm-TabBar-tab.lm-mod-current'); "
             "return tab !== null && !tab.textContent.includes('Containers'); })()")
#: Whether a view waits for a row that shows (``--in-dom``: one drawn in the page).
require_visible = True

NAVIGATION = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {first_byte: n.responseStart, html_done: n.responseEnd,
          dom_ready: n.domContentLoadedEventEnd, html_bytes: n.decodedBodySize,
          first_row: window.__gpFirstRow, row_in_dom: window.__gpRowInDom,
          ...window.__gpMarks};
}"""


# -- processes and memory ------------------------------------------------------------------


def _descendants(pid: int) -> dict[int, str]:
    from ghostpanel_kernel import _procfs as procfs

    found: dict[int, str] = {}
    for entry in procfs.descendants(pid):
        arguments = procfs.command_line(entry.pid)
        if arguments is not None:
            found[entry.pid] = " ".join(arguments)
    return found


def kernels_of(pid: int) -> list[int]:
    """The IPython kernels below ``pid``."""
    return sorted(child for child, command in _descendants(pid).items()
                  if "ipykernel_launcher" in command)


def voila_of(pid: int) -> int | None:
    """The Voila server below ``ghostpanel up`` ``pid``."""
    return next((child for child, command in _descendants(pid).items()
                 if " -m voila " in f" {command} "), None)


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of ``pid`` in MiB (``/proc/PID/smaps_rollup``)."""
    import psutil

    info = psutil.Process(pid).memory_full_info()
    mib = 1024 * 1024
    return {"rss": info.rss / mib, "pss": info.pss / mib, "uss": info.uss / mib}


# -- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    started: float = 0.0
    ready_after: float = 0.0
    #: Views this script made on the server (the pool's ready count grows by one each).
    views: int = 0

    @property
    def voila(self) -> int | None:
        return voila_of(self.process.pid)

    def kernels(self) -> list[int]:
        return kernels_of(self.process.pid)

    def ready_count(self) -> int:
        """How many pooled kernels said they were ready (lines of the ready file)."""
        voila = self.voila
        if voila is None:
            return 0
        try:
            environ = Path(f"/proc/{voila}/environ").read_bytes().split(b"\0")
        except OSError:
            return 0
        for item in environ:
            if item.startswith(b"GHOSTPANEL_VOILA_READY="):
                path = Path(item.split(b"=", 1)[1].decode())
                with contextlib.suppress(OSError):
                    return len(path.read_text().split())
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            with contextlib.suppress(Exception):
                self.process.stdout.close()


_URL = re.compile(r"(http://127\.0\.0\.1:\d+/)")


def start_server(environment: dict[str, str], pool: int) -> Server:
    """``ghostpanel up --env bench --pool POOL``, once it printed its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "ghostpanel_kernel.cli", "up", "--env", ENV_NAME,
         "--port", str(port), "--no-browser", "--pool", str(pool)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=environment, cwd=ROOT)
    server = Server(process, started=started)
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line.rstrip("\n"))
            match = _URL.search(line)
            if line.startswith("GhostPanel dashboard:") and match:
                server.url = match.group(1)
                server.ready_after = time.monotonic() - started
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120):
        server.stop()
        raise RuntimeError("ghostpanel up printed no URL:\n" + "\n".join(server.lines))
    return server


def wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)


# -- views ---------------------------------------------------------------------------------


def open_view(browser: Any, url: str) -> tuple[Any, dict[str, float]]:
    """Open the dashboard in a new context; (the context, its timings) once a row shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(FIRST_ROW_PROBE)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(url + VIEW_QUERY, wait_until="commit", timeout=VIEW_TIMEOUT_MS)
    try:
        page.wait_for_function(f"({VISIBLE}) || ({OTHER_TAB})", timeout=VIEW_TIMEOUT_MS,
                               polling=50)
        clicked = not page.evaluate(VISIBLE)
        if clicked:
            # The dashboard opened another tab than the URL's Containers tab (a fault of
            # the dashboard's tab selection): click it, as the user would.
            page.get_by_role("tab", name="Containers", exact=True).click()
        page.wait_for_function(VISIBLE if require_visible else IN_DOM,
                               timeout=VIEW_TIMEOUT_MS, polling=50)
    except Exception:
        failure = Path(tempfile.gettempdir(), "gp-dashboard-view-failure")
        page.screenshot(path=f"{failure}.png", full_page=True)
        Path(f"{failure}.html").write_text(page.content())
        Path(f"{failure}.log").write_text("\n".join(console))
        log(f"no row: the page is in {failure}.png/.html/.log")
        context.close()
        raise
    timings: dict[str, float] = page.evaluate(NAVIGATION)
    timings["clicked"] = float(clicked)
    return context, timings


def leave(context: Any) -> None:
    """Leave every page of ``context`` as a user closing the tab does (Voila's unload
    beacon shuts the page's kernel down)."""
    for page in context.pages:
        page.goto("about:blank")
        page.close(run_before_unload=True)
    context.close()


def settle(server: Server, pool: int, views_done: int) -> None:
    """Wait until the pages left are gone (their kernels ended) and, with a pool, until
    the pool is full again."""
    wait_for(lambda: len(server.kernels()) == pool, f"{pool} kernels running")
    if pool:
        wait_for(lambda: server.ready_count() >= pool + views_done,
                 "the pool refilled", timeout=120)


# -- the measures ----------------------------------------------------------------------------


@dataclass
class Series:
    views: list[dict[str, float]] = field(default_factory=list)
    #: Views whose row never showed (within VIEW_TIMEOUT_MS): reported, not timed.
    failures: int = 0

    def column(self, name: str) -> list[float]:
        return [view[name] for view in self.views if view.get(name) is not None]


def cold_views(browser: Any, environment: dict[str, str], pool: int,
               count: int) -> tuple[Series, list[float]]:
    series, starts = Series(), []
    for _ in range(count):
        server = start_server(environment, pool)
        try:
            starts.append(server.ready_after * 1000)
            try:
                context, timings = open_view(browser, server.url)
            except Exception as error:  # counted, and the run goes on
                log(f"a cold view failed: {error!r:.200}")
                series.failures += 1
                continue
            series.views.append(timings)
            leave(context)
        finally:
            server.stop()
    return series, starts


def warm_views(browser: Any, server: Server, pool: int, count: int,
               back_to_back: bool) -> Series:
    series = Series()
    for _ in range(count):
        if not back_to_back:
            settle(server, pool, server.views)
        server.views += 1
        try:
            context, timings = open_view(browser, server.url)
        except Exception as error:  # counted, and the run goes on
            log(f"a view failed: {error!r:.200}")
            series.failures += 1
            continue
        series.views.append(timings)
        leave(context)
    return series


def memory_with_viewers(browser: Any, server: Server, pool: int,
                        viewers: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    settle(server, pool, server.views)
    voila = server.voila
    assert voila is not None
    idle = {"server": memory_mib(voila), "kernels": [memory_mib(pid) for pid in server.kernels()]}
    rows.append({"viewers": 0, **_totals(idle)})
    contexts: list[Any] = []
    try:
        for wanted in viewers:
            while len(contexts) < wanted:
                context, _ = open_view(browser, server.url)
                contexts.append(context)
                server.views += 1
            # Let the pool's refills start and finish, so they are in the figures.
            if pool:
                with contextlib.suppress(TimeoutError):
                    wait_for(lambda: server.ready_count() >= pool + server.views,
                             "the pool refilled", timeout=120)
            time.sleep(2)  # the pages' first samples and listings are in
            now = {"server": memory_mib(voila),
                   "kernels": [memory_mib(pid) for pid in server.kernels()]}
            rows.append({"viewers": wanted, **_totals(now)})
    finally:
        for context in contexts:
            leave(context)
    return rows


def _totals(snapshot: dict[str, Any]) -> dict[str, Any]:
    kernels = snapshot["kernels"]
    server = snapshot["server"]
    return {
        "kernels": len(kernels),
        "server_rss": server["rss"],
        "kernel_rss": statistics.median([k["rss"] for k in kernels]) if kernels else 0.0,
        "kernel_uss": statistics.median([k["uss"] for k in kernels]) if kernels else 0.0,
        "total_pss": server["pss"] + sum(k["pss"] for k in kernels),
        "total_rss": server["rss"] + sum(k["rss"] for k in kernels),
    }


def leak_check(browser: Any, server: Server, pool: int, count: int) -> dict[str, Any]:
    settle(server, pool, server.views)
    voila = server.voila
    assert voila is not None
    before = {"kernels": len(server.kernels()), "server_rss": memory_mib(voila)["rss"],
              "processes": len(_descendants(server.process.pid))}
    peak = 0
    for _ in range(count):
        context, _ = open_view(browser, server.url)
        server.views += 1
        leave(context)
        peak = max(peak, len(server.kernels()))
    settle(server, pool, server.views)
    after = {"kernels": len(server.kernels()), "server_rss": memory_mib(voila)["rss"],
             "processes": len(_descendants(server.process.pid))}
    return {"views": count, "before": before, "after": after, "peak_kernels": peak}


KERNEL_SIDE = r"""
import asyncio, json, time

def rss():
    status = open("/proc/self/status").read().split("VmRSS:")[1]
    return int(status.split()[0]) / 1024

async def build():
    from ghostpanel_widgets._preheat import build_dashboard
    dashboard = build_dashboard(stats_interval=3600)
    while dashboard.container_count == -1:
        await asyncio.sleep(0.01)
    dashboard.close()

STEPS = [
    ("ipykernel + ipywidgets", "import ipykernel.ipkernel, ipywidgets"),
    ("Panel + extensions (load_panel)",
     "from ghostpanel_widgets._panel import load_panel; load_panel()"),
    ("pandas", "import pandas"),
    ("ghostpanel_widgets.OpsDashboard", "from ghostpanel_widgets import OpsDashboard"),
    ("dashboard built, containers listed", "asyncio.run(build())"),
]
steps = {}
for name, code in STEPS:
    started, before = time.perf_counter(), rss()
    exec(code)
    steps[name] = {"ms": (time.perf_counter() - started) * 1000, "mib": rss() - before}
steps["RSS at the end"] = {"ms": 0.0, "mib": rss()}
print(json.dumps(steps))
"""


def kernel_side(environment: dict[str, str], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Median cost of each step of the notebook's first cell, in fresh interpreters."""
    runs: list[dict[str, dict[str, float]]] = []
    for _ in range(repeats):
        answer = subprocess.run([sys.executable, "-c", KERNEL_SIDE], capture_output=True,
                                text=True, env=environment, cwd=ROOT, timeout=300)
        if answer.returncode != 0:
            raise RuntimeError(answer.stderr[-2000:])
        runs.append(json.loads(answer.stdout.strip().splitlines()[-1]))
    return {name: {key: statistics.median(run[name][key] for run in runs)
                   for key in ("ms", "mib")} for name in runs[0]}


# -- set-up --------------------------------------------------------------------------------


async def create_named(engine: BenchEngine, names: list[str], *, start: bool) -> None:
    """Create (and with ``start``, start) labelled containers named ``names``."""
    body = json.dumps({"Image": "localhost/busybox:latest", "Cmd": SLEEPER,
                       "Labels": {LABEL: engine.run_id}}).encode()

    async def create(conn: AsyncRawConnection, name: str) -> str:
        status, answer = await conn.request(
            "POST", f"/v{engine.api}/containers/create?name={name}", body)
        if status != 201:
            raise RuntimeError(f"create answered {status}: {answer[:200]!r}")
        cid = str(json.loads(answer)["Id"])
        engine.created.add(cid)
        if start:
            status, answer = await conn.request("POST", f"/v{engine.api}/containers/{cid}/start")
            if status not in (204, 304):
                raise RuntimeError(f"start answered {status}: {answer[:200]!r}")
        return cid

    await engine._pool(names, create, 8)


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` in a thread of its own: Playwright's sync API keeps an event loop
    running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def private_home(url: str) -> Iterator[dict[str, str]]:
    """Environment variables for a temporary GhostPanel home (``bench`` registered as
    ``url``) and temporary Jupyter folders."""
    base = Path(tempfile.mkdtemp(prefix="gp-bench-dash-"))
    environment = dict(os.environ)
    environment.pop("GHOSTPANEL_ENV", None)
    environment.pop("GHOSTPANEL_ENGINE", None)
    environment["GHOSTPANEL_HOME"] = str(base / "home")
    for name in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                 "JUPYTER_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                 "XDG_DATA_HOME", "MPLCONFIGDIR"):
        folder = base / name.lower()
        folder.mkdir(parents=True)
        environment[name] = str(folder)
    environment["PYTHONPATH"] = str(ROOT)
    try:
        subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", "env", "add",
                        ENV_NAME, url], check=True, env=environment, cwd=ROOT,
                       capture_output=True, timeout=60)
        environment["GHOSTPANEL_ENV"] = ENV_NAME
        yield environment
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- the run -------------------------------------------------------------------------------


def measure(engine: BenchEngine, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"sizes": {}, "load": load_average()}
    with private_home(engine.url) as environment, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            have = 0
            for size in args.sizes:
                if have == 0:
                    log(f"starting {RUNNING} containers")
                    run_async(create_named(
                        engine, [f"{NAME_PREFIX}web-{i}" for i in range(1, RUNNING + 1)],
                        start=True))
                    have = RUNNING
                if size > have:
                    log(f"creating {size - have} more containers")
                    run_async(create_named(
                        engine, [f"{NAME_PREFIX}{i:04d}" for i in range(have, size)],
                        start=False))
                    have = size
                per_size: dict[str, Any] = {"kernel_side": kernel_side(environment)}
                log(f"{size} containers, kernel side: {per_size['kernel_side']}")
                for pool in args.pools:
                    figures: dict[str, Any] = {}
                    log(f"{size} containers, pool {pool}: {args.cold} cold views")
                    figures["cold"], figures["start_ms"] = cold_views(
                        browser, environment, pool, args.cold)
                    server = start_server(environment, pool)
                    try:
                        log(f"{size} containers, pool {pool}: {args.warm} warm views")
                        figures["warm"] = warm_views(browser, server, pool, args.warm, False)
                        log(f"{size} containers, pool {pool}: {args.warm} back to back")
                        figures["back_to_back"] = warm_views(browser, server, pool,
                                                             args.warm, True)
                        if (size == args.sizes[0] and args.viewers
                                and pool == max(args.pools)):
                            log(f"pool {pool}: memory with {args.viewers} viewers")
                            figures["memory"] = memory_with_viewers(browser, server, pool,
                                                                    args.viewers)
                        if size == args.sizes[0] and args.leak and pool == max(args.pools):
                            log(f"pool {pool}: {args.leak} views for leaks")
                            figures["leak"] = leak_check(browser, server, pool, args.leak)
                    finally:
                        server.stop()
                    per_size[f"pool {pool}"] = figures
                    results["sizes"][size] = per_size
                    if args.json:  # what is measured so far, should a later step fail
                        args.json.write_text(json.dumps(results, default=vars, indent=1))
        finally:
            browser.close()
    return results


def _p(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction):,.0f}" if values else "-"


def report(results: dict[str, Any], engine_label: str, args: argparse.Namespace) -> str:
    lines = ["### Dashboard views (`bench/dashboard_views.py`)", "",
             run_line(engine_label) + f"  load={results['load']}", "",
             "Navigation start -> first container row in Chromium, `ghostpanel up` on a "
             "private engine; p50 / p90 of the views in ms (nearest rank). `pool 0`: a "
             "kernel started per view (the dashboard before issue 11); `pool 1`: one "
             "preheated kernel (the default now). Beside the first row, p50 of: the HTML's "
             "first and last byte, DOMContentLoaded, BokehJS loaded (the inline loader ran), "
             "the dashboard's first widget drawn, the container list's Tabulator view made "
             "(empty).", "",
             "| containers | pool | views | first row p50 | p90 | target | HTML first byte "
             "| HTML done | DOM ready | Bokeh loaded | dashboard shown | table view | HTML KiB |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, per_size in results["sizes"].items():
        for pool in args.pools:
            figures = per_size[f"pool {pool}"]
            for kind in ("cold", "warm", "back_to_back"):
                series: Series = figures[kind]
                first = series.column("first_row" if require_visible else "row_in_dom")
                target = TARGET_MS.get(size, 0)
                met = "" if not first else (" ok" if percentile(first, 0.5) <= target
                                            else " MISSED")
                kb = series.column("html_bytes")
                clicks = int(sum(series.column("clicked")))
                if clicks:
                    kind += f", {clicks} clicked"
                if series.failures:
                    kind += f", {series.failures} never showed a row"

                size_kib = f"{statistics.median(kb) / 1024:,.0f}" if kb else "-"
                lines.append(
                    f"| {size:,} | {pool} | {kind.replace('_', ' ')} ({len(first)}) | "
                    f"{_p(first, 0.5)} | {_p(first, 0.9)} | {target:,.0f}{met} | "
                    f"{_p(series.column('first_byte'), 0.5)} | "
                    f"{_p(series.column('html_done'), 0.5)} | "
                    f"{_p(series.column('dom_ready'), 0.5)} | "
                    f"{_p(series.column('bokeh_loaded'), 0.5)} | "
                    f"{_p(series.column('dashboard_shown'), 0.5)} | "
                    f"{_p(series.column('table_view'), 0.5)} | {size_kib} |")
    lines += ["", "Server start (command -> URL printed; with a pool, once the first "
              "kernel is ready), ms p50: " + ", ".join(
                  f"{size:,} containers pool {pool}: "
                  f"{_p(per_size[f'pool {pool}']['start_ms'], 0.5)}"
                  for size, per_size in results["sizes"].items() for pool in args.pools)]
    lines += ["", "Kernel side (fresh interpreter, median of 3; what the notebook's first "
              "cell does before a preheated kernel waits):", "",
              "| containers | step | ms | +RSS MiB |", "|---:|---|---:|---:|"]
    for size, per_size in results["sizes"].items():
        for step, cost in per_size["kernel_side"].items():
            lines.append(f"| {size:,} | {step} | {cost['ms']:,.0f} | {cost['mib']:,.0f} |")
    first_size = next(iter(results["sizes"]))
    for pool in args.pools:
        memory = results["sizes"][first_size][f"pool {pool}"].get("memory")
        if not memory:
            continue
        lines += ["", f"Memory, pool {pool}, {first_size} containers (MiB; kernel RSS/USS: "
                  "median per kernel; PSS shares the libraries' pages among processes):",
                  "", "| pages open | kernels | server RSS | kernel RSS | kernel USS | "
                  "total RSS | total PSS | PSS per viewer (vs 1 page) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        one = next((row for row in memory if row["viewers"] == 1), None)
        for row in memory:
            per = ("-" if one is None or row["viewers"] <= 1 else
                   f"{(row['total_pss'] - one['total_pss']) / (row['viewers'] - 1):,.0f}")
            lines.append(f"| {row['viewers']} | {row['kernels']} | {row['server_rss']:,.0f} | "
                         f"{row['kernel_rss']:,.0f} | {row['kernel_uss']:,.0f} | "
                         f"{row['total_rss']:,.0f} | {row['total_pss']:,.0f} | {per} |")
    for pool in args.pools:
        leak = results["sizes"][first_size][f"pool {pool}"].get("leak")
        if leak:
            lines += ["", f"Leak check, pool {pool}: {leak['views']} views one after the "
                      f"other: kernels {leak['before']['kernels']} before, at most "
                      f"{leak['peak_kernels']} during, {leak['after']['kernels']} after; "
                      f"processes under the server {leak['before']['processes']} -> "
                      f"{leak['after']['processes']}; Voila server RSS "
                      f"{leak['before']['server_rss']:,.0f} -> "
                      f"{leak['after']['server_rss']:,.0f} MiB."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_engine_option(parser)
    parser.add_argument("--sizes", default="3,1000",
                        type=lambda text: [int(part) for part in text.split(",")])
    parser.add_argument("--pools", default="0,1",
                        type=lambda text: [int(part) for part in text.split(",")])
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--leak", type=int, default=100)
    parser.add_argument("--viewers", default="1,5,10",
                        type=lambda text: [int(part) for part in text.split(",") if part])
    parser.add_argument("--in-dom", action="store_true",
                        help="a view ends when a row is in the page, shown or not")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    if sorted(args.sizes) != args.sizes:
        parser.error("--sizes must grow (containers are added, never removed)")
    global require_visible
    require_visible = not args.in_dom
    interrupt_on_sigterm()
    engine = BenchEngine(args.engine)
    results = measure_on(engine, lambda: measure(engine, args))
    if results is None:
        return 130
    if args.json:
        args.json.write_text(json.dumps(results, default=vars, indent=1))
    publish_report(report(results, engine.label, args), "bench/dashboard_views.py",
                   update=args.update_results, section="Dashboard")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
