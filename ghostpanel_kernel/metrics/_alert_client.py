"""Reading and acting on alerts from outside the evaluator: the AlertFeed's source.

Two places hold alerts, with one interface (:class:`AlertClient`):

- an **agent** evaluates its rules and serves them under ``/api/v1/alerts``
  (docs/metrics.md, "Alerts"): :class:`AgentAlertClient` speaks to it over the
  environment's own client, and waits for changes with the route's long poll
  (``?after=SEQ&wait=S``);
- on a host without an agent, ``ghostpanel metrics collect`` evaluates them into
  ``alerts.sqlite3`` next to the metrics store: :class:`LocalAlertClient` reads and
  changes that file (the evaluator's process sees the changes at its next round).

Both give alerts as the agent's JSON shape (:meth:`AlertState.alerts`): ``id``,
``rule``, ``kind``, ``container``, ``environment``, ``severity``, ``state``,
``message``, ``started_at``, ``fired_at``, ``resolved_at``, ``acked``, ``silenced``...
Stdlib only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from ..engine import Environment
    from ._alert_state import AlertState

__all__ = ["AgentAlertClient", "AlertClient", "AlertFeedState", "LocalAlertClient",
           "alert_client_for"]

_PREFIX: Final = "/api/v1/alerts"
#: The alert state's file name, next to the metrics store's (as the evaluator keeps it).
STATE_FILE: Final = "alerts.sqlite3"


@dataclass(frozen=True)
class AlertFeedState:
    """What one read of the alerts gives.

    Attributes
    ----------
    enabled
        Whether rules are evaluated there at all (an agent without ``--alert-rules``
        says not).
    seq
        The change counter: pass it back as ``after`` to wait for the next change.
    alerts
        Active alerts first, then recent resolved ones, newest first.
    silences
        Silences in force or to come.
    """

    enabled: bool
    seq: int
    alerts: list[dict[str, Any]] = field(default_factory=list)
    silences: list[dict[str, Any]] = field(default_factory=list)


class AlertClient(Protocol):
    """Where an :class:`~ghostpanel_widgets.AlertFeed` reads alerts and acts on them."""

    #: Shown in the feed's status line ("agent edge-1", "local store ...").
    where: str

    async def read(self, *, after: int = 0, wait: float = 0.0) -> AlertFeedState:
        """The alerts; with ``wait``, first wait up to that long for a change past
        ``after`` (a source that cannot wait answers at once)."""
        ...

    async def acknowledge(self, alert_id: int, *, by: str | None = None) -> dict[str, Any]:
        """Acknowledge a pending or firing alert; the alert as it is now."""
        ...

    async def silence(self, matchers: Mapping[str, str], *, duration: str,
                      comment: str = "") -> dict[str, Any]:
        """Silence the alerts whose labels match every matcher (globs) for
        ``duration`` (``"1h"``); the silence."""
        ...

    async def aclose(self) -> None:
        """Let go of what the client holds."""
        ...


class AgentAlertClient:
    """An agent's alerts, through ``/api/v1/alerts`` on the environment's client.

    Examples
    --------
    >>> client = AgentAlertClient(env)                                  # doctest: +SKIP
    >>> state = await client.read()                                     # doctest: +SKIP
    >>> await client.acknowledge(state.alerts[0]["id"])                 # doctest: +SKIP
    """

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.where = f"agent {env.name}"

    async def _call(self, method: str, path: str, body: Any = None,
                    timeout: float | None = None) -> Any:
        from .._exceptions import EngineProtocolError
        from ..engine._client import body_of, decode_json

        client = self.env.client
        # Unversioned: /api/v1 is the agent's own API, not the Engine API it passes on.
        response = await client._request(method, path, json_body=body, versioned=False,
                                         timeout=timeout)
        answer = decode_json(body_of(response), endpoint=client.url, method=method,
                             path=path.split("?", 1)[0])
        if not isinstance(answer, dict):
            raise EngineProtocolError(f"{method} {path} answered {str(answer)[:80]!r}, not "
                                      "a JSON object", endpoint=client.url)
        return answer

    async def read(self, *, after: int = 0, wait: float = 0.0) -> AlertFeedState:
        query = f"?after={int(after)}&wait={wait:g}" if wait > 0 else ""
        # The long poll holds the answer up to ``wait``: allow that, and a margin.
        answer = await self._call("GET", _PREFIX + query,
                                  timeout=wait + 10.0 if wait > 0 else None)
        return AlertFeedState(enabled=bool(answer.get("enabled", False)),
                              seq=int(answer.get("seq") or 0),
                              alerts=list(answer.get("alerts") or []),
                              silences=list(answer.get("silences") or []))

    async def acknowledge(self, alert_id: int, *, by: str | None = None) -> dict[str, Any]:
        body = {"by": by} if by else None
        result: dict[str, Any] = await self._call("POST", f"{_PREFIX}/{int(alert_id)}/ack",
                                                  body)
        return result

    async def silence(self, matchers: Mapping[str, str], *, duration: str,
                      comment: str = "") -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", f"{_PREFIX}/silences",
            {"matchers": dict(matchers), "duration": duration, "comment": comment})
        return result

    async def aclose(self) -> None:
        """Nothing to close: the environment belongs to the caller."""

    def __repr__(self) -> str:
        return f"<AgentAlertClient {self.env.name}>"


class LocalAlertClient:
    """Alerts evaluated on this machine (``ghostpanel metrics collect``), from the
    alert state file next to the metrics store.

    Parameters
    ----------
    path
        The state file (``alerts.sqlite3``) or the metrics folder holding it; None for
        the default metrics folder under ``GHOSTPANEL_HOME``.
    environment
        Only this environment's alerts (None: all in the file).
    """

    def __init__(self, path: Path | str | None = None, *,
                 environment: str | None = None) -> None:
        if path is None:
            from ._store import default_metrics_dir

            path = default_metrics_dir()
        file = Path(path)
        self.file = file if file.suffix in (".sqlite3", ".db") else file / STATE_FILE
        self.environment = environment
        self.where = f"local store {self.file}"
        self._state: AlertState | None = None

    def _open(self) -> AlertState:
        from ._alert_state import AlertState

        if self._state is None:
            self._state = AlertState(self.file)
        return self._state

    def _mine(self, alert: dict[str, Any] | None) -> bool:
        return alert is not None and (self.environment is None
                                      or alert.get("environment") == self.environment)

    async def read(self, *, after: int = 0, wait: float = 0.0) -> AlertFeedState:
        # No process to wake us here: the feed's own interval is the wait.
        def read() -> AlertFeedState:
            state = self._open()
            now = time.time()
            return AlertFeedState(
                enabled=True, seq=state.seq,
                alerts=[a for a in state.alerts(now=now) if self._mine(a)],
                silences=[s.as_dict() for s in state.silences(now=now)])

        return await asyncio.to_thread(read)

    async def acknowledge(self, alert_id: int, *, by: str | None = None) -> dict[str, Any]:
        def ack() -> dict[str, Any] | None:
            state = self._open()
            if not self._mine(state.alert(alert_id)):
                return None
            return state.acknowledge(alert_id, by or _user())

        alert = await asyncio.to_thread(ack)
        if alert is None:
            # KeyError, as a lookup in a mapping: the agent answers 404 instead.
            raise KeyError(f"no alert {alert_id} in {self.file}")
        return alert

    async def silence(self, matchers: Mapping[str, str], *, duration: str,
                      comment: str = "") -> dict[str, Any]:
        from ._alert_rules import parse_duration

        seconds = parse_duration(duration, what="duration")

        def add() -> dict[str, Any]:
            now = time.time()
            return self._open().add_silence(matchers, now + seconds, starts_at=now,
                                             comment=comment, created_by=_user()).as_dict()

        return await asyncio.to_thread(add)

    async def aclose(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def __repr__(self) -> str:
        return f"<LocalAlertClient {self.file}>"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return "notebook"


def alert_client_for(env: Environment | None = None, *,
                     path: Path | str | None = None) -> AgentAlertClient | LocalAlertClient:
    """The alerts of ``env``: its agent's when it is one, else this machine's file
    (``path``, or the default metrics folder), limited to ``env``'s name if given."""
    if env is not None and env.client.is_agent:
        return AgentAlertClient(env)
    return LocalAlertClient(path, environment=None if env is None else env.name)
