"""An Engine API create body is type-checked before it reaches the engine: Podman
answers a member of the wrong JSON type, or an environment variable without a name,
with a 500 ("decode(): json: cannot unmarshal ...", recorded on Podman 4.3.1)."""

from __future__ import annotations

from typing import Any

import pytest

from ghostpanel_kernel.server._engine_body import ENGINE_BODY_SCHEMA, check_engine_body
from tests.unit.api_client import api_client, problem_of
from tests.unit.fake_engine import FakeEngine

IMAGE = "localhost/busybox:latest"


@pytest.mark.parametrize(("body", "detail"), [
    ({"HostConfig": "x"}, "HostConfig must be object, not string"),
    ({"Cmd": 5}, "Cmd must be array or string, not integer"),
    ({"Labels": {"a": 1}}, "Labels.a must be string, not integer"),
    ({"Tty": "yes"}, "Tty must be boolean, not string"),
    ({"Env": ["=x"]}, "Env[0] '=x' does not match"),
    ({"HostConfig": {"Memory": "1g"}}, "HostConfig.Memory must be integer, not string"),
    ({"HostConfig": {"Binds": ["/a:/b", 3]}}, "HostConfig.Binds[1] must be string"),
    ({"StopTimeout": True}, "StopTimeout must be integer or null, not boolean"),
    ({"Image": ""}, "Image must not be empty"),
])
def test_wrong_types_are_refused_with_the_member(body: dict[str, Any], detail: str) -> None:
    with pytest.raises(ValueError, match=detail.replace("[", r"\[").replace("]", r"\]")):
        check_engine_body({"Image": IMAGE, **body})


def test_right_types_and_unknown_members_pass() -> None:
    check_engine_body({"Image": IMAGE, "Cmd": "sleep 1", "Entrypoint": ["sh", "-c"],
                       "Env": ["A=1", "B"], "Labels": {"a": "b"}, "StopTimeout": None,
                       "HostConfig": {"Memory": 1 << 26, "Binds": ["/a:/b"],
                                      "SomethingNew": {"x": 1}},
                       "SomethingNewer": [1, 2]})


def test_the_schema_is_what_the_document_shows() -> None:
    assert ENGINE_BODY_SCHEMA["required"] == ["Image"]
    assert ENGINE_BODY_SCHEMA["properties"]["HostConfig"]["properties"]["Memory"] == {
        "type": "integer"}


async def test_the_route_refuses_them_before_the_engine() -> None:
    engine = FakeEngine()
    async with api_client(engine) as http:
        typed = problem_of(await http.post("/api/v1/containers", json={
            "Image": IMAGE, "Tty": "yes"}), 422)
        unnamed = problem_of(await http.post("/api/v1/containers", json={
            "service": {"image": IMAGE, "env": {"": "x"}}}), 422)
    assert typed["detail"] == "Tty must be boolean, not string"
    assert unnamed["detail"] == ("service.env: '' is not a variable name (it must be "
                                 "non-empty, without '=')")
    assert engine.requests == []
