"""Plain-text formatting the engine views share: sizes, engine times, and the small
HTML tables of the inspectors.

No ipywidgets here: these are pure functions, testable and importable on their own.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from ghostpanel_kernel._units import human_size
from ghostpanel_kernel.engine._times import engine_time

__all__ = ["format_size", "format_time", "html_table", "plural"]


def format_size(size: int | float | None) -> str:
    """Bytes in binary units with a space, as the widgets show sizes (``"1.5 KiB"``).

    The kernel's :func:`~ghostpanel_kernel._units.human_size` does the work, so the
    widgets, the CLI and the pull bar round alike.

    Examples
    --------
    >>> format_size(0), format_size(1536), format_size(20 * 1024 ** 2), format_size(None)
    ('0 B', '1.5 KiB', '20 MiB', '')
    """
    return human_size(size, binary=True, space=True)


def format_time(value: int | float | str | None) -> str:
    """An engine timestamp (seconds since the epoch, or RFC 3339 text) as UTC minutes.

    Go's zero time (``0001-01-01T00:00:00Z``), 0, and text that is not a time read as
    "never": ``""``.

    Examples
    --------
    >>> format_time(1700000000), format_time("2024-05-01T12:30:59.123456789Z")
    ('2023-11-14 22:13 UTC', '2024-05-01 12:30 UTC')
    >>> format_time("0001-01-01T00:00:00Z")
    ''
    """
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, tz=UTC) if value else None
    else:
        moment = engine_time(value)
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_TABLE = 'style="border-collapse: collapse; margin: 2px 0"'
_CELL = 'style="text-align: left; padding: 2px 14px 2px 0; vertical-align: top"'


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
               empty: str = "None.", css_class: str = "") -> str:
    """Rows of plain text (escaped here) as an HTML table; ``empty`` when there are none.

    Examples
    --------
    >>> "<code>a&lt;b</code>" in html_table(["Key"], [["a<b"]])
    True
    """
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}><code>{html.escape(str(cell))}</code></td>"
                         for cell in row) + "</tr>" for row in rows)
    cls = f' class="{css_class}"' if css_class else ""
    if not body:
        return f"<div{cls}><i>{html.escape(empty)}</i></div>"
    head = "".join(f"<th {_CELL}>{html.escape(name)}</th>" for name in headers)
    return f"<table {_TABLE}{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an ``s`` unless there is one.

    Examples
    --------
    >>> plural(1, "image"), plural(3, "layer")
    ('1 image', '3 layers')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"
