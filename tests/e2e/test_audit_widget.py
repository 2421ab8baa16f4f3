"""``AuditLog`` in a browser, over a real SQLite store (the store's own ``AuditLog``,
hash chain and all):

- in JupyterLab offline (``ghostpanel lab``): a notebook writes three audit entries and
  shows the widget; Chromium must draw them in the Tabulator table, and "Verify chain"
  must say the chain holds;
- in Voila (``ghostpanel up``): the dashboard on a store that holds audit entries has
  an Audit tab (no hub: the store's entries decide), which shows them.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, expect

from ghostpanel_kernel.environments import EnvironmentRegistry
from ghostpanel_kernel.gateway._audit import AuditLog as AuditStore
from ghostpanel_kernel.store import open_database
from tests.agent_process import free_port
from tests.e2e.conftest import Server, registered_environment, serving
from tests.e2e.jupyterlab import LOAD_TIMEOUT_MS, run_all_cells, screenshot_page, write_notebook
from tests.podman_service import PodmanService

ENV = "e2e-audit"
ACTION_TIMEOUT_MS = 60_000


@contextlib.contextmanager
def _lab(folder: Path, engine_url: str, port: int) -> Iterator[Server]:
    with registered_environment(ENV, engine_url), \
            serving(["lab", "--dir", str(folder), "--port", str(port), "--env", ENV,
                     "--no-browser"], banner="GhostPanel notebooks:") as server:
        yield server


def test_audit_log_widget_in_jupyterlab(browser: Browser, podman_engine: PodmanService
                                        ) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-audit-"))
    database = folder / "audit.db"
    write_notebook(folder / "audit.ipynb", [
        "from ghostpanel_kernel.store import open_database\n"
        "from ghostpanel_kernel.gateway._audit import AuditLog as Store\n"
        "from ghostpanel_kernel.gateway._audit_source import LocalAuditSource\n"
        f"store = Store(open_database('sqlite:///{database}'))\n"
        "for user, action, result, status in [('ada', 'container.stop', 'allowed', 204),\n"
        "                                     ('bob', 'container.kill', 'denied', 403),\n"
        "                                     ('ada', 'image.pull', 'failed', 500)]:\n"
        "    store.record(user=user, environment='prod', action=action, target='web',\n"
        "                 result=result, status=status, request_id='e2e-' + action)",
        "from ghostpanel_widgets import AuditLog\n"
        "AuditLog(LocalAuditSource(store), live=False)",
    ])
    try:
        port = free_port()
        with _lab(folder, podman_engine.url, port) as server:
            token = server.url.split("token=")[1]
            url = f"http://127.0.0.1:{port}/lab/tree/audit.ipynb?token={token}"
            with screenshot_page(browser, url, "jupyterlab-audit-log", server) as page:
                run_all_cells(page, 2)
                widget = page.locator(".jp-Notebook .jp-CodeCell .jp-OutputArea").nth(1) \
                    .locator(".gp-audit-log")
                widget.scroll_into_view_if_needed(timeout=LOAD_TIMEOUT_MS)
                table = widget.locator(".tabulator")
                for text in ("container.stop", "container.kill", "image.pull", "denied"):
                    expect(table).to_contain_text(text, timeout=ACTION_TIMEOUT_MS)
                expect(widget).to_contain_text("Download CSV (3 entries)")
                widget.locator("button", has_text="Verify chain").click()
                expect(widget).to_contain_text("The chain holds: 3 entries checked.",
                                               timeout=ACTION_TIMEOUT_MS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_audit_tab_in_the_voila_dashboard(browser: Browser, podman_engine: PodmanService
                                          ) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gp-audit-up-"))
    # A store of the dashboard's own (not the session's: other dashboards must not get
    # an Audit tab), holding the environment and two audit entries.
    url = f"sqlite:///{folder / 'store.db'}"
    registry = EnvironmentRegistry(url, detect=lambda: None)
    try:
        registry.add(ENV, podman_engine.url)
    finally:
        registry.close()
    engine = open_database(url)
    try:
        store = AuditStore(engine)
        for user, action, result, status in (("ada", "container.restart", "allowed", 204),
                                             ("bob", "volume.remove", "denied", 403)):
            store.record(user=user, environment=ENV, action=action, target="web",
                         result=result, status=status, request_id="e2e-" + action)
    finally:
        engine.dispose()
    try:
        with serving(["up", "--port", str(free_port()), "--env", ENV, "--no-browser"],
                     banner="GhostPanel dashboard:",
                     extra_env={"GHOSTPANEL_DATABASE_URL": url}) as server:
            with screenshot_page(browser, server.url, "voila-audit-tab", server) as page:
                page.get_by_role("tab", name="Audit", exact=True).click(
                    timeout=LOAD_TIMEOUT_MS)
                widget = page.locator(".gp-audit-log")
                table = widget.locator(".tabulator")
                for text in ("container.restart", "volume.remove", "denied"):
                    expect(table).to_contain_text(text, timeout=ACTION_TIMEOUT_MS)
                widget.locator("button", has_text="Verify chain").click()
                expect(widget).to_contain_text("The chain holds: 2 entries checked.",
                                               timeout=ACTION_TIMEOUT_MS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
