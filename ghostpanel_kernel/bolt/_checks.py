"""The value checks of the Boltfile schema: one function per rule about a single value.

A check is called with a value already of the right type and reports through its
:class:`~ghostpanel_kernel.bolt._report.Site` (which turns errors into warnings inside
GhostPanel's extension tables). The factories (:func:`one_of`, :func:`in_range`, ...)
build checks from parameters; ``*_type_hint`` and ``*_example`` functions word the hint
for a value of the wrong type or a missing key. :data:`BOLTFILE_SCHEMA` in
:mod:`~ghostpanel_kernel.bolt._schema` says which check runs where.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ghostpanel_kernel.bolt._diagnostics import Severity
from ghostpanel_kernel.bolt._report import Site
from ghostpanel_kernel.bolt._values import PortMapping, VolumeMount

__all__ = ["Check", "check_domain", "check_interval", "check_ip", "check_named_snapshots",
           "check_nvbind_device", "check_port", "check_project", "check_storage_size",
           "check_subnet", "check_volume", "check_volume_driver", "device_index", "each",
           "in_range", "one_of", "project_example", "project_type_hint", "schedule",
           "volumes_type_hint"]

Check = Callable[[Any, Site], None]
"""A value check: called with a value of the right type, reports through the site."""

_T = TypeVar("_T")


def one_of(choices: Sequence[str], severity: Severity, what: str) -> Check:
    def check(value: str, site: Site) -> None:
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            site.problem(severity, f"{what} {value!r} is not one of {listed}",
                         f"Use one of {listed}.")
    return check


def each(check_one: Callable[[str, int, Site], None]) -> Check:
    def check(values: list[str], site: Site) -> None:
        for index, value in enumerate(values):
            check_one(value, index, site)
    return check


def in_range(low: int, high: int, unit: str = "") -> Check:
    def check(value: int, site: Site) -> None:
        if not low <= value <= high:
            site.problem("error", f"{site.path[-1]} {value}{unit} is out of range "
                         f"({low} to {high}{unit}); Bolt refuses it",
                         f"Use a value from {low} to {high}.")
    return check


def device_index(vendor: str) -> Check:
    def check(value: int, site: Site) -> None:
        if value > 7:
            site.problem("warning", f"{vendor} device index {value} is unusually high "
                         "(Bolt warns about it too)", "Check the GPU index; hosts rarely "
                         "have more than 8 GPUs.")
    return check


def check_project(value: str, site: Site) -> None:
    if not value:
        site.problem("error", "the project name is empty", 'Name the project, e.g. '
                     'project = "my-stack".')
    elif " " in value:
        fixed = value.replace(" ", "-")
        site.problem("error", f"the project name {value!r} contains spaces; Bolt refuses "
                     "it (containers are named {project}_{service})",
                     f'Use a name without spaces, e.g. project = "{fixed}".')


def project_type_hint(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return (f'Bolt reads `project` as a string: replace the [project] table with '
                f'project = {json.dumps(value["name"])} at the top of the file.')
    return 'Write project = "my-stack" at the top of the file.'


def project_example(root: Mapping[str, Any]) -> str:
    for table in ("metadata", "project"):
        candidate = root.get(table)
        if isinstance(candidate, dict) and isinstance(candidate.get("name"), str):
            return json.dumps(candidate["name"])
    return '"my-stack"'


def _parsed(parse: Callable[[str], _T], spec: str, index: int, site: Site, what: str,
            hint: str) -> _T | None:
    """``parse(spec)``, or ``None`` once the entry Bolt refuses is reported."""
    try:
        return parse(spec)
    except ValueError as exc:
        site.problem("error", f"{what}: {exc}", hint, element=index)
        return None


def check_port(spec: str, index: int, site: Site) -> None:
    mapping = _parsed(PortMapping.parse, spec, index, site, f"invalid port {spec!r}",
                      'Write "HOST:CONTAINER" (e.g. "8080:80") or "PORT", each 1-65535; '
                      "Bolt accepts no host IP, range or protocol.")
    if mapping is not None and mapping.explicit_protocol:
        site.problem("warning", f"port {spec!r} has a /{mapping.protocol} suffix: Bolt "
                     f"refuses it, GhostPanel publishes the port as {mapping.protocol.upper()}",
                     f'Only GhostPanel can deploy this service; for Bolt write '
                     f'"{mapping.host}:{mapping.container}" (TCP).', element=index)


def check_volume(spec: str, index: int, site: Site) -> None:
    mount = _parsed(VolumeMount.parse, spec, index, site, "invalid volume",
                    'Write "SOURCE:TARGET" or "SOURCE:TARGET:OPTIONS" (options ro, rw, z, '
                    'Z), e.g. "./data:/data:ro".')
    if mount is None:
        return
    if not mount.target:
        site.problem("warning", "empty volume entry", "Remove it or write SOURCE:TARGET.",
                     element=index)
    for option in mount.unknown_options:
        site.problem("warning", f"volume {spec!r}: Bolt ignores the unknown option "
                     f"{option!r} (it knows ro, rw, z, Z)", "Use ro, rw, z or Z "
                     "(comma separated).", element=index)


def volumes_type_hint(value: Any) -> str:
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        entries = ", ".join(json.dumps(f"{k}:{v}") for k, v in value.items())
        return f"Bolt reads a list of \"SOURCE:TARGET[:OPTIONS]\" strings: volumes = [{entries}]"
    return 'Write a list of "SOURCE:TARGET[:OPTIONS]" strings, e.g. volumes = ["./data:/data"].'


_STORAGE_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def check_storage_size(value: str, site: Site) -> None:
    # Bolt's rule: one of these suffixes, and what is left before the letters an f64.
    number = re.sub(r"[^\W\d_]+$", "", value)
    if not value.endswith(("Gi", "Mi", "Ki", "G", "M", "K")) or not _STORAGE_NUMBER.fullmatch(
            number):
        site.problem("error", f"storage size {value!r} is not in a format Bolt reads",
                     'Use a number and one of Gi, Mi, Ki, G, M, K, e.g. "5Gi" or "500Mi".')


def check_subnet(value: str, site: Site) -> None:
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


def check_volume_driver(value: str, site: Site) -> None:
    if value not in ("local", "nfs", "cifs"):
        site.problem("warning", f"Bolt warns about the unknown volume driver {value!r} "
                     "(it knows local, nfs and cifs)", 'Use "local", "nfs" or "cifs", '
                     "unless the engine has this driver installed.")


def check_nvbind_device(value: str, index: int, site: Site) -> None:
    if not re.fullmatch(r"gpu:([0-9]+|all)", value):
        site.problem("warning", f"nvbind device {value!r} is not \"gpu:<index>\" or "
                     "\"gpu:all\"; GhostPanel's GPU allocator cannot place it",
                     'Use "gpu:all" for every GPU, or "gpu:0", "gpu:1", ...', element=index)


def schedule(pattern: str, example: str, what: str) -> Check:
    def check(value: str, site: Site) -> None:
        if not re.fullmatch(pattern, value, flags=re.IGNORECASE):
            site.problem("warning", f"{what} snapshot time {value!r} cannot be scheduled "
                         "(Bolt stores it; GhostPanel's scheduler runs it)",
                         f'Write it like "{example}" (24-hour time).')
    return check


def check_interval(value: str, site: Site) -> None:
    if not re.fullmatch(r"[0-9]+[smhd]", value):
        site.problem("warning", f"interval {value!r} is not a number with s, m, h or d",
                     'Write e.g. "30m" or "1h".')


def check_named_snapshots(value: list[Any], site: Site) -> None:
    seen: set[str] = set()
    for index, snapshot in enumerate(value):
        name = snapshot.get("name") if isinstance(snapshot, dict) else None
        if isinstance(name, str) and name in seen:
            site.validation.add("warning", (*site.path, index, "name"),
                                f"named snapshot {name!r} is defined twice",
                                "Give each named snapshot its own name.")
        if isinstance(name, str):
            seen.add(name)


def check_ip(value: str, site: Site) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        site.problem("warning", f"{value!r} is not an IP address", 'Write e.g. "0.0.0.0".')


def check_domain(value: str, site: Site) -> None:
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if not re.fullmatch(rf"{label}(\.{label})*", value):
        site.problem("warning", f"{value!r} is not a DNS domain name",
                     'Write e.g. "demo.bolt.local".')

