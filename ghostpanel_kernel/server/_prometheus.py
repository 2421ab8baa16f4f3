"""``GET /metrics``: the agent's containers in Prometheus' exposition format.

Names and labels are cAdvisor's, so that dashboards and alert rules written for
cAdvisor work unchanged (``container_cpu_usage_seconds_total``,
``container_memory_working_set_bytes``, ...; labels ``id``, ``name``, ``image``) with
``environment`` added; what cAdvisor lacks comes as ``ghostpanel_container_*``
(restarts, health, state, exit code). docs/prometheus.md lists them all.

The values come from the sampler's last round when the agent samples (a scrape then
costs no stats request), else, and for running containers that round has not seen,
from one concurrent one-shot stats round (bounded in time). Per scrape, a
:class:`Snapshot` is taken and its :class:`Family` list made once; a custom collector
(no global registry, nothing kept between scrapes, so a removed container's series end
at once) exposes it to prometheus-client, and :func:`text_exposition` writes the same
bytes as prometheus-client's encoders ten times faster, which is what keeps a scrape of
100 containers within its 50 ms.

The agent imports this module, and prometheus-client with it, at the first scrape
only: an agent nobody scrapes stays within its idle memory budget.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import parse_qs

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .._exceptions import GhostPanelError
from ..engine import Environment
from ..metrics._names import (
    CPU_USAGE_SECONDS_TOTAL,
    FS_READS_BYTES_TOTAL,
    FS_WRITES_BYTES_TOTAL,
    MEMORY_LIMIT_BYTES,
    MEMORY_USAGE_BYTES,
    MEMORY_WORKING_SET_BYTES,
    NETWORK_RECEIVE_BYTES_TOTAL,
    NETWORK_TRANSMIT_BYTES_TOTAL,
    PIDS,
    Sample,
)
from ._problems import Receive, Scope, Send, send_problem
from ._prometheus_facts import (
    ContainerFacts,
    InspectCache,
    Listing,
    Reading,
    one_shot_round,
    readings_from_samples,
)

__all__ = ["HEALTH_STATUSES", "STATES", "Family", "MetricsEndpoint", "Snapshot",
           "SnapshotCollector", "encode", "families", "text_exposition"]

#: The labels of every per-container series, cAdvisor's plus ``environment``.
LABELS: Final = ("id", "name", "image", "environment")

#: (exposed name, stored metric, counter?, help): cAdvisor's names for what is sampled.
_RESOURCES: Final = (
    ("container_cpu_usage_seconds_total", CPU_USAGE_SECONDS_TOTAL, True,
     "Cumulative cpu time consumed in seconds."),
    ("container_memory_working_set_bytes", MEMORY_WORKING_SET_BYTES, False,
     "Current working set in bytes."),
    ("container_memory_usage_bytes", MEMORY_USAGE_BYTES, False,
     "Current memory usage in bytes, including all memory regardless of when it was "
     "accessed."),
    ("container_spec_memory_limit_bytes", MEMORY_LIMIT_BYTES, False,
     "Memory limit for the container (0: none)."),
    ("container_network_receive_bytes_total", NETWORK_RECEIVE_BYTES_TOTAL, True,
     "Cumulative count of bytes received."),
    ("container_network_transmit_bytes_total", NETWORK_TRANSMIT_BYTES_TOTAL, True,
     "Cumulative count of bytes transmitted."),
    ("container_fs_reads_bytes_total", FS_READS_BYTES_TOTAL, True,
     "Cumulative count of bytes read."),
    ("container_fs_writes_bytes_total", FS_WRITES_BYTES_TOTAL, True,
     "Cumulative count of bytes written."),
    ("container_processes", PIDS, False, "Number of processes running inside the container."),
)

#: Every health status reported, one series each (1 for the current one): a query can
#: then alert on ``== 1`` for "unhealthy" without knowing the other values.
HEALTH_STATUSES: Final = ("healthy", "unhealthy", "starting", "none")
#: The engine's container states, one series each, as for health.
STATES: Final = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reports.

    Attributes
    ----------
    environment : str
        The ``environment`` label.
    containers : sequence of ContainerFacts
        Every container the engine lists, stopped ones included.
    readings : mapping
        Resource values per container id (running containers only).
    """

    environment: str
    containers: Sequence[ContainerFacts]
    readings: Mapping[str, Reading]


@dataclass(frozen=True)
class Family:
    """One metric family of a scrape, before any encoding.

    Attributes
    ----------
    name : str
        As exposed in the text format (a counter's ends in ``_total``).
    kind : str
        ``counter`` or ``gauge``.
    documentation : str
        Its ``# HELP``.
    extra : str or None
        A label of its own besides :data:`LABELS` (``status``, ``state``).
    rows : list of (ContainerFacts, str, float)
        Its series: the container, the ``extra`` label's value ("" without), the value.
    """

    name: str
    kind: str
    documentation: str
    extra: str | None
    rows: list[tuple[ContainerFacts, str, float]]


