"""``within(awaitable, seconds)``: ``asyncio.wait_for`` without a task per call where Python allows.

``asyncio.wait_for`` wraps a coroutine in a new Task (before Python 3.12); the
scheduler and the in-process backends await several per host, and on a
1,000-host call those tasks are measurable client CPU.  On 3.11.3 and later the
awaitable runs in the calling task under ``asyncio.timeout``, which raises
the same ``TimeoutError``; before, this is ``wait_for`` itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

#: 3.11.3 made ``asyncio.timeout`` right inside a cancelled task's cleanup (gh-102780).
_NATIVE = sys.version_info >= (3, 11, 3)

if sys.version_info >= (3, 11):
    async def within(aw: Awaitable[T], seconds: float | None) -> T:
        """``await aw``, or ``TimeoutError`` after *seconds* (``None``: no limit)."""
        if not _NATIVE:  # pragma: no cover - Python 3.11.0 to 3.11.2
            return await asyncio.wait_for(aw, seconds)
        async with asyncio.timeout(seconds):
            return await aw
else:  # pragma: no cover - Python 3.10
    async def within(aw: Awaitable[T], seconds: float | None) -> T:
        """``await aw``, or ``asyncio.TimeoutError`` after *seconds* (``None``: no limit)."""
        return await asyncio.wait_for(aw, seconds)
