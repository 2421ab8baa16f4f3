"""Serving the agent with Hypercorn: HTTPS (TLS 1.3 only) and HTTP/3, or a unix socket.

On a network address there is no plaintext listener: TCP is TLS 1.3 (Hypercorn's own
context allows 1.2, so :class:`_AgentConfig` raises the floor) and the same port, on
UDP, serves HTTP/3 through aioquic (QUIC is TLS 1.3 by design). Hypercorn advertises
HTTP/3 itself on every answer, ``Alt-Svc: h3=":PORT"; ma=3600``, from the QUIC socket
it binds; ``_h3_guard`` repairs two faults of Hypercorn's HTTP/3 server (a cancelled
request ending the listener; no QUIC close at a stop). On ``unix:///path.sock`` the
agent speaks plain HTTP/1.1 and HTTP/2 prior knowledge: the socket is made with mode
0600, so only its owner can connect.

The "ready" line is printed once every listener accepts connections: Hypercorn calls
the shutdown trigger only after it has started all its servers, so the trigger prints
it, then waits for SIGINT or SIGTERM. Both end the agent cleanly, exit status 0, even
when a client's TLS close fails meanwhile (``_tcp_guard``).
"""

from __future__ import annotations

import asyncio
import asyncio.constants as asyncio_constants
import contextlib
import errno
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypercorn.config import Config

from ._app import create_app
from ._certs import ensure_self_signed, fingerprint
from ._settings import AgentSettings, parse_listen

__all__ = ["READY_LINE", "hypercorn_config", "serve", "server_certificate"]

#: The last line the agent prints when it starts; tests and scripts wait for it.
READY_LINE = "ghostpanel agent ready"

_log = logging.getLogger("ghostpanel.agent")

#: Errors of binding a listen address (in use, not this host's, a privileged port).
_LISTEN_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})

#: Requests one kept-alive connection may carry (see :func:`hypercorn_config`).
KEEP_ALIVE_MAX_REQUESTS = 2**62

#: Seconds in-flight requests get to finish after SIGTERM; longer streams (``logs -f``,
#: ``events``) are then cut, so the agent always exits promptly.
GRACEFUL_TIMEOUT = 2.0
#: Seconds a TLS connection being closed waits for the client's ``close_notify``.
#: Hypercorn closes idle kept-alive connections at a stop, and then waits for them to
#: be gone; asyncio's TLS close waits for the peer's answer, 30 s by default, which a
#: pooled client connection that nobody reads never sends, so each stop would last
#: that long. Hypercorn gives no way to pass asyncio's ``ssl_shutdown_timeout``, so
#: :func:`serve` sets asyncio's default for the connections it accepts.
TLS_SHUTDOWN_TIMEOUT = 1.0


class _AgentConfig(Config):
    """Hypercorn's configuration, with TLS 1.3 as the only TLS version on TCP."""

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """Hypercorn's context (ALPN h2 and http/1.1, client CA) with a TLS 1.3 floor."""
        context = super().create_ssl_context()
        if context is not None:
            context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context


def server_certificate(settings: AgentSettings) -> tuple[Path, Path]:
    """The certificate and key to serve: the given ones, else the kept self-signed
    pair (made on first run, see :func:`~._certs.ensure_self_signed`)."""
    if settings.cert_file is not None and settings.key_file is not None:
        return settings.cert_file, settings.key_file
    return ensure_self_signed(settings.tls_dir, settings.host)


def hypercorn_config(settings: AgentSettings) -> Config:
    """The Hypercorn configuration that serves ``settings``."""
    config = _AgentConfig()
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    # The passthrough forwards the engine's own Server header ("Libpod/4.3.1 (linux)"),
    # from which clients tell Podman from Docker; Hypercorn's would be a second one.
    config.include_server_header = False
    # Hypercorn ends a connection after 1,000 requests by default: on HTTP/2 with a
    # GOAWAY that httpx fails every request then in flight with (50 in flight through
    # one connection, 1,000 requests in ~1 s), on HTTP/1.1 a new TLS handshake each
    # time. The agent is a long-lived API server that pooled clients keep connections
    # to; connections still end at the keep-alive timeout, at a stop, or by the client.
    config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS
    socket_path = settings.unix_socket
    if socket_path is not None:
        config.bind = [f"unix:{socket_path}"]
        config.umask = 0o177  # the socket file: read-write for its owner only
        return config
    cert, key = server_certificate(settings)
    config.bind = [settings.listen]
    config.certfile, config.keyfile = str(cert), str(key)
    bind = settings.http3_bind
    config.quic_bind = [bind] if bind is not None else []
    if bind is not None:
        # Hypercorn would build this header itself, importing aioquic for the ALPN name
        # ("h3") on the first answer: aioquic and cryptography in an agent that no
        # HTTP/3 client uses (see _h3_guard's notes on memory).
        parsed = parse_listen(bind)
        assert not isinstance(parsed, Path)
        config.alt_svc_headers = [f'h3=":{parsed[1]}"; ma=3600']
    if settings.client_ca is not None:
        config.ca_certs = str(settings.client_ca)
        config.verify_mode = ssl.CERT_REQUIRED
    return config


