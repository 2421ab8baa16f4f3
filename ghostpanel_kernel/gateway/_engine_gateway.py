"""The authorised Engine API passthrough: ``/services/ghostpanel/env/{name}/engine/...``.

Each request goes through these steps, and is refused at the first that fails; nothing
refused reaches the engine, and every refusal and every change is audited
(``docs/gateway.md``)::

    classify          canonical path, a route in the table        400 / 403
    permission        the caller's role on the environment        403
    body              read whole, at most 1 MiB (framing agreed)  400 / 413
    judge             Go's view of the JSON; dangerous options    400 / 403
    resolve           every object named -> full id and labels    404
    ownership         the caller's teams own it                   403
    forward           by full id, with ownership labels stamped on creates
    filter            lists, events and df cut to what the caller may see

Archive uploads, image loads, imports and builds are streamed to the engine as they
arrive: they need their permission (and an owned container for an upload), and their
bodies are tar streams the engine does not read as options.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn
from urllib.parse import urlencode

from ..engine import EngineAPIError, EngineConnectionError, NotFound
from ..server._problems import Message, Receive, Scope, Send, send_problem
from ._asgi_body import replay
from ._body_review import judges_body, review_body, stamp_owner
from ._engine_policy import EngineCall, classify
from ._go_json import read_go_json
from ._identity import Identity
from ._listing_filters import EventFilter, filter_listing, filtering_send, streaming_send
from ._ownership import OWNER_LABEL, may_see
from ._refusal import Refusal
from ._resolve import ExecOwners, Kind, KnownContainers, Resolved, resolve

if TYPE_CHECKING:
    from ._gateway_state import GatewayState

__all__ = ["MAX_JSON_BODY", "EngineGateway", "action_name"]

_log = logging.getLogger("ghostpanel.gateway")

#: The largest request body the gateway reads and judges (container specs are KiB).
MAX_JSON_BODY: Final = 1024 * 1024

#: Kinds of object whose owner is judged (images belong to the environment).
_OWNED: Final = frozenset({"container", "volume", "network", "exec"})

#: Network modes a build may use without being an admin.
_PLAIN_NETWORK_MODES: Final = frozenset({"", "default", "bridge", "none"})


def action_name(call: EngineCall) -> str:
    """The audit log's name for a call: ``container.stop``, ``volume.remove``...

    Examples
    --------
    >>> action_name(classify("POST", b"/v1.41/containers/web/stop"))
    'container.stop'
    >>> action_name(classify("DELETE", b"/volumes/data"))
    'volume.remove'
    """
    parts = [part for part in call.template.strip("/").split("/")
             if part and not part.startswith("{")]
    kind = call.target_kind if call.target_kind != "system" else (
        parts[0].rstrip("s") if parts else "system")
    if call.template == "/commit":
        return "container.commit"
    verb = parts[-1] if len(parts) > 1 else {"DELETE": "remove", "GET": "read",
                                             "HEAD": "read"}.get(call.method, "call")
    if call.method == "DELETE":
        verb = "remove"
    return f"{kind}.{verb}"


@dataclass
class _Judged:
    """What the checks decided: the path, query and body to forward, the target."""

    target: str
    path: str
    query: bytes
    body: bytes | None  # None: stream the client's body through


def _streamed(call: EngineCall) -> bool:
    return (call.method == "PUT" and call.template.endswith("/archive")) or \
        call.template in ("/images/load", "/build") or (
            call.template == "/images/create" and "-" in (call.query.get("fromSrc") or ()))


#: One byte of JSON whitespace sent right after the head of a ``wait`` answer. The
#: docker CLI sends ``POST /containers/{id}/wait?condition=next-exit`` before it starts
#: a container and waits for that answer's head, which engines send (and flush) at
#: once; the body only comes when the container exits. Node's HTTP server, and so
#: JupyterHub's configurable-http-proxy, holds a head until the first byte of the
#: body: without this byte ``docker run -d`` through the hub hangs before the start.
#: JSON decoders skip leading whitespace, so the answer still reads the same.
_HEAD_FLUSH: Final[Message] = {"type": "http.response.body", "body": b" ", "more_body": True}


def _holds_its_head(call: EngineCall, status: int, start: Message) -> bool:
    """Whether this answer's body comes only when the container exits (``wait``),
    framed so that one more byte can go first (chunked, no ``Content-Length``)."""
    if call.template != "/containers/{id}/wait" or status != 200:
        return False
    return all(name.lower() != b"content-length" for name, _ in start.get("headers", ()))


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key.lower() == name]


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole request body, whatever its framing; at most :data:`MAX_JSON_BODY`.

    Raises
    ------
    Refusal
        400 for conflicting framing, 413 for a body too large.
    """
    lengths = _header(scope, b"content-length")
    chunked = _header(scope, b"transfer-encoding")
    if lengths and chunked:
        # The HTTP server refuses this itself (RFC 9112 6.1); a front proxy that let it
        # through would have picked one framing, the engine maybe another.
        raise Refusal(400, "the request has both Content-Length and Transfer-Encoding: "
                           "send one framing")
    if len(set(lengths)) > 1:
        raise Refusal(400, "the request has conflicting Content-Length headers")
    if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > MAX_JSON_BODY:
        raise Refusal(413, f"the body has {int(lengths[0]):,} bytes; the gateway judges "
                           f"bodies of at most {MAX_JSON_BODY:,}")
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise Refusal(413, f"the body has more than {MAX_JSON_BODY:,} bytes, the most "
                               "the gateway judges")
        pieces.append(chunk)
        if not message.get("more_body", False):
            return b"".join(pieces)


