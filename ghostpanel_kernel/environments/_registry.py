"""The environment registry: named engine endpoints kept in GhostPanel's database."""

from __future__ import annotations

import builtins
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .._labels import parse_labels  # one KEY=VALUE reader, shared with the CLI and widgets
from ..engine import Endpoint, EnvironmentNotFound, TLSConfig
from ..engine._client import check_token
from ..store import (
    EnvironmentRecord,
    HealthRecord,
    SettingRecord,
    StoreError,
    open_database,
)
from ..store._transaction import store_transaction
from ._health import EnvironmentHealth, health_outcome
from ._local import detect_local
from ._spec import EnvironmentSpec

__all__ = ["ALL", "LOCAL", "EnvironmentRegistry", "parse_labels"]

#: The auto-detected environment's name; registering this name overrides detection.
LOCAL = "local"
#: In :meth:`EnvironmentRegistry.select`, every environment. Not a valid name.
ALL = "all"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NAME_MAX = 128  # the width of environments.name
_DEFAULT_KEY = "default_environment"

_log = logging.getLogger("ghostpanel.environments")


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"environment name must be a str, not {type(name).__name__}")
    if name == ALL:
        raise ValueError(f"{ALL!r} cannot name an environment: it selects every environment")
    if not _NAME.fullmatch(name) or len(name) > _NAME_MAX:
        raise ValueError(
            f"invalid environment name {name!r}: use up to {_NAME_MAX} letters, digits, "
            "'_', '.' and '-', starting with a letter or digit")


def _check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"labels must map non-empty str keys to str values: {key!r}")
    return dict(labels)


def _absolute_tls(tls: TLSConfig) -> TLSConfig:
    """``tls`` with absolute paths: the registry is read later, from other directories."""

    def absolute(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(os.path.expanduser(path))

    return replace(tls, ca_cert=absolute(tls.ca_cert), client_cert=absolute(tls.client_cert),
                   client_key=absolute(tls.client_key))


def _spec_of(record: EnvironmentRecord) -> EnvironmentSpec:
    tls = None
    if record.tls_verify is not None:  # NULL: registered without TLS settings
        tls = TLSConfig(ca_cert=record.tls_ca_cert, client_cert=record.tls_client_cert,
                        client_key=record.tls_client_key, verify=record.tls_verify,
                        fingerprint=record.tls_fingerprint)
    return EnvironmentSpec(record.name, record.url, tls=tls, labels=dict(record.labels or {}),
                           token=record.token)


def _restrict_sqlite_file(path: str | None) -> None:
    """Make the registry's SQLite file readable by its owner only (mode 0600).

    It holds agents' tokens in clear. SQLite creates the file with the umask's mode
    (0644 usually) and gives its journal the file's own mode, so fixing the file's
    mode when it is opened covers both, before any token is written to a new file;
    a file made 0644 by an older version is fixed the first time it is opened.
    """
    if not path or path == ":memory:":
        return
    # In WAL mode (docs/audit.md) the -wal and -shm files beside it hold recent writes
    # and outlive this chmod while any process has the store open: them too.
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue  # no WAL file now: made with the database's (private) mode later
        except OSError as error:  # not ours to change (another user's file): say so, go on
            _log.warning("cannot make the registry file %s private (mode 0600): %s", name,
                         error.strerror or error)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())[:500]


def _nothing_selected(known: list[str]) -> EnvironmentNotFound:
    return EnvironmentNotFound(
        None, known=known,
        hint="No default is set and no local engine answered (Podman or Docker socket, "
             "Bolt on 127.0.0.1:2375). Run `ghostpanel env add NAME URL` (then "
             "`ghostpanel env use NAME`), or start an engine")


