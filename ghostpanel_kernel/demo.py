"""Demo containers: something to look at on an engine that runs nothing yet.

A first-time user of the dashboard (or of a notebook) often has an empty engine. One call
starts a small, recognisable set of containers, all from the busybox image that
``scripts/setup.sh`` imports (``localhost/busybox:latest``), so no registry is needed:

- ``ghostpanel-demo-web-1`` and ``ghostpanel-demo-web-2``: busybox ``httpd -f -p 8080``
  serving a one-page site (written into the container with ``write_file``), each
  published on a free port of 127.0.0.1;
- ``ghostpanel-demo-logger``: writes a numbered line every second to stdout, and every
  fifth one to stderr, for the log views.

Every demo container carries the label ``io.ghostpanel.demo=true``; that label, not the
name, is what :func:`remove_demo_containers` and the re-use in
:func:`start_demo_containers` go by.

>>> from ghostpanel_kernel import connect
>>> from ghostpanel_kernel.demo import start_demo_containers, remove_demo_containers
>>> env = connect()                                                      # doctest: +SKIP
>>> [c.name for c in await start_demo_containers(env)]                   # doctest: +SKIP
['ghostpanel-demo-web-1', 'ghostpanel-demo-web-2', 'ghostpanel-demo-logger']
>>> await remove_demo_containers(env)                                    # doctest: +SKIP
['ghostpanel-demo-web-1', 'ghostpanel-demo-web-2', 'ghostpanel-demo-logger']
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._busybox import BUSYBOX_REFERENCE, build_busybox_archive, host_architecture
from .engine import Container, EngineAPIError, Environment, GhostPanelError, NotFound
from .engine._container_spec import PortSpec

__all__ = [
    "DEMO_IMAGE",
    "DEMO_LABEL",
    "DemoError",
    "demo_containers",
    "remove_demo_containers",
    "start_demo_containers",
]

#: The label every demo container carries, as ``key=value`` (an engine filter).
DEMO_LABEL = "io.ghostpanel.demo=true"
#: The image the demo containers run.
DEMO_IMAGE = BUSYBOX_REFERENCE

_LABEL_KEY, _, _LABEL_VALUE = DEMO_LABEL.partition("=")
_ROLE_KEY = "io.ghostpanel.demo.role"
_WEB_ROOT = "/www"

# PID 1 of a container ignores SIGTERM unless it handles it: busybox httpd and a bare
# ``sh`` loop do not, so ``stop`` would wait its full timeout and then kill. A shell that
# traps TERM makes Stop answer at once.
_WEB_COMMAND = ("trap 'kill $child 2>/dev/null; exit 0' TERM INT; "
                "httpd -f -p 8080 -h " + _WEB_ROOT + " & child=$!; wait $child")
_LOGGER_COMMAND = (
    "trap 'exit 0' TERM INT; i=0; "
    "while true; do i=$((i + 1)); "
    "if [ $((i % 5)) -eq 0 ]; then "
    "echo \"demo-logger: line $i: warning: every fifth line goes to stderr\" >&2; "
    "else echo \"demo-logger: line $i: ok\"; fi; "
    "sleep 1; done")


class DemoError(GhostPanelError):
    """The demo containers cannot be started here (and why, in an operator's words)."""


@dataclass(frozen=True)
class _DemoSpec:
    name: str
    role: str
    command: str
    web_port: int | None = None  # the container port httpd listens on


_SPECS = (
    _DemoSpec("ghostpanel-demo-web-1", "web", _WEB_COMMAND, 8080),
    _DemoSpec("ghostpanel-demo-web-2", "web", _WEB_COMMAND, 8080),
    _DemoSpec("ghostpanel-demo-logger", "logger", _LOGGER_COMMAND),
)


def _index_page(name: str, environment: str) -> bytes:
    title = html.escape(name)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"</head>\n<body><h1>{title}</h1>\n<p>A GhostPanel demo web server: busybox "
            f"httpd in a container on environment <b>{html.escape(environment)}</b>.</p>\n"
            "<p>Stop it, follow its logs or watch its stats from the GhostPanel dashboard."
            "</p></body></html>\n").encode()


def _is_demo(container: Container) -> bool:
    return container.labels.get(_LABEL_KEY) == _LABEL_VALUE


async def demo_containers(env: Environment) -> list[Container]:
    """The demo containers on ``env`` (running or not), by name.

    Examples
    --------
    >>> [c.name for c in await demo_containers(env)]                     # doctest: +SKIP
    ['ghostpanel-demo-logger', 'ghostpanel-demo-web-1', 'ghostpanel-demo-web-2']
    """
    found = await env.containers.list(all=True, filters={"label": [DEMO_LABEL]})
    return sorted(found, key=lambda container: container.name)


async def _check_architecture(env: Environment) -> None:
    """Refuse to import this host's busybox into an engine of another CPU architecture.

    The image would import fine and every demo container would then fail to start
    ("exec format error"), far from the cause. An engine that does not say its
    architecture is given the benefit of the doubt.
    """
    engine_arch = (await env.version()).arch.strip().lower()
    host_arch = host_architecture()
    if engine_arch and engine_arch != host_arch:
        raise DemoError(
            f"the demo image {DEMO_IMAGE} is not on environment {env.name!r}, and this "
            f"host's busybox ({host_arch}) would not run on its engine ({engine_arch}); "
            f"import a {engine_arch} busybox rootfs there as {DEMO_IMAGE} first")


