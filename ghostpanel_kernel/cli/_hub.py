"""``ghostpanel hub``: JupyterHub for teams, and its demo administration.

::

    ghostpanel hub [--port 8000] [--ip 127.0.0.1] [--config FILE]
    ghostpanel hub user add NAME [--admin] [--group TEAM]...
    ghostpanel hub user ls [--json]
    ghostpanel hub token NAME [--note TEXT] [--expires-in SECONDS]
    ghostpanel hub role grant|revoke USER|@GROUP ROLE --env NAME
    ghostpanel hub role ls [--env NAME] [--json]
    ghostpanel hub role define NAME PERMISSION...
    ghostpanel hub role delete NAME

``user`` and ``token`` talk to the running hub (its REST API, with the admin service's
token); ``role`` writes the gateway's store, which the gateway reads per request, so a
grant or a revoke needs no restart. See docs/hub.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._app import CommandGroup
from ._output import CommandError, echo_json, render_table

if TYPE_CHECKING:
    from ..gateway._roles import RoleStore
    from ..hub._admin import HubAdmin

__all__ = ["hub"]


@click.group(cls=CommandGroup, invoke_without_command=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="The port users connect to (the proxy).")
@click.option("--ip", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="The address the proxy listens on. The demo login (one shared "
                   "password) is meant for one machine: keep loopback unless you "
                   "configured another authenticator.")
@click.option("--config", "config_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JupyterHub configuration file (default: the repository's "
                   "hub_config/jupyterhub_config.py).")
@click.pass_context
def hub(ctx: click.Context, port: int, ip: str, config_file: Path | None) -> None:
    """Run JupyterHub with the GhostPanel gateway, until Ctrl-C or SIGTERM.

    Hub state (database, secrets, user folders) lives in $GHOSTPANEL_HOME/hub. Prints
    the URL, the demo password and how to add users, then "ready". Only one hub runs
    per GhostPanel home.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..hub._config import HubPorts, free_port
    from ..hub._launch import run_hub
    from ..hub._paths import HubPaths

    ports = HubPorts(ip=ip, port=port, api_port=free_port(), proxy_api_port=free_port(),
                     gateway_port=free_port())
    status = run_hub(HubPaths.current(), ports, config=config_file,
                     out=lambda line: click.echo(line))
    ctx.exit(status)


@contextmanager
def _admin() -> Iterator[HubAdmin]:
    from ..hub._admin import HubAdmin
    from ..hub._paths import HubPaths

    with HubAdmin.for_home(HubPaths.current()) as admin:
        yield admin


# -- users and tokens ----------------------------------------------------------------


@hub.group(cls=CommandGroup)
def user() -> None:
    """Add and list the hub's users (the hub must be running)."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a hub admin (every "
              "permission on every environment).")
@click.option("--group", "groups", multiple=True, metavar="TEAM",
              help="Add the user to this hub group, i.e. GhostPanel team (repeatable; "
                   "made when missing).")
def user_add(name: str, admin: bool, groups: tuple[str, ...]) -> None:
    """Add user NAME (or add an existing one to more groups)."""
    with _admin() as hub_admin:
        model, created = hub_admin.add_user(name, admin=admin, groups=groups)
    teams = ", ".join(sorted(model.get("groups") or [])) or "no team"
    verb = "added" if created else "already exists; updated"
    click.echo(f"user {name} {verb} (admin: {'yes' if model.get('admin') else 'no'}; "
               f"teams: {teams})")


@user.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def user_ls(as_json: bool) -> None:
    """List the hub's users, their teams and admin flags."""
    with _admin() as hub_admin:
        models = hub_admin.users()
    rows: list[dict[str, Any]] = [
        {"name": model.get("name"), "admin": bool(model.get("admin")),
         "teams": sorted(model.get("groups") or []),
         "last_activity": model.get("last_activity")} for model in models]
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(["NAME", "ADMIN", "TEAMS", "LAST ACTIVITY"],
                            [[row["name"], "yes" if row["admin"] else "",
                              ",".join(row["teams"]), row["last_activity"] or ""]
                             for row in rows]))


@hub.command("token")
@click.argument("name")
@click.option("--note", help="What the token is for (shown in the hub's token page).")
@click.option("--expires-in", type=click.IntRange(min=1), metavar="SECONDS",
              help="Let the token expire after this many seconds (default: never, or "
                   "the hub's maximum).")
