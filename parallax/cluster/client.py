"""The caller's side of a sharded call: submit shards, replay their events here.

Hosts and options were resolved and planned on the caller as for a local
call.  Here the jobs are split into shards (:mod:`.sharding`), one Dask task
per shard runs them on a worker (:mod:`.runner`), and each host's events come
back through a Dask queue as the shard progresses.  They are replayed on an
:class:`~parallax.events.EventBus` of the caller, so ``print_out``,
``outdir``/``errdir``, callbacks and plugins work here as locally, and the
results are keyed and typed exactly as a local call's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import Cancelled, Error, Timeout, WorkerLost
from ..events import EventBus
from ..jobs import Job
from ..options import Settings
from ..plugins import plugin_manager
from . import primitives
from .holders import SessionShards
from .sharding import ShardPlan, decode_ranges, plan_shards, workers_from_info
from .wire import ShardSpec, decode

log = logging.getLogger("parallax")

POLL = 0.05  # seconds between reads of an empty event queue
DEADLINE_GRACE = 5.0  # seconds past the deadline the caller waits for the shards' own timeouts
CANCEL_GRACE = 15.0  # seconds the caller waits for cancelled shards to kill what they started
WORKERS_TIMEOUT = 60.0  # seconds to wait for a first worker on an empty cluster

#: Settings a worker must not act on: the caller handles them (or they do not travel).
_CALLER_ONLY: dict[str, Any] = {
    "on_output": None, "on_start": None, "on_finish": None, "print_out": False, "outdir": None, "errdir": None,
    "quiet": True, "verbose": False, "input_stream": None, "cluster": None, "shard_by": None, "progress": False,
}


def _address(cluster: Any) -> tuple[str, Any]:
    """The scheduler address and comm security of *cluster* (a Client, a cluster or an address)."""
    if isinstance(cluster, str):
        return cluster, None
    scheduler = getattr(cluster, "scheduler", None)
    address = getattr(scheduler, "address", None) or getattr(cluster, "scheduler_address", None)
    if not isinstance(address, str):
        raise TypeError(f"option cluster: cannot find a scheduler address on {type(cluster).__name__}")
    return address, getattr(cluster, "security", None)


def worker_settings(settings: Settings, plan: ShardPlan) -> Settings:
    """The settings a shard runs under: its share of ``limit``, no caller-side consumers."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return dataclasses.replace(settings, limit=plan.limit, **{k: v for k, v in _CALLER_ONLY.items() if k in names})


def wants_output(settings: Settings) -> bool:
    """Whether anything on the caller consumes output as it arrives (else only results travel)."""
    if settings.print_out or settings.outdir or settings.errdir or settings.on_output is not None:
        return True
    return bool(plugin_manager().hook.parallax_output.get_hookimpls())


class Replay:
    """Each host's events from the shards, fired on the caller's own event bus once."""

    def __init__(self, jobs: list[Job], settings: Settings) -> None:
        self.jobs = jobs
        self.results: dict[int, Any] = {}
        self.started: set[int] = set()
        # Results arrive whole: the caller's buffer keeps nothing.
        self.bus = EventBus(dataclasses.replace(settings, inline=False, inline_stdout=False), total=len(jobs))

    def _notify(self, event: Any, *args: Any) -> None:
        try:
            event(*args)
        except Exception:  # a consumer must never lose other hosts' results
            log.exception("%s: event consumer failed", args[0].key)

    def handle(self, event: tuple[Any, ...]) -> None:
        kind, i = event[0], event[1]
        if i in self.results:
            return  # a late event of an attempt whose worker died
        job = self.jobs[i]
        if kind == "start":
            self._start(i)
        elif kind == "out":
            self._notify(self.bus.output, job, event[2], event[3])
        elif kind == "end":
            self.finish(i, event[2])

    def _start(self, i: int) -> None:
        if i not in self.started:
            self.started.add(i)
            self._notify(self.bus.started, self.jobs[i])

    def finish(self, i: int, result: Any) -> None:
        if i in self.results:
            return
        job = self.jobs[i]
        self._start(i)
        if isinstance(result, Error):
            result.task = job
            result.host = job.key
        self.results[i] = result
        self._notify(self.bus.finished, job, result)

    def fill(self, indices: Any, make: Any) -> None:
        """Finish each of *indices* still without a result with ``make(i, job)``."""
        for i in indices:
            if i not in self.results:
                self.finish(i, make(i, self.jobs[i]))


