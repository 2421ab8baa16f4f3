"""GhostPanel's ipywidget controls, imported as ``ghostpanel_widgets``.

The widgets (the Boltfile editor, container lists, log streams, stats charts...) are
thin views over :mod:`ghostpanel_kernel`; this package is installed from the
``widgets/`` folder by the mapping in ``pyproject.toml``.

>>> from ghostpanel_widgets import BoltfileEditor
>>> BoltfileEditor("Boltfile.toml")                                    # doctest: +SKIP

Public names load on first use (PEP 562), as in ``ghostpanel_kernel``: ``import
ghostpanel_widgets`` imports neither ipywidgets nor Panel, so tools that only look at
the package (docs, ``--help``) stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it; one table feeds __all__, __getattr__ and __dir__.
_EXPORTS: dict[str, str] = {
    "AlertFeed": "._alert_feed",
    "AuditLog": "._audit_log",
    "BoltfileEditor": "._boltfile_editor",
    "ContainerInspector": "._container_inspector",
    "ContainerList": "._container_list",
    "ContainerPage": "._container_page",
    "CreateContainerForm": "._create_form",
    "EnvironmentPicker": "._environment_picker",
    "EventFeed": "._event_feed",
    "ExecConsole": "._exec_console",
    "FileBrowser": "._file_browser",
    "GpuAllocator": "._gpu_allocator",
    "HomeView": "._home",
    "ImageBrowser": "._image_browser",
    "LogStream": "._log_stream",
    "MetricsChart": "._metrics_chart",
    "NetworkBrowser": "._network_browser",
    "OpsDashboard": "._dashboard",
    "RunbookLauncher": "._runbook_launcher",
    "SnapshotPicker": "._snapshot_picker",
    "StacksView": "._stacks",
    "StatsMonitor": "._stats_monitor",
    "TemplateGallery": "._template_gallery",
    "VolumeBrowser": "._volume_browser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ghostpanel_widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # names in __all__ via _EXPORTS
    from ._alert_feed import AlertFeed  # noqa: F401
    from ._audit_log import AuditLog  # noqa: F401
    from ._boltfile_editor import BoltfileEditor  # noqa: F401
    from ._container_inspector import ContainerInspector  # noqa: F401
    from ._container_list import ContainerList  # noqa: F401
    from ._container_page import ContainerPage  # noqa: F401
    from ._create_form import CreateContainerForm  # noqa: F401
    from ._dashboard import OpsDashboard  # noqa: F401
    from ._environment_picker import EnvironmentPicker  # noqa: F401
    from ._event_feed import EventFeed  # noqa: F401
    from ._exec_console import ExecConsole  # noqa: F401
    from ._file_browser import FileBrowser  # noqa: F401
    from ._gpu_allocator import GpuAllocator  # noqa: F401
    from ._home import HomeView  # noqa: F401
    from ._image_browser import ImageBrowser  # noqa: F401
    from ._log_stream import LogStream  # noqa: F401
    from ._metrics_chart import MetricsChart  # noqa: F401
    from ._network_browser import NetworkBrowser  # noqa: F401
    from ._runbook_launcher import RunbookLauncher  # noqa: F401
    from ._snapshot_picker import SnapshotPicker  # noqa: F401
    from ._stacks import StacksView  # noqa: F401
    from ._stats_monitor import StatsMonitor  # noqa: F401
    from ._template_gallery import TemplateGallery  # noqa: F401
    from ._volume_browser import VolumeBrowser  # noqa: F401
