"""``AuditLog``: the gateway's audit log as a table, with filters, a chain check and CSV.

The rows come from an :class:`~ghostpanel_kernel.gateway._audit_source.AuditSource`:
inside a hub session the gateway's ``/api/v1/audit`` (hub admins only), on the
gateway's machine the store itself, which can also check the hash chain ("Verify
chain"). The widget only shows what the source gives: filtering by user, environment
and time is the source's (the gateway's query, the store's SQL); by result it is done
here, on the rows fetched. See ``docs/gateway-client.md``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import html
import io
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import ipywidgets
from traitlets import Bool, Float, Int, TraitError, Unicode, validate

from ghostpanel_kernel.gateway._audit_source import AuditSource
from ghostpanel_kernel.gateway._client import AuditEntry, parse_time

from ._base import LiveBox
from ._live_table import running_loop, tabulator_view
from ._status import StatusLine

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "RESULTS", "AuditLog", "parse_since"]

_log = logging.getLogger("ghostpanel_widgets")

#: The table's columns, in order.
COLUMNS: Final = ("time", "user", "environment", "action", "target", "result", "status")
#: The results an entry may have ("" in the filter: any).
RESULTS: Final = ("allowed", "denied", "failed")
_RELATIVE = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime | None:
    """The moment a "since" filter names: ``""`` (none), ``15m``/``2h``/``7d`` ago, or
    an ISO 8601 time (naive means UTC).

    Raises
    ------
    ValueError
        Neither form.

    Examples
    --------
    >>> parse_since("2h", now=datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc)
    >>> parse_since("2026-12-07T09:30")
    datetime.datetime(2026, 12, 7, 9, 30, tzinfo=datetime.timezone.utc)
    """
    if not text.strip():
        return None
    relative = _RELATIVE.fullmatch(text)
    if relative:
        ago = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) - ago
    moment = parse_time(text.strip())
    if moment is None:
        raise ValueError(f"since {text.strip()!r} is neither a time ago (15m, 2h, 7d) nor "
                         "an ISO 8601 time (2026-12-07T09:30)")
    return moment


def _time_text(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _row(entry: AuditEntry) -> list[str]:
    return [_time_text(entry.time), entry.user, entry.environment, entry.action,
            entry.target, entry.result, "" if entry.status is None else str(entry.status)]


def _frame(entries: Sequence[AuditEntry]) -> pd.DataFrame:
    """The table's frame: text columns (an empty frame keeps its column types)."""
    import pandas as pd  # here: importing the package must not import pandas

    rows = [_row(entry) for entry in entries]
    return pd.DataFrame({column: pd.Series([row[i] for row in rows], dtype="str")
                         for i, column in enumerate(COLUMNS)}, columns=list(COLUMNS))


