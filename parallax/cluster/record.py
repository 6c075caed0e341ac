"""A shard's start record, kept on the Dask scheduler in a ``distributed.Variable``.

It outlives the worker: the record says which of the shard's hosts were
started (their work may have happened) and which finished (their result
reached the caller's queue), so a re-run of the shard after its worker died
knows what not to run again.  A host is started only once a write that holds
it has been acknowledged; writes of hosts that start together are coalesced.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .sharding import decode_ranges, encode_ranges


class StartRecord:
    """``started``/``finished`` job indices of one shard, saved as compact ranges."""

    def __init__(self, variable: Any) -> None:
        self.variable = variable
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.attempt = 1
        self._pending: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Read what earlier attempts of this shard recorded (the caller creates it empty)."""
        value = await self.variable.get(timeout=30)
        self.started = decode_ranges(value.get("started", []))
        self.finished = decode_ranges(value.get("finished", []))
        self.attempt = int(value.get("attempt", 0)) + 1

    def value(self) -> dict[str, Any]:
        """What is saved: msgpack-friendly lists of ``[first, last]`` runs."""
        return {"attempt": self.attempt, "started": encode_ranges(self.started),
                "finished": encode_ranges(self.finished)}

    async def claim(self, index: int) -> None:
        """Record job *index* as started; return once the scheduler holds it (idempotent)."""
        if index in self.started:
            return
        self.started.add(index)
        await self.save()

    def touch(self) -> None:
        """Save soon, without waiting (e.g. more finished hosts)."""
        self._schedule()

    async def save(self) -> None:
        """Save the current state; return once a write holding it was acknowledged."""
        await asyncio.shield(self._schedule())

    def _schedule(self) -> asyncio.Future[None]:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_future()
            if self._writer is None or self._writer.done():
                self._writer = asyncio.ensure_future(self._write())
        return self._pending

    async def _write(self) -> None:
        while self._pending is not None:
            done, self._pending = self._pending, None
            try:
                await self.variable.set(self.value())
            except BaseException as exc:
                if not done.done():
                    done.set_exception(exc)
                    done.exception()  # retrieved here; waiters get it too
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                if not done.done():
                    done.set_result(None)


__all__ = ["StartRecord"]
