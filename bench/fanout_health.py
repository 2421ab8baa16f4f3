"""Fan-out with dead hosts: ``ghostpanel ps --env all`` over 100 environments plus one
silent and one black-holed host, before and after the dead ones are remembered.

Run from the repository root (needs podman + runc + busybox-static, as ``bench/run.py``)::

    PYTHONPATH=. .venv/bin/python bench/fanout_health.py                  # ~1 min
    PYTHONPATH=. .venv/bin/python bench/fanout_health.py --update-results # + RESULTS.md

What it sets up:

* a private Podman engine (or ``--engine unix:///...``) holding a few labelled
  containers, created not started;
* 100 environments in a fresh GhostPanel home, all on that engine's socket (one named
  ``local``, so that no local-engine detection runs; ``env-001`` ... ``env-099``);
* ``silent``: a loopback TCP server that accepts every connection and never answers;
* ``black-holed``: a loopback listening socket with a backlog of 0 that never accepts,
  its queue filled by the bench's own connections, so the kernel drops every further
  SYN and a connect never completes. Loopback only: no packet leaves this machine.

What it times, each as the median and range of ``--repeats`` runs (the first call once
per fresh health record): the whole command as a user runs it (a new ``python -m
ghostpanel_kernel.cli`` process: interpreter start and imports included), and the same
command in-process (``CliRunner``: the fan-out, the registry and the table only).
Every run's output is checked: 100 environments' rows and the expected warnings.

Targets (issue 7, item 6): first call with the two dead hosts <= 3.5 s, next calls
<= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import (
    LABEL,
    BenchEngine,
    add_engine_option,
    interrupt_on_sigterm,
    log,
    publish_report,
)
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.environments import EnvironmentRegistry

REPOSITORY = Path(__file__).resolve().parents[1]
ENVIRONMENTS = 100
FIRST_TARGET = 3.5
NEXT_TARGET = 1.0


# -- the dead hosts (loopback only) --------------------------------------------------


@contextlib.contextmanager
def silent_host() -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` that accepts connections, reads nothing, answers nothing."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


@contextlib.contextmanager
def black_holed_host() -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` whose SYNs are dropped: connect never completes.

    A listener with backlog 0 that never accepts holds one finished handshake in its
    queue; once that is full, Linux drops new SYNs (the client retransmits, then times
    out), the same thing a firewall's DROP rule does to a remote host.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass  # as intended: the SYN was dropped
    else:
        raise RuntimeError("the black-holed host accepted a connection")
    finally:
        probe.close()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- running the command -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    rows: int
    warnings: list[str]


def run_process(home: Path, args: list[str]) -> Run:
    environment = {**os.environ, "GHOSTPANEL_HOME": str(home),
                   "PYTHONPATH": str(REPOSITORY)}
    environment.pop("GHOSTPANEL_DATABASE_URL", None)
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-m", "ghostpanel_kernel.cli", *args],
                              capture_output=True, text=True, env=environment, timeout=120,
                              check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"ghostpanel {' '.join(args)}: exit {finished.returncode}: "
                           f"{finished.stderr}")
    return Run(seconds, len(finished.stdout.splitlines()) - 1, finished.stderr.splitlines())


def run_in_process(home: Path, args: list[str]) -> Run:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args, env={"GHOSTPANEL_HOME": str(home),
                                                "GHOSTPANEL_DATABASE_URL": None})
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(f"ghostpanel {' '.join(args)}: exit {result.exit_code}: "
                           f"{result.output}")
    return Run(seconds, len(result.stdout.splitlines()) - 1, result.stderr.splitlines())


def start_up() -> float:
    """Seconds for a new interpreter to import what ``ps`` needs, and do nothing else."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ghostpanel_kernel.cli._containers, "
                    "ghostpanel_kernel.environments"], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    return time.perf_counter() - started


