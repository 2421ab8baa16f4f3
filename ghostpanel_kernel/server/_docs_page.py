"""``/api/v1/docs``: the OpenAPI document rendered as one self-contained HTML page.

Made here, from the document, when the app is built: no script, no stylesheet or font
from elsewhere, so the page works on a host with no network and shows exactly the
document the agent serves. (The maintained renderers -- Swagger UI, Redoc -- are
JavaScript bundles of a few MB, and the page must also be readable with ``curl``.)
Each operation lists its parameters, body and answers; schemas are shown as JSON, a
``$ref`` as a link to the component it names.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["render_docs"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d1f21}
h2{border-bottom:1px solid #ccc;margin-top:2.2rem}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.method{font:bold 13px monospace;padding:.15rem .45rem;border-radius:4px;color:#fff;
background:#555;text-transform:uppercase}
.get{background:#2b6cb0}.post{background:#2f855a}.delete{background:#c53030}
.put,.patch{background:#b7791f}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;
text-align:left;vertical-align:top}
"""

_REF = re.compile(r'&quot;#/components/schemas/([A-Za-z0-9_.-]+)&quot;')


def _e(text: object) -> str:
    return html.escape(str(text))


def _schema(schema: Any) -> str:
    text = _e(json.dumps(schema, indent=2, ensure_ascii=False))
    return "<pre>" + _REF.sub(r'&quot;<a href="#schema-\1">#/components/schemas/\1</a>&quot;',
                              text) + "</pre>"


def _content(content: Mapping[str, Any]) -> str:
    parts = []
    for media_type, entry in content.items():
        parts.append(f"<p><code>{_e(media_type)}</code></p>")
        if isinstance(entry, Mapping) and "schema" in entry:
            parts.append(_schema(entry["schema"]))
    return "".join(parts)


def _parameters(parameters: list[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
        f"<td>{'yes' if p.get('required') else 'no'}</td>"
        f"<td><code>{_e(json.dumps(p.get('schema', {})))}</code></td>"
        f"<td>{_e(p.get('description', ''))}</td></tr>" for p in parameters)
    return ("<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th>"
            f"<th>description</th></tr>{rows}</table>")


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> str:
    anchor = _e(operation.get("operationId", f"{method}-{path}"))
    parts = [f'<div class="op" id="{anchor}"><h3><span class="method {method}">{method}'
             f"</span> <code>{_e(path)}</code></h3>",
             f"<p>{_e(operation.get('summary', ''))}</p>"]
    if operation.get("description"):
        parts.append(f"<p>{_e(operation['description'])}</p>")
    if operation.get("parameters"):
        parts.append("<h4>Parameters</h4>" + _parameters(operation["parameters"]))
    body = operation.get("requestBody")
    if isinstance(body, Mapping):
        parts.append("<h4>Body</h4>" + _content(body.get("content", {})))
    parts.append("<h4>Answers</h4>")
    for status, response in operation.get("responses", {}).items():
        parts.append(f"<p><b>{_e(status)}</b> {_e(response.get('description', ''))}</p>")
        if status.startswith("2") and response.get("content"):
            parts.append(_content(response["content"]))
    parts.append("</div>")
    return "".join(parts)


def render_docs(document: Mapping[str, Any]) -> str:
    """The HTML page of an OpenAPI document.

    Examples
    --------
    >>> page = render_docs({"info": {"title": "T", "version": "1"}, "paths": {
    ...     "/x": {"get": {"operationId": "x", "summary": "S", "responses": {}}}}})
    >>> '<code>/x</code>' in page and "<script" not in page
    True
    """
    info = document.get("info", {})
    title = _e(info.get("title", "API"))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{title}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{title} <small>{_e(info.get('version', ''))}</small></h1>",
             f"<p>{_e(info.get('description', ''))}</p>",
             '<p>The document itself: <a href="openapi.json">openapi.json</a> '
             "(OpenAPI 3.1).</p>", "<h2>Operations</h2>"]
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if isinstance(item, Mapping) and method in item:
                parts.append(_operation(method, path, item[method]))
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, schema in schemas.items():
            parts.append(f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>{_schema(schema)}')
    parts.append("</body></html>")
    return "\n".join(parts)