def _check_query(call: EngineCall, env_name: str) -> None:
    """Refuse the query options only an admin may use (every value of a repeated one
    is judged: Go's ``FormValue`` reads the first, other parsers the last).

    - ``POST /build``: a ``networkmode`` other than bridge/none (the host's network,
      another container's), a ``cgroupparent``, a ``remote`` context (the engine would
      fetch any URL, inside networks the caller cannot reach themselves);
    - ``POST /images/create`` with ``fromSrc`` other than ``-`` (the request body): the
      engine would download from that URL.
    """
    def refuse(what: str) -> NoReturn:
        raise Refusal(403, f"only an admin may {what} on {env_name}", permission="admin")

    query = call.query
    if call.template == "/build":
        modes = query.get("networkmode") or []
        if any(mode not in _PLAIN_NETWORK_MODES for mode in modes):
            refuse(f"build with networkmode={modes!r}")
        if any(query.get("cgroupparent") or ()):
            refuse("build with a cgroupparent")
        if any(query.get("remote") or ()):
            refuse("build from a remote context (the engine would fetch the URL)")
    elif call.template == "/images/create":
        if any(source != "-" for source in query.get("fromSrc") or ()):
            refuse("import an image from a URL (fromSrc): the engine would fetch it; "
                   "send the archive as the body with fromSrc=-")


def _with_owner_filter(query: Mapping[str, list[str]], identity: Identity) -> dict[str, Any]:
    """The query of a prune, limited to what ``identity`` created (label filter added)."""
    raw = (query.get("filters") or ["{}"])[-1]
    try:
        filters = json.loads(raw or "{}")
    except ValueError:
        raise Refusal(400, "the prune's filters are not JSON") from None
    if not isinstance(filters, dict):
        raise Refusal(400, "the prune's filters must be a JSON object")
    labels = filters.get("label") or []
    if isinstance(labels, dict):  # the old {"key=value": true} form
        labels = [key for key, on in labels.items() if on]
    if not isinstance(labels, list):
        raise Refusal(400, "the prune's label filter must be a list")
    filters["label"] = [*labels, f"{OWNER_LABEL}={identity.name}"]
    fixed: dict[str, Any] = {key: values[-1] for key, values in query.items()}
    fixed["filters"] = json.dumps(filters)
    return fixed


