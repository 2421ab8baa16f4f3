"""``AlertFeed``: active and recent alerts, with acknowledge and silence, kept live.

The rows come from an :class:`~ghostpanel_kernel.metrics._alert_client.AlertClient`:
an agent's ``/api/v1/alerts`` (live through its long poll: a change shows within a
moment, with no polling while nothing happens) or, on a host without an agent, the
alert state that ``ghostpanel metrics collect`` keeps next to the metrics store (read
again every ``refresh_interval`` seconds). Acknowledging and silencing go to the same
place; the feed only shows what the source says (docs/metrics.md, "Alerts").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, validate

from ghostpanel_kernel.metrics._alert_client import (
    AlertClient,
    AlertFeedState,
    alert_client_for,
)

from ._base import LiveBox
from ._live_table import running_loop, tabulator_view
from ._status import StatusLine

if TYPE_CHECKING:
    import pandas as pd

    from ghostpanel_kernel.engine import Environment

__all__ = ["COLUMNS", "SILENCE_DURATIONS", "AlertFeed", "alert_rows", "ordered"]

_log = logging.getLogger("ghostpanel_widgets")

#: The table's columns, in order.
COLUMNS: Final = ("severity", "state", "rule", "container", "environment", "since",
                  "message", "acked", "silenced")
#: The silence durations offered.
SILENCE_DURATIONS: Final = ("15m", "1h", "4h", "1d")
_SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}
_ICONS: Final = {"critical": "\u2716", "warning": "\u26a0", "info": "\u2139"}
#: The longest wait of one long poll of an agent (the route's own limit is 60 s).
_LONG_POLL: Final = 25.0


def _since(alert: dict[str, Any]) -> str:
    """When the alert's current state began: resolved, fired, or pending since."""
    stamp = alert.get("resolved_at") if alert.get("state") == "resolved" else \
        alert.get("fired_at") or alert.get("started_at")
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _active(alert: dict[str, Any]) -> bool:
    return alert.get("state") in ("pending", "firing")


