"""The hash a token is kept as: shared by the store that writes it and the agent's check."""

from __future__ import annotations

import hashlib

__all__ = ["TOKEN_PREFIX", "token_digest"]

#: Every agent token starts so: a leaked one is recognisable (secret scanners match it).
TOKEN_PREFIX = "gpa_"


def token_digest(token: str) -> str:
    """The hex SHA-256 the store keeps for ``token``.

    A plain hash suffices: a token has 256 random bits, so no salt or slow hash is
    needed against guessing (what passwords need).

    Examples
    --------
    >>> token_digest("gpa_x")[:12]
    'c839d38adc30'
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
