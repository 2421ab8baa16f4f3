"""Fan-out: one operation on many environments at once, each result on its own.

One slow or dead host must not hold up the rest: every environment runs in its own task
under its own deadline, and whatever it raises is recorded as its result rather than
raised out, so a dashboard can show nine hosts and one red line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..engine import EngineTimeout, Environment
from ._spec import EnvironmentSpec

__all__ = ["FanOutResult", "fan_out"]

T = TypeVar("T")


@dataclass(frozen=True)
class FanOutResult(Generic[T]):
    """What one environment gave in a :func:`fan_out`: a value or an error.

    Parameters
    ----------
    environment
        The environment's name.
    value
        What the operation returned; None when it failed.
    error
        What the operation raised (an :class:`EngineTimeout` when it ran out of time);
        None when it succeeded.
    elapsed
        Seconds the operation ran on this environment.

    Examples
    --------
    >>> result = FanOutResult("us-east-1", value=True, error=None, elapsed=0.004)
    >>> result.ok
    True
    """

    environment: str
    value: T | None
    error: BaseException | None
    elapsed: float

    @property
    def ok(self) -> bool:
        """True when the operation succeeded on this environment."""
        return self.error is None


async def fan_out(environments: Sequence[EnvironmentSpec | Environment],
                  operation: Callable[[Environment], Awaitable[T]], *,
                  timeout: float = 10.0) -> list[FanOutResult[T]]:
    """Run ``operation`` on every environment concurrently; never raise their errors.

    Parameters
    ----------
    environments
        Specs (opened here, and closed when their operation ends) or open
        :class:`Environment` objects (used as they are, and left open).
    operation
        An async function of one environment, e.g. ``lambda env: env.containers.list()``.
    timeout
        Seconds each environment's operation may take; past it, that environment's
        result is an :class:`EngineTimeout` while the others go on.

    Returns
    -------
    list of FanOutResult
        One per environment, in the order given, whether it succeeded or not.

    Raises
    ------
    asyncio.CancelledError
        ``fan_out`` itself was cancelled; every operation is cancelled with it.

    Examples
    --------
    >>> results = await fan_out(registry.select(["all"]),
    ...                         lambda env: env.containers.list())     # doctest: +SKIP
    >>> for r in results:                                              # doctest: +SKIP
    ...     print(r.environment, len(r.value) if r.ok else r.error)
    us-east-1 12
    gpu-1 no answer from 10.0.0.9:2376 in time (engine at https://10.0.0.9:2376)
    """

    async def run_one(item: EnvironmentSpec | Environment) -> FanOutResult[T]:
        owned = isinstance(item, EnvironmentSpec)
        started = time.perf_counter()
        value: T | None = None
        error: BaseException | None = None
        environment: Environment | None = None
        deadline = asyncio.timeout(timeout)
        try:
            environment = item.open() if isinstance(item, EnvironmentSpec) else item
            async with deadline:
                value = await operation(environment)
        except TimeoutError as exc:
            # Only our own deadline becomes an EngineTimeout; a TimeoutError the
            # operation raised by itself is reported as it is.
            error = exc
            if deadline.expired():
                error = EngineTimeout(f"no result within {timeout:g} s", endpoint=item.url)
        except Exception as exc:  # recorded, not raised: see the module docstring
            error = exc
        finally:
            if owned and environment is not None:
                await environment.aclose()
        return FanOutResult(item.name, value=value, error=error,
                            elapsed=time.perf_counter() - started)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run_one(item)) for item in environments]
    return [task.result() for task in tasks]
