"""Template sources: the curated templates, and named sources imported by the user.

Each imported source is kept under ``$GHOSTPANEL_HOME/templates/``: ``sources.json``
records its name, where it came from and what was refused, and ``<name>/<template>.toml``
holds each template converted to GhostPanel's TOML form, so listing and deploying never
read the network or clone a repository again (``ghostpanel template import`` with the
same ``--name`` refreshes a source). The curated templates ship inside this package
(``curated/*.toml``) as the source ``curated``.

A source is a Portainer JSON file (versions 2 and 3), a TOML template, or a folder of
TOML templates, each given as a path or an ``http(s)`` URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import platformdirs

from ._model import Template, TemplateError
from ._portainer import Refusal, import_portainer, parse_json, slug
from ._toml import load_template

__all__ = ["CURATED", "ImportResult", "SourceRecord", "TemplateLibrary", "default_home",
           "read_location"]

CURATED: Final = "curated"
#: The most a URL may send: a template file, not a download of anything.
MAX_DOWNLOAD = 8 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30.0
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def default_home() -> Path:
    """GhostPanel's home: ``$GHOSTPANEL_HOME``, else the user's data folder."""
    home = os.environ.get("GHOSTPANEL_HOME")
    if home:
        return Path(home).expanduser().absolute()
    return Path(platformdirs.user_data_dir("ghostpanel"))


@dataclass(frozen=True)
class SourceRecord:
    """An imported source as ``sources.json`` keeps it."""

    name: str
    location: str
    imported_at: str
    templates: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """What ``import_source`` did: the source, its templates and the refused ones."""

    source: SourceRecord
    templates: list[Template]
    refused: list[Refusal]


def read_location(location: str) -> str:
    """The text at a path or an ``http(s)`` URL.

    Raises
    ------
    TemplateError
        It cannot be read (says why), or a URL sends more than :data:`MAX_DOWNLOAD`.
    """
    if re.match(r"https?://", location):
        import httpx  # only for a URL

        try:
            with httpx.stream("GET", location, timeout=DOWNLOAD_TIMEOUT,
                              follow_redirects=True) as response:
                response.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise TemplateError(f"{location} sends more than "
                                            f"{MAX_DOWNLOAD // 2**20} MiB; not a template "
                                            "file")
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            raise TemplateError(f"cannot download {location}: {error}") from None
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise TemplateError(f"{location} is not UTF-8 text") from None
    if "://" in location and not location.startswith("file://"):
        raise TemplateError(f"{location}: only http(s) URLs and paths are read")
    path = Path(location.removeprefix("file://")).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateError(f"cannot read {location}: {error}") from None


def _convert(location: str, source: str) -> tuple[dict[str, str], list[Template],
                                                    list[Refusal]]:
    """A location's templates: their TOML texts by name, the templates, the refusals."""
    local = Path(location.removeprefix("file://")).expanduser()
    if "://" not in location.replace("file://", "") and local.is_dir():
        texts: dict[str, str] = {}
        templates: list[Template] = []
        for path in sorted(local.glob("*.toml")):
            text = read_location(str(path))
            template = load_template(text, name=slug(path.stem), source=source,
                                     where=str(path))
            texts[template.name] = text
            templates.append(template)
        if not templates:
            raise TemplateError(f"{location}: no *.toml templates in this folder")
        return texts, templates, []
    text = read_location(location)
    start = text.lstrip()
    data: Any = None
    if start.startswith("{"):
        data = parse_json(text, location)
    elif start.startswith("["):  # Portainer's v1 list, or TOML opening with a table
        with contextlib.suppress(ValueError):
            data = json.loads(text)
    if data is not None:
        imported = import_portainer(data, source=source,
                                    local_repositories=not re.match(r"https?://", location))
        return imported.texts, imported.templates, imported.refused
    stem = Path(location.rstrip("/").rsplit("/", 1)[-1]).stem
    template = load_template(text, name=slug(stem), source=source, where=location)
    return {template.name: text}, [template], []


