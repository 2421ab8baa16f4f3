"""Metrics history as pandas: ``env.metrics.history(...)`` and the fleet-wide
:func:`history`.

Where the rows come from depends on the environment:

- an **agent** (``https://`` or ``h3://`` with a token): the agent samples its host and
  keeps the history, so the rows come from its ``GET /api/v1/metrics/history``
  (``{"columns": [...], "rows": [[...]]}``, docs/metrics.md), over the environment's
  own client (token, pinned TLS and HTTP/3 included);
- any other environment: the history recorded on this machine, by ``ghostpanel
  metrics collect`` or an agent sharing ``GHOSTPANEL_HOME``, in the local
  :class:`~ghostpanel_kernel.metrics._store.MetricsStore`, filtered by the
  environment's name.

pandas is imported by the calls that return frames, never by importing this module:
:class:`~ghostpanel_kernel.engine.Environment` reaches it through its ``metrics``
property, and the agent process imports the engine package without pandas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, Union
from urllib.parse import urlencode

from ._time import TimeLike

if TYPE_CHECKING:
    import pandas as pd

    from ..engine import Environment
    from ..environments import EnvironmentSpec, FanOutResult
    from ._frame import MetricsFrame
    from ._store import MetricsStore

__all__ = ["EnvironmentMetrics", "TimeArg", "events", "history"]

#: A moment for ``since`` / ``until``: a datetime, unix seconds, or text (``"1h"``,
#: ``"30m"``, ``"7d"`` ago, or ISO 8601), as the store reads it.
TimeArg = TimeLike
#: What the fleet-wide :func:`history` accepts as environments.
EnvironmentsArg = Union["Environment", "EnvironmentSpec", str,
                        Iterable[Union["Environment", "EnvironmentSpec", str]]]

_ROUTE: Final = "/api/v1/metrics/history"
_EVENTS_ROUTE: Final = "/api/v1/metrics/events"
T = TypeVar("T")
#: Seconds one environment's history may take in a fan-out: a year of a busy host's
#: rows is millions, so longer than fan_out's default ten seconds.
DEFAULT_TIMEOUT: Final = 60.0


def _names(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else [str(item) for item in value]
    return names or None


def _time_param(value: TimeArg | None) -> str | None:
    """``since``/``until`` as the agent's query takes it (text passes unchanged)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        raise TypeError("a time is a datetime, unix seconds or text, not a bool")
    if isinstance(value, (int, float)):
        return repr(float(value))
    return str(value).strip()


def _step_param(step: str | float | int | None) -> str | None:
    if step is None:
        return None
    if isinstance(step, bool):
        raise TypeError("step is seconds or text such as '1m', not a bool")
    return repr(float(step)) if isinstance(step, (int, float)) else str(step).strip()


def history_query(*, containers: Sequence[str] | None, since: TimeArg | None,
                  until: TimeArg | None, step: str | float | int | None,
                  metrics: Sequence[str] | None, kinds: Sequence[str] | None = None) -> str:
    """The agent's history (or events) query string: one ``container``, ``metric`` or
    ``kind`` per name."""
    pairs: list[tuple[str, str]] = []
    for key, value in (("since", _time_param(since)), ("until", _time_param(until)),
                       ("step", _step_param(step))):
        if value:
            pairs.append((key, value))
    pairs += [("container", name) for name in containers or ()]
    pairs += [("metric", name) for name in metrics or ()]
    pairs += [("kind", name) for name in kinds or ()]
    return urlencode(pairs)


