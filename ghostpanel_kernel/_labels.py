"""``KEY=VALUE`` text, read in one place: labels (``--label``), engine filters, text boxes.

The rules are docker's for ``--label``: the first ``=`` splits, so a value may hold
more (``url=http://x/?a=b``) or be empty (``flag=``); a key may not be empty. Spaces
around the key and the value are dropped: in ``"tier = db"`` they are layout, and an
engine filter with a stray space would match nothing without saying so.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["parse_labels", "parse_labels_text", "split_key_value"]


def split_key_value(item: str, *, what: str = "label") -> tuple[str, str]:
    """``"region=us-east"`` -> ``("region", "us-east")``.

    Parameters
    ----------
    item
        One ``KEY=VALUE``.
    what
        What the item is, for the error message (``"label"``, ``"filter"``).

    Raises
    ------
    ValueError
        No ``=``, or nothing but spaces before it.

    Examples
    --------
    >>> split_key_value("label=app=web", what="filter")
    ('label', 'app=web')
    """
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{what} {item.strip()!r} is not KEY=VALUE (e.g. region=us-east)")
    return key, value.strip()


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings (as ``--label`` options give them) into a dict.

    A later item wins over an earlier one with the same key; a value may be empty.

    Raises
    ------
    ValueError
        An item has no ``=`` or an empty key.

    Examples
    --------
    >>> parse_labels(["region=us-east", "tier=gpu"])
    {'region': 'us-east', 'tier': 'gpu'}
    """
    return dict(split_key_value(item) for item in items)


def parse_labels_text(text: str) -> dict[str, str]:
    """Labels typed in one box: ``"team=web, tier = db"``; commas or newlines separate.

    Blank items (a trailing comma, an empty line) are skipped.

    Raises
    ------
    ValueError
        An item has no ``=`` or an empty key.

    Examples
    --------
    >>> parse_labels_text("team=web, tier = db\\n")
    {'team': 'web', 'tier': 'db'}
    """
    return parse_labels(item for item in text.replace("\n", ",").split(",") if item.strip())
