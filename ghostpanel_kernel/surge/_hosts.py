"""Running one operation per environment: in parallel across hosts, in turn on one host.

Environments are usually separate machines, and Surge works on them in parallel. But two
engines can share one machine (a rootful and a rootless Podman, Podman beside Docker, or
the test suite's two engines), and then they share its iptables chains and bridges:
measured with Podman 4.3.1 and netavark, starting containers on two such engines at the
same instant failed 2 times in 8 with ``netavark: iptables: Chain already exists``. So
the environments of one host (every unix socket, and ``tcp://`` to a loopback address,
is "this machine") take their turns, and different hosts run side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from ..engine import Environment

__all__ = ["host_of", "run_per_host"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def host_of(environment: Environment) -> str:
    """The machine an environment's engine runs on, as far as its URL tells.

    Examples
    --------
    >>> host_of(Environment("unix:///run/podman/podman.sock")), \\
    ...     host_of(Environment("tcp://10.0.0.5:2375"))
    ('localhost', '10.0.0.5')
    """
    endpoint = environment.client.endpoint
    if endpoint.socket_path is not None or (endpoint.host or "") in _LOOPBACK:
        return "localhost"
    return endpoint.host or environment.url


async def run_per_host(environments: Sequence[Environment],
                       operation: Callable[[Environment], Awaitable[None]]
                       ) -> dict[str, BaseException]:
    """Run ``operation`` on each environment; return the errors by environment name.

    Environments of one host run one after the other, in the given order; hosts run
    concurrently. An error is recorded and the next environment still runs (the
    operation itself decides whether to stop early). Cancellation is not caught.
    """
    groups: dict[str, list[Environment]] = {}
    for environment in environments:
        groups.setdefault(host_of(environment), []).append(environment)
    errors: dict[str, BaseException] = {}

    async def run_group(group: list[Environment]) -> None:
        for environment in group:
            try:
                await operation(environment)
            except Exception as error:  # recorded per environment, see above
                errors[environment.name] = error

    await asyncio.gather(*(run_group(group) for group in groups.values()))
    return errors
