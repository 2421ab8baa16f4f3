"""Where ``ghostpanel up`` and ``ghostpanel lab`` find the dashboard and the notebooks.

From a source tree (an editable install) they sit beside the package; a wheel installs
them as data files under ``<prefix>/share/ghostpanel/``, which pyproject declares.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from ghostpanel_kernel.cli import _up
from ghostpanel_kernel.cli._output import CommandError

ROOT = Path(__file__).resolve().parents[2]


def _data_files() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        table: dict[str, list[str]] = (
            tomllib.load(file)["tool"]["setuptools"]["data-files"])
    return table


def test_the_wheel_ships_the_dashboard_and_every_notebook() -> None:
    shipped = {(Path(target).relative_to("share/ghostpanel") / Path(path).name).as_posix()
               for target, patterns in _data_files().items()
               for pattern in patterns for path in ROOT.glob(pattern)}
    wanted = {_up.dashboard_notebook().relative_to(ROOT).as_posix()} | {
        path.relative_to(ROOT).as_posix() for path in _up.notebooks_folder().glob("*.ipynb")}
    assert wanted and wanted <= shipped


def _outside_the_source_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pretend the package is installed in site-packages under a prefix ``tmp_path``."""
    module = tmp_path / "lib" / "site-packages" / "ghostpanel_kernel" / "cli" / "_up.py"
    monkeypatch.setattr(_up, "__file__", str(module))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    return tmp_path / "share" / "ghostpanel"


def test_an_installed_wheel_finds_them_under_the_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    share = _outside_the_source_tree(tmp_path, monkeypatch)
    (share / "voila_apps").mkdir(parents=True)
    (share / "voila_apps" / "ops_dashboard.ipynb").write_text("{}")
    (share / "notebooks").mkdir()
    assert _up.dashboard_notebook() == share / "voila_apps" / "ops_dashboard.ipynb"
    assert _up.notebooks_folder() == share / "notebooks"


def test_missing_files_name_every_place_looked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    share = _outside_the_source_tree(tmp_path, monkeypatch)
    with pytest.raises(CommandError) as caught:
        _up.dashboard_notebook()
    message = str(caught.value)
    assert str(share / "voila_apps" / "ops_dashboard.ipynb") in message
    assert str(tmp_path / "lib" / "site-packages" / "voila_apps") in message
    assert "pip install -e ." in message