def _given_up(started: set[int], why: str) -> Callable[[int, Job], Error]:
    """The error of a host whose shard Dask gave up on: *started* ones may have run."""
    def make(i: int, job: Job) -> Error:
        if i in started:
            return WorkerLost(f"The worker running this host died; the command may or may not have run ({why})",
                              job, host=job.key)
        return Cancelled(f"Cancelled before it started: {why}", job, host=job.key)
    return make


def _past_deadline(started: set[int], deadline: float | None) -> Callable[[int, Job], Error]:
    """The error of a host no shard answered for by the deadline (as a local call's)."""
    def make(i: int, job: Job) -> Error:
        if i in started:
            return Timeout(f"Overall deadline of {deadline or 0:g} s reached", job, host=job.key)
        return Cancelled("Cancelled before it started", job, host=job.key)
    return make


def _status(future: Any) -> str:
    """A Dask future's status; the same words for a shard run on a session's holder (an asyncio task)."""
    if not isinstance(future, asyncio.Future):
        return str(future.status)
    if not future.done():
        return "pending"
    if future.cancelled():
        return "cancelled"
    return "error" if future.exception() is not None else "finished"


class ShardedCall:
    """One call's shards on the cluster, from submission to the last result.

    A one-call shard is a Dask task; with *holders* (a sharded Session) each
    shard runs on the session's long-lived holder of that shard instead.
    """

    def __init__(self, client: Any, jobs: list[Job], settings: Settings, holders: SessionShards | None = None) -> None:
        self.client = client
        self.holders = holders
        self.jobs = jobs
        self.settings = settings
        self.call_id = uuid.uuid4().hex[:16]
        self.replay = Replay(jobs, settings)
        self.deadline_at = time.time() + settings.deadline if settings.deadline else None
        self.plans: list[ShardPlan] = []
        self.plan_of: dict[int, ShardPlan] = {}
        self.futures: dict[int, Any] = {}
        self.done: set[int] = set()
        self.cancelled = False
        self.queue: Any = None  # the call's event stream, once submitted
        self.cancel_event: Any = None

    async def submit(self) -> None:
        from .runner import run_shard

        if self.holders is not None:
            self.plans = self.holders.call_plans(self.jobs, self.settings.limit)
        else:
            await self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
            identity = await self.client.scheduler.identity(n_workers=-1)
            workers = workers_from_info(identity.get("workers", {}))
            self.plans = plan_shards([j.key for j in self.jobs], limit=self.settings.limit, workers=workers,
                                     shard_by=self.settings.shard_by)
        self.plan_of = {plan.number: plan for plan in self.plans}
        self.queue = await primitives.queue(f"parallax-events-{self.call_id}", self.client)
        self.cancel_event = primitives.event(f"parallax-cancel-{self.call_id}", self.client)
        forward = wants_output(self.settings)
        for plan in self.plans:
            spec = ShardSpec(
                call_id=self.call_id, number=plan.number,
                jobs=tuple(self.jobs[i] for i in plan.indices), indices=plan.indices,
                settings=worker_settings(self.settings, plan), deadline_at=self.deadline_at,
                forward_output=forward, idempotent=self.settings.idempotent,
                limit_per_worker=self.settings.limit_per_worker, caller_host=socket.gethostname(),
            )
            await primitives.variable(spec.record_name, self.client).set({"attempt": 0, "started": [], "finished": []})
            if self.holders is not None:
                self.futures[plan.number] = asyncio.ensure_future(self.holders.run(plan.number, spec))
                continue
            group = f"{plan.group}-" if plan.group else ""
            self.futures[plan.number] = self.client.submit(
                run_shard, spec, key=f"parallax-shard-{group}{self.call_id}-{plan.number}", pure=False,
                **plan.placement.submit_kwargs())

    async def _read(self) -> None:
        """Replay the batches of events that arrived; wait :data:`POLL` when there were none.

        (A non-blocking read: a Dask queue read that times out is logged as an
        error by the scheduler.)"""
        batches = await self.queue.get(batch=True)
        if not batches:
            await asyncio.sleep(POLL)
            return
        for data in batches:
            for event in decode(data):
                if event[0] == "done":
                    self.done.add(event[1])
                else:
                    self.replay.handle(event)

    async def _check_failed(self) -> None:
        """Shards whose task failed for good (its workers kept dying, or a bug): fill their hosts."""
        for number, future in self.futures.items():
            status = _status(future)
            if number in self.done or status not in ("error", "cancelled", "lost"):
                continue
            await self._read()  # what the shard sent before it failed
            if number in self.done:
                continue
            started, why = await self._started(number), f"the shard's task ended: {status}"
            if status == "error":
                exc = future.exception() if isinstance(future, asyncio.Future) else await future.exception()
                why = f"{type(exc).__name__}: {exc}"
            self.replay.fill(self.plan_of[number].indices, _given_up(started, why))
            self.done.add(number)

    async def _started(self, number: int) -> set[int]:
        try:
            value = await primitives.variable(f"parallax-started-{self.call_id}-{number}", self.client).get(timeout=5)
        except Exception:  # best effort: what the caller saw start is the fallback
            return set(self.replay.started)
        return decode_ranges(value.get("started", [])) | self.replay.started

    async def collect(self) -> None:
        """Replay events until every shard is done (or the overall deadline has passed)."""
        while len(self.done) < len(self.plans):
            await self._read()
            await self._check_failed()
            if self.deadline_at is not None and time.time() > self.deadline_at + DEADLINE_GRACE:
                await self.stop()
                self.replay.fill(range(len(self.jobs)), _past_deadline(self.replay.started, self.settings.deadline))
                return

    async def stop(self) -> None:
        """Tell every shard to cancel; wait (bounded) until they killed what they started."""
        self.cancelled = True
        if self.cancel_event is not None:
            await self.cancel_event.set()
        limit = time.monotonic() + CANCEL_GRACE
        while self.queue is not None and len(self.done) < len(self.plans) and time.monotonic() < limit:
            await self._read()
            if all(f.done() for n, f in self.futures.items() if n not in self.done):
                break
        if self.holders is not None:  # the holders stay: only this call's runs end
            for future in self.futures.values():
                future.cancel()
        else:
            await self.client.cancel(list(self.futures.values()))

    def results(self) -> dict[str, Any]:
        self.replay.fill(range(len(self.jobs)), lambda i, job: Error(
            "Internal error: the cluster returned no result for this host", job, host=job.key))
        return {job.key: self.replay.results[i] for i, job in enumerate(self.jobs)}

    async def cleanup(self) -> None:
        self.replay.bus.close()
        for plan in self.plans:
            primitives.variable(f"parallax-started-{self.call_id}-{plan.number}", self.client).delete()
        if self.queue is not None:
            self.queue.close()
        if self.cancelled and self.cancel_event is not None:  # a cleared event is removed from the scheduler
            await self.cancel_event.clear()


