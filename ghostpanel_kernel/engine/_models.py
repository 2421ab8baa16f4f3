"""Model base: one engine object (container, image, volume, network) and its attrs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._client import EngineClient

__all__ = ["Model"]


class Model:
    """An engine object as the engine last described it.

    ``attrs`` is the engine's JSON, unchanged: from a listing it is the list entry, from
    ``get``/``reload`` the full inspect answer. Properties read whichever is there, so a
    listing never needs one inspect per object (docker-py's N+1).

    Attributes
    ----------
    attrs
        The engine's JSON for this object.
    environment
        Name of the environment it came from, so rows from many hosts stay apart.
    """

    id_attribute: ClassVar[str] = "Id"
    _sync_wrap: ClassVar[bool] = True  # the sync facade wraps these in a proxy

    def __init__(self, client: EngineClient, attrs: Mapping[str, Any], *,
                 environment: str = "") -> None:
        self._client = client
        self.attrs: dict[str, Any] = dict(attrs)
        self.environment = environment

    @property
    def id(self) -> str:
        """The engine's full id."""
        return str(self.attrs.get(self.id_attribute, ""))

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the id, as ``docker ps`` shows it."""
        ident = self.id
        if ident.startswith("sha256:"):
            ident = ident[len("sha256:"):]
        return ident[:12]

    @property
    def name(self) -> str:
        """Human name of the object (defaults to the short id)."""
        return self.short_id

    async def reload(self) -> None:
        """Refresh ``attrs`` with a fresh inspect from the engine."""
        self.attrs = dict(await self._inspect())

    async def _inspect(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id))

    def __repr__(self) -> str:
        where = f" @{self.environment}" if self.environment else ""
        return f"<{type(self).__name__}: {self.name}{where}>"
