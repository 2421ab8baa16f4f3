"""Portainer's app-template JSON (versions 2 and 3) as GhostPanel templates.

.. code-block:: json

    {"version": "3", "templates": [
      {"type": 1, "title": "Nginx", "image": "nginx:latest", "ports": ["8080:80/tcp"],
       "volumes": [{"container": "/etc/nginx", "bind": "/srv/nginx", "readonly": true}],
       "env": [{"name": "MODE", "label": "Mode", "select": [
                  {"text": "Fast", "value": "fast", "default": true}]}]},
      {"type": 3, "title": "Wordpress",
       "repository": {"url": "https://github.com/x/templates", "stackfile": "wp/compose.yml"}}]}

- **type 1** (a container) becomes one Boltfile service; its image is the ``image``
  variable, each ``env`` entry a variable (``select`` → a choice, ``preset`` → a fixed
  value, not asked);
- **type 3** (a Compose stack): the Compose file is read from ``repository``
  (``url`` a local folder, or anything ``git clone`` takes; ``stackfile`` inside it) and
  converted by :func:`ghostpanel_kernel.bolt.from_compose`; its ``env`` entries become
  variables that fill the Compose file's ``${NAME}``;
- **type 2** (a Swarm stack) is refused: Swarm services (placement, service replicas,
  overlay networks, secrets) are a Swarm cluster's, which GhostPanel does not drive.

Whatever a template says that the Boltfile cannot hold is a note naming the key.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from ._model import Template, TemplateError, Variable
from ._toml import dump_template, load_template

__all__ = ["PortainerImport", "Refusal", "import_portainer", "is_portainer", "slug"]

#: Seconds a ``git clone`` of a type-3 template's repository may take.
CLONE_TIMEOUT = 120.0

#: Keys of a type-1 template that the Boltfile cannot hold (noted when set).
_NOT_CARRIED = ("network", "interactive", "administrator_only", "hostname_from_env",
                "maintainer")


@dataclass(frozen=True)
class Refusal:
    """A template an import left out, and why."""

    title: str
    reason: str


@dataclass
class PortainerImport:
    """What a Portainer file gave: templates (TOML text by name) and refusals."""

    texts: dict[str, str] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def slug(title: str) -> str:
    """A template's name from its title: lower case, letters, digits and ``-``.

    Examples
    --------
    >>> slug("MySQL 8 (official)")
    'mysql-8-official'
    """
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "template"


def is_portainer(data: Any) -> bool:
    """Whether parsed JSON looks like a Portainer template file (any version)."""
    return (isinstance(data, Mapping) and isinstance(data.get("templates"), list)) or (
        isinstance(data, list) and all(isinstance(t, Mapping) for t in data))


def _port(spec: str, where: str, notes: list[str]) -> str | None:
    """A Portainer port (``"8080:80/tcp"``, ``"80/udp"``) as a Boltfile port."""
    text = str(spec).strip()
    number, _, protocol = text.partition("/")
    protocol = protocol.lower() or "tcp"
    parts = number.split(":")
    if len(parts) == 3:  # "IP:HOST:CONTAINER": Bolt binds no host IP
        notes.append(f"{where}: {text!r}: the host IP {parts[0]} is dropped (Bolt binds "
                     "every address)")
        parts = parts[1:]
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 2:
        notes.append(f"{where}: {text!r} is not a port GhostPanel can publish; left out")
        return None
    # TCP is the Boltfile's default; GhostPanel publishes "/udp" (Bolt warns).
    return ":".join(parts) + ("" if protocol == "tcp" else f"/{protocol}")


def _variables(entries: Any, where: str, notes: list[str]
               ) -> tuple[list[Variable], dict[str, str]]:
    """Portainer ``env`` entries → variables, and the fixed (preset) values by name."""
    variables: list[Variable] = []
    fixed: dict[str, str] = {}
    for index, entry in enumerate(entries or ()):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            notes.append(f"{where}[{index}] has no name; left out")
            continue
        name = entry["name"]
        default = entry.get("default")
        if entry.get("preset"):
            fixed[name] = "" if default is None else str(default)
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            notes.append(f"{where}: {name!r} is not a name a variable can have; left out")
            continue
        label = str(entry.get("label") or "")
        help_text = str(entry.get("description") or "")
        select = entry.get("select")
        if isinstance(select, list) and select:
            choices = tuple(str(option.get("value", "")) for option in select
                            if isinstance(option, Mapping))
            chosen = next((str(option.get("value", "")) for option in select
                           if isinstance(option, Mapping) and option.get("default")),
                          choices[0])
            variables.append(Variable(name, "choice", chosen, label, help_text, choices))
        else:
            variables.append(Variable(name, "string", None if default is None
                                      else str(default), label, help_text))
    return variables, fixed


def _container_body(entry: Mapping[str, Any], name: str, notes: list[str]
                    ) -> tuple[str, list[Variable]]:
    """The Boltfile text and variables of a type-1 (container) template."""
    image = entry.get("image")
    if not isinstance(image, str) or not image:
        raise TemplateError("a container template (type 1) without an image")
    variables, fixed = _variables(entry.get("env"), "env", notes)
    variables.insert(0, Variable("image", "string", image, "Image",
                                 "The image the container runs"))
    if any(v.name == "image" for v in variables[1:]):
        raise TemplateError("an env variable is called `image`, which GhostPanel keeps "
                            "for the template's image")
    service: dict[str, Any] = {"image": "${image}"}
    if entry.get("command"):
        service["command"] = shlex.split(str(entry["command"]))
    ports = [p for p in (_port(spec, "ports", notes) for spec in entry.get("ports") or ())
             if p is not None]
    if ports:
        service["ports"] = ports
    volumes: list[str] = []
    named: list[str] = []
    for index, volume in enumerate(entry.get("volumes") or ()):
        target = volume.get("container") if isinstance(volume, Mapping) else None
        if not isinstance(target, str) or not target.startswith("/"):
            notes.append(f"volumes[{index}] has no absolute container path; left out")
            continue
        source = volume.get("bind")
        if not source:  # Portainer makes an anonymous volume: a named one survives redeploys
            source = f"{name}-{slug(target) or 'data'}"
            named.append(source)
        volumes.append(f"{source}:{target}" + (":ro" if volume.get("readonly") else ""))
    if volumes:
        service["volumes"] = volumes
    environment = {**{v.name: f"${{{v.name}}}" for v in variables[1:]}, **fixed}
    if environment:
        service["environment"] = environment
    if entry.get("restart_policy"):
        service["restart"] = str(entry["restart_policy"])
    for key in ("privileged", "hostname"):
        if entry.get(key):
            service[key] = entry[key]
    labels = {str(label.get("name")): str(label.get("value", ""))
              for label in entry.get("labels") or () if isinstance(label, Mapping)}
    if labels:
        service["labels"] = labels
    for key in _NOT_CARRIED:
        if entry.get(key):
            notes.append(f"{key}: {entry[key]!r} has no Boltfile equivalent; left out")
    document = tomlkit.document()
    document.add("project", name)
    services = tomlkit.table(is_super_table=True)
    services.add(name, service)
    document.add("services", services)
    if named:
        table = tomlkit.table(is_super_table=True)
        for volume_name in named:
            table.add(volume_name, {"driver": "local"})
        document.add("volumes", table)
    return tomlkit.dumps(document), variables


def _convert_compose(path: Path, stackfile: str, name: str,
                     environ: Mapping[str, str]) -> Any:
    """:func:`~ghostpanel_kernel.bolt.from_compose` of the file at ``path``."""
    from ..bolt import ComposeError, from_compose  # bolt/_compose.py: Compose → Boltfile

    if not path.is_file():
        raise TemplateError(f"the repository has no stack file {stackfile!r}")
    try:
        return from_compose(path, project=name, environ=environ)
    except (ComposeError, OSError, UnicodeDecodeError) as error:
        raise TemplateError(f"{stackfile}: {error}") from None


def _compose_result(repository: Mapping[str, Any], stackfile: str | None, name: str,
                    environ: Mapping[str, str], *, local_allowed: bool = True) -> Any:
    """The converted Compose file of a type-3 template: from a local folder, or a
    ``git clone`` of ``repository.url`` (into a temporary folder, removed after)."""
    url = repository.get("url")
    stackfile = stackfile or repository.get("stackfile") or "docker-compose.yml"
    if not isinstance(url, str) or not url:
        raise TemplateError("a Compose template (type 3) without repository.url")
    relative = Path(str(stackfile))
    if relative.is_absolute() or ".." in relative.parts:
        raise TemplateError(f"repository.stackfile {stackfile!r} must stay inside the "
                            "repository")
    remote = re.match(r"(https?|git|ssh)://|[\w.-]+@[\w.-]+:", url) is not None
    if not local_allowed and not remote:
        # A file downloaded from the network names no folder or file:// repository of
        # this machine: it would read what the downloader may read, not what it published.
        raise TemplateError(f"repository.url {url!r}: a template file from a URL may "
                            "only name https, http, git or ssh repositories")
    local = Path(url).expanduser()
    if not remote and local.is_dir():
        return _convert_compose(local / relative, str(stackfile), name, environ)
    with tempfile.TemporaryDirectory(prefix="ghostpanel-template-") as folder:
        command = ["git", "clone", "--quiet", "--depth", "1", "--", url, folder]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True,
                           timeout=CLONE_TIMEOUT,
                           # No prompt for a password, and none of git's transports
                           # that run commands (ext::) whatever the git config says.
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0",
                                "GIT_ALLOW_PROTOCOL": "https:http:git:ssh:file",
                                "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"})
        except FileNotFoundError:
            raise TemplateError("git is not installed: a Compose template's repository "
                                "is read with git clone") from None
        except subprocess.TimeoutExpired:
            raise TemplateError(f"git clone {url} took more than {CLONE_TIMEOUT:.0f} s"
                                ) from None
        except subprocess.CalledProcessError as error:
            said = (error.stderr or "").strip().splitlines()
            raise TemplateError(f"git clone {url} failed: "
                                f"{said[-1] if said else error.returncode}") from None
        return _convert_compose(Path(folder) / relative, str(stackfile), name, environ)


def _compose_body(entry: Mapping[str, Any], name: str, notes: list[str], *,
                  local_allowed: bool = True) -> tuple[str, list[Variable]]:
    """The Boltfile text and variables of a type-3 (Compose) template.

    The Compose file's ``${NAME}`` of each variable is interpolated to the placeholder
    ``${NAME}`` itself, so it survives the conversion and a deployment fills it; a
    preset gets its value; any other variable is unset (never this process's
    environment: a template must not take what the importing shell happens to hold).
    """
    repository = entry.get("repository")
    if not isinstance(repository, Mapping):
        raise TemplateError("a Compose template (type 3) without a repository")
    variables, fixed = _variables(entry.get("env"), "env", notes)
    environ = {**{v.name: f"${{{v.name}}}" for v in variables}, **fixed}
    result = _compose_result(repository, entry.get("stackfile"), name, environ,
                             local_allowed=local_allowed)
    notes.extend(f"compose: {note}" for note in result.notes)
    return str(result.boltfile_text), variables


_Converter = Callable[[Mapping[str, Any], str, list[str]], tuple[str, list[Variable]]]


def _one(entry: Mapping[str, Any], name: str, source: str,
         converters: Mapping[int, _Converter]) -> tuple[str, Template]:
    notes: list[str] = []
    kind = entry.get("type", 1)
    if kind == 2:
        raise TemplateError("a Swarm stack (type 2): its services need a Swarm cluster "
                            "(service replicas, placement, overlay networks), which "
                            "GhostPanel does not drive; refused")
    converter = converters.get(kind) if isinstance(kind, int) else None
    if converter is None:
        raise TemplateError(f"unknown template type {kind!r} (1 container, 2 Swarm stack, "
                            "3 Compose stack)")
    body, variables = converter(entry, name, notes)
    if entry.get("platform") and str(entry["platform"]).lower() != "linux":
        notes.append(f"platform: {entry['platform']!r}: GhostPanel runs Linux containers")
    categories = [str(c) for c in entry.get("categories") or () if isinstance(c, str)]
    description = str(entry.get("description") or entry.get("note") or "")
    text = dump_template(body=body, title=str(entry.get("title") or name),
                         description=description, categories=categories,
                         logo=str(entry.get("logo") or ""), variables=variables,
                         notes=notes)
    return text, load_template(text, name=name, source=source, where=name)


def import_portainer(data: Any, *, source: str = "",
                     local_repositories: bool = True) -> PortainerImport:
    """The templates of a parsed Portainer template file.

    Parameters
    ----------
    data
        The parsed JSON: ``{"version": "2" or "3", "templates": [...]}``.
    source
        The source the templates go in.
    local_repositories
        Whether a Compose template's ``repository.url`` may be a folder or a
        ``file://`` repository of this machine (False for a file downloaded from a URL).

    Returns
    -------
    PortainerImport
        Each converted template (with its TOML text, by name; titles that slug alike get
        ``-2``, ``-3``...), and each refused one with its reason.

    Raises
    ------
    TemplateError
        Not a Portainer file of version 2 or 3.
    """
    if isinstance(data, list):
        raise TemplateError("a list of templates is Portainer's version 1 format; "
                            "GhostPanel reads versions 2 and 3 ({\"version\": \"2\", "
                            "\"templates\": [...]})")
    if not is_portainer(data):
        raise TemplateError("not a Portainer template file: it needs a templates list")
    version = str(data.get("version", ""))
    if version not in ("2", "3"):
        raise TemplateError(f"Portainer template version {version or '(none)'!r}: "
                            "GhostPanel reads versions 2 and 3")
    converters: dict[int, _Converter] = {
        1: _container_body,
        3: functools.partial(_compose_body, local_allowed=local_repositories)}
    result = PortainerImport()
    for index, entry in enumerate(data["templates"]):
        title = str(entry.get("title") or f"template {index}") if isinstance(
            entry, Mapping) else f"template {index}"
        if not isinstance(entry, Mapping):
            result.refused.append(Refusal(title, "not a JSON object"))
            continue
        name = base = slug(title)
        counter = 1
        while name in result.texts:
            counter += 1
            name = f"{base}-{counter}"
        try:
            text, template = _one(entry, name, source, converters)
        except TemplateError as error:
            result.refused.append(Refusal(title, str(error)))
            continue
        result.texts[name] = text
        result.templates.append(template)
    return result


def parse_json(text: str, where: str) -> Any:
    """Parsed JSON, or a :class:`TemplateError` saying where it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateError(f"{where}: not JSON: {error}") from None


