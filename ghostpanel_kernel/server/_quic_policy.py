"""The agent's QUIC networking policy: which peer networks may connect, kept on disk.

A policy is what ``POST /api/v1/network/quic`` or a Boltfile's ``[quic_fabric]`` sets:
a cluster id and the networks (CIDR) whose peers may reach the agent, on HTTPS and
HTTP/3 alike. There is no plaintext mode, so ``encryption`` must be true. The policy is
one small JSON file under the agent's state dir, written atomically (a temporary file
in the same folder, flushed to disk, then renamed over the old one), so that a crash
mid-write leaves the old policy or the new one, never half of either. No file: no
policy, every peer may connect (and must still authenticate).

This module is pure data and files; :mod:`._peer_policy` enforces it on requests.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["IPNetwork", "PolicyError", "PolicyStore", "QuicPolicy", "parse_endpoints",
           "policy_from_document", "policy_from_quic_fabric"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The most networks one policy may list (a policy is read on every request).
MAX_ENDPOINTS: Final = 256
#: The longest cluster id accepted.
MAX_CLUSTER_ID: Final = 128


class PolicyError(ValueError):
    """A policy the agent refuses; ``field`` names the member at fault (``endpoints[2]``).

    Routes answer it with a ``422`` problem carrying ``field``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class QuicPolicy:
    """Which peers may connect to the agent.

    Attributes
    ----------
    cluster_id
        The fabric this agent belongs to (a name, for people and for ``GET``).
    endpoints
        The networks whose peers may connect; never empty.
    source
        Where it came from: ``"api"`` or ``"boltfile <path>"``.
    updated
        When it was set (UTC, ISO 8601).
    bind_address, bind_port
        The ``[quic_fabric]`` listener the Boltfile asked for, when it came from one
        (recorded and reported; the agent's listener itself moves only at a restart).

    Examples
    --------
    >>> policy = QuicPolicy("lab", parse_endpoints(["127.0.0.2/32"]))
    >>> policy.allows("127.0.0.2"), policy.allows("127.0.0.1")
    (True, False)
    """

    cluster_id: str
    endpoints: tuple[IPNetwork, ...]
    source: str = "api"
    updated: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))
    bind_address: str | None = None
    bind_port: int | None = None
    #: By IP version: (prefix length, the network addresses of that length, as ints).
    #: A peer is then one set look-up per distinct prefix length, however many
    #: networks the policy lists (it is checked on every request).
    _lookup: dict[int, tuple[tuple[int, frozenset[int]], ...]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        for network in self.endpoints:
            grouped[network.version].setdefault(network.prefixlen, set()).add(
                int(network.network_address))
        object.__setattr__(self, "_lookup", {
            version: tuple((length, frozenset(found)) for length, found in by_length.items())
            for version, by_length in grouped.items()})

    def allows(self, address: str) -> bool:
        """Whether a peer at ``address`` (an IP, as the ASGI scope gives it) may connect.

        An IPv4 peer reaching a dual-stack socket shows as ``::ffff:a.b.c.d``; it is
        judged as the IPv4 address it is. Anything that is no IP address is refused.

        Examples
        --------
        >>> policy = QuicPolicy("lab", parse_endpoints(["10.0.0.0/8"]))
        >>> policy.allows("::ffff:10.1.2.3"), policy.allows("not-an-ip")
        (True, False)
        """
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        bits = ip.max_prefixlen
        value = int(ip)
        return any((value >> (bits - length)) << (bits - length) in networks
                   for length, networks in self._lookup[ip.version])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: what ``GET /api/v1/network/quic`` answers and the file holds."""
        document: dict[str, Any] = {
            "cluster_id": self.cluster_id, "endpoints": [str(n) for n in self.endpoints],
            "encryption": True, "source": self.source, "updated": self.updated}
        if self.bind_address is not None:
            document["bind_address"] = self.bind_address
        if self.bind_port is not None:
            document["bind_port"] = self.bind_port
        return document


def parse_endpoints(values: object, *, where: str = "endpoints") -> tuple[IPNetwork, ...]:
    """Networks in CIDR form (``"10.0.0.0/8"``, ``"fd00::/8"``; a bare address is a /32
    or /128).

    Raises
    ------
    PolicyError
        Not a non-empty list of strings, too many, or an entry that is no network (the
        error names it and its index). Host bits set (``10.0.0.1/8``) are refused
        too: the author likely meant something else than the network it names.

    Examples
    --------
    >>> [str(n) for n in parse_endpoints(["10.0.0.0/8", "::1"])]
    ['10.0.0.0/8', '::1/128']
    """
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyError(where, f"`{where}` must be a list of networks in CIDR form, "
                                 'e.g. ["10.0.0.0/8", "192.168.1.0/24"]')
    if not values:
        raise PolicyError(where, f"`{where}` is empty, which would refuse every peer; to "
                                 "allow every peer, remove the policy "
                                 "(DELETE /api/v1/network/quic)")
    if len(values) > MAX_ENDPOINTS:
        raise PolicyError(where, f"`{where}` lists {len(values)} networks; at most "
                                 f"{MAX_ENDPOINTS} are accepted (merge them into wider ones)")
    networks: list[IPNetwork] = []
    for index, text in enumerate(values):
        site = f"{where}[{index}]"
        try:
            network = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as error:
            hint = ""
            with contextlib.suppress(ValueError):
                loose = ipaddress.ip_network(text.strip(), strict=False)
                hint = f'; write its network address, "{loose}"'
            raise PolicyError(site, f"{site} {text!r} is not a network in CIDR form "
                                    f"({error}){hint}") from None
        networks.append(network)
    return tuple(dict.fromkeys(networks))  # duplicates dropped, order kept


def _cluster_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(where, f"`{where}` must be a non-empty string naming the cluster")
    if len(value) > MAX_CLUSTER_ID or any(ord(c) < 0x20 for c in value):
        raise PolicyError(where, f"`{where}` must be at most {MAX_CLUSTER_ID} printable "
                                 "characters")
    return value


def _encryption(value: object, where: str) -> None:
    if value is not True:
        raise PolicyError(where, f"`{where}` must be true: the agent has no plaintext mode "
                                 "(HTTPS and HTTP/3 are always TLS 1.3)")


def policy_from_document(document: Mapping[str, Any]) -> QuicPolicy:
    """The policy of a ``POST /api/v1/network/quic`` body.

    ``{"cluster_id": "lab", "endpoints": ["10.0.0.0/8"], "encryption": true}``;
    ``encryption`` may be left out (it can only be true).

    Raises
    ------
    PolicyError
        A member missing, of the wrong type, a bad network, ``encryption`` not true, or
        a member the agent does not know (a typo must not pass for a policy).
    """
    known = {"cluster_id", "endpoints", "encryption"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise PolicyError(unknown[0], f"unknown member `{unknown[0]}`; a QUIC policy has "
                                      "cluster_id, endpoints and encryption")
    _encryption(document.get("encryption", True), "encryption")
    if "cluster_id" not in document:
        raise PolicyError("cluster_id", "`cluster_id` is missing")
    if "endpoints" not in document:
        raise PolicyError("endpoints", "`endpoints` is missing: the networks (CIDR) whose "
                                       "peers may connect")
    return QuicPolicy(_cluster_id(document["cluster_id"], "cluster_id"),
                      parse_endpoints(document["endpoints"]))


def policy_from_quic_fabric(table: Mapping[str, Any], *, project: str | None,
                            source: str) -> QuicPolicy:
    """The policy a Boltfile's ``[quic_fabric]`` table sets.

    Keys: ``allowed_endpoints`` (required here: the networks), ``cluster_id`` (default:
    the project's name, else ``node_id``), ``encryption`` (must not be false),
    ``bind_address`` and ``bind_port`` (recorded). ``enabled``, ``node_id`` and
    ``service_discovery`` do not change the policy.

    Raises
    ------
    PolicyError
        As :func:`policy_from_document`, fields named ``quic_fabric.<key>``.
    """
    _encryption(table.get("encryption", True), "quic_fabric.encryption")
    if "allowed_endpoints" not in table:
        raise PolicyError("quic_fabric.allowed_endpoints",
                          "[quic_fabric] has no `allowed_endpoints`: add the networks "
                          'whose peers may connect, e.g. allowed_endpoints = '
                          '["10.0.0.0/8"]')
    cluster = table.get("cluster_id", project or table.get("node_id"))
    bind_address = table.get("bind_address")
    if bind_address is not None:
        try:
            bind_address = str(ipaddress.ip_address(str(bind_address)))
        except ValueError:
            raise PolicyError("quic_fabric.bind_address",
                              f"quic_fabric.bind_address {bind_address!r} is not an IP "
                              "address") from None
    bind_port = table.get("bind_port")
    if bind_port is not None and (isinstance(bind_port, bool) or not isinstance(bind_port, int)
                                  or not 0 < bind_port < 65536):
        raise PolicyError("quic_fabric.bind_port",
                          f"quic_fabric.bind_port {bind_port!r} is not a port (1-65535)")
    return QuicPolicy(_cluster_id(cluster, "quic_fabric.cluster_id"),
                      parse_endpoints(table["allowed_endpoints"],
                                      where="quic_fabric.allowed_endpoints"),
                      source=source, bind_address=bind_address, bind_port=bind_port)


class PolicyStore:
    """The policy file: ``load``, ``save`` (atomic) and ``clear``.

    Parameters
    ----------
    path
        The file (``<state_dir>/quic-policy.json``); its folder is made on save.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> QuicPolicy | None:
        """The stored policy, or None when there is none.

        Raises
        ------
        PolicyError
            The file exists but is not a policy (edited by hand, say): the agent must
            not start with a policy it cannot read and so silently allow every peer.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            document = json.loads(text)
            policy = QuicPolicy(_cluster_id(document["cluster_id"], "cluster_id"),
                                parse_endpoints(document["endpoints"]),
                                source=str(document.get("source", "api")),
                                updated=str(document.get("updated", "")),
                                bind_address=document.get("bind_address"),
                                bind_port=document.get("bind_port"))
        except (ValueError, KeyError, TypeError) as error:
            raise PolicyError("file", f"the QUIC policy file {self.path} is not a policy "
                                      f"({error}); fix or remove it") from error
        return policy

    def save(self, policy: QuicPolicy) -> None:
        """Write ``policy``, replacing the old one atomically (mode 0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(policy.to_dict(), indent=2).encode() + b"\n"
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".quic-policy-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._sync_folder()

    def clear(self) -> bool:
        """Remove the policy; True when there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        self._sync_folder()
        return True

    def _sync_folder(self) -> None:
        # The rename (or removal) is durable once the folder itself is on disk.
        with contextlib.suppress(OSError):
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
