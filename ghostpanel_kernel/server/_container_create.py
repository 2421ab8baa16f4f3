"""What ``POST /api/v1/containers`` creates: a Boltfile service, or an Engine API body.

Three bodies are read (the route's documentation in ``docs/api.md`` has examples):

- ``application/toml``: a Boltfile. The container is its only service, or the one
  named by ``?service=``; it is named ``?name=`` or after the service. The whole file is
  validated as Bolt would, and its errors come back with path, line and column, as
  ``ghostpanel boltfile validate`` prints them.
- ``application/json`` ``{"name": "web", "service": {...}}``: the keys of one
  ``[services.X]`` table as JSON. Errors name the key (``service.ports``), there being
  no line to point at.
- ``application/json`` with an ``Image`` member: the Engine API's own create body,
  given to the engine unchanged (``?name=`` names the container) once the JSON types
  of its known members are checked (:mod:`._engine_body`).

Whatever the body, what Podman would answer with a ``500`` although the mistake is the
client's -- a malformed image reference, a member of the wrong type, an environment
variable without a name -- is refused here with a ``422`` that names it.

A service is translated by Surge's own rules (``ghostpanel_kernel.surge``'s
documentation), so a table gives the same container here as in a ``surge apply``, with
two differences that come from creating one container rather than a project: named
volumes and networks are the engine's own names (no project prefix), and a service
without ``networks`` joins the engine's default network. Keys that only mean something
for a project (``replicas``, ``regions``, ``depends_on``) and relative bind sources
(relative to which folder?) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import tomlkit
from starlette.requests import Request

from .._exceptions import BoltfileError
from ..bolt import Boltfile, Diagnostic, VolumeMount, validate
from ..engine._reference import check_reference
from ..surge import SurgeError
from ..surge._desired import _Resources, _service
from ._engine_body import check_engine_body
from ._request_body import BodyProblem, json_object, text_body

__all__ = ["TOML_TYPES", "CreateProblem", "CreateRequest", "read_create_request"]

#: Content types read as a Boltfile.
TOML_TYPES: Final = frozenset({"application/toml", "text/toml", "text/x-toml"})

#: Service keys that describe a project's deployment, not one container.
_PROJECT_KEYS: Final = ("replicas", "regions", "depends_on")

#: The project name of the Boltfile a JSON service table is wrapped in (never shown).
_PROJECT: Final = "api"

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


class CreateProblem(BodyProblem):
    """A create body refused: as :class:`BodyProblem`, with ``diagnostics`` for the answer."""

    def __init__(self, status: int, detail: str,
                 diagnostics: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(status, detail)
        self.diagnostics = [dict(d) for d in diagnostics]


@dataclass
class CreateRequest:
    """A create body, read.

    Attributes
    ----------
    name
        The container's name (None: the engine picks one).
    create
        Keyword arguments of ``env.containers.create`` (a service), or None.
    engine_body
        The Engine API body (``Image``...), or None.
    networks
        Networks to connect after creation, with aliases.
    warnings
        The validator's warnings, as ``ghostpanel boltfile validate --json`` shows them.
    """

    name: str | None
    create: dict[str, Any] | None = None
    engine_body: dict[str, Any] | None = None
    networks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    warnings: list[dict[str, Any]] = field(default_factory=list)


class _OwnNames(_Resources):
    """Networks and volumes by the engine's own names: one container has no project."""

    def network(self, key: str, where: str) -> str:
        return key

    def volume(self, key: str) -> str:
        return key


