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

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
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
from tests.gateway_process import (  # noqa: F401 (fixtures)
    RunningGateway,
    gateway_factory_fixture,
    gateway_fixture,
)

pytestmark = pytest.mark.integration

#: Examples per operation and generation mode.
EXAMPLES = 8
#: The whole run's budget, in seconds.
BUDGET = 120.0

schemathesis.serializer.alias("application/toml", "text/plain")


async def _leftovers(env: Environment) -> tuple[set[str], set[str], set[str]]:
    return ({c.id for c in await env.containers.list(all=True)},
            {n.name for n in await env.networks.list()},
            {v.name for v in await env.volumes.list()})


@pytest.fixture
async def fuzz_cleanup(env: Environment) -> AsyncIterator[None]:
    """Remove what the fuzzed requests created (a valid create does create)."""
    before = await _leftovers(env)
    yield
    now = await _leftovers(env)
    for ident in now[0] - before[0]:
        with contextlib.suppress(NotFound):
            await (await env.containers.get(ident)).remove(force=True, volumes=True)
    for name in now[1] - before[1]:
        with contextlib.suppress(NotFound):
            await (await env.networks.get(name)).remove()
    for name in now[2] - before[2]:
        with contextlib.suppress(NotFound):
            await (await env.volumes.get(name)).remove(force=True)


def _pinned(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every environment ``name`` parameter pinned to ``prod``."""
    for item in document["paths"].values():
        for parameter in item.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "name":
                parameter["schema"] = {"type": "string", "enum": ["prod"]}
    return document


class _Fuzzer:
    def __init__(self, gateway: RunningGateway, token: str) -> None:
        self.gateway = gateway
        self.token = token
        self.statuses: Counter[int] = Counter()

    def call(self, case: schemathesis.Case, mode: GenerationMode) -> None:
        # The token always, whatever the case made of the scheme: the routes are under
        # test here (authentication has its own tests).
        case.headers = {**(case.headers or {}), "Authorization": f"token {self.token}"}
        if (case.method.upper(), case.path) == ("POST", "/env/{name}/api/v1/network/quic") \
                and isinstance(case.query, dict):
            case.query.pop("force", None)
        response = case.call(base_url=self.gateway.url.rstrip("/"), timeout=30)
        self.statuses[response.status_code] += 1
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks += [status_code_conformance, content_type_conformance,
                       response_schema_conformance]
        case.validate_response(response, checks=checks)

    def run(self, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            self.call(case, mode)

        fuzz()


@pytest.mark.usefixtures("fuzz_cleanup")
@pytest.mark.parametrize("token", ["admin", "view-blue"])
def test_no_5xx_through_the_gateway(gateway: RunningGateway, token: str) -> None:
    with gateway.client(token) as http:
        document = http.get("api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(_pinned(document))
    fuzzer = _Fuzzer(gateway, token)
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
    assert operations >= 30, f"only {operations} operations in the document"
    assert statuses.total() >= operations * 2, statuses
    assert 401 not in statuses, statuses
    assert elapsed < BUDGET, f"the run took {elapsed:.1f} s"
