"""How long the store keeps each resolution: :class:`RetentionPolicy`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DAY", "RetentionPolicy"]

DAY = 86400.0


@dataclass(frozen=True)
class RetentionPolicy:
    """How long samples are kept, per resolution, in seconds.

    Raw samples (one per sampling interval) are rolled up into 1-minute buckets, and
    those into 1-hour buckets; each bucket keeps the mean, maximum, minimum and count
    of what it covers, so a spike survives downsampling as the bucket's maximum.

    Parameters
    ----------
    raw
        Raw samples: 1 day by default.
    minute
        1-minute buckets: 30 days by default.
    hour
        1-hour buckets: 365 days by default. Container events are kept as long.

    Examples
    --------
    >>> RetentionPolicy().raw / DAY, RetentionPolicy().hour / DAY
    (1.0, 365.0)
    """

    raw: float = 1 * DAY
    minute: float = 30 * DAY
    hour: float = 365 * DAY

    def __post_init__(self) -> None:
        if not 0 < self.raw <= self.minute <= self.hour:
            raise ValueError("retention must be positive and grow with coarser "
                             f"resolutions: raw {self.raw}, minute {self.minute}, "
                             f"hour {self.hour}")
