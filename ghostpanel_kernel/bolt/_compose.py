"""From a Docker Compose file to a Boltfile: :func:`from_compose`.

The Compose file is read as Compose reads it -- YAML, then ``${VAR:-default}``
interpolation from the process environment over a ``.env`` file beside it (see
:mod:`~ghostpanel_kernel.bolt._compose_vars`) -- and each service becomes a
``[services.NAME]`` table (:mod:`~ghostpanel_kernel.bolt._compose_service`), the
top-level ``networks`` and ``volumes`` Bolt's tables. What has no place in a Boltfile
(``build`` options, ``secrets``, ``configs``, ``extends``, ``profiles``, host IPs of
ports...) is left out and said in :attr:`ConversionResult.notes`, each note naming the
Compose key. By default the Boltfile is one GhostPanel's Surge deploys: the keys Bolt
reads but Surge refuses (``container_name``, ``dns``, ``sysctls``... see
``ghostpanel_kernel.surge._desired.UNSUPPORTED_KEYS``) are left out too, with a note; pass
``for_bolt=True`` to keep them for Bolt. The text passes the validator; a finding it
still has is a note too. docs/conversions.md has the rules key by key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import tomlkit
from tomlkit.items import Table

from ghostpanel_kernel.bolt._boltfile import Boltfile
from ghostpanel_kernel.bolt._compose_service import Context, convert_service, string_map
from ghostpanel_kernel.bolt._compose_vars import ComposeError, Interpolation, read_env_file
from ghostpanel_kernel.bolt._validator import validate

__all__ = ["ComposeError", "ConversionResult", "from_compose"]

_TOP_LEVEL_NOTES: Final = {
    "secrets": "Bolt has no secrets",
    "configs": "Bolt has no configs",
    "include": "included Compose files are not read; convert each on its own",
}
_NETWORK_KEYS: Final = ("driver", "driver_opts", "attachable", "enable_ipv6", "internal",
                        "labels", "ipam", "external", "name")
_VOLUME_KEYS: Final = ("driver", "driver_opts", "external", "labels", "name")
_IPAM_CONFIG_KEYS: Final = ("subnet", "ip_range", "gateway", "aux_addresses")


@dataclass(frozen=True)
class ConversionResult:
    """A Compose file converted to a Boltfile.

    Attributes
    ----------
    boltfile_text
        The Boltfile (TOML), formatted as ``ghostpanel boltfile fmt`` writes it, with a
        comment header naming the source and listing the notes.
    notes
        What could not be carried over (or was changed), each starting with the
        Compose key, e.g. ``services.web.secrets: Bolt has no secrets...``.
    project
        The Boltfile's project name.
    """

    boltfile_text: str
    notes: list[str] = field(default_factory=list)
    project: str = ""

    def boltfile(self) -> Boltfile:
        """The text as a :class:`Boltfile` (to edit, validate or save)."""
        return Boltfile.loads(self.boltfile_text, path="<from-compose>")


def _project_name(name: str) -> str:
    """A name as Compose normalises a project name: lowercase letters, digits, ``-``
    and ``_``, starting with a letter or digit.

    Examples
    --------
    >>> _project_name("My App.v2")
    'myappv2'
    """
    cleaned = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return cleaned.lstrip("_-") or "compose"


def _interpolated(value: Any, interpolation: Interpolation, where: str) -> Any:
    """The YAML data with every string value interpolated (keys are not)."""
    if isinstance(value, str):
        return interpolation(value, where)
    if isinstance(value, Mapping):
        return {key: _interpolated(item, interpolation, f"{where}.{key}" if where else
                                   str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item, interpolation, where) for item in value]
    return value


def _source_text(source: str | os.PathLike[str], base_dir: Path | None
                 ) -> tuple[str, Path, str | None]:
    """``(text, base folder, file name or None)``: a path object, or a one-line string
    naming an existing file, is read; any other string is the Compose text."""
    path: Path | None = None
    if isinstance(source, os.PathLike):
        path = Path(source)
    elif "\n" not in source and source.strip() and Path(source).is_file():
        path = Path(source)
    if path is None:
        assert isinstance(source, str)
        return source, base_dir or Path.cwd(), None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ComposeError(f"{path}: cannot read the Compose file: {error}") from None
    return text, base_dir or path.resolve().parent, path.name


def _load(text: str, name: str) -> dict[str, Any]:
    import yaml  # here: reading Boltfiles (the package's main work) never needs PyYAML

    # libyaml's loader when PyYAML has it: ten times faster, the same safe subset.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        raise ComposeError(f"{name}: not YAML: {error}") from None
    if not isinstance(data, dict):
        raise ComposeError(f"{name}: a Compose file is a mapping with `services`")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{name}: no `services` to convert")
    bad = [str(n) for n, s in services.items() if not isinstance(s, dict) and s is not None]
    if bad:
        raise ComposeError(f"{name}: services.{bad[0]} is not a mapping")
    return data


def _network(key: str, raw: Any, ctx: Context) -> dict[str, Any]:
    raw = raw or {}
    table: dict[str, Any] = {"driver": str(raw.get("driver") or "bridge")}
    for option in ("driver_opts", "labels"):
        if raw.get(option):
            table[option] = {k: v or "" for k, v in string_map(raw[option]).items()}
    for flag in ("attachable", "enable_ipv6", "internal"):
        if isinstance(raw.get(flag), bool):
            table[flag] = raw[flag]
    _external(raw, table)
    ipam = raw.get("ipam")
    if isinstance(ipam, Mapping):
        out: dict[str, Any] = {}
        if ipam.get("driver"):
            out["driver"] = str(ipam["driver"])
        configs = [{k: v for k, v in c.items() if k in _IPAM_CONFIG_KEYS}
                   for c in ipam.get("config") or [] if isinstance(c, Mapping)]
        if configs:
            out["config"] = configs
        if ipam.get("options"):
            out["options"] = {k: v or "" for k, v in string_map(ipam["options"]).items()}
        table["ipam"] = out
    for option in sorted(set(raw) - set(_NETWORK_KEYS)):
        ctx.note(f"networks.{key}.{option}", "Bolt has no equivalent")
    return table


def _external(raw: Mapping[str, Any], table: dict[str, Any]) -> None:
    external = raw.get("external")
    if isinstance(external, Mapping):  # the old spelling: external: {name: ...}
        table["external"] = True
        if external.get("name"):
            table["name"] = str(external["name"])
    elif isinstance(external, bool):
        table["external"] = external
    if raw.get("name"):
        table["name"] = str(raw["name"])


def _volume(key: str, raw: Any, ctx: Context) -> dict[str, Any]:
    raw = raw or {}
    table: dict[str, Any] = {}
    if raw.get("driver"):
        table["driver"] = str(raw["driver"])
    for option in ("driver_opts", "labels"):
        if raw.get(option):
            table[option] = {k: v or "" for k, v in string_map(raw[option]).items()}
    _external(raw, table)
    for option in sorted(set(raw) - set(_VOLUME_KEYS)):
        ctx.note(f"volumes.{key}.{option}", "Bolt has no equivalent")
    return table


def _toml_table(data: Mapping[str, Any]) -> Table:
    """Plain data as a tomlkit table: scalars and lists first, then sub-tables (TOML
    needs a table's own keys before its sub-tables)."""
    table = tomlkit.table()
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    for key, value in data.items():
        if key in tables:
            continue
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            array = tomlkit.aot()
            for item in value:
                array.append(_toml_table(item))
            table.add(key, array)
        else:
            table.add(key, value)
    for key, value in tables.items():
        table.add(key, _toml_table(value))
    return table


def _render(project: str, services: Mapping[str, Any], networks: Mapping[str, Any],
            volumes: Mapping[str, Any]) -> tuple[str, Boltfile]:
    """The formatted Boltfile text, and the Boltfile read from it (to validate)."""
    document = tomlkit.document()
    document.add("project", project)
    root: dict[str, Any] = {"services": services}
    if networks:
        root["networks"] = networks
    if volumes:
        root["volumes"] = volumes
    for key, value in root.items():
        super_table = tomlkit.table(is_super_table=True)
        for name, item in value.items():
            super_table.add(name, _toml_table(item))
        document.add(key, super_table)
    boltfile = Boltfile.loads(tomlkit.dumps(document), path="<from-compose>")
    return boltfile.format(), boltfile


def _header(source: str | None, notes: list[str]) -> str:
    """Comment lines for the top of the Boltfile: ``fmt`` keeps them above ``project``,
    where they are, so the text stays formatted."""
    lines = [f"Converted from {source or 'a Compose file'} by `ghostpanel boltfile "
             "from-compose`."]
    if notes:
        lines.append("Not carried over (see docs/conversions.md):")
        lines += [f"  - {note}" for note in notes]
    return "".join(f"# {line}\n" for line in lines)


def _surge_refused() -> frozenset[str]:
    # Imported here: the Surge package is not needed to read a Compose file otherwise.
    from ghostpanel_kernel.surge._desired import UNSUPPORTED_KEYS

    return UNSUPPORTED_KEYS


def from_compose(source: str | os.PathLike[str], *, project: str | None = None,
                 base_dir: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] | None = None,
                 for_bolt: bool = False) -> ConversionResult:
    """Convert a Docker Compose file to a Boltfile.

    Parameters
    ----------
    source
        A path (a ``Path``, or a one-line string naming an existing file), or the
        Compose YAML itself.
    project
        The Boltfile's project; default the Compose ``name``, else the file's folder
        name (as Compose names a project), normalised to Compose's rules.
    base_dir
        Where ``.env`` and ``env_file`` paths are read from; default the file's
        folder (the current folder for text).
    environ
        The variables that win over ``.env``; default ``os.environ``.
    for_bolt
        Keep the keys Bolt reads but GhostPanel's Surge refuses (the default leaves
        them out, with a note, so that ``ghostpanel surge apply`` deploys the result).

    Returns
    -------
    ConversionResult
        The Boltfile text and the notes on what was not carried over.

    Raises
    ------
    ComposeError
        Not YAML, no ``services``, a ``${VAR:?message}`` unset, or a value no
        Boltfile can hold (a port that is not a number); the message names the key.

    Examples
    --------
    >>> result = from_compose("services:\\n  web:\\n    image: nginx\\n"
    ...                       "    ports: ['8080:80']\\n    secrets: [key]\\n",
    ...                       project="demo", environ={})
    >>> print(result.boltfile_text.split("\\n", 3)[-1], end="")
    project = "demo"
    <BLANKLINE>
    [services.web]
    image = "nginx"
    ports = ["8080:80"]
    >>> result.notes[0].split(";")[0]
    'services.web.secrets: Bolt has no secrets'
    """
    text, folder, name = _source_text(source, Path(base_dir) if base_dir else None)
    variables: dict[str, str] = {}
    dotenv = folder / ".env"
    if dotenv.is_file():
        try:
            variables.update(read_env_file(dotenv))
        except (OSError, UnicodeDecodeError) as error:
            raise ComposeError(f"{dotenv}: cannot read it: {error}") from None
    variables.update(os.environ if environ is None else environ)
    raw = _load(text, name or "<compose>")
    interpolation = Interpolation(variables)
    data = _interpolated(raw, interpolation, "")
    ctx = Context(base_dir=folder, variables=variables,
                  surge_refuses=frozenset() if for_bolt else _surge_refused())
    for variable, where in interpolation.unset.items():
        ctx.note(where, f"variable {variable} is not set; a blank string was used")
    chosen = _project_name(project or str(data.get("name") or "") or
                           (folder.name if name else "") or "compose")
    services: dict[str, Any] = {}
    for service, body in data["services"].items():
        try:
            services[str(service)] = convert_service(str(service), body or {}, ctx)
        except (ValueError, TypeError, KeyError) as error:
            raise ComposeError(f"services.{service}: cannot convert: {error}") from None
    networks = {str(k): _network(str(k), v, ctx) for k, v in (data.get("networks") or {})
                .items()}
    volumes = {str(k): _volume(str(k), v, ctx) for k, v in (data.get("volumes") or {})
               .items()}
    volumes.update({named: {} for named in ctx.anonymous})
    for key in data:
        if key in _TOP_LEVEL_NOTES:
            ctx.note(str(key), _TOP_LEVEL_NOTES[key])
        elif key not in ("services", "networks", "volumes", "name", "version") and \
                not str(key).startswith("x-"):
            ctx.note(str(key), "Bolt has no equivalent")
    body, boltfile = _render(chosen, services, networks, volumes)
    for diagnostic in validate(boltfile):
        if diagnostic.is_error:
            ctx.note(diagnostic.key or "boltfile", f"the validator says: {diagnostic.message}")
    return ConversionResult(boltfile_text=_header(name, ctx.notes) + body,
                            notes=list(ctx.notes), project=chosen)
