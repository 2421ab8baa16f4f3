"""Where runbooks are found, and what parameters each one takes.

A runbook is a Jupyter notebook with a cell tagged ``parameters`` (papermill's
convention): its assignments are the runbook's parameters and their defaults. Runbooks
are looked for, in order, in the folders of ``$GHOSTPANEL_RUNBOOKS`` (separated by
``os.pathsep``), in ``runbooks/`` of the source tree, and in
``<prefix>/share/ghostpanel/runbooks`` where a wheel installs them; a name found in an
earlier folder hides the same name in a later one (so a site can replace a curated
runbook with its own).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "RUNBOOKS_VARIABLE",
    "Parameter",
    "Runbook",
    "RunbookNotFound",
    "coerce_parameters",
    "find_runbook",
    "list_runbooks",
    "runbook_folders",
]

#: Folders searched before the curated ones (``os.pathsep``-separated).
RUNBOOKS_VARIABLE: Final = "GHOSTPANEL_RUNBOOKS"


class RunbookNotFound(LookupError):
    """No runbook of that name in any runbook folder."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a runbook, as papermill's inspection reads it.

    Attributes
    ----------
    name
        The variable's name.
    type_name
        Its annotation (``"str"``, ``"int"``...) or, without one, the type of its
        default (``"None"`` when neither says).
    default
        The default as written in the notebook (source text: ``'"all"'``, ``'10'``).
    help
        The comment after the assignment, if any.
    """

    name: str
    type_name: str
    default: str
    help: str

    @property
    def default_value(self) -> Any:
        """The default as a Python value where it is a literal, else its source text."""
        import ast

        try:
            return ast.literal_eval(self.default)
        except (ValueError, SyntaxError):
            return self.default

    def coerce(self, text: str) -> Any:
        """``text`` (from ``-p name=text`` or a form field) as this parameter's type.

        Raises
        ------
        ValueError
            ``text`` is not a value of the parameter's type.
        """
        kind = self.type_name if self.type_name != "None" else type(self.default_value).__name__
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(f"{self.name} takes true or false, not {text!r}")
        if kind in ("int", "float"):
            try:
                return int(text) if kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"{self.name} takes a number ({kind}), "
                                 f"not {text!r}") from None
        if kind == "str":
            return text
        # Lists, dicts and untyped parameters: JSON when it parses, else the text itself.
        try:
            return json.loads(text)
        except ValueError:
            return text


@dataclass(frozen=True)
class Runbook:
    """A runbook notebook: ``name`` is its file name without ``.ipynb``."""

    name: str
    path: Path

    @property
    def title(self) -> str:
        """The first Markdown heading of the notebook, else its name."""
        title, _ = self._summary()
        return title

    @property
    def description(self) -> str:
        """The first paragraph after that heading (empty when there is none)."""
        _, description = self._summary()
        return description

    def _summary(self) -> tuple[str, str]:
        try:
            cells = json.loads(self.path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            return self.name, ""
        for cell in cells:
            if cell.get("cell_type") != "markdown":
                continue
            source = cell.get("source", "")
            lines = ("".join(source) if isinstance(source, list) else source).splitlines()
            heading = next((line.lstrip("#").strip() for line in lines
                            if line.startswith("#")), None)
            if heading is None:
                continue
            rest = [line.strip() for line in lines if line.strip() and
                    not line.startswith("#")]
            return heading, (rest[0] if rest else "")
        return self.name, ""

    def parameters(self) -> list[Parameter]:
        """The parameters of its ``parameters``-tagged cell, in order (papermill's
        Python translator reads them, as ``papermill --help-notebook`` does); empty when
        it has none.

        Runbooks are Python notebooks run on the ``python3`` kernel, so the translator is
        Python's whatever the notebook's metadata says (papermill's own
        ``inspect_notebook`` refuses a notebook with no kernelspec in its metadata).
        """
        from papermill.translators import papermill_translators

        cells = json.loads(self.path.read_text(encoding="utf-8")).get("cells", [])
        tagged = next((cell for cell in cells if "parameters" in
                       cell.get("metadata", {}).get("tags", [])), None)
        if tagged is None:
            return []
        source = tagged.get("source", "")
        cell = {"source": "".join(source) if isinstance(source, list) else source}
        translator = papermill_translators.find_translator("python3", "python")
        return [Parameter(name=found.name, type_name=str(found.inferred_type_name),
                          default=str(found.default), help=str(found.help))
                for found in translator.inspect(cell)]


def runbook_folders() -> list[Path]:
    """The folders searched for runbooks, first wins (see the module notes)."""
    folders = [Path(part).expanduser() for part in
               os.environ.get(RUNBOOKS_VARIABLE, "").split(os.pathsep) if part]
    # The source tree: ghostpanel_kernel/runbooks/ -> the repository root.
    folders.append(Path(__file__).resolve().parents[2] / "runbooks")
    folders.append(Path(sys.prefix) / "share" / "ghostpanel" / "runbooks")
    return folders


def list_runbooks() -> list[Runbook]:
    """Every runbook found, sorted by name (a name shadowed by an earlier folder once)."""
    found: dict[str, Runbook] = {}
    for folder in runbook_folders():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.ipynb")):
            found.setdefault(path.stem, Runbook(path.stem, path))
    return [found[name] for name in sorted(found)]


def find_runbook(name: str | Path) -> Runbook:
    """The runbook called ``name``, or the notebook at a path (one ending ``.ipynb``).

    Raises
    ------
    RunbookNotFound
        No such runbook; the message lists the known ones.
    """
    text = str(name)
    if text.endswith(".ipynb"):
        path = Path(text).expanduser()
        if path.is_file():
            return Runbook(path.stem, path.absolute())
        raise RunbookNotFound(f"no notebook at {path}")
    runbooks = list_runbooks()
    for runbook in runbooks:
        if runbook.name == text:
            return runbook
    known = ", ".join(runbook.name for runbook in runbooks) or "none"
    raise RunbookNotFound(f"no runbook named {text!r} (known: {known})")


def coerce_parameters(runbook: Runbook, texts: dict[str, str]) -> dict[str, Any]:
    """``texts`` (``-p name=value`` pairs, form fields) as the runbook's parameter types.

    Raises
    ------
    ValueError
        A name the runbook does not declare, or a value not of its parameter's type;
        the message names the parameter.
    """
    declared = {parameter.name: parameter for parameter in runbook.parameters()}
    values: dict[str, Any] = {}
    for name, text in texts.items():
        parameter = declared.get(name)
        if parameter is None:
            raise ValueError(f"runbook {runbook.name!r} has no parameter {name!r} (it "
                             f"takes: {', '.join(declared) or 'none'})")
        values[name] = parameter.coerce(text)
    return values
