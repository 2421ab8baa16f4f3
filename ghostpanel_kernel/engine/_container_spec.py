"""Build the Engine API's container-create body from typed, spelled-out arguments.

Pure functions, no I/O, so every translation (ports, binds, restart policy, limits) is
unit-tested without an engine.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from .._units import parse_size
from ._arguments import check_port, check_signal

__all__ = ["PortSpec", "VolumeSpec", "build_create_body", "parse_memory"]

#: ``{"8080/tcp": 18080}``, ``{8080: ("127.0.0.1", 18080)}``, ``{8080: None}`` (any free
#: host port), or several host bindings as a list.
HostBinding: TypeAlias = int | str | tuple[str, int | None] | None
PortSpec: TypeAlias = Mapping[int | str, HostBinding | Sequence[HostBinding]]
#: ``["/srv/data:/data:ro", "cache:/cache"]`` or ``{"/srv/data": "/data:ro"}``.
VolumeSpec: TypeAlias = Sequence[str] | Mapping[str, str]

_RESTART_NAMES = frozenset({"no", "always", "unless-stopped", "on-failure"})


def parse_memory(value: int | str) -> int:
    """Bytes from ``536870912``, ``"512m"``, ``"512Mi"``, ``"512MiB"`` or ``"1g"``.

    All units are binary, as ``docker run --memory`` reads them (see
    :func:`ghostpanel_kernel._units.parse_size`).

    Examples
    --------
    >>> parse_memory("512m")
    536870912
    """
    try:
        return parse_size(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"invalid memory size: {error}") from None


def _port_key(port: int | str) -> str:
    text = str(port)
    number, _, proto = text.partition("/")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise ValueError(f"container port must be 1-65535, got {port!r}")
    if proto not in ("", "tcp", "udp", "sctp"):
        raise ValueError(f"port protocol must be tcp, udp or sctp, got {port!r}")
    return f"{number}/{proto or 'tcp'}"


def _host_binding(binding: HostBinding) -> dict[str, str]:
    # The engines answer an out-of-range port or a malformed address with a 500.
    if binding is None:
        return {"HostIp": "", "HostPort": ""}
    if isinstance(binding, tuple):
        host_ip, host_port = binding
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise ValueError(f"host address must be an IP address, got {host_ip!r}"
                                 ) from None
        if host_port is None:
            return {"HostIp": host_ip, "HostPort": ""}  # any free port on that address
        return {"HostIp": host_ip, "HostPort": str(check_port("host port", host_port))}
    return {"HostIp": "", "HostPort": str(check_port("host port", binding))}


def _port_bindings(ports: PortSpec) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for container_port, host in ports.items():
        key = _port_key(container_port)
        exposed[key] = {}
        hosts = list(host) if isinstance(host, list) else [host]
        bindings[key] = [_host_binding(h) for h in hosts]  # type: ignore[arg-type]
    return exposed, bindings


def _binds(volumes: VolumeSpec) -> list[str]:
    if isinstance(volumes, Mapping):
        pairs = [f"{source}:{target}" for source, target in volumes.items()]
    elif isinstance(volumes, str):
        raise TypeError("volumes must be a list of 'src:dst[:mode]' strings or a mapping")
    else:
        pairs = list(volumes)
    for bind in pairs:
        parts = bind.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise ValueError(
                f"volume {bind!r} must read 'source:/container/path[:ro|rw|z|Z]'")
    return pairs


def _restart_policy(policy: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(policy, Mapping):
        return dict(policy)
    name, _, retries = policy.partition(":")
    if name not in _RESTART_NAMES:
        raise ValueError(
            f"restart policy {policy!r} is not one of no, always, unless-stopped, "
            "on-failure[:N]")
    result: dict[str, Any] = {"Name": "" if name == "no" else name}
    if retries:
        if name != "on-failure" or not retries.isdigit():
            raise ValueError(f"only on-failure takes a retry count: {policy!r}")
        result["MaximumRetryCount"] = int(retries)
    return result


def _command(value: str | Sequence[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _env_list(env: Mapping[str, str] | Sequence[str]) -> list[str]:
    if isinstance(env, Mapping):
        return [f"{key}={value}" for key, value in env.items()]
    return list(env)


def build_create_body(
    *,
    image: str,
    command: str | Sequence[str] | None = None,
    entrypoint: str | Sequence[str] | None = None,
    env: Mapping[str, str] | Sequence[str] | None = None,
    ports: PortSpec | None = None,
    volumes: VolumeSpec | None = None,
    labels: Mapping[str, str] | None = None,
    network: str | None = None,
    network_aliases: Sequence[str] | None = None,
    restart_policy: str | Mapping[str, Any] | None = None,
    cpus: float | None = None,
    memory: int | str | None = None,
    working_dir: str | None = None,
    user: str | None = None,
    hostname: str | None = None,
    tty: bool = False,
    stdin_open: bool = False,
    privileged: bool = False,
    read_only: bool = False,
    auto_remove: bool = False,
    healthcheck: Mapping[str, Any] | None = None,
    stop_signal: str | None = None,
    cap_add: Sequence[str] | None = None,
    cap_drop: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Translate spelled-out container settings into the ``POST /containers/create`` body.

    See :meth:`ContainerCollection.create` for the meaning of each argument.
    """
    if not isinstance(image, str) or not image:
        raise ValueError("image must be a non-empty image reference")
    body: dict[str, Any] = {"Image": image, "Tty": tty, "OpenStdin": stdin_open}
    host: dict[str, Any] = {}
    if command is not None:
        body["Cmd"] = _command(command)
    if entrypoint is not None:
        body["Entrypoint"] = _command(entrypoint)
    if env is not None:
        body["Env"] = _env_list(env)
    if labels is not None:
        body["Labels"] = {str(k): str(v) for k, v in labels.items()}
    if working_dir is not None:
        body["WorkingDir"] = working_dir
    if user is not None:
        body["User"] = user
    if hostname is not None:
        body["Hostname"] = hostname
    if stop_signal is not None:
        body["StopSignal"] = str(check_signal(stop_signal))
    if healthcheck is not None:
        body["Healthcheck"] = dict(healthcheck)
    if ports:
        body["ExposedPorts"], host["PortBindings"] = _port_bindings(ports)
    if volumes:
        host["Binds"] = _binds(volumes)
    if restart_policy is not None:
        host["RestartPolicy"] = _restart_policy(restart_policy)
    if cpus is not None:
        if cpus <= 0:
            raise ValueError(f"cpus must be positive, got {cpus}")
        host["NanoCpus"] = round(cpus * 1e9)
    if memory is not None:
        host["Memory"] = parse_memory(memory)
    if privileged:
        host["Privileged"] = True
    if read_only:
        host["ReadonlyRootfs"] = True
    if auto_remove:
        host["AutoRemove"] = True
    if cap_add:
        host["CapAdd"] = list(cap_add)
    if cap_drop:
        host["CapDrop"] = list(cap_drop)
    if devices:
        host["Devices"] = [_device(d) for d in devices]
    if network is not None:
        host["NetworkMode"] = network
        # Modes that are not networks (no network, the host's, another container's) take
        # no endpoint settings: Podman refuses them with a 500.
        if network not in ("none", "host") and not network.startswith(("container:", "ns:")):
            endpoint: dict[str, Any] = {}
            if network_aliases:
                endpoint["Aliases"] = list(network_aliases)
            body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    body["HostConfig"] = host
    return body


def _device(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    host_path = parts[0]
    container_path = parts[1] if len(parts) > 1 else host_path
    permissions = parts[2] if len(parts) > 2 else "rwm"
    # The engines answer a relative path or unknown permissions with a 500.
    if (len(parts) > 3 or not host_path.startswith("/") or not container_path.startswith("/")
            or not permissions or set(permissions) - set("rwm")):
        raise ValueError(f"device {spec!r} must read '/dev/host[:/dev/container[:rwm]]'")
    return {"PathOnHost": host_path, "PathInContainer": container_path,
            "CgroupPermissions": permissions}