async def _ensure_image(env: Environment) -> None:
    """Import the busybox image from this host's busybox when ``env`` lacks it."""
    try:
        await env.images.get(DEMO_IMAGE)
        return
    except NotFound:
        pass
    await _check_architecture(env)
    with tempfile.TemporaryDirectory(prefix="ghostpanel-demo-") as folder:
        try:
            archive = await asyncio.to_thread(build_busybox_archive,
                                              Path(folder) / "busybox.tar")
        except (RuntimeError, OSError) as error:
            raise DemoError(
                f"the demo image {DEMO_IMAGE} is not on environment {env.name!r}, and it "
                f"cannot be built here ({error}); run scripts/setup.sh, or import a busybox "
                f"rootfs as {DEMO_IMAGE}") from error
        await env.images.import_rootfs(archive, DEMO_IMAGE)


async def _create(env: Environment, spec: _DemoSpec) -> Container:
    labels = {_LABEL_KEY: _LABEL_VALUE, _ROLE_KEY: spec.role}
    # No host port: the engine picks a free port of the loopback address.
    ports: PortSpec | None = (None if spec.web_port is None
                              else {spec.web_port: ("127.0.0.1", None)})
    try:
        container = await env.containers.create(
            image=DEMO_IMAGE, name=spec.name, command=["sh", "-c", spec.command],
            labels=labels, ports=ports,
            working_dir=_WEB_ROOT if spec.role == "web" else None)
    except EngineAPIError as error:
        # Another caller may have created it meanwhile (Podman answers 500, not 409, for
        # a name in use): take that one if it is a demo container, else say whose it is.
        try:
            existing = await env.containers.get(spec.name)
        except NotFound:
            raise error from None
        if not _is_demo(existing):
            raise DemoError(
                f"a container named {spec.name!r} already exists on environment "
                f"{env.name!r} and is not a GhostPanel demo container; rename or remove "
                "it first") from error
        return existing
    if spec.role == "web":
        await _write_page(env, container)
    return container


async def _write_page(env: Environment, container: Container) -> None:
    """Put the index page in a web server that is created, not started yet.

    The engine made the working directory at create time; the page goes in before the
    server starts, so the first request already finds it. A container the page cannot
    be written into is removed, rather than re-used as a demo container later.
    """
    page = _index_page(container.name, env.name)
    try:
        await container.write_file(f"{_WEB_ROOT}/index.html", page)
    except EngineAPIError as error:
        with contextlib.suppress(NotFound):
            await container.remove(force=True)
        raise DemoError(f"cannot write the demo page into {container.name} on "
                        f"environment {env.name!r}: {error}") from error


async def start_demo_containers(env: Environment) -> list[Container]:
    """Start the demo containers on ``env``, re-using any that already exist.

    Idempotent: a demo container that exists is started if it is not running, one that
    is missing is created; nothing else is touched. When ``env`` lacks the busybox image,
    it is imported from this host's ``/bin/busybox`` first, if the engine runs on the
    same CPU architecture as this host.

    Returns
    -------
    list of Container
        The two web servers and the log writer, inspected after starting, in that order.
        A web server's published address is in ``container.ports``
        (``127.0.0.1:PORT->8080/tcp``).

    Raises
    ------
    DemoError
        The image cannot be had (not on the engine, and this host's busybox is missing
        or of another architecture than the engine's), or a non-demo container holds a
        demo name.
    GhostPanelError
        The engine refused or could not be reached.

    Examples
    --------
    >>> web1, web2, logger = await start_demo_containers(env)           # doctest: +SKIP
    >>> web1.ports                                                       # doctest: +SKIP
    ['127.0.0.1:40213->8080/tcp']
    """
    existing = {container.name: container for container in await demo_containers(env)}
    if any(spec.name not in existing for spec in _SPECS):
        await _ensure_image(env)
    started: list[Container] = []
    for spec in _SPECS:
        container = existing.get(spec.name) or await _create(env, spec)
        if container.state != "running":
            await container.start()
        await container.reload()
        started.append(container)
    return started


async def remove_demo_containers(env: Environment) -> list[str]:
    """Remove every demo container on ``env`` (running ones are killed first).

    Only containers labelled ``io.ghostpanel.demo=true`` are removed; the image stays.

    Returns
    -------
    list of str
        The names of the containers removed.

    Examples
    --------
    >>> await remove_demo_containers(env)                                # doctest: +SKIP
    ['ghostpanel-demo-logger', 'ghostpanel-demo-web-1', 'ghostpanel-demo-web-2']
    """
    removed: list[str] = []
    for container in await demo_containers(env):
        try:
            await container.remove(force=True)
        except NotFound:
            continue  # removed by someone else meanwhile: gone all the same
        removed.append(container.name)
    return removed
