"""Serving the gateway with Hypercorn: plain HTTP/1.1 behind the hub's proxy.

JupyterHub starts the gateway as a managed service and tells it where to listen
(``JUPYTERHUB_SERVICE_URL``, a loopback ``http://`` URL) and under which prefix the
proxy forwards to it (``JUPYTERHUB_SERVICE_PREFIX``, kept in the path). TLS, if any,
ends at the proxy: the gateway itself speaks plain HTTP/1.1, and only the proxy should
reach it (a non-loopback bind is warned about).

The "ready" line is printed once the listener accepts connections (Hypercorn calls the
shutdown trigger after it has bound); SIGINT (which the hub sends) and SIGTERM stop it,
exit status 0, after at most ``GRACEFUL_TIMEOUT`` seconds for requests under way. The
agent's serving pieces are reused: its loop exception handler for ordinary connection
ends and its guard for connection closes (``server/_serve.py``, ``server/_tcp_guard.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from ..engine._endpoint import is_loopback_host
from ._app import DEFAULT_PREFIX, GatewayApp
from ._hub_identity import IdentitySource

__all__ = ["DEFAULT_BIND", "READY_LINE", "GatewaySettings", "cookie_secret", "run", "serve"]

#: The last line the gateway prints when it starts; the hub fixture and scripts wait for it.
READY_LINE: Final = "ghostpanel gateway ready"
#: Where the gateway listens when neither --bind nor JUPYTERHUB_SERVICE_URL says.
DEFAULT_BIND: Final = "127.0.0.1:10101"

_log = logging.getLogger("ghostpanel.gateway")


@dataclass(frozen=True)
class GatewaySettings:
    """Where and how the gateway serves.

    Parameters
    ----------
    bind
        ``HOST:PORT`` (IPv6 as ``[::1]:PORT``).
    prefix
        The URL prefix the hub's proxy keeps in the path (``/services/ghostpanel/``).
    database_url
        The store (None: ``$GHOSTPANEL_DATABASE_URL`` or SQLite under ``$GHOSTPANEL_HOME``).

    Examples
    --------
    >>> GatewaySettings.from_environment(None, {"JUPYTERHUB_SERVICE_URL":
    ...     "http://127.0.0.1:10202", "JUPYTERHUB_SERVICE_PREFIX": "/services/gp/"}).bind
    '127.0.0.1:10202'
    """

    bind: str = DEFAULT_BIND
    prefix: str = DEFAULT_PREFIX
    database_url: str | None = None

    @classmethod
    def from_environment(cls, bind: str | None,
                         environ: dict[str, str] | None = None) -> GatewaySettings:
        """The settings the hub gives a managed service, ``bind`` taking precedence."""
        env = dict(os.environ if environ is None else environ)
        if bind is None:
            url = env.get("JUPYTERHUB_SERVICE_URL")
            if url:
                parts = urlsplit(url)
                if parts.scheme != "http" or not parts.hostname or parts.port is None:
                    raise ValueError(f"JUPYTERHUB_SERVICE_URL must be http://HOST:PORT for "
                                     f"the gateway, not {url!r}")
                host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
                bind = f"{host}:{parts.port}"
        bind = bind or DEFAULT_BIND
        host, sep, port = bind.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise ValueError(f"--bind takes HOST:PORT, not {bind!r}")
        prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX
        return cls(bind=bind, prefix=prefix, database_url=env.get("GHOSTPANEL_DATABASE_URL"))

    @property
    def loopback(self) -> bool:
        """Whether the bind address is a loopback one (where only the proxy reaches)."""
        return is_loopback_host(self.bind.rpartition(":")[0].strip("[]"))


def cookie_secret(home: Path) -> bytes:
    """The key that signs the gateway's login cookies, kept (mode 0600) in ``home``.

    Kept rather than made per process, so that a restart does not log every browser
    out; made on first use.
    """
    path = home / "gateway" / "cookie_secret"
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return data


async def serve(settings: GatewaySettings, *, identity_source: IdentitySource | None = None,
                echo: Callable[[str], None] = print,
                stop: asyncio.Event | None = None) -> None:
    """Serve the gateway until SIGINT, SIGTERM or ``stop`` is set.

    Parameters
    ----------
    settings
        Where to listen, the prefix, the store.
    identity_source
        Tests only: who a token belongs to, instead of asking the hub.
    echo
        Prints the start-up lines, then :data:`READY_LINE`.
    stop
        Set it to stop the gateway (the signals set it too).
    """
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from ..server._serve import GRACEFUL_TIMEOUT, KEEP_ALIVE_MAX_REQUESTS, _quiet_connection_ends
    from ..server._tcp_guard import install as install_tcp_guard
    from ._gateway_state import GatewayState
    from ._hub_identity import HubLogin

    config = Config()
    config.bind = [settings.bind]
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS
    install_tcp_guard()
    state = GatewayState(settings.database_url)
    login = None
    if identity_source is None:  # a deployment: the hub says who is who
        from ..store import data_dir

        login = HubLogin(prefix=settings.prefix, cookie_secret=cookie_secret(data_dir()))
    app = GatewayApp(state, prefix=settings.prefix, identity_source=identity_source,
                     login=login)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_connection_ends)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def ready_then_wait() -> None:
        echo(f"ghostpanel gateway serving http://{settings.bind}{app.prefix} "
             f"({len(state.environment_names())} environments)")
        if not settings.loopback:
            echo(f"warning: {settings.bind} is not a loopback address; only the hub's "
                 "proxy should reach the gateway")
        echo(READY_LINE)
        await stop.wait()
        await app.stopping()

    try:
        await hypercorn_serve(app, config,  # type: ignore[arg-type]
                              shutdown_trigger=ready_then_wait)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run(settings: GatewaySettings, *, identity_source: IdentitySource | None = None) -> None:
    """Serve in a new event loop (the CLI's entry point)."""

    def printed(line: str) -> None:
        print(line, flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings, identity_source=identity_source, echo=printed))
