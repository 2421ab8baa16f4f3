"""Registry credentials, from the files the engines' own clients write, and the
``WWW-Authenticate`` challenges a registry answers with.

A registry that wants credentials answers ``401`` with a challenge:

- ``Bearer realm="https://auth.example/token",service="registry.example",
  scope="repository:team/app:pull"``: a token service hands out a short-lived token
  (anonymously for a public image, else with Basic credentials) that the request is
  then sent with;
- ``Basic realm="..."``: the request is sent again with Basic credentials.

Credentials are looked up where ``podman login`` and ``docker login`` keep them, first
file first (the order containers/image reads them):

1. ``$REGISTRY_AUTH_FILE``;
2. ``$XDG_RUNTIME_DIR/containers/auth.json``, else ``/run/containers/<uid>/auth.json``;
3. ``~/.config/containers/auth.json``;
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

An entry is keyed by the registry's host (``127.0.0.1:5000``), or for Docker Hub by
``docker.io`` or ``https://index.docker.io/v1/``, or by a repository under a host
(``quay.io/team``, containers auth.json's narrower keys: the longest match wins). It
holds ``auth`` (base64 of ``user:password``) or ``username`` and ``password``.
Credential helpers (``credHelpers``, ``credsStore``) are not run: their secrets stay
in the helper, and a registry that needs them is reported as refusing.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._names import DOCKER_HUB, ImageName

__all__ = [
    "Challenge",
    "Credentials",
    "auth_file_paths",
    "find_credentials",
    "parse_challenge",
]

_HUB_KEYS: Final = ("docker.io", "index.docker.io", "https://index.docker.io/v1/",
                    "registry-1.docker.io")
# key=value or key="quoted value" (with \" escapes), as RFC 7235 auth-params are.
_PARAM: Final = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry.

    Examples
    --------
    >>> Credentials("ada", "s3cret").basic_header
    'Basic YWRhOnMzY3JldA=='
    """

    username: str
    password: str

    @property
    def basic_header(self) -> str:
        """The ``Authorization`` header value for Basic auth."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:  # never print a password
        return f"Credentials({self.username!r}, '***')"


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: ``scheme`` (lower case) and its params.

    Examples
    --------
    >>> c = parse_challenge('Bearer realm="https://a/token",service="reg",scope="x"')
    >>> c.scheme, c.params["realm"], c.params["service"]
    ('bearer', 'https://a/token', 'reg')
    """

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge:
    """Read a ``WWW-Authenticate`` header (the first challenge when there are several).

    Examples
    --------
    >>> parse_challenge('Basic realm="Registry Realm"').scheme
    'basic'
    >>> parse_challenge("").scheme
    ''
    """
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            break  # a second challenge, or junk: the first one is what we answer
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) \
            if quoted is not None else bare
        position = match.end()
    return Challenge(scheme.lower(), params)


def auth_file_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files to read, first first (see the module docstring)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    paths: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    runtime = env.get("XDG_RUNTIME_DIR")
    paths.append(Path(runtime) / "containers" / "auth.json" if runtime
                 else Path(f"/run/containers/{os.getuid()}/auth.json"))
    paths.append(home / ".config" / "containers" / "auth.json")
    docker_config = env.get("DOCKER_CONFIG")
    paths.append(Path(docker_config) / "config.json" if docker_config
                 else home / ".docker" / "config.json")
    return paths


def _read_auths(path: Path) -> Mapping[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):  # absent, unreadable or not JSON: as if absent
        return {}
    auths = document.get("auths") if isinstance(document, dict) else None
    return auths if isinstance(auths, dict) else {}


def _entry_credentials(entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    encoded = entry.get("auth")
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        user, sep, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return Credentials(user, password) if sep and user else None


def _keys_for(name: ImageName) -> list[str]:
    """Keys that may hold ``name``'s credentials, narrowest first."""
    hosts = list(_HUB_KEYS) if name.registry == DOCKER_HUB else [name.registry]
    parts = name.repository.split("/")
    keys = [f"{hosts[0]}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    return keys + hosts + [f"https://{name.registry}", f"http://{name.registry}"]


def find_credentials(name: ImageName, *, paths: Sequence[Path] | None = None
                     ) -> Credentials | None:
    """The credentials the first file that has some holds for ``name``'s registry.

    Parameters
    ----------
    name
        The image whose registry (and repository, for narrower keys) to look up.
    paths
        The files to read (default: :func:`auth_file_paths`).

    Examples
    --------
    >>> find_credentials(ImageName("127.0.0.1:1", "x"), paths=[])  # no file: none
    """
    keys = _keys_for(name)
    for path in auth_file_paths() if paths is None else paths:
        auths = _read_auths(path)
        for key in keys:
            found = _entry_credentials(auths.get(key))
            if found is not None:
                return found
    return None
