"""The ``ghostpanel`` command: environments, containers, images, volumes and networks.

>>> from ghostpanel_kernel.cli import cli
>>> from click.testing import CliRunner
>>> CliRunner().invoke(cli, ["--version"]).output
'ghostpanel 0.1.0\\n'

``main`` is the console script (``ghostpanel = "ghostpanel_kernel.cli:main"``); ``cli`` is
the click group, for ``CliRunner`` tests and for embedding; ``CliContext`` is what tests
pass as ``obj`` to open environments their own way.
"""

from __future__ import annotations

from .._httpx_cli import defer as _defer_httpx_cli

_defer_httpx_cli()  # before anything imports httpx: see ghostpanel_kernel/_httpx_cli.py

from ._app import CliContext, cli  # noqa: E402

__all__ = ["CliContext", "cli", "main"]


def main() -> None:
    """Run ``ghostpanel`` with the process's arguments; exits with the command's status."""
    cli.main(prog_name="ghostpanel")