def ordered(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active alerts first (firing before pending, critical before warning), then
    resolved ones; newest first within each."""
    # Two stable sorts: newest first, then by group, which keeps newest first within.
    newest = sorted(alerts, key=_since, reverse=True)
    return sorted(newest, key=lambda a: (not _active(a), a.get("state") != "firing",
                                         _SEVERITY_ORDER.get(str(a.get("severity")), 3)))


def alert_rows(alerts: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The table's rows, in :func:`ordered` order."""
    rows = []
    for alert in ordered(alerts):
        severity = str(alert.get("severity", ""))
        rows.append([f"{_ICONS.get(severity, '')} {severity}".strip(),
                     str(alert.get("state", "")), str(alert.get("rule", "")),
                     str(alert.get("container", "")), str(alert.get("environment", "")),
                     _since(alert), str(alert.get("message", "")),
                     str(alert.get("acked_by") or "") if alert.get("acked") else "",
                     "yes" if alert.get("silenced") else ""])
    return rows


def _frame(alerts: Sequence[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd  # here: importing the package must not import pandas

    rows = alert_rows(alerts)
    return pd.DataFrame({column: pd.Series([row[i] for row in rows], dtype="str")
                         for i, column in enumerate(COLUMNS)}, columns=list(COLUMNS))


class AlertFeed(LiveBox):
    """Active and recent alerts of an agent or of this machine, acknowledged and
    silenced from the notebook.

    Parameters
    ----------
    source
        An :class:`~ghostpanel_kernel.engine.Environment` (its agent's alerts, or this
        machine's for that environment), an ``AlertClient``, or None for every alert
        this machine's metrics folder holds.
    refresh_interval
        Seconds between two reads of a source that cannot wait for changes (the local
        file), and between two long polls' retries after an error.
    live
        Keep the feed up to date (an agent's long poll, or the interval).

    Examples
    --------
    >>> from ghostpanel_kernel import connect
    >>> env = connect("edge-1")                                          # doctest: +SKIP
    >>> feed = AlertFeed(env)                                            # doctest: +SKIP
    >>> feed                                                             # doctest: +SKIP
    >>> await feed.acknowledge(feed.active[0]["id"])                     # doctest: +SKIP
    """

    _reading = "Reading the alerts"
    _following = "Following the alerts"

    live = Bool(True, help="Keep the feed up to date.").tag(sync=True)
    refresh_interval = Float(5.0, help="Seconds between two reads of a source that "
                                       "cannot wait for changes.").tag(sync=True)
    show_resolved = Bool(True, help="Show recently resolved alerts below the active ones."
                         ).tag(sync=True)
    silence_duration = Unicode("1h", help="How long the Silence button silences: "
                                          f"{', '.join(SILENCE_DURATIONS)}.").tag(sync=True)
    active_count = Int(0, read_only=True, help="Pending and firing alerts.").tag(sync=True)
    firing_count = Int(0, read_only=True, help="Firing alerts.").tag(sync=True)

    def __init__(self, source: Environment | AlertClient | None = None, *,
                 refresh_interval: float = 5.0, live: bool = True, **kwargs: Any) -> None:
        from ghostpanel_kernel.engine import Environment

        if source is None or isinstance(source, Environment):
            client: AlertClient = alert_client_for(source)
        else:
            client = source
        self.client: AlertClient | None = client
        self.alerts: list[dict[str, Any]] = []  # as last read, resolved included
        self.enabled = True
        self.seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._live_task: asyncio.Task[None] | None = None
        self._closed = False

        self.status = StatusLine()
        self.summary = ipywidgets.HTML()
        self.picker = ipywidgets.Dropdown(description="Alert", options=[],
                                          layout=ipywidgets.Layout(width="420px"))
        self.ack_button = ipywidgets.Button(description="Acknowledge", icon="check",
                                            tooltip="Stop the alert's reminders (its "
                                                    "resolution is still notified)")
        self.silence_button = ipywidgets.Button(description="Silence", icon="bell-slash",
                                                tooltip="Hold back this rule's alerts on "
                                                        "this container for a while")
        self.duration_picker = ipywidgets.Dropdown(options=list(SILENCE_DURATIONS),
                                                   value="1h",
                                                   layout=ipywidgets.Layout(width="80px"))
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.live_toggle = ipywidgets.ToggleButton(description="Live", icon="pause",
                                                   tooltip="Keep the feed up to date")
        self.resolved_toggle = ipywidgets.Checkbox(description="resolved too", indent=False,
                                                   layout=ipywidgets.Layout(width="120px"))
        self.table, self.table_view = tabulator_view(_frame([]), page_size=20)
        super().__init__(**kwargs)
        self.add_class("gp-alert-feed")
        self.set_trait("refresh_interval", refresh_interval)
        for widget, trait in ((self.live_toggle, "live"),
                              (self.resolved_toggle, "show_resolved"),
                              (self.duration_picker, "silence_duration")):
            ipywidgets.link((self, trait), (widget, "value"))
        self.live = live
        self.observe(lambda _: self._restart_live(), "live")
        self.observe(lambda _: self._show(), "show_resolved")
        self.refresh_button.on_click(lambda _: self.reload())
        self.ack_button.on_click(lambda _: self._act(self._ack_selected()))
        self.silence_button.on_click(lambda _: self._act(self._silence_selected()))
        self.children = [
            self.summary,
            ipywidgets.HBox([self.picker, self.ack_button, self.silence_button,
                             self.duration_picker],
                            layout=ipywidgets.Layout(flex_flow="row wrap",
                                                     align_items="center")),
            ipywidgets.HBox([self.refresh_button, self.live_toggle, self.resolved_toggle],
                            layout=ipywidgets.Layout(align_items="center")),
            self.status, self.table_view]
        self._show()
        self.reload()
        self._restart_live()

    @validate("silence_duration")
    def _valid_duration(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value not in SILENCE_DURATIONS:
            raise TraitError(f"silence_duration must be one of "
                             f"{', '.join(SILENCE_DURATIONS)}, not {value!r}")
        return value

    # -- reading
    def _has_source(self) -> bool:
        return self.client is not None

    async def refresh(self, *, wait: float = 0.0) -> AlertFeedState | None:
        """Read the alerts (with ``wait``: after the next change, at most that long);
        None, the error shown, when the source failed."""
        if self.client is None:
            return None
        with self.status.reporting(f"Reading the alerts ({self.client.where})"):
            state = await self.client.read(after=self.seq, wait=wait)
            if self._closed:
                return state
            self.alerts, self.enabled, self.seq = state.alerts, state.enabled, state.seq
            self._show()
            if state.enabled:
                self.status.clear()
            else:
                self.status.warning(f"No alert rules are evaluated ({self.client.where}): "
                                    "start the agent with --alert-rules FILE.")
            return state
        return None

    @property
    def active(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, as last read."""
        return [alert for alert in self.alerts if _active(alert)]

    @property
    def shown(self) -> list[dict[str, Any]]:
        """The alerts the table shows."""
        return self.alerts if self.show_resolved else self.active

    def _show(self) -> None:
        if self._closed:
            return
        self.table.value = _frame(self.shown)
        active = self.active
        firing = [alert for alert in active if alert.get("state") == "firing"]
        self.set_trait("active_count", len(active))
        self.set_trait("firing_count", len(firing))
        worst = min((_SEVERITY_ORDER.get(str(a.get("severity")), 3) for a in firing),
                    default=None)
        colour = {0: "#b00020", 1: "#b26a00"}.get(worst if worst is not None else 9,
                                                 "#1b7f3b")
        self.summary.value = (f'<b style="color:{colour}">{len(firing)} firing</b>, '
                              f"{len(active) - len(firing)} pending, "
                              f"{len(self.alerts) - len(active)} resolved recently")
        options = [(f"#{a['id']} {a.get('severity', '')} {a.get('rule', '')} on "
                    f"{a.get('container', '')} ({a.get('state', '')})", int(a["id"]))
                   for a in ordered(active) if "id" in a]
        current = self.picker.value
        self.picker.options = options
        values = [value for _, value in options]
        # Keep the user's pick; else the most urgent alert (a Dropdown whose options
        # change selects nothing, and the buttons would then do nothing).
        self.picker.value = current if current in values else (values[0] if values else None)
        disabled = not options
        self.ack_button.disabled = self.silence_button.disabled = disabled

    # -- acting
    def _selected(self) -> dict[str, Any] | None:
        chosen = self.picker.value
        return next((a for a in self.alerts if a.get("id") == chosen), None)

    async def acknowledge(self, alert_id: int) -> dict[str, Any] | None:
        """Acknowledge an alert, then read the feed again; the alert, or None (the
        error shown)."""
        if self.client is None:
            return None
        with self.status.reporting(f"Acknowledging alert {alert_id}"):
            alert = await self.client.acknowledge(alert_id)
            await self.refresh()
            self.status.success(f"Alert {alert_id} acknowledged.")
            return alert
        return None

    async def silence(self, alert: dict[str, Any], duration: str | None = None,
                      ) -> dict[str, Any] | None:
        """Silence ``alert``'s rule on its container (and environment) for ``duration``
        (default :attr:`silence_duration`); the silence, or None (the error shown)."""
        if self.client is None:
            return None
        duration = duration or self.silence_duration
        matchers = {"alertname": str(alert.get("rule", "")),
                    "container": str(alert.get("container", "")),
                    "environment": str(alert.get("environment", ""))}
        with self.status.reporting(f"Silencing {matchers['alertname']}"):
            silence = await self.client.silence(
                matchers, duration=duration,
                comment=f"from the AlertFeed, alert {alert.get('id')}")
            await self.refresh()
            self.status.success(f"{matchers['alertname']} on {matchers['container']} "
                                f"silenced for {duration}.")
            return silence
        return None

    async def _ack_selected(self) -> None:
        alert = self._selected()
        if alert is None:
            self.status.warning("Pick an active alert first.")
            return
        await self.acknowledge(int(alert["id"]))

    async def _silence_selected(self) -> None:
        alert = self._selected()
        if alert is None:
            self.status.warning("Pick an active alert first.")
            return
        await self.silence(alert)

    def _act(self, work: Any) -> None:
        if running_loop("Changing an alert", self.status) is None:
            work.close()
            return
        self._spawn(work)

    # -- live
    async def _follow(self) -> None:
        from ghostpanel_kernel.metrics._alert_client import AgentAlertClient

        waits = isinstance(self.client, AgentAlertClient)
        while not self._closed:
            if waits:
                # The agent answers as soon as something changes: no interval needed.
                if await self.refresh(wait=_LONG_POLL) is None:
                    await asyncio.sleep(self.refresh_interval)  # failed: not in a loop
            else:
                await asyncio.sleep(self.refresh_interval)
                await self.refresh()

    @property
    def frame(self) -> pd.DataFrame:
        """The table as shown (a copy)."""
        shown: pd.DataFrame = self.table.value
        return shown.copy()

    def _release(self) -> None:
        """Let go of the alert source (on close, after the tasks are cancelled)."""
        client, self.client = self.client, None
        if client is not None:
            loop = running_loop("Closing the alert source")
            if loop is not None:
                loop.create_task(client.aclose())
