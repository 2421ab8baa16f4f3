"""Image references: the grammar the engines parse, checked before a request is sent.

Podman answers a malformed reference in a create body with a ``500`` ("invalid
reference format"), which reads as the engine's failure rather than the caller's; a
check here turns it into a ``ValueError`` that says what is wrong. The grammar is the
one of the ``distribution/reference`` package both engines use::

    reference := name [":" tag] ["@" digest]
    name      := [domain "/"] component ("/" component)*
    domain    := label ("." label)* [":" port]
    component := [a-z0-9]+ (separator [a-z0-9]+)*     separator := "." | "_" | "__" | "-"+
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex{32,}

An image id (64 hex digits, with or without ``sha256:``) is a reference too.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["check_reference"]

_COMPONENT: Final = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_LABEL: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN: Final = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_NAME: Final = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG: Final = r"[\w][\w.-]{0,127}"
_DIGEST: Final = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE: Final = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
_IMAGE_ID: Final = re.compile(r"(?:sha256:)?[0-9a-f]{64}", re.ASCII)
#: The longest repository name the engines accept.
_MAX_NAME: Final = 255


def check_reference(reference: object, *, label: str = "image") -> str:
    """``reference`` when the engines can parse it as an image reference.

    Raises
    ------
    ValueError
        Not a reference, with what a reference looks like.

    Examples
    --------
    >>> check_reference("localhost:5000/team/web:1.2@sha256:" + "a" * 64)[:14]
    'localhost:5000'
    >>> check_reference("Busybox")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image 'Busybox' is not an image reference: write [REGISTRY/]NAME[:TAG]...
    """
    if isinstance(reference, str):
        if _IMAGE_ID.fullmatch(reference):
            return reference
        match = _REFERENCE.fullmatch(reference)
        if match is not None and len(match["name"]) <= _MAX_NAME:
            return reference
    raise ValueError(f"{label} {reference!r} is not an image reference: write "
                     "[REGISTRY/]NAME[:TAG][@DIGEST] in lowercase, e.g. "
                     "'docker.io/library/busybox:1.36'")
