"""Walks over a Boltfile's data, iterative so that no depth can exhaust the call stack.

:func:`same_data` compares data as TOML means it, not as Python's ``==`` does: TOML has
``nan`` floats, and ``nan != nan`` in Python: a plain ``==`` would call a file
holding one different from itself, and ``fmt`` and the edits, which check that what
they write reads back as the same data, would refuse it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["nesting_depth", "same_data"]


def same_data(left: Any, right: Any) -> bool:
    """Whether two values parsed from TOML hold the same data, ``nan`` equal to ``nan``.

    Iterative (its own stack), so the depth of the data does not matter.

    Examples
    --------
    >>> nan = float("nan")
    >>> same_data({"x": [nan, 1]}, {"x": [nan, 1]}), {"x": [nan]} == {"x": [float("nan")]}
    (True, False)
    >>> same_data({"x": [1, 2]}, {"x": [1]}), same_data({"x": {}}, {"x": []})
    (False, False)
    """
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, dict) or isinstance(b, dict):
            if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list) or isinstance(b, list):
            if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, float) and isinstance(b, float) and math.isnan(a):
            if not math.isnan(b):
                return False
        elif a != b:
            return False
    return True


def nesting_depth(value: Any) -> int:
    """How many lists and mappings deep ``value`` goes (0 for a scalar), iteratively.

    Examples
    --------
    >>> nesting_depth("a"), nesting_depth([1, {"a": [2]}]), nesting_depth({})
    (0, 3, 1)
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, Mapping):
            pending.extend((child, depth + 1) for child in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list | tuple):
            pending.extend((child, depth + 1) for child in item)
            deepest = max(deepest, depth + 1)
    return deepest
