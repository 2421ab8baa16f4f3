"""Where a hub keeps its state: files under ``$GHOSTPANEL_HOME/hub/``.

Everything JupyterHub writes (its database, cookie secret, the proxy's PID and token)
and everything ``ghostpanel hub`` adds (the admin service's token, the demo password,
the running hub's address) lives in one folder, so that one GhostPanel home is one hub
and two homes never share anything. Secrets are made on first use, mode 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import data_dir

__all__ = ["HubPaths", "HubState", "secret_file"]


def secret_file(path: Path, *, nbytes: int = 32) -> str:
    """The secret kept in ``path``, made (``nbytes`` random bytes, hex) when missing.

    The file is created with ``O_EXCL`` and mode 0600 at once, so there is no moment
    when another user could read it, and two processes racing to make it agree on one
    value (the loser reads the winner's).

    Parameters
    ----------
    path
        The file; its folder must exist.
    nbytes
        How many random bytes a new secret has.

    Returns
    -------
    str
        The secret, without surrounding white space.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_hex(nbytes)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value


@dataclass(frozen=True)
class HubState:
    """What a running ``ghostpanel hub`` wrote about itself (``hub.json``).

    Attributes
    ----------
    pid
        The ``ghostpanel hub`` process (SIGTERM to it stops the whole hub).
    hub_pid
        Its ``jupyterhub`` child.
    url
        The public URL (the proxy), e.g. ``http://127.0.0.1:8000/``.
    api_url
        The hub's REST API through the proxy, ``<url>hub/api``.
    gateway_url
        The gateway as clients reach it through the proxy.
    gateway_port
        The loopback port the gateway itself listens on.
    """

    pid: int
    hub_pid: int
    url: str
    api_url: str
    gateway_url: str
    gateway_port: int

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON object."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class HubPaths:
    """The files of the hub of one GhostPanel home.

    Parameters
    ----------
    home
        The GhostPanel home; ``$GHOSTPANEL_HOME`` (or the platform default) when None.

    Examples
    --------
    >>> HubPaths(Path("/srv/gp")).folder
    PosixPath('/srv/gp/hub')
    """

    home: Path

    @classmethod
    def current(cls) -> HubPaths:
        """The paths for ``$GHOSTPANEL_HOME`` (or the platform's default home)."""
        return cls(data_dir())

    @property
    def folder(self) -> Path:
        """``<home>/hub``: the hub's working directory."""
        return self.home / "hub"

    def ensure(self) -> Path:
        """Make the folder (mode 0700: it holds secrets) and return it."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.folder

    @property
    def database(self) -> Path:
        """JupyterHub's own SQLite database (users, groups, tokens)."""
        return self.folder / "jupyterhub.sqlite"

    @property
    def cookie_secret(self) -> Path:
        """The key that signs the hub's login cookies."""
        return self.folder / "jupyterhub_cookie_secret"

    @property
    def proxy_pid(self) -> Path:
        """configurable-http-proxy's PID file (JupyterHub writes it)."""
        return self.folder / "jupyterhub-proxy.pid"

    @property
    def proxy_token(self) -> Path:
        """The token the hub and the proxy share for the proxy's REST API."""
        return self.folder / "proxy_auth_token"

    @property
    def hub_pid(self) -> Path:
        """JupyterHub's own PID file."""
        return self.folder / "jupyterhub.pid"

    @property
    def admin_token(self) -> Path:
        """The ``ghostpanel-admin`` service's API token, used by ``ghostpanel hub user``."""
        return self.folder / "admin_token"

    @property
    def password(self) -> Path:
        """The demo password, when ``GHOSTPANEL_HUB_PASSWORD`` is not set."""
        return self.folder / "password"

    @property
    def roles_toml(self) -> Path:
        """Static group -> role bindings turned into hub roles at start (optional)."""
        return self.folder / "roles.toml"

    @property
    def users(self) -> Path:
        """The single-user servers' folders, one per user."""
        return self.folder / "users"

    @property
    def state(self) -> Path:
        """``hub.json``: the running hub's PIDs and URLs (:class:`HubState`)."""
        return self.folder / "hub.json"

    def read_state(self) -> HubState | None:
        """The state the last ``ghostpanel hub`` wrote, or None when there is none."""
        try:
            data = json.loads(self.state.read_text())
            return HubState(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write_state(self, state: HubState) -> None:
        """Write ``hub.json`` (0600; replaced atomically)."""
        partial = self.state.with_suffix(".json.partial")
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(state.to_json(), file)
        partial.replace(self.state)

    def clear_state(self) -> None:
        """Remove ``hub.json`` (the hub stopped)."""
        with contextlib.suppress(FileNotFoundError):
            self.state.unlink()
