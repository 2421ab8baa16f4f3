"""JupyterHub configuration for GhostPanel teams (``ghostpanel hub`` runs it).

Start it with ``ghostpanel hub [--port N] [--ip ADDRESS]`` rather than ``jupyterhub -f``:
the command picks the loopback ports below, runs the hub in ``$GHOSTPANEL_HOME/hub``,
refuses a second hub on the same home and prints the demo password. Every setting says
why it is here; ``docs/hub.md`` is the user's guide (set-up, users, tokens, roles,
OAuth/OIDC/LDAP, where state lives, troubleshooting).

Nothing secret is in this file: secrets are made on first start as 0600 files under
``$GHOSTPANEL_HOME/hub/``.
"""

# ruff: noqa: F821 -- `get_config` is injected by traitlets when JupyterHub loads this file.

import os
import sys
from pathlib import Path

from ghostpanel_kernel.gateway._permissions import BUILTIN_ROLES, custom_scopes, scope_name
from ghostpanel_kernel.hub._config import (
    ADMIN_SERVICE,
    ADMIN_SERVICE_ROLE,
    GATEWAY_SERVICE,
    HubPorts,
    demo_password,
    gateway_command,
    registered_environments,
    seed_user_folder,
    spawner_environment,
)
from ghostpanel_kernel.hub._paths import HubPaths, secret_file
from ghostpanel_kernel.hub._roles_config import hub_roles, read_bindings

c = get_config()

# -- where state lives ---------------------------------------------------------------
# One GhostPanel home = one hub: everything JupyterHub writes goes under <home>/hub/,
# so two homes (two test sessions, two demo set-ups) never share a database or a proxy.
paths = HubPaths.current()
paths.ensure()
ports = HubPorts.from_environment()

# JupyterHub's own database (users, groups, tokens, OAuth clients). SQLite is enough for
# one hub process; the gateway's roles and audit log live in GhostPanel's store instead
# (GHOSTPANEL_DATABASE_URL), which may be PostgreSQL.
c.JupyterHub.db_url = f"sqlite:///{paths.database}"
# The key that signs login cookies: made once (0600), kept across restarts so that
# users stay logged in when the hub restarts.
c.JupyterHub.cookie_secret_file = str(paths.cookie_secret)
# The hub's PID file, under the home: a process that names the home on its command line
# can be found by the folder (tests sweep what a killed session left behind).
c.JupyterHub.pid_file = str(paths.hub_pid)

# -- addresses -----------------------------------------------------------------------
# Where users connect: the proxy, on the address `ghostpanel hub --ip/--port` chose
# (loopback by default: the demo authenticator below is for one machine).
c.JupyterHub.bind_url = ports.public_url
# The hub's own API and pages, behind the proxy: loopback only, on a free port so that
# several hubs (tests) can run on one machine.
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{ports.api_port}"

# -- the proxy -----------------------------------------------------------------------
# configurable-http-proxy (npm; scripts/setup.sh installs it), started and stopped by
# the hub. Its REST API is on a free loopback port, its PID file under the home so a
# second hub on this home is refused rather than killing this one's proxy.
c.JupyterHub.proxy_class = "configurable-http-proxy"
c.ConfigurableHTTPProxy.should_start = True
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports.proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = str(paths.proxy_pid)
# The token hub and proxy share: from a 0600 file rather than the environment, so it
# survives hub restarts and the proxy's routes can be re-used.
c.ConfigurableHTTPProxy.auth_token = secret_file(paths.proxy_token)
# Stop the proxy, the services and the single-user servers when the hub stops: a
# stopped `ghostpanel hub` leaves no process behind.
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.cleanup_servers = True

# -- GhostPanel permissions as hub scopes --------------------------------------------
# Static group -> role bindings from <home>/hub/roles.toml (optional; see docs/hub.md).
# Bindings made with `ghostpanel hub role grant` live in the gateway's store instead and
# need no restart.
roles = dict(BUILTIN_ROLES)
static_bindings = read_bindings(paths.roles_toml, roles)
# One custom scope per (environment, permission): custom:ghostpanel:<env>:<permission>.
# The hub accepts only !user=/!group=/!server=/!service= filters on scopes, so the
# environment has to be part of the scope's name. Environments registered after the
# hub started get scopes at its next start (gateway bindings work at once).
environments = registered_environments(binding.env for binding in static_bindings)
c.JupyterHub.custom_scopes = custom_scopes(environments)
ghostpanel_scopes = sorted(c.JupyterHub.custom_scopes)

