"""Routes of ``/api/v1`` for events (being built: no route yet).

Contract for every ``_routes_*`` module: ``ROUTES`` (Starlette routes with full paths,
``/api/v1/...``) and ``PATHS`` (their OpenAPI 3.1 path items, keyed by the templated
path), which ``_api.api_app`` mounts and ``_openapi`` documents.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

__all__ = ["PATHS", "ROUTES"]

ROUTES: list[BaseRoute] = []
PATHS: dict[str, dict[str, Any]] = {}
