"""Raw samples as columns in SQLite: one row per sampling round, its values as blobs.

A round of the sampler (every container's metrics at one moment) is stored as one row:
the series ids as packed 32-bit integers and the values as packed 64-bit floats, in
the machine's byte order (little-endian on x86-64 and ARM64, the platforms the agent
runs on). Writing a round is one ``INSERT``; reading a million samples back is a few
thousand ``numpy.frombuffer`` calls instead of a million Python tuples, which is what
keeps history-to-DataFrame under a second (bench/metrics_store.py, docs/metrics.md).
The agent decodes with the stdlib's :mod:`array`, so it needs no numpy.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

__all__ = ["Buckets", "decode", "encode"]

# Packed types: "i" is 32-bit and "d" 64-bit on every platform CPython supports, the
# int32 and float64 that _frame_build.py reads them back as.


def encode(series: Sequence[int], values: Sequence[float]) -> tuple[bytes, bytes]:
    """Pack one round's series ids and values (same length)."""
    if len(series) != len(values):
        raise ValueError("a round needs one value per series")
    return array("i", series).tobytes(), array("d", values).tobytes()


def decode(series: bytes, values: bytes) -> tuple[array[int], array[float]]:
    """Unpack what :func:`encode` packed."""
    # Literal type codes: the stubs type array("d") as array[float] only so.
    ids: array[int] = array("i")
    numbers: array[float] = array("d")
    ids.frombytes(series)
    numbers.frombytes(values)
    return ids, numbers


class Buckets:
    """Mean, maximum, minimum and count per (bucket, series), fed values or rollups.

    The pure-Python aggregation the agent uses (``rows(step=...)``, downsampling);
    NaN values (unknown, e.g. the first CPU reading) count for nothing.
    """

    def __init__(self, width: float) -> None:
        self.width = width
        # (bucket, series) -> [sum of values, count, max, min]
        self.cells: dict[tuple[float, int], list[float]] = {}

    def bucket(self, when: float) -> float:
        """The start of the bucket ``when`` falls in."""
        return math.floor(when / self.width) * self.width

    def add(self, when: float, series: int, mean: float | None, high: float | None,
            low: float | None, count: int) -> None:
        """Add one value (``count`` 1, mean = max = min) or one rollup row."""
        if mean is None or high is None or low is None or count <= 0 or math.isnan(mean):
            return
        key = (self.bucket(when), series)
        cell = self.cells.get(key)
        if cell is None:
            self.cells[key] = [mean * count, float(count), high, low]
            return
        cell[0] += mean * count
        cell[1] += count
        if high > cell[2]:
            cell[2] = high
        if low < cell[3]:
            cell[3] = low

    def add_round(self, when: float, series: Iterable[int], values: Iterable[float],
                  wanted: set[int] | None) -> None:
        """Add every value of one stored round (those of ``wanted`` series only)."""
        for sid, value in zip(series, values, strict=True):
            if (wanted is None or sid in wanted) and not math.isnan(value):
                self.add(when, sid, value, value, value, 1)

    def rows(self) -> list[tuple[float, int, float, float, float, int]]:
        """``(bucket, series, mean, max, min, count)`` in (bucket, series) order."""
        return [(bucket, sid, cell[0] / cell[1], cell[2], cell[3], int(cell[1]))
                for (bucket, sid), cell in sorted(self.cells.items())]
