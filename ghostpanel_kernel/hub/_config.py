"""What ``hub_config/jupyterhub_config.py`` computes: ports, secrets, services, roles.

The configuration file itself stays a readable list of JupyterHub settings, each with
its reason; the work behind the values (reading the store, making secrets, seeding a
user's folder) lives here, typed and tested.

``ghostpanel hub`` passes what it chose through the environment:

``GHOSTPANEL_HOME``
    The home whose ``hub/`` folder holds the state (absolute).
``GHOSTPANEL_HUB_IP``, ``GHOSTPANEL_HUB_PORT``
    Where the proxy serves users (default ``127.0.0.1:8000``).
``GHOSTPANEL_HUB_API_PORT``, ``GHOSTPANEL_HUB_PROXY_API_PORT``, ``GHOSTPANEL_HUB_GATEWAY_PORT``
    Loopback ports for the hub's internal API, the proxy's REST API and the gateway
    (free ones are picked when unset).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._paths import HubPaths, secret_file

__all__ = [
    "ADMIN_SERVICE",
    "ADMIN_SERVICE_ROLE",
    "GATEWAY_SERVICE",
    "HubPorts",
    "demo_password",
    "free_port",
    "gateway_command",
    "registered_environments",
    "repository_root",
    "seed_user_folder",
    "shipped",
    "spawner_environment",
]

#: The gateway's service name: it is served at ``/services/ghostpanel/``.
GATEWAY_SERVICE = "ghostpanel"
#: The service whose token ``ghostpanel hub user|token`` uses.
ADMIN_SERVICE = "ghostpanel-admin"
#: The hub role the admin service holds. JupyterHub lets only an admin make another
#: user an admin (``POST /users`` with ``admin: true`` answers 403 otherwise,
#: jupyterhub/apihandlers/users.py), and ``ghostpanel hub user add --admin`` must work
#: while the hub runs; the service's token sits 0600 beside the cookie secret, which
#: already lets whoever reads that folder act as any user, so this widens nothing.
ADMIN_SERVICE_ROLE = "admin"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _port(variable: str, default: int | None) -> int:
    value = os.environ.get(variable)
    if value:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{variable}={value!r} is not a port number") from None
    return free_port() if default is None else default


@dataclass(frozen=True)
class HubPorts:
    """The addresses one hub uses (see the module's docstring for the variables)."""

    ip: str
    port: int
    api_port: int
    proxy_api_port: int
    gateway_port: int

    @classmethod
    def from_environment(cls) -> HubPorts:
        """Read the ``GHOSTPANEL_HUB_*`` variables; free loopback ports for the unset."""
        return cls(ip=os.environ.get("GHOSTPANEL_HUB_IP") or "127.0.0.1",
                   port=_port("GHOSTPANEL_HUB_PORT", 8000),
                   api_port=_port("GHOSTPANEL_HUB_API_PORT", None),
                   proxy_api_port=_port("GHOSTPANEL_HUB_PROXY_API_PORT", None),
                   gateway_port=_port("GHOSTPANEL_HUB_GATEWAY_PORT", None))

    @property
    def public_url(self) -> str:
        """The URL users open (the proxy)."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.port}/"

    @property
    def local_url(self) -> str:
        """The proxy as processes on this machine reach it (loopback for a wildcard)."""
        if self.ip in ("", "0.0.0.0"):
            return f"http://127.0.0.1:{self.port}/"
        if self.ip == "::":
            return f"http://[::1]:{self.port}/"
        return self.public_url

    def to_environment(self) -> dict[str, str]:
        """The variables that make :meth:`from_environment` return these ports again."""
        return {"GHOSTPANEL_HUB_IP": self.ip, "GHOSTPANEL_HUB_PORT": str(self.port),
                "GHOSTPANEL_HUB_API_PORT": str(self.api_port),
                "GHOSTPANEL_HUB_PROXY_API_PORT": str(self.proxy_api_port),
                "GHOSTPANEL_HUB_GATEWAY_PORT": str(self.gateway_port)}


def demo_password(paths: HubPaths) -> str:
    """The shared demo password: ``GHOSTPANEL_HUB_PASSWORD``, else the generated file.

    JupyterHub's shared-password authenticator refuses passwords under 8 characters.
    """
    given = os.environ.get("GHOSTPANEL_HUB_PASSWORD")
    if given:
        return given
    return secret_file(paths.password, nbytes=12)


def registered_environments(extra: Iterable[str] = ()) -> list[str]:
    """The names of the environments in GhostPanel's registry (plus ``extra``), sorted.

    A registry that cannot be read gives none: the hub still starts, and the gateway
    (which reads the same store) reports the problem where it can be fixed.
    """
    names = set(extra)
    try:
        from ..environments import EnvironmentRegistry

        registry = EnvironmentRegistry()
        try:
            names.update(spec.name for spec in registry.list())
        finally:
            registry.close()
    except Exception as error:
        print(f"ghostpanel hub: cannot read the environment registry ({error}); "
              "no per-environment hub scopes this time", file=sys.stderr)
    return sorted(names)


def gateway_command(home: Path) -> list[str]:
    """How the hub starts the gateway: this Python, ``ghostpanel --home HOME gateway``.

    The home is on the command line, with a trailing ``/``, so that the gateway of a
    hub left behind by a killed session can be found (and ended) by the folder its
    processes name: ``<home>/`` is what such sweeps look for.
    """
    return [sys.executable, "-m", "ghostpanel_kernel.cli", "--home", f"{home}/", "gateway"]


def repository_root() -> Path:
    """The source tree above ``ghostpanel_kernel/`` (an editable install's checkout)."""
    return Path(__file__).resolve().parents[2]


def shipped(name: str) -> Path:
    """``notebooks``, ``voila_apps`` or ``hub_config``: in the source tree, else where a
    wheel puts its data files (``<prefix>/share/ghostpanel/``); the first that exists
    (the source tree's path when neither does)."""
    candidates = [repository_root() / name, Path(sys.prefix, "share", "ghostpanel", name)]
    return next((path for path in candidates if path.exists()), candidates[0])


def seed_user_folder(folder: Path, source: Path | None = None) -> None:
    """Copy the repository's ``notebooks/`` and ``voila_apps/`` into a user's folder.

    Copies (never links), and only what is missing: a user's edits to a notebook stay
    theirs across server restarts, and one user's changes never reach another.

    Parameters
    ----------
    folder
        The user's folder (made when missing, mode 0700).
    source
        The folder holding ``notebooks/`` and ``voila_apps/``; where GhostPanel ships
        them (:func:`shipped`) by default.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("notebooks", "voila_apps"):
        origin = shipped(name) if source is None else source / name
        if not origin.is_dir():
            continue
        for item in sorted(origin.rglob("*")):
            if not item.is_file() or ".ipynb_checkpoints" in item.parts:
                continue
            target = folder / name / item.relative_to(origin)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item, target)


def spawner_environment(gateway_url: str) -> dict[str, Any]:
    """Variables for every single-user server: where the gateway is."""
    return {"GHOSTPANEL_GATEWAY_URL": gateway_url}
