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

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis

from tests.agent_process import RunningAgent, agent_factory_fixture, agent_fixture  # noqa: F401
from tests.schemathesis_run import Fuzzer, fuzz_cleanup_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

#: Examples per operation and generation mode.
EXAMPLES = 12
#: The whole run's budget, in seconds (the brief's bound).
BUDGET = 60.0

#: The operation whose ``force`` would let a generated policy lock the fuzzer out.
_LOCKOUT = ("POST", "/api/v1/network/quic")


def _sender(agent: RunningAgent) -> Callable[[schemathesis.Case], Any]:
    """How a case reaches the agent: with its token and its CA."""

    def send(case: schemathesis.Case) -> Any:
        # The token always, whatever the case made of the bearer scheme: the routes are
        # under test here (authentication has its own tests), and failed attempts would
        # get this peer rate-limited (429) for the rest of the run.
        case.headers = {**(case.headers or {}), **agent.headers}
        if (case.method.upper(), case.path) == _LOCKOUT and isinstance(case.query, dict):
            case.query.pop("force", None)
        return case.call(base_url=agent.url, verify=str(agent.ca_cert), timeout=30)

    return send


@pytest.mark.usefixtures("fuzz_cleanup")
def test_no_5xx_and_answers_conform_to_the_document(agent: RunningAgent) -> None:
    with agent.client() as http:
        document = http.get("/api/v1/openapi.json").json()
    run = Fuzzer(_sender(agent), EXAMPLES).run_all(document)
    statuses = run.statuses
    print(run.summary())
    assert not run.failures, "\n\n".join(run.failures)
    assert run.operations >= 20, f"only {run.operations} operations in the document"
    # Every operation was called, in both modes (Hypothesis may stop early on an
    # operation with few distinct inputs, never at none).
    assert statuses.total() >= run.operations * 2, statuses
    assert not statuses.keys() & {401, 403, 429}, statuses
    assert run.elapsed < BUDGET, f"the run took {run.elapsed:.1f} s"
