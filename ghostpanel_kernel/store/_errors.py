"""The registry database's errors: one line that says which setting to change.

SQLAlchemy's own errors name a dialect plugin or a DBAPI error code; an operator needs
the variable that chose the database and what to put there instead. These classes carry
that message, and the original error as ``__cause__``.
"""

from __future__ import annotations

from .._exceptions import GhostPanelError

__all__ = ["StoreConfigurationError", "StoreError"]


class StoreError(GhostPanelError):
    """The registry database failed during an operation (locked, read-only, gone).

    Examples
    --------
    >>> str(StoreError("the registry database is locked"))
    'the registry database is locked'
    """


class StoreConfigurationError(StoreError):
    """The registry database cannot be opened as configured.

    A URL that does not parse, a database kind or driver that is not installed, a
    directory that cannot be created or written, a server that refuses. The message
    names the setting it came from (``GHOSTPANEL_DATABASE_URL``, ``GHOSTPANEL_HOME``)
    and what to change; the ``ghostpanel`` command exits 2 with it, as for a bad option.

    Examples
    --------
    >>> StoreConfigurationError("GHOSTPANEL_DATABASE_URL 'x' is not a database URL")
    StoreConfigurationError("GHOSTPANEL_DATABASE_URL 'x' is not a database URL")
    """
