"""The GhostPanel gateway: many environments behind JupyterHub logins, RBAC and an audit log.

It runs as a JupyterHub-managed service (``ghostpanel gateway``, started by ``ghostpanel
hub``) at ``/services/ghostpanel/``. Every request is authenticated through the hub and
authorised against the caller's roles on the environment before anything reaches an
engine; every change and every refusal is written to a hash-chained audit log. See
``docs/gateway.md`` and ``docs/rbac.md``.
"""
