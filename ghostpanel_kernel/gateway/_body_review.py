"""Judge an Engine API request body: which options are admin-only, which objects it names.

The body has been read with :func:`~._go_json.read_go_json`, so no object holds two
keys the engine would read as one; here every field is looked up the Go way too
(case-insensitively, with simple case folding), so ``hostconfig.PRIVILEGED`` is judged
as the engine will read it. :func:`review_body` lists what only an admin may ask for and
which other objects the body points at (the caller checks that the caller's teams own
them); :func:`stamp_owner` re-encodes the judged data with the ownership labels added,
and that, never the raw bytes, is what the gateway forwards (``docs/rbac.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._engine_policy import EngineCall
from ._go_json import fold_key, go_get, go_items
from ._identity import Identity
from ._ownership import OWNER_LABEL, TEAMS_LABEL, owner_labels
from ._refusal import Refusal

__all__ = ["JSON_BODY_TEMPLATES", "BodyReview", "judges_body", "review_body",
           "review_query", "stamp_owner"]

#: The routes whose JSON body the gateway reads and judges before forwarding.
JSON_BODY_TEMPLATES: Final = frozenset({
    "/containers/create", "/containers/{id}/update", "/containers/{id}/exec",
    "/volumes/create", "/networks/create", "/networks/{id}/connect",
    "/networks/{id}/disconnect",
})

#: Where the ownership labels go in each create body.
_LABELLED: Final = frozenset({"/containers/create", "/volumes/create", "/networks/create"})

_NAMESPACES: Final = (("PidMode", "the host's process namespace"),
                      ("IpcMode", "the host's IPC namespace"),
                      ("UTSMode", "the host's UTS namespace"),
                      ("UsernsMode", "the host's user namespace"),
                      ("CgroupnsMode", "the host's cgroup namespace"),
                      ("Cgroup", "the host's cgroup"),
                      ("NetworkMode", "the host's network namespace"))

# Modes that name no other object and need no privilege.
_PLAIN_NETWORKS: Final = frozenset({"", "bridge", "none", "default", "private",
                                    "slirp4netns", "pasta"})
# A named volume, as the engines accept its name; any other bind source is a host path
# (absolute, relative or otherwise) and only an admin may bind one.
_VOLUME_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NETWORK_ADMIN_DRIVERS: Final = frozenset({"host", "macvlan", "ipvlan"})
# Log drivers that write where the engine keeps its own logs; others ship them to a
# host path or a network address the caller picks.
_SAFE_LOG_DRIVERS: Final = frozenset({"", "json-file", "k8s-file", "journald", "local",
                                      "none", "passthrough"})
_SAFE_SECURITY_OPTS: Final = frozenset({"no-new-privileges", "no-new-privileges:true",
                                        "no-new-privileges=true"})


@dataclass
class BodyReview:
    """What a request body asks for, as the engine would read it.

    Attributes
    ----------
    admin_only
        Human phrases, one per option only an admin may use (``"privileged mode
        (HostConfig.Privileged)"``). Empty when the body needs no admin.
    references
        ``(kind, name-or-id)`` of other objects the body points at: ``container`` (a
        ``container:<x>`` namespace mode, ``VolumesFrom``, ``Links``, a network
        connect's ``Container``), ``volume`` (a named volume mounted) and ``network``
        (a network joined). The caller resolves each and refuses (``403``) unless the
        caller may see it (``_ownership.may_see``).
    data
        The judged data (what :func:`stamp_owner` re-encodes).
    """

    admin_only: list[str] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)
    data: Any = None


def judges_body(call: EngineCall) -> bool:
    """Whether the gateway reads ``call``'s body as JSON and judges it."""
    return call.template in JSON_BODY_TEMPLATES


def _is_set(value: Any) -> bool:
    return value not in (None, False, "", 0, [], {})


def _text(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Refusal(400, f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refusal(400, f"{where} must be a JSON array")
    return value


def _check_labels(data: Mapping[str, Any]) -> None:
    labels = _object(go_get(data, "Labels"), "Labels")
    reserved = {fold_key(OWNER_LABEL), fold_key(TEAMS_LABEL)}
    for key in labels:
        if fold_key(key) in reserved:
            raise Refusal(403, f"the label {key!r} is set by the gateway to record who "
                               "owns an object; a request may not set it")


def _review_namespaces(host: Mapping[str, Any], review: BodyReview) -> None:
    for name, phrase in _NAMESPACES:
        mode = go_get(host, name)
        value = _text(mode)
        if value == "host":
            review.admin_only.append(f"{phrase} (HostConfig.{name} host)")
        elif value.startswith("ns:"):
            review.admin_only.append(f"a namespace given by a host path "
                                     f"(HostConfig.{name} {mode})")
        elif value.startswith("container:"):
            review.references.append(("container", mode.strip()[len("container:"):]))
        elif name == "NetworkMode" and value.partition(":")[0] in ("slirp4netns", "pasta") \
                and value.partition(":")[2]:
            # User-mode networking options can open the host's loopback to the
            # container (``allow_host_loopback``, ``--map-gw``), where the gateway
            # and the hub listen.
            review.admin_only.append(f"user-mode networking options (HostConfig.{name} "
                                     f"{mode})")
        elif name == "NetworkMode" and value not in _PLAIN_NETWORKS and isinstance(mode, str):
            review.references.append(("network", mode.strip()))


def _review_binds(host: Mapping[str, Any], review: BodyReview) -> None:
    for bind in _list(go_get(host, "Binds"), "HostConfig.Binds"):
        if not isinstance(bind, str):
            raise Refusal(400, "HostConfig.Binds must hold strings")
        parts = bind.split(":")
        if len(parts) < 2:
            continue  # an anonymous volume at a path in the container
        source = parts[0]
        if _VOLUME_NAME.fullmatch(source):
            review.references.append(("volume", source))
        else:
            review.admin_only.append(f"a host path bind mount (HostConfig.Binds {bind!r})")


def _driver_opts_admin(driver: Any, options: Mapping[str, Any], where: str) -> list[str]:
    """Why a local volume's driver options need an admin (they mount a host path)."""
    found: list[str] = []
    if _text(driver) not in ("", "local"):
        found.append(f"a volume driver other than local ({where} driver {driver!r})")
    opts = {fold_key(key): value for key, value in options.items()}
    mount_options = {item.strip().lower() for item in str(opts.get("o") or "").split(",")}
    if mount_options & {"bind", "rbind"}:
        found.append(f"a volume that bind-mounts a host path ({where} o={opts['o']!r})")
    kind = _text(opts.get("type"))
    device = opts.get("device")
    if kind == "none" and device:
        found.append(f"a volume of type none over a host path ({where} device={device!r})")
    elif isinstance(device, str) and device.startswith("/"):
        found.append(f"a volume over a host device or path ({where} device={device!r})")
    return found


def _review_mounts(host: Mapping[str, Any], review: BodyReview) -> None:
    for index, raw in enumerate(_list(go_get(host, "Mounts"), "HostConfig.Mounts")):
        mount = _object(raw, f"HostConfig.Mounts[{index}]")
        kind = _text(go_get(mount, "Type")) or "volume"
        source = go_get(mount, "Source")
        where = f"HostConfig.Mounts[{index}]"
        if kind in ("bind", "npipe"):
            review.admin_only.append(f"a {kind} mount of the host ({where} Type {kind})")
        elif isinstance(source, str) and (source.startswith("/") or "\\" in source):
            review.admin_only.append(f"a mount of a host path ({where} Source {source!r})")
        elif kind == "volume":
            if isinstance(source, str) and source:
                if _VOLUME_NAME.fullmatch(source):
                    review.references.append(("volume", source))
                else:
                    review.admin_only.append(f"a volume mount whose source is not a "
                                             f"volume name ({where} Source {source!r})")
            options = _object(go_get(mount, "VolumeOptions"), f"{where}.VolumeOptions")
            config = _object(go_get(options, "DriverConfig"), f"{where}.DriverConfig")
            driver_opts = _object(go_get(config, "Options"), f"{where}.DriverConfig.Options")
            if config:
                review.admin_only.extend(_driver_opts_admin(go_get(config, "Name"),
                                                            driver_opts, where))
        elif kind not in ("tmpfs", "image"):
            review.admin_only.append(f"a mount of type {kind!r} ({where})")


def _review_devices(resources: Mapping[str, Any], where: str, review: BodyReview) -> None:
    checks = (("Devices", "host devices"),
              ("DeviceRequests", "device requests (GPUs go through the gateway's GPU "
                                 "route)"),
              ("DeviceCgroupRules", "device cgroup rules"),
              ("CgroupParent", "a cgroup parent"))
    for name, phrase in checks:
        if _is_set(go_get(resources, name)):
            review.admin_only.append(f"{phrase} ({where}{name})")


def _review_log_config(log: Mapping[str, Any], review: BodyReview) -> None:
    driver = _text(go_get(log, "Type"))
    if driver not in _SAFE_LOG_DRIVERS:
        review.admin_only.append(f"the {driver} log driver (HostConfig.LogConfig Type)")
    options = _object(go_get(log, "Config"), "HostConfig.LogConfig.Config")
    for key in options:
        if "path" in key.lower() or "address" in key.lower():
            review.admin_only.append(f"a log file or address of the caller's choosing "
                                     f"(HostConfig.LogConfig Config {key})")


def _review_host_config(host: Mapping[str, Any], review: BodyReview) -> None:
    if go_get(host, "Privileged") is True:
        review.admin_only.append("privileged mode (HostConfig.Privileged)")
    _review_namespaces(host, review)
    _review_binds(host, review)
    _review_mounts(host, review)
    _review_devices(host, "HostConfig.", review)
    for name, phrase in (("CapAdd", "added capabilities"),
                         ("Capabilities", "a capability set"),
                         ("Sysctls", "kernel parameters"),
                         ("Runtime", "a different container runtime"),
                         ("Annotations", "OCI annotations, which the runtime may act on"),
                         ("VolumesFrom", "another container's volumes")):
        if _is_set(go_get(host, name)):
            review.admin_only.append(f"{phrase} (HostConfig.{name})")
    for name in ("MaskedPaths", "ReadonlyPaths"):
        if go_get(host, name) is not None:
            review.admin_only.append(f"changed /proc masking (HostConfig.{name})")
    opts = [opt for opt in _list(go_get(host, "SecurityOpt"), "HostConfig.SecurityOpt")
            if _text(opt) not in _SAFE_SECURITY_OPTS]
    if opts:
        review.admin_only.append(f"security options (HostConfig.SecurityOpt {opts!r})")
    volume_driver = _text(go_get(host, "VolumeDriver"))
    if volume_driver not in ("", "local"):
        review.admin_only.append("a volume driver other than local "
                                 "(HostConfig.VolumeDriver)")
    _review_log_config(_object(go_get(host, "LogConfig"), "HostConfig.LogConfig"), review)
    for source in _list(go_get(host, "VolumesFrom"), "HostConfig.VolumesFrom"):
        if isinstance(source, str):
            review.references.append(("container", source.split(":")[0]))
    for link in _list(go_get(host, "Links"), "HostConfig.Links"):
        if isinstance(link, str):
            review.references.append(("container", link.split(":")[0].lstrip("/")))


def _review_container_create(data: Mapping[str, Any], review: BodyReview) -> None:
    _check_labels(data)
    _review_host_config(_object(go_get(data, "HostConfig"), "HostConfig"), review)
    for path in _object(go_get(data, "Volumes"), "Volumes"):
        # Keys are paths inside the container (anonymous volumes); a "src:dst" key is
        # not, and an engine that split it would bind a host path.
        if ":" in path:
            review.admin_only.append(f"a volume spec that names a source (Volumes "
                                     f"{path!r})")
    networking = _object(go_get(data, "NetworkingConfig"), "NetworkingConfig")
    endpoints = _object(go_get(networking, "EndpointsConfig"),
                        "NetworkingConfig.EndpointsConfig")
    for network in endpoints:
        if network.strip().lower() == "host":
            review.admin_only.append("the host's network namespace "
                                     "(NetworkingConfig.EndpointsConfig host)")
        elif network.strip().lower() not in _PLAIN_NETWORKS:
            review.references.append(("network", network))


def _review_volume_create(data: Mapping[str, Any], review: BodyReview) -> None:
    _check_labels(data)
    options = _object(go_get(data, "DriverOpts"), "DriverOpts")
    review.admin_only.extend(_driver_opts_admin(go_get(data, "Driver"), options,
                                                "DriverOpts"))


def _review_network_create(data: Mapping[str, Any], review: BodyReview) -> None:
    _check_labels(data)
    driver = _text(go_get(data, "Driver"))
    if driver in _NETWORK_ADMIN_DRIVERS:
        review.admin_only.append(f"a {driver} network (Driver {driver}), which reaches "
                                 "the host's interfaces")
    options = _object(go_get(data, "Options"), "Options")
    for key, _ in go_items(options, "com.docker.network.bridge.name"):
        review.admin_only.append(f"naming the host's bridge interface (Options {key})")
    for key, _ in go_items(options, "parent"):
        review.admin_only.append(f"a parent host interface (Options {key})")


def review_body(call: EngineCall, data: Any) -> BodyReview:
    """Judge the body of ``call`` (already read with ``read_go_json``).

    Raises
    ------
    Refusal
        ``403`` when the body sets an ownership label itself; ``400`` when a field the
        gateway judges has the wrong JSON type (the engine would refuse it too).

    Examples
    --------
    >>> from ._engine_policy import classify
    >>> call = classify("POST", b"/v1.41/containers/create")
    >>> review_body(call, {"Image": "busybox", "hostconfig": {"PRIVILEGED": True}}).admin_only
    ['privileged mode (HostConfig.Privileged)']
    """
    review = BodyReview(data=data)
    if not judges_body(call):
        return review
    body = _object(data, "the body")
    template = call.template
    if template == "/containers/create":
        _review_container_create(body, review)
    elif template == "/containers/{id}/update":
        _review_devices(body, "", review)
    elif template == "/containers/{id}/exec":
        if go_get(body, "Privileged") is True:
            review.admin_only.append("a privileged exec (Privileged)")
    elif template == "/volumes/create":
        _review_volume_create(body, review)
    elif template == "/networks/create":
        _review_network_create(body, review)
    else:  # network connect / disconnect
        container = go_get(body, "Container")
        if isinstance(container, str) and container:
            review.references.append(("container", container))
    return review


_PLAIN_BUILD_NETWORKS: Final = frozenset({"", "default", "bridge", "none"})


def review_query(call: EngineCall) -> list[str]:
    """Admin-only options in ``call``'s query (its body is not JSON, or has none).

    - ``POST /build`` with a ``networkmode`` other than the default (``host`` or
      another container's), a ``cgroupparent``, or a ``remote`` (the engine would
      fetch a URL or Git repository itself, from the engine's host: its loopback
      services included);
    - ``POST /images/create`` with ``fromSrc`` other than ``-`` (an import the engine
      downloads from a URL).

    Examples
    --------
    >>> from ._engine_policy import classify
    >>> review_query(classify("POST", b"/v1.41/build", b"networkmode=host"))
    ['building with networkmode=host']
    """
    found: list[str] = []

    def values(name: str) -> list[str]:
        return [value for key, items in call.query.items() if key.lower() == name
                for value in items]

    if call.template == "/build":
        found += [f"building with networkmode={mode}" for mode in values("networkmode")
                  if mode.strip().lower() not in _PLAIN_BUILD_NETWORKS]
        if any(values("cgroupparent")):
            found.append("building under a cgroup parent (cgroupparent)")
        if any(values("remote")):
            found.append("a build context the engine fetches itself (remote)")
    elif call.template == "/images/create":
        if any(source not in ("", "-") for source in values("fromsrc")):
            found.append("an image import the engine downloads from a URL (fromSrc)")
    return found


def stamp_owner(call: EngineCall, data: Any, identity: Identity) -> bytes:
    """Re-encode the judged ``data`` for forwarding, with the ownership labels added.

    Container, volume and network creates get :func:`~._ownership.owner_labels` in
    their ``Labels`` (the existing key, however it is spelt, or a new one); other
    bodies are re-encoded unchanged. Call :func:`review_body` first: it refuses bodies
    that set the labels themselves.

    Examples
    --------
    >>> from ._engine_policy import classify
    >>> call = classify("POST", b"/volumes/create")
    >>> stamp_owner(call, {"Name": "x"}, Identity("ada", groups=frozenset({"blue"})))
    b'{"Name":"x","Labels":{"io.ghostpanel.owner":"ada","io.ghostpanel.teams":"blue"}}'
    """
    if call.template in _LABELLED and isinstance(data, dict):
        data = dict(data)
        keys = [key for key, _ in go_items(data, "Labels")]
        key = keys[0] if keys else "Labels"
        labels = dict(_object(data.get(key), "Labels"))
        labels.update(owner_labels(identity))
        data[key] = labels
    return json.dumps(data, separators=(",", ":")).encode()
