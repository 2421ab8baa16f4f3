"""A tiny runbook for the ``RunbookLauncher`` browser tests (JupyterLab and Voila), and the
notebook cell that shows a launcher on it. Its cells need no engine; its runs are
recorded in a home of the test's own."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

__all__ = ["launcher_cell"]


def launcher_cell(folder: Path) -> str:
    """Write the ``greeting`` runbook (``times: int = 2``, ``who = "operator"``) under
    ``folder/books`` and return the source of a cell showing a ``RunbookLauncher`` on it,
    with its history in ``folder/home``."""
    books = folder / "books"
    books.mkdir()
    nbformat.write(new_notebook(cells=[
        new_markdown_cell("# Greeting\n\nSays hello a number of times."),
        new_code_cell('times: int = 2  # how many\nwho = "operator"',
                      metadata={"tags": ["parameters"]}),
        new_code_cell("for _ in range(times):\n    print(f'hello {who}')")]),
        books / "greeting.ipynb")
    return ("import os, pathlib\n"
            f"os.environ['GHOSTPANEL_RUNBOOKS'] = {str(books)!r}\n"
            "from ghostpanel_widgets import RunbookLauncher\n"
            f"RunbookLauncher(runbook='greeting', home=pathlib.Path({str(folder / 'home')!r}))")