def _check_name(name: object, where: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CreateProblem(422, f"{where} must be a container name: a letter or digit, "
                                 f"then letters, digits, '_', '.' or '-'; got {name!r}")
    return name


def _check_image(reference: object, where: str) -> None:
    # Podman answers a malformed reference with a 500: refused here as the client's.
    try:
        check_reference(reference, label=where)
    except ValueError as error:
        raise CreateProblem(422, str(error)) from None


def _json_diagnostic(diagnostic: Diagnostic, service: str) -> dict[str, Any]:
    """A validator diagnostic for a JSON table: the key as the body spells it."""
    key = diagnostic.key
    prefix = f"services.{service}"
    if key == prefix or key.startswith(prefix + "."):
        key = "service" + key[len(prefix):]
    return {"severity": diagnostic.severity, "key": key, "message": diagnostic.message,
            "hint": diagnostic.hint}


def _checked(boltfile: Boltfile, service: str, *, from_json: bool) -> list[dict[str, Any]]:
    """Validate as Bolt would; the warnings, or a 422 with the errors."""
    def shown(diagnostic: Diagnostic) -> dict[str, Any]:
        return _json_diagnostic(diagnostic, service) if from_json else diagnostic.to_dict()

    diagnostics = validate(boltfile)
    errors = [shown(d) for d in diagnostics if d.is_error]
    if errors:
        first = errors[0]
        where = first["key"] if from_json else \
            f"{first['path']}:{first['line']}:{first['column']}"
        plural = "s" if len(errors) > 1 else ""
        raise CreateProblem(422, f"the service has {len(errors)} error{plural}; first, at "
                                 f"{where}: {first['message']}", errors)
    return [shown(d) for d in diagnostics if not d.is_error]


def _translate(boltfile: Boltfile, service: str, name: str | None, *,
               from_json: bool) -> CreateRequest:
    warnings = _checked(boltfile, service, from_json=from_json)
    data = boltfile.to_dict()
    table: dict[str, Any] = data["services"][service]
    where = "service" if from_json else f"services.{service}"
    project_keys = [key for key in _PROJECT_KEYS if key in table]
    if project_keys:
        raise CreateProblem(422, f"{where}: {', '.join(project_keys)} describe a project's "
                                 "deployment, not one container; remove them, or deploy "
                                 "the Boltfile with POST /api/v1/surge/apply")
    for spec in table.get("volumes") or []:
        source = VolumeMount.parse(spec).source
        if source is not None and source.startswith((".", "~")):
            raise CreateProblem(422, f"{where}.volumes: the bind source {source!r} is "
                                     "relative; give an absolute path on the agent's host")
    try:
        spec = _service(_PROJECT, service, table, base_dir=Path("/"),
                        resources=_OwnNames(_PROJECT, data), replicas=1)
    except SurgeError as error:
        raise CreateProblem(422, error.message) from None
    create = dict(spec.create)
    _check_image(create["image"], f"{where}.image")
    wrong = [key for key in create.get("env", {}) if not key or "=" in key]
    if wrong:
        # Podman answers an environment variable without a name with a 500.
        raise CreateProblem(422, f"{where}.env: {wrong[0]!r} is not a variable name "
                                 "(it must be non-empty, without '=')")
    if "networks" not in table:  # the engine's default network, as `docker run` does
        create.pop("network", None)
        create.pop("network_aliases", None)
    return CreateRequest(name=name, create=create, networks=spec.networks,
                         warnings=warnings)


def _from_toml(text: str, service: str | None, name: str | None) -> CreateRequest:
    try:
        boltfile = Boltfile.loads(text, path="<body>")
    except BoltfileError as error:
        raise CreateProblem(400, str(error), [{
            "severity": "error", "path": error.path, "line": error.line,
            "column": error.column, "key": "", "message": error.message, "hint": ""}]
            ) from None
    services = boltfile.services
    if service is None:
        if len(services) != 1:
            listed = ", ".join(services) or "none"
            raise CreateProblem(422, f"the Boltfile has {len(services)} services ({listed}); "
                                     "say which to create with ?service=NAME")
        service = services[0]
    elif service not in services:
        raise CreateProblem(422, f"the Boltfile has no service {service!r}; it has "
                                 f"{', '.join(services) or 'none'}")
    return _translate(boltfile, service, name or _check_name(service, "the service name"),
                      from_json=False)


def _from_service_json(document: dict[str, Any], name: str | None) -> CreateRequest:
    unknown = sorted(set(document) - {"name", "service"})
    if unknown:
        raise CreateProblem(422, f"unknown member(s) {', '.join(unknown)}: the body is "
                                 "{\"name\": ..., \"service\": {...}}")
    table = document["service"]
    if not isinstance(table, dict):
        raise CreateProblem(422, "service must be an object: the keys of a Boltfile "
                                 f"[services.X] table; got {type(table).__name__}")
    name = _check_name(document.get("name"), "name") or name
    service = name or "service"
    try:
        text = tomlkit.dumps({"project": _PROJECT, "services": {service: table}})
        boltfile = Boltfile.loads(text, path="<body>")
    except (BoltfileError, TypeError, ValueError) as error:
        # JSON that TOML cannot hold: a null, or an array mixing tables and values.
        raise CreateProblem(422, f"service cannot be a Boltfile table: {error}") from None
    return _translate(boltfile, service, name, from_json=True)


async def read_create_request(request: Request) -> CreateRequest:
    """Read and check ``POST /api/v1/containers``'s body (see the module notes).

    Raises
    ------
    BodyProblem
        The body cannot be read (413, 400) or is not a create request (422); a
        :class:`CreateProblem` carries the validator's diagnostics.
    """
    name = _check_name(request.query_params.get("name"), "?name")
    service = request.query_params.get("service")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in TOML_TYPES:
        return _from_toml(await text_body(request), service, name)
    if media_type not in ("", "application/json"):
        raise CreateProblem(415, f"the body's type {media_type!r} is not read here: send "
                                 "application/json or application/toml")
    document = await json_object(request)
    if "service" in document:
        return _from_service_json(document, name)
    if "Image" in document:
        _check_image(document["Image"], "Image")
        try:
            check_engine_body(document)
        except ValueError as error:
            raise CreateProblem(422, str(error)) from None
        return CreateRequest(name=name, engine_body=document)
    raise CreateProblem(422, "the body is neither {\"name\": ..., \"service\": {<Boltfile "
                             "service keys>}} nor an Engine API create body with Image")
