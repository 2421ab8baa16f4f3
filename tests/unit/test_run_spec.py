"""``RunSpec``: the create-container form's fields read, checked per field, and written
as create arguments, a Boltfile service and a ``docker run`` line that mean the same.

The round trips are the point: the Boltfile service read back by Surge gives the same
create arguments, the ``docker run`` line split by ``shlex`` gives the same options.
"""

from __future__ import annotations

import doctest
import shlex
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostpanel_kernel.bolt import Boltfile, validate
from ghostpanel_kernel.engine import _run_spec
from ghostpanel_kernel.engine._run_spec import (
    FIELDS,
    GPU_POLICIES,
    RunFields,
    RunSpec,
    RunSpecError,
    check_fields,
)
from ghostpanel_kernel.surge._desired import desired_state

FULL = {
    "image": "localhost/busybox:latest", "name": "web-1", "command": "sh -c 'echo \"hi there\"'",
    "env": "MODE=prod\nURL=postgres://db/x?a=b\n# a comment\n\nEMPTY=",
    "ports": "8080:80\n8443:443, 5353:53/udp", "volumes": "/srv/site:/site:ro\ncache:/cache",
    "restart": "on-failure:3", "labels": "team=ops\ncom.example.tier=front",
    "cpus": "1.5", "memory": "512m",
}


def test_the_doctests_hold() -> None:
    assert doctest.testmod(_run_spec).failed == 0


def test_every_field_is_read() -> None:
    spec = RunSpec.from_fields(FULL)
    assert spec.image == "localhost/busybox:latest" and spec.name == "web-1"
    assert spec.command == ("sh", "-c", 'echo "hi there"')
    assert dict(spec.env) == {"MODE": "prod", "URL": "postgres://db/x?a=b", "EMPTY": ""}
    assert [str(p) for p in spec.ports] == ["8080:80", "8443:443", "5353:53/udp"]
    assert [(v.source, v.target, v.options) for v in spec.volumes] == [
        ("/srv/site", "/site", ("ro",)), ("cache", "/cache", ())]
    assert spec.restart == "on-failure:3" and spec.cpus == 1.5 and spec.memory == "512m"
    assert dict(spec.labels) == {"team": "ops", "com.example.tier": "front"}
    assert spec.gpus == () and spec.gpu_request() is None


@pytest.mark.parametrize(("field", "text", "words"), [
    ("ports", "99999", "out of range 1-65535"),
    ("ports", "80:80\n80:8080", "host port 80/tcp is published twice"),
    ("ports", "127.0.0.1:80:80", "more than two parts"),
    ("ports", "8000-8010:80", "is a range"),
    ("memory", "12XB", "cannot read the size '12XB'"),
    ("memory", "1k", "below the engines' least memory limit"),
    ("env", "=x", "has no name before '='"),
    ("env", "A=1\nA=2", "A is set twice"),
    ("env", "JUST_A_NAME", "is not KEY=VALUE"),
    ("env", "MY VAR=1", "has a space"),
    ("name", "my web", "has a space"),
    ("name", "-web", "is not a valid name"),
    ("image", "", "choose an image"),
    ("image", "Not An Image", "is not an image reference"),
    ("command", "echo 'unclosed", "No closing quotation"),
    ("volumes", "/data", "write SOURCE:TARGET"),
    ("volumes", "./site:/site", "a host path must be absolute"),
    ("volumes", "/srv:relative", "must be absolute"),
    ("volumes", "/srv:/a:ro,rw", "ro and rw together"),
    ("volumes", "/srv:/a:nocopy", "unknown option 'nocopy'"),
    ("volumes", "/a:/x\n/b:/x", "/x is mounted twice"),
    ("restart", "sometimes", "is not one of no, always"),
    ("labels", "io.ghostpanel.surge.project=x", "belongs to Surge"),
    ("cpus", "-1", "not a positive number of CPUs"),
    ("cpus", "lots", "not a positive number of CPUs"),
    ("cpus", "0.001", "below the engines' least"),
    ("gpus", "0,first", "'first' is not a GPU index"),
    ("gpu_policy", "greedy", "is not one of exclusive, shared, time-sliced, mig"),
])
def test_a_bad_field_is_named_with_why(field: str, text: str, words: str) -> None:
    values = {"image": "alpine:3.20", field: text}
    spec, errors = check_fields(values)
    assert spec is None
    assert list(errors) == [field], errors
    assert words in errors[field]


