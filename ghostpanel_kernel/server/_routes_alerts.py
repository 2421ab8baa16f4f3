"""Routes of ``/api/v1`` for the agent's alerts (docs/alerts.md).

::

    GET    /api/v1/alerts                    active and recent alerts (long poll: ?wait=S)
    POST   /api/v1/alerts/{name}/ack         acknowledge alert ``name`` (its id)
    GET    /api/v1/alerts/silences           silences in force or to come
    POST   /api/v1/alerts/silences           add a silence, 201
    DELETE /api/v1/alerts/silences/{name}    remove silence ``name``, 204
    GET    /api/v1/alerts/rules              the rules in force

The evaluator is ``request.app.state.alerts`` (an
:class:`~ghostpanel_kernel.metrics._alerts.AlertEvaluator`), None when the agent runs no
rules: the listing then says ``"enabled": false`` and the changes answer ``409``.
Imports nothing heavy: the agent's idle budget holds with this module loaded.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._auth import AUTH_SCOPE_KEY
from ._openapi import json_content, problem_responses
from ._problems import problem_response
from ._request_body import BodyProblem, json_object, text_body

if TYPE_CHECKING:
    from ..metrics._alerts import AlertEvaluator

__all__ = ["PATHS", "ROUTES"]

_PREFIX: Final = "/api/v1/alerts"
#: The longest long poll: under common proxies' idle timeouts.
_MAX_WAIT: Final = 60.0
_STATES: Final = ("pending", "firing", "resolved")


class _Invalid(Exception):
    """A request the route cannot take: a 4xx problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _evaluator(request: Request) -> AlertEvaluator | None:
    found: AlertEvaluator | None = getattr(request.app.state, "alerts", None)
    return found


def _required(request: Request) -> AlertEvaluator:
    found = _evaluator(request)
    if found is None:
        raise _Invalid(409, "this agent evaluates no alert rules; start it with "
                            "--alert-rules FILE (see docs/alerts.md)")
    return found


def _who(request: Request) -> str:
    credentials = request.scope.get(AUTH_SCOPE_KEY)
    name = getattr(credentials, "name", "")
    return str(name or "agent")


def _problem(error: _Invalid | BodyProblem) -> Response:
    return problem_response(error.status, str(error))


def _query_states(request: Request) -> tuple[str, ...]:
    text = request.query_params.get("state")
    if not text:
        return _STATES
    states = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [state for state in states if state not in _STATES]
    if bad:
        raise _Invalid(422, f"state {bad[0]!r} is not one of {', '.join(_STATES)}")
    return states


