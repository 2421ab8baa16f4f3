"""The Engine API's container-create body: the JSON types of its members, checked.

``POST /api/v1/containers`` hands an Engine API body to the engine unchanged, and
Podman answers a member of the wrong JSON type (``"Tty": "yes"``, ``"Labels": {"a":
1}``) with a ``500`` ("decode(): json: cannot unmarshal ..."), which reads as the
engine's failure. The members both engines read are typed here, after the Engine API's
``ContainerConfig`` and ``HostConfig``: :func:`check_engine_body` refuses a wrong type
with the member's path, and :data:`ENGINE_BODY_SCHEMA` documents the same types in the
OpenAPI document. Members not listed are passed on unchecked (the engine may know them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ENGINE_BODY_SCHEMA", "check_engine_body"]

_STRINGS: Final = {"type": "array", "items": {"type": "string"}}
_STRING_MAP: Final = {"type": "object", "additionalProperties": {"type": "string"}}
#: ``Cmd``, ``Entrypoint``: a list, or one string the engine splits (Docker's strslice).
_COMMAND: Final = {"type": ["array", "string"], "items": {"type": "string"}}

_HOST_CONFIG: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "Binds": _STRINGS, "NetworkMode": {"type": "string"},
        "PortBindings": {"type": "object"}, "RestartPolicy": {"type": "object"},
        "AutoRemove": {"type": "boolean"}, "Privileged": {"type": "boolean"},
        "ReadonlyRootfs": {"type": "boolean"}, "PublishAllPorts": {"type": "boolean"},
        "Memory": {"type": "integer"}, "NanoCpus": {"type": "integer"},
        "CpuShares": {"type": "integer"}, "PidsLimit": {"type": ["integer", "null"]},
        "CapAdd": _STRINGS, "CapDrop": _STRINGS, "Dns": _STRINGS, "ExtraHosts": _STRINGS,
        "SecurityOpt": _STRINGS, "Devices": {"type": "array", "items": {"type": "object"}},
        "Mounts": {"type": "array", "items": {"type": "object"}},
        "Tmpfs": _STRING_MAP, "Sysctls": _STRING_MAP, "LogConfig": {"type": "object"},
    },
}

#: JSON Schema (2020-12) of the members checked; any other member is allowed.
ENGINE_BODY_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "title": "EngineCreateBody",
    "description": "The Engine API's `POST /containers/create` body, given to the engine "
                   "unchanged once the types of these members are checked.",
    "required": ["Image"],
    "properties": {
        "Image": {"type": "string", "minLength": 1},
        "Hostname": {"type": "string"}, "Domainname": {"type": "string"},
        "User": {"type": "string"}, "WorkingDir": {"type": "string"},
        "StopSignal": {"type": "string"}, "MacAddress": {"type": "string"},
        "AttachStdin": {"type": "boolean"}, "AttachStdout": {"type": "boolean"},
        "AttachStderr": {"type": "boolean"}, "Tty": {"type": "boolean"},
        "OpenStdin": {"type": "boolean"}, "StdinOnce": {"type": "boolean"},
        "NetworkDisabled": {"type": "boolean"}, "ArgsEscaped": {"type": "boolean"},
        "StopTimeout": {"type": ["integer", "null"]},
        # NAME=value with a name: Podman answers "=x" with a 500.
        "Env": {"type": "array", "items": {"type": "string", "pattern": "^[^=]"}},
        "Shell": _STRINGS, "OnBuild": _STRINGS,
        "Cmd": _COMMAND, "Entrypoint": _COMMAND,
        "Labels": _STRING_MAP, "ExposedPorts": {"type": "object"},
        "Volumes": {"type": "object"}, "Healthcheck": {"type": "object"},
        "HostConfig": _HOST_CONFIG, "NetworkingConfig": {"type": "object"},
    },
}

_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "object": (dict,),
    "array": (list,), "null": (type(None),),
}


def _type_name(value: object) -> str:
    for name, types in _JSON_TYPES.items():
        if isinstance(value, types) and not (name == "integer" and isinstance(value, bool)):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


def _check(value: object, schema: Mapping[str, Any], where: str) -> None:
    wanted = schema.get("type")
    allowed = [wanted] if isinstance(wanted, str) else list(wanted or [])
    actual = _type_name(value)
    if allowed and actual not in allowed:
        raise ValueError(f"{where} must be {' or '.join(allowed)}, not {actual}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ValueError(f"{where} must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise ValueError(f"{where} {value!r} does not match {schema['pattern']}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{index}]")
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                _check(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, Mapping):
                _check(item, extra, f"{where}.{key}")


def check_engine_body(body: Mapping[str, Any]) -> None:
    """Refuse an Engine API create body whose known members have the wrong JSON type.

    Raises
    ------
    ValueError
        Naming the member, e.g. ``HostConfig.Memory must be integer, not string``.

    Examples
    --------
    >>> check_engine_body({"Image": "busybox", "Cmd": ["true"], "X-Other": 1})
    >>> check_engine_body({"Image": "busybox", "Labels": {"a": 1}})
    Traceback (most recent call last):
    ...
    ValueError: Labels.a must be string, not integer
    """
    for key, value in body.items():
        schema = ENGINE_BODY_SCHEMA["properties"].get(key)
        if schema is not None:
            _check(value, schema, key)