gateway_url = f"{ports.local_url}services/{GATEWAY_SERVICE}/"

# -- services ------------------------------------------------------------------------
gateway_environment = {
    # The gateway reads the same store (environments, roles, audit log) as the CLI.
    "GHOSTPANEL_HOME": str(paths.home),
    # Engines and tools the gateway runs may need these; the hub passes a managed
    # service only a few variables of its own environment (Spawner.env_keep).
    "HOME": os.environ.get("HOME", str(paths.home)),
}
for variable in ("GHOSTPANEL_DATABASE_URL", "XDG_RUNTIME_DIR", "DOCKER_HOST",
                 "CONTAINER_HOST"):
    if os.environ.get(variable):
        gateway_environment[variable] = os.environ[variable]

admin_token = secret_file(paths.admin_token)

c.JupyterHub.services = [
    {
        # The gateway, started and stopped by the hub, served by the proxy at
        # /services/ghostpanel/ (the prefix stays in the path it receives).
        "name": GATEWAY_SERVICE,
        "url": f"http://127.0.0.1:{ports.gateway_port}",
        "command": gateway_command(paths.home),
        "environment": gateway_environment,
        # Browsers log in to the gateway through the hub's OAuth; the gateway is part of
        # this deployment, so users are not asked to confirm each time.
        "oauth_no_confirm": True,
        # What an OAuth token issued for the gateway may carry: the GhostPanel scopes
        # (intersected with what the user holds) - the gateway reads them per request.
        "oauth_client_allowed_scopes": ghostpanel_scopes,
        # Listed on the hub's home page as "ghostpanel".
        "display": True,
    },
    {
        # No process: a token the CLI's demo administration uses (`ghostpanel hub user
        # add`, `token`), made on first start as a 0600 file under <home>/hub/.
        "name": ADMIN_SERVICE,
        "api_token": admin_token,
        "display": False,
    },
]

c.JupyterHub.load_roles = [
    {
        # Every user may reach the gateway; what they may do there is GhostPanel's RBAC.
        # Merged with JupyterHub's default `user` role (it keeps "self").
        "name": "user",
        "scopes": ["self", f"access:services!service={GATEWAY_SERVICE}"],
    },
    {
        # The admin service must be a hub admin: only admins may make admins (see
        # ghostpanel_kernel/hub/_config.py for why this widens nothing).
        "name": ADMIN_SERVICE_ROLE,
        "services": [ADMIN_SERVICE],
    },
    # roles.toml: one hub role per (role, environment) with its groups.
    *hub_roles(static_bindings, roles, scope_name),
]

# -- who may log in: the demo authenticator ------------------------------------------
# JupyterHub 5's shared password, for one machine: everyone who is a hub user logs in
# with one password (GHOSTPANEL_HUB_PASSWORD, else a generated 0600 file that
# `ghostpanel hub` prints). DemoAuthenticator keeps the admin flag the CLI set.
c.JupyterHub.authenticator_class = "ghostpanel_kernel.hub._authenticator.DemoAuthenticator"
c.SharedPasswordAuthenticator.user_password = demo_password(paths)
# Users made with `ghostpanel hub user add` may log in; nobody else may.
c.Authenticator.allow_existing_users = True

