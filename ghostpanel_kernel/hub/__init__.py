"""JupyterHub for teams: ``ghostpanel hub`` and its demo administration (users, tokens).

See ``docs/hub.md`` and ``hub_config/jupyterhub_config.py``.
"""
