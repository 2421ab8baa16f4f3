"""The OpenAPI 3.1 document of ``/api/v1``: valid, and in step with the routes.

The drift guard: every route of :func:`api_app` is documented with its method, and
every documented operation is a route. Validity: the document against the OpenAPI 3.1
meta-schema (the one schemathesis ships and checks documents with), every inline schema
against JSON Schema 2020-12, and every ``$ref`` resolving.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ghostpanel_kernel.server._api import ROUTE_MODULES, api_app, api_document
from ghostpanel_kernel.server._docs_page import render_docs
from ghostpanel_kernel.server._openapi import HTTP_METHODS, openapi_document
from tests.unit.api_client import api_client, problem_of


def _routes() -> set[tuple[str, str]]:
    app = api_app()
    found = set()
    for route in app.routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET itself
                    found.add((method.lower(), route.path))
        else:  # a WebSocket route: documented as a GET (the handshake)
            found.add(("get", route.path))  # type: ignore[attr-defined]
    return found


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items()
            for method in HTTP_METHODS if method in item}


def test_every_route_is_documented_and_every_operation_is_a_route() -> None:
    routes, operations = _routes(), _operations(api_document())
    assert routes - operations == set(), "routes missing from the OpenAPI document"
    assert operations - routes == set(), "documented operations without a route"
    assert ("post", "/api/v1/containers/{id}/snapshot") in operations


def test_the_document_is_valid_openapi_3_1() -> None:
    document = api_document()
    assert document["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)


def _schemas(node: Any) -> Iterator[Any]:
    """Every Schema Object of the document (the values of ``schema`` members)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                yield value
            yield from _schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schemas(item)


def test_every_schema_is_json_schema_2020_12_and_every_ref_resolves() -> None:
    document = api_document()
    schemas = [*_schemas(document), *document["components"]["schemas"].values()]
    assert len(schemas) > 20
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document))
    assert refs and set(refs) <= set(document["components"]["schemas"])


def test_every_operation_has_an_id_a_summary_and_the_auth_answers() -> None:
    document = api_document()
    ids = []
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                ids.append(operation["operationId"])
                assert operation.get("summary") or operation.get("description"), (
                    method, path)
                assert {"401", "429"} <= set(operation["responses"]), (method, path)
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_an_operation_documented_twice_is_refused() -> None:
    item = {"/x": {"get": {"responses": {}}}}
    with pytest.raises(ValueError, match="GET /x is documented twice"):
        openapi_document([item, item])
    with pytest.raises(ValueError, match="operationId same is used more than once"):
        openapi_document([{"/x": {"get": {"operationId": "same"}},
                           "/y": {"get": {"operationId": "same"}}}])


def test_an_operation_without_an_id_is_given_one() -> None:
    document = openapi_document([{"/api/v1/containers/{id}/surge": {"post": {}}}])
    operation = document["paths"]["/api/v1/containers/{id}/surge"]["post"]
    assert operation["operationId"] == "postContainersByIdSurge"


async def test_the_document_and_its_page_are_served() -> None:
    async with api_client() as http:
        document = await http.get("/api/v1/openapi.json")
        page = await http.get("/api/v1/docs")
    assert document.status_code == 200 and document.json() == api_document()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Self-contained: nothing is loaded from elsewhere.
    assert "<script" not in page.text and not re.search(r'(src|href)="(https?:)?//', page.text)
    assert "/api/v1/containers/{id}/restart" in page.text
    assert 'href="#schema-Container"' in page.text and 'id="schema-Container"' in page.text


def test_the_page_escapes_what_the_document_says() -> None:
    page = render_docs({"info": {"title": "<b>T</b>", "version": "1"}, "paths": {
        "/x": {"get": {"summary": "<script>alert(1)</script>", "responses": {}}}}})
    assert "<script>" not in page and "&lt;script&gt;" in page


async def test_a_plain_request_to_a_websocket_route_is_a_426() -> None:
    async def socket(websocket: WebSocket) -> None:
        await websocket.close()

    app = api_app(extra_routes=[WebSocketRoute("/api/v1/test/{id}/socket", socket)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://agent") as http:
        answer = await http.get("/api/v1/test/7/socket")
        missing = await http.get("/api/v1/test/7/other")
    body = problem_of(answer, 426)
    assert answer.headers["upgrade"] == "websocket"
    assert body["detail"] == ("/api/v1/test/7/socket is a WebSocket endpoint: connect with "
                              "an HTTP upgrade (Upgrade: websocket)")
    problem_of(missing, 404)
    # And the document says so for the API's own WebSocket routes.
    document = api_document()
    for module in ROUTE_MODULES:
        for route in module.ROUTES:
            if isinstance(route, WebSocketRoute):
                assert "426" in document["paths"][route.path]["get"]["responses"]
