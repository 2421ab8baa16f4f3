"""One Boltfile service as a Kubernetes container and pod spec, and what has no equivalent.

:func:`pod_parts` turns a ``[services.NAME]`` table into the pieces of a Deployment's
pod template (the container, the pod's volumes and its pod-level fields); everything
that Kubernetes cannot express is a note naming the Boltfile key. The rules are in
docs/conversions.md ("Boltfile to Kubernetes").
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ghostpanel_kernel._units import parse_duration_ns, parse_size
from ghostpanel_kernel.bolt._values import PortMapping, VolumeMount

__all__ = ["PodParts", "ServiceContext", "dns_label", "pod_parts", "quantity"]

#: Docker's healthcheck defaults, used where the Boltfile gives no value, so that the
#: probes check as often as the engine would have.
_DOCKER_INTERVAL_S: Final = 30
_DOCKER_TIMEOUT_S: Final = 30
_DOCKER_RETRIES: Final = 3
#: Service keys with no Kubernetes equivalent, and what the note says.
_NO_EQUIVALENT: Final = {
    "depends_on": "Kubernetes starts pods in no order; use readiness probes or an init "
                  "container that waits for the dependency",
    "devices": "Kubernetes passes host devices only through a device plugin",
    "security_opt": "no direct equivalent; set seccompProfile / appArmorProfile in the "
                    "securityContext",
    "logging": "the cluster's log collection replaces the log driver",
    "storage": "no per-container storage size; give the PersistentVolumeClaims their "
               "size",
    "auth": "registry credentials go in an imagePullSecret; create one and add it to "
            "the pod",
    "volumes_from": "Kubernetes shares volumes by mounting the same volume in each pod",
    "links": "every Service is reachable by its name; links are not needed",
    "container_name": "Kubernetes names the pods",
    "build": "", "capsule": "",  # the service is skipped with its own note
}
_GAMING_GPU_KEYS: Final = frozenset({"enabled", "gpu", "gpu_passthrough", "nvidia_runtime",
                                     "amd_runtime"})


@dataclass
class ServiceContext:
    """What the export of one service needs from the whole file.

    Attributes
    ----------
    name
        The service's name in the Boltfile.
    claims
        Named volume -> the PersistentVolumeClaim to mount (external ones included).
    base_dir
        The Boltfile's folder: relative bind sources are resolved from it.
    host_ports
        Put ``hostPort`` on each container port (bind the host port on the node).
    notes
        Notes of the whole export, appended to.
    """

    name: str
    claims: Mapping[str, str]
    base_dir: Path
    host_ports: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, key: str, text: str) -> None:
        """A note on ``services.NAME.KEY``."""
        self.notes.append(f"services.{self.name}.{key}: {text}")


@dataclass
class PodParts:
    """A service's pod template pieces.

    Attributes
    ----------
    container
        The one container (``name``, ``image``, ``command``...).
    volumes
        The pod's ``volumes``.
    pod
        Pod-level fields (``hostNetwork``, ``securityContext``, ``hostAliases``...).
    ports
        The published ports, as read from the Boltfile.
    claims_used
        The PersistentVolumeClaims the pod mounts.
    """

    container: dict[str, Any]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    pod: dict[str, Any] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)
    claims_used: list[str] = field(default_factory=list)


def dns_label(name: str, *, letter_first: bool = False) -> str:
    """``name`` as a Kubernetes DNS label: lowercase letters, digits and ``-``, at most
    63 characters, alphanumeric at both ends (and a letter first for a Service name).

    Examples
    --------
    >>> dns_label("My_Web.App"), dns_label("1db", letter_first=True)
    ('my-web-app', 's-1db')
    """
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-") or "x"
    if letter_first and not label[0].isalpha():
        label = f"s-{label}"[:63].rstrip("-")
    return label


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides it.

    Examples
    --------
    >>> quantity(512 * 1024**2), quantity(3 * 1024**3), quantity(1000)
    ('512Mi', '3Gi', '1000')
    """
    for unit, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _literal(value: Any) -> str:
    """A value Kubernetes passes on as it is: it expands ``$(VAR)`` in command, args and
    env values (the engine does not), and ``$$(`` is its escape for a literal ``$(``.

    Examples
    --------
    >>> _literal("echo $(date) $HOME")
    'echo $$(date) $HOME'
    """
    return str(value).replace("$(", "$$(")


