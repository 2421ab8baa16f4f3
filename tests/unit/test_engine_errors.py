"""GhostPanel's exception tree, how errors show themselves, and how failures map to it.

Engine answers are shaped like the real ones: Docker's ``{"message": ...}`` and Podman
4.3's ``{"cause", "message", "response"}`` error bodies.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator

import httpx
import pytest

from ghostpanel_kernel.engine import (
    BoltfileError,
    Conflict,
    Container,
    EngineAPIError,
    EngineConnectionError,
    EngineProtocolError,
    EngineTimeout,
    Environment,
    EnvironmentClosed,
    EnvironmentNotFound,
    GhostPanelError,
    ImagePullError,
    NotFound,
)
from tests.unit.fake_engine import URL, FakeEngine, Route, env_for


def environment(answer: Route) -> Environment:
    """An environment whose engine negotiates as Podman 4.3.1, then answers ``answer``."""
    return env_for(FakeEngine(answer=answer))


# -- the tree ----------------------------------------------------------------------------


def test_exception_tree() -> None:
    assert issubclass(EngineConnectionError, GhostPanelError)
    assert issubclass(EngineTimeout, EngineConnectionError)
    # Not an engine at that address: for a caller, no engine can be reached there.
    assert issubclass(EngineProtocolError, EngineConnectionError)
    assert not issubclass(EngineProtocolError, EngineTimeout)
    # Use after aclose() raised RuntimeError before: it still is one.
    assert issubclass(EnvironmentClosed, GhostPanelError)
    assert issubclass(EnvironmentClosed, RuntimeError)
    assert issubclass(EngineAPIError, GhostPanelError)
    assert issubclass(NotFound, EngineAPIError)
    assert issubclass(Conflict, EngineAPIError)
    assert issubclass(ImagePullError, EngineAPIError)
    assert issubclass(EnvironmentNotFound, GhostPanelError)
    assert issubclass(EnvironmentNotFound, LookupError)
    assert issubclass(BoltfileError, GhostPanelError)
    assert issubclass(GhostPanelError, Exception)
    # Split by cause: a connection failure is never mistaken for an engine answer.
    assert not issubclass(EngineConnectionError, EngineAPIError)
    assert not issubclass(EngineAPIError, EngineConnectionError)
    assert not issubclass(NotFound, Conflict)


# -- how errors show themselves ----------------------------------------------------------


def test_api_error_str_reads_status_message_and_request() -> None:
    error = NotFound(404, "No such container: web", method="GET",
                     path="/v1.41/containers/web/json")
    assert str(error) == "[404] No such container: web (GET /v1.41/containers/web/json)"
    assert (error.status_code, error.message, error.method, error.path) == (
        404, "No such container: web", "GET", "/v1.41/containers/web/json")


def test_connection_error_str_names_the_engine() -> None:
    error = EngineConnectionError("connection refused", endpoint="tcp://10.0.0.5:2375")
    assert str(error) == "connection refused (engine at tcp://10.0.0.5:2375)"
    assert error.endpoint == "tcp://10.0.0.5:2375"
    assert not hasattr(error, "status_code")  # no invented status for a socket failure


def test_image_pull_error_str() -> None:
    error = ImagePullError(200, "manifest unknown", method="POST", path="/v1.41/images/create")
    assert str(error) == "pull failed: manifest unknown (POST /v1.41/images/create)"


def test_environment_not_found_message() -> None:
    error = EnvironmentNotFound("prod", known=["staging", "dev"])
    assert str(error) == "no environment named 'prod'; known: dev, staging"
    assert error.name == "prod"
    assert error.known == ["dev", "staging"]
    assert str(EnvironmentNotFound("prod")) == "no environment named 'prod'"
    hinted = EnvironmentNotFound(None, hint="Choose one with `ghostpanel env use NAME`")
    assert str(hinted) == "no environment selected. Choose one with `ghostpanel env use NAME`"
    with pytest.raises(LookupError):
        raise EnvironmentNotFound("prod")


def test_boltfile_error_str_shows_position() -> None:
    error = BoltfileError("project must not be empty", path="Boltfile", line=3, column=11)
    assert str(error) == "Boltfile:3:11: project must not be empty"
    assert str(BoltfileError("no services", path="Boltfile", line=7)) == (
        "Boltfile:7: no services")
    assert str(BoltfileError("unreadable", path="/srv/Boltfile")) == "/srv/Boltfile: unreadable"


# -- status → class ----------------------------------------------------------------------


async def test_docker_404_is_not_found_with_the_engines_words() -> None:
    env = environment(lambda r: httpx.Response(404, json={"message": "No such container: web"}))
    with pytest.raises(NotFound) as caught:
        await env.containers.get("web")
    assert str(caught.value) == "[404] No such container: web (GET /v1.41/containers/web/json)"
    assert caught.value.status_code == 404
    await env.aclose()


async def test_podman_404_uses_message_not_cause() -> None:
    body = {"cause": "no such container",
            "message": 'no container with name or ID "web" found: no such container',
            "response": 404}
    env = environment(lambda r: httpx.Response(404, json=body))
    with pytest.raises(NotFound) as caught:
        await env.containers.get("web")
    assert caught.value.message == body["message"]
    await env.aclose()


async def test_409_is_conflict() -> None:
    message = 'Conflict. The container name "/web" is already in use by container "1df8c9".'
    env = environment(lambda r: httpx.Response(409, json={"message": message}))
    with pytest.raises(Conflict) as caught:
        await env.containers.create(image="busybox", name="web")
    assert str(caught.value) == f"[409] {message} (POST /v1.41/containers/create)"
    await env.aclose()


@pytest.mark.parametrize("status", [400, 401, 403, 406, 500, 501, 503])
async def test_other_statuses_are_plain_engine_api_errors(status: int) -> None:
    env = environment(lambda r: httpx.Response(status, json={"message": "it went wrong"}))
    with pytest.raises(EngineAPIError) as caught:
        await env.containers.get("abc123")
    error = caught.value
    assert type(error) is EngineAPIError
    assert (error.status_code, error.message, error.method, error.path) == (
        status, "it went wrong", "GET", "/v1.41/containers/abc123/json")
    await env.aclose()


async def test_error_path_has_no_query_string_and_keeps_the_method() -> None:
    env = environment(lambda r: httpx.Response(409, json={
        "message": "You cannot remove a running container 1df8. Stop the container before "
                   "attempting removal or force remove"}))
    container = _container(env)
    with pytest.raises(Conflict) as caught:
        await container.remove(volumes=True)
    assert caught.value.method == "DELETE"
    assert caught.value.path == "/v1.41/containers/1df8c92e931a39be"
    await env.aclose()


def _container(env: Environment) -> Container:
    return Container(env.client, {"Id": "1df8c92e931a39be", "Names": ["/web"]})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404, json={"cause": "no such volume"}), "no such volume"),
        (httpx.Response(500, text="runtime error: invalid memory address\n"),
         "runtime error: invalid memory address"),
        (httpx.Response(502, content=b"bad \xff gateway"), "bad \ufffd gateway"),
        (httpx.Response(500, content=b""), "Internal Server Error"),
        (httpx.Response(503, content=b"  \n"), "Service Unavailable"),
        (httpx.Response(500, json={"message": ""}), '{"message":""}'),
        (httpx.Response(500, json=["not", "an", "object"]), '["not","an","object"]'),
    ],
    ids=["cause", "text", "undecodable", "empty", "blank", "empty-message", "json-list"],
)
async def test_message_falls_back_to_body_text_then_reason(answer: httpx.Response,
                                                         expected: str) -> None:
    env = environment(lambda r: httpx.Response(answer.status_code, content=answer.content))
    with pytest.raises(EngineAPIError) as caught:
        await env.volumes.get("data")
    assert caught.value.message == expected
    assert caught.value.status_code == answer.status_code
    await env.aclose()


async def test_error_answer_to_a_stream_request() -> None:
    # The engine's error mapping reads the method and path it was given, never
    # Response.request: httpx's transport contract does not require a transport to set it
    # (httpx.AsyncClient does; MockTransport handlers, AsyncHTTPTransport and the fake
    # engine do not).
    env = environment(lambda r: httpx.Response(404, json={"message": "No such container: web"}))
    with pytest.raises(NotFound) as caught:
        async for _ in _container(env).logs(follow=True):
            pass
    assert str(caught.value) == (
        "[404] No such container: web (GET /v1.41/containers/1df8c92e931a39be/logs)")
    await env.aclose()


# -- transport errors → EngineConnectionError: the mapping is complete --------------------


def _subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for sub in cls.__subclasses__():
        if sub.__module__.split(".")[0] == "httpx":
            found += [sub, *_subclasses(sub)]
    return found


TRANSPORT_ERRORS = [httpx.TransportError, *_subclasses(httpx.TransportError)]


def test_the_list_of_transport_errors_is_the_real_one() -> None:
    names = {cls.__name__ for cls in TRANSPORT_ERRORS}
    assert names >= {
        "ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
        "ReadError", "WriteError", "CloseError", "RemoteProtocolError", "LocalProtocolError",
        "ProxyError", "UnsupportedProtocol", "NetworkError", "TimeoutException",
        "ProtocolError"}


def _check_mapped(error: BaseException, raised: Exception) -> None:
    assert isinstance(error, EngineConnectionError)
    assert isinstance(error, EngineTimeout) == isinstance(raised, httpx.TimeoutException)
    assert isinstance(error, EngineProtocolError) == isinstance(raised,
                                                                httpx.RemoteProtocolError)
    assert error.__cause__ is raised
    assert error.endpoint == URL
    assert URL in str(error)
    assert "boom on the socket" in str(error)


@pytest.mark.parametrize("error_class", TRANSPORT_ERRORS, ids=lambda c: c.__name__)
async def test_every_transport_error_is_mapped_on_request(error_class: type[Exception]) -> None:
    raised = error_class("boom on the socket")

    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    env = environment(fail)  # the negotiation goes through; the API request fails
    with pytest.raises(EngineConnectionError) as caught:
        await env.containers.list()
    _check_mapped(caught.value, raised)
    await env.aclose()


@pytest.mark.parametrize("error_class", TRANSPORT_ERRORS, ids=lambda c: c.__name__)
async def test_every_transport_error_is_mapped_on_negotiation(error_class: type[Exception]
                                                              ) -> None:
    raised = error_class("boom on the socket")

    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    engine = FakeEngine({("GET", "/_ping"): fail})
    env = env_for(engine)
    with pytest.raises(EngineConnectionError) as caught:
        await env.containers.list()
    _check_mapped(caught.value, raised)
    assert engine.paths == ["/_ping"]
    await env.aclose()


class BreakingStream(httpx.AsyncByteStream):
    """A body that delivers some bytes, then fails the way the socket did."""

    def __init__(self, first: bytes, error: Exception) -> None:
        self.first = first
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise self.error


@pytest.mark.parametrize("error_class", TRANSPORT_ERRORS, ids=lambda c: c.__name__)
async def test_every_transport_error_is_mapped_mid_stream(error_class: type[Exception]) -> None:
    raised = error_class("boom on the socket")
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x06first\n"
    env = environment(lambda r: httpx.Response(
        200, headers={"Content-Type": "application/vnd.docker.multiplexed-stream"},
        stream=BreakingStream(frame, raised)))
    container = _container(env)
    lines = []
    with pytest.raises(EngineConnectionError) as caught:
        async for line in container.logs(follow=True):
            lines.append(line.text)
    assert lines == ["first"]
    _check_mapped(caught.value, raised)
    await env.aclose()


@pytest.mark.parametrize(
    ("error", "words"),
    [(httpx.ReadTimeout(""), "the engine did not answer in time"),
     (httpx.RemoteProtocolError(""), "the answer is not valid HTTP"),
     (httpx.ReadError(""), "connection lost mid-answer"),
     (httpx.ConnectError(""), "ConnectError")],
)
async def test_transport_errors_without_text_still_say_something(error: Exception,
                                                                words: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    env = environment(fail)
    with pytest.raises(EngineConnectionError) as caught:
        await env.containers.list()
    assert str(caught.value) == f"{words} (engine at {URL})"
    await env.aclose()


async def test_only_transport_errors_are_mapped() -> None:
    # A bug in a transport is not a connection problem: it is not disguised as one.
    def bug(request: httpx.Request) -> httpx.Response:
        raise KeyError("bug")

    env = environment(bug)
    with pytest.raises(KeyError):
        await env.containers.list()
    await env.aclose()


# -- pickling (errors cross process boundaries in fan-out and multiprocessing) -----------


PICKLED = [
    NotFound(404, "No such container: web", method="GET", path="/v1.41/containers/web/json"),
    Conflict(409, "name in use", method="POST", path="/v1.41/containers/create"),
    EngineAPIError(500, "boom", method="DELETE", path="/v1.41/images/x"),
    ImagePullError(200, "manifest unknown", method="POST", path="/v1.41/images/create"),
    EngineConnectionError("connection refused", endpoint="tcp://10.0.0.5:2375"),
    EngineTimeout("no answer in time", endpoint=URL),
    EngineProtocolError("GET /_ping answered 404 '<html>': not an engine", endpoint=URL),
    EnvironmentClosed("the environment at tcp://h:2375 was closed; connect again"),
    EnvironmentNotFound("prod", known=["dev", "staging"]),
    EnvironmentNotFound(None, hint="Run `ghostpanel env add`"),
    BoltfileError("bad port", path="Boltfile", line=4, column=9),
]


@pytest.mark.parametrize("error", PICKLED, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error: GhostPanelError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


# -- what comes back is not an engine's answer -------------------------------------------

HTML = "<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"


@pytest.mark.parametrize("status", [200, 404])
async def test_a_web_server_is_not_an_engine(status: int) -> None:
    # nginx answers /_ping with its page (200) or its 404 page; neither has Api-Version,
    # so /version is asked next, with the same kind of answer.
    def web(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=HTML, headers={"Content-Type": "text/html"})

    env = env_for(FakeEngine({("GET", "/_ping"): web, ("GET", "/version"): web}))
    with pytest.raises(EngineProtocolError) as caught:
        await env.containers.list()
    message = str(caught.value)
    assert "not an engine" in message
    assert "Welcome to nginx!" in message  # what came back, so the operator recognises it
    assert caught.value.endpoint == URL and URL in message
    await env.aclose()


async def test_a_json_answer_that_is_not_a_version_is_not_an_engine() -> None:
    def other(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    env = env_for(FakeEngine({("GET", "/_ping"): other, ("GET", "/version"): other}))
    with pytest.raises(EngineProtocolError, match="not an engine's version"):
        await env.version()
    await env.aclose()


async def test_an_api_answer_that_is_not_json_is_a_protocol_error() -> None:
    env = environment(lambda r: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(EngineProtocolError) as caught:
        await env.containers.list()
    assert "GET /v1.41/containers/json" in str(caught.value)
    assert "not JSON" in str(caught.value) and "proxy login" in str(caught.value)
    assert not isinstance(caught.value.__cause__, EngineProtocolError)  # the JSON error
    await env.aclose()


async def test_a_stream_line_that_is_not_json_is_a_protocol_error() -> None:
    env = environment(lambda r: httpx.Response(
        200, stream=BreakingStream(b'{"Type": "container"}\nnot json\n',
                                   httpx.ReadError("never reached"))))
    with pytest.raises(EngineProtocolError, match="not JSON") as caught:
        async for _ in env.events():
            pass
    assert caught.value.endpoint == URL
    await env.aclose()


async def test_use_after_aclose_is_a_ghostpanel_error() -> None:
    env = environment(lambda r: httpx.Response(200, json=[]))
    await env.containers.list()
    await env.aclose()
    with pytest.raises(EnvironmentClosed, match="closed; connect again") as caught:
        await env.containers.list()
    assert URL in str(caught.value)