class EnvironmentMetrics:
    """The metrics history of one environment (``env.metrics``).

    Parameters
    ----------
    env
        The environment; an agent answers from its own store, any other one is read
        from this machine's store.
    store
        The local store to read (a :class:`MetricsStore`, or its folder); the default
        one under ``GHOSTPANEL_HOME`` when None. Not used for an agent.

    Examples
    --------
    >>> frame = await env.metrics.history(["web"], since="30m")         # doctest: +SKIP
    >>> frame.wide()["cpu_cores"].groupby("container").quantile(0.95)  # doctest: +SKIP
    """

    _sync_wrap = True  # connect_sync's facade runs history() on its loop

    def __init__(self, env: Environment, *, store: MetricsStore | Path | None = None) -> None:
        self.env = env
        self._store = store

    @property
    def is_agent(self) -> bool:
        """Whether the history comes from an agent (else from this machine's store)."""
        return self.env.client.is_agent

    def _read_local(self, read: Callable[[MetricsStore], T]) -> T:
        """``read(store)`` on the local store: the one given, or one opened (and closed)
        for this call, in this thread (a reader holds no connection between calls)."""
        from ._store import MetricsStore

        if isinstance(self._store, MetricsStore):
            return read(self._store)
        with MetricsStore(self._store) as store:
            return read(store)

    async def history(self, containers: str | Iterable[str] | None = None, *,
                      since: TimeArg | None = "1h", until: TimeArg | None = None,
                      step: str | float | int | None = None,
                      metrics: str | Iterable[str] | None = None) -> MetricsFrame:
        """The environment's samples as a tidy frame.

        Parameters
        ----------
        containers
            Container names (one name, or several); all containers when None.
        since, until
            The window: a datetime, unix seconds, ``"1h"``/``"30m"``/``"7d"`` ago or
            ISO 8601 text; ``until`` None means now, ``since`` None the oldest row
            (an agent answers its last hour instead).
        step
            Resample to this step (seconds, or ``"1m"``...): the store answers from its
            downsampled tiers where they cover the window. An agent answers at most
            200,000 rows (an error past that): give a step for long windows.
        metrics
            Metric names (see :data:`~ghostpanel_kernel.metrics.METRICS`); all when None.

        Returns
        -------
        MetricsFrame
            ``time, environment, container, metric, value`` (and whatever else the
            store adds, such as ``max`` for downsampled rows), in time order.

        Raises
        ------
        GhostPanelError
            The agent could not be reached or refused (its own error classes).
        ValueError
            A time or step the store cannot read.
        """
        names, wanted = _names(containers), _names(metrics)
        if self.is_agent:
            return await self._agent_history(names, since, until, step, wanted)
        environment = self.env.name

        def read(store: MetricsStore) -> MetricsFrame:
            from ._frame import as_metrics_frame

            frame = store.samples(containers=names, environments=[environment],
                                  metrics=wanted, since=since, until=until, step=step)
            return as_metrics_frame(frame, environment=environment)

        # A year of history is millions of rows: read them off the event loop, so a
        # notebook's widgets (and other environments of a fan-out) go on meanwhile.
        return await asyncio.to_thread(self._read_local, read)

    async def events(self, containers: str | Iterable[str] | None = None, *,
                     since: TimeArg | None = "1h", until: TimeArg | None = None,
                     kinds: str | Iterable[str] | None = None) -> pd.DataFrame:
        """The containers' lifecycle events (start, die, restart, oom, health, destroy).

        Parameters
        ----------
        containers, since, until
            As :meth:`history`.
        kinds
            Only these kinds (see :data:`~ghostpanel_kernel.metrics.EVENT_KINDS`).

        Returns
        -------
        pandas.DataFrame
            ``time`` (UTC), ``environment``, ``container``, ``container_id``, ``kind``,
            ``exit_code`` (nullable integer), ``health``; in time order.
        """
        names, wanted = _names(containers), _names(kinds)
        environment = self.env.name
        if self.is_agent:
            query = history_query(containers=names, since=since, until=until, step=None,
                                  metrics=None, kinds=wanted)
            columns, rows = await self._agent_table(_EVENTS_ROUTE, query)

            def build() -> pd.DataFrame:
                from ._frame import events_from_columns

                return events_from_columns(columns, rows, environment=environment)

            return await asyncio.to_thread(build)

        def read(store: MetricsStore) -> pd.DataFrame:
            from ._frame import events_from_columns

            frame = store.events(containers=names, environments=[environment],
                                 kinds=wanted, since=since, until=until)
            return events_from_columns(list(frame.columns), frame.itertuples(index=False),
                                       environment=environment)

        return await asyncio.to_thread(self._read_local, read)

    async def _agent_table(self, route: str, query: str) -> tuple[list[str], list[Any]]:
        """An agent's ``{"columns": [...], "rows": [[...]]}`` answer to ``route``."""
        from .._exceptions import EngineProtocolError
        from ..engine._client import body_of, decode_json

        client = self.env.client
        path = route + (f"?{query}" if query else "")
        # Unversioned: /api/v1 is the agent's own API, not the Engine API it passes on.
        response = await client._request("GET", path, versioned=False)
        answer = decode_json(body_of(response), endpoint=client.url, method="GET",
                             path=route)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("columns"), list) \
                or not isinstance(answer.get("rows"), list):
            raise EngineProtocolError(f"GET {route} answered {str(answer)[:80]!r}, not "
                                      "{\"columns\": [...], \"rows\": [...]}",
                                      endpoint=client.url)
        return [str(name) for name in answer["columns"]], answer["rows"]

    async def _agent_history(self, containers: list[str] | None, since: TimeArg | None,
                             until: TimeArg | None, step: str | float | int | None,
                             metrics: list[str] | None) -> MetricsFrame:
        from .._exceptions import EngineProtocolError

        query = history_query(containers=containers, since=since, until=until, step=step,
                              metrics=metrics)
        columns, rows = await self._agent_table(_ROUTE, query)
        endpoint = self.env.client.url
        environment = self.env.name

        def build() -> MetricsFrame:
            from ._frame import frame_from_columns

            try:
                frame = frame_from_columns(columns, rows, environment=environment)
            except ValueError as error:
                raise EngineProtocolError(f"GET {_ROUTE}: {error}",
                                          endpoint=endpoint) from error
            # The agent names its own engine "local"; here the environment is called
            # by the name it was opened with, as every other object of it is.
            frame["environment"] = environment
            return frame

        return await asyncio.to_thread(build)

    def __repr__(self) -> str:
        source = "agent" if self.is_agent else "local store"
        return f"<EnvironmentMetrics {self.env.name} ({source})>"


