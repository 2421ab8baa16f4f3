"""Helpers of the tests that run processes in containers: a running container, a
session's output up to a marker, the processes a container runs.

Shared by the engine's own exec sessions (``test_exec_session.py``), the same sessions
through an agent (``test_api_exec.py``) and the shell widget, so that each compares the
same things the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ghostpanel_kernel.engine import Container, ExecSession

__all__ = ["MakeContainer", "exec_processes", "read_until", "running"]

#: The ``make_container`` fixture of ``tests/integration/conftest.py``.
MakeContainer = Callable[..., Awaitable[Any]]


async def running(make_container: MakeContainer) -> Container:
    """A new container (``make_container``'s defaults), started."""
    container: Container = await make_container()
    await container.start()
    return container


async def read_until(session: ExecSession, wanted: bytes, timeout: float = 20) -> bytes:
    """The session's output up to and including ``wanted``.

    Raises
    ------
    AssertionError
        The output ended first (the message shows what came).
    TimeoutError
        ``wanted`` did not come within ``timeout`` seconds.
    """
    seen = b""
    async with asyncio.timeout(timeout):
        while wanted not in seen:
            chunk = await session.receive()
            assert chunk, f"the output ended before {wanted!r}: {seen!r}"
            seen += chunk
    return seen


async def exec_processes(container: Container) -> str:
    """``ps`` in the container, without its own line."""
    result = await container.exec(["ps", "-o", "pid,args"])
    return "\n".join(line for line in result.stdout.splitlines() if " ps " not in line)
