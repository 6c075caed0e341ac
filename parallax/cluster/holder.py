"""The worker's side of a sharded Session: one Dask actor per shard, kept across calls.

A :class:`ShardHolder` is created with ``client.submit(ShardHolder, ...,
actor=True)``: it lives in one worker process until the session closes it
(or the worker dies).  It holds the shard's backend (wrapped in
:class:`~parallax.backends.persistent_shell.PersistentShellBackend` when
``persistent_shell=True``) and a Dask client on a private event loop in a
thread of its own, so each call of the session runs its shard
(:func:`.runner.run_spec`) on connections that are already open, and the
worker's own event loop stays free for its heartbeats.

Closing is explicit (:meth:`ShardHolder.close`); a finalizer does the same
when the worker drops the actor (the session's client went away) and at the
worker's interpreter exit, so no connection outlives its holder.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..backends.base import Backend
from ..options import Settings
from . import primitives
from .runner import make_backend, run_spec
from .wire import ShardSpec

T = TypeVar("T")

START_TIMEOUT = 60.0  # seconds for the holder's backend and Dask client to come up
CLOSE_TIMEOUT = 15.0  # seconds the backend gets to close its connections


class HeldShard:
    """A shard's backend and Dask client, on a private event loop in a daemon thread."""

    def __init__(self, settings: Settings, pooled: int, address: str, security: Any, nthreads: int,
                 name: str) -> None:
        self.pooled = pooled
        self.nthreads = nthreads
        self.closed = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name=f"parallax-{name}", daemon=True)
        self.thread.start()
        try:
            self.backend: Backend = self.submit(self._make(settings)).result(START_TIMEOUT)
            self.client: Any = self.submit(primitives.connect(address, security, name)).result(START_TIMEOUT)
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @staticmethod
    async def _make(settings: Settings) -> Backend:
        return make_backend(settings, keep=True)  # made on its own loop, as a Session makes its backend

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run *coro* on the private loop (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, spec: ShardSpec) -> dict[str, Any]:
        """One call's shard on the held backend (runs on the private loop)."""
        if self.closed:
            raise RuntimeError("this shard holder is closed")
        return await run_spec(spec, self.client, self.nthreads, backend=self.backend, pooled=self.pooled)

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self.backend.close(), CLOSE_TIMEOUT)
        except Exception:  # whatever is left is released without a loop
            with contextlib.suppress(Exception):
                self.backend.abandon()
        finally:
            with contextlib.suppress(Exception):
                await self.client.close()

    def shutdown(self) -> None:
        """Close the backend and the client, then stop the loop (idempotent, blocking)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.thread.is_alive():
                self.submit(self._close()).result(CLOSE_TIMEOUT + 5)
        except Exception:
            with contextlib.suppress(Exception):
                self.backend.abandon()
        finally:
            if not self.loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class ShardHolder:
    """The Dask actor of one shard of a sharded :class:`parallax.Session`.

    Its methods are coroutines, so Dask runs them on the worker's event loop
    (not in the worker's single actor thread): each waits for the private
    loop of :class:`HeldShard`, where the work happens.
    """

    def __init__(self, settings: Settings, pooled: int, name: str) -> None:
        from distributed import get_worker

        worker = get_worker()
        self._held = HeldShard(settings, pooled, worker.scheduler.address, getattr(worker, "security", None),
                               worker.state.nthreads, name)
        # Not a method of self: the finalizer must not keep the actor alive.
        self._finalizer = weakref.finalize(self, self._held.shutdown)

    async def run(self, spec: ShardSpec) -> dict[str, Any]:
        """Run one call's shard on the connections this holder keeps open."""
        return await asyncio.wrap_future(self._held.submit(self._held.run(spec)))

    async def close(self) -> bool:
        """Close the backend's connections (and persistent shells); True if this call closed them."""
        if not self._finalizer.alive:
            return False
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._finalizer)
        return True


__all__ = ["HeldShard", "ShardHolder"]