class EnvironmentRegistry:
    """Named engine endpoints, stored with SQLAlchemy (SQLite by default).

    The database is ``$GHOSTPANEL_DATABASE_URL``, else ``ghostpanel.db`` in the data
    directory (``$GHOSTPANEL_HOME`` moves it). Besides the registered environments there
    is ``local``: the engine found on this machine (see :func:`detect_local`), unless an
    environment registered under that name overrides it.

    Parameters
    ----------
    database_url
        A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://host/db``); the
        default database when None.
    detect
        Finds the local engine, or returns None; :func:`detect_local` by default. Pass
        ``lambda: None`` to use registered environments only.

    Examples
    --------
    >>> registry = EnvironmentRegistry()                                  # doctest: +SKIP
    >>> registry.add("us-east-1", "tcp://10.0.0.5:2375", labels={"region": "us-east"})
    ...                                                                   # doctest: +SKIP
    >>> registry.use("us-east-1")                                         # doctest: +SKIP
    >>> registry.resolve(None).url                                        # doctest: +SKIP
    'tcp://10.0.0.5:2375'
    """

    def __init__(self, database_url: str | None = None, *,
                 detect: Callable[[], EnvironmentSpec | None] = detect_local) -> None:
        self._engine = open_database(database_url)
        if self._engine.dialect.name == "sqlite":
            _restrict_sqlite_file(self._engine.url.database)
        self._detect = detect

    def _transaction(self) -> AbstractContextManager[Session]:
        """One transaction; the database's failures leave it as :class:`StoreError`.

        ``IntegrityError`` is the exception: the callers that insert turn it into what
        it means for them (a duplicate name, a row another process inserted first).
        """
        url = self._engine.url.render_as_string(hide_password=True)
        return store_transaction(self._engine, f"the registry database {url}")

    # -- changes -------------------------------------------------------------------

    def add(self, name: str, url: str, *, tls: TLSConfig | None = None,
            labels: Mapping[str, str] | None = None,
            token: str | None = None) -> EnvironmentSpec:
        """Register an environment.

        Parameters
        ----------
        name
            Letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit.
            ``local`` overrides the auto-detected engine; ``all`` is reserved.
        url
            The engine endpoint, checked as :class:`Endpoint` parses it.
        tls
            Certificates for ``https://`` (or TLS ``tcp://``) endpoints; the paths are
            stored absolute.
        labels
            Free labels, e.g. ``{"region": "us-east"}``.
        token
            An agent's bearer token (``https://``, ``h3://`` or ``unix://`` agents),
            stored in the registry (a SQLite file is kept mode 0600), never listed.

        Raises
        ------
        ValueError
            A bad name, URL or label, TLS on a unix socket, a TLS file that is missing,
            empty or not PEM, a token that is not one printable word or would go over
            plaintext ``tcp://``, or a name already in use.

        Examples
        --------
        >>> registry.add("gpu-1", "https://10.0.0.9:2376",
        ...              tls=TLSConfig(ca_cert="~/certs/ca.pem"))      # doctest: +SKIP
        EnvironmentSpec(name='gpu-1', url='https://10.0.0.9:2376', ...)
        """
        _check_name(name)
        endpoint = Endpoint.parse(url, tls=tls)  # ValueError says what is wrong with url
        if tls is not None and endpoint.scheme == "unix":
            raise ValueError(f"TLS settings apply to tcp:// and https:// (or h3://) "
                             f"endpoints, not {url!r}")
        if token is not None:
            check_token(token)
            if endpoint.scheme == "tcp":
                raise ValueError(f"a token is sent only over TLS: use https:// or h3:// "
                                 f"rather than {url!r}")
        spec = EnvironmentSpec(name, url, tls=None if tls is None else _absolute_tls(tls),
                               labels=_check_labels(labels or {}), token=token)
        if spec.tls is not None:
            # Load the files now, so an empty or wrong CA is refused here, naming the file,
            # rather than on every later use of the environment.
            spec.tls.ssl_context()
        record = EnvironmentRecord(name=spec.name, url=spec.url, labels=spec.labels)
        if spec.tls is not None:
            record.tls_ca_cert = spec.tls.ca_cert
            record.tls_client_cert = spec.tls.client_cert
            record.tls_client_key = spec.tls.client_key
            record.tls_verify = spec.tls.verify
            record.tls_fingerprint = spec.tls.fingerprint
        record.token = token
        duplicate = ValueError(f"environment {name!r} already exists; remove it first")
        try:
            with self._transaction() as session:
                if session.get(EnvironmentRecord, name) is not None:
                    raise duplicate
                session.add(record)
        except IntegrityError:  # another process added the same name meanwhile
            raise duplicate from None
        return spec

    def remove(self, name: str) -> None:
        """Unregister ``name``; if it was the default, no default remains.

        Raises
        ------
        EnvironmentNotFound
            No environment of that name is registered.

        Examples
        --------
        >>> registry.remove("gpu-1")        # doctest: +SKIP
        """
        with self._transaction() as session:
            record = session.get(EnvironmentRecord, name)
            if record is None:
                known = list(session.scalars(sql_select(EnvironmentRecord.name)))
                raise EnvironmentNotFound(name, known=known)
            session.delete(record)
            health = session.get(HealthRecord, name)
            if health is not None:
                session.delete(health)
            default = session.get(SettingRecord, _DEFAULT_KEY)
            if default is not None and default.value == name:
                session.delete(default)

    def use(self, name: str) -> None:
        """Make ``name`` the default environment (what ``connect()`` opens).

        Raises
        ------
        EnvironmentNotFound
            ``name`` is neither registered nor the detected ``local``.

        Examples
        --------
        >>> registry.use("us-east-1")       # doctest: +SKIP
        """
        self.get(name)
        with self._transaction() as session:
            session.merge(SettingRecord(key=_DEFAULT_KEY, value=name))

    # -- queries -------------------------------------------------------------------

    def list(self) -> list[EnvironmentSpec]:
        """Every environment: the detected ``local`` first (unless a registered one
        takes its name), then the registered ones by name.

        Examples
        --------
        >>> [spec.name for spec in registry.list()]     # doctest: +SKIP
        ['local', 'gpu-1', 'us-east-1']
        """
        with self._transaction() as session:
            specs = [_spec_of(record) for record in session.scalars(
                sql_select(EnvironmentRecord))]
        # Sorted here, not in SQL: PostgreSQL's collation may order names differently.
        specs.sort(key=lambda spec: spec.name)
        if all(spec.name != LOCAL for spec in specs):
            local = self._detect()
            if local is not None:
                specs.insert(0, local)
        return specs

    def get(self, name: str) -> EnvironmentSpec:
        """The environment called ``name`` (``local`` may be the detected one).

        Raises
        ------
        EnvironmentNotFound
            No such environment; the error lists the registered names.

        Examples
        --------
        >>> registry.get("us-east-1").region     # doctest: +SKIP
        'us-east'
        """
        with self._transaction() as session:
            record = session.get(EnvironmentRecord, name)
            if record is not None:
                return _spec_of(record)
            known = list(session.scalars(sql_select(EnvironmentRecord.name)))
        if name == LOCAL:
            local = self._detect()
            if local is not None:
                return local
        raise EnvironmentNotFound(name, known=known)

    def default_name(self) -> str | None:
        """The default environment's name, or None when none was chosen.

        Examples
        --------
        >>> registry.default_name()         # doctest: +SKIP
        'us-east-1'
        """
        with self._transaction() as session:
            setting = session.get(SettingRecord, _DEFAULT_KEY)
            return None if setting is None else setting.value

    def resolve(self, target: str | None) -> EnvironmentSpec:
        """The environment an operation without an explicit one should use.

        ``target`` names it; None means the default (see :meth:`use`), else ``local``.

        Raises
        ------
        EnvironmentNotFound
            ``target`` is unknown, or it is None and there is neither a default nor a
            local engine; the message says how to register one.

        Examples
        --------
        >>> registry.resolve(None).name     # doctest: +SKIP
        'local'
        """
        if target is not None:
            return self.get(target)
        default = self.default_name()
        if default is not None:
            return self.get(default)
        try:
            return self.get(LOCAL)
        except EnvironmentNotFound as error:
            raise _nothing_selected(error.known) from None

    # builtins.list: inside this class body, ``list`` is the method above.
    def select(self, names: Sequence[str] | None) -> builtins.list[EnvironmentSpec]:
        """The environments an operation on several of them should run on.

        Parameters
        ----------
        names
            Environment names, where ``"all"`` stands for every environment; None or
            empty means ``[resolve(None)]``. Each environment comes once, first
            mention first.

        Raises
        ------
        EnvironmentNotFound
            A name is unknown, or nothing at all is there to select.

        Examples
        --------
        >>> [spec.name for spec in registry.select(["all"])]   # doctest: +SKIP
        ['local', 'gpu-1', 'us-east-1']
        """
        if not names:
            return [self.resolve(None)]
        selected: dict[str, EnvironmentSpec] = {}
        for name in names:
            if name == ALL:
                specs = self.list()
                if not specs:
                    raise _nothing_selected([])
            else:
                specs = [self.get(name)]
            for spec in specs:
                selected.setdefault(spec.name, spec)
        return list(selected.values())

    # -- health --------------------------------------------------------------------

    def health(self) -> dict[str, EnvironmentHealth]:
        """What is remembered of each environment's engine, by environment name.

        Examples
        --------
        >>> registry.health()["gpu-1"].describe()       # doctest: +SKIP
        'failing since 2026-12-07 16:40:02 UTC, last tried 8 s ago: connection refused'
        """
        with self._transaction() as session:
            return {record.name: EnvironmentHealth(
                record.name, record.url, last_success=record.last_success,
                last_failure=record.last_failure, failing_since=record.failing_since,
                failure=record.failure) for record in session.scalars(
                    sql_select(HealthRecord))}

    def record_health(self, outcomes: Iterable[tuple[str, str, BaseException | None]], *,
                      now: datetime | None = None) -> None:
        """Remember how environments answered: ``(name, url, error or None)`` each.

        What an outcome means is :func:`health_outcome`'s to say; outcomes that say
        nothing about the engine are left out. All are written in one transaction.

        Raises
        ------
        StoreError
            The database cannot be written (read-only, locked for too long).

        Examples
        --------
        >>> registry.record_health([("gpu-1", "tcp://10.0.0.9:2375", None)])
        ...                                                       # doctest: +SKIP
        """
        moment = now or datetime.now(UTC)
        changes: dict[str, tuple[str, bool, str | None]] = {}
        for name, url, error in outcomes:
            outcome = health_outcome(error)
            if outcome is not None:
                reason = None if outcome else _one_line(str(error) or type(error).__name__)
                changes[name] = (url, outcome, reason)
        if not changes:
            return
        # Two processes may insert the same new row at once: the loser's second try
        # finds the row and updates it.
        for attempt in range(2):
            try:
                self._write_health(changes, moment)
                return
            except IntegrityError as error:
                if attempt == 1:
                    raise StoreError(f"cannot record environment health: {error.orig}"
                                     ) from error

    def _write_health(self, changes: Mapping[str, tuple[str, bool, str | None]],
                      moment: datetime) -> None:
        with self._transaction() as session:
            existing = {record.name: record for record in session.scalars(
                sql_select(HealthRecord).where(HealthRecord.name.in_(list(changes))))}
            for name, (url, ok, reason) in changes.items():
                record = existing.get(name)
                if record is not None and record.url != url:  # about another endpoint
                    record.last_success = record.last_failure = None
                    record.failing_since = record.failure = None
                    record.url = url
                if record is None:
                    record = HealthRecord(name=name, url=url)
                    session.add(record)
                if ok:
                    record.last_success = moment
                    record.failing_since = None
                else:
                    if record.failing_since is None:
                        record.failing_since = moment
                    record.last_failure = moment
                    record.failure = reason

    def close(self) -> None:
        """Release the database engine (no connection is held between calls anyway)."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"<EnvironmentRegistry {self._engine.url.render_as_string(hide_password=True)}>"
