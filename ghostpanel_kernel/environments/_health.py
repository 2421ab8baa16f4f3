"""Environment health: remember which engines failed, and skip them for a while.

Without memory, one silent host costs every fan-out its full timeout (10 s on each
``ghostpanel ps --env all`` while 100 other hosts answer in half a second). The
registry keeps each environment's last success and last failure (with why), and
:func:`fan_out_with_health` does not try again an environment that failed within the
last :data:`SKIP_WINDOW` seconds when it runs with others: that one gets an
:class:`EnvironmentSkipped` result saying since when and why, and costs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from .._exceptions import AgentAuthError, EngineAPIError, EngineConnectionError
from ..engine import Environment
from ._fanout import FanOutResult, fan_out
from ._spec import EnvironmentSpec

if TYPE_CHECKING:
    from ..store import StoreError
    from ._registry import EnvironmentRegistry

__all__ = ["SKIP_WINDOW", "EnvironmentHealth", "EnvironmentSkipped", "fan_out_with_health",
           "health_outcome"]

T = TypeVar("T")

#: Seconds after a failure during which a fan-out skips the environment.
SKIP_WINDOW = 30.0


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC time (SQLite gives naive UTC times back)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


@dataclass(frozen=True)
class EnvironmentHealth:
    """What the registry remembers of an environment's engine.

    Parameters
    ----------
    name, url
        The environment, and the endpoint these facts are about.
    last_success, last_failure
        When the engine last answered (any answer, an error status included), and when
        it last could not be reached; aware UTC times, or None.
    failing_since
        The first failure after the last success, while it is failing; else None.
    failure
        Why the last failure happened (one line), or None.

    Examples
    --------
    >>> now = datetime(2026, 12, 7, 16, 40, 10, tzinfo=UTC)
    >>> health = EnvironmentHealth("gpu-1", "tcp://10.0.0.9:2375", last_success=None,
    ...     last_failure=now.replace(second=2), failing_since=now.replace(second=2),
    ...     failure="connection refused")
    >>> health.failing, health.recently_failed(now=now)
    (True, True)
    """

    name: str
    url: str
    last_success: datetime | None
    last_failure: datetime | None
    failing_since: datetime | None
    failure: str | None

    def __post_init__(self) -> None:
        for field in ("last_success", "last_failure", "failing_since"):
            object.__setattr__(self, field, _utc(getattr(self, field)))

    @property
    def failing(self) -> bool:
        """True when the last thing known is a failure."""
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure >= self.last_success

    def recently_failed(self, *, now: datetime | None = None,
                        window: float = SKIP_WINDOW) -> bool:
        """Whether it is failing and the failure is less than ``window`` seconds old.

        A failure dated in the future (the clock was set back) does not count: it
        would otherwise skip the environment for as long as the clock lags.
        """
        if not self.failing or self.last_failure is None:
            return False
        age = ((now or datetime.now(UTC)) - self.last_failure).total_seconds()
        return 0 <= age < window

    def describe(self, *, now: datetime | None = None) -> str:
        """One line for ``env ls``: ``ok 4 s ago`` or ``failing since ...: why``.

        Examples
        --------
        >>> EnvironmentHealth("a", "tcp://h:2375", None, None, None, None).describe()
        'unknown'
        """
        now = now or datetime.now(UTC)
        if self.failing and self.last_failure is not None:
            since = self.failing_since or self.last_failure
            return (f"failing since {_clock(since)}, last tried "
                    f"{_ago((now - self.last_failure).total_seconds())}: {self.failure}")
        if self.last_success is not None:
            return f"ok {_ago((now - self.last_success).total_seconds())}"
        return "unknown"


class EnvironmentSkipped(EngineConnectionError):
    """A fan-out did not try this environment: it failed moments ago.

    A kind of :class:`EngineConnectionError`: as far as the caller knows, the engine
    cannot be reached. ``health`` holds what was remembered.
    """

    health: EnvironmentHealth | None = None

    @classmethod
    def from_health(cls, health: EnvironmentHealth, *,
                    now: datetime | None = None) -> EnvironmentSkipped:
        """The error for skipping ``health``'s environment, saying since when and why.

        Examples
        --------
        >>> now = datetime(2026, 12, 7, 16, 40, 10, tzinfo=UTC)
        >>> health = EnvironmentHealth("gpu-1", "tcp://10.0.0.9:2375", None,
        ...     now.replace(second=2), now.replace(second=2), "connection refused")
        >>> str(EnvironmentSkipped.from_health(health, now=now))
        'skipped: failing since 2026-12-07 16:40:02 UTC, last tried 8 s ago: connection refused'
        """
        assert health.last_failure is not None
        now = now or datetime.now(UTC)
        since = health.failing_since or health.last_failure
        error = cls(f"skipped: failing since {_clock(since)}, last tried "
                    f"{_ago((now - health.last_failure).total_seconds())}: "
                    f"{health.failure or 'unknown error'}", endpoint=health.url)
        error.health = health
        return error

    def __str__(self) -> str:
        # The remembered failure already names the endpoint; saying it twice is noise.
        return self.message


def health_outcome(error: BaseException | None) -> bool | None:
    """What a fan-out result says about its engine: up, down, or nothing.

    True when the engine answered (an error status is an answer), False when it could
    not be reached, its certificates could not be read or its agent refused the token
    (nothing can be done there until the token is fixed), None otherwise (a bug in the
    operation says nothing about the engine; a skip is not a new try).

    Examples
    --------
    >>> health_outcome(None), health_outcome(OSError("no route")), health_outcome(KeyError())
    (True, False, None)
    """
    if isinstance(error, AgentAuthError):
        return False
    if error is None or isinstance(error, EngineAPIError):
        return True
    if isinstance(error, EnvironmentSkipped):
        return None
    if isinstance(error, EngineConnectionError | OSError):
        return False
    return None


async def fan_out_with_health(registry: EnvironmentRegistry,
                              environments: Sequence[EnvironmentSpec | Environment],
                              operation: Callable[[Environment], Awaitable[T]], *,
                              timeout: float = 10.0, retry: bool = False,
                              window: float = SKIP_WINDOW,
                              on_store_error: Callable[[StoreError], None] | None = None,
                              ) -> list[FanOutResult[T]]:
    """:func:`fan_out`, skipping environments that failed lately, and remembering.

    Among several environments, one whose last failure is less than ``window`` seconds
    old (at the same URL) is not tried: its result is an :class:`EnvironmentSkipped`.
    A lone environment is always tried: skipping it would only replace a fresh answer
    with a remembered one. Every environment tried has its outcome recorded.

    Parameters
    ----------
    registry
        Where health is read and recorded.
    environments, operation, timeout
        As :func:`fan_out` takes them.
    retry
        Try every environment, recently failed or not.
    window
        Seconds a failure keeps its environment skipped.
    on_store_error
        Called with a :class:`StoreError` when health cannot be read (every environment
        is then tried) or the outcomes cannot be recorded (a read-only registry); None
        raises it.

    Returns
    -------
    list of FanOutResult
        One per environment, in the order given.

    Examples
    --------
    >>> results = await fan_out_with_health(registry, registry.select(["all"]),
    ...                                     lambda env: env.containers.list())
    ...                                                               # doctest: +SKIP
    >>> [str(r.error) for r in results if not r.ok]                   # doctest: +SKIP
    ["skipped: failing since 2026-12-07 16:40:02 UTC, last tried 8 s ago: ..."]
    """
    from ..store import StoreError

    def store_failed(error: StoreError) -> None:
        if on_store_error is None:
            raise error
        on_store_error(error)

    now = datetime.now(UTC)
    known: dict[str, EnvironmentHealth] = {}
    if len(environments) > 1 and not retry:
        try:
            known = registry.health()
        except StoreError as error:  # then every environment is tried, as with --retry
            store_failed(error)
    skipped: dict[int, FanOutResult[T]] = {}
    tried: list[EnvironmentSpec | Environment] = []
    for index, item in enumerate(environments):
        health = known.get(item.name)
        if health is not None and health.url == item.url and health.recently_failed(
                now=now, window=window):
            skip = EnvironmentSkipped.from_health(health, now=now)
            skipped[index] = FanOutResult(item.name, value=None, error=skip, elapsed=0.0)
        else:
            tried.append(item)
    answered = iter(await fan_out(tried, operation, timeout=timeout))
    results = [skipped[index] if index in skipped else next(answered)
               for index in range(len(environments))]
    outcomes = [(item.name, item.url, result.error) for item, result in
                zip(environments, results, strict=True)
                if not isinstance(result.error, EnvironmentSkipped)]
    try:
        registry.record_health(outcomes)
    except StoreError as error:
        store_failed(error)
    return results

