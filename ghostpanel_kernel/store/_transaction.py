"""One database transaction whose failures are raised as :class:`StoreError`.

The stores on the registry database (the environment registry, the GPU allocations)
open their transactions the same way; only the words that name the store differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ._errors import StoreError

__all__ = ["store_transaction"]


@contextmanager
def store_transaction(engine: Engine, store: str) -> Iterator[Session]:
    """A session in one transaction, committed when the block ends without error.

    Parameters
    ----------
    engine
        The database.
    store
        What failed, as the message starts: ``"the GPU allocation store"``.

    Yields
    ------
    Session
        The session; the transaction is rolled back if the block raises.

    Raises
    ------
    StoreError
        The database failed (locked, read-only, gone): ``"<store> failed: <reason>"``,
        the reason being the first line of the driver's own message.
    sqlalchemy.exc.IntegrityError
        Left as it is: the callers that insert turn it into what it means for them (a
        duplicate name, a row another process inserted first).
    """
    try:
        with Session(engine) as session, session.begin():
            yield session
    except IntegrityError:
        raise
    except SQLAlchemyError as error:
        orig = getattr(error, "orig", None) or error
        reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        raise StoreError(f"{store} failed: {reason}") from error
