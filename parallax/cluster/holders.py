"""The caller's side of a sharded Session: its shards' long-lived holders.

A sharded :class:`parallax.Session` splits its hosts into shards once, at
its first call, and keeps the split for its whole life: each shard has one
:class:`~parallax.cluster.holder.ShardHolder` (a Dask actor) whose backend
keeps that shard's connections open, and every call sends each host to the
same holder.  A call's own share of ``limit`` is split over the shards it
touches, as for a one-call shard.

A holder whose worker died is created again on another worker; a call that
was running on it continues there, where the call's start record turns the
hosts it had started into :class:`~parallax.errors.WorkerLost` (as when Dask
re-runs a one-call shard) and runs only the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from ..jobs import Job
from ..options import Settings
from . import primitives
from .sharding import ShardPlan, plan_shards, split_limit, workers_from_info
from .wire import ShardSpec

MAX_ATTEMPTS = 3  # a call's shard is tried on this many holders (Dask's allowed-failures default)
LIVENESS_POLL = 0.2  # seconds between checks that a running shard's holder is still alive
NOTICE_TIMEOUT = 10.0  # seconds to wait for the scheduler to declare a lost holder's worker dead
CLOSE_TIMEOUT = 30.0  # seconds for every holder to close its connections


class HolderLost(RuntimeError):
    """The holder of a shard went away (its worker died) while it ran a call."""


class SessionShards:
    """One Dask actor per shard of a sharded Session, created on first use, reused by every call."""

    def __init__(self, settings: Settings, keys: Sequence[str]) -> None:
        self.settings = settings
        self.keys = list(keys)
        self.name = f"parallax-session-{uuid.uuid4().hex[:12]}"
        self.client: Any = None
        self.plans: list[ShardPlan] = []
        self.shard_of: dict[str, int] = {}
        self.futures: dict[int, Any] = {}  # the actor's Dask future, per shard number
        self.actors: dict[int, Any] = {}
        self.created = 0  # holders created so far (a new key each time)
        self.closed = False
        self._lock: asyncio.Lock | None = None
        self._locks: dict[int, asyncio.Lock] = {}

    def _shard_lock(self, number: int) -> asyncio.Lock:
        return self._locks.setdefault(number, asyncio.Lock())

    async def connect(self, address: str, security: Any, timeout: float) -> Any:
        """The session's Dask client (opened once) with its shard plan made."""
        if self.closed:
            raise RuntimeError("this parallax session is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.client is None:
                self.client = await primitives.connect(address, security, self.name, timeout=timeout)
            if not self.plans:
                from .client import WORKERS_TIMEOUT

                await self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
                identity = await self.client.scheduler.identity(n_workers=-1)
                self.plans = plan_shards(self.keys, limit=self.settings.limit,
                                         workers=workers_from_info(identity.get("workers", {})),
                                         shard_by=self.settings.shard_by)
                self.shard_of = {self.keys[i]: p.number for p in self.plans for i in p.indices}
        return self.client

    def call_plans(self, jobs: Sequence[Job], limit: int) -> list[ShardPlan]:
        """This call's jobs on the session's shards, with the call's ``limit`` split over them."""
        groups: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(self.shard_of.get(job.key, 0), []).append(i)
        numbers = sorted(groups)
        shares = split_limit(limit, [len(groups[n]) for n in numbers])
        return [ShardPlan(number=n, group=self.plans[n].group, indices=tuple(groups[n]), limit=share,
                          placement=self.plans[n].placement) for n, share in zip(numbers, shares, strict=True)]

    async def _holder(self, number: int) -> tuple[Any, Any]:
        """Shard *number*'s actor and its future: the live one, or a new one."""
        future = self.futures.get(number)
        if future is not None and future.status == "finished":
            return self.actors[number], future
        if future is not None:
            await self._drop(number)
        from .client import worker_settings
        from .holder import ShardHolder

        plan = self.plans[number]
        self.created += 1
        group = f"{plan.group}-" if plan.group else ""
        key = f"parallax-holder-{group}{self.name[len('parallax-session-'):]}-{number}-{self.created}"
        future = self.client.submit(ShardHolder, worker_settings(self.settings, plan), len(plan.indices), key,
                                    key=key, actor=True, pure=False, **plan.placement.submit_kwargs())
        self.futures[number] = future
        with self.client.as_current():  # the actor's proxy talks through this client
            actor = await future
        self.actors[number] = actor
        return actor, future

    async def _drop(self, number: int) -> None:
        """Forget shard *number*'s holder (its worker is gone): release its key."""
        self.actors.pop(number, None)
        future = self.futures.pop(number, None)
        if future is not None:
            with contextlib.suppress(Exception):
                future.release()

    async def _lost(self, number: int, future: Any) -> None:
        """Wait (bounded) until the scheduler has noticed the holder's worker died, then drop it,
        so that the next holder is not placed on the dead worker."""
        loop = asyncio.get_running_loop()
        until = loop.time() + NOTICE_TIMEOUT
        while future.status == "finished" and loop.time() < until:
            await asyncio.sleep(LIVENESS_POLL)
        if self.futures.get(number) is future:
            await self._drop(number)

    async def run(self, number: int, spec: ShardSpec) -> dict[str, Any]:
        """Run *spec* on shard *number*'s holder; on a lost holder, again on a new one."""
        for _ in range(MAX_ATTEMPTS):
            async with self._shard_lock(number):
                actor, future = await self._holder(number)
            call = asyncio.ensure_future(actor.run(spec))
            try:
                while not call.done() and future.status == "finished":
                    await asyncio.wait({call}, timeout=LIVENESS_POLL)
                if call.done():
                    return dict(call.result())
            except OSError:  # "Unable to contact Actor's worker"
                pass
            finally:
                if not call.done():
                    call.cancel()
            async with self._shard_lock(number):
                await self._lost(number, future)
        raise HolderLost(f"the holder of shard {number} was lost {MAX_ATTEMPTS} times (its workers died)")

    async def close(self) -> None:
        """Close every holder (their backends close their connections) and the session's client."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.actors:
                calls = [asyncio.ensure_future(actor.close()) for actor in self.actors.values()]
                await asyncio.wait(calls, timeout=CLOSE_TIMEOUT)
                for call in calls:
                    if not call.done():
                        call.cancel()
                    elif not call.cancelled():
                        call.exception()  # a holder already gone has nothing left to close
            for number in list(self.futures):
                await self._drop(number)
        finally:
            if self.client is not None:
                await self.client.close()


__all__ = ["MAX_ATTEMPTS", "HolderLost", "SessionShards"]
