"""Fixtures shared by the unit tests (no engine: a FakeEngine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.engine import Environment
from tests.unit.fake_engine import FakeEngine, env_for


@pytest.fixture
async def open_engine_widget() -> AsyncIterator[Callable[..., Any]]:
    """``await open_engine_widget(Widget, engine, *args, **options)``.

    ``Widget(env, *args, **options)`` on a new environment over ``engine``, once its
    first task (the first listing) is done. After the test each widget is closed, its
    task awaited and its environment closed, and no widget model may be left open.
    """
    from ipywidgets.widgets.widget import _instances  # open widgets, by model id

    made: list[tuple[Any, Environment]] = []

    async def open_(widget_class: type, engine: FakeEngine, *args: Any, **options: Any) -> Any:
        env = env_for(engine)
        widget = widget_class(env, *args, **options)
        made.append((widget, env))
        assert widget.task is not None
        await widget.task
        return widget

    before = set(_instances)
    yield open_
    for widget, env in made:
        task = widget.task
        widget.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await env.aclose()
    assert set(_instances) == before, "close() left widgets open"


@pytest.fixture
async def widgets() -> AsyncIterator[list[Any]]:
    """Widgets a test made (it appends them), closed after it; none may be left open.

    For the widgets on no environment (``AlertFeed``, ``AuditLog``, ``MetricsChart``):
    ``open_engine_widget`` is the one for engine views.
    """
    from ipywidgets.widgets.widget import _instances  # open widgets, by model id

    before = set(_instances)
    made: list[Any] = []
    yield made
    for widget in made:
        widget.close()
    await asyncio.sleep(0)  # the sources' aclose tasks, which close() starts
    assert set(_instances) == before, "close() left widgets open"


@pytest.fixture
async def opened() -> AsyncIterator[list[Environment]]:
    """Environments a test opened (it appends them), closed at its end whatever happened."""
    environments: list[Environment] = []
    yield environments
    for env in environments:
        await env.aclose()


@pytest.fixture
def token(tmp_path: Path) -> str:
    """An agent token, made in the store the agent reads under ``tmp_path`` (its home)."""
    # Imported here: the token store brings SQLAlchemy, which most unit tests never need.
    from ghostpanel_kernel.server._tokens import TokenStore

    store = TokenStore(f"sqlite:///{tmp_path / 'ghostpanel.db'}")
    try:
        return store.create("unit")
    finally:
        store.close()