def families(snapshot: Snapshot) -> Iterator[Family]:
    """Every family of ``snapshot``, in exposition order (what both encoders write)."""
    by_id = {fact.id: fact for fact in snapshot.containers}
    sampled = [(by_id[ident], reading) for ident, reading in snapshot.readings.items()
               if ident in by_id]
    for name, metric, counter, documentation in _RESOURCES:
        yield Family(name, "counter" if counter else "gauge", documentation, None,
                     [(fact, "", reading.values[metric]) for fact, reading in sampled
                      if metric in reading.values])
    yield Family("container_last_seen", "gauge",
                 "Last time a container was seen by the exporter", None,
                 [(fact, "", reading.time) for fact, reading in sampled])
    facts = snapshot.containers
    yield Family("ghostpanel_container_restarts_total", "counter",
                 "Restarts of the container by its restart policy (the engine's "
                 "RestartCount).", None,
                 [(fact, "", float(fact.restarts)) for fact in facts
                  if fact.restarts is not None])
    yield Family("ghostpanel_container_health_status", "gauge",
                 "1 for the container's current health status, 0 for the others "
                 "(none: no healthcheck).", "status",
                 [(fact, status, 1.0 if status == fact.health else 0.0) for fact in facts
                  for status in _with(HEALTH_STATUSES, fact.health)])
    yield Family("ghostpanel_container_state", "gauge",
                 "1 for the container's current state, 0 for the others.", "state",
                 [(fact, state, 1.0 if state == fact.state else 0.0) for fact in facts
                  for state in _with(STATES, fact.state)])
    yield Family("ghostpanel_container_exit_code", "gauge",
                 "Exit code of the container's last run (only once it has stopped at "
                 "least once).", None,
                 [(fact, "", float(fact.exit_code)) for fact in facts
                  if fact.exit_code is not None])


def _with(known: tuple[str, ...], current: str) -> tuple[str, ...]:
    # An engine's state outside the known list still shows, as one more series.
    return known if current in known else (*known, current)


def _wanted(snapshot: Snapshot, names: Iterable[str] | None) -> Iterator[Family]:
    wanted = frozenset(names) if names is not None else None
    for family in families(snapshot):
        # name[] may give a counter with or without "_total" (the OpenMetrics name).
        if wanted is None or family.name in wanted or family.name.removesuffix(
                "_total") in wanted:
            yield family


class SnapshotCollector:
    """A prometheus-client collector over one :class:`Snapshot`.

    Parameters
    ----------
    snapshot : Snapshot
        What to expose.
    names : collection of str, optional
        Only these metric families (Prometheus' ``name[]`` query parameters).

    Examples
    --------
    >>> from ._prometheus_facts import ContainerFacts, Reading
    >>> web = ContainerFacts(id="ab12", name="web", image="nginx", state="running")
    >>> snap = Snapshot("local", [web], {"ab12": Reading(1.0, {"pids": 3.0})})
    >>> print(encode(SnapshotCollector(snap, names={"container_processes"}))[0].decode())
    # HELP container_processes Number of processes running inside the container.
    # TYPE container_processes gauge
    container_processes{environment="local",id="ab12",image="nginx",name="web"} 3.0
    <BLANKLINE>
    """

    def __init__(self, snapshot: Snapshot, names: Iterable[str] | None = None) -> None:
        self.snapshot = snapshot
        self.names = list(names) if names is not None else None

    def collect(self) -> Iterator[Metric]:
        """The metric families, one series per container (and status value)."""
        environment = self.snapshot.environment
        for family in _wanted(self.snapshot, self.names):
            labels = (*LABELS, family.extra) if family.extra else LABELS
            metric: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily)(
                family.name, family.documentation, labels=labels)
            for fact, extra, value in family.rows:
                values = [fact.id, fact.name, fact.image, environment]
                metric.add_metric([*values, extra] if family.extra else values, value)
            yield metric


#: prometheus-client's number format (Go's: 1.796e+09, NaN, +Inf); it ships untyped.
_number = cast(Callable[[float], str], floatToGoString)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def text_exposition(collector: SnapshotCollector, *, openmetrics: bool = False) -> bytes:
    """The text format 0.0.4 (or OpenMetrics 1.0) of ``collector``, byte for byte as
    prometheus-client's ``generate_latest`` writes it, about ten times faster.

    ``generate_latest`` escapes and sorts every sample's labels, ~7 µs a sample: 15 ms
    for the 2,300 series of 100 containers, most of a scrape's budget. Here each
    container's labels are escaped once per scrape and reused by all its series.
    tests/unit/test_prometheus_metrics.py checks the bytes against prometheus-client's.
    """
    snapshot = collector.snapshot
    environment = _escape(snapshot.environment)
    labels: dict[str, str] = {}
    out: list[str] = []
    for family in _wanted(snapshot, collector.names):
        if openmetrics:  # a counter's family is named without "_total" there
            name = family.name.removesuffix("_total") if family.kind == "counter" \
                else family.name
            documentation = _escape(family.documentation)
        else:
            name = family.name
            documentation = family.documentation.replace("\\", r"\\").replace(
                "\n", r"\n")
        out.append(f"# HELP {name} {documentation}\n# TYPE {name} {family.kind}\n")
        extra = family.extra
        for fact, value_of_extra, value in family.rows:
            base = labels.get(fact.id)
            if base is None:  # sorted by name, as generate_latest does
                base = labels[fact.id] = (
                    f'environment="{environment}",id="{_escape(fact.id)}",'
                    f'image="{_escape(fact.image)}",name="{_escape(fact.name)}"')
            # The extra labels ("state", "status") sort after "name".
            series = f'{base},{extra}="{_escape(value_of_extra)}"' if extra else base
            out.append(f"{family.name}{{{series}}} {_number(value)}\n")
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


