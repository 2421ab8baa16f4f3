"""Fuzzing an OpenAPI document with Schemathesis against a real server: the agent's
``/api/v1`` (``tests/integration/test_api_schemathesis.py``) or the gateway's
(``tests/integration/test_gateway_api_schemathesis.py``).

Both runs check the answers alike -- no 5xx, and for schema-valid (positive) cases a
status, content type and body the document lists -- call every operation in both
generation modes with every failure collected (not only the first), and remove what
the fuzzed creates left on the engine (:func:`fuzz_cleanup_fixture`). What differs --
how a case reaches the server, the examples per operation -- is the caller's.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ghostpanel_kernel.engine import Environment, NotFound

__all__ = ["FuzzRun", "Fuzzer", "fuzz_cleanup_fixture"]

# A Boltfile body is TOML text: sent as the text it is.
schemathesis.serializer.alias("application/toml", "text/plain")


async def _leftovers(env: Environment) -> tuple[set[str], set[str], set[str]]:
    containers = {c.id for c in await env.containers.list(all=True)}
    networks = {n.name for n in await env.networks.list()}
    volumes = {v.name for v in await env.volumes.list()}
    return containers, networks, volumes


@pytest.fixture(name="fuzz_cleanup")
async def fuzz_cleanup_fixture(env: Environment) -> AsyncIterator[None]:
    """Remove what the fuzzed requests created (a valid create or apply does create)."""
    containers, networks, volumes = await _leftovers(env)
    yield
    now = await _leftovers(env)
    for ident in now[0] - containers:
        with contextlib.suppress(NotFound):
            await (await env.containers.get(ident)).remove(force=True, volumes=True)
    for name in now[1] - networks:
        with contextlib.suppress(NotFound):
            await (await env.networks.get(name)).remove()
    for name in now[2] - volumes:
        with contextlib.suppress(NotFound):
            await (await env.volumes.get(name)).remove(force=True)


@dataclass
class FuzzRun:
    """What :meth:`Fuzzer.run_all` did: operations, statuses, seconds, failures."""

    operations: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """``N operations, M requests in S s: {status: count}``, for the test's output."""
        return (f"{self.operations} operations, {self.statuses.total()} requests in "
                f"{self.elapsed:.1f} s: {dict(sorted(self.statuses.items()))}")


class Fuzzer:
    """Sends fuzzed cases with ``send`` and checks the answers, counting statuses.

    Parameters
    ----------
    send : Callable[[schemathesis.Case], Any]
        Calls the server with one case (``case.call(...)`` with the server's address,
        authentication and certificate) and returns the response.
    examples : int
        Cases per operation and generation mode.
    """

    def __init__(self, send: Callable[[schemathesis.Case], Any], examples: int) -> None:
        self.send = send
        self.examples = examples
        self.statuses: Counter[int] = Counter()

    def call(self, case: schemathesis.Case, mode: GenerationMode) -> None:
        """Send ``case`` and check the answer (no 5xx; positive cases: conformance)."""
        response = self.send(case)
        self.statuses[response.status_code] += 1
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks += [status_code_conformance, content_type_conformance,
                       response_schema_conformance]
        case.validate_response(response, checks=checks)

    def run(self, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
        """At most ``examples`` cases of ``operation`` in ``mode``."""

        @settings(max_examples=self.examples, deadline=None, derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            self.call(case, mode)

        fuzz()

    def run_all(self, document: dict[str, Any]) -> FuzzRun:
        """Every operation of ``document`` in both modes; every failure, not the first."""
        schema = schemathesis.openapi.from_dict(document)
        run = FuzzRun(statuses=self.statuses)
        started = time.monotonic()
        for result in schema.get_all_operations():
            operation = result.ok()
            run.operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    self.run(operation, mode)
                except (Exception, BaseExceptionGroup) as error:
                    run.failures.append(f"{operation.label} [{mode}]: {error}")
        run.elapsed = time.monotonic() - started
        return run
