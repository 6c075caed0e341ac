"""The connection pool every in-process backend shares.

One live connection per :attr:`~parallax.jobs.Target.connection`: concurrent
callers for the same host wait on one connect (a cancelled caller cancels the
connect only if nobody else waits for it), a failed connect is not kept, and
:meth:`ConnectionPool.use` re-establishes a dead *reused* connection once —
never a fresh one, and never after the operation started remote work (that
is the operation's to decide, through ``dead``).

A backend supplies three callables: how to connect, whether a connection is
still usable, and how to close one.  Errors are passed through unchanged (one
instance to every waiter; the scheduler copies it per job).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..jobs import Target

C = TypeVar("C")
T = TypeVar("T")

__all__ = ["ConnectionPool"]


@dataclass
class _Slot(Generic[C]):
    task: asyncio.Future[C]
    waiters: int = 0
    closed: bool = field(default=False)


class ConnectionPool(Generic[C]):
    """Connections by target, shared by every job of a call or session."""

    def __init__(self, connect: Callable[[Target], Awaitable[C]], alive: Callable[[C], bool],
                 close: Callable[[C], Awaitable[None]]) -> None:
        self._connect = connect
        self._alive = alive
        self._close = close
        self._slots: dict[Target, _Slot[C]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def pooled(self, target: Target) -> C | None:
        """The established, live connection for *target*, if there is one (no connect)."""
        slot = self._slots.get(target.connection)
        if slot is None or not slot.task.done() or slot.task.cancelled() or slot.task.exception() is not None:
            return None
        conn = slot.task.result()
        return conn if self._alive(conn) else None

    async def acquire(self, target: Target) -> tuple[C, bool]:
        """A live connection for *target* and whether it was reused from the pool."""
        key = target.connection
        slot = self._slots.get(key)
        if slot is not None and slot.task.done():
            if not slot.task.cancelled() and slot.task.exception() is None and self._alive(slot.task.result()):
                return slot.task.result(), True
            await self._drop(key, slot)
            slot = None
        if slot is None:
            slot = _Slot(asyncio.ensure_future(self._connect(target)))
            self._slots[key] = slot
        slot.waiters += 1
        try:
            conn = await asyncio.shield(slot.task)
        except asyncio.CancelledError:
            if slot.waiters == 1 and not slot.task.done():
                slot.task.cancel()
                await asyncio.wait([slot.task])
                if self._slots.get(key) is slot:
                    del self._slots[key]
            raise
        except BaseException:
            if self._slots.get(key) is slot:
                del self._slots[key]
            raise
        finally:
            slot.waiters -= 1
        return conn, False

    async def use(self, target: Target, operation: Callable[[C], Awaitable[T]],
                  dead: Callable[[BaseException, C], bool]) -> T:
        """Run *operation* on *target*'s connection.  If it fails on a *reused*
        connection and ``dead(error, conn)`` says the connection was dead before
        the operation could start anything, reconnect once and run it again."""
        for attempt in (0, 1):
            conn, reused = await self.acquire(target)
            try:
                return await operation(conn)
            except Exception as exc:
                if not dead(exc, conn):
                    raise
                await self.discard(target, conn)
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    async def discard(self, target: Target, conn: C | None = None) -> None:
        """Close and forget *target*'s connection (only if it is *conn*, when given)."""
        key = target.connection
        slot = self._slots.get(key)
        if slot is None:
            if conn is not None:
                await self._close(conn)
            return
        if conn is not None and not (slot.task.done() and not slot.task.cancelled()
                                     and slot.task.exception() is None and slot.task.result() is conn):
            await self._close(conn)
            return
        await self._drop(key, slot)

    async def _drop(self, key: Target, slot: _Slot[C]) -> None:
        if self._slots.get(key) is slot:
            del self._slots[key]
        if not slot.task.done():
            slot.task.cancel()
            await asyncio.wait([slot.task])
        if not slot.task.cancelled() and slot.task.exception() is None and not slot.closed:
            slot.closed = True
            await self._close(slot.task.result())

    async def close(self) -> None:
        """Close every connection (pending connects are cancelled); idempotent."""
        slots, self._slots = list(self._slots.items()), {}
        await asyncio.gather(*(self._drop(key, slot) for key, slot in slots), return_exceptions=True)
