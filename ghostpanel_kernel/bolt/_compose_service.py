"""One Compose service as a Boltfile service table (plain data), and what was lost.

:func:`convert_service` reads the service after interpolation and returns the
``[services.NAME]`` table in Bolt's spelling; each Compose key it cannot carry over
becomes a note in :attr:`Context.notes` that names the key (``services.web.secrets:
...``). The rules, key by key, are in docs/conversions.md.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ghostpanel_kernel._units import parse_duration_ns, parse_size
from ghostpanel_kernel.bolt._compose_vars import read_env_file

__all__ = ["Context", "convert_service", "string_map"]

#: Compose keys whose value Bolt reads under the same name and type.
_SAME_STRING: Final = ("working_dir", "user", "hostname", "network_mode", "pid", "ipc",
                       "platform")
_SAME_BOOL: Final = ("privileged", "read_only", "stdin_open", "tty")
_SAME_STRINGS: Final = ("cap_add", "cap_drop", "security_opt", "dns", "dns_search",
                        "group_add", "volumes_from", "links")
#: Keys with no effect on what runs (or no equivalent at all) that are dropped quietly.
_QUIET: Final = frozenset({"expose"})
#: What the notes say about Compose keys Bolt has no field for.
_NO_EQUIVALENT: Final = {
    "secrets": "Bolt has no secrets; mount the secret file as a volume or pass it in env",
    "configs": "Bolt has no configs; mount the file as a read-only volume",
    "extends": "not resolved; copy the extended service's keys into this one",
    "profiles": "Bolt has no profiles; the service is always deployed",
    "ulimits": "Bolt has no ulimits",
    "init": "Bolt has no init process option",
    "stop_signal": "Bolt has no stop signal option",
    "stop_grace_period": "Bolt has no stop timeout option",
    "shm_size": "Bolt has no shm_size",
    "pull_policy": "Bolt has no pull policy",
    "runtime": "Bolt has no OCI runtime option",
    "mem_reservation": "Bolt has no memory reservation",
}
_HANDLED: Final = frozenset({
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports",
    "volumes", "restart", "labels", "deploy", "healthcheck", "depends_on", "networks",
    "gpus", "container_name", "mem_limit", "cpus", "scale", "tmpfs", "sysctls",
    "extra_hosts", "devices", "logging", *_SAME_STRING, *_SAME_BOOL, *_SAME_STRINGS,
})
_RESTART_CONDITIONS: Final = {"none": "no", "on-failure": "on-failure", "any": "always"}


@dataclass
class Context:
    """What the conversion of every service shares.

    Attributes
    ----------
    base_dir
        The Compose file's folder: ``env_file`` paths are relative to it.
    variables
        The project's variables, for ``environment`` entries without a value.
    surge_refuses
        Bolt keys GhostPanel's Surge refuses: dropped (with a note) unless empty.
    notes
        What could not be carried over, each naming the Compose key.
    host_ports
        Host ports (and protocols) already published, by service: Bolt refuses twice.
    anonymous
        The named volumes that stand for anonymous ones (declared in ``[volumes]``).
    """

    base_dir: Path
    variables: Mapping[str, str]
    surge_refuses: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)
    host_ports: dict[tuple[int, str], str] = field(default_factory=dict)
    anonymous: list[str] = field(default_factory=list)

    def note(self, where: str, text: str) -> None:
        """Record that ``where`` (a dotted Compose key) was not carried over: ``text``."""
        self.notes.append(f"{where}: {text}")


def _text(value: Any) -> str:
    """A YAML scalar as Compose stringifies it (``true`` -> ``"true"``, ``1.5`` ->
    ``"1.5"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strings(value: Any) -> list[str]:
    """A string or a list of scalars as a list of strings."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(item) for item in value]
    return [_text(value)]


def _command(value: Any) -> list[str]:
    # Compose splits a string command as a shell would (no shell runs it).
    return shlex.split(value) if isinstance(value, str) else _strings(value)


def string_map(value: Any, *, separator: str = "=") -> dict[str, str | None]:
    """A Compose mapping in either of its spellings -- ``{"A": 1}`` or ``["A=1"]`` --
    as strings; an entry without a value (``"A"``, ``A: null``) maps to None.

    Examples
    --------
    >>> string_map(["A=1", "B"]), string_map({"A": 1, "B": None, "C": True})
    ({'A': '1', 'B': None}, {'A': '1', 'B': None, 'C': 'true'})
    """
    if isinstance(value, Mapping):
        return {str(k): None if v is None else _text(v) for k, v in value.items()}
    found: dict[str, str | None] = {}
    for entry in _strings(value):
        key, sep, item = entry.partition(separator)
        found[key.strip()] = item if sep else None
    return found


def _environment(name: str, raw: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    where = f"services.{name}"
    env: dict[str, str] = {}
    files = raw.get("env_file")
    entries = files if isinstance(files, list) else [] if files is None else [files]
    for entry in entries:
        path_text = entry.get("path") if isinstance(entry, Mapping) else entry
        required = entry.get("required", True) if isinstance(entry, Mapping) else True
        path = ctx.base_dir / str(path_text)
        try:
            env.update(read_env_file(path))
        except OSError as error:
            why = "missing" if isinstance(error, FileNotFoundError) else \
                f"unreadable ({error.strerror or error})"
            ctx.note(f"{where}.env_file", f"{path} is {why}"
                     + ("" if required else " (required: false)")
                     + "; its variables are not in the Boltfile")
    for key, value in string_map(raw.get("environment")).items():
        if value is None:
            value = ctx.variables.get(key)
            if value is None:
                ctx.note(f"{where}.environment.{key}", "no value given and the variable "
                         "is not set; left out")
                continue
        env[key] = value
    return env


def _port_numbers(text: str, where: str) -> list[int]:
    first, dash, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if dash else low
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a port or a port range") from None
    return list(range(low, high + 1))


def _short_ports(spec: str, where: str, ctx: Context) -> list[tuple[int | None, int, str]]:
    """``(host or None, container, protocol)`` for each port of a short-syntax entry."""
    body, _, protocol = spec.partition("/")
    # rsplit keeps an IPv6 host address ("::1:8080:80") whole in parts[0].
    parts = body.rsplit(":", 2)
    container = _port_numbers(parts[-1], where)
    host: list[int | None] = [None] * len(container)
    if len(parts) >= 2 and parts[-2]:
        numbers = _port_numbers(parts[-2], where)
        if len(numbers) == 1 and len(container) > 1:
            ctx.note(where, f"{spec!r} maps a range to one host port; each container "
                     "port is published on its own number")
            host = list(container)
        elif len(numbers) != len(container):
            raise ValueError(f"{where}: {spec!r} maps ranges of different lengths")
        else:
            host = list(numbers)
    if len(parts) == 3 and parts[0]:
        ctx.note(where, f"{spec!r} binds host address {parts[0]}; Bolt publishes on every "
                 "address")
    return [(h, c, protocol or "tcp") for h, c in zip(host, container, strict=True)]


def _ports(name: str, raw: Any, ctx: Context) -> list[str]:
    where = f"services.{name}.ports"
    wanted: list[tuple[int | None, int, str]] = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            published = entry.get("published")
            if entry.get("host_ip"):
                ctx.note(where, f"host_ip {entry['host_ip']} is dropped; Bolt publishes on "
                         "every address")
            protocol = str(entry.get("protocol") or "tcp")
            target = int(entry["target"])
            host = _port_numbers(str(published), where)[0] if published not in (None, "") \
                else None
            wanted.append((host, target, protocol))
        else:
            wanted += _short_ports(_text(entry), where, ctx)
    ports: list[str] = []
    for host, container, protocol in wanted:
        if protocol not in ("tcp", "udp"):
            ctx.note(where, f"port {container}/{protocol}: Bolt publishes only TCP and UDP")
            continue
        if host is None:
            ctx.note(where, f"container port {container} is published on a random host port "
                     f"by Compose; the Boltfile publishes host port {container}")
            host = container
        owner = ctx.host_ports.get((host, protocol))
        if owner is not None:
            ctx.note(where, f"host port {host}/{protocol} is already published by service "
                     f"`{owner}`; Bolt refuses a host port twice, so it is left out")
            continue
        ctx.host_ports[(host, protocol)] = name
        suffix = "/udp" if protocol == "udp" else ""
        ports.append(f"{host}:{container}{suffix}")
    return ports


def _volume_options(options: list[str], where: str, ctx: Context) -> list[str]:
    kept = [o for o in options if o in ("ro", "rw", "z", "Z")]
    dropped = [o for o in options if o not in kept]
    if dropped:
        ctx.note(where, f"option(s) {', '.join(dropped)} dropped; Bolt knows ro, rw, z, Z")
    return kept


def _volumes(name: str, raw: Any, ctx: Context) -> tuple[list[str], list[str]]:
    """The ``volumes`` entries and the ``tmpfs`` mounts of a service."""
    where = f"services.{name}.volumes"
    volumes: list[str] = []
    tmpfs: list[str] = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            kind = entry.get("type", "volume")
            target = str(entry.get("target", ""))
            if kind == "tmpfs":
                size = (entry.get("tmpfs") or {}).get("size")
                tmpfs.append(f"{target}:size={size}" if size else target)
                continue
            if kind not in ("volume", "bind"):
                ctx.note(where, f"a {kind} mount of {target} has no Bolt equivalent")
                continue
            options = ["ro"] if entry.get("read_only") else []
            selinux = (entry.get("bind") or {}).get("selinux")
            if selinux in ("z", "Z"):
                options.append(str(selinux))
            extra = sorted(set(entry) - {"type", "source", "target", "read_only", "bind",
                                         "volume"})
            if extra or (entry.get("volume") or {}) or set(entry.get("bind") or {}) - {
                    "selinux", "create_host_path"}:
                ctx.note(where, f"mount of {target}: only source, target, read_only and "
                         "SELinux labels are carried over")
            source = entry.get("source")
            spec = f"{source}:{target}" if source else target
        else:
            spec = _text(entry)
            parts = spec.split(":")
            options = parts[2].split(",") if len(parts) > 2 else []
            spec = ":".join(parts[:2])
        kept = _volume_options(options, where, ctx)
        if ":" not in spec and ctx.surge_refuses:
            # Surge refuses anonymous volumes (they would pile up on every redeploy).
            named = f"{name}-anon-{len(ctx.anonymous) + 1}"
            ctx.anonymous.append(named)
            ctx.note(where, f"the anonymous volume at {spec} becomes the named volume "
                     f"{named} (GhostPanel's Surge refuses anonymous volumes)")
            spec = f"{named}:{spec}"
        volumes.append(f"{spec}:{','.join(kept)}" if kept and ":" in spec else spec)
    return volumes, tmpfs


def _duration(value: Any, where: str, ctx: Context) -> str | None:
    text = _text(value)
    try:
        parse_duration_ns(text)
    except ValueError:
        ctx.note(where, f"{text!r} is not a duration Bolt reads (e.g. 30s, 1m30s); dropped")
        return None
    return text


def _healthcheck(name: str, raw: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    where = f"services.{name}.healthcheck"
    if raw.get("disable"):
        return {"test": ["NONE"], "disable": True}
    test = raw.get("test")
    check: dict[str, Any] = {
        "test": ["CMD-SHELL", test] if isinstance(test, str) else _strings(test)}
    for key in ("interval", "timeout", "start_period"):
        if raw.get(key) is not None and (text := _duration(raw[key], f"{where}.{key}", ctx)):
            check[key] = text
    if isinstance(raw.get("retries"), int):
        check["retries"] = raw["retries"]
    if "start_interval" in raw:
        ctx.note(f"{where}.start_interval", "Bolt has no start_interval")
    check["disable"] = False
    return check


def _size_text(value: Any, where: str, ctx: Context) -> str | None:
    text = _text(value).strip()
    try:
        size = parse_size(int(text) if text.isdigit() else text.rstrip("bB") or text)
    except ValueError:
        ctx.note(where, f"{text!r} is not a size Bolt reads; dropped")
        return None
    return text if not text.isdigit() else str(size)


def _gaming(devices: list[str], driver: str) -> dict[str, Any]:
    # Bolt requires the six switches of [gaming]; only the GPU ones are on (the same
    # table as RunSpec writes for a GPU container). No devices: gpu_passthrough alone
    # asks the allocator for one GPU of its choice.
    gaming: dict[str, Any] = {
        "enabled": True, "gpu_passthrough": True, "nvidia_runtime": driver == "nvidia",
        "amd_runtime": False, "audio_passthrough": False, "real_time_priority": False}
    if devices:
        gaming["gpu"] = {"nvbind": {"devices": devices}}
    return gaming


def _gpu_devices(request: Mapping[str, Any], where: str, ctx: Context) -> list[str]:
    ids = _strings(request.get("device_ids"))
    if ids:
        return [f"gpu:{i}" for i in ids]
    count = request.get("count")
    if count in (None, "all", -1):
        return ["gpu:all"]
    number = int(count)
    if number <= 1:
        return []  # one GPU, of the allocator's choice
    ctx.note(where, f"count {number}: a Boltfile names its GPUs beyond one; asked for GPUs "
             f"0-{number - 1}")
    return [f"gpu:{i}" for i in range(number)]


def _deploy(name: str, raw: Mapping[str, Any], service: dict[str, Any],
            ctx: Context) -> None:
    where = f"services.{name}.deploy"
    deploy = raw.get("deploy") or {}
    if deploy.get("replicas") is not None:
        service["replicas"] = int(deploy["replicas"])
    elif raw.get("scale") is not None:
        service["replicas"] = int(raw["scale"])
    resources = deploy.get("resources") or {}
    limits = resources.get("limits") or {}
    cpus = limits.get("cpus", raw.get("cpus"))
    if cpus is not None:
        service["cpu_limit"] = _text(cpus)
    memory = limits.get("memory", raw.get("mem_limit"))
    if memory is not None and (size := _size_text(memory, f"{where}.resources.limits."
                                                  "memory", ctx)):
        service["memory_limit"] = size
    if limits.get("pids") is not None:
        ctx.note(f"{where}.resources.limits.pids", "Bolt has no pids limit")
    reservations = resources.get("reservations") or {}
    for key in ("cpus", "memory"):
        if reservations.get(key) is not None:
            ctx.note(f"{where}.resources.reservations.{key}", "Bolt reserves nothing; "
                     "only limits are carried over")
    devices = reservations.get("devices") or []
    gpus = [d for d in devices if "gpu" in _strings(d.get("capabilities"))]
    if gpus:
        driver = str(gpus[0].get("driver") or "nvidia")
        if driver != "nvidia":
            ctx.note(f"{where}.resources.reservations.devices", f"GPU driver {driver!r}: "
                     "GhostPanel's GPU allocator places NVIDIA GPUs")
        found: list[str] = []
        for request in gpus:
            found += _gpu_devices(request, f"{where}.resources.reservations.devices", ctx)
        devices_wanted = ["gpu:all"] if "gpu:all" in found else list(dict.fromkeys(found))
        service["gaming"] = _gaming(devices_wanted, driver)
    elif raw.get("gpus") is not None:
        count = raw["gpus"]
        service["gaming"] = _gaming(_gpu_devices({"count": count}, f"services.{name}.gpus",
                                                 ctx), "nvidia")
    for key in sorted(set(deploy) - {"replicas", "resources", "restart_policy"}):
        ctx.note(f"{where}.{key}", "a Swarm setting Bolt has no equivalent for")
    for key in sorted(set(resources) - {"limits", "reservations"}):
        ctx.note(f"{where}.resources.{key}", "no Bolt equivalent")
    policy = deploy.get("restart_policy") or {}
    if "restart" not in raw and policy.get("condition") in _RESTART_CONDITIONS:
        restart = _RESTART_CONDITIONS[policy["condition"]]
        attempts = policy.get("max_attempts")
        service["restart"] = f"{restart}:{attempts}" if restart == "on-failure" and \
            attempts else restart


def _source(name: str, raw: Mapping[str, Any], service: dict[str, Any],
            ctx: Context) -> None:
    build = raw.get("build")
    context = build.get("context", ".") if isinstance(build, Mapping) else build
    if raw.get("image") is not None:
        service["image"] = _text(raw["image"])
        if build is not None:
            ctx.note(f"services.{name}.build", "Bolt takes one of image and build; the "
                     "image is kept, build it yourself first")
    elif build is not None:
        service["build"] = _text(context)
        extra = sorted(set(build) - {"context"}) if isinstance(build, Mapping) else []
        ctx.note(f"services.{name}.build", "carried as build = context only"
                 + (f" ({', '.join(extra)} dropped)" if extra else "")
                 + "; GhostPanel's Surge deploys images only: build and push it, then "
                 "set image")


def _copy_simple(name: str, raw: Mapping[str, Any], service: dict[str, Any]) -> None:
    for key in _SAME_STRING:
        if raw.get(key) is not None:
            service[key] = _text(raw[key])
    for key in _SAME_BOOL:
        if isinstance(raw.get(key), bool):
            service[key] = raw[key]
    for key in _SAME_STRINGS:
        if raw.get(key) is not None:
            service[key] = _strings(raw[key])
    if raw.get("sysctls") is not None:
        service["sysctls"] = {k: v or "" for k, v in string_map(raw["sysctls"]).items()}
    if raw.get("extra_hosts") is not None:
        hosts = raw["extra_hosts"]
        # Compose takes "host:ip" and "host=ip"; Bolt (as docker) reads "host:ip".
        service["extra_hosts"] = [f"{k}:{v}" for k, v in string_map(
            hosts if isinstance(hosts, Mapping) else [
                h.replace(":", "=", 1) if "=" not in h else h for h in _strings(hosts)]
        ).items()]
    if raw.get("devices") is not None:
        service["devices"] = [
            ":".join(_text(d[k]) for k in ("source", "target", "permissions") if d.get(k))
            if isinstance(d, Mapping) else _text(d) for d in raw["devices"]]
    logging = raw.get("logging")
    if isinstance(logging, Mapping):
        service["logging"] = {"driver": _text(logging.get("driver", "json-file")),
                              "options": {k: v or "" for k, v in
                                          string_map(logging.get("options") or {}).items()}}


def _dependencies(name: str, raw: Any, ctx: Context) -> list[str]:
    if isinstance(raw, Mapping):
        for target, condition in raw.items():
            wanted = (condition or {}).get("condition", "service_started")
            if wanted == "service_completed_successfully":
                ctx.note(f"services.{name}.depends_on.{target}", "Bolt starts the service "
                         "after it, without waiting for it to complete")
        return [str(target) for target in raw]
    return _strings(raw)


def _networks(name: str, raw: Any, ctx: Context) -> list[str]:
    if isinstance(raw, Mapping):
        for network, options in raw.items():
            for key in sorted(options or {}):
                ctx.note(f"services.{name}.networks.{network}.{key}",
                         "Bolt joins networks by name only")
        return [str(network) for network in raw]
    return _strings(raw)


def _drop_refused(name: str, service: dict[str, Any], ctx: Context) -> None:
    for key in sorted(ctx.surge_refuses & set(service)):
        if key in ("build",):
            continue  # the service's source: without it there is nothing to deploy
        del service[key]
        why = "Surge names containers {project}_{service}" if key == "container_name" else \
            "GhostPanel's Surge refuses it (the engine client cannot express it)"
        ctx.note(f"services.{name}.{key}", f"dropped: {why}; convert with --for-bolt to "
                 "keep it for Bolt")


def convert_service(name: str, raw: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The ``[services.NAME]`` table for the Compose service ``raw`` (interpolated).

    Raises
    ------
    ValueError
        A value Bolt cannot hold in any form (a port that is not a number...), naming
        the key.
    """
    service: dict[str, Any] = {}
    _source(name, raw, service, ctx)
    if raw.get("entrypoint") is not None:
        service["entrypoint"] = _command(raw["entrypoint"])
    if raw.get("command") is not None:
        service["command"] = _command(raw["command"])
    if (ports := _ports(name, raw.get("ports"), ctx)):
        service["ports"] = ports
    volumes, tmpfs = _volumes(name, raw.get("volumes"), ctx)
    tmpfs = _strings(raw.get("tmpfs")) + tmpfs
    if volumes:
        service["volumes"] = volumes
    if (env := _environment(name, raw, ctx)):
        service["environment"] = env
    if raw.get("depends_on") is not None:
        service["depends_on"] = _dependencies(name, raw["depends_on"], ctx)
    if raw.get("restart") is not None:
        service["restart"] = _text(raw["restart"])
    if raw.get("networks") is not None:
        service["networks"] = _networks(name, raw["networks"], ctx)
    if raw.get("labels") is not None:
        service["labels"] = {k: v or "" for k, v in string_map(raw["labels"]).items()}
    if tmpfs:
        service["tmpfs"] = tmpfs
    if raw.get("container_name") is not None:
        service["container_name"] = _text(raw["container_name"])
    _copy_simple(name, raw, service)
    check = raw.get("healthcheck")
    if isinstance(check, Mapping) and not check.get("disable") and not check.get("test"):
        # Compose then keeps the image's own test and changes only its timing; Bolt
        # needs a test, so the table would be refused.
        ctx.note(f"services.{name}.healthcheck", "no test (Compose keeps the image's "
                 "own check); Bolt needs a test, so the timing is left out")
    elif isinstance(check, Mapping):
        service["healthcheck"] = _healthcheck(name, check, ctx)
    _deploy(name, raw, service, ctx)
    for key in raw:
        if key in _HANDLED or key in _QUIET or str(key).startswith("x-"):
            continue
        why = _NO_EQUIVALENT.get(key) or "Bolt has no equivalent"
        ctx.note(f"services.{name}.{key}", why)
    _drop_refused(name, service, ctx)
    return service