def token(name: str, note: str | None, expires_in: int | None) -> None:
    """Make an API token for user NAME; prints it as the last line.

    Use it as `Authorization: token T` for the hub and the gateway, e.g. in the docker
    CLI's config.json HttpHeaders.
    """
    with _admin() as hub_admin:
        value = hub_admin.create_token(name, note=note, expires_in=expires_in)
    click.echo(f"API token for {name} (shown once; the hub keeps only its hash):", err=True)
    click.echo(value)


# -- roles ---------------------------------------------------------------------------


@contextmanager
def _role_store() -> Iterator[RoleStore]:
    from ..gateway._roles import RoleStore
    from ..store import open_database

    engine = open_database()
    try:
        yield RoleStore(engine)
    finally:
        engine.dispose()


def _check_role(store: RoleStore, role: str) -> None:
    roles = store.roles()
    if role not in roles:
        raise CommandError(f"unknown role {role!r}; the roles are {', '.join(sorted(roles))} "
                           "(define one with `ghostpanel hub role define`)")


def _check_subject(subject: str) -> None:
    if not subject.lstrip("@"):
        raise CommandError("give a user name, or @GROUP for a team")
    if subject.startswith("@"):
        return
    # A user the hub does not know is most likely a typo; when the hub is down, the
    # binding is still written (the store does not depend on the hub).
    from ..hub._admin import HubNotRunning

    try:
        with _admin() as hub_admin:
            hub_admin.user(subject)
    except HubNotRunning:
        return


@hub.group(cls=CommandGroup)
def role() -> None:
    """Bind roles to users and teams on environments; define custom roles.

    Bindings live in the gateway's store and take effect at once.
    """


@role.command("grant")
@click.argument("subject", metavar="USER|@GROUP")
@click.argument("role_name", metavar="ROLE")
@click.option("--env", "env", required=True, metavar="NAME", help="The environment.")
def role_grant(subject: str, role_name: str, env: str) -> None:
    """Give USER (or every member of @GROUP) ROLE on environment NAME."""
    _check_subject(subject)
    with _role_store() as store:
        _check_role(store, role_name)
        new = store.grant(subject, role_name, env)
    click.echo(f"granted {role_name} on {env} to {subject}" if new
               else f"{subject} already holds {role_name} on {env}")


@role.command("revoke")
@click.argument("subject", metavar="USER|@GROUP")
@click.argument("role_name", metavar="ROLE")
@click.option("--env", "env", required=True, metavar="NAME", help="The environment.")
def role_revoke(subject: str, role_name: str, env: str) -> None:
    """Take ROLE on environment NAME away from USER or @GROUP."""
    with _role_store() as store:
        _check_role(store, role_name)
        removed = store.revoke(subject, role_name, env)
    if not removed:
        raise CommandError(f"{subject} holds no {role_name} binding on {env} "
                           "(see `ghostpanel hub role ls`)")
    click.echo(f"revoked {role_name} on {env} from {subject}")


@role.command("ls")
@click.option("--env", "env", metavar="NAME", help="Only bindings on this environment.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def role_ls(env: str | None, as_json: bool) -> None:
    """List the role bindings and the roles (built-in and custom)."""
    with _role_store() as store:
        bindings = store.bindings(env)
        roles = store.roles()
    rows: list[dict[str, Any]] = [
        {"subject": binding.subject, "role": binding.role, "env": binding.environment}
        for binding in bindings]
    if as_json:
        echo_json({"bindings": rows,
                   "roles": {name: sorted(perms) for name, perms in sorted(roles.items())}})
        return
    click.echo(render_table(["SUBJECT", "ROLE", "ENVIRONMENT"],
                            [[row["subject"], row["role"], row["env"]] for row in rows]))
    click.echo()
    click.echo(render_table(["ROLE", "PERMISSIONS"],
                            [[name, ",".join(sorted(perms))]
                             for name, perms in sorted(roles.items())]))


@role.command("define")
@click.argument("name")
@click.argument("permissions", nargs=-1, required=True, metavar="PERMISSION...")
def role_define(name: str, permissions: tuple[str, ...]) -> None:
    """Define (or redefine) custom role NAME as a set of permissions."""
    with _role_store() as store:
        # ValueError (reported as one line): a built-in name, an unknown permission.
        store.define_role(name, permissions)
    click.echo(f"role {name}: {', '.join(sorted(set(permissions)))}")


@role.command("delete")
@click.argument("name")
def role_delete(name: str) -> None:
    """Delete custom role NAME (refused while bindings still name it)."""
    with _role_store() as store:
        try:
            store.delete_role(name)
        except KeyError as error:
            raise CommandError(str(error.args[0])) from None
    click.echo(f"role {name} deleted")
