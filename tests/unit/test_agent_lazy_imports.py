"""What the agent's process leaves unimported until it is needed (its memory budget is
50 MB): httpx's own command line, prometheus-client until ``/metrics`` is scraped; checked
in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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


def test_the_agent_imports_prometheus_client_at_the_first_scrape_only(tmp_path: Path) -> None:
    # prometheus-client (and the /metrics module) cost memory that an agent nobody
    # scrapes should not pay: they are imported when /metrics is first asked for.
    lines = _run(
        "import sys, asyncio, pathlib\n"
        "from ghostpanel_kernel.server._app import create_app\n"
        "from ghostpanel_kernel.server._settings import AgentSettings\n"
        f"home = pathlib.Path({str(tmp_path)!r})\n"
        "settings = AgentSettings(engine_url=f'unix://{home}/engine.sock', "
        "listen='127.0.0.1:9', home=home)\n"
        "app = create_app(settings)\n"
        "asyncio.run(app.startup())\n"
        "loaded = lambda: sorted(n for n in ('prometheus_client',\n"
        "    'ghostpanel_kernel.server._prometheus') if n in sys.modules)\n"
        "print(loaded())\n"
        "app._metrics_endpoint()\n"
        "print(loaded())\n")
    assert lines == ["[]", "['ghostpanel_kernel.server._prometheus', 'prometheus_client']"]


def test_env_metrics_and_the_metrics_package_leave_pandas_unimported() -> None:
    # The agent imports the engine package and ghostpanel_kernel.metrics; the history
    # accessor and the analytics names must cost it nothing until a frame is asked for.
    lines = _run(
        "import sys\n"
        "import ghostpanel_kernel.metrics as metrics\n"
        "from ghostpanel_kernel.engine import Environment\n"
        "env = Environment('unix:///nonexistent.sock', name='lab')\n"
        "print(type(env.metrics).__name__, metrics.history.__name__)\n"
        "print(sorted(n for n in ('pandas', 'numpy', 'ghostpanel_kernel.metrics._frame')\n"
        "             if n in sys.modules))\n"
        "metrics.usage_percentiles\n"
        "print('pandas' in sys.modules)\n")
    assert lines == ["EnvironmentMetrics history", "[]", "True"]
