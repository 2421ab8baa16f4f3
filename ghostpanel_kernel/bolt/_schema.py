"""Bolt's Boltfile schema as data: :data:`BOLTFILE_SCHEMA`, a tree of :class:`Key` entries.

Every key Bolt reads is here with its type, whether serde requires it, and the value
checks (from :mod:`~ghostpanel_kernel.bolt._checks`) that mirror Bolt's
``BoltFile::validate``; the fields of a table are in the order Bolt declares them,
which is also the order ``fmt`` writes them (:func:`declared_keys`). The validator walks
this tree generically, so "unknown key" warnings fall out of it.

``[quic_fabric]`` and ``[dns_config]`` are GhostPanel's extension: Bolt's README
documents them but its loader drops them; GhostPanel reads them to configure its agent's
QUIC transport and DNS names. They are in the schema with ``extension=True``: no
"unknown key" warning for the tables themselves, and any problem inside them is a
warning, never an error, since Bolt never looks at them.

The service keys ``replicas`` (how many containers, default 1) and ``regions`` (region
labels the service may run in) are GhostPanel's too: its Surge reads them, Bolt drops
them. They are ``extension`` keys with one more twist: each always gets a warning that
says so, because a file that asks for 3 replicas runs one container under ``bolt surge``
-- the kind of silent difference the validator exists to point out. A malformed value is
a warning here (Bolt accepts the file) and an error when Surge applies the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ghostpanel_kernel.bolt._checks import (
    Check,
    check_domain,
    check_interval,
    check_ip,
    check_named_snapshots,
    check_nvbind_device,
    check_port,
    check_project,
    check_storage_size,
    check_subnet,
    check_volume,
    check_volume_driver,
    device_index,
    each,
    in_range,
    one_of,
    project_example,
    project_type_hint,
    schedule,
    volumes_type_hint,
)
from ghostpanel_kernel.bolt._layout import TomlPath
from ghostpanel_kernel.bolt._report import Site

__all__ = ["BOLTFILE_SCHEMA", "Key", "Kind", "declared_keys"]

Kind = Literal["string", "bool", "u32", "i32", "port", "strings", "string_map", "table",
               "map", "tables"]
"""How a value is typed. ``u32``/``i32`` are Rust's integer types (what serde enforces),
``port`` is 1-65535, ``strings`` a list of strings, ``string_map`` a table of strings,
``table`` a struct with declared ``fields``, ``map`` a table of any names whose values
all follow ``item``, ``tables`` a list (or array of tables) of ``item``."""


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


def _ghostpanel_only(what: str, bolt_does: str) -> Check:
    """A check that notes Bolt ignores a GhostPanel-only service key: ``what`` says what
    GhostPanel's Surge does with the value (``{value}``), ``bolt_does`` what Bolt does."""

    def check(value: Any, site: Site) -> None:
        shown = ", ".join(value) if isinstance(value, list) else value
        site.problem("warning", f"Bolt ignores `{site.path[-1]}`; GhostPanel's Surge "
                     f"{what.format(value=shown)}",
                     f"Deploy with `ghostpanel surge apply` for it to take effect; "
                     f"{bolt_does}.")
    return check


def _check_regions(value: list[str], site: Site) -> None:
    seen: set[str] = set()
    for index, region in enumerate(value):
        if not region.strip():
            site.problem("warning", "an empty region name matches no environment",
                         'Write a region label, e.g. "us-east".', element=index)
        elif region in seen:
            site.problem("warning", f"region {region!r} is listed twice",
                         "List each region once.", element=index)
        seen.add(region)


def _table(doc: str, fields: Mapping[str, Key], *checks: Check,
           hints: Mapping[str, str] | None = None, extension: bool = False,
           required: bool = False) -> Key:
    return Key("table", doc, required, fields=fields, checks=checks,
               unknown_hints=hints or {}, extension=extension)


_NVIDIA = _table("NVIDIA GPU settings", {
    "device": _u32("GPU index", device_index("NVIDIA")),
    "dlss": _bool("DLSS"),
    "reflex": _bool("Reflex"),
    "raytracing": _bool("ray tracing"),
    "cuda": _bool("CUDA"),
    "power_limit": _u32("power limit in percent, at most 150", in_range(0, 150, "%")),
    "memory_clock_offset": _i32("MHz, within +-2000", in_range(-2000, 2000, " MHz")),
    "core_clock_offset": _i32("MHz, within +-1000", in_range(-1000, 1000, " MHz")),
})

