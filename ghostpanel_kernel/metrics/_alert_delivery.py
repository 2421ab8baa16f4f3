"""Where notifications go: a webhook (JSON, retried) and the audit log.

Both are called with a batch of :class:`~._alert_state.Notification` after an
evaluation round, off the round's path (the evaluator runs them in a task), and neither
may stop the other: a failed delivery is logged, never raised into the agent.

The webhook body (docs/alerts.md)::

    {"version": 1, "source": "ghostpanel", "environment": "prod",
     "status": "firing", "alerts": [{...alert...}, ...]}

A 2xx answer is success; a 5xx, a 429 or a connection error is retried with
exponential backoff (0.5 s, 1 s, 2 s... up to ``attempts`` tries); any other 4xx is the
receiver refusing the body, so it is not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ._alert_state import Notification

__all__ = ["AuditDelivery", "Delivery", "WebhookDelivery", "webhook_body"]

_log = logging.getLogger("ghostpanel.alerts")


class Delivery(Protocol):
    """Something notifications are handed to."""

    async def deliver(self, environment: str, notes: Sequence[Notification]) -> None:
        """Deliver a round's notifications (never raises)."""


def webhook_body(environment: str, status: str, notes: Sequence[Notification]
                 ) -> dict[str, Any]:
    """The JSON body of one webhook call: the round's alerts of one status."""
    return {"version": 1, "source": "ghostpanel", "environment": environment,
            "status": status, "alerts": [note.alert for note in notes]}


@dataclass
class WebhookDelivery:
    """POSTs notifications as JSON to ``url``, one call per status per round.

    Parameters
    ----------
    url
        The receiver (``http://`` or ``https://``).
    attempts
        Tries per call, the first included.
    backoff
        Seconds before the first retry; doubled for each next one.
    timeout
        Seconds one try may take.
    """

    url: str
    attempts: int = 5
    backoff: float = 0.5
    timeout: float = 10.0

    async def deliver(self, environment: str, notes: Sequence[Notification]) -> None:
        """POST the firing ones, then the resolved ones (each retried, see the module)."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for status in ("firing", "resolved"):
                batch = [note for note in notes if note.status == status]
                if batch:
                    await self._post(client, webhook_body(environment, status, batch))

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> bool:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                response = await client.post(self.url, json=body)
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                if response.is_success:
                    return True
                reason = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    _log.warning("alert webhook %s refused the notification: %s",
                                 self.url, reason)
                    return False
            if attempt < self.attempts:
                _log.info("alert webhook %s failed (%s); retry %d in %.1f s", self.url,
                          reason, attempt, delay)
                await asyncio.sleep(delay)
                delay *= 2
        _log.warning("alert webhook %s failed %d times (%s); notification dropped",
                     self.url, self.attempts, reason)
        return False


@dataclass
class AuditDelivery:
    """Records each notification in GhostPanel's audit log (``docs/audit.md``), as user
    ``alerts`` and action ``alert.firing`` / ``alert.resolved``.

    Parameters
    ----------
    database_url
        The store holding the audit log; None for GhostPanel's own.
    """

    database_url: str | None = None

    def _record(self, environment: str, notes: Sequence[Notification]) -> None:
        # SQLAlchemy only now, in a worker thread: an agent with no alert firing never
        # loads it (the idle memory budget, tests/unit/test_agent_lazy_imports.py).
        from ghostpanel_kernel.gateway._audit import AuditLog
        from ghostpanel_kernel.store import open_database

        engine = open_database(self.database_url)
        try:
            log = AuditLog(engine)
            for note in notes:
                alert = note.alert
                log.record(user="alerts", environment=environment,
                           action=f"alert.{note.status}", target=alert["container"],
                           result="allowed", status=0, request_id=uuid.uuid4().hex,
                           detail={key: alert[key] for key in (
                               "id", "rule", "kind", "severity", "message", "value",
                               "fired_at", "resolved_at")})
        finally:
            engine.dispose()

    async def deliver(self, environment: str, notes: Sequence[Notification]) -> None:
        """Append the notifications to the audit log (a failure is logged)."""
        if not notes:
            return
        try:
            await asyncio.to_thread(self._record, environment, notes)
        except Exception as error:  # the audit log is one delivery among others
            _log.warning("alert audit failed: %s: %s", type(error).__name__,
                         json.dumps(str(error)))
