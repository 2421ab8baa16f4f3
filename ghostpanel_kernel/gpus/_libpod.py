"""The container settings a Surge service uses, in libpod's create body (Podman < 5.4).

A GPU container on Podman before 5.4 is created through libpod (compat
``DeviceRequests`` are dropped there, podman#22645). This module translates the
settings beyond the basic ones that :func:`~._create.libpod_create_body` takes --
network and aliases, published ports, volumes and bind mounts, restart policy, CPU and
memory limits, health check -- from the compat body
:func:`~ghostpanel_kernel.engine._container_spec.build_create_body` makes (so they are
checked the same way) into libpod's ``SpecGenerator`` members, as Podman 4 reads them.
Each is checked against the created container's inspect in
tests/integration/test_surge_gpu.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["LIBPOD_EXTRA_OPTIONS", "libpod_extras"]

#: The create options translated here (on top of the basic ones).
LIBPOD_EXTRA_OPTIONS: Final = frozenset({"network", "network_aliases", "ports", "volumes",
                                         "restart_policy", "cpus", "memory", "healthcheck"})
_CPU_PERIOD: Final = 100_000  # microseconds: the CFS period docker run --cpus uses
_ENGINE_MODES: Final = {"host": "host", "none": "none", "bridge": "bridge"}


def _port_mappings(bindings: Mapping[str, Any]) -> list[dict[str, Any]]:
    mappings: list[dict[str, Any]] = []
    for key, hosts in bindings.items():
        number, _, protocol = key.partition("/")
        for host in hosts:
            mapping: dict[str, Any] = {"container_port": int(number),
                                       "protocol": protocol or "tcp"}
            if host.get("HostPort"):
                mapping["host_port"] = int(host["HostPort"])
            if host.get("HostIp"):
                mapping["host_ip"] = host["HostIp"]
            mappings.append(mapping)
    return mappings


def _storage(binds: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Binds as libpod's named ``volumes`` and bind ``mounts``."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for bind in binds:
        source, target, *rest = bind.split(":")
        options = rest[0].split(",") if rest else []
        if source.startswith("/"):
            mounts.append({"type": "bind", "source": source, "destination": target,
                           "options": ["rbind", *options]})
        else:
            volumes.append({"Name": source, "Dest": target, "Options": options})
    return volumes, mounts


def _restart(policy: Mapping[str, Any]) -> dict[str, Any]:
    name = policy.get("Name") or "no"
    data: dict[str, Any] = {"restart_policy": name}
    if policy.get("MaximumRetryCount"):
        data["restart_tries"] = int(policy["MaximumRetryCount"])
    return data


def libpod_extras(compat: Mapping[str, Any]) -> dict[str, Any]:
    """libpod members for the settings of a compat create ``compat`` body.

    Parameters
    ----------
    compat
        What ``build_create_body`` made of the options (only the members named by
        :data:`LIBPOD_EXTRA_OPTIONS` are read).

    Examples
    --------
    >>> from ghostpanel_kernel.engine._container_spec import build_create_body
    >>> extras = libpod_extras(build_create_body(
    ...     image="busybox", network="shop_default", network_aliases=["web"],
    ...     ports={"8080/tcp": 18080}, memory="64m"))
    >>> extras["Networks"], extras["portmappings"], extras["resource_limits"]
    ({'shop_default': {'aliases': ['web']}}, [{'container_port': 8080, 'protocol': 'tcp', \
'host_port': 18080}], {'memory': {'limit': 67108864}})
    """
    host = compat.get("HostConfig") or {}
    data: dict[str, Any] = {}
    network = host.get("NetworkMode")
    if network in _ENGINE_MODES:
        data["netns"] = {"nsmode": _ENGINE_MODES[network]}
    elif network:
        endpoint = ((compat.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
                    ).get(network) or {}
        data["netns"] = {"nsmode": "bridge"}
        data["Networks"] = {network: {"aliases": list(endpoint.get("Aliases") or [])}}
    if host.get("PortBindings"):
        data["portmappings"] = _port_mappings(host["PortBindings"])
    if host.get("Binds"):
        volumes, mounts = _storage(list(host["Binds"]))
        if volumes:
            data["volumes"] = volumes
        if mounts:
            data["mounts"] = mounts
    if host.get("RestartPolicy"):
        data.update(_restart(host["RestartPolicy"]))
    limits: dict[str, Any] = {}
    if host.get("Memory"):
        limits["memory"] = {"limit": int(host["Memory"])}
    if host.get("NanoCpus"):
        limits["cpu"] = {"quota": round(host["NanoCpus"] / 1e9 * _CPU_PERIOD),
                         "period": _CPU_PERIOD}
    if limits:
        data["resource_limits"] = limits
    if compat.get("Healthcheck"):
        data["healthconfig"] = dict(compat["Healthcheck"])
    return data
