"""``ghostpanel gateway``: the GhostPanel gateway, as JupyterHub runs it (a managed service).

::

    ghostpanel gateway [--bind HOST:PORT]

JupyterHub starts it with ``JUPYTERHUB_SERVICE_URL`` (where to listen),
``JUPYTERHUB_SERVICE_PREFIX`` (the path prefix its proxy keeps), ``JUPYTERHUB_API_URL``
and ``JUPYTERHUB_API_TOKEN`` (to check callers' tokens) and ``JUPYTERHUB_CLIENT_ID``
(the browser login). See ``docs/gateway.md``.
"""

from __future__ import annotations

import click

__all__ = ["gateway"]


@click.command()
@click.option("--bind", metavar="HOST:PORT",
              help="Where to listen (plain HTTP, for the hub's proxy). Default: the "
                   "address in JUPYTERHUB_SERVICE_URL, else 127.0.0.1:10101.")
def gateway(bind: str | None) -> None:
    """Serve every registered environment behind JupyterHub logins, RBAC and an audit log.

    Run by `ghostpanel hub` as the hub-managed service `ghostpanel`: the hub passes it
    the JUPYTERHUB_* variables it needs. Prints a "ready" line; SIGINT or SIGTERM stop
    it (exit status 0).
    """
    import os

    from ..gateway._serve_gateway import GatewaySettings, run

    try:
        settings = GatewaySettings.from_environment(bind)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    missing = [name for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")
               if not os.environ.get(name)]
    if missing:
        raise click.UsageError(
            f"{' and '.join(missing)} not set: the gateway checks every caller's token "
            "with JupyterHub, and runs as a hub-managed service (`ghostpanel hub` starts "
            "it); see docs/gateway.md")
    run(settings)