class TemplateLibrary:
    """Every template source: the curated one and those imported under a home folder.

    Parameters
    ----------
    home
        GhostPanel's home (default: :func:`default_home`); sources go in its
        ``templates`` folder.
    curated
        Include the templates that ship with GhostPanel.

    Examples
    --------
    >>> library = TemplateLibrary()
    >>> library.import_source("https://example.org/templates.json", name="team")  # doctest: +SKIP
    >>> [t.name for t in library.templates(category="games")][:2]          # doctest: +SKIP
    ['factorio', 'minecraft']
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *,
                 curated: bool = True) -> None:
        self.folder = (Path(home) if home is not None else default_home()) / "templates"
        self.curated = curated

    # -- sources
    def _records_path(self) -> Path:
        return self.folder / "sources.json"

    def sources(self) -> list[SourceRecord]:
        """The imported sources, by name."""
        try:
            data = json.loads(self._records_path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise TemplateError(f"cannot read {self._records_path()}: {error}") from None
        return sorted((SourceRecord(**entry) for entry in data.get("sources", [])),
                      key=lambda record: record.name)

    def _write_records(self, records: Sequence[SourceRecord]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._records_path()
        staged = path.with_suffix(".json.tmp")
        staged.write_text(json.dumps({"sources": [asdict(r) for r in records]}, indent=2),
                          encoding="utf-8")
        staged.replace(path)  # atomically: a reader never sees half a file

    def import_source(self, location: str, *, name: str | None = None) -> ImportResult:
        """Import (or refresh) the source at ``location`` under ``name``.

        Parameters
        ----------
        location
            A Portainer JSON file, a TOML template or a folder of them; a path or an
            ``http(s)`` URL.
        name
            The source's name (default: from the file or folder name); ``curated`` is
            GhostPanel's own.

        Raises
        ------
        TemplateError
            The name is taken by the curated source or malformed, the location cannot
            be read or holds no template that could be imported (every refusal said).
        """
        name = name or slug(Path(location.rstrip("/").rsplit("/", 1)[-1]).stem)
        if name == CURATED:
            raise TemplateError("`curated` is the name of GhostPanel's own templates; "
                                "choose another --name")
        if not _SOURCE_NAME.fullmatch(name):
            raise TemplateError(f"source name {name!r}: use lower-case letters, digits, "
                                "- and _")
        texts, templates, refused = _convert(location, name)
        if not templates:
            reasons = "; ".join(f"{r.title}: {r.reason}" for r in refused) or "none found"
            raise TemplateError(f"{location}: no template could be imported ({reasons})")
        staged = self.folder / f".{name}.new"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for template_name, text in texts.items():
            (staged / f"{template_name}.toml").write_text(text, encoding="utf-8")
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
        record = SourceRecord(name=name, location=location,
                              imported_at=datetime.now(UTC).isoformat(timespec="seconds"),
                              templates=sorted(texts),
                              refused=[{"title": r.title, "reason": r.reason}
                                       for r in refused])
        others = [r for r in self.sources() if r.name != name]
        self._write_records([*others, record])
        return ImportResult(record, templates, refused)

    def remove_source(self, name: str) -> None:
        """Forget an imported source and its templates (KeyError when unknown)."""
        records = self.sources()
        if name not in {r.name for r in records}:
            raise KeyError(name)
        shutil.rmtree(self.folder / name, ignore_errors=True)
        self._write_records([r for r in records if r.name != name])

    # -- templates
    def _curated(self) -> Iterator[Template]:
        folder = resources.files(__package__).joinpath("curated")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                yield load_template(entry.read_text(encoding="utf-8"),
                                    name=entry.name.removesuffix(".toml"), source=CURATED,
                                    where=f"curated/{entry.name}")

    def templates(self, *, category: str | None = None) -> list[Template]:
        """Every template (curated first, then each source by name), or those of
        ``category`` (case-insensitive).

        Raises
        ------
        TemplateError
            A stored template no longer reads (naming its file).
        """
        found: list[Template] = list(self._curated()) if self.curated else []
        for record in self.sources():
            for template_name in record.templates:
                path = self.folder / record.name / f"{template_name}.toml"
                found.append(load_template(read_location(str(path)), name=template_name,
                                           source=record.name, where=str(path)))
        if category is not None:
            wanted = category.casefold()
            found = [t for t in found if wanted in (c.casefold() for c in t.categories)]
        return found

    def categories(self) -> list[str]:
        """Every category any template has, sorted."""
        return sorted({c for t in self.templates() for c in t.categories},
                      key=str.casefold)

    def get(self, name: str) -> Template:
        """The template ``SOURCE/NAME``, or ``NAME`` when one source alone has it.

        Raises
        ------
        TemplateError
            No template has that name, or several sources do (naming them).
        """
        source, _, short = name.rpartition("/")
        matches = [t for t in self.templates()
                   if t.name == short and (not source or t.source == source)]
        if not matches:
            raise TemplateError(f"no template {name!r} (ghostpanel template ls lists them)")
        if len(matches) > 1:
            raise TemplateError(f"{name!r} is in several sources: "
                                f"{', '.join(t.qualified_name for t in matches)}; name one")
        return matches[0]

    def __repr__(self) -> str:
        return f"<TemplateLibrary {self.folder}>"


