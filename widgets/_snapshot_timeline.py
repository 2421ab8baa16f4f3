"""The ``SnapshotPicker``'s timeline strip: each snapshot a dot on a time axis, its area
by size, its colour by trigger, a ring when it is kept forever.

A pure function returning SVG text (an ``ipywidgets.HTML`` shows it in Voila and
JupyterLab alike, with no front-end extension), so it is tested as text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ghostpanel_kernel.snapshots import Snapshot

from ._format import format_size

__all__ = ["TRIGGER_COLOURS", "timeline_svg"]

#: Dot colours by trigger; schedules (hourly, daily, weekly...) share the last one.
TRIGGER_COLOURS = {"manual": "#1565c0", "pre-restore": "#ef6c00",
                   "before_surge_up": "#6a1b9a", "scheduled": "#2e7d32"}
_WIDTH, _HEIGHT, _PAD = 640, 46, 14
_MIN_R, _MAX_R = 3.0, 9.0


def _colour(trigger: str) -> str:
    return TRIGGER_COLOURS.get(trigger, TRIGGER_COLOURS["scheduled"])


def timeline_svg(groups: Sequence[tuple[str, Sequence[Snapshot]]]) -> str:
    """The snapshots (grouped by name, as the picker lists them) on a time axis.

    Examples
    --------
    >>> timeline_svg([])
    ''
    """
    if not groups:
        return ""
    points = []
    for name, group in groups:
        sizes = [s.size for s in group]
        size = None if any(v is None for v in sizes) else sum(v or 0 for v in sizes)
        points.append((name, min(s.created for s in group), size,
                       group[0].trigger, any(s.keep_forever for s in group)))
    start = min(p[1] for p in points).timestamp()
    span = max(p[1] for p in points).timestamp() - start
    largest = max((p[2] or 0 for p in points), default=0)
    axis = _HEIGHT / 2
    dots = []
    for name, created, size, trigger, forever in sorted(points, key=lambda p: p[1]):
        x = _PAD + ((created.timestamp() - start) / span if span else 0.5) * (
            _WIDTH - 2 * _PAD)
        # Area, not radius, follows size: a snapshot twice as large looks twice as large.
        radius = _MIN_R if not largest or size is None else _MIN_R + (
            _MAX_R - _MIN_R) * math.sqrt(size / largest)
        ring = (f'<circle cx="{x:.1f}" cy="{axis}" r="{radius + 3:.1f}" fill="none" '
                f'stroke="#333" stroke-width="1"/>' if forever else "")
        tip = html.escape(f"{name}\n{created:%Y-%m-%d %H:%M:%S} UTC\n"
                          f"{format_size(size) or 'size unknown'} \u00b7 {trigger}"
                          f"{' · kept forever' if forever else ''}")
        dots.append(f'<g class="gp-snapshot-dot">{ring}<circle cx="{x:.1f}" cy="{axis}" '
                    f'r="{radius:.1f}" fill="{_colour(trigger)}" fill-opacity="0.8">'
                    f"<title>{tip}</title></circle></g>")
    first, last = min(p[1] for p in points), max(p[1] for p in points)
    labels = (f'<text x="{_PAD}" y="{_HEIGHT - 1}" font-size="10" fill="#666">'
              f"{first:%Y-%m-%d %H:%M}</text>"
              f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 1}" font-size="10" fill="#666" '
              f'text-anchor="end">{last:%Y-%m-%d %H:%M} UTC</text>')
    legend = " ".join(f'<span style="color: {colour}">&#x25cf;</span> {name}'
                      for name, colour in TRIGGER_COLOURS.items())
    return (f'<div class="gp-snapshot-timeline"><svg width="{_WIDTH}" height="{_HEIGHT}" '
            f'viewBox="0 0 {_WIDTH} {_HEIGHT}"><line x1="{_PAD}" y1="{axis}" '
            f'x2="{_WIDTH - _PAD}" y2="{axis}" stroke="#bbb"/>{"".join(dots)}{labels}</svg>'
            f'<div style="font-size: 80%; color: #666">{legend}; dot area: size; '
            "ring: kept forever</div></div>")