def _seconds(value: Any, default: int) -> int:
    if not isinstance(value, str):
        return default
    try:
        return max(1, math.ceil(parse_duration_ns(value) / 1e9))
    except ValueError:
        return default


def _probe_command(test: list[str]) -> list[str] | None:
    """The exec probe's command for a healthcheck ``test``; None for ``NONE``."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return test[1:] if test[0] == "CMD" else test


def _probes(check: Mapping[str, Any], container: dict[str, Any]) -> None:
    if check.get("disable"):
        return
    command = _probe_command([str(part) for part in check.get("test") or []])
    if command is None:
        return
    probe: dict[str, Any] = {
        "exec": {"command": command},
        "periodSeconds": _seconds(check.get("interval"), _DOCKER_INTERVAL_S),
        "timeoutSeconds": _seconds(check.get("timeout"), _DOCKER_TIMEOUT_S),
        "failureThreshold": check.get("retries") if isinstance(check.get("retries"), int)
        and check["retries"] > 0 else _DOCKER_RETRIES,
    }
    container["readinessProbe"] = dict(probe)
    # The start period: failures then do not count; a liveness probe that starts after
    # it never restarts a container that is still starting.
    start = _seconds(check.get("start_period"), 0)
    container["livenessProbe"] = {**probe, **({"initialDelaySeconds": start} if start
                                              else {})}


def _ports(table: Mapping[str, Any], parts: PodParts, ctx: ServiceContext) -> None:
    seen: set[tuple[int, str, int | None]] = set()
    entries: list[dict[str, Any]] = []
    for spec in table.get("ports") or []:
        mapping = PortMapping.parse(spec)
        parts.ports.append(mapping)
        host = mapping.host if ctx.host_ports else None
        key = (mapping.container, mapping.protocol, host)
        if key in seen:
            continue
        seen.add(key)
        entry: dict[str, Any] = {"containerPort": mapping.container,
                                 "protocol": mapping.protocol.upper()}
        if host is not None:
            entry["hostPort"] = host
        entries.append(entry)
    if entries:
        parts.container["ports"] = entries
    moved = [str(p) for p in parts.ports if p.host != p.container]
    if moved and not ctx.host_ports:
        ctx.note("ports", f"{', '.join(moved)}: the Service listens on the container "
                 "port, as other services reach it under Bolt; no host port is bound "
                 "(export with --host-ports, or expose the Service with --service-type "
                 "NodePort or LoadBalancer)")


def _bind_path(source: str, base_dir: Path) -> str:
    if source.startswith("~"):
        return os.path.expanduser(source)
    path = Path(source)
    return os.path.normpath(path if path.is_absolute() else base_dir / path)


def _volumes(table: Mapping[str, Any], parts: PodParts, ctx: ServiceContext) -> None:
    mounts: list[dict[str, Any]] = []
    for index, spec in enumerate(table.get("volumes") or []):
        mount = VolumeMount.parse(spec)
        name = f"vol-{index}"
        if mount.source is None:
            parts.volumes.append({"name": name, "emptyDir": {}})
            ctx.note("volumes", f"{spec}: an anonymous volume becomes an emptyDir, emptied "
                     "when the pod is replaced")
        elif mount.source[0] in "/.~":
            path = _bind_path(mount.source, ctx.base_dir)
            parts.volumes.append({"name": name, "hostPath": {"path": path}})
            ctx.note("volumes", f"{spec}: a hostPath volume ({path}); the path must exist "
                     "on the node that runs the pod")
        else:
            claim = ctx.claims[mount.source]
            name = dns_label(mount.source)
            if claim not in parts.claims_used:
                parts.claims_used.append(claim)
                parts.volumes.append({"name": name, "persistentVolumeClaim": {
                    "claimName": claim}})
        item: dict[str, Any] = {"name": name, "mountPath": mount.target}
        if "ro" in mount.options:
            item["readOnly"] = True
        if {"z", "Z"} & set(mount.options):
            ctx.note("volumes", f"{spec}: SELinux relabelling (z/Z) has no equivalent; "
                     "set seLinuxOptions in the securityContext")
        mounts.append(item)
    for index, spec in enumerate(table.get("tmpfs") or []):
        target, _, options = str(spec).partition(":")
        size = re.search(r"size=([^,]+)", options)
        empty: dict[str, Any] = {"medium": "Memory"}
        if size:
            try:
                empty["sizeLimit"] = quantity(parse_size(size.group(1)))
            except ValueError:
                ctx.note("tmpfs", f"{spec}: size {size.group(1)!r} is not a size; dropped")
        parts.volumes.append({"name": f"tmpfs-{index}", "emptyDir": empty})
        mounts.append({"name": f"tmpfs-{index}", "mountPath": target})
    if mounts:
        parts.container["volumeMounts"] = mounts


def _gpu_limit(table: Mapping[str, Any], ctx: ServiceContext) -> dict[str, int]:
    gaming = table.get("gaming")
    if not isinstance(gaming, Mapping) or gaming.get("enabled") is False:
        return {}
    for key in sorted(set(gaming) - _GAMING_GPU_KEYS):
        if gaming[key] not in (False, None, "", [], {}):
            ctx.note(f"gaming.{key}", "a host-side gaming setting with no Kubernetes "
                     "equivalent")
    found = gaming.get("gpu")
    gpu: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if not gpu and gaming.get("gpu_passthrough") is not True:
        return {}
    amd = str(gpu.get("runtime", "")).lower() == "amd" or gaming.get("amd_runtime") is True
    devices = [str(d) for d in (gpu.get("nvbind") or {}).get("devices") or []]
    count = 1
    if "gpu:all" in devices:
        ctx.note("gaming.gpu.nvbind.devices", '"gpu:all": Kubernetes asks for a number of '
                 "GPUs, not all of a node's; asked for 1 (raise the limit to the node's "
                 "count)")
    elif devices:
        count = len(devices)
        ctx.note("gaming.gpu.nvbind.devices", f"{', '.join(devices)}: the device plugin "
                 f"picks the GPUs; asked for {count}")
    level = gpu.get("isolation_level")
    if level in ("shared", "virtual") or (gpu.get("aiml") or {}).get("mig_enabled"):
        how = "MIG" if (gpu.get("aiml") or {}).get("mig_enabled") else f"{level!s} GPUs"
        ctx.note("gaming.gpu", f"{how}: sharing a GPU is the device plugin's configuration "
                 "(time-slicing or a MIG strategy); asked for whole GPUs")
    return {"amd.com/gpu" if amd else "nvidia.com/gpu": count}


def _resources(table: Mapping[str, Any], container: dict[str, Any],
               ctx: ServiceContext) -> None:
    limits: dict[str, Any] = {}
    if isinstance(table.get("cpu_limit"), str):
        limits["cpu"] = table["cpu_limit"]
    if isinstance(table.get("memory_limit"), str):
        try:
            limits["memory"] = quantity(parse_size(table["memory_limit"]))
        except ValueError:
            ctx.note("memory_limit", f"{table['memory_limit']!r} is not a size; dropped")
    limits.update(_gpu_limit(table, ctx))
    if limits:
        container["resources"] = {"limits": limits}


def _security(table: Mapping[str, Any], container: dict[str, Any], pod: dict[str, Any],
              ctx: ServiceContext) -> None:
    security: dict[str, Any] = {}
    if table.get("privileged") is True:
        security["privileged"] = True
    if table.get("read_only") is True:
        security["readOnlyRootFilesystem"] = True
    capabilities = {key: [str(c).upper().removeprefix("CAP_") for c in table[name]]
                    for name, key in (("cap_add", "add"), ("cap_drop", "drop"))
                    if table.get(name)}
    if capabilities:
        security["capabilities"] = capabilities
    user = table.get("user")
    if isinstance(user, str) and user:
        uid, _, gid = user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            security["runAsUser"] = int(uid)
            if gid:
                security["runAsGroup"] = int(gid)
        else:
            ctx.note("user", f"{user!r}: Kubernetes takes numeric user and group ids")
    if security:
        container["securityContext"] = security
    pod_security: dict[str, Any] = {}
    if table.get("sysctls"):
        pod_security["sysctls"] = [{"name": k, "value": str(v)}
                                   for k, v in table["sysctls"].items()]
    groups = [str(g) for g in table.get("group_add") or []]
    if groups:
        if all(g.isdigit() for g in groups):
            pod_security["supplementalGroups"] = [int(g) for g in groups]
        else:
            ctx.note("group_add", "Kubernetes takes numeric group ids")
    if pod_security:
        pod["securityContext"] = pod_security


def _host_modes(table: Mapping[str, Any], pod: dict[str, Any], ctx: ServiceContext) -> None:
    for key, field_name in (("network_mode", "hostNetwork"), ("pid", "hostPID"),
                            ("ipc", "hostIPC")):
        value = table.get(key)
        if value == "host":
            pod[field_name] = True
        elif value not in (None, "", "bridge", "default"):
            ctx.note(key, f"{value!r} has no Kubernetes equivalent (only \"host\" has)")
    networks = [n for n in table.get("networks") or [] if n != "default"]
    if networks:
        ctx.note("networks", f"{', '.join(networks)}: Kubernetes has one pod network; "
                 "write NetworkPolicies to keep services apart")
    hosts: dict[str, list[str]] = {}
    for entry in table.get("extra_hosts") or []:
        name, _, address = str(entry).partition(":")
        hosts.setdefault(address.strip("[]"), []).append(name)
    if hosts:
        pod["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in hosts.items()]
    dns = {key: [str(v) for v in table[name]] for name, key in
           (("dns", "nameservers"), ("dns_search", "searches")) if table.get(name)}
    if dns:
        pod["dnsConfig"] = dns
    platform = table.get("platform")
    if isinstance(platform, str) and platform:
        system, _, arch = platform.partition("/")
        pod["nodeSelector"] = {"kubernetes.io/os": system,
                               **({"kubernetes.io/arch": arch.partition("/")[0]}
                                  if arch else {})}
    regions = table.get("regions")
    if isinstance(regions, list) and regions:
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{
                "key": "topology.kubernetes.io/region", "operator": "In",
                "values": [str(r) for r in regions]}]}]}}}


def pod_parts(table: Mapping[str, Any], ctx: ServiceContext) -> PodParts:
    """The container and pod pieces of one service with an ``image``.

    Raises
    ------
    ValueError
        A port or volume the validator would have refused (callers validate first).
    """
    container: dict[str, Any] = {"name": dns_label(ctx.name), "image": table["image"]}
    if table.get("entrypoint"):
        container["command"] = [_literal(part) for part in table["entrypoint"]]
    if table.get("command"):
        container["args"] = [_literal(part) for part in table["command"]]
    env = {**dict(table.get("environment") or {}), **dict(table.get("env") or {})}
    if env:
        container["env"] = [{"name": k, "value": _literal(v)} for k, v in env.items()]
    parts = PodParts(container=container)
    _ports(table, parts, ctx)
    _volumes(table, parts, ctx)
    _resources(table, container, ctx)
    if isinstance(table.get("healthcheck"), Mapping):
        _probes(table["healthcheck"], container)
    if isinstance(table.get("working_dir"), str):
        container["workingDir"] = table["working_dir"]
    for key, field_name in (("stdin_open", "stdin"), ("tty", "tty")):
        if table.get(key) is True:
            container[field_name] = True
    _security(table, container, parts.pod, ctx)
    _host_modes(table, parts.pod, ctx)
    if isinstance(table.get("hostname"), str):
        parts.pod["hostname"] = dns_label(table["hostname"])
    restart = str(table.get("restart") or "")
    if restart == "no" or restart.startswith("on-failure"):
        ctx.note("restart", f"{restart!r}: a Deployment always restarts its containers "
                 "(use a Job for a run-once service)")
    for key in sorted(set(table) & set(_NO_EQUIVALENT)):
        if _NO_EQUIVALENT[key] and table[key] not in (None, [], {}, ""):
            ctx.note(key, _NO_EQUIVALENT[key])
    return parts
