"""Shared-process mode (``ghostpanel up --shared``): server memory with 1, 10 and 50
viewers, and first-row time, in Chromium.

    PYTHONPATH=. .venv/bin/python bench/dashboard_shared.py [--engine unix:///p.sock]
        [--viewers 1,10,50] [--views 10] [--update-results]

A script, not a test. Without ``--engine`` it starts a private Podman engine
(``bench/_engine.py``) and removes what it made at the end. The GhostPanel home is
temporary (``private_home`` of bench/dashboard_views.py).

What is measured, with 3 running containers:

- **first row**: navigation start -> a Tabulator row with a container's name in it, as
  the page sees it (``performance.now()``, polled every 10 ms through shadow roots);
  ``--views`` views one after the other (each context closed before the next);
- **memory**: RSS, PSS and USS of the server process (the ``--shared`` child and any
  process under it) with 1, 10 and 50 pages open at once (one Chromium context each);
  one more viewer's cost is the growth of the server's PSS per page between counts.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import (
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    measure_on,
    publish_report,
)
from bench._report import load_average, percentile
from bench.dashboard_views import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ENV_NAME,
    NAME_PREFIX,
    RUNNING,
    _descendants,
    create_named,
    memory_mib,
    private_home,
    run_async,
)

ROOT = Path(__file__).resolve().parent.parent
VIEW_TIMEOUT_MS = 120_000
TARGET_VIEWER_MIB = 100.0
_URL = re.compile(r"(http://127\.0\.0\.1:\d+/)")

FIRST_ROW_PROBE = """
(() => {
  window.__gpFirstRow = null;
  const rows = (root, found) => {
    for (const element of root.querySelectorAll('*')) {
      if (element.classList.contains('tabulator-row')) found.push(element);
      if (element.shadowRoot) rows(element.shadowRoot, found);
    }
    return found;
  };
  const timer = setInterval(() => {
    for (const row of rows(document, [])) {
      if (row.textContent.includes('NAME_PREFIX') && row.getClientRects().length > 0) {
        window.__gpFirstRow = performance.now();
        clearInterval(timer);
        return;
      }
    }
  }, 10);
})();
""".replace("NAME_PREFIX", NAME_PREFIX)


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def memory(self) -> dict[str, float]:
        """Memory of the processes under ``ghostpanel up --shared`` (the Panel server)."""
        total = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
        for pid in _descendants(self.process.pid):
            with contextlib.suppress(Exception):
                for key, value in memory_mib(pid).items():
                    total[key] += value
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(environment: dict[str, str]) -> Server:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "ghostpanel_kernel.cli", "up", "--shared", "--env", ENV_NAME,
         "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=environment, cwd=ROOT)
    server = Server(process)
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line.rstrip("\n"))
            match = _URL.search(line)
            if line.startswith("GhostPanel shared dashboard:") and match:
                server.url = match.group(1)
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120):
        server.stop()
        raise RuntimeError("ghostpanel up --shared printed no URL:\n" + "\n".join(server.lines))
    return server


def open_view(browser: Any, url: str) -> tuple[Any, float]:
    """A new context on the dashboard; (the context, ms to its first row)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.add_init_script(FIRST_ROW_PROBE)
    page = context.new_page()
    page.goto(url, wait_until="commit", timeout=VIEW_TIMEOUT_MS)
    page.wait_for_function("window.__gpFirstRow !== null", timeout=VIEW_TIMEOUT_MS,
                           polling=50)
    return context, float(page.evaluate("window.__gpFirstRow"))


def settle_memory(server: Server) -> dict[str, float]:
    """The server's memory once it stopped moving (sessions built, garbage collected)."""
    time.sleep(2.0)
    return server.memory()


def measure(engine: BenchEngine, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"load": load_average(), "memory": {}, "first_row": []}
    run_async(create_named(engine, [f"{NAME_PREFIX}{i}" for i in range(RUNNING)],
                           start=True))
    with private_home(engine.url) as environment, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        server = start_server(environment)
        try:
            results["idle"] = settle_memory(server)
            for _ in range(args.views):
                context, ms = open_view(browser, server.url)
                results["first_row"].append(ms)
                context.close()
            log(f"first row: {results['first_row']}")
            contexts: list[Any] = []
            for count in args.viewers:
                while len(contexts) < count:
                    contexts.append(open_view(browser, server.url)[0])
                results["memory"][count] = settle_memory(server)
                log(f"{count} viewers: {results['memory'][count]}")
            for context in contexts:
                context.close()
            # Bokeh ends a session some seconds after its page went (the server checks
            # every 2 s): its table and its events follower must go with it.
            time.sleep(8.0)
            results["after"] = settle_memory(server)
            log(f"all left: {results['after']}")
        finally:
            server.stop()
            browser.close()
    return results


def report(results: dict[str, Any], label: str, args: argparse.Namespace) -> str:
    rows = results["first_row"]
    memory = results["memory"]
    counts = sorted(memory)
    lines = [
        f"`ghostpanel up --shared`, {RUNNING} running containers, engine: {label}, "
        f"load {results['load']}. Chromium, one context per viewer.",
        "",
        f"First row ({len(rows)} views one after the other): p50 "
        f"{percentile(rows, 0.5):.0f} ms, p90 {percentile(rows, 0.9):.0f} ms.",
        "",
        "| viewers | server RSS MiB | server PSS MiB | server USS MiB |",
        "|---|---|---|---|",
        f"| 0 | {results['idle']['rss']:.0f} | {results['idle']['pss']:.0f} | "
        f"{results['idle']['uss']:.0f} |",
    ]
    lines += [f"| {n} | {memory[n]['rss']:.0f} | {memory[n]['pss']:.0f} | "
              f"{memory[n]['uss']:.0f} |" for n in counts]
    if "after" in results:
        lines.append(f"| 0 (all left) | {results['after']['rss']:.0f} | "
                     f"{results['after']['pss']:.0f} | {results['after']['uss']:.0f} |")
    if len(counts) > 1:
        per = (memory[counts[-1]]["pss"] - memory[counts[0]]["pss"]) / (counts[-1] - counts[0])
        verdict = "meets" if per <= TARGET_VIEWER_MIB else "misses"
        lines += ["", f"One more viewer: {per:.1f} MiB of server PSS ({counts[0]} -> "
                      f"{counts[-1]} viewers), {verdict} the {TARGET_VIEWER_MIB:.0f} MiB "
                      "target (a Voila viewer: a kernel of ~180 MiB, see Dashboard above)."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_engine_option(parser)
    parser.add_argument("--viewers", default="1,10,50",
                        type=lambda text: [int(part) for part in text.split(",") if part])
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    interrupt_on_sigterm()
    engine = BenchEngine(args.engine)
    results = measure_on(engine, lambda: measure(engine, args))
    if results is None:
        return 130
    publish_report(report(results, engine.label, args), "bench/dashboard_shared.py",
                   update=args.update_results, section="Dashboard")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
