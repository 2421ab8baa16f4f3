"""What the agent's process leaves unimported until it is needed (its memory budget is
50 MB): httpx's own command line, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    return result.stdout.splitlines()


def test_the_cli_does_not_load_httpx_s_command_line_until_it_is_called() -> None:
    lines = _run(
        "import sys\n"
        "import ghostpanel_kernel.cli, httpx\n"
        "heavy = ('rich', 'pygments')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "httpx.main(['--help'], standalone_mode=False)\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "print(getattr(sys.modules['httpx._main'], '_ghostpanel_deferred', False))\n")
    assert lines[0] == "[]"  # httpx imported without its CLI's rich and pygments
    assert "Usage: httpx" in "\n".join(lines[1:-2])  # the real CLI, loaded on call
    assert lines[-2] == "['pygments', 'rich']" and lines[-1] == "False"


def test_nothing_is_deferred_once_httpx_is_in() -> None:
    lines = _run(
        "import sys, httpx\n"
        "from ghostpanel_kernel._httpx_cli import defer\n"
        "real = sys.modules['httpx._main']\n"
        "defer()\n"
        "print(sys.modules['httpx._main'] is real)\n")
    assert lines == ["True"]
