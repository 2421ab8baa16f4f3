"""Fixtures of the GPU allocator's unit tests: the simulated mixed inventory, a store,
and an allocator over both.

Imported by the test modules that reserve GPUs (``from tests.unit.gpu_fixtures import
...  # noqa: F401``), not put in ``conftest.py``: ``database`` and ``inventory`` are
names other unit tests use for other things.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ghostpanel_kernel.gpus import GpuAllocator, Inventory, load_simulation, read_inventory
from ghostpanel_kernel.store import open_database
from tests.nvml_data import MIXED

__all__ = ["allocator_fixture", "database_fixture", "inventory_fixture"]


@pytest.fixture(name="inventory")
def inventory_fixture() -> Inventory:
    """The simulated host ``lab``, its GPUs those of :data:`~tests.nvml_data.MIXED`."""
    return read_inventory(load_simulation(MIXED), source=str(MIXED), host="lab")


@pytest.fixture(name="database")
def database_fixture(tmp_path: Path) -> Iterator[Engine]:
    """A new SQLite store under ``tmp_path``, disposed of after the test."""
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(name="allocator")
def allocator_fixture(inventory: Inventory, database: Engine) -> GpuAllocator:
    """An allocator over ``inventory`` keeping its reservations in ``database``."""
    return GpuAllocator(inventory, engine=database)
