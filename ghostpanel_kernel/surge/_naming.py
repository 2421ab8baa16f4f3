"""How Surge names and labels what it makes, following Bolt's naming.

Bolt runs a service as the container ``{project}_{service}`` and scaled replicas as
``{project}_{service}_{i}`` (``i`` from 1). Surge keeps that: a service with one replica
is ``{project}_{service}``; with more, every replica is numbered, ``_1`` to ``_N``
(scaling 1 → 2 therefore replaces ``{project}_{service}`` by ``_1`` and ``_2``).
Networks are ``{project}_default`` and ``{project}_{name}``, named volumes
``{project}_{name}``.

Everything Surge makes carries :data:`LABEL_PROJECT` and :data:`LABEL_RUN` (the run
that made it); containers also the service, the replica number and the hash of their
configuration, which is how a later plan tells
an unchanged container from one to recreate. A container being replaced is first
renamed ``{name}-surge-old-{short id}`` so that its name is free for the new one.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "LABEL_BOLTFILE",
    "LABEL_CONFIG_HASH",
    "LABEL_PROJECT",
    "LABEL_REPLICA",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "OLD_MARKER",
    "container_name",
    "is_old_name",
    "old_name",
    "replica_of_name",
    "resource_name",
]

LABEL_PROJECT: Final = "io.ghostpanel.surge.project"
LABEL_SERVICE: Final = "io.ghostpanel.surge.service"
LABEL_REPLICA: Final = "io.ghostpanel.surge.replica"
LABEL_CONFIG_HASH: Final = "io.ghostpanel.surge.config-hash"
#: The run that created a container, network or volume: what lets a run that lost the
#: engine's answer to a create find what it made, and leave alone what another run made.
LABEL_RUN: Final = "io.ghostpanel.surge.run"
#: The absolute path of the Boltfile a container was created from, on the machine that
#: ran Surge (absent for a Boltfile read from a string): how the stacks page finds a
#: project's Boltfile again. Not part of the config hash.
LABEL_BOLTFILE: Final = "io.ghostpanel.surge.boltfile"

#: Put between a container's name and its short id while it is being replaced.
OLD_MARKER: Final = "-surge-old-"


def container_name(project: str, service: str, replica: int, replicas: int) -> str:
    """The container of ``replica`` (1-based) of a service run as ``replicas`` replicas.

    Examples
    --------
    >>> container_name("shop", "web", 1, 1), container_name("shop", "web", 2, 3)
    ('shop_web', 'shop_web_2')
    """
    return f"{project}_{service}" if replicas == 1 else f"{project}_{service}_{replica}"


def resource_name(project: str, name: str) -> str:
    """A project's network or volume: ``{project}_{name}``.

    Examples
    --------
    >>> resource_name("shop", "default")
    'shop_default'
    """
    return f"{project}_{name}"


def old_name(name: str, container_id: str) -> str:
    """The name a container takes while its replacement starts.

    Examples
    --------
    >>> old_name("shop_web", "0123456789abcdef")
    'shop_web-surge-old-0123456789ab'
    """
    return f"{name}{OLD_MARKER}{container_id[:12]}"


def is_old_name(name: str) -> bool:
    """Whether ``name`` is a container set aside by :func:`old_name`."""
    return OLD_MARKER in name


def replica_of_name(project: str, service: str, name: str) -> int | None:
    """The replica a container called ``name`` is, by Bolt's naming; None if none.

    Examples
    --------
    >>> replica_of_name("shop", "web", "shop_web"), replica_of_name("shop", "web", "shop_web_3")
    (1, 3)
    >>> replica_of_name("shop", "web", "shop_webby") is None
    True
    """
    if name == f"{project}_{service}":
        return 1
    match = re.fullmatch(re.escape(f"{project}_{service}_") + r"([1-9][0-9]*)", name)
    return int(match.group(1)) if match else None
