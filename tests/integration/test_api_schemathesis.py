"""Schemathesis over the whole ``/api/v1`` OpenAPI document, against a real agent.

Every operation the agent documents is fuzzed on a real ``ghostpanel agent`` in front
of the session's private Podman engine: schema-valid requests (positive) and invalid
ones (negative), a bounded number of each per operation so the run stays near half a
minute. Each answer must not be a 5xx and must conform to the document: a status it
lists, its content type, its schema.

Nothing is excluded: the WebSocket routes are documented as the ``GET`` of their
handshake, and a plain ``GET`` without the upgrade is a 4xx like any bad request. One
value is held back: ``force`` on ``POST /api/v1/network/quic``, which lets a policy
shut out its own caller -- a generated valid policy with it would lock the fuzzer out
(403) for the rest of the run, and every later answer would test only the refusal.
Cases are derandomized so that a failure repeats on the next run.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

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
from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401

pytestmark = pytest.mark.integration

#: Examples per operation and generation mode.
EXAMPLES = 12
#: The whole run's budget, in seconds (the brief's bound).
BUDGET = 60.0

# A Boltfile body is TOML text: sent as the text it is.
schemathesis.serializer.alias("application/toml", "text/plain")


#: The operation whose ``force`` would let a generated policy lock the fuzzer out.
_LOCKOUT = ("POST", "/api/v1/network/quic")


async def _leftovers(env: Environment) -> tuple[set[str], set[str], set[str]]:
    containers = {c.id for c in await env.containers.list(all=True)}
    networks = {n.name for n in await env.networks.list()}
    volumes = {v.name for v in await env.volumes.list()}
    return containers, networks, volumes


@pytest.fixture
async def fuzz_cleanup(env: Environment) -> AsyncIterator[None]:
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


class _Fuzzer:
    """Calls one agent with fuzzed cases and checks its answers, counting statuses."""

    def __init__(self, agent: RunningAgent) -> None:
        self.agent = agent
        self.statuses: Counter[int] = Counter()

    def call(self, case: schemathesis.Case, mode: GenerationMode) -> None:
        """Send ``case`` and check the answer (no 5xx; positive cases: conformance)."""
        # The token always, whatever the case made of the bearer scheme: the routes are
        # under test here (authentication has its own tests), and failed attempts would
        # get this peer rate-limited (429) for the rest of the run.
        case.headers = {**(case.headers or {}), **self.agent.headers}
        if (case.method.upper(), case.path) == _LOCKOUT and isinstance(case.query, dict):
            case.query.pop("force", None)
        response = case.call(base_url=self.agent.url, verify=str(self.agent.ca_cert),
                             timeout=30)
        self.statuses[response.status_code] += 1
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks += [status_code_conformance, content_type_conformance,
                       response_schema_conformance]
        case.validate_response(response, checks=checks)

    def run(self, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
        """At most :data:`EXAMPLES` cases of ``operation`` in ``mode``."""

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            self.call(case, mode)

        fuzz()


@pytest.mark.usefixtures("fuzz_cleanup")
def test_no_5xx_and_answers_conform_to_the_document(agent: RunningAgent) -> None:
    with agent.client() as http:
        document = http.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    fuzzer = _Fuzzer(agent)
    failures: list[str] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzzer.run(operation, mode)
            except (Exception, BaseExceptionGroup) as error:  # every failure, not the first
                failures.append(f"{operation.label} [{mode}]: {error}")
    elapsed = time.monotonic() - started
    statuses = fuzzer.statuses
    print(f"{operations} operations, {statuses.total()} requests in {elapsed:.1f} s: "
          f"{dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
    assert operations >= 20, f"only {operations} operations in the document"
    # Every operation was called, in both modes (Hypothesis may stop early on an
    # operation with few distinct inputs, never at none).
    assert statuses.total() >= operations * 2, statuses
    assert not statuses.keys() & {401, 403, 429}, statuses
    assert elapsed < BUDGET, f"the run took {elapsed:.1f} s"
