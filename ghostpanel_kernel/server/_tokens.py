"""The agent's API tokens: made once, shown once, kept only as a hash.

A token is 32 random bytes (``secrets``), URL-safe, prefixed ``gpa_``; the store keeps
its SHA-256 (``_token_digest``). This module writes and lists them (the ``ghostpanel
agent token`` commands); the agent checks them on every request without a cache, so
that a token revoked by another process fails on its very next request, through
``_token_check`` (which, on SQLite, does without SQLAlchemy).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .._exceptions import GhostPanelError
from ..store import StoreError, open_database
from ..store._schema import AgentTokenRecord
from ._token_digest import TOKEN_PREFIX, token_digest

__all__ = ["TOKEN_PREFIX", "TokenError", "TokenInfo", "TokenStore", "token_digest"]

_NAME_MAX = 128


class TokenError(GhostPanelError):
    """A token command that cannot be done: a name in use, or no such token."""


@dataclass(frozen=True)
class TokenInfo:
    """What ``token ls`` shows of a token: never the token, nor its hash."""

    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None


def _utc(moment: datetime) -> datetime:
    # SQLite returns naive datetimes, in UTC (see store/_schema.py).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class TokenStore:
    """The agent's tokens in GhostPanel's store (table ``agent_tokens``).

    Parameters
    ----------
    database_url
        A SQLAlchemy URL; the registry database of ``$GHOSTPANEL_HOME`` when None.

    Examples
    --------
    >>> store = TokenStore("sqlite://")
    >>> token = store.create("ci")
    >>> store.verify(token), store.verify("gpa_wrong")
    ('ci', None)
    >>> store.revoke("ci"); store.verify(token) is None
    True
    """

    def __init__(self, database_url: str | None = None) -> None:
        self._engine: Engine = open_database(database_url)

    @contextmanager
    def _session(self, what: str) -> Iterator[Session]:
        try:
            with Session(self._engine) as session, session.begin():
                yield session
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            raise StoreError(f"cannot {what} in {self._engine.url.render_as_string()}: "
                             f"{reason}") from error

    def create(self, name: str) -> str:
        """Make a token called ``name``; returns it (the only time it is shown).

        Raises
        ------
        TokenError
            A token of that name exists and is not revoked.
        ValueError
            ``name`` is empty or longer than 128 characters.
        """
        if not name or len(name) > _NAME_MAX or not name.isprintable():
            raise ValueError(f"a token name is 1 to {_NAME_MAX} printable characters: "
                             f"{name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._session(f"create token {name!r}") as session:
            record = session.get(AgentTokenRecord, name)
            if record is not None and record.revoked_at is None:
                raise TokenError(f"a token named {name!r} exists: revoke it first "
                                 f"(`ghostpanel agent token revoke {name}`)")
            if record is not None:
                session.delete(record)
                session.flush()
            session.add(AgentTokenRecord(name=name, digest=token_digest(token)))
        return token

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, by name."""
        with self._session("list tokens") as session:
            records = session.scalars(select(AgentTokenRecord)
                                      .order_by(AgentTokenRecord.name)).all()
            return [TokenInfo(record.name, _utc(record.created_at),
                              None if record.revoked_at is None else _utc(record.revoked_at))
                    for record in records]

    def revoke(self, name: str) -> None:
        """Revoke the token called ``name``: its next request fails.

        Raises
        ------
        TokenError
            No token of that name, or it is already revoked.
        """
        with self._session(f"revoke token {name!r}") as session:
            record = session.get(AgentTokenRecord, name)
            if record is None or record.revoked_at is not None:
                raise TokenError(f"no active token named {name!r} "
                                 f"(`ghostpanel agent token ls` lists them)")
            record.revoked_at = datetime.now(UTC)

    def verify(self, token: str) -> str | None:
        """The name of the active token ``token`` is, or None.

        Looked up by its hash, then compared in constant time: the lookup's timing can
        only tell about the hash, which gives nothing towards a token.

        Raises
        ------
        StoreError
            The store could not be read.
        """
        digest = token_digest(token)
        with self._session("check a token") as session:
            record = session.scalars(select(AgentTokenRecord).where(
                AgentTokenRecord.digest == digest,
                AgentTokenRecord.revoked_at.is_(None))).first()
            if record is None or not hmac.compare_digest(record.digest, digest):
                return None
            return record.name

    def close(self) -> None:
        """Release the database (its pool)."""
        self._engine.dispose()