class EngineGateway:
    """The Engine API side of the gateway for every environment (an ASGI app).

    The router has authenticated the request and put ``scope["ghostpanel.identity"]``,
    the request id and the environment's name in the scope (``_context.py``), and
    ``scope["ghostpanel.engine_path"]``: the raw path after ``/env/{name}/engine``.

    Parameters
    ----------
    state
        Environments, permissions and the audit log.
    """

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.execs = ExecOwners()
        self._known: dict[str, KnownContainers] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from ._context import ENVIRONMENT, IDENTITY, REQUEST_ID

        identity: Identity = scope[IDENTITY]
        env_name: str = scope[ENVIRONMENT]
        request_id: str = scope[REQUEST_ID]
        raw_path: bytes = scope["ghostpanel.engine_path"]
        method: str = scope["method"]
        shown = f"{method} {raw_path.decode('latin-1')}"
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008,
                        "reason": "the Engine API passthrough forwards no WebSockets"})
            return
        call: EngineCall | None = None
        try:
            call = classify(method, raw_path, scope.get("query_string", b""))
            perms = await self.state.permissions(identity, env_name)
            if call.permission not in perms:
                await self._denied(send, identity, env_name, request_id, call, shown)
                return
            judged = await self._judge(scope, receive, call, identity, env_name, perms)
        except Refusal as refusal:
            await self._refused(send, refusal, identity, env_name, request_id, call, shown)
            return
        except NotFound as error:
            await self._audit(identity, env_name, request_id, call, shown, "failed", 404,
                              error.message)
            await send_problem(send, 404, error.message, environment=env_name)
            return
        except EngineAPIError as error:
            await send_problem(send, 502, f"the engine of {env_name} answered "
                                          f"{error.status_code} when asked who owns the "
                                          f"object: {error.message}", environment=env_name)
            return
        except EngineConnectionError as error:
            await send_problem(send, 502, f"the engine of {env_name} could not be reached: "
                                          f"{error}", environment=env_name)
            return
        except ConnectionError:
            return  # the client left while sending its body: nothing to answer
        await self._forward(scope, receive, send, call, judged, identity, env_name,
                            request_id, perms)

    # -- refusals --------------------------------------------------------------------

    async def _denied(self, send: Send, identity: Identity, env_name: str, request_id: str,
                      call: EngineCall, shown: str) -> None:
        detail = (f"your role on {env_name} does not allow {call.permission} "
                  f"({call.method} {call.path})")
        await self._audit(identity, env_name, request_id, call, shown, "denied", 403, detail,
                          permission=call.permission)
        await send_problem(send, 403, detail, environment=env_name,
                           permission=call.permission)

    async def _refused(self, send: Send, refusal: Refusal, identity: Identity, env_name: str,
                       request_id: str, call: EngineCall | None, shown: str) -> None:
        await self._audit(identity, env_name, request_id, call, shown, "denied",
                          refusal.status, refusal.message, permission=refusal.permission)
        # A body refused unread is still on its way: the connection is closed after the
        # answer, so that neither side waits for the other (the client to finish
        # sending, the server to read what it will never use).
        headers = [(b"connection", b"close")] if refusal.status == 413 else []
        if refusal.permission is not None:
            await send_problem(send, refusal.status, refusal.message, headers=headers,
                               environment=env_name, permission=refusal.permission)
        else:
            await send_problem(send, refusal.status, refusal.message, headers=headers,
                               environment=env_name)

    async def _audit(self, identity: Identity, env_name: str, request_id: str,
                     call: EngineCall | None, shown: str, result: str, status: int,
                     reason: str, *, target: str | None = None,
                     permission: str | None = None) -> None:
        if call is not None and not call.mutating and result != "denied":
            return  # reads are audited only when refused
        detail: dict[str, Any] = {"request": shown, "reason": reason}
        if permission is not None:
            detail["permission"] = permission
        try:
            await self.state.record(
                user=identity.name, environment=env_name,
                action=action_name(call) if call is not None else "engine.request",
                target=target or (call.target if call is not None else None) or "",
                result=result, status=status, request_id=request_id, detail=detail)
        except Exception:  # the answer still goes out; the failure is logged loudly
            _log.exception("could not write the audit record of %s (%s)", shown, request_id)

    # -- judging ---------------------------------------------------------------------

    async def _check_reference(self, identity: Identity, env_name: str, kind: str,
                               reference: str, admin: bool) -> None:
        """Check an object a body points at (``VolumesFrom``, ``container:`` modes...)."""
        if kind not in _OWNED:
            return
        try:
            await self._check_owner(identity, env_name, kind,  # type: ignore[arg-type]
                                    reference, admin)
        except NotFound:
            if kind != "volume":
                raise
            # A named volume that does not exist yet: the engine makes it, empty.

    async def _check_owner(self, identity: Identity, env_name: str, kind: Kind,
                           reference: str, admin: bool) -> Resolved:
        env = await self.state.environment(env_name)
        known = self._known.setdefault(env_name, KnownContainers())
        resolved = await resolve(env, kind, reference, execs=self.execs, known=known)
        if not admin and not may_see(identity, resolved.labels):
            noun = "exec instance's container" if kind == "exec" else kind
            raise Refusal(403, f"the {noun} {reference!r} on {env_name} is not owned by "
                               "your team", permission="admin")
        return resolved

    async def _judge(self, scope: Scope, receive: Receive, call: EngineCall,
                     identity: Identity, env_name: str, perms: frozenset[str]) -> _Judged:
        admin = "admin" in perms
        body: bytes | None = None
        if not _streamed(call):
            body = await _read_body(scope, receive)
        if body is not None and judges_body(call):
            if not body.strip():
                raise Refusal(400, f"{call.method} {call.path} needs a JSON body")
            data = read_go_json(body)
            review = review_body(call, data)
            if review.admin_only and not admin:
                raise Refusal(403, f"only an admin may use {', '.join(review.admin_only)} "
                                   f"on {env_name}", permission="admin")
            for kind, reference in review.references:
                await self._check_reference(identity, env_name, kind, reference, admin)
            # The body the engine gets is the one judged, re-encoded (with the
            # ownership labels on creates): never the client's bytes.
            body = stamp_owner(call, review.data, identity)
        if not admin:
            _check_query(call, env_name)
        target = call.target
        path = call.forward_path()
        query: dict[str, Any] = {key: values[-1] for key, values in call.query.items()}
        requery = False
        if target is not None and call.target_kind in _OWNED:
            resolved = await self._check_owner(identity, env_name,
                                               call.target_kind,  # type: ignore[arg-type]
                                               target, admin)
            target = resolved.full_id
            if call.template == "/commit":
                query["container"] = target
                requery = True
            else:
                path = call.forward_path(target)
        if call.prune in ("containers", "volumes", "networks") and not admin:
            query = _with_owner_filter(call.query, identity)
            requery = True
        raw_query: bytes = scope.get("query_string", b"")
        if requery:
            raw_query = urlencode(query).encode()
        return _Judged(target or "", path, raw_query, body)

    # -- forwarding ------------------------------------------------------------------

    async def _forward(self, scope: Scope, receive: Receive, send: Send, call: EngineCall,
                       judged: _Judged, identity: Identity, env_name: str,
                       request_id: str, perms: frozenset[str]) -> None:
        passthrough = await self.state.passthrough(env_name)
        # The hub's credentials stay here: the engine (or agent) never sees them.
        dropped = {b"cookie", b"content-length", b"transfer-encoding", b"authorization"}
        if judged.body:
            dropped.add(b"content-type")  # the judged body is JSON, whatever was claimed
        headers = [(name, value) for name, value in scope["headers"]
                   if name.lower() not in dropped]
        if judged.body:
            headers.append((b"content-type", b"application/json"))
        forwarded = {**scope, "path": judged.path, "raw_path": judged.path.encode(),
                     "query_string": judged.query, "root_path": "", "headers": headers}
        body_receive = receive
        if judged.body is not None:
            body_receive = replay(judged.body, receive)
        status = 0
        answer: list[bytes] = []
        audited = False

        async def audit_once() -> None:
            # Written before the answer's last byte goes out, so that a client that has
            # its answer finds the record (and a failed stream is recorded too).
            nonlocal audited
            if audited or not call.mutating:
                return
            audited = True
            target = judged.target or _created_id(call, status, answer) or \
                (call.query.get("name") or [""])[-1]
            await self._audit(identity, env_name, request_id, call,
                              f"{call.method} {judged.path}",
                              "allowed" if 0 < status < 400 else "failed", status or 499,
                              "forwarded", target=target)

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status in (204, 304) or call.method == "HEAD":
                    # No body follows: the server ends the answer with its head.
                    await audit_once()
                elif _holds_its_head(call, status, message):
                    await send(message)
                    await send(_HEAD_FLUSH)
                    return
            elif message["type"] == "http.response.body":
                if call.template.endswith("/create") and status == 201:
                    answer.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await audit_once()
            await send(message)

        out: Send = watched
        admin = "admin" in perms
        if call.listing in ("containers", "volumes", "networks", "df") and not admin:
            def visible(labels: Mapping[str, str]) -> bool:
                return may_see(identity, labels)

            listing = call.listing
            known = await self._df_labels(env_name) if listing == "df" else None
            out = filtering_send(watched, lambda body: filter_listing(listing, body, visible,
                                                                      known))
        elif call.listing == "events" and not admin:
            out = streaming_send(watched, self._event_filter(identity, env_name, admin))
        try:
            await passthrough(forwarded, body_receive, out)
        finally:
            await audit_once()

    async def _df_labels(self, env_name: str) -> dict[str, Mapping[str, str]]:
        """Container id / volume name -> labels: ``system/df`` entries lack them on
        Podman, so the two lists are read to judge them (one request each)."""
        known: dict[str, Mapping[str, str]] = {}
        try:
            env = await self.state.environment(env_name)
            containers = await env.client.get_json("/containers/json", params={"all": "1"})
            volumes = await env.client.get_json("/volumes")
        except (EngineAPIError, EngineConnectionError):
            return known  # nothing known is nothing shown
        for item in containers if isinstance(containers, list) else []:
            known[str(item.get("Id"))] = item.get("Labels") or {}
        for item in (volumes or {}).get("Volumes") or []:
            known[str(item.get("Name"))] = item.get("Labels") or {}
        return known

    def _event_filter(self, identity: Identity, env_name: str, admin: bool) -> EventFilter:
        async def lookup(kind: str, ident: str) -> Mapping[str, str] | None:
            try:
                env = await self.state.environment(env_name)
                resolved = await resolve(env, kind, ident)  # type: ignore[arg-type]
            except (EngineAPIError, EngineConnectionError):
                return None
            return resolved.labels

        return EventFilter(lambda labels: may_see(identity, labels), lookup,
                           admin=admin)


def _created_id(call: EngineCall, status: int, answer: list[bytes]) -> str:
    """The id a create answered with (``{"Id": ...}``, a volume's ``Name``), or ""."""
    if status != 201 or not answer:
        return ""
    try:
        created = json.loads(b"".join(answer))
    except ValueError:
        return ""
    if not isinstance(created, dict):
        return ""
    return str(created.get("Id") or created.get("Name") or "")


