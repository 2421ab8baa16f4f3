"""A container to create, read from a form's text fields: one spec, three spellings.

:class:`RunSpec` is what the create-container form (``ghostpanel_widgets.
CreateContainerForm``) holds once its fields read well. It is read from the fields'
text by :meth:`RunSpec.from_fields`, which checks every field before anything is sent
and names, per field, what is wrong (:class:`RunSpecError`); then it is written three
ways that mean the same container:

- :meth:`RunSpec.create_options` / :meth:`RunSpec.to_create_body`: the arguments of
  ``env.containers.create`` and the Engine API body they become;
- :meth:`RunSpec.to_boltfile_service` / :meth:`RunSpec.add_to_boltfile`: the
  ``[services.<name>]`` table, which Surge (``ghostpanel surge apply``) turns back into
  the same create arguments;
- :meth:`RunSpec.to_docker_run`: the ``docker run`` line, each word shell-quoted.

The fields follow Bolt's spellings where Bolt has one, so the three stay equivalent:
ports are ``HOST:CONTAINER[/udp]`` or ``PORT`` (the same number on both sides, as Bolt
reads it; Bolt takes no host address), volumes ``SOURCE:TARGET[:OPTIONS]`` with an
absolute host path or a volume name as the source, the restart policy one of ``no``,
``always``, ``unless-stopped``, ``on-failure[:N]``, memory as ``docker run --memory``
reads it (``512m``, ``1g``). GPUs are ``all`` or GPU indices (``0,1``) under one of the
allocator's policies; the Boltfile spells them as a ``[gaming.gpu]`` table.

Pure functions and values; no engine is asked anything. The GPU kernel is imported
only for a spec that asks for GPUs (it brings SQLAlchemy).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

import tomlkit
from tomlkit.items import Table

from .._units import parse_size
from ..bolt._values import PortMapping, VolumeMount
from ._arguments import check_name
from ._container_spec import build_create_body
from ._reference import check_reference

if TYPE_CHECKING:
    from ..bolt import Boltfile, BoltfileService, Diagnostic
    from ..gpus import GpuRequest

__all__ = ["FIELDS", "GPU_POLICIES", "RESTART_POLICIES", "RunFields", "RunSpec",
           "RunSpecError", "check_fields"]

#: The form's fields, in the order it shows them (and reports their errors).
FIELDS: Final = ("image", "name", "command", "env", "ports", "volumes", "restart",
                 "labels", "cpus", "memory", "gpus", "gpu_policy")
#: The restart policies the engines and Surge know (``on-failure`` also as ``on-failure:N``).
RESTART_POLICIES: Final = ("no", "always", "unless-stopped", "on-failure")
#: The GPU allocator's policies (``ghostpanel_kernel.gpus.POLICIES``, not imported here:
#: reading a form must not load the GPU kernel).
GPU_POLICIES: Final = ("exclusive", "shared", "time-sliced", "mig")
#: Docker and Podman refuse a memory limit below 6 MiB ("Minimum memory limit allowed").
MIN_MEMORY: Final = 6 * 1024 * 1024

_RESTART: Final = re.compile(r"(no|always|unless-stopped|on-failure)(:[0-9]+)?", re.ASCII)
_ENV_KEY: Final = re.compile(r"[^\s=]+")
_GPU_INDEX: Final = re.compile(r"[0-9]+", re.ASCII)
_SURGE_LABELS: Final = "io.ghostpanel.surge."
_VOLUME_OPTIONS: Final = frozenset({"ro", "rw", "z", "Z"})
# The Boltfile's isolation levels for the allocator's policies (mig is aiml.mig_enabled).
_ISOLATION: Final = {"exclusive": "exclusive", "shared": "shared", "time-sliced": "virtual"}


class RunSpecError(ValueError):
    """Fields that do not read as a container; :attr:`errors` says which and why.

    Attributes
    ----------
    errors
        Field name (one of :data:`FIELDS`) -> what is wrong with it, in field order.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = {name: errors[name] for name in FIELDS if name in errors}
        super().__init__("; ".join(f"{name}: {message}"
                                   for name, message in self.errors.items()))


