"""Where an audit view reads the log: the gateway's API in a hub, or the store itself.

Two sources give the same :class:`~._client.AuditEntry` rows:

- :class:`GatewayAuditSource`, inside a hub session: ``GET /api/v1/audit`` with the
  user's own token (hub admins only; the gateway refuses everyone else);
- :class:`LocalAuditSource`, on the gateway's own machine: the store's
  ``AuditLog`` read directly, which can also check the hash chain.

:func:`audit_source_for_session` picks one for the dashboard's Audit tab, or none: see
``docs/gateway-client.md`` ("The Audit tab").
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ._client import AuditEntry, GatewayClient, HubGateway

if TYPE_CHECKING:
    from ._audit_chain import AuditVerification

__all__ = ["AuditSource", "GatewayAuditSource", "LocalAuditSource", "audit_source_for_session",
           "entry_of_record"]

_log = logging.getLogger("ghostpanel.gateway")


class AuditSource(Protocol):
    """What an audit view needs from where the log lives."""

    #: Whether :meth:`verify` can check the hash chain from here.
    can_verify: bool
    #: Where the entries come from, in a few words (shown by the view).
    description: str

    async def entries(self, *, user: str | None = None, environment: str | None = None,
                      since: datetime | None = None, limit: int | None = None
                      ) -> list[AuditEntry]:
        """The entries, oldest first."""
        ...

    async def verify(self) -> AuditVerification:
        """Check the hash chain (only where :attr:`can_verify`)."""
        ...

    async def aclose(self) -> None:
        """Release what the source holds."""
        ...


def entry_of_record(record: Any) -> AuditEntry:
    """A store ``AuditRecord`` (a dataclass or any object with the row's attributes)
    as an :class:`AuditEntry`."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        fields: Mapping[str, Any] = dataclasses.asdict(record)
    elif isinstance(record, Mapping):
        fields = record
    else:
        fields = vars(record)
    detail = fields.get("detail")
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, sort_keys=True, default=str)
    return AuditEntry.from_json({**fields, "detail": detail})


class GatewayAuditSource:
    """The audit log through the gateway's ``/api/v1/audit`` (hub admins only).

    Parameters
    ----------
    client
        A :class:`GatewayClient` for this hub session; closed by :meth:`aclose`.

    Examples
    --------
    >>> source = GatewayAuditSource(GatewayClient(HubGateway.from_environ()))  # doctest: +SKIP
    """

    can_verify = False

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.description = f"the gateway at {client.gateway.url}"

    async def entries(self, *, user: str | None = None, environment: str | None = None,
                      since: datetime | None = None, limit: int | None = None
                      ) -> list[AuditEntry]:
        """``GET /api/v1/audit`` with these filters."""
        return await self.client.audit(user=user, environment=environment, since=since,
                                       limit=limit)

    async def verify(self) -> AuditVerification:
        """Not from a hub session: the chain is checked where the store is."""
        raise ValueError("the hash chain is checked where the store is: run "
                         "`ghostpanel audit verify` on the gateway's host")

    async def aclose(self) -> None:
        """Close the gateway client."""
        await self.client.aclose()


class LocalAuditSource:
    """The store's own audit log (SQLite or PostgreSQL), read in a worker thread.

    Parameters
    ----------
    audit
        A ``ghostpanel_kernel.gateway._audit.AuditLog`` (``AuditLog(engine)``).
    description
        Where it is, for the view (the database URL without its password).

    Examples
    --------
    >>> from ghostpanel_kernel.gateway._audit import AuditLog       # doctest: +SKIP
    >>> source = LocalAuditSource(AuditLog(open_database()))        # doctest: +SKIP
    """

    can_verify = True

    def __init__(self, audit: Any, *, description: str = "the local store") -> None:
        self.audit = audit
        self.description = description

    async def entries(self, *, user: str | None = None, environment: str | None = None,
                      since: datetime | None = None, limit: int | None = None
                      ) -> list[AuditEntry]:
        """The store's entries with these filters (a database read: off the loop)."""
        records = await asyncio.to_thread(self.audit.entries, user=user,
                                          environment=environment, since=since, limit=limit)
        return [entry_of_record(record) for record in records]

    async def verify(self) -> AuditVerification:
        """Walk the whole hash chain (off the loop)."""
        verification: AuditVerification = await asyncio.to_thread(self.audit.verify)
        return verification

    async def aclose(self) -> None:
        """Nothing is held between reads."""


def audit_source_for_session(environ: Mapping[str, str] | None = None,
                             *, whoami_timeout: float = 5.0) -> AuditSource | None:
    """The audit source the dashboard's Audit tab shows, or None for no tab.

    In a hub session: the gateway's, when the gateway says the user is a hub admin
    (everyone else would only get a 403). Outside a hub: the local store's, when it
    already holds audit rows (a machine that runs the gateway); a store that does not
    exist yet is not created. Any failure to find out means no tab (logged).

    Must be called from sync code (it blocks while it asks).
    """
    from ..environments._gateway import _run_blocking

    gateway = HubGateway.from_environ(environ)
    try:
        if gateway is not None:
            async def admin() -> bool:
                async with GatewayClient(gateway, timeout=whoami_timeout) as client:
                    return (await client.whoami()).admin

            if _run_blocking(admin):
                return GatewayAuditSource(GatewayClient(gateway))
            return None
        return _local_source_with_rows()
    except Exception as error:  # no tab rather than no dashboard
        _log.info("no Audit tab: %s", error)
        return None


def _local_source_with_rows() -> LocalAuditSource | None:
    import os

    from ..store import open_database
    from ..store._database import DATABASE_VARIABLE, data_dir

    if not os.environ.get(DATABASE_VARIABLE) and not (data_dir() / "ghostpanel.db").exists():
        return None  # never create a store just to find it empty
    from ._audit import AuditLog

    engine = open_database()
    audit = AuditLog(engine)
    if not audit.entries(limit=1):
        engine.dispose()
        return None
    url = engine.url.render_as_string(hide_password=True)
    return LocalAuditSource(audit, description=f"the store {url}")
