"""From a Boltfile to the desired state: what each service's containers must look like.

:func:`desired_state` is pure (no engine is asked anything). It validates the Boltfile
first -- any error-severity diagnostic raises :class:`SurgeError` -- and then refuses,
with the same error, what Surge cannot give the engine exactly: a service without an
``image`` (``build``, ``capsule``), keys the engine client has no argument for
(:data:`UNSUPPORTED_KEYS`), an anonymous volume, a malformed ``replicas``/``regions``,
size or duration. A service is deployed as its file says or not at all.

Each service becomes a :class:`ServiceSpec`: the keyword arguments of
``env.containers.create`` (:attr:`ServiceSpec.create`), the networks to connect after
creation, ``replicas``, ``regions`` and ``depends_on``. Its **config hash** is the sha256
of the canonical JSON (sorted keys, no spaces) of the create arguments and the extra
networks, the image reference included; names and Surge's own labels are not part of it,
so every replica of a service has the same hash and a rename changes nothing.

Translation rules (Boltfile → engine):

- ``env`` and ``environment`` are merged (``env`` wins); ``labels`` are the user's own
  (keys under ``io.ghostpanel.surge.`` are Surge's and refused).
- ``ports``: ``"HOST:CONTAINER[/udp]"`` published on every host address, as Bolt does.
- ``volumes``: a source starting with ``/``, ``.`` or ``~`` is a host path, relative ones
  resolved from the Boltfile's folder (``base_dir``); any other source is a named volume
  ``{project}_{name}``, or ``[volumes.<name>] name`` / ``external = true`` as declared.
  Bind sources are paths on the engine's host: for a remote environment, the same path
  there.
- ``networks``: none listed → ``{project}_default``; listed → ``{project}_{name}`` (or the
  declared ``name``/``external`` network); ``default`` is ``{project}_default``; ``host``,
  ``none`` and ``bridge`` are the engine's own. The container joins the first at creation
  and the others before it starts, each time with its service name as alias.
- ``cpu_limit`` → CPUs (``"1.5"``), ``memory_limit`` → bytes (``512M``, ``512Mi``, ``1g``).
- ``healthcheck``: ``test`` (``CMD``/``CMD-SHELL``/``NONE`` first, else ``CMD`` is
  assumed), durations like ``30s``, ``1m30s``, ``500ms``; ``disable = true`` → ``NONE``.
- ``restart``: ``no``, ``always``, ``on-failure[:N]``, ``unless-stopped``.
- ``gaming``: the GPUs of ``[gaming.gpu]`` become :attr:`ServiceSpec.gpu`, reserved
  per replica when it is created; any other gaming setting that is turned on is
  refused by name (see :mod:`~ghostpanel_kernel.surge._gaming`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._units import parse_duration_ns, parse_size
from ..bolt import Boltfile, PortMapping, VolumeMount, validate
from ._errors import SurgeError
from ._gaming import gpu_wanted, request_data
from ._naming import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    container_name,
    resource_name,
)

if TYPE_CHECKING:
    from ..gpus import GpuRequest

__all__ = [
    "UNSUPPORTED_KEYS",
    "DesiredState",
    "NetworkSpec",
    "ServiceSpec",
    "VolumeSpec",
    "config_hash",
    "desired_state",
    "start_order",
]

#: Service keys Bolt reads that the engine client cannot express (or that would fight
#: Surge's naming): a service using one is refused rather than deployed differently.
UNSUPPORTED_KEYS: Final = frozenset({
    "build", "capsule", "container_name", "network_mode", "pid", "ipc", "platform",
    "security_opt", "sysctls", "tmpfs", "dns", "dns_search", "extra_hosts", "group_add",
    "volumes_from", "links", "logging", "storage", "auth",
})

_ENGINE_NETWORKS: Final = frozenset({"host", "none", "bridge"})
_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:[0-9]+)?")
_HEALTH_KINDS: Final = frozenset({"CMD", "CMD-SHELL", "NONE"})
_SURGE_LABEL_PREFIX: Final = "io.ghostpanel.surge."


@dataclass(frozen=True)
class NetworkSpec:
    """A network the project's services join.

    Attributes
    ----------
    key
        Its name in the Boltfile (``default`` for the project network).
    name
        Its name on the engine (``{project}_{key}`` unless declared otherwise).
    external
        It must already exist; Surge neither creates nor removes it.
    driver, internal, subnet, gateway, options, labels
        What :meth:`NetworkCollection.create` is given (labels: the user's own).
    """

    key: str
    name: str
    external: bool = False
    driver: str = "bridge"
    internal: bool = False
    subnet: str | None = None
    gateway: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSpec:
    """A named volume the project's services mount.

    Attributes
    ----------
    key
        Its name in the Boltfile.
    name
        Its name on the engine (``{project}_{key}`` unless declared otherwise).
    external
        It must already exist; Surge neither creates nor removes it.
    driver, driver_opts, labels
        What :meth:`VolumeCollection.create` is given (labels: the user's own).
    """

    key: str
    name: str
    external: bool = False
    driver: str = "local"
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec:
    """One service as the engine must run it.

    Attributes
    ----------
    name
        The service's name in the Boltfile.
    image
        The image reference.
    replicas
        How many containers (GhostPanel's ``replicas`` key, default 1; 0 runs none).
    regions
        Region labels it may run in (GhostPanel's ``regions`` key); empty: everywhere.
    depends_on
        Services that must start (and be healthy, if they have a healthcheck) first.
    create
        Keyword arguments of :meth:`ContainerCollection.create`, without ``name`` and with
        only the user's labels; plain JSON data.
    networks
        Networks joined after creation, each with its aliases.
    config_hash
        sha256 of the canonical JSON of ``create`` and ``networks``.
    host_ports
        ``(port, protocol)`` the service publishes on its host.
    gpu
        The GPUs each replica reserves (its ``[gaming.gpu]`` table), or None.

    Examples
    --------
    >>> from ghostpanel_kernel.bolt import Boltfile
    >>> state = desired_state(Boltfile.loads(
    ...     'project = "shop"\\n[services.web]\\nimage = "localhost/busybox:latest"\\n'))
    >>> web = state.services["web"]
    >>> web.create["network"], web.create["network_aliases"]
    ('shop_default', ['web'])
    >>> sorted(web.labels("shop", 1))[:2]
    ['io.ghostpanel.surge.config-hash', 'io.ghostpanel.surge.project']
    """

    name: str
    image: str
    replicas: int
    regions: tuple[str, ...]
    depends_on: tuple[str, ...]
    create: Mapping[str, Any]
    networks: tuple[tuple[str, tuple[str, ...]], ...]
    config_hash: str
    host_ports: tuple[tuple[int, str], ...] = ()
    gpu: GpuRequest | None = None

    @property
    def healthcheck(self) -> Mapping[str, Any] | None:
        """The engine ``Healthcheck`` object, when the service has an active one."""
        check = self.create.get("healthcheck")
        if not isinstance(check, Mapping) or list(check.get("Test") or ["NONE"])[:1] == ["NONE"]:
            return None
        return check

    def labels(self, project: str, replica: int) -> dict[str, str]:
        """The user's labels plus Surge's: project, service, replica and config hash."""
        labels = dict(self.create.get("labels") or {})
        labels.update({LABEL_PROJECT: project, LABEL_SERVICE: self.name,
                       LABEL_REPLICA: str(replica), LABEL_CONFIG_HASH: self.config_hash})
        return labels

    def container_name(self, project: str, replica: int) -> str:
        """The name of ``replica`` (see :func:`~ghostpanel_kernel.surge._naming.container_name`)."""
        return container_name(project, self.name, replica, self.replicas)


@dataclass(frozen=True)
class DesiredState:
    """A Boltfile as Surge will apply it.

    Attributes
    ----------
    project
        The project name.
    services
        The services, in start order (``depends_on`` first, then file order).
    networks
        The networks the services use, by engine name.
    volumes
        The named volumes the services mount, by engine name.
    source
        The Boltfile's absolute path (``""`` for one read from a string, or from a
        file that is not here): the containers carry it
        (:data:`~ghostpanel_kernel.surge._naming.LABEL_BOLTFILE`).
    """

    project: str
    services: Mapping[str, ServiceSpec]
    networks: Mapping[str, NetworkSpec]
    volumes: Mapping[str, VolumeSpec]
    source: str = ""

    @property
    def images(self) -> list[str]:
        """The distinct image references, in start order."""
        return list(dict.fromkeys(spec.image for spec in self.services.values()))


def config_hash(create: Mapping[str, Any],
                networks: Sequence[tuple[str, Sequence[str]]] = (),
                gpu: Mapping[str, Any] | None = None) -> str:
    """sha256 (hex) of the canonical JSON of a create spec and its extra networks.

    A service's GPU request (``gpu``, its canonical form) is part of the hash only
    when there is one: the hash of a service without GPUs is what it always was, and
    a change of the GPUs a service asks for is drift (its containers are recreated).

    Examples
    --------
    >>> config_hash({"image": "a", "env": {"X": "1"}}) == config_hash({"env": {"X": "1"},
    ...                                                                 "image": "a"})
    True
    """
    data: dict[str, Any] = {"create": create, "networks": [[n, list(a)] for n, a in networks]}
    if gpu is not None:
        data["gpu"] = gpu
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def start_order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """Services in an order where each comes after what it depends on.

    Ties keep the given order: services are taken in rounds, each round every service
    whose dependencies came in earlier rounds, in the given order. The walk is
    iterative and linear in services and dependencies (Kahn's algorithm), so a
    ``depends_on`` chain of thousands of services costs no recursion. A cycle (which
    :func:`validate` refuses first) or an unknown target raises :class:`SurgeError`.

    Examples
    --------
    >>> start_order({"web": ["api"], "api": ["db"], "db": [], "cache": []})
    ['db', 'cache', 'api', 'web']
    """
    position = {name: index for index, name in enumerate(depends_on)}
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {name: [] for name in depends_on}
    for name, targets in depends_on.items():
        unique = list(dict.fromkeys(targets))
        for target in unique:
            if target not in depends_on:
                raise SurgeError(f"service `{name}` depends on `{target}`, which is not "
                                 "defined")
            dependents[target].append(name)
        waiting[name] = len(unique)
    order: list[str] = []
    ready = [name for name in depends_on if not waiting[name]]
    while ready:
        order += ready
        freed: list[str] = []
        for name in ready:
            for dependent in dependents[name]:
                waiting[dependent] -= 1
                if not waiting[dependent]:
                    freed.append(dependent)
        ready = sorted(freed, key=position.__getitem__)
    if len(order) < len(depends_on):
        left = ", ".join(n for n in depends_on if waiting[n])
        raise SurgeError(f"depends_on has a cycle among: {left}")
    return order


# -- value readers ---------------------------------------------------------------------


def _size(value: str, where: str) -> int:
    try:
        return parse_size(value)
    except ValueError as error:
        raise SurgeError(f"{where}: {error}") from None


def _duration_ns(value: str, where: str) -> int:
    try:
        return parse_duration_ns(value)
    except ValueError as error:
        raise SurgeError(f"{where}: {error}") from None


def _cpus(value: str, where: str) -> float:
    try:
        cpus = float(value)
    except ValueError:
        cpus = 0.0
    if not cpus > 0:
        raise SurgeError(f"{where}: cpu_limit {value!r} is not a positive number of CPUs "
                         "(e.g. \"1.5\")")
    return cpus


def _replicas(value: Any, where: str) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SurgeError(f"{where}: replicas must be a whole number >= 0, not {value!r}")
    return value


def _regions(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
        raise SurgeError(f"{where}: regions must be a list of region names, e.g. "
                         f"[\"us-east\", \"eu-west\"], not {value!r}")
    return tuple(dict.fromkeys(value))


def _healthcheck(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    if table.get("disable"):
        return {"Test": ["NONE"]}
    test = [str(part) for part in table.get("test") or []]
    if not test:
        raise SurgeError(f"{where}: healthcheck.test is empty; write e.g. "
                         "[\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost\"]")
    if test[0] not in _HEALTH_KINDS:
        test = ["CMD", *test]
    check: dict[str, Any] = {"Test": test}
    for key, engine_key in (("interval", "Interval"), ("timeout", "Timeout"),
                            ("start_period", "StartPeriod")):
        if isinstance(table.get(key), str):
            check[engine_key] = _duration_ns(table[key], f"{where}.healthcheck.{key}")
    if isinstance(table.get("retries"), int):
        check["Retries"] = table["retries"]
    return check


# -- the translation -------------------------------------------------------------------


class _Resources:
    """The networks and volumes of one Boltfile, collected as services use them."""

    def __init__(self, project: str, data: Mapping[str, Any]) -> None:
        self.project = project
        declared_networks = data.get("networks")
        declared_volumes = data.get("volumes")
        self.declared_networks: Mapping[str, Any] = \
            declared_networks if isinstance(declared_networks, dict) else {}
        self.declared_volumes: Mapping[str, Any] = \
            declared_volumes if isinstance(declared_volumes, dict) else {}
        self.networks: dict[str, NetworkSpec] = {}
        self.volumes: dict[str, VolumeSpec] = {}

    def network(self, key: str, where: str) -> str:
        """The engine name of network ``key``, recording it as used."""
        if key in _ENGINE_NETWORKS and key not in self.declared_networks:
            return key
        table = self.declared_networks.get(key, {})
        name = table.get("name") or resource_name(self.project, key)
        spec = NetworkSpec(key=key, name=name, external=bool(table.get("external")),
                           driver=table.get("driver") or "bridge",
                           internal=bool(table.get("internal")),
                           options=dict(table.get("driver_opts") or {}),
                           labels=dict(table.get("labels") or {}))
        if table.get("enable_ipv6"):
            raise SurgeError(f"{where}: network `{key}` asks for enable_ipv6, which Surge "
                             "cannot create yet; create it yourself and declare it "
                             "external = true")
        configs = (table.get("ipam") or {}).get("config") or []
        if len(configs) > 1:
            raise SurgeError(f"{where}: network `{key}` declares {len(configs)} subnets; "
                             "Surge creates networks with one")
        if configs:
            spec = replace(spec, subnet=configs[0].get("subnet"),
                           gateway=configs[0].get("gateway"))
        self.networks.setdefault(name, spec)
        return name

    def volume(self, key: str) -> str:
        """The engine name of named volume ``key``, recording it as used."""
        table = self.declared_volumes.get(key, {})
        name = table.get("name") or resource_name(self.project, key)
        self.volumes.setdefault(name, VolumeSpec(
            key=key, name=name, external=bool(table.get("external")),
            driver=table.get("driver") or "local",
            driver_opts=dict(table.get("driver_opts") or {}),
            labels=dict(table.get("labels") or {})))
        return name


def _bind(mount: VolumeMount, base_dir: Path, resources: _Resources, where: str) -> str:
    if mount.source is None:
        raise SurgeError(f"{where}: the anonymous volume {mount.target!r} has no source; "
                         "Surge mounts named volumes and host paths only (write "
                         f"\"data:{mount.target}\")")
    if mount.source.startswith(("/", ".", "~")):
        source = os.path.normpath(base_dir / Path(mount.source).expanduser())
    else:
        source = resources.volume(mount.source)
    options = f":{','.join(mount.options)}" if mount.options else ""
    return f"{source}:{mount.target}{options}"


def _ports(specs: Sequence[str]) -> tuple[dict[str, Any], tuple[tuple[int, str], ...]]:
    ports: dict[str, Any] = {}
    used: list[tuple[int, str]] = []
    for spec in specs:
        mapping = PortMapping.parse(spec)
        key = f"{mapping.container}/{mapping.protocol}"
        if key in ports:
            previous = ports[key]
            ports[key] = [*(previous if isinstance(previous, list) else [previous]),
                          mapping.host]
        else:
            ports[key] = mapping.host
        used.append((mapping.host, mapping.protocol))
    return ports, tuple(used)


def _service(project: str, name: str, table: Mapping[str, Any], *, base_dir: Path,
             resources: _Resources, replicas: int | None) -> ServiceSpec:
    where = f"services.{name}"
    unsupported = sorted(UNSUPPORTED_KEYS & set(table))
    if unsupported:
        keys = ", ".join(f"`{k}`" for k in unsupported)
        raise SurgeError(f"service `{name}` uses {keys}, which Surge cannot give the engine "
                         "exactly; it refuses the service rather than deploy it otherwise "
                         "(Surge runs an `image` with the keys of ghostpanel_kernel.surge's "
                         "documentation)")
    image = table.get("image")
    if not isinstance(image, str) or not image:
        raise SurgeError(f"service `{name}` has no image; Surge runs images only")
    create: dict[str, Any] = {"image": image}
    for key, arg in (("command", "command"), ("entrypoint", "entrypoint")):
        if key in table:
            create[arg] = list(table[key])
    env = {**dict(table.get("environment") or {}), **dict(table.get("env") or {})}
    if env:
        create["env"] = env
    labels = dict(table.get("labels") or {})
    reserved = sorted(k for k in labels if k.startswith(_SURGE_LABEL_PREFIX))
    if reserved:
        raise SurgeError(f"{where}.labels: {', '.join(reserved)} belong to Surge; use "
                         "other label names")
    if labels:
        create["labels"] = labels
    host_ports: tuple[tuple[int, str], ...] = ()
    if table.get("ports"):
        create["ports"], host_ports = _ports(table["ports"])
    if table.get("volumes"):
        create["volumes"] = [_bind(VolumeMount.parse(v), base_dir, resources, where)
                             for v in table["volumes"]]
    wanted = list(dict.fromkeys(table.get("networks") or ["default"]))
    names = [resources.network(n, where) for n in wanted]
    exclusive = [n for n in names if n in ("host", "none")]
    if exclusive and len(names) > 1:
        raise SurgeError(f"{where}.networks: `{exclusive[0]}` is a network mode of the "
                         "engine and cannot be combined with other networks")
    create["network"] = names[0]
    aliases = [] if names[0] in _ENGINE_NETWORKS else [name]
    if aliases:
        create["network_aliases"] = aliases
    # The engine's default bridge takes no aliases (Docker refuses them there).
    extra = tuple((n, () if n in _ENGINE_NETWORKS else (name,)) for n in names[1:])
    restart = table.get("restart")
    if restart is not None:
        if not _RESTART.fullmatch(restart):
            raise SurgeError(f"{where}.restart: {restart!r} is not one of no, always, "
                             "on-failure[:N], unless-stopped")
        create["restart_policy"] = restart
    if "cpu_limit" in table:
        create["cpus"] = _cpus(table["cpu_limit"], where)
    if "memory_limit" in table:
        create["memory"] = _size(table["memory_limit"], f"{where}.memory_limit")
    for key in ("working_dir", "user", "hostname"):
        if key in table:
            create[key] = table[key]
    for key in ("tty", "stdin_open", "privileged", "read_only"):
        if table.get(key):
            create[key] = True
    for key in ("cap_add", "cap_drop", "devices"):
        if table.get(key):
            create[key] = list(table[key])
    if isinstance(table.get("healthcheck"), dict):
        create["healthcheck"] = _healthcheck(table["healthcheck"], where)
    gpu = gpu_wanted(name, table)
    return ServiceSpec(
        name=name, image=image,
        replicas=_replicas(table.get("replicas"), where) if replicas is None else replicas,
        regions=_regions(table.get("regions"), where),
        depends_on=tuple(dict.fromkeys(table.get("depends_on") or [])),
        create=create, networks=extra,
        config_hash=config_hash(create, extra, None if gpu is None else request_data(gpu)),
        host_ports=host_ports, gpu=gpu)


def desired_state(boltfile: Boltfile, *, base_dir: str | os.PathLike[str] | None = None,
                  replicas: Mapping[str, int] | None = None) -> DesiredState:
    """Read a Boltfile into the state Surge applies.

    Parameters
    ----------
    boltfile
        The project.
    base_dir
        Folder that relative bind sources start from: by default the Boltfile's own
        folder (the working directory for a Boltfile read from a string).
    replicas
        Replica counts that override the file's, by service (what ``scale`` uses).

    Raises
    ------
    SurgeError
        The Boltfile is invalid (``.diagnostics`` holds the validator's errors) or asks
        for something Surge cannot apply; nothing has been touched.
    """
    errors = [d for d in validate(boltfile) if d.is_error]
    if errors:
        plural = "s" if len(errors) > 1 else ""
        raise SurgeError(f"{boltfile.path}: {len(errors)} error{plural}; Bolt refuses this "
                         "Boltfile and Surge applies nothing", diagnostics=errors)
    data = boltfile.to_dict()
    project = data["project"]
    if base_dir is None:
        base_dir = Path.cwd() if boltfile.path == "<string>" else \
            Path(boltfile.path).absolute().parent
    services_data: Mapping[str, Any] = data["services"]
    for name, count in (replicas or {}).items():
        if name not in services_data:
            raise SurgeError(f"no service `{name}` in {boltfile.path}; services: "
                             f"{', '.join(services_data)}")
        _replicas(count, f"services.{name}")
    resources = _Resources(project, data)
    specs = {name: _service(project, name, table, base_dir=Path(base_dir),
                            resources=resources, replicas=(replicas or {}).get(name))
             for name, table in services_data.items()}
    order = start_order({name: list(spec.depends_on) for name, spec in specs.items()})
    # Only a file that exists here is a place to find the Boltfile again (the API reads
    # Boltfiles sent as text under names of its own).
    path = Path(boltfile.path)
    source = str(path.absolute()) if boltfile.path != "<string>" and path.is_file() else ""
    return DesiredState(project=project, services={name: specs[name] for name in order},
                        networks=resources.networks, volumes=resources.volumes,
                        source=source)