def entries_csv(entries: Sequence[AuditEntry]) -> str:
    """The entries as CSV (every field, times in ISO 8601 UTC), a header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sequence", *COLUMNS, "request_id", "detail"])
    for entry in entries:
        moment = "" if entry.time is None else entry.time.astimezone(UTC).isoformat()
        writer.writerow(["" if entry.sequence is None else entry.sequence, moment,
                         entry.user, entry.environment, entry.action, entry.target,
                         entry.result, "" if entry.status is None else entry.status,
                         entry.request_id, entry.detail or ""])
    return out.getvalue()


class AuditLog(LiveBox):
    """Who did what, where, and whether the gateway let them: the audit log's entries.

    Parameters
    ----------
    source
        Where the log is read (:class:`GatewayAuditSource` in a hub,
        :class:`LocalAuditSource` on the gateway's machine). None: the one
        :func:`~ghostpanel_kernel.gateway._audit_source.audit_source_for_session`
        finds (an error in the status line when there is none).
    limit
        The most entries one read fetches (the gateway's maximum is 1000).
    refresh_interval
        Seconds between two reads while :attr:`live` is on.
    live
        Read again every ``refresh_interval`` seconds.

    Examples
    --------
    >>> from ghostpanel_kernel.gateway._audit_source import audit_source_for_session
    >>> AuditLog(audit_source_for_session())                          # doctest: +SKIP
    """

    user = Unicode("", help="Only this user's entries ('' for every user).").tag(sync=True)
    environment = Unicode("", help="Only this environment's entries ('' for all)."
                          ).tag(sync=True)
    result = Unicode("", help="Only entries with this result: allowed, denied, failed "
                              "('' for all).").tag(sync=True)
    since = Unicode("", help="Only entries since then: 15m, 2h, 7d ago, or an ISO 8601 "
                             "time ('' for all).").tag(sync=True)
    _reading = "Reading the audit log"
    _following = "Reading the audit log live"

    live = Bool(True, help="Read the log again every refresh_interval seconds."
                ).tag(sync=True)
    refresh_interval = Float(10.0, help="Seconds between two reads while live."
                             ).tag(sync=True)
    count = Int(0, read_only=True, help="Entries shown after the filters.").tag(sync=True)

    def __init__(self, source: AuditSource | None = None, *, limit: int = 500,
                 **kwargs: Any) -> None:
        if source is None:
            from ghostpanel_kernel.gateway._audit_source import audit_source_for_session

            source = audit_source_for_session()
        self.source = source
        self.limit = limit
        self.entries: list[AuditEntry] = []  # as last read, before the result filter
        self._tasks: set[asyncio.Task[Any]] = set()
        self._live_task: asyncio.Task[None] | None = None
        self._closed = False

        self.status = StatusLine()
        # continuous_update=False: a read when the field is left, not at each keystroke.
        self.user_field = ipywidgets.Text(description="User", placeholder="any",
                                          continuous_update=False)
        self.environment_field = ipywidgets.Text(description="Environment", placeholder="any",
                                                 continuous_update=False,
                                                 style={"description_width": "initial"})
        self.result_field = ipywidgets.Dropdown(description="Result",
                                                options=[("any", ""), *[(r, r) for r in RESULTS]])
        self.since_field = ipywidgets.Text(description="Since", placeholder="1h, 7d or ISO time",
                                           continuous_update=False)
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.live_toggle = ipywidgets.ToggleButton(description="Live", icon="play",
                                                   tooltip="Read the log again now and then")
        self.verify_button = ipywidgets.Button(description="Verify chain", icon="link")
        self.download = ipywidgets.HTML()
        self.verdict = ipywidgets.HTML()
        self.table, self.table_view = tabulator_view(_frame([]), page_size=50)
        super().__init__(**kwargs)
        self.add_class("gp-audit-log")
        if source is not None and not source.can_verify:
            self.verify_button.disabled = True
            self.verify_button.tooltip = ("The chain is checked where the store is: "
                                          "`ghostpanel audit verify` on the gateway's host")
        # Widget first: link() copies the first side's value to the second, and the
        # traits may have been given as keyword arguments.
        for field, trait in ((self.user_field, "user"),
                             (self.environment_field, "environment"),
                             (self.result_field, "result"), (self.since_field, "since"),
                             (self.live_toggle, "live")):
            ipywidgets.link((self, trait), (field, "value"))
        for trait in ("user", "environment", "since"):
            self.observe(lambda _: self.reload(), trait)
        self.observe(lambda _: self._show(), "result")
        self.observe(lambda _: self._restart_live(), "live")
        self.refresh_button.on_click(lambda _: self.reload())
        self.verify_button.on_click(lambda _: self._spawn(self.verify()))
        self.children = [
            ipywidgets.HBox([self.user_field, self.environment_field, self.result_field,
                             self.since_field], layout=ipywidgets.Layout(flex_flow="row wrap")),
            ipywidgets.HBox([self.refresh_button, self.live_toggle, self.verify_button,
                             self.download], layout=ipywidgets.Layout(align_items="center")),
            self.status, self.verdict, self.table_view]
        if source is None:
            self.status.error("No audit log to show: in a hub, the audit log is for hub "
                              "admins; elsewhere, the store holds no audit entries yet.")
            return
        self.reload()
        self._restart_live()

    @validate("result")
    def _valid_result(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and value not in RESULTS:
            raise TraitError(f"result must be one of {', '.join(RESULTS)} or '', "
                             f"not {value!r}")
        return value

    # -- reading
    def _has_source(self) -> bool:
        return self.source is not None

    async def refresh(self) -> list[AuditEntry] | None:
        """Read the entries the filters select; None (the error shown) on failure."""
        if self.source is None:
            return None
        with self.status.reporting("Reading the audit log"):
            since = parse_since(self.since)
            entries = await self.source.entries(
                user=self.user.strip() or None, environment=self.environment.strip() or None,
                since=since, limit=self.limit)
            self.entries = entries
            self._show()
            self.status.clear()
            return entries
        return None

    @property
    def shown(self) -> list[AuditEntry]:
        """The entries the table shows: those read, with the result filter applied."""
        return [entry for entry in self.entries
                if not self.result or entry.result == self.result]

    def _show(self) -> None:
        if self._closed:
            return
        shown = self.shown
        self.table.value = _frame(shown)
        self.set_trait("count", len(shown))
        # A data: link: works in JupyterLab, the classic notebook and Voila alike, with
        # nothing served by the kernel.
        payload = base64.b64encode(entries_csv(shown).encode()).decode()
        self.download.value = (f'<a download="ghostpanel-audit.csv" '
                               f'href="data:text/csv;base64,{payload}">Download CSV</a> '
                               f"({len(shown)} entries)")

    @property
    def frame(self) -> pd.DataFrame:
        """The table as shown (a copy)."""
        shown: pd.DataFrame = self.table.value
        return shown.copy()

    def to_csv(self) -> str:
        """The shown entries as CSV (what Download CSV gives)."""
        return entries_csv(self.shown)

    # -- the chain
    async def verify(self) -> bool | None:
        """Check the hash chain (local store only); the verdict is shown above the table."""
        if self.source is None:
            return None
        with self.status.reporting("Verify chain"):
            result = await self.source.verify()
            if result.ok:
                self.verdict.value = (f'<span style="color:#1b7f3b">&#x2714; The chain holds: '
                                      f"{result.checked} entries checked.</span>")
            else:
                self.verdict.value = (
                    f'<span style="color:#b00020">&#x2716; The chain is broken at entry '
                    f"{html.escape(str(result.first_bad))}: "
                    f"{html.escape(result.reason or 'no reason given')} "
                    f"({result.checked} entries read).</span>")
            return bool(result.ok)
        return None

    # -- live
    def _release(self) -> None:
        """Close the audit source (on close, after the tasks are cancelled)."""
        source, self.source = self.source, None
        if source is not None:
            loop = running_loop("Closing the audit source")
            if loop is not None:
                loop.create_task(source.aclose())