def test_every_bad_field_is_reported_at_once_in_field_order() -> None:
    with pytest.raises(RunSpecError) as caught:
        RunSpec.from_fields({"image": "alpine", "memory": "12XB", "ports": "99999",
                             "env": "=x", "name": "my web"})
    assert list(caught.value.errors) == ["name", "env", "ports", "memory"]
    assert "ports: 99999" in str(caught.value)


def test_a_taken_name_is_an_error_of_the_name_field() -> None:
    _, errors = check_fields({"image": "alpine", "name": "web"}, taken_names={"web", "db"})
    assert errors == {"name": "a container named web already exists here"}
    assert check_fields({"image": "alpine", "name": "api"}, taken_names={"web"})[1] == {}


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(KeyError, match="no field colour"):
        RunFields.of({"image": "alpine", "colour": "red"})


def test_the_policies_are_the_allocators() -> None:
    from ghostpanel_kernel.gpus import POLICIES

    assert GPU_POLICIES == POLICIES
    assert set(FIELDS) == set(RunFields.__dataclass_fields__)


# -- the engine -------------------------------------------------------------------------


def test_the_create_body_carries_every_setting() -> None:
    body = RunSpec.from_fields(FULL).to_create_body()
    assert body["Image"] == "localhost/busybox:latest"
    assert body["Cmd"] == ["sh", "-c", 'echo "hi there"']
    assert body["Env"] == ["MODE=prod", "URL=postgres://db/x?a=b", "EMPTY="]
    assert body["Labels"] == {"team": "ops", "com.example.tier": "front"}
    assert set(body["ExposedPorts"]) == {"80/tcp", "443/tcp", "53/udp"}
    host = body["HostConfig"]
    assert host["PortBindings"]["53/udp"] == [{"HostIp": "", "HostPort": "5353"}]
    assert host["Binds"] == ["/srv/site:/site:ro", "cache:/cache"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NanoCpus"] == 1_500_000_000 and host["Memory"] == 512 * 1024**2


def test_one_container_port_on_two_host_ports() -> None:
    spec = RunSpec.from_fields({"image": "alpine", "ports": "8080:80\n8081:80"})
    assert spec.create_options()["ports"] == {"80/tcp": [8080, 8081]}
    bindings = spec.to_create_body()["HostConfig"]["PortBindings"]["80/tcp"]
    assert [b["HostPort"] for b in bindings] == ["8080", "8081"]


def test_an_empty_form_but_the_image_sends_only_the_image() -> None:
    spec = RunSpec.from_fields({"image": "alpine"})
    assert spec.create_options() == {"image": "alpine"}
    assert spec.to_docker_run() == "docker run -d alpine"
    assert spec.to_docker_run(start=False) == "docker create alpine"
    assert spec.service_name == "alpine"


# -- the Boltfile -----------------------------------------------------------------------


def _in_project(spec: RunSpec, project: str = "shop") -> Boltfile:
    return Boltfile.loads(f'project = "{project}"\n\n' + spec.boltfile_text())


def test_the_service_text_is_the_table_and_the_validator_accepts_it() -> None:
    spec = RunSpec.from_fields(FULL)
    text = spec.boltfile_text()
    assert text.startswith("[services.web-1]\n")
    assert tomlkit.parse(text)["services"]["web-1"].unwrap() == \
        spec.to_boltfile_service().unwrap()
    errors = [d for d in validate(_in_project(spec)) if d.is_error]
    assert errors == []
    # Bolt's own words for what only GhostPanel reads: the /udp port, on-failure:N.
    assert {d.key for d in spec.validate_service()} == {"services.web-1.ports",
                                                          "services.web-1.restart"}


def test_surge_reads_the_service_back_as_the_same_create_arguments() -> None:
    spec = RunSpec.from_fields(FULL)
    create = dict(desired_state(_in_project(spec)).services["web-1"].create)
    assert create.pop("network") == "shop_default"
    assert create.pop("network_aliases") == ["web-1"]
    expected = spec.create_options()
    # Surge scopes a named volume to its project; a host path stays as it is.
    expected["volumes"] = ["/srv/site:/site:ro", "shop_cache:/cache"]
    assert create == expected


@pytest.mark.parametrize("values", [
    FULL, {"image": "alpine"}, {**FULL, "gpus": "all", "gpu_policy": "shared"},
    {"image": "alpine", "name": "x", "env": 'QUOTE="a" \\b', "labels": "k.v=1 2"},
])
def test_the_service_text_is_what_the_boltfile_edits_write(values: dict[str, str]) -> None:
    spec = RunSpec.from_fields(values)
    boltfile = Boltfile.loads("")
    spec.add_to_boltfile(boltfile)
    assert boltfile.dumps() == spec.boltfile_text()
    assert spec.boltfile_text("other").startswith("[services.other]\n")


def test_the_service_name_comes_from_the_image_without_a_name() -> None:
    spec = RunSpec.from_fields({"image": "registry.local:5000/team/api:1.2"})
    assert spec.service_name == "api"
    assert "[services.api]" in spec.boltfile_text()


@pytest.mark.parametrize(("gpus", "policy", "table", "expected"), [
    ("0,1", "shared", {"nvbind": {"devices": ["gpu:0", "gpu:1"]}, "isolation_level": "shared"},
     {"gpus": ("0", "1"), "policy": "shared", "all_gpus": False}),
    ("all", "time-sliced", {"nvbind": {"devices": ["gpu:all"]}, "isolation_level": "virtual"},
     {"gpus": (), "policy": "time-sliced", "all_gpus": True}),
    ("0", "mig", {"nvbind": {"devices": ["gpu:0"]}, "aiml": {"mig_enabled": True}},
     {"gpus": ("0",), "policy": "mig", "all_gpus": False}),
])
def test_gpus_become_a_gaming_table_surge_reads_as_the_same_request(
        gpus: str, policy: str, table: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = RunSpec.from_fields({"image": "alpine", "name": "game", "gpus": gpus,
                                "gpu_policy": policy})
    gaming = spec.to_boltfile_service().unwrap()["gaming"]
    assert gaming["gpu"] == table
    assert [d for d in spec.validate_service() if d.is_error] == []
    request = spec.gpu_request()
    assert request is not None
    assert {k: getattr(request, k) for k in expected} == expected
    assert desired_state(_in_project(spec)).services["game"].gpu == request


def test_all_gpus_under_mig_is_refused() -> None:
    assert "name a GPU" in check_fields({"image": "a", "gpus": "all",
                                         "gpu_policy": "mig"})[1]["gpus"]


def test_saving_keeps_the_files_comments_and_refuses_a_duplicate() -> None:
    original = ('project = "shop"  # the shop\n\n# the database\n[services.db]\n'
                'image = "postgres:16"  # pinned\n')
    boltfile = Boltfile.loads(original)
    spec = RunSpec.from_fields(FULL)
    spec.add_to_boltfile(boltfile)
    text = boltfile.dumps()
    assert text.startswith(original)
    assert text[len(original):] == "\n" + spec.boltfile_text()
    assert [d for d in validate(boltfile) if d.is_error] == []
    with pytest.raises(ValueError, match="already has a service 'web-1'"):
        spec.add_to_boltfile(boltfile)
    assert boltfile.dumps() == text


# -- docker run -------------------------------------------------------------------------


def _read_docker_run(line: str) -> dict[str, Any]:
    """The options of a ``docker run`` line, read back from its shell words."""
    words = shlex.split(line)
    assert words[:2] in (["docker", "run"], ["docker", "create"])
    flags = {"-p": "ports", "-v": "volumes", "-e": "env", "-l": "labels", "--name": "name",
             "--restart": "restart", "--cpus": "cpus", "--memory": "memory", "--gpus": "gpus"}
    read: dict[str, Any] = {"start": words[1] == "run"}
    rest = words[2:]
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "-d":
            continue
        key = flags[flag]
        value = rest.pop(0)
        if key in ("ports", "volumes", "env", "labels"):
            read.setdefault(key, []).append(value)
        else:
            read[key] = value
    read["image"], read["command"] = rest[0], rest[1:]
    return read


def test_the_docker_run_line_reads_back_as_the_same_options() -> None:
    spec = RunSpec.from_fields({**FULL, "gpus": "0,1", "gpu_policy": "shared"})
    read = _read_docker_run(spec.to_docker_run())
    assert read == {
        "start": True, "name": "web-1",
        "ports": ["8080:80", "8443:443", "5353:53/udp"],
        "volumes": ["/srv/site:/site:ro", "cache:/cache"],
        "env": ["MODE=prod", "URL=postgres://db/x?a=b", "EMPTY="],
        "labels": ["team=ops", "com.example.tier=front"],
        "restart": "on-failure:3", "cpus": "1.5", "memory": "512m",
        "gpus": '"device=0,1"',
        "image": "localhost/busybox:latest", "command": ["sh", "-c", 'echo "hi there"'],
    }
    # The fields written back from the line give the same spec.
    again = RunSpec.from_fields({
        "image": read["image"], "name": read["name"], "command": shlex.join(read["command"]),
        "env": "\n".join(read["env"]), "ports": "\n".join(read["ports"]),
        "volumes": "\n".join(read["volumes"]), "restart": read["restart"],
        "labels": "\n".join(read["labels"]), "cpus": read["cpus"], "memory": read["memory"],
        "gpus": read["gpus"].strip('"').removeprefix("device="), "gpu_policy": "shared"})
    assert again == spec


def test_quoting_survives_shell_metacharacters() -> None:
    spec = RunSpec.from_fields({"image": "alpine", "env": "GREETING=it's $HOME; `x`",
                                "command": "sh -c 'echo a && echo b'"})
    read = _read_docker_run(spec.to_docker_run(start=False))
    assert read["start"] is False
    assert read["env"] == ["GREETING=it's $HOME; `x`"]
    assert read["command"] == ["sh", "-c", "echo a && echo b"]
    assert _read_docker_run(RunSpec.from_fields({"image": "a", "gpus": "all"})
                            .to_docker_run())["gpus"] == "all"


_CHARS = st.sampled_from(list("aZ09 =:/,.-_\"'\\\n\t#$`é☃{}[]@"))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries(
    {"image": st.sampled_from(["alpine", "localhost/busybox:latest", ""])},
    optional={name: st.text(_CHARS, max_size=25) for name in FIELDS if name != "image"}))
def test_any_text_is_an_error_or_a_spec_whose_spellings_agree(values: dict[str, str]) -> None:
    spec, errors = check_fields(values)
    if spec is None:
        assert errors and set(errors) <= set(FIELDS)
        return
    text = spec.boltfile_text()
    assert tomlkit.parse(text)["services"][spec.service_name].unwrap() == \
        spec.to_boltfile_service().unwrap()
    boltfile = Boltfile.loads("")
    spec.add_to_boltfile(boltfile)
    assert boltfile.dumps() == text
    assert [d for d in spec.validate_service(text=text) if d.is_error] == []
    words = shlex.split(spec.to_docker_run())
    assert words[len(words) - len(spec.command) - 1:] == [spec.image, *spec.command]
    assert spec.to_create_body()["Image"] == spec.image
