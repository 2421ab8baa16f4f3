"""``ghostpanel env ...`` (the registry of engines) and ``version``/``info`` (what runs there)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..engine import Environment, TLSConfig
from ._app import (
    CliContext,
    CommandGroup,
    env_option,
    json_option,
    pass_app,
)
from ._output import echo_json, human_size, render_table

if TYPE_CHECKING:
    from ..environments import EnvironmentHealth, EnvironmentSpec

__all__ = ["env", "info", "version"]


@click.group(cls=CommandGroup)
def env() -> None:
    """Register, list and choose environments (the engines GhostPanel talks to)."""


# -- env add -------------------------------------------------------------------------


def _parse_label_options(ctx: click.Context, param: click.Parameter,
                         value: tuple[str, ...]) -> dict[str, str]:
    from ..environments import parse_labels

    try:
        return parse_labels(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _tls_config(ca: Path | None, cert: Path | None, key: Path | None,
                fingerprint: str | None = None) -> TLSConfig | None:
    if (cert is None) != (key is None):
        raise click.UsageError("--tls-cert and --tls-key go together: give both or neither")
    if ca is not None and fingerprint is not None:
        raise click.UsageError("--tls-ca and --fingerprint exclude each other: a pinned "
                               "certificate is checked by its digest, not by a CA")
    if ca is None and cert is None and fingerprint is None:
        return None
    try:
        return TLSConfig(ca_cert=None if ca is None else str(ca),
                         client_cert=None if cert is None else str(cert),
                         client_key=None if key is None else str(key),
                         fingerprint=fingerprint)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--fingerprint'") from None


def _read_token(token: str | None) -> str | None:
    """The token given, or the first line of stdin for ``--token -``.

    Reading it from stdin keeps it out of the shell history and the process list.
    """
    if token != "-":
        return token
    line = sys.stdin.readline().strip()
    if not line:
        raise click.BadParameter("no token on stdin", param_hint="'--token'")
    return line


_PEM_FILE = click.Path(exists=True, dir_okay=False, resolve_path=True, path_type=Path)


@env.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              callback=_parse_label_options,
              help="A label for the environment, e.g. region=us-east; repeatable.")
@click.option("--tls-ca", type=_PEM_FILE,
              help="PEM file of the CA that signed the engine's certificate.")
@click.option("--tls-cert", type=_PEM_FILE,
              help="PEM file of the client certificate the engine requires.")
@click.option("--tls-key", type=_PEM_FILE, help="PEM file of the client certificate's key.")
@click.option("--token", metavar="TOKEN",
              help="Bearer token of a GhostPanel agent (`ghostpanel agent token create`); "
                   "'-' reads it from stdin. Stored in the registry, never listed.")
@click.option("--fingerprint", metavar="SHA256",
              help="Pin the agent's self-signed certificate by its SHA-256 fingerprint "
                   "(AB:CD:... or hex, as `ghostpanel agent` prints it) instead of --tls-ca.")
@pass_app
def add(app: CliContext, name: str, url: str, labels: dict[str, str], tls_ca: Path | None,
        tls_cert: Path | None, tls_key: Path | None, token: str | None,
        fingerprint: str | None) -> None:
    """Register the engine at URL as environment NAME.

    URL is unix:///run/podman/podman.sock, tcp://HOST:2375 or https://HOST:2376 for an
    engine; https://HOST:PORT (HTTP/1.1) or h3://HOST:PORT (HTTP/3) for a GhostPanel
    agent, with --token and --fingerprint (or --tls-ca).
    """
    tls = _tls_config(tls_ca, tls_cert, tls_key, fingerprint)
    registry = app.registry_factory()
    try:
        spec = registry.add(name, url, tls=tls, labels=labels, token=_read_token(token))
    finally:
        registry.close()
    click.echo(f"Added environment {spec.name!r} ({spec.url})")


# -- env ls --------------------------------------------------------------------------


def health_record(health: EnvironmentHealth | None) -> dict[str, Any] | None:
    """The ``health`` of an ``env ls --json`` object: ISO times (UTC), or None if unknown."""
    if health is None:
        return None

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {"failing": health.failing, "last_success": iso(health.last_success),
            "last_failure": iso(health.last_failure),
            "failing_since": iso(health.failing_since) if health.failing else None,
            "failure": health.failure, "summary": health.describe()}


def environment_record(spec: EnvironmentSpec, *, default: str | None,
                       health: EnvironmentHealth | None = None) -> dict[str, Any]:
    """The ``env ls --json`` object for ``spec`` (stable keys).

    ``health`` is what fan-out commands recorded of it (None: never tried, or tried at
    another URL).
    """
    tls = None
    if spec.tls is not None:
        tls = {"ca_cert": spec.tls.ca_cert, "client_cert": spec.tls.client_cert,
               "client_key": spec.tls.client_key, "verify": spec.tls.verify,
               "fingerprint": spec.tls.fingerprint}
    if health is not None and health.url != spec.url:
        health = None
    # The token itself is never printed: only whether there is one.
    return {"name": spec.name, "url": spec.url, "labels": dict(spec.labels), "tls": tls,
            "token": "set" if spec.token is not None else None,
            "detected": spec.detected, "default": spec.name == default,
            "health": health_record(health)}


def _labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


ENVIRONMENT_HEADERS = ("NAME", "URL", "LABELS", "TLS", "TOKEN", "DEFAULT", "HEALTH")


def environment_row(record: dict[str, Any]) -> list[str]:
    """The ``env ls`` table row for an :func:`environment_record`."""
    health = record.get("health")
    tls = record["tls"]
    return [record["name"], record["url"], _labels_text(record["labels"]),
            ("pinned" if tls.get("fingerprint") else "yes") if tls else "",
            record.get("token") or "", "*" if record["default"] else "",
            health["summary"] if health else ""]


@env.command("ls")
@json_option
@pass_app
def list_environments(app: CliContext, as_json: bool) -> None:
    """List the environments: registered ones and the detected local engine.

    HEALTH is what the last commands saw: "ok" and when, or since when the engine
    fails and why (fan-out commands skip it for 30 s after a failure).
    """
    registry = app.registry_factory()
    try:
        default = registry.default_name()
        specs = registry.list()
        health = registry.health()
    finally:
        registry.close()
    if default is None and any(spec.name == "local" for spec in specs):
        default = "local"  # what commands use when no default was chosen
    records = [environment_record(spec, default=default, health=health.get(spec.name))
               for spec in specs]
    if as_json:
        echo_json(records)
    else:
        click.echo(render_table(ENVIRONMENT_HEADERS, [environment_row(r) for r in records]))


# -- env rm / env use ----------------------------------------------------------------


@env.command("rm")
@click.argument("name")
@pass_app
def remove(app: CliContext, name: str) -> None:
    """Unregister environment NAME (its engine and containers are left alone)."""
    registry = app.registry_factory()
    try:
        registry.remove(name)
    finally:
        registry.close()
    click.echo(f"Removed environment {name!r}")


@env.command("use")
@click.argument("name")
@pass_app
def use(app: CliContext, name: str) -> None:
    """Make NAME the default environment of commands run without --env."""
    registry = app.registry_factory()
    try:
        registry.use(name)
    finally:
        registry.close()
    click.echo(f"Default environment is now {name!r}")


# -- version / info ------------------------------------------------------------------


async def _version_of(environment: Environment) -> dict[str, Any]:
    facts = await environment.version()
    return {"environment": environment.name, "url": environment.url, "kind": facts.kind,
            "version": facts.version, "api_version": facts.api_version, "os": facts.os,
            "arch": facts.arch}


async def _versions(app: CliContext, env_names: Sequence[str]) -> list[dict[str, Any]]:
    return await app.gather(env_names, _version_of)


VERSION_HEADERS = ("ENVIRONMENT", "ENGINE", "VERSION", "API", "OS/ARCH", "URL")


@click.command()
@env_option
@json_option
@pass_app
def version(app: CliContext, env_names: tuple[str, ...], as_json: bool) -> None:
    """Show the engine kind and versions of each environment."""
    records = asyncio.run(_versions(app, env_names))
    if as_json:
        echo_json(records)
        return
    rows = [[r["environment"], r["kind"], r["version"], r["api_version"],
             f"{r['os']}/{r['arch']}", r["url"]] for r in records]
    click.echo(render_table(VERSION_HEADERS, rows))


async def _info_of(environment: Environment) -> dict[str, Any]:
    return {"environment": environment.name, "info": await environment.system.info()}


async def _infos(app: CliContext, env_names: Sequence[str]) -> list[dict[str, Any]]:
    return await app.gather(env_names, _info_of)


INFO_HEADERS = ("ENVIRONMENT", "HOST", "OS", "CPUS", "MEMORY", "CONTAINERS", "RUNNING",
                "IMAGES")


def info_row(record: dict[str, Any]) -> list[str]:
    """The ``info`` table row for one environment's ``GET /info`` answer."""
    facts = record["info"]
    return [record["environment"], str(facts.get("Name", "")),
            str(facts.get("OperatingSystem", "")), str(facts.get("NCPU", "")),
            human_size(int(facts.get("MemTotal") or 0), binary=True),
            str(facts.get("Containers", "")), str(facts.get("ContainersRunning", "")),
            str(facts.get("Images", ""))]


@click.command()
@env_option
@json_option
@pass_app
def info(app: CliContext, env_names: tuple[str, ...], as_json: bool) -> None:
    """Show each environment's host: OS, CPUs, memory, containers and images.

    --json prints the engine's whole answer (GET /info) per environment.
    """
    records = asyncio.run(_infos(app, env_names))
    if as_json:
        echo_json(records)
    else:
        click.echo(render_table(INFO_HEADERS, [info_row(r) for r in records]))
