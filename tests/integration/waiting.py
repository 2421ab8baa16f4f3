"""Waiting for what a widget does on its own tasks, in the tests that drive it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["until"]


async def until(condition: Callable[[], Any], *, timeout: float = 10.0,
                what: str = "condition") -> None:
    """Wait until ``condition()`` is true, at most ``timeout`` seconds.

    Raises
    ------
    AssertionError
        ``condition()`` was still false after ``timeout`` seconds; the message says
        ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s")
        await asyncio.sleep(0.02)