def encode(collector: SnapshotCollector, accept: str = "") -> tuple[bytes, str]:
    """The exposition of ``collector`` in the format ``accept`` asks for.

    Returns
    -------
    tuple of (bytes, str)
        The body and its content type: OpenMetrics when ``accept`` names
        ``application/openmetrics-text``, else the text format (0.0.4, or the
        ``text/plain`` version asked for: the same text for names as plain as these).
    """
    encoder, content_type = choose_encoder(accept)
    if content_type.startswith("text/plain"):
        return text_exposition(collector), content_type
    if content_type.startswith("application/openmetrics-text"):
        return text_exposition(collector, openmetrics=True), content_type
    return encoder(collector), content_type  # pragma: no cover - no third format yet


class MetricsEndpoint:
    """The ASGI endpoint of ``/metrics`` (``GET`` and ``HEAD``).

    Parameters
    ----------
    engine : Environment
        The agent's engine.
    sampler : callable
        Returns the agent's sampler (with ``latest()``), or None when it does not
        sample; asked at each scrape, as sampling may start after the first one.
    environment : str
        The ``environment`` label when no sampler tells it.
    stats_timeout : float
        Seconds the one-shot stats round may take without a sampler.
    listing_wait : float
        Seconds a scrape waits for a fresh container listing before it answers from
        the previous one (:class:`~._prometheus_facts.Listing`).
    """

    def __init__(self, engine: Environment, sampler: Callable[[], Any] | None = None, *,
                 environment: str = "local", stats_timeout: float = 5.0,
                 listing_wait: float = 0.02) -> None:
        self.engine = engine
        self.sampler = sampler if sampler is not None else (lambda: None)
        self.environment = environment
        self.stats_timeout = stats_timeout
        self.listing = Listing(engine, wait=listing_wait)
        self._memory: int | None = None
        self.inspects = InspectCache(engine)

    async def snapshot(self) -> Snapshot:
        """List the containers, complete their facts and take their values.

        Values come from the sampler's last round; a running container that round has
        not seen (started since, or every container before the first round ends) gets
        one one-shot stats sample instead, so that it shows from the first scrape.
        """
        facts = await self.listing.current()
        await self.inspects.complete(facts)
        sampler = self.sampler()
        environment = str(getattr(sampler, "environment", "") or self.environment)
        readings = (readings_from_samples(_flatten(sampler.latest()))
                    if sampler is not None else {})
        missing = [fact for fact in facts
                   if fact.state == "running" and fact.id not in readings]
        if missing:
            readings.update(await one_shot_round(
                self.engine, missing, environment=environment,
                host_memory=await self._host_memory(), timeout=self.stats_timeout))
        return Snapshot(environment, facts, readings)

    async def _host_memory(self) -> int:
        # Asked once (an engine's host does not change its memory): a limit this large
        # is an unlimited container's, exposed as 0 as the sampler stores it.
        if self._memory is None:
            try:
                self._memory = int((await self.engine.system.info()).get("MemTotal") or 0)
            except GhostPanelError:
                return 0  # asked again at the next scrape
        return self._memory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one scrape."""
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008, "reason": "not a WebSocket"})
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await send_problem(send, 405, f"{method} /metrics: only GET and HEAD",
                               headers=[(b"allow", b"GET, HEAD")])
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        names = query.get("name[]")
        try:
            snapshot = await self.snapshot()
        except GhostPanelError as error:  # the engine is down: Prometheus records up=0
            await send_problem(send, 502, f"the engine did not answer: {error}")
            return
        body, content_type = encode(SnapshotCollector(snapshot, names),
                                    headers.get("accept", ""))
        extra: list[tuple[bytes, bytes]] = []
        if gzip_accepted(headers.get("accept-encoding", "")):  # Prometheus always asks
            body = gzip.compress(body, compresslevel=1)  # speed over the last bytes
            extra.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store"),
                                (b"vary", b"accept, accept-encoding"), *extra]})
        await send({"type": "http.response.body",
                    "body": b"" if method == "HEAD" else body, "more_body": False})

    async def aclose(self) -> None:
        """Stop a listing or an inspect refresh under way."""
        await self.listing.aclose()
        await self.inspects.aclose()


def _flatten(latest: Any) -> Iterator[Sample]:
    # Sampler.latest() gives the last round per container (a mapping) or as one list.
    groups = latest.values() if isinstance(latest, Mapping) else [latest]
    for group in groups:
        if isinstance(group, Sample):
            yield group
        else:
            yield from group
