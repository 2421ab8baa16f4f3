"""``CreateContainerForm`` on the real Podman engine: the form creates the container its
fields describe (inspected and compared), refuses a taken name before sending, and
saves a service that the validator accepts and Surge plans as the same container.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from ghostpanel_widgets._create_form import CreateContainerForm

from ghostpanel_kernel.bolt import Boltfile, validate_file
from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.surge import desired_state, plan_surge
from tests.integration.conftest import unique
from tests.podman_service import BUSYBOX_REFERENCE

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_form_creates_and_starts_the_container_it_describes(
        env: Environment, shown, track_container, make_volume, tmp_path: Path) -> None:
    name = unique("gp-create")
    track_container(name)  # removed after the test, whatever the form did
    volume = await make_volume()
    (tmp_path / "greeting.txt").write_text("from the host\n")
    host_port, udp_port = _free_port(), _free_port()
    form = await shown(CreateContainerForm(env))
    assert BUSYBOX_REFERENCE in form.fields["image"].options
    seen: list[Container] = []
    form.on_created(seen.append)
    form.set_fields(
        image=BUSYBOX_REFERENCE, name=name, command="sh -c 'echo $GP_MODE; sleep 300'",
        env="GP_MODE=form\nGP_EMPTY=", ports=f"{host_port}:8080\n{udp_port}:5353/udp",
        volumes=f"{tmp_path}:/hostdir:ro\n{volume.name}:/cache",
        restart="on-failure:2", labels="gp.test=create-form\nteam=ops",
        cpus="0.5", memory="64m")
    assert form.valid, form.errors
    form.create_button.click()
    assert form.task is not None
    await form.task
    assert form.status.level == "success", form.status.message
    [container] = seen
    await container.reload()
    attrs = container.attrs
    host = attrs["HostConfig"]
    assert container.name == name and container.state == "running"
    assert attrs["Config"]["Cmd"] == ["sh", "-c", "echo $GP_MODE; sleep 300"]
    assert {"GP_MODE=form", "GP_EMPTY="} <= set(attrs["Config"]["Env"])
    assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "", "HostPort": str(host_port)}]
    assert host["PortBindings"]["5353/udp"][0]["HostPort"] == str(udp_port)
    assert container.labels["gp.test"] == "create-form" and container.labels["team"] == "ops"
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 * 1024
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert (mounts["/hostdir"]["Source"], mounts["/hostdir"]["RW"]) == (str(tmp_path), False)
    assert mounts["/cache"]["Name"] == volume.name
    read = await container.exec(["cat", "/hostdir/greeting.txt"])
    assert read.stdout == "from the host\n"

    # The name is taken now: the form says so beside the field and sends nothing.
    assert "already exists" in form.field_errors["name"].value
    assert form.create_button.disabled


async def test_a_name_taken_since_the_form_loaded_is_refused_before_sending(
        env: Environment, shown, make_container) -> None:
    form = await shown(CreateContainerForm(env))
    taken = await make_container()  # after the form read the names
    form.set_fields(image=BUSYBOX_REFERENCE, name=taken.name)
    assert form.valid  # the form does not know yet
    before = {c.id for c in await env.containers.list(all=True)}
    assert await form.create() is None
    assert "already exists" in form.field_errors["name"].value
    assert {c.id for c in await env.containers.list(all=True)} == before


async def test_saved_service_is_valid_and_surge_plans_the_same_container(
        env: Environment, shown, tmp_path: Path) -> None:
    path = tmp_path / "Boltfile.toml"
    path.write_text('# the shop\nproject = "gpformshop"\n')
    form = await shown(CreateContainerForm(env, boltfile=path))
    form.set_fields(image=BUSYBOX_REFERENCE, name="api", command="sleep 300",
                    env="MODE=prod", ports="18080:80", restart="unless-stopped",
                    labels="team=ops", cpus="0.5", memory="64m",
                    volumes="/srv/data:/data:ro\ncache:/cache")
    form.save_button.click()
    assert form.status.level == "success", form.status.message
    assert path.read_text().startswith('# the shop\nproject = "gpformshop"\n')
    assert [d for d in validate_file(path) if d.is_error] == []
    boltfile = Boltfile.load(path)
    spec = desired_state(boltfile).services["api"]
    assert form.spec is not None
    expected = form.spec.create_options()
    expected["volumes"] = ["/srv/data:/data:ro", "gpformshop_cache:/cache"]
    assert {k: v for k, v in spec.create.items()
            if k not in ("network", "network_aliases")} == expected
    plan = await plan_surge(boltfile, [env])
    [environment_plan] = plan.environments
    assert environment_plan.error is None, environment_plan.error
    created = [(a.resource, a.kind, a.container) for a in environment_plan.actions]
    assert ("container", "create", spec.container_name("gpformshop", 1)) in created
