"""``ResourceGrid``: what the image, volume and network grids share.

One environment's resources in a Panel ``Tabulator`` (:func:`~._live_table.tabulator_view`:
offline, remote pagination, columns sorted by a click on their header), a filter box,
a tick box per row, Refresh, and Remove for every ticked row at once: after a
confirmation that names them all, each is removed in turn, and what the engine refused
(an image a container uses, the default network) is said in the status line beside
what went, without stopping the others.

A subclass names its columns, reads its rows (:meth:`ResourceGrid._read`, one
``pandas.DataFrame`` with a ``key`` column: what :meth:`ResourceGrid._remove_one` is
given), and adds its own controls (:meth:`ResourceGrid._tools`,
:meth:`ResourceGrid._extras`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets
from traitlets import Unicode

from ghostpanel_kernel.engine import EngineAPIError, Environment

from ._base import EngineWidget
from ._controls import Confirmation
from ._format import plural
from ._live_table import tabulator_view
from ._status import describe_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RemoveReport", "ResourceGrid"]

#: How many names a confirmation spells out before it says "and N more".
_NAMED = 8


@dataclass(frozen=True)
class RemoveReport:
    """What a bulk remove did: the keys removed, and the engine's reason for each one
    it refused."""

    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _names(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:_NAMED])
    return shown + (f" and {len(labels) - _NAMED} more" if len(labels) > _NAMED else "")


class ResourceGrid(EngineWidget):
    """Base of the resource grids: sortable, filterable, ticked rows removed together.

    Parameters
    ----------
    env
        The environment shown (``ghostpanel_kernel.connect(...)``).
    page_size
        Rows per page of the table.
    """

    #: What a row is, singular and plural ("image", "images").
    NOUN: ClassVar[tuple[str, str]] = ("item", "items")
    #: The shown columns, field -> title, in order (the ``key`` column is hidden).
    COLUMNS: ClassVar[Mapping[str, str]] = {}
    #: Further fields of the rows, not shown (what a subclass's own filters read).
    HIDDEN: ClassVar[Sequence[str]] = ()
    #: The fields the filter box searches.
    SEARCHED: ClassVar[Sequence[str]] = ()

    text_filter = Unicode("", help="Show only rows containing this text (case-insensitive)."
                          ).tag(sync=True)

    def __init__(self, env: Environment, *, page_size: int = 25, **kwargs: Any) -> None:
        import pandas as pd

        many = self.NOUN[1]
        self._all = pd.DataFrame({name: pd.Series([], dtype=object)
                                  for name in self._fields()})
        self.filter_field = ipywidgets.Text(placeholder=f"filter {many}...",
                                            continuous_update=True,
                                            layout=ipywidgets.Layout(width="220px"))
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh",
                                                tooltip=f"List the {many} again")
        self.remove_button = ipywidgets.Button(description="Remove", icon="trash",
                                               button_style="danger",
                                               tooltip=f"Remove the ticked {many} (asks "
                                                       "first)")
        self.count_label = ipywidgets.Label()
        self.confirmation = Confirmation()
        self.table, self.table_view = tabulator_view(
            self._all, selectable="checkbox", page_size=page_size,
            hidden_columns=["key", *self.HIDDEN], titles=dict(self.COLUMNS),
            formatters=self._formatters())
        super().__init__(env, **kwargs)
        self.add_class("gp-resource-grid")
        self.filter_field.observe(lambda change: setattr(self, "text_filter", change["new"]),
                                  "value")
        self.observe(lambda _: self._show(), "text_filter")
        self.table.param.watch(lambda _: self._count(), "selection")
        self.refresh_button.on_click(lambda _: self._start("Refresh", self.refresh))
        self.remove_button.on_click(lambda _: self._ask_remove())
        self.toolbar = ipywidgets.HBox([self.refresh_button, self.remove_button,
                                        *self._tools(), self.filter_field,
                                        self.count_label],
                                       layout=ipywidgets.Layout(align_items="center",
                                                                flex_flow="row wrap"))
        self.children = [self.toolbar, self.confirmation, self.status, self.table_view,
                         *self._extras()]
        self._count()
        self._start("Refresh", self.refresh)

    # -- what a subclass says
    @classmethod
    def _fields(cls) -> list[str]:
        """Every column of the rows, in order."""
        return ["key", *cls.COLUMNS, *cls.HIDDEN]

    def _formatters(self) -> dict[str, Any]:
        """Panel ``formatters`` of the table (sizes as bytes...)."""
        return {}

    def _tools(self) -> list[ipywidgets.Widget]:
        """Controls of the toolbar after Remove."""
        return []

    def _extras(self) -> list[ipywidgets.Widget]:
        """Rows of controls below the table."""
        return []

    def _filter(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows a subclass's own filters keep (the dangling filter...)."""
        return frame

    async def _read(self) -> pd.DataFrame:
        """The rows, from the engine: a ``key`` column and :attr:`COLUMNS`."""
        raise NotImplementedError

    async def _remove_one(self, key: str, *, force: bool) -> None:
        """Remove the resource of row ``key``."""
        raise NotImplementedError

    def _label(self, key: str) -> str:
        """How row ``key`` is named to the user (its first column)."""
        rows = self._all[self._all["key"] == key]
        first = next(iter(self.COLUMNS), "key")
        return str(rows[first].iloc[0]) if len(rows) else key

    # -- the table
    def _controls(self) -> Sequence[ipywidgets.Widget]:
        return (self.refresh_button, self.remove_button)

    @property
    def frame(self) -> pd.DataFrame:
        """Every row as last read (a copy), filters not applied."""
        return self._all.copy()

    def _order(self) -> list[int]:
        """Positions of the rows shown in ``table.value``, as the table sorts them."""
        view = self.table.current_view
        rows = len(self.table.value)
        if view is None or len(view) != rows:
            return list(range(rows))
        return [int(position) for position in view.index]

    @property
    def row_keys(self) -> list[str]:
        """The keys of the rows shown (the filters applied), in the table's order (as
        sorted by a click on a column's header)."""
        keys = list(self.table.value["key"])
        return [str(keys[position]) for position in self._order()]

    @property
    def selected(self) -> list[str]:
        """The keys of the ticked rows, in the table's order."""
        keys = list(self.table.value["key"])
        ticked = set(self.table.selection)
        return [str(keys[position]) for position in self._order() if position in ticked]

    def select(self, keys: Iterable[Hashable]) -> None:
        """Tick the rows of ``keys`` (and only them) among the rows shown."""
        wanted = {str(key) for key in keys}
        self.table.selection = [position for position, key in
                                enumerate(self.table.value["key"]) if str(key) in wanted]

    def row(self, key: str) -> dict[str, Any]:
        """The row of ``key`` as last read (every column)."""
        rows = self._all[self._all["key"] == key]
        if not len(rows):
            raise KeyError(key)
        return {str(name): value for name, value in rows.iloc[0].items()}

    def _show(self) -> None:
        """Put the rows the filters keep in the table, the ticks kept by key."""
        ticked = set(self.selected)
        frame = self._filter(self._all)
        text = self.text_filter.strip().lower()
        if text and len(frame):
            found = frame[list(self.SEARCHED)].astype(str).apply(
                lambda column: column.str.lower().str.contains(text, regex=False))
            frame = frame[found.any(axis=1)]
        frame = frame.reset_index(drop=True)
        self.table.value = frame
        self.table.selection = [position for position, key in enumerate(frame["key"])
                                if str(key) in ticked]
        page_size = self.table.page_size or 25
        pages = max(-(-len(frame) // page_size), 1)
        if self.table.page > pages:
            self.table.page = pages
        self._count()

    def _count(self) -> None:
        _, many = self.NOUN
        total, shown = len(self._all), len(self.table.value)
        text = plural(total, self.NOUN[0]) if shown == total else \
            f"{shown} of {total} {many} shown"
        ticked = len(self.table.selection)
        self.count_label.value = text + (f", {ticked} ticked" if ticked else "")

    async def refresh(self) -> pd.DataFrame | None:
        """Read the rows again; ``None`` (and the error shown) if the engine failed."""
        with self.status.reporting(f"Listing {self.NOUN[1]}"):
            self._all = await self._read()
            self._show()
            self.status.clear()  # what it said is no longer current
            return self.frame
        return None

    # -- removing
    def _ask_remove(self) -> None:
        keys = self.selected
        singular, many = self.NOUN
        if not keys:
            self.status.warning(f"Tick the {many} to remove first.")
            return
        labels = [self._label(key) for key in keys]
        self.confirmation.ask(f"Remove {plural(len(keys), singular)}: {_names(labels)}?",
                              lambda: self._start("Remove", lambda: self.remove(keys)))

    async def remove(self, keys: Iterable[str] | None = None, *,
                     force: bool = False) -> RemoveReport | None:
        """Remove the rows of ``keys`` (default: the ticked ones), each in turn.

        What the engine refuses is reported and the others still go; the status line
        names both. ``None`` when nothing could be tried (no key, or the listing
        afterwards failed: its error is shown).
        """
        many = self.NOUN[1]
        keys = list(keys) if keys is not None else self.selected
        with self.status.reporting(f"Remove {many}"):
            if not keys:
                raise ValueError(f"tick the {many} to remove first")
            labels = {key: self._label(key) for key in keys}
            report = RemoveReport()
            for key in keys:
                try:
                    await self._remove_one(key, force=force)
                except EngineAPIError as error:  # the engine said no: the others still go
                    report.refused[key] = describe_error(error)
                else:
                    report.removed.append(key)
            if await self.refresh() is not None:
                self._say(report, labels)
            return report
        return None

    def _say(self, report: RemoveReport, labels: Mapping[str, str]) -> None:
        singular, _ = self.NOUN
        removed = [labels[key] for key in report.removed]
        said = (f"Removed {plural(len(removed), singular)}: {_names(removed)}."
                if removed else f"Removed no {self.NOUN[1]}.")
        if not report.refused:
            self.status.success(said)
            return
        refused = "; ".join(f"{labels[key]}: {reason}"
                            for key, reason in report.refused.items())
        text = f"{said} The engine refused {refused}"
        (self.status.warning if removed else self.status.error)(text)