_GPU = _table("GPU access for a gaming service", {
    "runtime": _string('"nvbind", "docker", "nvidia" or "amd"'),
    "nvidia": _NVIDIA,
    "amd": _table("AMD GPU settings", {
        "device": _u32("GPU index", device_index("AMD")),
        "rocm": _bool("ROCm"),
    }),
    "nvbind": _table("nvbind GPU runtime", {
        "driver": _string('"auto", "nvidia-open", "proprietary" or "nouveau"'),
        "devices": _strings('["gpu:0"] or ["gpu:all"]', each(check_nvbind_device)),
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
                          one_of(("pipewire", "pulseaudio"), "error", "audio system"),
                          required=True, example='"pipewire"'),
        "latency": _string(),
    }),
    "wine": _table("Wine/Proton", {
        "version": _string(), "proton": _string(), "winver": _string(), "prefix": _string(),
    }),
    "performance": _table("scheduling", {
        "cpu_governor": _string(),
        "nice_level": _i32("-20 to 19", in_range(-20, 19)),
        "rt_priority": _u32("0 to 99", in_range(0, 99)),
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
    "ports": _strings('"HOST:CONTAINER" or "PORT"', each(check_port)),
    "volumes": _strings('"SOURCE:TARGET[:OPTIONS]"', each(check_volume),
                        type_hint=volumes_type_hint),
    "environment": _string_map(),
    "env": _string_map(),
    "depends_on": _strings("services started first"),
    "restart": _string("restart policy", one_of(
        ("no", "always", "on-failure", "unless-stopped"), "warning", "restart policy")),
    "networks": _strings("networks to join"),
    "storage": _table("storage for the service", {
        "size": _string('e.g. "5Gi"', check_storage_size, required=True, example='"5Gi"'),
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
    "replicas": Key("u32", "GhostPanel extension: containers of the service (Surge; Bolt "
                    "drops it)", checks=(_ghostpanel_only(
                        "runs {value} container(s) of this service",
                        "Bolt runs one container"),),
                    example="1", extension=True),
    "regions": Key("strings", "GhostPanel extension: region labels the service may run "
                   "in (Surge; Bolt drops it)",
                   checks=(_ghostpanel_only(
                       "runs the replicas only in environments labelled with region "
                       "{value}", "Bolt runs the service wherever it is started"),
                           _check_regions), example='["us-east"]', extension=True),
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
            "subnet": _string("CIDR, e.g. 10.0.0.0/16", check_subnet),
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
    "driver": _string('"local", "nfs" or "cifs"', check_volume_driver),
    "driver_opts": _string_map(),
    "external": _bool(),
    "labels": _string_map(),
    "name": _string(),
}, hints={
    "size": "Named volumes have no size in Bolt; a service's space is [services.<name>."
            "storage] size = \"10Gi\".",
    "path": "To use a host directory, mount it in the service: volumes = [\"./dir:/target\"].",
})

_HH_MM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_SNAPSHOTS = _table("BTRFS/ZFS snapshot automation", {
    "enabled": _bool(),
    "filesystem": _string('"btrfs", "zfs" or "auto"', one_of(
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
        "cleanup_frequency": _string('"daily", "weekly" or "monthly"', one_of(
            ("daily", "weekly", "monthly"), "warning", "cleanup frequency")),
    }),
    "triggers": _table("when to take snapshots", {
        "hourly": _bool(),
        "daily": _string('"HH:MM"', schedule(_HH_MM, "02:00", "daily")),
        "weekly": _string('"DAY@HH:MM"', schedule(
            rf"({'|'.join(_WEEKDAYS)})@{_HH_MM}", "sunday@03:00", "weekly")),
        "monthly": _string('"D@HH:MM"', schedule(
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
        "change_detection_interval": _string('e.g. "5m"', check_interval),
    }),
    "named_snapshots": Key("tables", "snapshots kept by name", item=_table("a named snapshot", {
        "name": _string(required=True, example='"stable-config"'),
        "description": _string(),
        "trigger": _string(),
        "auto_create": _bool(),
        "keep_forever": _bool(),
    }), checks=(check_named_snapshots,)),
})

_QUIC_FABRIC = _table("GhostPanel extension: the agent's QUIC transport (Bolt drops it)", {
    "enabled": _bool(),
    "node_id": _string("this host's name in the fabric"),
    "bind_address": _string("IP address to listen on", check_ip),
    "bind_port": Key("port", "UDP port to listen on"),
    "encryption": _bool(),
    "service_discovery": _bool(),
    # GhostPanel's agent policy (docs/quic-policy.md): which peer networks may connect.
    "cluster_id": _string("the fabric this host belongs to"),
    "allowed_endpoints": _strings("networks (CIDR) whose peers may connect to the agent",
                                  example='["10.0.0.0/8"]'),
}, extension=True)

_DNS_CONFIG = _table("GhostPanel extension: DNS names for services (Bolt drops it)", {
    "enabled": _bool(),
    "port": Key("port", "DNS port"),
    "domain": _string("services are <service>.<domain>", check_domain),
}, extension=True)

def _check_alert_rules(value: Any, site: Site) -> None:
    # GhostPanel's agent reads these rules (docs/alerts.md): judge them with
    # its own reader, so the validator and the agent never disagree. Predicates of
    # python rules are not imported: validating a file must not run code.
    from ghostpanel_kernel.metrics._alert_rules import RuleError, parse_rules

    try:
        parse_rules({"rules": value}, import_predicates=False)
    except RuleError as error:
        site.problem("warning", f"GhostPanel's agent cannot read this alert rule: {error}",
                     "Fix the rule; docs/alerts.md lists each kind's keys.")


_ALERTS = _table("GhostPanel extension: alert rules its agent evaluates (Bolt drops it)", {
    "webhook": _string("where alert notifications are POSTed (http or https URL)"),
    "rules": Key("tables", "alert rules ([[alerts.rules]])", checks=(_check_alert_rules,)),
}, extension=True)

BOLTFILE_SCHEMA = _table("a Boltfile", {
    "project": _string("project name, no spaces", check_project, required=True,
                       example=project_example, type_hint=project_type_hint),
    "quic_fabric": _QUIC_FABRIC,
    "dns_config": _DNS_CONFIG,
    "services": Key("map", "the services, by name", required=True, item=_SERVICE,
                    example='{ web = { image = "nginx:latest" } }'),
    "networks": Key("map", "networks, by name", item=_NETWORK),
    "volumes": Key("map", "named volumes, by name", item=_VOLUME),
    "snapshots": _SNAPSHOTS,
    "alerts": _ALERTS,
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
