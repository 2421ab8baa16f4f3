"""Boltfile validation: Bolt's own verdict, with line and column, plus warnings.

Errors are exactly what Bolt refuses when it loads a Boltfile (DESIGN.md section 1,
read from Bolt's source): TOML it cannot parse (Bolt's parser is TOML 1.0), a known key
of the wrong type or a required key missing (serde), and the checks of Bolt's
``BoltFile::validate``. Warnings are for what Bolt accepts but will not do what the
author meant -- above all keys Bolt silently drops, because serde ignores unknown
keys -- and for GhostPanel's own concerns (a ``/udp`` port, a snapshot time its
scheduler cannot read).

The rules live in one place, :data:`BOLTFILE_SCHEMA`: a tree of :class:`Key` entries
(type, required or not, value checks), walked generically, so that "unknown key"
warnings fall out of it. What no single key can check (exactly one of
``image``/``build``/``capsule``, host ports unique across services, ``depends_on``
targets and cycles) is a short list of rules over the whole file, :data:`_RULES`.

``[quic_fabric]`` and ``[dns_config]`` are GhostPanel's extension: Bolt's README
documents them but its loader drops them; GhostPanel reads them to configure its agent's
QUIC transport and DNS names. They are in the schema with ``extension=True``: no
"unknown key" warning for the tables themselves, and any problem inside them is a
warning, never an error, since Bolt never looks at them.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import Any, Literal

from ghostpanel_kernel.bolt._boltfile import (
    Boltfile,
    PortMapping,
    SourceLayout,
    TomlPath,
    VolumeMount,
    decode_boltfile,
    parse_document,
    scan_layout,
    syntax_error_position,
)
from ghostpanel_kernel.bolt._diagnostics import Diagnostic, Severity
from ghostpanel_kernel.engine._errors import BoltfileError

__all__ = ["BOLTFILE_SCHEMA", "Key", "declared_keys", "validate", "validate_file"]

Kind = Literal["string", "bool", "u32", "i32", "port", "strings", "string_map", "table",
               "map", "tables"]
"""How a value is typed. ``u32``/``i32`` are Rust's integer types (what serde enforces),
``port`` is 1-65535, ``strings`` a list of strings, ``string_map`` a table of strings,
``table`` a struct with declared ``fields``, ``map`` a table of any names whose values
all follow ``item``, ``tables`` a list (or array of tables) of ``item``."""

Check = Callable[[Any, "_Site"], None]
"""A value check: called with a value of the right type, reports through the site."""


@dataclass(frozen=True)
class Key:
    """One entry of the Boltfile schema.

    Parameters
    ----------
    kind
        The value's type (see :data:`Kind`).
    doc
        What the key means (for people and generated docs).
    required
        Bolt refuses a table without this key.
    fields
        For ``table``: the keys Bolt reads, in the order Bolt declares them.
    item
        For ``map`` and ``tables``: the schema of each value.
    checks
        Value checks run when the type is right.
    example
        A value to suggest when the key is missing (or a function of the enclosing
        table's data that returns one).
    unknown_hints
        For ``table``: what to suggest for specific keys Bolt does not read
        (``{table}`` is replaced by the table's dotted path).
    extension
        GhostPanel reads this table, Bolt drops it: problems inside are warnings.
    type_hint
        Builds the hint for a value of the wrong type.
    """

    kind: Kind
    doc: str = ""
    required: bool = False
    fields: Mapping[str, Key] = field(default_factory=dict)
    item: Key | None = None
    checks: tuple[Check, ...] = ()
    example: str | Callable[[Mapping[str, Any]], str] = ""
    unknown_hints: Mapping[str, str] = field(default_factory=dict)
    extension: bool = False
    type_hint: Callable[[Any], str] | None = None


# --------------------------------------------------------------------------- reporting


class _Validation:
    """Collects diagnostics for one text, placing them with the text's layout."""

    def __init__(self, layout: SourceLayout, path: str) -> None:
        self.layout = layout
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def add(self, severity: Severity, path: TomlPath, message: str, hint: str, *,
            element: int | None = None, at: Literal["key", "value"] = "value") -> None:
        if element is not None:
            offset = self.layout.value_offset((*path, element))
        elif at == "key":
            offset = self.layout.key_offset(path)
        else:
            offset = self.layout.value_offset(path)
        line, column = self.layout.line_col(offset)
        self.diagnostics.append(Diagnostic(
            severity=severity, line=line, column=column,
            key=dotted(path), message=message, hint=hint,
            path=self.path,
        ))


@dataclass
class _Site:
    """Where a check runs: the value's path; reports become warnings in extensions."""

    validation: _Validation
    path: TomlPath
    extension: bool

    def problem(self, severity: Severity, message: str, hint: str, *,
                element: int | None = None) -> None:
        self.validation.add("warning" if self.extension else severity, self.path, message,
                            hint, element=element)


def _label(path: TomlPath) -> str:
    """How messages name a table: ``[services.web]``, or ``snapshots.named_snapshots[1]``
    for an element of an array of tables (which has no header of its own name)."""
    if any(isinstance(p, int) for p in path):
        return f"`{dotted(path)}`"
    return f"[{dotted(path)}]"


def dotted(path: TomlPath) -> str:
    """``("services", "web app", "ports")`` as ``services."web app".ports``; indices of
    arrays of tables as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
        out += f".{text}" if out else text
    return out


# --------------------------------------------------------------------------- checks


def _one_of(choices: Sequence[str], severity: Severity, what: str) -> Check:
    def check(value: str, site: _Site) -> None:
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            site.problem(severity, f"{what} {value!r} is not one of {listed}",
                         f"Use one of {listed}.")
    return check


def _each(check_one: Callable[[str, int, _Site], None]) -> Check:
    def check(values: list[str], site: _Site) -> None:
        for index, value in enumerate(values):
            check_one(value, index, site)
    return check


def _in_range(low: int, high: int, unit: str = "") -> Check:
    def check(value: int, site: _Site) -> None:
        if not low <= value <= high:
            site.problem("error", f"{site.path[-1]} {value}{unit} is out of range "
                         f"({low} to {high}{unit}); Bolt refuses it",
                         f"Use a value from {low} to {high}.")
    return check


def _device_index(vendor: str) -> Check:
    def check(value: int, site: _Site) -> None:
        if value > 7:
            site.problem("warning", f"{vendor} device index {value} is unusually high "
                         "(Bolt warns about it too)", "Check the GPU index; hosts rarely "
                         "have more than 8 GPUs.")
    return check


def _check_project(value: str, site: _Site) -> None:
    if not value:
        site.problem("error", "the project name is empty", 'Name the project, e.g. '
                     'project = "my-stack".')
    elif " " in value:
        fixed = value.replace(" ", "-")
        site.problem("error", f"the project name {value!r} contains spaces; Bolt refuses "
                     "it (containers are named {project}_{service})",
                     f'Use a name without spaces, e.g. project = "{fixed}".')


def _project_type_hint(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return (f'Bolt reads `project` as a string: replace the [project] table with '
                f'project = {json.dumps(value["name"])} at the top of the file.')
    return 'Write project = "my-stack" at the top of the file.'


def _project_example(root: Mapping[str, Any]) -> str:
    for table in ("metadata", "project"):
        candidate = root.get(table)
        if isinstance(candidate, dict) and isinstance(candidate.get("name"), str):
            return json.dumps(candidate["name"])
    return '"my-stack"'


def _check_port(spec: str, index: int, site: _Site) -> None:
    try:
        mapping = PortMapping.parse(spec)
    except ValueError as exc:
        site.problem("error", f"invalid port {spec!r}: {exc}",
                     'Write "HOST:CONTAINER" (e.g. "8080:80") or "PORT", each 1-65535; Bolt '
                     "accepts no host IP, range or protocol.", element=index)
        return
    if mapping.explicit_protocol:
        site.problem("warning", f"port {spec!r} has a /{mapping.protocol} suffix: Bolt "
                     f"refuses it, GhostPanel publishes the port as {mapping.protocol.upper()}",
                     f'Only GhostPanel can deploy this service; for Bolt write '
                     f'"{mapping.host}:{mapping.container}" (TCP).', element=index)


def _check_volume(spec: str, index: int, site: _Site) -> None:
    try:
        mount = VolumeMount.parse(spec)
    except ValueError as exc:
        site.problem("error", f"invalid volume: {exc}",
                     'Write "SOURCE:TARGET" or "SOURCE:TARGET:OPTIONS" (options ro, rw, z, '
                     'Z), e.g. "./data:/data:ro".', element=index)
        return
    if not mount.target:
        site.problem("warning", "empty volume entry", "Remove it or write SOURCE:TARGET.",
                     element=index)
    for option in mount.unknown_options:
        site.problem("warning", f"volume {spec!r}: Bolt ignores the unknown option "
                     f"{option!r} (it knows ro, rw, z, Z)", "Use ro, rw, z or Z "
                     "(comma separated).", element=index)


def _volumes_type_hint(value: Any) -> str:
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        entries = ", ".join(json.dumps(f"{k}:{v}") for k, v in value.items())
        return f"Bolt reads a list of \"SOURCE:TARGET[:OPTIONS]\" strings: volumes = [{entries}]"
    return 'Write a list of "SOURCE:TARGET[:OPTIONS]" strings, e.g. volumes = ["./data:/data"].'


_STORAGE_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _check_storage_size(value: str, site: _Site) -> None:
    # Bolt's rule: one of these suffixes, and what is left before the letters an f64.
    number = re.sub(r"[^\W\d_]+$", "", value)
    if not value.endswith(("Gi", "Mi", "Ki", "G", "M", "K")) or not _STORAGE_NUMBER.fullmatch(
            number):
        site.problem("error", f"storage size {value!r} is not in a format Bolt reads",
                     'Use a number and one of Gi, Mi, Ki, G, M, K, e.g. "5Gi" or "500Mi".')


def _check_subnet(value: str, site: _Site) -> None:
    if "/" not in value:
        site.problem("error", f"subnet {value!r} is not in CIDR notation; Bolt refuses it",
                     'Write address/prefix, e.g. "10.0.0.0/16".')
        return
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        site.problem("warning", f"subnet {value!r} is not a valid CIDR subnet; the engine "
                     "will refuse to create the network", 'Write e.g. "10.0.0.0/16".')
        return
    network = ipaddress.ip_network(value, strict=False)
    if str(network) != value:
        site.problem("warning", f"subnet {value!r} has host bits set",
                     f'Write the network address: "{network}".')


def _check_volume_driver(value: str, site: _Site) -> None:
    if value not in ("local", "nfs", "cifs"):
        site.problem("warning", f"Bolt warns about the unknown volume driver {value!r} "
                     "(it knows local, nfs and cifs)", 'Use "local", "nfs" or "cifs", '
                     "unless the engine has this driver installed.")


def _check_nvbind_device(value: str, index: int, site: _Site) -> None:
    if not re.fullmatch(r"gpu:([0-9]+|all)", value):
        site.problem("warning", f"nvbind device {value!r} is not \"gpu:<index>\" or "
                     "\"gpu:all\"; GhostPanel's GPU allocator cannot place it",
                     'Use "gpu:all" for every GPU, or "gpu:0", "gpu:1", ...', element=index)


_HH_MM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _schedule(pattern: str, example: str, what: str) -> Check:
    def check(value: str, site: _Site) -> None:
        if not re.fullmatch(pattern, value, flags=re.IGNORECASE):
            site.problem("warning", f"{what} snapshot time {value!r} cannot be scheduled "
                         "(Bolt stores it; GhostPanel's scheduler runs it)",
                         f'Write it like "{example}" (24-hour time).')
    return check


def _check_interval(value: str, site: _Site) -> None:
    if not re.fullmatch(r"[0-9]+[smhd]", value):
        site.problem("warning", f"interval {value!r} is not a number with s, m, h or d",
                     'Write e.g. "30m" or "1h".')


def _check_named_snapshots(value: list[Any], site: _Site) -> None:
    seen: set[str] = set()
    for index, snapshot in enumerate(value):
        name = snapshot.get("name") if isinstance(snapshot, dict) else None
        if isinstance(name, str) and name in seen:
            site.validation.add("warning", (*site.path, index, "name"),
                                f"named snapshot {name!r} is defined twice",
                                "Give each named snapshot its own name.")
        if isinstance(name, str):
            seen.add(name)


def _check_ip(value: str, site: _Site) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        site.problem("warning", f"{value!r} is not an IP address", 'Write e.g. "0.0.0.0".')


def _check_domain(value: str, site: _Site) -> None:
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if not re.fullmatch(rf"{label}(\.{label})*", value):
        site.problem("warning", f"{value!r} is not a DNS domain name",
                     'Write e.g. "demo.bolt.local".')


# --------------------------------------------------------------------------- schema


def _string(doc: str = "", *checks: Check, required: bool = False,
            example: str | Callable[[Mapping[str, Any]], str] = '"..."',
            type_hint: Callable[[Any], str] | None = None) -> Key:
    return Key("string", doc, required, checks=checks, example=example, type_hint=type_hint)


def _bool(doc: str = "", *, required: bool = False, example: str = "false") -> Key:
    return Key("bool", doc, required, example=example)


def _u32(doc: str = "", *checks: Check) -> Key:
    return Key("u32", doc, checks=checks)


def _i32(doc: str = "", *checks: Check) -> Key:
    return Key("i32", doc, checks=checks)


def _strings(doc: str = "", *checks: Check, required: bool = False, example: str = "[]",
             type_hint: Callable[[Any], str] | None = None) -> Key:
    return Key("strings", doc, required, checks=checks, example=example, type_hint=type_hint)


def _string_map(doc: str = "", *, required: bool = False) -> Key:
    return Key("string_map", doc, required, example="{}")


def _table(doc: str, fields: Mapping[str, Key], *checks: Check,
           hints: Mapping[str, str] | None = None, extension: bool = False,
           required: bool = False) -> Key:
    return Key("table", doc, required, fields=fields, checks=checks,
               unknown_hints=hints or {}, extension=extension)


_NVIDIA = _table("NVIDIA GPU settings", {
    "device": _u32("GPU index", _device_index("NVIDIA")),
    "dlss": _bool("DLSS"),
    "reflex": _bool("Reflex"),
    "raytracing": _bool("ray tracing"),
    "cuda": _bool("CUDA"),
    "power_limit": _u32("power limit in percent, at most 150", _in_range(0, 150, "%")),
    "memory_clock_offset": _i32("MHz, within +-2000", _in_range(-2000, 2000, " MHz")),
    "core_clock_offset": _i32("MHz, within +-1000", _in_range(-1000, 1000, " MHz")),
})

_GPU = _table("GPU access for a gaming service", {
    "runtime": _string('"nvbind", "docker", "nvidia" or "amd"'),
    "nvidia": _NVIDIA,
    "amd": _table("AMD GPU settings", {
        "device": _u32("GPU index", _device_index("AMD")),
        "rocm": _bool("ROCm"),
    }),
    "nvbind": _table("nvbind GPU runtime", {
        "driver": _string('"auto", "nvidia-open", "proprietary" or "nouveau"'),
        "devices": _strings('["gpu:0"] or ["gpu:all"]', _each(_check_nvbind_device)),
        "wsl2_optimized": _bool(),
        "performance_mode": _string('"ultra", "high", "balanced" or "efficient"'),
        "preload_libraries": _bool(),
    }),
    "passthrough": _bool("pass the whole GPU through"),
    "isolation_level": _string('"shared", "exclusive" or "virtual"'),
    "memory_limit": _string('e.g. "8GB"'),
    "gaming": _table("nvbind gaming optimisations", {
        "profile": _string('"ultra-low-latency", "performance" or "balanced"'),
        "dlss_enabled": _bool(),
        "rt_cores_enabled": _bool(),
        "wine_optimizations": _bool(),
        "vrs_enabled": _bool("variable rate shading"),
        "performance_profile": _string(),
    }),
    "aiml": _table("nvbind AI/ML optimisations", {
        "profile": _string('"training", "inference" or "development"'),
        "mig_enabled": _bool("Multi-Instance GPU"),
        "tensor_cores_enabled": _bool(),
        "mixed_precision": _bool(),
        "cuda_cache_size": _u32("MB"),
        "memory_pool_size": _string('e.g. "16GB"'),
    }),
})

_GAMING = _table("gaming optimisations of a service", {
    "enabled": _bool("gaming mode on", required=True, example="true"),
    "gpu_passthrough": _bool(required=True),
    "nvidia_runtime": _bool(required=True),
    "amd_runtime": _bool(required=True),
    "audio_passthrough": _bool(required=True),
    "real_time_priority": _bool(required=True),
    "wine_prefix": _string(),
    "proton_version": _string(),
    "dxvk_enabled": _bool(),
    "esync_enabled": _bool(),
    "fsync_enabled": _bool(),
    "performance_profile": _string(),
    "input_devices": _strings(),
    "display_driver": _string(),
    "resolution": _string(),
    "refresh_rate": _u32("Hz"),
    "vsync": _bool(),
    "gpu": _GPU,
    "audio": _table("audio for a gaming service", {
        "system": _string('"pipewire" or "pulseaudio"',
                          _one_of(("pipewire", "pulseaudio"), "error", "audio system"),
                          required=True, example='"pipewire"'),
        "latency": _string(),
    }),
    "wine": _table("Wine/Proton", {
        "version": _string(), "proton": _string(), "winver": _string(), "prefix": _string(),
    }),
    "performance": _table("scheduling", {
        "cpu_governor": _string(),
        "nice_level": _i32("-20 to 19", _in_range(-20, 19)),
        "rt_priority": _u32("0 to 99", _in_range(0, 99)),
    }),
}, hints={
    "profile": "Bolt reads `performance_profile` here; a GPU `profile` goes in "
               "[{table}.gpu.gaming].",
    "wine_optimizations": "It belongs in [{table}.gpu.gaming].",
})

_SERVICE = _table("one service (container) of the project", {
    "image": _string("OCI image to run (exactly one of image, build, capsule)"),
    "build": _string("build context (exactly one of image, build, capsule)"),
    "capsule": _string("Bolt capsule (exactly one of image, build, capsule)"),
    "command": _strings(),
    "entrypoint": _strings(),
    "ports": _strings('"HOST:CONTAINER" or "PORT"', _each(_check_port)),
    "volumes": _strings('"SOURCE:TARGET[:OPTIONS]"', _each(_check_volume),
                        type_hint=_volumes_type_hint),
    "environment": _string_map(),
    "env": _string_map(),
    "depends_on": _strings("services started first"),
    "restart": _string("restart policy", _one_of(
        ("no", "always", "on-failure", "unless-stopped"), "warning", "restart policy")),
    "networks": _strings("networks to join"),
    "storage": _table("storage for the service", {
        "size": _string('e.g. "5Gi"', _check_storage_size, required=True, example='"5Gi"'),
        "driver": _string(),
    }, hints={
        "volumes": "Mounts go in the service's own volumes = [\"SOURCE:TARGET\"]; storage "
                   "takes only size and driver.",
        "storage_driver": "Did you mean `driver`?",
    }),
    "auth": _table("credentials", {
        "user": _string(required=True, example='"admin"'),
        "password": _string(required=True, example='"change-me"'),
    }),
    "gaming": _GAMING,
    "working_dir": _string(),
    "user": _string(),
    "hostname": _string(),
    "container_name": _string(),
    "privileged": _bool(),
    "read_only": _bool(),
    "stdin_open": _bool(),
    "tty": _bool(),
    "network_mode": _string(),
    "pid": _string(),
    "ipc": _string(),
    "platform": _string(),
    "labels": _string_map(),
    "devices": _strings(),
    "cap_add": _strings(),
    "cap_drop": _strings(),
    "security_opt": _strings(),
    "sysctls": _string_map(),
    "tmpfs": _strings(),
    "dns": _strings(),
    "dns_search": _strings(),
    "extra_hosts": _strings(),
    "group_add": _strings(),
    "volumes_from": _strings(),
    "links": _strings(),
    "logging": _table("log driver", {
        "driver": _string(required=True, example='"json-file"'),
        "options": _string_map(required=True),
    }),
    "healthcheck": _table("container health check", {
        "test": _strings(required=True, example='["CMD", "true"]'),
        "interval": _string(),
        "timeout": _string(),
        "retries": _u32(),
        "start_period": _string(),
        "disable": _bool(required=True),
    }),
    "cpu_limit": _string('e.g. "2"'),
    "memory_limit": _string('e.g. "8G"'),
}, hints={
    "network": "Bolt has no `network` table: put `ports` directly in the service and list "
               "networks as networks = [\"name\"].",
    "gpu": "GPU settings go in [{table}.gaming.gpu] (and [{table}.gaming] needs its six "
           "required switches).",
    "health": "Did you mean `healthcheck`? It needs test = [...] and disable = false.",
    "capabilities": "Use cap_add = [...] and cap_drop = [...] in the service.",
    "runtime": "Bolt has no runtime table: memory_limit and cpu_limit go directly in the "
               "service, as strings (memory_limit = \"8G\").",
})

_NETWORK = _table("a network", {
    "driver": _string('e.g. "bridge"', required=True, example='"bridge"'),
    "driver_opts": _string_map(),
    "attachable": _bool(),
    "enable_ipv6": _bool(),
    "internal": _bool(),
    "labels": _string_map(),
    "ipam": _table("IP address management", {
        "driver": _string(),
        "config": Key("tables", "subnets", item=_table("one subnet", {
            "subnet": _string("CIDR, e.g. 10.0.0.0/16", _check_subnet),
            "ip_range": _string(),
            "gateway": _string(),
            "aux_addresses": _string_map(),
        })),
        "options": _string_map(),
    }),
    "external": _bool(),
    "name": _string(),
}, hints={
    "subnet": "Bolt reads subnets from [[{table}.ipam.config]] (subnet = \"10.0.0.0/16\").",
    "gateway": "Bolt reads the gateway from [[{table}.ipam.config]] (gateway = \"10.0.0.1\").",
    "ipv6": "Did you mean `enable_ipv6`?",
})

_VOLUME = _table("a named volume", {
    "driver": _string('"local", "nfs" or "cifs"', _check_volume_driver),
    "driver_opts": _string_map(),
    "external": _bool(),
    "labels": _string_map(),
    "name": _string(),
}, hints={
    "size": "Named volumes have no size in Bolt; a service's space is [services.<name>."
            "storage] size = \"10Gi\".",
    "path": "To use a host directory, mount it in the service: volumes = [\"./dir:/target\"].",
})

_SNAPSHOTS = _table("BTRFS/ZFS snapshot automation", {
    "enabled": _bool(),
    "filesystem": _string('"btrfs", "zfs" or "auto"', _one_of(
        ("btrfs", "zfs", "auto"), "warning", "snapshot filesystem")),
    "root_path": _string(),
    "snapshot_path": _string(),
    "retention": _table("how many snapshots to keep", {
        "keep_hourly": _u32(),
        "keep_daily": _u32(),
        "keep_weekly": _u32(),
        "keep_monthly": _u32(),
        "keep_yearly": _u32(),
        "max_total": _u32(),
        "cleanup_frequency": _string('"daily", "weekly" or "monthly"', _one_of(
            ("daily", "weekly", "monthly"), "warning", "cleanup frequency")),
    }),
    "triggers": _table("when to take snapshots", {
        "hourly": _bool(),
        "daily": _string('"HH:MM"', _schedule(_HH_MM, "02:00", "daily")),
        "weekly": _string('"DAY@HH:MM"', _schedule(
            rf"({'|'.join(_WEEKDAYS)})@{_HH_MM}", "sunday@03:00", "weekly")),
        "monthly": _string('"D@HH:MM"', _schedule(
            rf"([1-9]|[12][0-9]|3[01])@{_HH_MM}", "1@04:00", "monthly")),
        "before_container_run": _bool(),
        "before_build": _bool(),
        "before_surge_up": _bool(),
        "before_system_update": _bool(),
        "on_file_changes": _table("snapshot on file changes", {
            "enabled": _bool(),
            "watch_paths": _strings(),
            "exclude_paths": _strings(),
            "file_patterns": _strings(),
            "exclude_patterns": _strings(),
            "change_types": _strings('"create", "modify", "delete"'),
        }),
        "min_change_threshold": _string('e.g. "100MB"'),
        "change_detection_interval": _string('e.g. "5m"', _check_interval),
    }),
    "named_snapshots": Key("tables", "snapshots kept by name", item=_table("a named snapshot", {
        "name": _string(required=True, example='"stable-config"'),
        "description": _string(),
        "trigger": _string(),
        "auto_create": _bool(),
        "keep_forever": _bool(),
    }), checks=(_check_named_snapshots,)),
})

_QUIC_FABRIC = _table("GhostPanel extension: the agent's QUIC transport (Bolt drops it)", {
    "enabled": _bool(),
    "node_id": _string("this host's name in the fabric"),
    "bind_address": _string("IP address to listen on", _check_ip),
    "bind_port": Key("port", "UDP port to listen on"),
    "encryption": _bool(),
    "service_discovery": _bool(),
}, extension=True)

_DNS_CONFIG = _table("GhostPanel extension: DNS names for services (Bolt drops it)", {
    "enabled": _bool(),
    "port": Key("port", "DNS port"),
    "domain": _string("services are <service>.<domain>", _check_domain),
}, extension=True)

BOLTFILE_SCHEMA = _table("a Boltfile", {
    "project": _string("project name, no spaces", _check_project, required=True,
                       example=_project_example, type_hint=_project_type_hint),
    "quic_fabric": _QUIC_FABRIC,
    "dns_config": _DNS_CONFIG,
    "services": Key("map", "the services, by name", required=True, item=_SERVICE,
                    example='{ web = { image = "nginx:latest" } }'),
    "networks": Key("map", "networks, by name", item=_NETWORK),
    "volumes": Key("map", "named volumes, by name", item=_VOLUME),
    "snapshots": _SNAPSHOTS,
}, hints={
    "metadata": "Bolt reads only the top-level project = \"...\"; [metadata] is ignored.",
    "profiles": "Bolt has no profiles; put the settings in the services themselves.",
})
"""Bolt's Boltfile schema as data: every key Bolt reads, its type and constraints."""


def declared_keys(path: TomlPath) -> Sequence[str] | None:
    """The keys Bolt declares for the table at ``path``, in Bolt's order (``None`` when
    the table has no fixed keys, like ``services``, or is unknown)."""
    key: Key | None = BOLTFILE_SCHEMA
    for part in path:
        if key is None:
            return None
        if key.kind == "table" and isinstance(part, str):
            key = key.fields.get(part)
        elif (key.kind == "map" and isinstance(part, str)) or (
                key.kind == "tables" and isinstance(part, int)):
            key = key.item
        else:
            return None
    return list(key.fields) if key is not None and key.kind == "table" else None


# --------------------------------------------------------------------------- walking

_EXPECTED = {
    "string": "a string", "bool": "true or false",
    "u32": "a whole number from 0 to 4294967295",
    "i32": "a whole number from -2147483648 to 2147483647",
    "port": "a port number from 1 to 65535", "strings": "a list of strings",
    "string_map": "a table of strings", "table": "a table", "map": "a table",
    "tables": "a list of tables",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a date/time ({value})"


def _type_ok(value: Any, kind: Kind) -> bool:
    integer = isinstance(value, int) and not isinstance(value, bool)
    match kind:
        case "string":
            return isinstance(value, str)
        case "bool":
            return isinstance(value, bool)
        case "u32":
            return integer and 0 <= value <= 2**32 - 1
        case "i32":
            return integer and -(2**31) <= value <= 2**31 - 1
        case "port":
            return integer and 1 <= value <= 65535
        case "strings" | "tables":
            return isinstance(value, list)
        case _:
            return isinstance(value, dict)


def _type_hint(key: Key, value: Any, name: str) -> str:
    if key.type_hint is not None:
        return key.type_hint(value)
    if key.kind == "string" and isinstance(value, int | float | bool):
        written = str(value).lower() if isinstance(value, bool) else str(value)
        return f"Quote it: {name} = {json.dumps(written)}."
    unquote = key.kind == "bool" and value in ("true", "false")
    unquote |= key.kind in ("u32", "i32", "port") and isinstance(value, str) and (
        value.strip("+-").isdigit())
    if unquote:
        return f"Write {name} = {value} without quotes."
    if key.kind == "strings" and isinstance(value, str):
        return f"Make it a list: {name} = [{json.dumps(value)}]."
    return f"Write {_EXPECTED[key.kind]}."


def _walk(v: _Validation, value: Any, key: Key, path: TomlPath, extension: bool) -> None:
    extension = extension or key.extension
    severity: Severity = "warning" if extension else "error"
    name = str(path[-1]) if path else ""
    who = "GhostPanel" if extension else "Bolt"
    if not _type_ok(value, key.kind):
        v.add(severity, path, f"`{name}` must be {_EXPECTED[key.kind]}, not {_describe(value)}"
              + ("" if extension else "; Bolt refuses the file"),
              _type_hint(key, value, name))
        return
    if key.kind == "strings" or (key.kind == "tables" and key.item is not None):
        wanted: Kind = "string" if key.kind == "strings" else "table"
        bad = [i for i, element in enumerate(value) if not _type_ok(element, wanted)]
        for index in bad:
            v.add(severity, path if key.kind == "strings" else (*path, index),
                  f"`{name}` must hold only {wanted}s, not {_describe(value[index])}",
                  "Quote the entry." if wanted == "string" else "Make each entry a table.",
                  element=index if key.kind == "strings" else None)
        if bad:
            return
    if key.kind == "string_map":
        for entry, entry_value in value.items():
            if not isinstance(entry_value, str):
                v.add(severity, (*path, entry), f"`{entry}` in {dotted(path)} must be a "
                      f"string, not {_describe(entry_value)}",
                      f"Quote it: {entry} = {json.dumps(str(entry_value))}.")
    elif key.kind == "table":
        _walk_table(v, value, key, path, extension, who)
    elif key.kind == "map" and key.item is not None:
        for entry, entry_value in value.items():
            _walk(v, entry_value, key.item, (*path, entry), extension)
    elif key.kind == "tables" and key.item is not None:
        for index, element in enumerate(value):
            _walk(v, element, key.item, (*path, index), extension)
    site = _Site(v, path, extension)
    for check in key.checks:
        check(value, site)


def _walk_table(v: _Validation, value: Mapping[str, Any], key: Key, path: TomlPath,
                extension: bool, who: str) -> None:
    table = dotted(path)
    for name, child in value.items():
        spec = key.fields.get(name)
        if spec is not None:
            _walk(v, child, spec, (*path, name), extension)
            continue
        hint = key.unknown_hints.get(name, "").replace("{table}", table)
        if not hint:
            close = difflib.get_close_matches(name, list(key.fields), n=1, cutoff=0.75)
            hint = (f"Did you mean `{close[0]}`?" if close else
                    "Remove it, or move its settings to keys " + who + " reads.")
        what = "table" if isinstance(child, dict) else "key"
        where = f"in {_label(path)}" if table else "at the top level"
        if extension:
            drops = "ignores it"
        elif what == "table":
            drops = "silently drops it, with everything in it"
        else:
            drops = "silently drops it"
        v.add("warning", (*path, name), f"{who} does not read the {what} `{name}` {where} "
              f"and {drops}", hint, at="key")
    missing = [n for n, spec in key.fields.items() if spec.required and n not in value]
    if not missing:
        return
    examples = []
    for name in missing:
        example = key.fields[name].example
        examples.append(f"{name} = {example(value) if callable(example) else example}")
    severity: Severity = "warning" if extension else "error"
    if not path:
        for name, example_line in zip(missing, examples, strict=True):
            v.add(severity, (name,), f"the required key `{name}` is missing; Bolt refuses "
                  "the file", f"Add {example_line} at the top of the file.", at="key")
        return
    listed = ", ".join(f"`{n}`" for n in missing)
    plural = "keys" if len(missing) > 1 else "key"
    refuses = "GhostPanel ignores the table" if extension else "Bolt refuses the file"
    v.add(severity, path, f"{_label(path)} is missing the required {plural} {listed}; "
          f"{refuses}", f"Add to {_label(path)}: " + "; ".join(examples) + ".", at="key")


# --------------------------------------------------------------------------- rules


def _services(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    services = data.get("services")
    if not isinstance(services, dict):
        return {}
    return {k: s for k, s in services.items() if isinstance(s, dict)}


def _rule_service_names(v: _Validation, data: Mapping[str, Any]) -> None:
    services = data.get("services")
    if isinstance(services, dict) and not services:
        v.add("error", ("services",), "no service is defined; Bolt wants at least one",
              'Add a service, e.g. [services.web] with image = "nginx:latest".', at="key")
    for name in services if isinstance(services, dict) else ():
        if not name or " " in name:
            v.add("error", ("services", name), f"service name {name!r} is empty or has "
                  "spaces; Bolt refuses it", "Rename the service without spaces, e.g. "
                  f"{name.strip().replace(' ', '-') or 'web'!r}.", at="key")


def _rule_one_source(v: _Validation, data: Mapping[str, Any]) -> None:
    for name, service in _services(data).items():
        sources = [k for k in ("image", "build", "capsule") if k in service]
        if not sources:
            v.add("error", ("services", name), f"service `{name}` has no image, build or "
                  "capsule; Bolt refuses the file", 'Add one of image = "nginx:latest", '
                  'build = "./dir" or capsule = "name".', at="key")
        for extra in sources[1:]:
            listed = ", ".join(f"`{s}`" for s in sources[:-1]) + f" and `{sources[-1]}`"
            v.add("error", ("services", name, extra), f"service `{name}` sets {listed}; "
                  "Bolt allows exactly one",
                  f"Keep one of {', '.join(sources)} and remove the others.", at="key")


def _rule_host_ports(v: _Validation, data: Mapping[str, Any]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name, service in _services(data).items():
        ports = service.get("ports")
        for index, spec in enumerate(ports if isinstance(ports, list) else ()):
            try:
                mapping = PortMapping.parse(spec) if isinstance(spec, str) else None
            except ValueError:
                continue  # reported by the port check
            if mapping is None:
                continue
            used = (mapping.host, mapping.protocol)
            if used in seen:
                owner = seen[used]
                by = "this service" if owner == name else f"service `{owner}`"
                v.add("error", ("services", name, "ports"), f"host port {mapping.host} is "
                      f"already published by {by}; Bolt refuses duplicate host ports",
                      f'Publish another host port, e.g. "{mapping.host + 1}:{mapping.container}".',
                      element=index)
            else:
                seen[used] = name


def _rule_dependencies(v: _Validation, data: Mapping[str, Any]) -> None:
    services = _services(data)
    graph: dict[str, list[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on")
        targets = [d for d in depends if isinstance(d, str)] if isinstance(depends, list) else []
        graph[name] = targets
        for index, target in enumerate(targets):
            if target not in services:
                known = ", ".join(services) or "none"
                v.add("error", ("services", name, "depends_on"), f"service `{name}` depends "
                      f"on `{target}`, which is not defined; Bolt refuses the file",
                      f"Use one of the defined services ({known}) or add [services.{target}].",
                      element=index)
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for index, target in enumerate(graph.get(node, [])):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target):], target]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    v.add("error", ("services", node, "depends_on"), "dependency cycle "
                          + " -> ".join(cycle) + "; Bolt refuses circular depends_on",
                          "Remove one depends_on entry of the cycle.", element=index)
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


_BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "default"})


def _rule_networks_declared(v: _Validation, data: Mapping[str, Any]) -> None:
    declared = data.get("networks")
    names = set(declared) if isinstance(declared, dict) else set()
    for name, service in _services(data).items():
        networks = service.get("networks")
        for index, network in enumerate(networks if isinstance(networks, list) else ()):
            if isinstance(network, str) and network not in names | _BUILTIN_NETWORKS:
                v.add("warning", ("services", name, "networks"), f"network `{network}` is not "
                      "declared under [networks]; the engine cannot attach the service unless "
                      "it already exists", f"Add [networks.{network}] with a driver.",
                      element=index)


_RULES: tuple[Callable[[_Validation, Mapping[str, Any]], None], ...] = (
    _rule_service_names,
    _rule_one_source,
    _rule_host_ports,
    _rule_dependencies,
    _rule_networks_declared,
)
"""Rules over the whole file, run after the schema walk."""


# --------------------------------------------------------------------------- entry points


def _syntax_diagnostic(text: str, exc: Exception, *, path: str, line: int | None,
                       column: int | None, layout: SourceLayout | None) -> Diagnostic:
    """An error for TOML that Bolt's parser refuses (``layout`` when tomlkit read it)."""
    line, column = line or 1, column or 1
    message = re.sub(r" \(at line \d+, column \d+\)$", "", str(exc))
    message = re.sub(r" at line \d+ col \d+$", "", message)
    if layout is not None:
        key = dotted(layout.path_at(layout.offset(line, column)))
        message = f"TOML 1.0 syntax error (Bolt's parser refuses it): {message}"
    else:
        key = _key_near(text, line)
        message = f"TOML syntax error: {message}"
    return Diagnostic(severity="error", line=line, column=column, key=key, message=message,
                      hint="Fix the TOML syntax here; Bolt stops at the first syntax error.",
                      path=path)


def _multiline_inline_tables(v: _Validation) -> list[tuple[int, int]]:
    """Report every inline table written over several lines, and return their spans.

    tomlkit reads them (TOML 1.1); Bolt's parser (the Rust toml 0.8 crate, TOML 1.0)
    stops at the first one. Reporting each saves a fix-and-retry round per table.
    """
    text = v.layout.text
    spans = []
    for path, value in v.layout.value_at.items():
        newline = text.find("\n", value.start, value.end)
        if value.kind != "inline" or newline < 0:
            continue
        spans.append((value.start, value.end))
        name = dotted(path)
        leaf = str(path[-1])
        newline -= text[newline - 1] == "\r"
        v.diagnostics.append(Diagnostic(
            severity="error", line=v.layout.line_col(newline)[0],
            column=v.layout.line_col(newline)[1], key=name,
            message="the inline table spans several lines, which TOML 1.0 (Bolt's parser, "
                    "the Rust toml 0.8 crate) does not allow",
            hint=f"Write {leaf} = {{ ... }} on one line without a trailing comma, or make it "
                 f"a [{name}] table; `ghostpanel boltfile fmt` does the first.",
            path=v.path,
        ))
    return spans


def _key_near(text: str, line: int) -> str:
    """Best guess at the key on ``line`` of text no parser reads: its table and key."""
    rows = text.splitlines()
    table = ""
    for row in rows[: line - 1]:
        header = re.match(r"\s*\[\[?\s*([^\]#]+?)\s*\]", row)
        if header:
            table = re.sub(r"\s*\.\s*", ".", header.group(1))
    key = ""
    if 0 < line <= len(rows):
        header = re.match(r"\s*\[\[?\s*([^\]#=]+?)\s*(\]|#|$)", rows[line - 1])
        if header:  # a broken header names its own table
            return re.sub(r"\s*\.\s*", ".", header.group(1))
        match = re.match(r"\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", rows[line - 1])
        key = re.sub(r"\s*\.\s*", ".", match.group(1)) if match else ""
    return ".".join(p for p in (table, key) if p)


def _validate_text(text: str, data: Mapping[str, Any], *, path: str) -> list[Diagnostic]:
    layout = scan_layout(text)
    validation = _Validation(layout, path)
    inline_spans = _multiline_inline_tables(validation)
    try:
        # tomlkit reads some TOML 1.1 that Bolt's TOML 1.0 parser refuses.
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column = syntax_error_position(text, exc)
        offset = layout.offset(line or 1, column or 1)
        if not any(start <= offset <= end for start, end in inline_spans):
            validation.diagnostics.append(_syntax_diagnostic(
                text, exc, path=path, line=line, column=column, layout=layout))
    _walk(validation, data, BOLTFILE_SCHEMA, (), False)
    for rule in _RULES:
        rule(validation, data)
    return sorted(validation.diagnostics,
                  key=lambda d: (d.line, d.column, d.severity != "error", d.key, d.message))


def validate(boltfile: Boltfile) -> list[Diagnostic]:
    """Check a loaded Boltfile against Bolt's rules.

    Returns
    -------
    list of Diagnostic
        Sorted by position. Bolt accepts the file exactly when none is an ``error``.

    Examples
    --------
    >>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n'
    ...                     'ports = ["80:80", "80:8080"]\\n')
    >>> [(d.severity, d.line, d.column, d.key) for d in validate(bf)]
    [('error', 4, 19, 'services.web.ports')]
    """
    return _validate_text(boltfile.dumps(), boltfile.to_dict(), path=boltfile.path)


def validate_file(path: str | PathLike[str]) -> list[Diagnostic]:
    """Check the Boltfile at ``path``; a TOML syntax error becomes an error diagnostic.

    Raises
    ------
    BoltfileError
        The file cannot be read at all (missing, no permission).
    """
    name = fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise BoltfileError(f"cannot read the Boltfile: {exc.strerror or exc}",
                            path=name) from exc
    try:
        text = decode_boltfile(raw, path=name)
    except BoltfileError as exc:
        return [Diagnostic(severity="error", line=exc.line or 1, column=exc.column or 1,
                           key="", message=exc.message, hint="Save the file as UTF-8.",
                           path=name)]
    try:
        document = parse_document(text, path=name)
    except BoltfileError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        return [_syntax_diagnostic(text, cause, path=name, line=exc.line, column=exc.column,
                                   layout=None)]
    return _validate_text(text, document.unwrap(), path=name)
