"""What the wheel ships is the library: no test harness, and nothing that needs one."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shipped_modules() -> list[Path]:
    """The ``.py`` files of the packages pyproject.toml ships."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        setuptools = tomllib.load(handle)["tool"]["setuptools"]
    folders = setuptools.get("package-dir", {})
    found: list[Path] = []
    for package in setuptools["packages"]:
        folder = ROOT / folders.get(package, package.replace(".", "/"))
        found += sorted(folder.glob("*.py"))
    return found


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_shipped_module_is_or_imports_a_test_harness() -> None:
    modules = shipped_modules()
    assert ROOT / "ghostpanel_kernel" / "demo.py" in modules  # the walk sees the library
    assert [path.name for path in modules if path.stem == "podman_service"] == []
    importing_tests = {str(path.relative_to(ROOT)): sorted(
        name for name in imported_modules(path) if name.split(".")[0] in ("tests", "bench"))
        for path in modules}
    assert {path: names for path, names in importing_tests.items() if names} == {}
