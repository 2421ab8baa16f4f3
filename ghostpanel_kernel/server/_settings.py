"""What one agent serves, where, and with which credentials: :class:`AgentSettings`."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

__all__ = ["DEFAULT_LISTEN", "AgentSettings", "parse_listen"]

#: Where an agent listens when not told: loopback only, so that exposing the engine to
#: the network is always a decision (``--listen 0.0.0.0:2376``). 2376 is the port of a
#: TLS Docker endpoint, and the one a client assumes for an agent URL without a port.
DEFAULT_LISTEN = "127.0.0.1:2376"


def _default_home() -> Path:
    # The rule of ghostpanel_kernel.store.data_dir, without importing the store: that
    # imports SQLAlchemy, which the agent process does without (see _token_check).
    # tests/unit/test_agent_settings.py checks that the two agree.
    home = os.environ.get("GHOSTPANEL_HOME")
    if home:
        return Path(home).expanduser().absolute()
    return Path(platformdirs.user_data_dir("ghostpanel"))


def parse_listen(listen: str) -> tuple[str, int] | Path:
    """Split a listen address: ``HOST:PORT`` or ``[V6]:PORT`` -> (host, port);
    ``unix:///path.sock`` -> the socket path.

    Raises
    ------
    ValueError
        The address is neither form, or the port is out of range.

    Examples
    --------
    >>> parse_listen("127.0.0.1:9443")
    ('127.0.0.1', 9443)
    >>> parse_listen("[::1]:9443")
    ('::1', 9443)
    >>> parse_listen("unix:///run/ghostpanel/agent.sock")
    PosixPath('/run/ghostpanel/agent.sock')
    """
    if listen.startswith("unix://"):
        path = listen.removeprefix("unix://")
        if not path.startswith("/"):
            raise ValueError(f"a unix listen address needs an absolute path: {listen!r}")
        return Path(path)
    host, colon, port_text = listen.rpartition(":")
    if not colon or not host or not port_text.isdigit():
        raise ValueError(f"listen address {listen!r} is not HOST:PORT or unix:///PATH")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} of listen address {listen!r} is out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # ValueError when not one
    elif ":" in host:
        raise ValueError(f"write an IPv6 listen address in brackets: [{host}]:{port}")
    return host, port


@dataclass(frozen=True)
class AgentSettings:
    """The configuration of one ``ghostpanel agent``.

    Parameters
    ----------
    engine_url
        The engine the agent serves (``unix:///run/podman/podman.sock``...).
    listen
        ``HOST:PORT`` (HTTPS, TLS 1.3 only, plus HTTP/3 on the same UDP port) or
        ``unix:///path.sock`` (plain HTTP: the socket file's permissions guard it).
    cert_file, key_file
        The server certificate and key (PEM). Both None: a self-signed certificate
        made on first run and kept in :attr:`tls_dir`.
    client_ca
        A CA bundle: HTTPS clients must then present a certificate it signed.
    quic_bind
        Where HTTP/3 listens (``HOST:PORT``, UDP); None for the listen address itself.
    home
        GhostPanel's home (``$GHOSTPANEL_HOME``); the agent keeps its files in
        :attr:`state_dir` under it.
    database_url
        The store holding the token hashes; None for GhostPanel's own
        (``$GHOSTPANEL_DATABASE_URL``, else ``ghostpanel.db`` in ``home``).
    max_failures, failure_window
        Failed authentications a peer may make within ``failure_window`` seconds
        before it is answered 429 until the window has passed.
    snapshot_dir
        Where the snapshot routes put BTRFS snapshots when a request names no folder
        (the Boltfile's ``snapshot_path``); None: a ``.ghostpanel-snapshots`` folder at
        the top of each source's filesystem.
    snapshot_boltfile
        A Boltfile whose ``[snapshots.triggers]`` the agent runs in the background
        (see ``docs/snapshots.md``); None: no scheduled snapshots.
    alert_rules
        A rules file (or a Boltfile with ``[alerts]``) whose alert rules the agent
        evaluates over its metrics (``docs/alerts.md``); None: no alerts.
    alert_interval
        Seconds between two evaluations of the alert rules; None: the sampling
        interval (``metrics_interval``, or 10 s when sampling is off).
    metrics_interval
        Seconds between two rounds of the metrics sampler (``docs/metrics.md``); 0 turns
        sampling off (then ``/api/v1/metrics/history`` serves only what is stored).
    metrics_dir
        Where the metrics history is kept; None: :attr:`metrics_path`'s default,
        ``<home>/metrics``.
    runbook_schedules
        Run the runbook schedules stored under ``home`` (``docs/runbooks.md``).

    Examples
    --------
    >>> settings = AgentSettings(engine_url="unix:///run/podman/podman.sock",
    ...                          listen="127.0.0.1:9443", home=Path("/tmp/gp"))
    >>> settings.port, str(settings.state_dir)
    (9443, '/tmp/gp/agent')
    """

    engine_url: str
    listen: str = DEFAULT_LISTEN
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca: Path | None = None
    quic_bind: str | None = None
    home: Path = field(default_factory=_default_home)
    database_url: str | None = None
    max_failures: int = 10
    failure_window: float = 60.0
    snapshot_dir: Path | None = None
    snapshot_boltfile: Path | None = None
    alert_rules: Path | None = None
    alert_interval: float | None = None
    metrics_interval: float = 10.0
    metrics_dir: Path | None = None
    runbook_schedules: bool = False

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both a certificate and its key, or neither")
        if self.quic_bind is not None:
            if self.unix_socket is not None:
                raise ValueError("HTTP/3 needs a UDP address: a unix listen has no quic_bind")
            if isinstance(parse_listen(self.quic_bind), Path):
                raise ValueError(f"quic_bind {self.quic_bind!r} must be HOST:PORT")
        if self.max_failures < 1 or self.failure_window <= 0:
            raise ValueError("max_failures must be >= 1 and failure_window > 0")
        if self.alert_interval is not None and self.alert_interval <= 0:
            raise ValueError("alert_interval must be more than 0 seconds")
        if self.metrics_interval < 0:
            raise ValueError("metrics_interval must be 0 (off) or more seconds")

    @property
    def unix_socket(self) -> Path | None:
        """The socket path of a ``unix://`` listen address, else None."""
        parsed = parse_listen(self.listen)
        return parsed if isinstance(parsed, Path) else None

    @property
    def host(self) -> str:
        """The listen host (empty for a unix socket)."""
        parsed = parse_listen(self.listen)
        return "" if isinstance(parsed, Path) else parsed[0]

    @property
    def port(self) -> int:
        """The listen port (0 for a unix socket)."""
        parsed = parse_listen(self.listen)
        return 0 if isinstance(parsed, Path) else parsed[1]

    @property
    def http3_bind(self) -> str | None:
        """Where HTTP/3 listens: :attr:`quic_bind`, else the TCP listen address; None
        on a unix socket."""
        if self.unix_socket is not None:
            return None
        return self.quic_bind or self.listen

    @property
    def store_url(self) -> str:
        """The database of the token hashes (see ``database_url``)."""
        return (self.database_url or os.environ.get("GHOSTPANEL_DATABASE_URL")
                or f"sqlite:///{self.home / 'ghostpanel.db'}")

    @property
    def metrics_path(self) -> Path:
        """The metrics history's folder: :attr:`metrics_dir`, else ``<home>/metrics``."""
        return self.metrics_dir if self.metrics_dir is not None else self.home / "metrics"

    @property
    def state_dir(self) -> Path:
        """The agent's own files: ``<home>/agent``."""
        return self.home / "agent"

    @property
    def quic_policy_file(self) -> Path:
        """The stored QUIC networking policy: ``<home>/agent/quic-policy.json``."""
        return self.state_dir / "quic-policy.json"

    @property
    def tls_dir(self) -> Path:
        """Where the self-signed certificate is kept: ``<home>/agent/tls``."""
        return self.state_dir / "tls"

    @property
    def url(self) -> str:
        """The URL clients use: ``https://HOST:PORT`` or ``unix:///path.sock``."""
        if self.unix_socket is not None:
            return self.listen
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"