def _check_tls_files(config: Config) -> None:
    """Load the certificate, key and client CA once before serving, so that a bad file
    is reported by name (OpenSSL's own message, "[SSL] PEM lib", names none)."""
    if not config.ssl_enabled:
        return
    try:
        config.create_ssl_context()
    except (ssl.SSLError, OSError) as error:
        client_ca = f" or the client CA {config.ca_certs}" if config.ca_certs else ""
        raise ValueError(f"cannot use the certificate {config.certfile} with the key "
                         f"{config.keyfile}{client_ca}: {error}") from error


def _announce(settings: AgentSettings, config: Config,
              echo: Callable[[str], None]) -> None:
    http3 = f", HTTP/3 on udp {settings.http3_bind}" if config.quic_bind else ""
    echo(f"ghostpanel agent serving {settings.url} (engine {settings.engine_url}{http3})")
    if config.certfile is not None:
        echo(f"certificate {config.certfile}, fingerprint (SHA-256): "
             f"{fingerprint(Path(config.certfile))}")


def _quiet_connection_ends(loop: asyncio.AbstractEventLoop,
                           context: dict[str, Any]) -> None:
    """The loop's exception handler: the default one, except for two ordinary ends of
    a client connection that asyncio reports with a traceback.

    - A connection task cancelled: at a stop Hypercorn cancels the connections still
      open after the graceful timeout, and on Python 3.11 asyncio's stream callback
      then calls ``task.exception()`` on the cancelled task, which raises (CPython
      gh-113538, fixed in 3.12 only).
    - "SSL shutdown timed out": a client that did not answer the close of an idle
      connection within :data:`TLS_SHUTDOWN_TIMEOUT`; the connection is dropped,
      which is all there is to do.
    """
    error = context.get("exception")
    if isinstance(error, asyncio.CancelledError) or (
            isinstance(error, TimeoutError) and "SSL shutdown" in str(error)):
        _log.debug("client connection ended: %s (%s)", context.get("message"), error)
        return
    loop.default_exception_handler(context)


async def _wake_quic_listener(bind: str) -> None:
    """Send empty datagrams to our own HTTP/3 socket until cancelled, at a stop.

    Hypercorn's UDP server checks whether it should stop only after it has handled a
    datagram: with no HTTP/3 traffic it would wait for one until the graceful timeout
    cancels it, so every stop would take that long. An empty datagram is not a QUIC
    packet (Hypercorn drops it unread) but lets that check run; once Hypercorn is
    stopping and no QUIC connection is left, the server ends at once.
    """
    parsed = parse_listen(bind)
    assert not isinstance(parsed, Path)
    host, port = parsed
    # A socket bound to every address is reached through loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        while True:
            with contextlib.suppress(OSError):
                sender.sendto(b"", (host, port))
            await asyncio.sleep(0.05)


async def serve(settings: AgentSettings, *, echo: Callable[[str], None] = print,
                stop: asyncio.Event | None = None) -> None:
    """Serve the agent until SIGINT, SIGTERM or ``stop`` is set.

    Parameters
    ----------
    settings
        What to serve and where.
    echo
        Prints the start-up lines: URL, certificate fingerprint, then :data:`READY_LINE`.
    stop
        Set it to stop the agent (the signals set it too).

    Raises
    ------
    OSError
        The address cannot be bound, or a certificate file cannot be read.
    """
    from hypercorn.asyncio import serve as hypercorn_serve

    from ._tcp_guard import install as install_tcp_guard

    config = hypercorn_config(settings)
    _check_tls_files(config)
    # See _tcp_guard: a client's failed TLS close must not fail the stop (status 1).
    install_tcp_guard()
    if config.quic_bind:
        from ._h3_guard import install

        install()  # see _h3_guard: a cancelled request must not end HTTP/3
    app = create_app(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_connection_ends)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    wakers: list[asyncio.Task[None]] = []

    async def ready_then_wait() -> None:
        _announce(settings, config, echo)
        echo(READY_LINE)
        await stop.wait()
        await app.stopping()  # event subscribers get 1001 before the graceful wait
        wakers.extend(loop.create_task(_wake_quic_listener(bind))
                      for bind in config.quic_bind)

    # See TLS_SHUTDOWN_TIMEOUT: read by asyncio each time it wraps a connection.
    default_shutdown_timeout = asyncio_constants.SSL_SHUTDOWN_TIMEOUT
    asyncio_constants.SSL_SHUTDOWN_TIMEOUT = TLS_SHUTDOWN_TIMEOUT
    try:
        await hypercorn_serve(app, config,  # type: ignore[arg-type]
                              shutdown_trigger=ready_then_wait)
    except OSError as error:
        if error.errno in _LISTEN_ERRORS and not isinstance(error, ssl.SSLError):
            # Hypercorn's own message names no address: say which one it could not use.
            raise OSError(error.errno, f"cannot listen on {settings.listen}: "
                                       f"{error.strerror}") from error
        raise
    finally:
        asyncio_constants.SSL_SHUTDOWN_TIMEOUT = default_shutdown_timeout
        for waker in wakers:
            waker.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run(settings: AgentSettings, *, echo: Callable[[str], None] | None = None) -> None:
    """Serve in a new event loop (the CLI's entry point)."""

    def printed(line: str) -> None:
        print(line, flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings, echo=echo or printed))
