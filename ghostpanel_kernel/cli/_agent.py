"""``ghostpanel agent``: serve this host's engine over HTTPS and HTTP/3; its tokens.

::

    ghostpanel agent --listen HOST:PORT --engine URL [--cert FILE --key FILE]
                     [--client-ca FILE] [--quic-bind HOST:PORT] [--boltfile FILE]
    ghostpanel agent --listen unix:///path.sock
    ghostpanel agent token create NAME | ls | revoke NAME
"""

from __future__ import annotations

from pathlib import Path

import click

from ._app import CommandGroup
from ._output import echo_json, render_table

__all__ = ["agent"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _local_engine() -> str:
    from ..environments import detect_local

    spec = detect_local()
    if spec is None:
        raise click.UsageError("no local engine answers (Podman or Docker socket, Bolt on "
                               "127.0.0.1:2375): start one, or pass --engine URL")
    return spec.url


@click.group(cls=CommandGroup, invoke_without_command=True)
@click.option("--listen", default="127.0.0.1:2376", show_default=True, metavar="ADDRESS",
              help="HOST:PORT (HTTPS, TLS 1.3 only, and HTTP/3 on the same UDP port) or "
                   "unix:///path.sock (plain HTTP, socket mode 0600).")
@click.option("--engine", "engine_url", metavar="URL",
              help="The engine to serve (default: the local engine, as `ghostpanel "
                   "env ls` finds it).")
@click.option("--cert", "cert_file", type=_FILE,
              help="Server certificate (PEM). Default: a self-signed one, made on first "
                   "run and kept under GHOSTPANEL_HOME.")
@click.option("--key", "key_file", type=_FILE, help="The key of --cert (PEM).")
@click.option("--client-ca", type=_FILE,
              help="Require HTTPS clients to present a certificate signed by this CA "
                   "(HTTP/3 and unix-socket clients still use tokens).")
@click.option("--quic-bind", metavar="HOST:PORT",
              help="Where HTTP/3 listens (UDP). Default: the --listen address.")
@click.option("--snapshot-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the snapshot routes put BTRFS snapshots when a request names "
                   "no folder. Default: .ghostpanel-snapshots at the top of each "
                   "source's filesystem.")
@click.option("--boltfile", "snapshot_boltfile", type=_FILE, metavar="FILE",
              help="Take the snapshots this Boltfile's [snapshots.triggers] schedule "
                   "(UTC) of its services' volumes, with its retention.")
@click.option("--alert-rules", "alert_rules", type=_FILE, metavar="FILE",
              help="Evaluate the alert rules of this file (or of a Boltfile's [alerts]) "
                   "over the sampled metrics; see docs/alerts.md.")
@click.option("--metrics-interval", type=click.FloatRange(min=0), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Sample the containers' metrics into the history every SECONDS "
                   "(0: off); see docs/metrics.md.")
@click.option("--runbooks/--no-runbooks", "runbook_schedules", default=False,
              envvar="GHOSTPANEL_AGENT_RUNBOOKS", show_envvar=True,
              help="Run the runbook schedules (ghostpanel runbook schedule add); see "
                   "docs/runbooks.md.")
@click.pass_context
def agent(ctx: click.Context, listen: str, engine_url: str | None, cert_file: Path | None,
          key_file: Path | None, client_ca: Path | None, quic_bind: str | None,
          snapshot_dir: Path | None, snapshot_boltfile: Path | None,
          alert_rules: Path | None = None, metrics_interval: float = 10.0,
          runbook_schedules: bool = False) -> None:
    """Serve this host's engine to GhostPanel clients and the docker CLI.

    Prints the URL, the certificate's SHA-256 fingerprint (clients pin it with
    `ghostpanel env add NAME URL --fingerprint ...`) and a "ready" line; SIGINT or
    SIGTERM stop it (exit status 0). Every request needs a token (`ghostpanel agent
    token create NAME`) or, with --client-ca, a client certificate.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..server._serve import run
    from ..server._settings import AgentSettings

    if (cert_file is None) != (key_file is None):
        raise click.UsageError("--cert and --key go together: give both or neither")
    if snapshot_boltfile is not None:
        from ..server._snapshot_schedule import check_boltfile

        try:  # a trigger that cannot be scheduled stops the agent before it serves
            check_boltfile(snapshot_boltfile)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    if alert_rules is not None:
        from ..metrics._alert_rules import RuleError, load_rules

        try:  # a bad rule stops the agent before it serves, naming the rule
            load_rules(alert_rules)
        except RuleError as error:
            raise click.UsageError(str(error)) from None
    try:
        settings = AgentSettings(engine_url=engine_url or _local_engine(), listen=listen,
                                 cert_file=cert_file, key_file=key_file,
                                 client_ca=client_ca, quic_bind=quic_bind,
                                 snapshot_dir=None if snapshot_dir is None
                                 else snapshot_dir.absolute(),
                                 snapshot_boltfile=None if snapshot_boltfile is None
                                 else snapshot_boltfile.absolute(),
                                 alert_rules=None if alert_rules is None
                                 else alert_rules.absolute(),
                                 metrics_interval=metrics_interval,
                                 runbook_schedules=runbook_schedules)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    run(settings)


@agent.group(cls=CommandGroup)
def token() -> None:
    """Make, list and revoke the agent's API tokens (kept as hashes only)."""


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    """Make a token called NAME and print it, once, as the last line."""
    from ..server._tokens import TokenStore

    store = TokenStore()
    try:
        value = store.create(name)
    finally:
        store.close()
    click.echo(f"Token {name!r} created. It is shown only now; the agent keeps its hash.",
               err=True)
    click.echo(value)


@token.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def token_ls(as_json: bool) -> None:
    """List the tokens (names and dates; never the tokens themselves)."""
    from ..server._tokens import TokenStore

    store = TokenStore()
    try:
        tokens = store.list()
    finally:
        store.close()
    if as_json:
        echo_json([{"name": info.name, "created": info.created_at.isoformat(),
                    "revoked": None if info.revoked_at is None else info.revoked_at.isoformat()}
                   for info in tokens])
        return
    rows = [[info.name, info.created_at.strftime("%Y-%m-%d %H:%M:%S"),
             "revoked " + info.revoked_at.strftime("%Y-%m-%d %H:%M:%S")
             if info.revoked_at is not None else "active"] for info in tokens]
    click.echo(render_table(["NAME", "CREATED (UTC)", "STATE"], rows))


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke the token called NAME: its next request is refused."""
    from ..server._tokens import TokenStore

    store = TokenStore()
    try:
        store.revoke(name)
    finally:
        store.close()
    click.echo(f"Token {name!r} revoked.")
