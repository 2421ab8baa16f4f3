"""``bench/RESULTS.md``: each benchmark script owns a marked block in it.

A script's block sits between its own HTML comment markers, under a level-2 heading
("## Widgets" for the widget benchmarks). Writing it again replaces the earlier run's
block in place and leaves everything else as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RESULTS", "markers", "put_block", "record_report"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def markers(script: str) -> tuple[str, str]:
    """The begin and end markers of ``script``'s block, e.g. ``bench/run.py``."""
    return f"<!-- {script}: begin -->", f"<!-- {script}: end -->"


def put_block(block: str, begin: str, end: str, *, section: str = "Widgets",
              path: Path = RESULTS) -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) in ``path``: in
    place of what the markers held, else at the end of the ``## section`` section, which
    is made at the end of the file if missing."""
    block = block.strip("\n")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        start = text.index(begin)
        stop = text.index(end, start) + len(end)
        text = text[:start] + block + text[stop:]
    else:
        heading = re.search(rf"^## {re.escape(section)}\n", text, re.MULTILINE)
        if heading is None:
            text = text.rstrip("\n") + f"\n\n## {section}\n\n" + block + "\n"
        else:
            following = re.compile(r"^## ", re.MULTILINE).search(text, heading.end())
            at = following.start() if following else len(text)
            text = text[:at].rstrip("\n") + "\n\n" + block + "\n\n" + text[at:].lstrip("\n")
    path.write_text(text, encoding="utf-8")


def record_report(script: str, report: str, *, section: str = "Widgets",
                  path: Path = RESULTS) -> None:
    """Put ``script``'s ``report`` between its markers in ``path`` (see :func:`put_block`)."""
    begin, end = markers(script)
    put_block(f"{begin}\n{report.rstrip()}\n{end}", begin, end, section=section, path=path)