def forget_health(home: Path) -> None:
    """Empty the health table: the next call is a first call again."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(home / "ghostpanel.db")) as db, db:
        db.execute("DELETE FROM environment_health")


def check(run: Run, *, rows: int, warnings: dict[str, str]) -> Run:
    """Fail the bench when a run did not list everything or warned otherwise."""
    if run.rows != rows:
        raise RuntimeError(f"{run.rows} rows, expected {rows}")
    seen = {line.split("'")[1]: line for line in run.warnings}
    if sorted(seen) != sorted(warnings):
        raise RuntimeError(f"warnings {run.warnings}, expected for {sorted(warnings)}")
    for name, kind in warnings.items():
        if f"environment {name!r} {kind}" not in seen[name]:
            raise RuntimeError(f"warning for {name!r} is not '{kind}': {seen[name]}")
    return run


@dataclass(frozen=True)
class Figure:
    scenario: str
    mode: str
    seconds: list[float]
    target: float | None


def measure(home: Path, *, per_env: int, repeats: int, args: list[str],
            dead: dict[str, str]) -> list[Figure]:
    """Every scenario in both modes; ``dead`` maps the dead hosts' names to their URLs."""
    rows = ENVIRONMENTS * per_env
    figures: list[Figure] = []
    runners: list[tuple[str, Callable[[Path, list[str]], Run]]] = [
        ("command (new process)", run_process), ("in-process (CliRunner)", run_in_process)]
    figures.append(Figure("start-up only: `import` of what `ps` imports", runners[0][0],
                          [start_up() for _ in range(repeats)], None))
    for mode, runner in runners:
        baseline = [check(runner(home, args), rows=rows, warnings={}).seconds
                    for _ in range(repeats)]
        figures.append(Figure("100 environments, all answering", mode, baseline, None))
    registry = EnvironmentRegistry(f"sqlite:///{home / 'ghostpanel.db'}", detect=lambda: None)
    try:
        for name, url in dead.items():
            registry.add(name, url)
    finally:
        registry.close()
    failed = dict.fromkeys(dead, "failed")
    skipped = dict.fromkeys(dead, "skipped")
    for mode, runner in runners:
        first, following, retried = [], [], []
        for _ in range(repeats):
            forget_health(home)
            first.append(check(runner(home, args), rows=rows, warnings=failed).seconds)
            following.append(check(runner(home, args), rows=rows, warnings=skipped).seconds)
        for _ in range(repeats):
            retried.append(check(runner(home, [*args, "--retry"]), rows=rows,
                                 warnings=failed).seconds)
        figures += [
            Figure("+ silent + black-holed: first call", mode, first, FIRST_TARGET),
            Figure("+ silent + black-holed: next call (both skipped)", mode, following,
                   NEXT_TARGET),
            Figure("+ silent + black-holed: --retry (both tried)", mode, retried,
                   FIRST_TARGET),
        ]
    return figures


# -- the report ----------------------------------------------------------------------


def report(figures: list[Figure], *, per_env: int, engine: str, elapsed: float) -> str:
    from ghostpanel_kernel.cli._app import FAN_OUT_CONNECT_TIMEOUT, FAN_OUT_RESPONSE_TIMEOUT

    lines = [
        "### Fan-out with dead hosts (`bench/fanout_health.py`)",
        "",
        f"`ghostpanel ps -a --filter label=... --env all`: {ENVIRONMENTS} environments on "
        f"one private Podman engine ({engine}), {per_env} containers each listed "
        f"({ENVIRONMENTS * per_env} rows), plus a silent host (accepts, never answers) and "
        "a black-holed host (SYNs dropped), both on loopback. Fan-out timeouts: connect "
        f"{FAN_OUT_CONNECT_TIMEOUT:g} s, head of an answer {FAN_OUT_RESPONSE_TIMEOUT:g} s; a "
        "failed host is skipped for 30 s. Seconds: median (min..max) of "
        f"{len(figures[0].seconds)} runs; 'first call' starts each time from an empty "
        "health table.",
        "",
        "| scenario | mode | seconds | target |",
        "|---|---|---|---|",
    ]
    for figure in figures:
        median = statistics.median(figure.seconds)
        target = ""
        if figure.target is not None:
            verdicts = ["met" if value <= figure.target else "MISSED"
                        for value in (median, max(figure.seconds))]
            target = f"<= {figure.target:g} s: median {verdicts[0]}, worst {verdicts[1]}"
        lines.append(f"| {figure.scenario} | {figure.mode} | {median:.2f} "
                     f"({min(figure.seconds):.2f}..{max(figure.seconds):.2f}) | {target} |")
    lines += [
        "",
        "Before this change (issue 7): 0.45 s over 101 answering environments, 10.45 s "
        "on every call with one silent host. A command's time is its start-up (the "
        "first row) plus the in-process time; the targets are the fan-out's, so they are "
        "read on the in-process rows. Run on a 2-core machine shared with other work "
        f"(load average {os.getloadavg()[0]:.1f} at the end); bench wall time "
        f"{elapsed:.0f} s.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_engine_option(parser)
    parser.add_argument("--containers", type=int, default=3,
                        help="labelled containers on the engine (each environment lists them)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--update-results", action="store_true",
                        help="write the figures into bench/RESULTS.md (## Fan-out)")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    started = time.monotonic()
    engine = BenchEngine(args.engine)
    try:
        engine.start()
        asyncio.run(engine.create_containers(args.containers))
        with tempfile.TemporaryDirectory(prefix="gpb-home-") as home_dir, \
                silent_host() as silent, black_holed_host() as black_hole:
            home = Path(home_dir)
            registry = EnvironmentRegistry(f"sqlite:///{home / 'ghostpanel.db'}",
                                           detect=lambda: None)
            try:
                registry.add("local", engine.url)
                for index in range(1, ENVIRONMENTS):
                    registry.add(f"env-{index:03d}", engine.url)
            finally:
                registry.close()
            command = ["ps", "-a", "--filter", f"label={LABEL}={engine.run_id}",
                       "--env", "all"]
            log(f"measuring: {ENVIRONMENTS} environments on {engine.url}, silent {silent}, "
                f"black-holed {black_hole}")
            figures = measure(home, per_env=args.containers, repeats=args.repeats,
                              args=command, dead={"silent": silent, "black-holed": black_hole})
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        engine.close_ignoring_ctrl_c()
    section = report(figures, per_env=args.containers,
                     engine=engine.label,
                     elapsed=time.monotonic() - started)
    publish_report(section, "bench/fanout_health.py", update=args.update_results,
                   section="Fan-out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
