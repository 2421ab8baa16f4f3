"""Check that an Engine API path is in canonical form, and split it into segments.

The gateway judges a request by its path and then forwards it; if the gateway and the
engine could read one path two ways, a caller could get one route past the policy and
have the engine run another. So a path must be canonical, and one that is not is
refused (``400``), never normalised and forwarded (``docs/rbac.md``):

- at most one version prefix ``/v<major>.<minor>``: digits only, no leading zeros, no
  third component, and at least ``v1.24`` (the oldest API both engines serve);
- no empty segments (``//``, a trailing ``/``) and no ``.`` or ``..`` segments, even
  percent-encoded;
- no ``\\``, control characters, spaces or non-ASCII bytes, raw or percent-encoded, and
  no percent-encoded ``/`` except as the first character of a container's name (engines
  strip one leading ``/`` from names; ``classify`` allows it only where a name goes);
- every ``%`` starts a valid two-digit escape, and the decoded segment is UTF-8.

Other percent-encoding is allowed and decoded (a container name may need it); the route
table then checks that it does not appear where a fixed word of a route is expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._refusal import Refusal

__all__ = ["MIN_VERSION", "CanonicalPath", "canonical_path"]

#: The oldest Engine API version the gateway forwards.
MIN_VERSION: Final = (1, 24)

# What Docker's and Podman's routers take as a version prefix: "v" and digits and dots.
_VERSION_LIKE: Final = re.compile(r"v[0-9.]+")
_VERSION: Final = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class CanonicalPath:
    """A canonical Engine API path, split.

    Attributes
    ----------
    version
        The version prefix without its ``v`` (``"1.41"``), or None.
    raw
        The segments after the version as sent (still percent-encoded).
    decoded
        The same segments percent-decoded.
    """

    version: str | None
    raw: tuple[str, ...]
    decoded: tuple[str, ...]

    @property
    def path(self) -> str:
        """The decoded path without its version prefix (``/containers/abc/stop``)."""
        return "/" + "/".join(self.decoded)


def _bad(raw_path: bytes, why: str) -> Refusal:
    shown = raw_path.decode("ascii", "backslashreplace")
    return Refusal(400, f"the path {shown!r} is not in canonical form ({why}); the "
                        "gateway forwards canonical paths only")


def _decode_segment(raw_path: bytes, segment: bytes) -> str:
    if b"%" in _ESCAPE.sub(b"", segment):
        raise _bad(raw_path, "a '%' that does not start a two-digit escape")
    decoded = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), segment)
    for index, byte in enumerate(decoded):
        # Engines strip one leading "/" from a container's name (``/web`` is ``web``),
        # so ``%2Fweb`` may name a container: allowed as a segment's first character
        # only; the route table then allows it only where a name goes.
        if byte == 0x2F and not (index == 0 and segment[:3].upper() == b"%2F"):
            raise _bad(raw_path, "a percent-encoded '/'")
        if byte == 0x5C:
            raise _bad(raw_path, "a '\\' in a segment")
        if byte < 0x20 or byte == 0x7F:
            raise _bad(raw_path, "a control character")
    if decoded.removeprefix(b"/") in (b".", b"..", b""):
        raise _bad(raw_path, f"a {decoded.decode()!r} segment")
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(raw_path, "a segment that does not decode to UTF-8") from None


def canonical_path(raw_path: bytes) -> CanonicalPath:
    """Check ``raw_path`` (as sent, without the query) and split it.

    Raises
    ------
    Refusal
        ``400`` for a path not in canonical form.

    Examples
    --------
    >>> split = canonical_path(b"/v1.41/containers/web%2Dfront/stop")
    >>> split.version, split.raw[1], split.decoded[1]
    ('1.41', 'web%2Dfront', 'web-front')
    >>> canonical_path(b"/v1.41.0/containers/json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ghostpanel_kernel.gateway._refusal.Refusal: the path '/v1.41.0/containers/json' is ...
    """
    for byte in raw_path:
        if byte <= 0x20 or byte >= 0x7F:
            raise _bad(raw_path, "a space, control character or non-ASCII byte")
        if byte == 0x5C:
            raise _bad(raw_path, "a '\\'")
    if not raw_path.startswith(b"/"):
        raise _bad(raw_path, "it does not start with '/'")
    segments = raw_path[1:].split(b"/")
    if any(not segment for segment in segments):
        raise _bad(raw_path, "an empty segment")
    version: str | None = None
    first = segments[0].decode("ascii")
    if _VERSION_LIKE.fullmatch(first) or (first.startswith("v") and "%" in first):
        match = _VERSION.fullmatch(first)
        if match is None:
            raise _bad(raw_path, "a version prefix that is not v<major>.<minor> without "
                                 "leading zeros")
        numbers = (int(match.group(1)), int(match.group(2)))
        if numbers < MIN_VERSION:
            raise _bad(raw_path, f"API version {first[1:]} is older than "
                                 f"{MIN_VERSION[0]}.{MIN_VERSION[1]}")
        version = first[1:]
        segments = segments[1:]
        if not segments:
            raise _bad(raw_path, "nothing after the version prefix")
    decoded = tuple(_decode_segment(raw_path, segment) for segment in segments)
    return CanonicalPath(version, tuple(s.decode("ascii") for s in segments), decoded)
