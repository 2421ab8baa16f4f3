"""Schemathesis over the gateway's OpenAPI document, against a real gateway on Podman.

Every operation the gateway documents -- its own routes, and each environment's API
under ``/env/{name}`` -- is fuzzed through a real gateway process
(``tests/gateway_process.py``) in front of the session's engine (environment
``prod``), with schema-valid (positive) and invalid (negative) cases, a bounded number
of each. No answer may be a 5xx; positive cases must conform to the document (a status
it lists, its content type, its schema).

The caller is a hub admin (token ``admin``), so that the routes behind the role checks
are reached rather than refused, and then a viewer (``view-blue``), whose refusals
must be documented answers too; ``name`` is pinned to ``prod`` in the document the
fuzzer reads (an unknown environment is one 404, and would be all it tested). As for
the agent's own run, ``force`` on the QUIC policy is held back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis

from tests.gateway_process import (  # noqa: F401 (fixtures)
    RunningGateway,
    gateway_factory_fixture,
    gateway_fixture,
)
from tests.schemathesis_run import Fuzzer, fuzz_cleanup_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

#: Examples per operation and generation mode.
EXAMPLES = 8
#: The whole run's budget, in seconds.
BUDGET = 120.0


def _pinned(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every environment ``name`` parameter pinned to ``prod``."""
    for item in document["paths"].values():
        for parameter in item.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "name":
                parameter["schema"] = {"type": "string", "enum": ["prod"]}
    return document


def _sender(gateway: RunningGateway, token: str) -> Callable[[schemathesis.Case], Any]:
    """How a case reaches the gateway: with the hub token ``token``."""

    def send(case: schemathesis.Case) -> Any:
        # The token always, whatever the case made of the scheme: the routes are under
        # test here (authentication has its own tests).
        case.headers = {**(case.headers or {}), "Authorization": f"token {token}"}
        if (case.method.upper(), case.path) == ("POST", "/env/{name}/api/v1/network/quic") \
                and isinstance(case.query, dict):
            case.query.pop("force", None)
        return case.call(base_url=gateway.url.rstrip("/"), timeout=30)

    return send


@pytest.mark.usefixtures("fuzz_cleanup")
@pytest.mark.parametrize("token", ["admin", "view-blue"])
def test_no_5xx_through_the_gateway(gateway: RunningGateway, token: str) -> None:
    with gateway.client(token) as http:
        document = http.get("api/v1/openapi.json").json()
    run = Fuzzer(_sender(gateway, token), EXAMPLES).run_all(_pinned(document))
    statuses = run.statuses
    print(run.summary())
    assert not run.failures, "\n\n".join(run.failures)
    assert run.operations >= 30, f"only {run.operations} operations in the document"
    assert statuses.total() >= run.operations * 2, statuses
    assert 401 not in statuses, statuses
    assert run.elapsed < BUDGET, f"the run took {run.elapsed:.1f} s"
