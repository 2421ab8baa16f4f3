"""Boltfile documents: load, read, edit, format and save, keeping comments and layout.

:class:`Boltfile` wraps a tomlkit document, so a file loaded and saved unchanged comes
back byte for byte, and edits touch only the lines they change. The text of each edit
comes from :mod:`~ghostpanel_kernel.bolt._edits`, which works from the positions the
scanner records (:mod:`~ghostpanel_kernel.bolt._layout`); the tomlkit parse stays the
source of truth for what the keys and values *are*: every edit is re-parsed and
compared with the data the edit was meant to produce, and refused if they differ.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from os import PathLike, fspath
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from ghostpanel_kernel.bolt._data import nesting_depth, same_data
from ghostpanel_kernel.bolt._edits import (
    add_service_text,
    delete_key_text,
    plain,
    remove_service_text,
    replace_service_key_text,
    set_key_text,
)
from ghostpanel_kernel.bolt._format import format_text
from ghostpanel_kernel.bolt._layout import SourceLayout
from ghostpanel_kernel.bolt._limits import MAX_NESTING, find_limit_problem
from ghostpanel_kernel.bolt._parse import (
    decode_boltfile,
    limit_error,
    parse_document,
    read_boltfile,
    read_problem,
)
from ghostpanel_kernel.bolt._scanner import scan_layout
from ghostpanel_kernel.bolt._service import BoltfileService
from ghostpanel_kernel.bolt._values import PortMapping, VolumeMount

__all__ = ["Boltfile"]


def _check_name(what: str, name: str) -> None:
    if not name or " " in name:
        raise ValueError(f"invalid {what} name {name!r}: Bolt wants a non-empty name "
                         "without spaces")


class Boltfile:
    """A Boltfile (Bolt's TOML project file), loaded for reading and editing.

    Loading and saving an unchanged file gives it back byte for byte. The edits
    (:meth:`add_service`, :meth:`set_image`, :meth:`set_ports`, :meth:`remove_service`,
    :meth:`set_service_key`, ...) change only the lines they must and keep every
    comment. Whether Bolt accepts the file is :func:`ghostpanel_kernel.bolt.validate`'s
    business: a Boltfile that Bolt would refuse loads fine, as long as it is TOML.

    Parameters
    ----------
    document
        The parsed tomlkit document.
    path
        Where it came from (``"<string>"`` for text).

    Examples
    --------
    >>> bf = Boltfile.loads('project = "demo"  # my stack\\n\\n[services.web]\\n'
    ...                     'image = "nginx:1.27"  # pinned\\n')
    >>> bf.set_image("web", "nginx:1.28")
    >>> bf.add_service("cache", image="redis:7", ports=["6379:6379"])
    <BoltfileService 'cache' of <string>>
    >>> print(bf.dumps(), end="")
    project = "demo"  # my stack
    <BLANKLINE>
    [services.web]
    image = "nginx:1.28"  # pinned
    <BLANKLINE>
    [services.cache]
    image = "redis:7"
    ports = ["6379:6379"]
    """

    def __init__(self, document: TOMLDocument, *, path: str = "<string>") -> None:
        self._document = document
        self._path = path

    # -- loading and saving
    @classmethod
    def load(cls, path: str | PathLike[str]) -> Boltfile:
        """Read the Boltfile at ``path``.

        Raises
        ------
        BoltfileError
            The file cannot be read, is not UTF-8, is not TOML, or is beyond one of
            GhostPanel's limits (see :mod:`~ghostpanel_kernel.bolt._limits`); with line
            and column.
        """
        name = fspath(path)
        raw = read_boltfile(name)
        problem = read_problem(raw, None)  # before decoding: a cut-short file is too big
        if problem is not None:
            raise limit_error(problem, path=name)
        return cls.loads(decode_boltfile(raw, path=name), path=name)

    @classmethod
    def loads(cls, text: str, *, path: str = "<string>") -> Boltfile:
        """Parse Boltfile text; ``path`` only names it in messages.

        Raises
        ------
        BoltfileError
            The text is not TOML (with line and column).
        """
        return cls(parse_document(text, path=path), path=path)

    @property
    def path(self) -> str:
        """The file this Boltfile was loaded from or last saved to."""
        return self._path

    @property
    def document(self) -> TOMLDocument:
        """The tomlkit document, for edits the methods here do not cover.

        Structural edits (:meth:`add_service`, :meth:`remove_service`, ...) replace the
        document with a fresh parse: hold on to the Boltfile, not to this object.
        """
        return self._document

    def dumps(self) -> str:
        """The document as TOML text (an unchanged file comes back byte for byte)."""
        return self._document.as_string()

    def to_dict(self) -> dict[str, Any]:
        """The whole document as plain Python data."""
        return self._document.unwrap()

    def save(self, path: str | PathLike[str] | None = None) -> None:
        """Write the document to ``path`` (default: where it was loaded from).

        Raises
        ------
        ValueError
            No ``path`` was given and the Boltfile did not come from a file.
        OSError
            The file cannot be written.
        """
        target = fspath(path) if path is not None else self._path
        if target == "<string>":
            raise ValueError("this Boltfile was read from a string; pass save(path=...)")
        # newline="" writes the text's own newlines (CRLF files stay CRLF).
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(self.dumps())
        self._path = target

    def format(self) -> str:
        """The document as normalised text, what ``ghostpanel boltfile fmt`` writes.

        Tables and keys come in the order Bolt declares them (``project``, the GhostPanel
        tables ``quic_fabric`` and ``dns_config``, ``services`` with ``image``/``build``/
        ``capsule`` first, ``networks``, ``volumes``, ``snapshots``; unknown keys after,
        in their order); one blank line before each table; ``key = value`` with single
        spaces; arrays and inline tables spaced as ``["a", "b"]`` and ``{ a = 1 }``;
        trailing comments of consecutive keys aligned. Comments stay with the key or
        table below them. Values keep their spelling. The document itself is not changed.

        Raises
        ------
        BoltfileError
            The document (edited through :attr:`document`) is beyond one of GhostPanel's
            limits (see :mod:`~ghostpanel_kernel.bolt._limits`).
        RuntimeError
            The formatted text would not read back as the same data (a bug; nothing
            is written in that case).
        """
        return format_text(self.dumps(), self.to_dict(), path=self._path)

    # -- reading
    @property
    def project(self) -> str | None:
        """The ``project`` name, or ``None`` when it is missing or not a string."""
        value = self.to_dict().get("project")
        return value if isinstance(value, str) else None

    @property
    def services(self) -> list[str]:
        """The service names, in file order."""
        services = self.to_dict().get("services")
        return list(services) if isinstance(services, dict) else []

    def service(self, name: str) -> BoltfileService:
        """The service called ``name``.

        Raises
        ------
        KeyError
            There is no such service.
        """
        if name not in self.services:
            raise KeyError(f"no service {name!r} in {self._path}")
        return BoltfileService(self, name)

    # -- edits
    def set_project(self, name: str) -> None:
        """Set the top-level ``project`` name (Bolt wants it non-empty, without spaces).

        Raises
        ------
        ValueError
            ``name`` is empty or has a space, or ``project`` is written as a table.
        """
        _check_name("project", name)
        data = self.to_dict()
        if "project" in data and not isinstance(data["project"], str):
            raise ValueError("`project` is not a string here (a [project] table?); remove "
                             "it first through .document")
        expected = copy.deepcopy(data)
        expected["project"] = name
        self._apply(set_key_text(self._layout(), (), "project", name), expected)

    def add_service(
        self,
        name: str,
        *,
        image: str | None = None,
        build: str | None = None,
        capsule: str | None = None,
        ports: Sequence[str] = (),
        volumes: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        depends_on: Sequence[str] = (),
        networks: Sequence[str] = (),
        command: Sequence[str] | None = None,
        restart: str | None = None,
    ) -> BoltfileService:
        """Add a ``[services.<name>]`` table after the last service.

        Parameters
        ----------
        name
            The new service's name (non-empty, no spaces).
        image, build, capsule
            Where the service comes from; give exactly one (Bolt's rule).
        ports
            ``"HOST:CONTAINER"`` or ``"PORT"`` entries.
        volumes
            ``"SOURCE:TARGET[:OPTIONS]"`` entries.
        environment
            Environment variables (written as an inline table).
        depends_on, networks, command, restart
            Written as given when set.

        Returns
        -------
        BoltfileService
            The new service.

        Raises
        ------
        ValueError
            A bad name, not exactly one source, a malformed port or volume, a service
            of that name already there, or a ``services`` inline table to add to.
        """
        _check_name("service", name)
        sources = {k: v for k, v in (("image", image), ("build", build), ("capsule", capsule))
                   if v is not None}
        if len(sources) != 1:
            raise ValueError("give exactly one of image=, build=, capsule= (Bolt requires "
                             "exactly one per service)")
        for spec in ports:
            PortMapping.parse(spec)
        for spec in volumes:
            VolumeMount.parse(spec)
        data = self.to_dict()
        services = data.get("services", {})
        if not isinstance(services, dict):
            raise ValueError("`services` is not a table in this Boltfile")
        if name in services:
            raise ValueError(f"service {name!r} already exists")
        table: dict[str, Any] = dict(sources)
        optional: dict[str, Any] = {
            "ports": list(ports), "volumes": list(volumes), "environment": environment,
            "depends_on": list(depends_on), "networks": list(networks),
            "command": None if command is None else list(command), "restart": restart,
        }
        table.update({k: plain(v) for k, v in optional.items() if v})
        expected = copy.deepcopy(data)
        expected.setdefault("services", {})[name] = table
        self._apply(add_service_text(self._layout(), name, table), expected)
        return BoltfileService(self, name)

    def remove_service(self, name: str) -> None:
        """Remove a service: its tables, its keys and the comment lines right above them.

        Other services' ``depends_on`` entries naming it are left alone; the validator
        reports them.

        Raises
        ------
        KeyError
            There is no such service.
        """
        self.service(name)  # raises the KeyError
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][name]
        self._apply(remove_service_text(self._layout(), name), expected)

    def set_image(self, service: str, image: str) -> None:
        """Make ``service`` run ``image``.

        A service has exactly one source, so a ``build`` or ``capsule`` key is replaced
        (in place, keeping its line's comment).

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            ``image`` is empty.
        """
        if not image:
            raise ValueError("image must not be empty")
        table = self.service(service).to_dict()
        others = [k for k in ("build", "capsule") if k in table]
        if "image" in table or not others:
            self.set_service_key(service, "image", image)
            for other in others:
                self.unset_service_key(service, other)
            return
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][service][others[0]]
        expected["services"][service]["image"] = image
        text = replace_service_key_text(self._layout(), service, others[0], "image", image)
        self._apply(text, expected)
        for extra in others[1:]:
            self.unset_service_key(service, extra)

    def set_ports(self, service: str, ports: Sequence[str]) -> None:
        """Replace the ``ports`` of ``service`` (a multi-line list stays multi-line).

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            An entry is not a port mapping (see :meth:`PortMapping.parse`).
        """
        for index, spec in enumerate(ports):
            try:
                PortMapping.parse(spec)
            except ValueError as exc:
                raise ValueError(f"ports[{index}]: {exc}") from None
        self.set_service_key(service, "ports", list(ports))

    def set_service_key(self, service: str, key: str, value: Any) -> None:
        """Set one key of a service table to a TOML value (string, number, bool, list,
        or a mapping, written as an inline table).

        An existing value is replaced where it is written; a new key goes after the
        table's last key.

        Raises
        ------
        KeyError
            There is no such service.
        ValueError
            ``key`` is written as a table of its own (``[services.web.environment]``);
            change that through :attr:`document`. Or ``value`` is nested deeper than
            GhostPanel reads (see :mod:`~ghostpanel_kernel.bolt._limits`).
        """
        table = self.service(service).to_dict()
        if nesting_depth(value) > MAX_NESTING - 3:  # services.<name>.<key> are 3 levels
            raise ValueError(f"the value for `{key}` is nested more than {MAX_NESTING} levels "
                             "deep in the file; GhostPanel refuses deeper nesting")
        layout = self._layout()
        path = ("services", service, key)
        if key in table and (path not in layout.keys or path not in layout.value_at):
            raise ValueError(f"`{key}` of {service!r} is written as a table; edit it "
                             "through .document")
        expected = copy.deepcopy(self.to_dict())
        expected["services"][service][key] = plain(value)
        self._apply(set_key_text(layout, ("services", service), key, value), expected)

    def unset_service_key(self, service: str, key: str) -> None:
        """Remove one key of a service table.

        Raises
        ------
        KeyError
            There is no such service, or it has no such key.
        ValueError
            ``key`` is a table of its own; remove it through :attr:`document`.
        """
        table = self.service(service).to_dict()
        if key not in table:
            raise KeyError(f"service {service!r} has no key {key!r}")
        expected = copy.deepcopy(self.to_dict())
        del expected["services"][service][key]
        self._apply(delete_key_text(self._layout(), ("services", service, key)), expected)

    # -- edit plumbing
    def _layout(self) -> SourceLayout:
        text = self.dumps()
        # The scanner recurses once per nesting level; .document edits skip the limits.
        problem = find_limit_problem(text)
        if problem is not None:
            raise ValueError(f"this Boltfile is beyond GhostPanel's limits: {problem.message}")
        layout = scan_layout(text)
        if not layout.complete:
            raise ValueError("this Boltfile uses TOML syntax GhostPanel's editor does not "
                             "follow; make this change through .document")
        return layout

    def _apply(self, text: str, expected: dict[str, Any]) -> None:
        """Adopt ``text`` if it reads back as ``expected``; otherwise change nothing."""
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as exc:
            raise ValueError(f"this edit does not fit the file's layout ({exc}); make it "
                             "through .document") from exc
        actual = document.unwrap()
        if expected.get("services") == {} and "services" not in actual:
            expected = {k: v for k, v in expected.items() if k != "services"}
        if not same_data(actual, expected):
            raise RuntimeError("an edit would have changed more than asked; this is a "
                               "GhostPanel bug, nothing was changed")
        self._document = document

    def __repr__(self) -> str:
        return f"<Boltfile {self._path} project={self.project!r} services={self.services}>"