def _query_number(request: Request, name: str, default: float, top: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(422, f"{name} must be a number, not {text!r}") from None
    if not 0 <= value <= top:
        raise _Invalid(422, f"{name} must be from 0 to {top:g}")
    return value


async def list_alerts(request: Request) -> Response:
    """``GET /api/v1/alerts``: active and recent alerts; ``?after=SEQ&wait=S`` waits up
    to S seconds for a change past SEQ (the AlertFeed widget's long poll)."""
    try:
        states = _query_states(request)
        after = int(_query_number(request, "after", 0, 2**62))
        wait = _query_number(request, "wait", 0, _MAX_WAIT)
    except _Invalid as error:
        return _problem(error)
    evaluator = _evaluator(request)
    if evaluator is None:
        return JSONResponse({"enabled": False, "seq": 0, "alerts": [], "silences": []})
    if wait > 0:
        await evaluator.wait_for_change(after, wait)
    now = time.time()
    return JSONResponse({
        "enabled": True, "environment": evaluator.environment, "seq": evaluator.state.seq,
        "alerts": evaluator.state.alerts(states=states, now=now),
        "silences": [s.as_dict() for s in evaluator.state.silences(now=now)]})


async def acknowledge(request: Request) -> Response:
    """``POST /api/v1/alerts/{name}/ack``: acknowledge a pending or firing alert."""
    try:
        evaluator = _required(request)
        name = request.path_params["name"]
        if not name.isdigit():
            raise _Invalid(404, f"no alert {name!r} (alert ids are numbers)")
        # An empty body is fine: the acknowledger is then the caller's token name.
        text = (await text_body(request)).strip()
        body = _json_object(text) if text else {}
        by = body.get("by", _who(request))
        if not isinstance(by, str) or not by.strip():
            raise _Invalid(422, "'by' must be non-empty text")
    except (_Invalid, BodyProblem) as error:
        return _problem(error)
    alert = evaluator.state.acknowledge(int(name), by)
    if alert is None:
        return problem_response(404, f"no alert {name}")
    evaluator.changed()
    return JSONResponse(alert)


def _json_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BodyProblem(400, f"the body is not JSON: {error.msg}") from error
    if not isinstance(document, dict):
        raise BodyProblem(422, "the body must be a JSON object")
    return document


def _end_time(body: dict[str, Any], now: float) -> float:
    """A silence's end: ``ends_at`` (unix seconds or ISO 8601) or ``duration``."""
    from ..metrics._alert_rules import RuleError, parse_duration

    if ("ends_at" in body) == ("duration" in body):
        raise _Invalid(422, "give either 'ends_at' or 'duration'")
    if "duration" in body:
        try:
            return now + parse_duration(body["duration"], what="duration")
        except RuleError as error:
            raise _Invalid(422, str(error)) from None
    value = body["ends_at"]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        from datetime import UTC, datetime

        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Invalid(422, f"ends_at {value!r} is not ISO 8601") from None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    raise _Invalid(422, "ends_at must be unix seconds or ISO 8601 text")


async def add_silence(request: Request) -> Response:
    """``POST /api/v1/alerts/silences``: ``{"matchers": {...}, "duration": "1h"}``."""
    try:
        evaluator = _required(request)
        body = await json_object(request)
        unknown = sorted(set(body) - {"matchers", "ends_at", "duration", "comment",
                                      "created_by"})
        if unknown:
            raise _Invalid(422, f"unknown member {unknown[0]!r}")
        matchers = body.get("matchers")
        if (not isinstance(matchers, dict) or not matchers
                or not all(isinstance(v, str) for v in matchers.values())):
            raise _Invalid(422, "'matchers' must be an object of label -> glob, "
                                "e.g. {\"container\": \"web*\"}")
        comment, created_by = body.get("comment", ""), body.get("created_by", _who(request))
        if not isinstance(comment, str) or not isinstance(created_by, str):
            raise _Invalid(422, "'comment' and 'created_by' must be text")
        now = time.time()
        ends = _end_time(body, now)
        if ends <= now:
            raise _Invalid(422, "the silence would end before it starts")
    except (_Invalid, BodyProblem) as error:
        return _problem(error)
    silence = evaluator.state.add_silence(matchers, ends, starts_at=now, comment=comment,
                                          created_by=created_by)
    evaluator.changed()
    return JSONResponse(silence.as_dict(), status_code=201)


async def list_silences(request: Request) -> Response:
    """``GET /api/v1/alerts/silences``: silences not yet over."""
    evaluator = _evaluator(request)
    silences = [] if evaluator is None else evaluator.state.silences(now=time.time())
    return JSONResponse({"silences": [s.as_dict() for s in silences]})


async def remove_silence(request: Request) -> Response:
    """``DELETE /api/v1/alerts/silences/{name}``."""
    try:
        evaluator = _required(request)
    except _Invalid as error:
        return _problem(error)
    name = request.path_params["name"]
    if not evaluator.state.remove_silence(name):
        return problem_response(404, f"no silence {name!r}")
    evaluator.changed()
    return Response(status_code=204)


async def list_rules(request: Request) -> Response:
    """``GET /api/v1/alerts/rules``: the rules the agent evaluates."""
    evaluator = _evaluator(request)
    rules = [] if evaluator is None else [
        {"name": rule.name, "kind": rule.kind, "for": rule.for_,
         "severity": rule.severity, "containers": list(rule.containers),
         "match_labels": dict(rule.match_labels), "labels": dict(rule.labels),
         "params": {k: v for k, v in rule.params.items() if k != "predicate"},
         "repeat": rule.repeat, "description": rule.description}
        for rule in evaluator.rules.rules]
    return JSONResponse({"enabled": evaluator is not None, "rules": rules})


ROUTES: list[BaseRoute] = [
    Route(_PREFIX, list_alerts, methods=["GET"]),
    Route(f"{_PREFIX}/rules", list_rules, methods=["GET"]),
    Route(f"{_PREFIX}/silences", list_silences, methods=["GET"]),
    Route(f"{_PREFIX}/silences", add_silence, methods=["POST"]),
    Route(f"{_PREFIX}/silences/{{name}}", remove_silence, methods=["DELETE"]),
    Route(f"{_PREFIX}/{{name}}/ack", acknowledge, methods=["POST"]),
]

_ALERT: Final[dict[str, Any]] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "rule": {"type": "string"}, "kind": {"type": "string"},
    "container": {"type": "string"}, "environment": {"type": "string"},
    "severity": {"enum": ["info", "warning", "critical"]},
    "state": {"enum": list(_STATES)}, "labels": {"type": "object"},
    "value": {"type": ["number", "null"]}, "message": {"type": "string"},
    "started_at": {"type": "string"}, "fired_at": {"type": ["string", "null"]},
    "resolved_at": {"type": ["string", "null"]}, "acked": {"type": "boolean"},
    "silenced": {"type": "boolean"}, "seq": {"type": "integer"}}}
