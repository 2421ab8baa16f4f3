"""Alerts on the real Podman engine: a container that burns CPU, one that grows its
memory and one that crash-loops make their alerts fire, once each, and resolve once
stopped; a loopback webhook receives exactly those notifications.

Short windows, ``for`` and a 0.3 s sampling interval keep the whole module to seconds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.metrics._alert_delivery import WebhookDelivery
from ghostpanel_kernel.metrics._alert_rules import parse_rules
from ghostpanel_kernel.metrics._alerts import AlertEvaluator
from ghostpanel_kernel.metrics._sampler import Sampler
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.integration.alert_hook import Hook, hook_fixture  # noqa: F401
from tests.integration.conftest import MakeContainer, unique

pytestmark = pytest.mark.integration

INTERVAL = 0.3


async def _until(evaluator: AlertEvaluator, done: Any, limit: float) -> None:
    """Evaluate a round per sampling interval until ``done()`` or ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        await evaluator.evaluate()
        await evaluator.flush()
        await asyncio.sleep(INTERVAL)


async def test_cpu_memory_and_crash_loop_alerts_fire_and_resolve(
        env: Environment, make_container: MakeContainer, hook: Hook,
        tmp_path: Path) -> None:
    prefix = unique("gp-alert")
    burner = await make_container(name=f"{prefix}-cpu", cpus=0.5,
                                  command=["sh", "-c", "while :; do :; done"])
    # Appends 256 KiB to a shell variable every 0.1 s: a steady leak, bounded by the
    # memory limit (and the test stops it within seconds).
    grower = await make_container(name=f"{prefix}-mem", memory="256m", command=[
        "sh", "-c", "x=; while :; do x=\"$x$(head -c 262144 /dev/zero | tr '\\0' a)\"; "
                    "sleep 0.1; done"])
    crasher = await make_container(name=f"{prefix}-loop", restart_policy="always",
                                   command=["sh", "-c", "sleep 0.2; exit 1"])
    rules = parse_rules({"webhook": hook.url, "rules": [
        # Bounds far below what the containers do, and keep_firing_for over a few
        # rounds: on a loaded test host the burner gets less than its 0.5 cores, rounds
        # come late and a shell variable's working set is noisy (each append copies it).
        {"name": "cpu", "kind": "cpu_saturated", "fraction": 0.3, "for": "0.6s",
         "keep_firing_for": "2s", "containers": [f"{prefix}-cpu"], "severity": "critical"},
        {"name": "leak", "kind": "memory_growth", "window": "4s", "min_samples": 3,
         "min_rate": "128KiB/s", "keep_firing_for": "3s",
         "containers": [f"{prefix}-mem"]},
        {"name": "loop", "kind": "restart_loop", "restarts": 2, "window": "5s",
         "for": "0.3s", "keep_firing_for": "2s", "containers": [f"{prefix}-loop"]}]})
    store = MetricsStore(tmp_path / "metrics")
    sampler = Sampler(env, store, INTERVAL, environment=env.name)
    evaluator = AlertEvaluator(env, store, rules,
                               deliveries=[WebhookDelivery(hook.url, backoff=0.05)],
                               environment=env.name)
    sampler.start()
    try:
        for container in (burner, grower, crasher):
            await container.start()
        wanted = {("firing", "cpu", burner.name), ("firing", "leak", grower.name),
                  ("firing", "loop", crasher.name)}
        await _until(evaluator, lambda: wanted <= set(hook.notified()), 25)
        assert wanted <= set(hook.notified()), (
            hook.notified(), sampler.rounds,
            [r for r in store.rows(metrics="cpu_cores", containers=burner.name)][-5:])
        firing = {a["rule"]: a for a in evaluator.state.alerts(states=("firing",))}
        assert set(firing) == {"cpu", "leak", "loop"}, (hook.notified(),
                                                        evaluator.state.alerts())
        assert firing["cpu"]["value"] >= 0.3 and firing["cpu"]["severity"] == "critical"
        assert firing["leak"]["value"] >= 512 * 1024
        assert firing["loop"]["value"] >= 2

        await burner.kill()
        await grower.kill()
        # Stopped, not killed: between two restarts it is not running, and a stop
        # also ends the restart policy's loop.
        await crasher.stop(timeout=0)
        resolved = {("resolved", status[1], status[2]) for status in wanted}
        await _until(evaluator, lambda: resolved <= set(hook.notified()), 20)
        notified = hook.notified()
        assert resolved <= set(notified), (notified, evaluator.state.alerts())
        # One notification per firing and one per resolve: no storm over ~30 rounds.
        assert sorted(notified) == sorted(wanted | resolved)
        assert all(body["environment"] == env.name for body in hook.bodies)
    finally:
        await sampler.aclose()
        await evaluator.aclose()
        store.close()
