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
from collections.abc import Awaitable, Callable, Iterator

from .grace import CANCEL_GRACE, TERM_REPEAT

__all__ = ["terminate", "terminate_blocking"]


def _waits(grace: float) -> Iterator[float]:
    """How long to wait for the end after each TERM: TERM_REPEAT, the rest of *grace* last."""
    deadline = time.monotonic() + grace
    while (left := deadline - time.monotonic()) > 0:
        yield min(TERM_REPEAT, left)


async def terminate(send: Callable[[], object], ended: Awaitable[object], grace: float = CANCEL_GRACE) -> bool:
    """Call *send* (one TERM, or a coroutine sending one; it must not raise) until *ended*
    (the command's end) is done, for at most *grace*.  True if it ended.

    A coroutine *ended* runs as a task of its own, cancelled once this returns (its failure
    counts as the end); a future is only waited on, never cancelled: others may wait on it."""
    waiter = asyncio.ensure_future(ended)
    owned = waiter is not ended
    if owned:
        waiter.add_done_callback(_seen)
    try:
        await _send(send)
        for wait in _waits(grace):
            await asyncio.wait({waiter}, timeout=wait)
            if waiter.done():
                return True
            await _send(send)
        return False
    finally:
        if owned:
            waiter.cancel()


def terminate_blocking(send: Callable[[], object], ended: Callable[[float], bool],
                       grace: float = CANCEL_GRACE) -> bool:
    """:func:`terminate` for a worker thread: ``ended(t)`` blocks up to *t* seconds and says
    whether the command ended."""
    send()
    for wait in _waits(grace):
        if ended(wait):
            return True
        send()
    return False


async def _send(send: Callable[[], object]) -> None:
    sent = send()
    if inspect.isawaitable(sent):
        await sent


def _seen(task: asyncio.Future[object]) -> None:
    """A failure of the wait for a cancelled command's end is expected: marked as retrieved."""
    if not task.cancelled():
        task.exception()