_SILENCE: Final[dict[str, Any]] = {"type": "object", "properties": {
    "id": {"type": "string"}, "matchers": {"type": "object"},
    "starts_at": {"type": "string"}, "ends_at": {"type": "string"},
    "comment": {"type": "string"}, "created_by": {"type": "string"}}}
_SILENCES: Final = {"type": "object", "properties": {
    "silences": {"type": "array", "items": _SILENCE}}}
_NAME_PARAM: Final = [{"name": "name", "in": "path", "required": True,
                       "schema": {"type": "string"}}]

#: The OpenAPI path items of this module's routes.
PATHS: dict[str, dict[str, Any]] = {
    _PREFIX: {"get": {
        "tags": ["alerts"], "summary": "Active and recent alerts (a long poll with wait).",
        "parameters": [
            {"name": "state", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated: pending, firing, resolved."},
            {"name": "after", "in": "query", "schema": {"type": "integer"},
             "description": "With wait: answer once seq passes this."},
            {"name": "wait", "in": "query", "schema": {"type": "number", "maximum": 60},
             "description": "Seconds to wait for a change."}],
        "responses": {"200": {"description": "The alerts.", "content": json_content({
            "type": "object", "properties": {
                "enabled": {"type": "boolean"}, "seq": {"type": "integer"},
                "alerts": {"type": "array", "items": _ALERT},
                "silences": {"type": "array", "items": _SILENCE}}})},
            **problem_responses(422)}}},
    f"{_PREFIX}/rules": {"get": {
        "tags": ["alerts"], "summary": "The alert rules the agent evaluates.",
        "responses": {"200": {"description": "The rules.", "content": json_content(
            {"type": "object"})}}}},
    f"{_PREFIX}/silences": {
        "get": {"tags": ["alerts"], "summary": "Silences not yet over.",
                "responses": {"200": {"description": "The silences.",
                                      "content": json_content(_SILENCES)}}},
        "post": {"tags": ["alerts"], "summary": "Silence the alerts matching labels.",
                 "requestBody": {"required": True, "content": json_content({
                     "type": "object", "required": ["matchers"], "properties": {
                         "matchers": {"type": "object"},
                         "duration": {"type": "string"},
                         "ends_at": {"type": ["string", "number"]},
                         "comment": {"type": "string"},
                         "created_by": {"type": "string"}}})},
                 "responses": {"201": {"description": "The silence.",
                                       "content": json_content(_SILENCE)},
                               **problem_responses(400, 409, 422)}}},
    f"{_PREFIX}/silences/{{name}}": {"delete": {
        "tags": ["alerts"], "summary": "Remove a silence.", "parameters": _NAME_PARAM,
        "responses": {"204": {"description": "Removed."}, **problem_responses(404, 409)}}},
    f"{_PREFIX}/{{name}}/ack": {"post": {
        "tags": ["alerts"], "summary": "Acknowledge an alert: no repeat notification.",
        "parameters": _NAME_PARAM,
        "requestBody": {"required": False, "content": json_content({
            "type": "object", "properties": {"by": {"type": "string"}}})},
        "responses": {"200": {"description": "The alert.", "content": json_content(_ALERT)},
                      **problem_responses(400, 404, 409, 422)}}},
}
