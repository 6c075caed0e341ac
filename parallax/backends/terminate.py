"""Ending a cancelled remote command over its own channel: TERM, again until it is seen to end.

sshd delivers a channel's ``signal`` request with ``killpg()`` on the process group of
the command, which the command's process creates (``setsid``) only once it is scheduled
after sshd's fork.  A TERM that sshd handles in between (a cancel that follows the
exec request closely: a timeout or Ctrl-C as the command starts) fails with ``killpg:
No such process`` in sshd's log, and the command runs on with nobody to end it; on
this machine 3 of 40 TERMs sent right after the exec was confirmed were lost.  So the
in-process backends send TERM every :data:`~.grace.TERM_REPEAT` until the command's end
is seen, for at most :data:`~.grace.CANCEL_GRACE` (a frozen server never confirms).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .grace import CANCEL_GRACE, TERM_REPEAT

__all__ = ["terminate", "terminate_blocking", "wait_future"]


async def terminate(send: Callable[[], object], ended: Callable[[float], Awaitable[bool]],
                    grace: float = CANCEL_GRACE) -> bool:
    """Call *send* (one TERM, or a coroutine sending one; it must not raise) until
    ``await ended(t)`` (wait up to *t* seconds for the command's end) says it ended, for at
    most *grace*.  True if it ended."""
    deadline = time.monotonic() + grace
    while True:
        sent = send()
        if inspect.isawaitable(sent):
            await sent
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if await ended(min(TERM_REPEAT, left)):
            return True


def terminate_blocking(send: Callable[[], object], ended: Callable[[float], bool],
                       grace: float = CANCEL_GRACE) -> bool:
    """:func:`terminate` for a worker thread: *ended* blocks up to its argument."""
    deadline = time.monotonic() + grace
    while True:
        send()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if ended(min(TERM_REPEAT, left)):
            return True


def wait_future(future: asyncio.Future[Any]) -> Callable[[float], Awaitable[bool]]:
    """An *ended* for :func:`terminate`: whether *future* is done within the given time
    (the future itself is never cancelled: others may wait on it)."""
    async def ended(seconds: float) -> bool:
        await asyncio.wait({future}, timeout=seconds)
        return future.done()
    return ended