# -- other authenticators (uncomment one; `pip install oauthenticator` or
# `ldapauthenticator`). Their groups become hub groups, i.e. GhostPanel teams. --------
#
# GitHub OAuth: teams of an organisation become groups ("org:team").
# c.JupyterHub.authenticator_class = "github"
# c.GitHubOAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
# c.GitHubOAuthenticator.client_id = os.environ["GITHUB_CLIENT_ID"]          # never commit
# c.GitHubOAuthenticator.client_secret = os.environ["GITHUB_CLIENT_SECRET"]  # never commit
# c.GitHubOAuthenticator.allowed_organizations = {"example-org"}
# c.GitHubOAuthenticator.scope = ["read:org"]       # needed to read team membership
# c.GitHubOAuthenticator.populate_teams_in_auth_state = True
# c.GitHubOAuthenticator.auth_state_groups_key = "teams"  # team slugs -> hub groups
# c.GitHubOAuthenticator.manage_groups = True      # the hub's groups follow GitHub's
# c.Authenticator.enable_auth_state = True          # needs JUPYTERHUB_CRYPT_KEY set
#
# Generic OpenID Connect (Keycloak, Okta, Azure AD, Authentik...):
# c.JupyterHub.authenticator_class = "generic-oauth"
# c.GenericOAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
# c.GenericOAuthenticator.client_id = os.environ["OIDC_CLIENT_ID"]
# c.GenericOAuthenticator.client_secret = os.environ["OIDC_CLIENT_SECRET"]
# c.GenericOAuthenticator.authorize_url = "https://idp.example.org/authorize"
# c.GenericOAuthenticator.token_url = "https://idp.example.org/token"
# c.GenericOAuthenticator.userdata_url = "https://idp.example.org/userinfo"
# c.GenericOAuthenticator.scope = ["openid", "profile", "groups"]
# c.GenericOAuthenticator.username_claim = "preferred_username"
# c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"  # the IdP's claim
# c.GenericOAuthenticator.manage_groups = True     # IdP groups -> hub groups (teams)
# c.GenericOAuthenticator.admin_groups = {"ghostpanel-admins"}  # hub admins
# c.GenericOAuthenticator.allowed_groups = {"blue", "red", "ghostpanel-admins"}
#
# LDAP / Active Directory:
# c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"
# c.LDAPAuthenticator.server_address = "ldaps://ldap.example.org"
# c.LDAPAuthenticator.lookup_dn = True
# c.LDAPAuthenticator.lookup_dn_search_user = "cn=hub,ou=services,dc=example,dc=org"
# c.LDAPAuthenticator.lookup_dn_search_password = os.environ["LDAP_BIND_PASSWORD"]
# c.LDAPAuthenticator.user_search_base = "ou=people,dc=example,dc=org"
# c.LDAPAuthenticator.user_attribute = "uid"
# c.LDAPAuthenticator.auth_state_attributes = ["memberOf"]
# c.LDAPAuthenticator.manage_groups = True           # memberOf -> hub groups (teams)
# c.LDAPAuthenticator.allowed_groups = ["cn=ops,ou=groups,dc=example,dc=org"]
#
# With any of them, `ghostpanel hub role grant @GROUP ROLE --env ENV` binds a team.

# -- single-user servers -------------------------------------------------------------
# Each user's JupyterLab runs as a local process of the hub's own OS user (no system
# accounts needed on a demo machine). It gives no isolation between users: for shared
# production hosts use a container spawner (docs/hub.md). The GhostPanel gateway does
# the enforcing either way: nothing inside a notebook counts as security.
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
# Each user's folder: <home>/hub/users/NAME, seeded with copies of the repository's
# notebooks/ and voila_apps/ before each start (only what is missing, so edits stay).
c.SimpleLocalProcessSpawner.home_dir_template = str(paths.users / "{username}")
c.Spawner.notebook_dir = str(paths.users / "%U")
# Jupyter refuses to run as root without --allow-root (containers, CI machines).
server_args = ["--allow-root"] if os.geteuid() == 0 else []


def _prepare(spawner):
    folder = Path(spawner.home_dir)
    seed_user_folder(folder)
    # The folder on the server's command line too (JupyterHub passes it only in the
    # environment): a server left behind by a killed hub is then found by its folder.
    spawner.args = [*server_args, f"--ServerApp.root_dir={folder}"]


c.Spawner.pre_spawn_hook = _prepare
# This Python's jupyterhub-singleuser: the venv's bin folder need not be on PATH.
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
c.Spawner.args = server_args
# Open the notebooks in JupyterLab. Users who only watch open the Voila dashboard
# through their own server: /user/NAME/voila/render/voila_apps/ops_dashboard.ipynb.
c.Spawner.default_url = "/lab/tree/notebooks"
# Inside a server, connect(), the CLI and the widgets find the gateway here and use the
# user's own token (JUPYTERHUB_API_TOKEN).
c.Spawner.environment = spawner_environment(gateway_url)
# The server's token: JupyterHub's default (activity, access to the server) plus what
# the gateway needs to know the user (name, groups, admin flag) and act for them: the
# GhostPanel scopes the user holds (the hub keeps only those the user has).
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "read:users!user",
    f"access:services!service={GATEWAY_SERVICE}",
    *ghostpanel_scopes,
]
# A loaded machine can take a while to start JupyterLab: wait rather than fail.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