def _targets(environments: EnvironmentsArg) -> list[Environment | EnvironmentSpec]:
    """Environments and specs as given, names looked up in the registry."""
    from ..engine import Environment
    from ..environments import EnvironmentSpec

    items: list[Any]
    if isinstance(environments, (str, Environment, EnvironmentSpec)):
        items = [environments]
    else:
        items = list(environments)
    names = [item for item in items if isinstance(item, str)]
    looked_up: dict[str, EnvironmentSpec] = {}
    if names:
        from ..environments import EnvironmentRegistry

        registry = EnvironmentRegistry()
        try:
            looked_up = {spec.name: spec for spec in registry.select(names)}
        finally:
            registry.close()
    targets: list[Environment | EnvironmentSpec] = []
    seen: set[str] = set()
    for item in items:
        chosen: list[Environment | EnvironmentSpec]
        if isinstance(item, str):
            chosen = [spec for spec in looked_up.values()] if item == "all" \
                else [looked_up[item]]
        elif isinstance(item, (Environment, EnvironmentSpec)):
            chosen = [item]
        else:
            raise TypeError(f"an environment is an Environment, an EnvironmentSpec or a "
                            f"name, not {type(item).__name__}")
        for target in chosen:
            if target.name not in seen:  # rows are told apart by environment name
                seen.add(target.name)
                targets.append(target)
    return targets


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


async def history(environments: EnvironmentsArg, containers: str | Iterable[str] | None = None,
                  *, since: TimeArg | None = "1h", until: TimeArg | None = None,
                  step: str | float | int | None = None,
                  metrics: str | Iterable[str] | None = None,
                  store: MetricsStore | Path | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> MetricsFrame:
    """The metrics history of many environments at once, as one tidy frame.

    Every environment is read concurrently (:func:`~ghostpanel_kernel.environments.
    fan_out`); one that cannot be reached, or runs past ``timeout``, is left out and
    named in the result's :attr:`~MetricsFrame.failures` instead of failing the rest.

    Parameters
    ----------
    environments
        Environments, specs or registered names (``"all"``: every one), or one of them.
    containers, since, until, step, metrics
        As :meth:`EnvironmentMetrics.history`.
    store
        The local store for environments that are not agents (default: the one under
        ``GHOSTPANEL_HOME``).
    timeout
        Seconds each environment may take.

    Returns
    -------
    MetricsFrame
        Every environment's rows, in time order; ``.failures`` names those missing.

    Raises
    ------
    EnvironmentNotFound
        A name is not registered (nothing is read then).

    Examples
    --------
    >>> from ghostpanel_kernel import metrics
    >>> frame = await metrics.history("all", since="6h", step="1m")     # doctest: +SKIP
    >>> frame.failures                                                  # doctest: +SKIP
    {'gpu-2': 'cannot connect to https://10.0.0.9:9443 ...'}
    """
    from ..environments import fan_out
    from ._frame import concat_frames

    targets = _targets(environments)
    names, wanted = _names(containers), _names(metrics)
    shared_store = store

    async def read(env: Environment) -> MetricsFrame:
        return await EnvironmentMetrics(env, store=shared_store).history(
            names, since=since, until=until, step=step, metrics=wanted)

    results: list[FanOutResult[MetricsFrame]] = await fan_out(targets, read,
                                                               timeout=timeout)
    frames = [result.value for result in results if result.ok and result.value is not None]
    failures = {result.environment: _describe(result.error)
                for result in results if result.error is not None}
    return await asyncio.to_thread(concat_frames, frames, failures)


async def events(environments: EnvironmentsArg, containers: str | Iterable[str] | None = None,
                 *, since: TimeArg | None = "1h", until: TimeArg | None = None,
                 kinds: str | Iterable[str] | None = None,
                 store: MetricsStore | Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> pd.DataFrame:
    """The container events of many environments at once (as :func:`history`).

    Returns
    -------
    pandas.DataFrame
        As :meth:`EnvironmentMetrics.events`, every environment's rows in time order;
        ``.attrs["failures"]`` names the environments that could not be read.
    """
    import pandas as pd

    from ..environments import fan_out
    from ._frame import EVENT_COLUMNS, events_from_columns

    targets = _targets(environments)
    names, wanted = _names(containers), _names(kinds)

    async def read(env: Environment) -> pd.DataFrame:
        return await EnvironmentMetrics(env, store=store).events(
            names, since=since, until=until, kinds=wanted)

    results = await fan_out(targets, read, timeout=timeout)
    frames = [r.value for r in results if r.ok and r.value is not None and not r.value.empty]
    joined = (pd.concat(frames, ignore_index=True).sort_values("time", kind="stable",
                                                               ignore_index=True)
              if frames else events_from_columns(list(EVENT_COLUMNS), [], environment=""))
    joined.attrs["failures"] = {r.environment: _describe(r.error)
                                for r in results if r.error is not None}
    return joined
