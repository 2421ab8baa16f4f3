"""Run the real gateway with a table of tokens standing in for JupyterHub (tests only).

::

    python -m tests.gateway_stand_in --bind 127.0.0.1:PORT --identities FILE.json

``FILE.json`` maps each token to the identity the hub would report for it:
``{"op-blue": {"name": "olga", "groups": ["blue"], "admin": false, "scopes": []}}``.
The file is read again whenever it changes, so a test can take a token or a scope away
while the gateway runs. Everything else (the store under ``$GHOSTPANEL_HOME``, the
engines, Hypercorn, signals) is the gateway's own code: only the question "whose token
is this?" is answered here instead of by a hub. The library has no switch for this: the
identity source is a constructor argument that only this test module passes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ghostpanel_kernel.gateway._identity import Identity
from ghostpanel_kernel.gateway._serve_gateway import GatewaySettings, run


class TokenTable:
    """Token -> Identity, from a JSON file re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: int | None = None
        self._table: dict[str, Identity] = {}

    def _load(self) -> None:
        stamp = self.path.stat().st_mtime_ns
        if stamp == self._seen:
            return
        raw = json.loads(self.path.read_text())
        self._table = {token: Identity(name=entry["name"],
                                       groups=frozenset(entry.get("groups", ())),
                                       admin=bool(entry.get("admin", False)),
                                       scopes=frozenset(entry.get("scopes", ())),
                                       kind=entry.get("kind", "user"))
                       for token, entry in raw.items()}
        self._seen = stamp

    async def __call__(self, token: str) -> Identity | None:
        self._load()
        return self._table.get(token)


def main() -> None:
    """Parse the arguments and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--prefix", default="/services/ghostpanel/")
    parser.add_argument("--identities", required=True, type=Path)
    args = parser.parse_args()
    run(GatewaySettings(bind=args.bind, prefix=args.prefix),
        identity_source=TokenTable(args.identities))


if __name__ == "__main__":
    main()
