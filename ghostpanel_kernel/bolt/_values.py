"""The entries of a service's ``ports`` and ``volumes`` lists, read the way Bolt reads them.

:class:`PortMapping` and :class:`VolumeMount` are plain values: the edits check what
they write with them, the validator reports what they refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["PortMapping", "VolumeMount"]

_VOLUME_OPTIONS = frozenset({"ro", "rw", "z", "Z"})
# Rust's ``str::parse::<u16>`` (what Bolt uses) accepts digits with an optional "+".
_PORT_NUMBER = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True)
class PortMapping:
    """A published port, as a Boltfile's ``ports`` list writes it.

    Bolt accepts ``"HOST:CONTAINER"`` and ``"PORT"`` (the same number on both sides),
    each 1-65535. GhostPanel also reads a ``/udp`` (or ``/tcp``) suffix, which Bolt
    rejects; :attr:`explicit_protocol` tells the validator to warn about it.

    Examples
    --------
    >>> PortMapping.parse("8080:80")
    PortMapping(host=8080, container=80, protocol='tcp', explicit_protocol=False)
    >>> str(PortMapping.parse("27015/udp"))
    '27015:27015/udp'
    """

    host: int
    container: int
    protocol: Literal["tcp", "udp"] = "tcp"
    explicit_protocol: bool = False

    @classmethod
    def parse(cls, spec: str) -> PortMapping:
        """Read one ``ports`` entry.

        Raises
        ------
        ValueError
            The entry is not a port mapping Bolt or GhostPanel accepts; the message
            says why (a host IP, a range, a number out of range...).
        """
        body, slash, protocol = spec.partition("/")
        if slash and protocol not in ("tcp", "udp"):
            raise ValueError(f"unknown protocol {protocol!r} in port {spec!r}")
        parts = body.split(":")
        if len(parts) > 2:
            raise ValueError(
                f"port {spec!r} has more than two parts; Bolt accepts no host IP, only "
                '"HOST:CONTAINER" or "PORT"'
            )
        if len(parts) == 2:
            host = _port_number(parts[0], "host port")
            container = _port_number(parts[1], "container port")
        else:
            host = container = _port_number(parts[0], "port")
        proto: Literal["tcp", "udp"] = "udp" if protocol == "udp" else "tcp"
        return cls(host=host, container=container, protocol=proto,
                   explicit_protocol=bool(slash))

    def __str__(self) -> str:
        suffix = f"/{self.protocol}" if self.explicit_protocol else ""
        return f"{self.host}:{self.container}{suffix}"


def _port_number(text: str, role: str) -> int:
    if not _PORT_NUMBER.fullmatch(text):
        if re.fullmatch(r"[0-9]+-[0-9]+", text):
            raise ValueError(f"{role} {text!r} is a range; Bolt accepts single ports only")
        raise ValueError(f"{role} {text!r} is not a number")
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(f"{role} {number} is out of range 1-65535")
    return number


@dataclass(frozen=True)
class VolumeMount:
    """A mount from a service's ``volumes`` list: ``"SOURCE:TARGET[:OPTIONS]"``.

    ``source`` is a host path or a named volume; a bare ``"/data"`` (no colon) is an
    anonymous volume with ``source`` ``None``. Bolt knows the options ``ro``, ``rw``,
    ``z`` and ``Z`` (comma separated) and only logs a warning for others.

    Examples
    --------
    >>> VolumeMount.parse("./site:/usr/share/nginx/html:ro")
    VolumeMount(source='./site', target='/usr/share/nginx/html', options=('ro',))
    """

    source: str | None
    target: str
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> VolumeMount:
        """Read one ``volumes`` entry the way Bolt does.

        Raises
        ------
        ValueError
            Bolt refuses the entry: more than three parts, or an empty source or target.
        """
        if ":" not in spec:
            return cls(source=None, target=spec)
        parts = spec.split(":")
        if len(parts) > 3:
            raise ValueError(
                f"volume {spec!r} has {len(parts)} parts; Bolt accepts SOURCE:TARGET[:OPTIONS]"
            )
        if not parts[0]:
            raise ValueError(f"volume {spec!r} has an empty source")
        if not parts[1]:
            raise ValueError(f"volume {spec!r} has an empty target")
        options = tuple(parts[2].split(",")) if len(parts) == 3 else ()
        return cls(source=parts[0], target=parts[1], options=options)

    @property
    def unknown_options(self) -> tuple[str, ...]:
        """Options other than ``ro``, ``rw``, ``z``, ``Z`` (Bolt warns and ignores them)."""
        return tuple(o for o in self.options if o not in _VOLUME_OPTIONS)
