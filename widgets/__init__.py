"""GhostPanel's ipywidget controls, imported as ``ghostpanel_widgets``.

The widgets (container lists, log streams, stats charts...) are thin views over
:mod:`ghostpanel_kernel`; this package is installed from the ``widgets/`` folder by the
mapping in ``pyproject.toml``.
"""

__all__: list[str] = []
