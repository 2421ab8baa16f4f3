"""The public surface of ``ghostpanel_kernel``: pinned names, lazy imports (PEP 562)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import ghostpanel_kernel
import ghostpanel_kernel.engine

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = [
    "BoltfileError",
    "Conflict",
    "Container",
    "EngineAPIError",
    "EngineConnectionError",
    "EngineProtocolError",
    "EngineTimeout",
    "EngineVersion",
    "Environment",
    "EnvironmentClosed",
    "EnvironmentNotFound",
    "EnvironmentRegistry",
    "EnvironmentSpec",
    "Event",
    "ExecResult",
    "FanOutResult",
    "FileEntry",
    "GhostPanelError",
    "Image",
    "ImagePullError",
    "LogLine",
    "Logs",
    "Network",
    "NotFound",
    "PermissionDenied",
    "PullEvent",
    "StatsSample",
    "TLSConfig",
    "Volume",
    "connect",
    "connect_sync",
    "fan_out",
]


def test_all_is_pinned_and_sorted() -> None:
    assert ghostpanel_kernel.__all__ == PUBLIC
    assert sorted(PUBLIC) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(ghostpanel_kernel, name)
    assert value is not None
    assert getattr(value, "__name__", name) == name
    assert not getattr(value, "__module__", "ghostpanel_kernel").startswith("tests")


def test_engine_names_are_the_engine_objects() -> None:
    for name in ("Environment", "NotFound", "Container", "TLSConfig", "LogLine"):
        assert getattr(ghostpanel_kernel, name) is getattr(ghostpanel_kernel.engine, name)


def test_engine_package_all_is_sorted_and_resolves() -> None:
    names = ghostpanel_kernel.engine.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(ghostpanel_kernel.engine, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'EngineClient'"):
        ghostpanel_kernel.EngineClient  # noqa: B018  (internal: not re-exported)
    with pytest.raises(AttributeError):
        ghostpanel_kernel.does_not_exist  # noqa: B018
    assert not hasattr(ghostpanel_kernel, "utils")


def test_dir_lists_the_public_names() -> None:
    assert set(PUBLIC) <= set(dir(ghostpanel_kernel))


def test_version_is_the_projects_declared_version() -> None:
    # One version: the one pyproject.toml gives the distribution, in PEP 440's public form.
    with (ROOT / "pyproject.toml").open("rb") as handle:
        declared = tomllib.load(handle)["project"]["version"]
    assert ghostpanel_kernel.__version__ == declared
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?",
                        declared), declared


def imported_after(statement: str, modules: list[str]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after ``statement``."""
    code = (f"import sys\n{statement}\n"
            f"print(' '.join(m for m in {modules!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            timeout=30, check=True)
    return result.stdout.split()


HEAVY = ["sqlalchemy", "tomlkit", "pandas", "ipywidgets", "panel", "httpx"]


def test_import_ghostpanel_kernel_is_cheap() -> None:
    assert imported_after("import ghostpanel_kernel", HEAVY) == []


def test_from_ghostpanel_kernel_import_connect_skips_the_registry_and_jupyter() -> None:
    heavy = imported_after("from ghostpanel_kernel import connect",
                           ["sqlalchemy", "pandas", "ipywidgets", "httpx"])
    assert heavy == ["httpx"]  # the client needs httpx, and nothing else heavy


def test_connecting_by_url_does_not_import_the_registry() -> None:
    statement = ("from ghostpanel_kernel import connect\n"
                 "env = connect('unix:///run/podman/podman.sock')")
    assert imported_after(statement, ["sqlalchemy", "pandas", "ipywidgets"]) == []


def test_bolt_imports_without_the_http_stack() -> None:
    # Boltfile tools (fmt, validate, the editor) raise BoltfileError, which lives with
    # the other exceptions in a module that imports nothing heavy.
    heavy = imported_after("import ghostpanel_kernel.bolt", ["httpx", "ghostpanel_kernel.engine"])
    assert heavy == []


def test_errors_import_without_the_http_stack() -> None:
    statement = "from ghostpanel_kernel import GhostPanelError, EngineProtocolError, NotFound"
    assert imported_after(statement, ["httpx"]) == []