async def execute_sharded(jobs: list[Job], settings: Settings, holders: SessionShards | None = None) -> dict[str, Any]:
    """Run *jobs* on the Dask cluster ``settings.cluster``; ``{key: result | Error}`` in job order.

    With *holders* (a sharded Session's) each shard runs on its long-lived
    holder, whose connections stay open between calls; without, each shard
    is a Dask task with a backend of its own.  Ctrl-C (cancellation of the
    caller) cancels every shard; the workers' backends kill what they
    started before the cancellation propagates.
    """
    if not isinstance(settings.backend, str):
        raise TypeError(f"cluster=: give the backend by name (backend={type(settings.backend).__name__}(...) "
                        f"is an object with live state that cannot travel to the workers)")
    if not jobs:
        return {}
    try:
        import distributed  # noqa: F401 - only to say clearly what is missing
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("cluster= needs the 'distributed' package: pip install 'parallax[dask]'") from None
    address, security = _address(settings.cluster)
    if holders is not None:
        client = await holders.connect(address, security, timeout=settings.connect_timeout or 30)
    else:
        client = await primitives.connect(address, security, f"parallax-{uuid.uuid4().hex[:8]}",
                                          timeout=settings.connect_timeout or 30)
    call = ShardedCall(client, jobs, settings, holders)
    try:
        try:
            await call.submit()
            await call.collect()
        except asyncio.CancelledError:
            await asyncio.shield(call.stop())
            raise
        return call.results()
    finally:
        try:
            await asyncio.shield(call.cleanup())
        finally:
            if holders is None:  # a session's client stays open until the session closes
                await asyncio.shield(client.close())


__all__ = ["Replay", "ShardedCall", "execute_sharded", "wants_output", "worker_settings"]
