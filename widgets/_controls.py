"""Plain-ipywidgets building blocks of the engine views (they render offline in Voila
and JupyterLab alike):

- :class:`RowList`, a table whose rows can be selected (a monospace header over an
  ``ipywidgets.Select``);
- :class:`Confirmation`, the "Remove X? Confirm / Cancel" bar of destructive actions.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import ipywidgets

__all__ = ["Confirmation", "RowList"]


# A Select's options collapse spaces; padding with no-break spaces keeps the columns.
_NBSP = "\u00a0"
_MAX_CELL = 48


def _fit(text: str, width: int) -> str:
    text = text if len(text) <= width else text[:width - 1] + "\u2026"
    return text + _NBSP * (width - len(text))


class RowList(ipywidgets.VBox):
    """A table whose rows can be selected: a header over a ``Select`` of padded rows.

    Parameters
    ----------
    columns
        The column names.
    empty
        What to say when there are no rows.
    rows
        How many rows show at once.

    Examples
    --------
    >>> table = RowList(["Name", "Size"])
    >>> table.show([("a", ["a.txt", "3 B"]), ("b", ["b.txt", "1.0 KiB"])])
    >>> table.value = "b"
    >>> table.rows
    [['a.txt', '3 B'], ['b.txt', '1.0 KiB']]
    """

    _STYLE = "<style>.gp-rows select { font-family: monospace; }</style>"

    def __init__(self, columns: Sequence[str], *, empty: str = "Nothing here.",
                 rows: int = 12, **kwargs: Any) -> None:
        self.columns = list(columns)
        self.empty = empty
        self._rows: list[list[str]] = []
        self._keys: list[Hashable] = []
        self._max_rows = rows
        self.header = ipywidgets.HTML()
        self.select = ipywidgets.Select(options=[], rows=3,
                                        layout=ipywidgets.Layout(width="100%"))
        super().__init__([self.header, self.select], **kwargs)
        self.add_class("gp-rows")
        self.show([])

    @property
    def value(self) -> Hashable | None:
        """The key of the selected row, ``None`` when none is."""
        key: Hashable | None = self.select.value
        return key

    @value.setter
    def value(self, key: Hashable | None) -> None:
        self.select.value = key

    @property
    def row_keys(self) -> list[Hashable]:
        """The rows' keys, in order."""
        return list(self._keys)

    @property
    def rows(self) -> list[list[str]]:
        """The rows' cells as plain text, in order."""
        return [list(row) for row in self._rows]

    def show(self, rows: Sequence[tuple[Hashable, Sequence[str]]]) -> None:
        """Show ``(key, cells)`` rows; the selection stays on its key if it is still there."""
        self._keys = [key for key, _ in rows]
        self._rows = [[str(cell) for cell in cells] for _, cells in rows]
        widths = [min(_MAX_CELL, max([len(name), *(len(r[i]) for r in self._rows)]))
                  for i, name in enumerate(self.columns)]
        header = "  ".join(name.ljust(width) for name, width in zip(self.columns, widths,
                                                                      strict=True))
        note = "" if rows else f"<i>{html.escape(self.empty)}</i>"
        self.header.value = (f"{self._STYLE}<pre style=\"margin: 0; font-weight: bold\">"
                             f"{html.escape(header.rstrip())}</pre>{note}")
        options = [(_NBSP * 2).join(_fit(cell, width) for cell, width in zip(
            row, widths, strict=True)).rstrip(_NBSP) for row in self._rows]
        # Labels must be unique for the Select; rows that render alike get a mark.
        seen: dict[str, int] = {}
        labelled = []
        for label, key in zip(options, self._keys, strict=True):
            seen[label] = seen.get(label, 0) + 1
            labelled.append((label if seen[label] == 1 else f"{label} ({seen[label]})", key))
        previous = self.select.value
        self.select.options = labelled
        self.select.rows = max(3, min(self._max_rows, len(labelled)))
        self.select.value = previous if previous in self._keys else None


class Confirmation(ipywidgets.HBox):
    """The question a destructive action asks first: "Remove X?" Confirm / Cancel.

    Hidden until :meth:`ask`; Confirm runs the action given there, Cancel forgets it.

    Examples
    --------
    >>> bar = Confirmation()
    >>> done = []
    >>> bar.ask("Remove volume data?", lambda: done.append(1))
    >>> bar.question
    'Remove volume data?'
    >>> bar.confirm_button.click(); done, bar.question
    ([1], '')
    """

    def __init__(self, **kwargs: Any) -> None:
        self.label = ipywidgets.HTML()
        self.confirm_button = ipywidgets.Button(description="Confirm", button_style="danger",
                                                icon="check")
        self.cancel_button = ipywidgets.Button(description="Cancel", icon="times")
        super().__init__([self.label, self.confirm_button, self.cancel_button], **kwargs)
        self.add_class("gp-confirmation")
        self._question = ""
        self._action: Callable[[], object] | None = None
        self.confirm_button.on_click(lambda _: self._confirmed())
        self.cancel_button.on_click(lambda _: self.dismiss())
        self.layout.display = "none"

    @property
    def question(self) -> str:
        """The question shown, ``""`` when none is."""
        return self._question

    def ask(self, question: str, action: Callable[[], object]) -> None:
        """Show ``question``; Confirm will call ``action``."""
        self._question, self._action = question, action
        self.label.value = (f'<b style="color: #b00020">{html.escape(question)}</b>'
                            "&nbsp;")
        self.layout.display = "flex"

    def dismiss(self) -> None:
        """Hide the question without acting."""
        self._question, self._action = "", None
        self.label.value = ""
        self.layout.display = "none"

    def _confirmed(self) -> None:
        action = self._action
        self.dismiss()
        if action is not None:
            action()
