"""``ghostpanel up --shared``: watch-only viewers served by ONE Panel server process.

Each Voila viewer costs a kernel (docs/dashboard-performance.md); in shared mode every
browser session is one live container table (a few Bokeh models) in one process:
``ghostpanel_widgets._shared_server``. That server runs as a child process, like Voila,
so that this command stays free of Panel's imports and stops it the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._up import _child_environment, _serve

__all__ = ["up_shared"]


def up_shared(chosen: str, port: int, *, open_browser: bool) -> None:
    """Serve the shared-process dashboard of environment ``chosen`` on 127.0.0.1:PORT
    until a stop signal (Ctrl-C).

    Parameters
    ----------
    chosen : str
        The environment's name (resolved by the caller).
    port : int
        A free port on 127.0.0.1.
    open_browser : bool
        Whether to open a web browser once the server listens (when there is a display).
    """
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "ghostpanel_widgets._shared_server", str(port)]
    _serve(command, port=port, url=url, banner=f"GhostPanel shared dashboard: {url}",
           environment=_child_environment(chosen), cwd=Path.cwd(),
           open_browser=open_browser)