@dataclass(frozen=True)
class RunFields:
    """The form's text, field by field, as the user typed it (see :data:`FIELDS`).

    ``env`` and ``labels`` are ``KEY=VALUE`` lines; ``ports`` one entry per line (or
    separated by commas), ``volumes`` one per line (their options take the commas);
    ``gpus`` is empty (no GPU), ``all`` or GPU indices separated by commas.
    """

    image: str = ""
    name: str = ""
    command: str = ""
    env: str = ""
    ports: str = ""
    volumes: str = ""
    restart: str = ""
    labels: str = ""
    cpus: str = ""
    memory: str = ""
    gpus: str = ""
    gpu_policy: str = "exclusive"

    @classmethod
    def of(cls, values: RunFields | Mapping[str, str]) -> RunFields:
        """``values`` as :class:`RunFields` (a mapping may leave fields out).

        Raises
        ------
        KeyError
            The mapping names a field that does not exist.
        """
        if isinstance(values, RunFields):
            return values
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise KeyError(f"no field {', '.join(unknown)}; the fields are "
                           f"{', '.join(FIELDS)}")
        return cls(**{key: str(value) for key, value in values.items()})


# -- field readers: each raises ValueError with the message shown beside its field ---


def _entries(text: str) -> list[tuple[int, str]]:
    """(line number, entry) of each non-blank line; ``#`` lines are skipped."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            found.append((number, stripped))
    return found


def _split_entries(text: str) -> list[tuple[int, str]]:
    """Like :func:`_entries`, commas separating entries too (``80:80, 443:443``)."""
    return [(number, part.strip()) for number, line in _entries(text)
            for part in line.split(",") if part.strip()]


def _pairs(text: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in _entries(text):
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {number}: {line!r} is not KEY=VALUE")
        if not key:
            raise ValueError(f"line {number}: {line!r} has no name before '='")
        if not _ENV_KEY.fullmatch(key):
            raise ValueError(f"line {number}: the {what} name {key!r} has a space")
        if key in pairs:
            raise ValueError(f"line {number}: {key} is set twice")
        pairs[key] = value
    return pairs


def _image(text: str) -> str:
    image = text.strip()
    if not image:
        raise ValueError("choose an image or type a reference, e.g. alpine:3.20")
    return check_reference(image)


def _name(text: str, taken: Collection[str]) -> str:
    name = text.strip()
    if not name:
        return ""  # the engine picks one
    if any(c.isspace() for c in name):
        raise ValueError(f"{name!r} has a space: use letters, digits, '_', '.' or '-'")
    check_name("the name", name)
    if name in taken:
        raise ValueError(f"a container named {name} already exists here")
    return name


def _command(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as error:  # "No closing quotation"
        raise ValueError(f"{error} (the command is split as a shell would)") from None


def _ports(text: str) -> tuple[PortMapping, ...]:
    ports: list[PortMapping] = []
    seen: set[tuple[int, str]] = set()
    for _number, entry in _split_entries(text):
        try:
            mapping = PortMapping.parse(entry)
        except ValueError as error:
            raise ValueError(f"{entry}: {error} (write HOST:CONTAINER[/udp])") from None
        published = (mapping.host, mapping.protocol)
        if published in seen:
            raise ValueError(f"{entry}: host port {mapping.host}/{mapping.protocol} is "
                             "published twice")
        seen.add(published)
        ports.append(mapping)
    return tuple(ports)


def _volumes(text: str) -> tuple[VolumeMount, ...]:
    mounts: list[VolumeMount] = []
    targets: set[str] = set()
    for _number, entry in _entries(text):  # lines only: options are comma separated
        try:
            mount = VolumeMount.parse(entry)
        except ValueError as error:
            raise ValueError(str(error)) from None
        if mount.source is None:
            raise ValueError(f"{entry}: write SOURCE:TARGET (a host path or a volume "
                             "name, then the path in the container)")
        if not mount.target.startswith("/"):
            raise ValueError(f"{entry}: the path in the container must be absolute")
        if mount.source.startswith((".", "~")):
            raise ValueError(f"{entry}: a host path must be absolute (the engine has "
                             "no working directory of yours)")
        if not mount.source.startswith("/"):
            try:
                check_name("the volume name", mount.source)
            except ValueError as error:
                raise ValueError(f"{entry}: {error}") from None
        unknown = [o for o in mount.options if o not in _VOLUME_OPTIONS]
        if unknown:
            raise ValueError(f"{entry}: unknown option {unknown[0]!r} (use ro, rw, z or Z)")
        if {"ro", "rw"} <= set(mount.options):
            raise ValueError(f"{entry}: ro and rw together")
        if mount.target in targets:
            raise ValueError(f"{entry}: {mount.target} is mounted twice")
        targets.add(mount.target)
        mounts.append(mount)
    return tuple(mounts)


def _restart(text: str) -> str:
    policy = text.strip()
    if policy and not _RESTART.fullmatch(policy):
        raise ValueError(f"{policy!r} is not one of no, always, unless-stopped, "
                         "on-failure[:N]")
    return policy


def _labels(text: str) -> dict[str, str]:
    labels = _pairs(text, "label")
    reserved = [key for key in labels if key.startswith(_SURGE_LABELS)]
    if reserved:
        raise ValueError(f"{reserved[0]} belongs to Surge; use another label name")
    return labels


def _cpus(text: str) -> float | None:
    written = text.strip()
    if not written:
        return None
    try:
        cpus = float(written)
    except ValueError:
        cpus = math.nan
    if not (math.isfinite(cpus) and cpus > 0):
        raise ValueError(f"{written!r} is not a positive number of CPUs, e.g. 1.5")
    if round(cpus * 1e9) < 10_000_000:
        raise ValueError(f"{written} CPUs is below the engines' least, 0.01")
    return cpus


def _memory(text: str) -> str:
    written = text.strip()
    if not written:
        return ""
    try:
        size = parse_size(written)
    except ValueError as error:
        raise ValueError(str(error)) from None
    if size < MIN_MEMORY:
        raise ValueError(f"{written} is below the engines' least memory limit, 6m")
    return written


def _gpus(text: str) -> tuple[str, ...]:
    written = [part.strip() for part in text.split(",") if part.strip()]
    if written == ["all"]:
        return ("all",)
    bad = [part for part in written if not _GPU_INDEX.fullmatch(part)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a GPU index: write all, or indices like 0,1")
    return tuple(dict.fromkeys(written))


def _gpu_policy(text: str) -> str:
    policy = text.strip().lower().replace("_", "-") or "exclusive"
    if policy not in GPU_POLICIES:
        raise ValueError(f"{text!r} is not one of {', '.join(GPU_POLICIES)}")
    return policy


@dataclass(frozen=True)
class RunSpec:
    """One container to create, checked (see the module's documentation).

    Attributes
    ----------
    image
        The image reference.
    name
        The container's name; empty: the engine picks one.
    command
        The arguments after the image (empty: the image's own command).
    env, labels
        Environment variables and labels, in the order written.
    ports
        Published ports, as Bolt reads them.
    volumes
        Binds and named volumes.
    restart
        The restart policy; empty: the engine's default (``no``).
    cpus
        CPU limit, or None.
    memory
        Memory limit as written (``512m``), or empty.
    gpus
        ``("all",)``, GPU indices, or empty for no GPU.
    gpu_policy
        The allocator's policy for :attr:`gpus`.

    Examples
    --------
    >>> spec = RunSpec.from_fields({"image": "nginx:1.27", "name": "web",
    ...                             "ports": "8080:80", "env": "MODE=prod"})
    >>> spec.to_docker_run()
    'docker run -d --name web -p 8080:80 -e MODE=prod nginx:1.27'
    >>> spec.create_options()["ports"]
    {'80/tcp': 8080}
    """

    image: str
    name: str = ""
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    restart: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: str = ""
    gpus: tuple[str, ...] = ()
    gpu_policy: str = "exclusive"

    # -- reading -----------------------------------------------------------------

    @classmethod
    def from_fields(cls, values: RunFields | Mapping[str, str], *,
                    taken_names: Collection[str] = ()) -> RunSpec:
        """Read the form's fields; every field is checked, not only up to the first bad one.

        Parameters
        ----------
        values
            The fields' text (:class:`RunFields`, or a mapping of some of them).
        taken_names
            Names of the containers already on the environment: a name among them is
            an error of the ``name`` field.

        Raises
        ------
        RunSpecError
            One or more fields are wrong; ``errors`` maps each to its message.
        """
        text = RunFields.of(values)
        readers: dict[str, Any] = {
            "image": _image, "name": lambda t: _name(t, taken_names), "command": _command,
            "env": lambda t: _pairs(t, "variable"), "ports": _ports, "volumes": _volumes,
            "restart": _restart, "labels": _labels, "cpus": _cpus, "memory": _memory,
            "gpus": _gpus, "gpu_policy": _gpu_policy,
        }
        read: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for item in fields(RunFields):
            try:
                read[item.name] = readers[item.name](getattr(text, item.name))
            except ValueError as error:
                errors[item.name] = str(error)
        if not errors and read["gpus"] == ("all",) and read["gpu_policy"] == "mig":
            errors["gpus"] = "under mig each container gets one MIG device: name a GPU"
        if errors:
            raise RunSpecError(errors)
        return cls(**read)

    @property
    def service_name(self) -> str:
        """The Boltfile service's name: the container's, else the image's last part
        (``docker.io/library/nginx:1.27`` -> ``nginx``)."""
        if self.name:
            return self.name
        base = self.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        return base or "service"

    def gpu_request(self) -> GpuRequest | None:
        """The allocator's request for :attr:`gpus`, or None without GPUs."""
        if not self.gpus:
            return None
        from ..gpus import GpuRequest

        policy = GpuRequest.parse_policy(self.gpu_policy)
        if self.gpus == ("all",):
            return GpuRequest(all_gpus=True, policy=policy)
        return GpuRequest(gpus=self.gpus, policy=policy)

    # -- the engine ------------------------------------------------------------------

    def create_options(self) -> dict[str, Any]:
        """Keyword arguments of ``env.containers.create`` (the name and GPUs aside).

        Ports are keyed ``"CONTAINER/PROTO"``, several host ports of one container port
        as a list, as Surge gives them; only what the fields set is there.
        """
        options: dict[str, Any] = {"image": self.image}
        if self.command:
            options["command"] = list(self.command)
        if self.env:
            options["env"] = dict(self.env)
        if self.ports:
            ports: dict[str, Any] = {}
            for mapping in self.ports:
                key = f"{mapping.container}/{mapping.protocol}"
                if key in ports:
                    previous = ports[key]
                    ports[key] = [*(previous if isinstance(previous, list) else [previous]),
                                  mapping.host]
                else:
                    ports[key] = mapping.host
            options["ports"] = ports
        if self.volumes:
            options["volumes"] = [_volume_text(mount) for mount in self.volumes]
        if self.labels:
            options["labels"] = dict(self.labels)
        if self.restart:
            options["restart_policy"] = self.restart
        if self.cpus is not None:
            options["cpus"] = self.cpus
        if self.memory:
            options["memory"] = parse_size(self.memory)
        return options

    def to_create_body(self) -> dict[str, Any]:
        """The ``POST /containers/create`` body (without GPUs, which the allocator adds
        in the form the engine honours; see ``ghostpanel_kernel.gpus.create_with_gpus``)."""
        return build_create_body(**self.create_options())

    # -- the Boltfile ---------------------------------------------------------------

    def _service_data(self) -> dict[str, Any]:
        """The service table as plain data, keys in the order the Boltfile writes them."""
        data: dict[str, Any] = {"image": self.image}
        if self.ports:
            data["ports"] = [str(mapping) for mapping in self.ports]
        if self.volumes:
            data["volumes"] = [_volume_text(mount) for mount in self.volumes]
        if self.env:
            data["environment"] = dict(self.env)
        if self.command:
            data["command"] = list(self.command)
        if self.restart:
            data["restart"] = self.restart
        if self.labels:
            data["labels"] = dict(self.labels)
        if self.cpus is not None:
            data["cpu_limit"] = _number_text(self.cpus)
        if self.memory:
            data["memory_limit"] = self.memory
        if self.gpus:
            data["gaming"] = self._gaming()
        return data

    def _gaming(self) -> dict[str, Any]:
        # Bolt requires the six switches of [gaming]; only the GPU ones are on.
        devices = ["gpu:all"] if self.gpus == ("all",) else [f"gpu:{i}" for i in self.gpus]
        gpu: dict[str, Any] = {"nvbind": {"devices": devices}}
        if self.gpu_policy == "mig":
            gpu["aiml"] = {"mig_enabled": True}
        else:
            gpu["isolation_level"] = _ISOLATION[self.gpu_policy]
        return {"enabled": True, "gpu_passthrough": True, "nvidia_runtime": True,
                "amd_runtime": False, "audio_passthrough": False,
                "real_time_priority": False, "gpu": gpu}

    def to_boltfile_service(self) -> Table:
        """The ``[services.<name>]`` table (tomlkit), mappings as inline tables.

        Examples
        --------
        >>> RunSpec("redis:7", restart="always").to_boltfile_service().as_string()
        'image = "redis:7"\\nrestart = "always"\\n'
        """
        table = tomlkit.table()
        for key, value in self._service_data().items():
            table.add(key, _inline(value))
        return table

    def add_to_boltfile(self, boltfile: Boltfile, service: str | None = None
                        ) -> BoltfileService:
        """Add the service to ``boltfile`` (in memory) with its edit methods, which keep
        every comment and line of the file.

        Parameters
        ----------
        service
            The service's name (default :attr:`service_name`).

        Raises
        ------
        ValueError
            ``boltfile`` has a service of that name already (or cannot take the edit).
        """
        name = service or self.service_name
        if name in boltfile.services:
            raise ValueError(f"{boltfile.path} already has a service {name!r}: choose "
                             "another container name")
        data = self._service_data()
        created = boltfile.add_service(
            name, image=self.image, ports=data.get("ports", ()),
            volumes=data.get("volumes", ()), environment=data.get("environment"),
            command=data.get("command"), restart=data.get("restart"))
        for key in ("labels", "cpu_limit", "memory_limit", "gaming"):
            if key in data:
                boltfile.set_service_key(name, key, data[key])
        return created

    def boltfile_text(self, service: str | None = None) -> str:
        """The TOML :meth:`add_to_boltfile` writes into an empty Boltfile.

        Rendered here with the Boltfile edits' own spelling rather than by making the
        edits (each re-reads the file: five times slower), since the form shows it on
        every keystroke; the tests hold the two to the same text.
        """
        from ..bolt._edits import _render_key, _render_value

        lines = [f"[services.{_render_key(service or self.service_name)}]\n"]
        lines += [f"{_render_key(key)} = {_render_value(value)}\n"
                  for key, value in self._service_data().items()]
        return "".join(lines)

    def validate_service(self, project: str = "preview", *,
                         text: str | None = None) -> list[Diagnostic]:
        """What the Boltfile validator says of the service in a project of its own.

        Parameters
        ----------
        project
            The project's name in the file validated.
        text
            :meth:`boltfile_text`, when the caller has it already.
        """
        from ..bolt import Boltfile, validate

        service = self.boltfile_text() if text is None else text
        whole = f"project = {tomlkit.string(project).as_string()}\n\n" + service
        return validate(Boltfile.loads(whole, path="<preview>"))

    # -- docker run ---------------------------------------------------------------

    def docker_run_args(self, *, start: bool = True) -> list[str]:
        """The words of :meth:`to_docker_run`, unquoted."""
        args = ["docker", "run", "-d"] if start else ["docker", "create"]
        if self.name:
            args += ["--name", self.name]
        for mapping in self.ports:
            suffix = "/udp" if mapping.protocol == "udp" else ""
            args += ["-p", f"{mapping.host}:{mapping.container}{suffix}"]
        for mount in self.volumes:
            args += ["-v", _volume_text(mount)]
        for key, value in self.env.items():
            args += ["-e", f"{key}={value}"]
        for key, value in self.labels.items():
            args += ["-l", f"{key}={value}"]
        if self.restart:
            args += ["--restart", self.restart]
        if self.cpus is not None:
            args += ["--cpus", _number_text(self.cpus)]
        if self.memory:
            args += ["--memory", self.memory]
        if self.gpus == ("all",):
            args += ["--gpus", "all"]
        elif self.gpus:
            # docker reads --gpus as CSV: a list of devices needs the inner quotes.
            args += ["--gpus", f'"device={",".join(self.gpus)}"']
        return [*args, self.image, *self.command]

    def to_docker_run(self, *, start: bool = True) -> str:
        """The equivalent ``docker run -d`` line (``docker create`` when not ``start``),
        each word shell-quoted (``shlex.split`` gives the words back)."""
        return shlex.join(self.docker_run_args(start=start))


def check_fields(values: RunFields | Mapping[str, str], *,
                 taken_names: Collection[str] = ()) -> tuple[RunSpec | None, dict[str, str]]:
    """``(spec, {})`` when the fields read well, else ``(None, errors by field)``.

    Examples
    --------
    >>> check_fields({"image": "alpine", "ports": "99999"})[1]
    {'ports': '99999: port 99999 is out of range 1-65535 (write HOST:CONTAINER[/udp])'}
    """
    try:
        return RunSpec.from_fields(values, taken_names=taken_names), {}
    except RunSpecError as error:
        return None, error.errors


def _volume_text(mount: VolumeMount) -> str:
    options = f":{','.join(mount.options)}" if mount.options else ""
    return f"{mount.source}:{mount.target}{options}"


def _number_text(value: float) -> str:
    """``1.5`` -> ``"1.5"``, ``2.0`` -> ``"2"``."""
    return format(value, "g") if value == float(format(value, "g")) else repr(value)


def _inline(value: Any) -> Any:
    """Mappings (nested too) as tomlkit inline tables; lists and scalars as they are."""
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table.append(key, _inline(item))
        return table
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_inline(item) for item in value]
    return value
