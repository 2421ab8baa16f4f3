"""A live, read-only view of one ``[services.<name>]`` table of a Boltfile.

:class:`BoltfileService` reads the Boltfile's current data on every access; changing a
service is the Boltfile's business (``Boltfile.set_image``, ``Boltfile.set_ports``...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from ghostpanel_kernel.bolt._boltfile import Boltfile

__all__ = ["BoltfileService"]

_T = TypeVar("_T")


def _as_string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


class _ServiceKey(Generic[_T]):
    """A read-only attribute of :class:`BoltfileService` (like ``property``) that reads
    the service key of the same name and converts it with ``read``."""

    def __init__(self, read: Callable[[Any], _T], doc: str) -> None:
        self._read = read
        self._key = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = name

    @overload
    def __get__(self, service: None, owner: type) -> _ServiceKey[_T]: ...

    @overload
    def __get__(self, service: BoltfileService, owner: type) -> _T: ...

    def __get__(self, service: BoltfileService | None, owner: type) -> _ServiceKey[_T] | _T:
        if service is None:
            return self
        return self._read(service.get(self._key))

    def __set__(self, service: BoltfileService, value: Any) -> None:
        raise AttributeError(f"property {self._key!r} of 'BoltfileService' object has no "
                             "setter")

    def __delete__(self, service: BoltfileService) -> None:
        raise AttributeError(f"property {self._key!r} of 'BoltfileService' object has no "
                             "deleter")


class BoltfileService:
    """One ``[services.<name>]`` table of a :class:`Boltfile`, read live.

    The view reads the Boltfile's current document on every access, so it stays
    right across edits; use the Boltfile's methods to change it.

    Examples
    --------
    >>> from ghostpanel_kernel.bolt import Boltfile
    >>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n'
    ...                     'ports = ["80:80"]\\n')
    >>> web = bf.service("web")
    >>> web.image, web.ports
    ('nginx', ('80:80',))
    """

    image = _ServiceKey(_as_string, "The ``image`` the service runs, if it names one.")
    build = _ServiceKey(_as_string, "The ``build`` context, if the service is built.")
    capsule = _ServiceKey(_as_string, "The Bolt ``capsule``, if the service is one.")
    ports = _ServiceKey(_as_strings, "The ``ports`` entries as written (see "
                        ":class:`PortMapping` to read them).")
    volumes = _ServiceKey(_as_strings, "The ``volumes`` entries as written (see "
                          ":class:`VolumeMount`).")
    depends_on = _ServiceKey(_as_strings, "The services this one starts after.")
    networks = _ServiceKey(_as_strings, "The networks the service joins.")

    def __init__(self, boltfile: Boltfile, name: str) -> None:
        self._boltfile = boltfile
        self._name = name

    @property
    def name(self) -> str:
        """The service's name (its key under ``services``)."""
        return self._name

    def to_dict(self) -> dict[str, Any]:
        """The service table as plain Python data.

        Raises
        ------
        KeyError
            The service is no longer in the Boltfile.
        """
        data = self._boltfile.to_dict().get("services")
        if not isinstance(data, dict) or not isinstance(data.get(self._name), dict):
            raise KeyError(f"no service {self._name!r} in {self._boltfile.path}")
        table: dict[str, Any] = data[self._name]
        return table

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the service table, as plain Python data."""
        return self.to_dict().get(key, default)

    def __repr__(self) -> str:
        return f"<BoltfileService {self._name!r} of {self._boltfile.path}>"
