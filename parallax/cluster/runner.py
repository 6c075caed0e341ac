"""What runs inside a shard's Dask task on a worker.

:func:`run_shard` runs the shard's jobs through parallax's own
:class:`~parallax.scheduler.Scheduler` and backend on a private event loop
(the worker's own loop stays free for its heartbeats), streams each host's
events back to the caller, and keeps a start record on the Dask scheduler:
no host's work starts before the record says so, and a re-run of the shard
(Dask reschedules a dead worker's tasks) reports the hosts the record holds
as :class:`~parallax.errors.WorkerLost` instead of running them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from typing import Any, cast

from ..backends.base import Backend
from ..backends.local import LocalBackend
from ..backends.persistent_shell import PersistentShellBackend
from ..errors import Cancelled, Timeout, WorkerLost
from ..events import EventBus
from ..hookspecs import hookimpl
from ..jobs import Job
from ..options import Settings
from ..plugins import create_backend
from ..scheduler import Scheduler
from ..session import ensure_fd_limit
from . import primitives
from .record import StartRecord
from .wire import ShardSpec, encode, portable

FLUSH_INTERVAL = 0.05  # seconds between event batches sent to the caller
FLUSH_BYTES = 1 << 20  # send sooner once this much output waits
CANCEL_POLL = 0.25  # seconds between checks whether the caller cancelled the call
LOST = "The worker running this host died; the command may or may not have run"


class Outbox:
    """Batches a shard's events and sends them to the caller's Dask queue in order."""

    def __init__(self, queue: Any, record: StartRecord) -> None:
        self.queue = queue
        self.record = record
        self.pending: list[tuple[Any, ...]] = []
        self.size = 0
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    def add(self, event: tuple[Any, ...], size: int = 0) -> None:
        self.pending.append(event)
        self.size += size
        if self.size >= FLUSH_BYTES:
            self.wake.set()

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), FLUSH_INTERVAL)
            self.wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            if not self.pending:
                return
            batch, self.pending, self.size = self.pending, [], 0
            await self.queue.put(encode(batch))
            ended = [e[1] for e in batch if e[0] == "end"]
            if ended:
                self.record.finished.update(ended)
                self.record.touch()

    async def close(self, final: tuple[Any, ...]) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.add(final)
        await self.flush()
        await self.record.save()


class Forwarder:
    """An event consumer on the worker's bus: each host's events go to the outbox."""

    def __init__(self, outbox: Outbox, index: dict[str, int], forward_output: bool,
                 deadline: float | None = None) -> None:
        self.outbox = outbox
        self.index = index
        self.forward_output = forward_output
        self.deadline = deadline  # the call's overall deadline as the caller gave it
        self.ended: set[int] = set()

    def end(self, i: int, result: Any) -> None:
        """Send host *i*'s result; the deadline's message names the caller's deadline,
        not what was left of it when the shard started."""
        self.ended.add(i)
        if isinstance(result, Timeout) and self.deadline and result.msg.startswith("Overall deadline of "):
            result.msg = f"Overall deadline of {self.deadline:g} s reached"
            result.args = (result.msg,)
        self.outbox.add(("end", i, portable(result)))

    @hookimpl
    def parallax_job_started(self, job: Any) -> None:
        self.outbox.add(("start", self.index[job.key]))

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        if self.forward_output:
            self.outbox.add(("out", self.index[job.key], stream, data), len(data))

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        self.end(self.index[job.key], result)


class RecordingBackend:
    """Wraps the real backend: a job's work (``run``/``put``/``get``/``check``) starts
    only once the start record holds it.  Everything else is the inner backend's."""

    WRAPPED = frozenset({"run", "put", "get", "check"})

    def __init__(self, inner: Backend, record: StartRecord, index: dict[str, int]) -> None:
        self.inner = inner
        self.record = record
        self.index = index

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name not in self.WRAPPED:
            return value

        async def claimed(job: Any, sink: Any) -> Any:
            await self.record.claim(self.index[job.key])
            return await value(job, sink)

        return claimed


async def _watch(cancel: Any, stop: asyncio.Event) -> bool:
    """True once the caller cancelled the call (polled: no request left waiting on the
    scheduler when the shard ends); False once *stop* is set."""
    while not stop.is_set():
        if await cancel.is_set():
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), CANCEL_POLL)
    return False


def make_backend(settings: Settings, keep: bool = False) -> Backend:
    """The backend *settings* name (wrapped for ``persistent_shell``); *keep*: its
    connections stay open between calls (a sharded Session's holder)."""
    backend: Backend = create_backend(settings)
    if settings.persistent_shell:
        backend = PersistentShellBackend(backend, settings.connect_timeout)
    backend.keep_connections = keep
    return backend


def _shard_limit(spec: ShardSpec, nthreads: int) -> int:
    """This shard's share of ``limit``, within ``limit_per_worker`` for this worker's threads."""
    limit = spec.settings.limit
    if spec.limit_per_worker is not None:
        limit = min(limit, max(1, spec.limit_per_worker // max(nthreads, 1)))
    return limit


def run_shard(spec: ShardSpec) -> dict[str, Any]:
    """The Dask task of one shard: run its jobs, stream events, return a summary."""
    from distributed import get_worker

    worker = get_worker()
    return asyncio.run(_run(spec, worker.scheduler.address, getattr(worker, "security", None), worker.state.nthreads))


async def _run(spec: ShardSpec, address: str, security: Any, nthreads: int) -> dict[str, Any]:
    async with await primitives.connect(address, security, f"parallax-shard-{spec.number}") as client:
        return await run_spec(spec, client, nthreads)


async def run_spec(spec: ShardSpec, client: Any, nthreads: int, backend: Backend | None = None,
                   pooled: int = 0) -> dict[str, Any]:
    """Run one shard of a call through *client* (a Dask client on this loop).

    With *backend* (a sharded Session's holder) the shard runs on it and
    leaves it open; otherwise it makes its own backend and closes it.
    *pooled*: connections the holder keeps open (for the file limit).
    """
    record = StartRecord(primitives.variable(spec.record_name, client))
    await record.load()
    outbox = Outbox(await primitives.queue(spec.queue_name, client), record)
    attempt = record.attempt
    index = {job.key: i for job, i in zip(spec.jobs, spec.indices, strict=True)}
    todo: list[Job] = []
    for job, i in zip(spec.jobs, spec.indices, strict=True):
        if i in record.finished:
            continue  # its result reached the caller's queue before the worker died
        if i in record.started and not spec.idempotent:
            outbox.add(("end", i, WorkerLost(LOST, host=job.key)))
            continue
        todo.append(job)
    settings = spec.settings
    if spec.deadline_at is not None:
        settings = dataclasses.replace(settings, deadline=max(spec.deadline_at - time.time(), 0.001))
    settings = dataclasses.replace(settings, limit=_shard_limit(spec, nthreads))
    ensure_fd_limit(min(settings.limit, max(len(todo), 1)), pooled)  # as a local call does, on this worker
    forwarder = Forwarder(outbox, index, spec.forward_output, spec.settings.deadline)
    bus = EventBus(settings, consumers=[forwarder])
    own = backend is None
    inner = make_backend(spec.settings) if backend is None else backend
    recording = cast(Backend, RecordingBackend(inner, record, index))
    local = None
    if socket.gethostname() == spec.caller_host:
        local = cast(Backend, RecordingBackend(LocalBackend(), record, index))
    cancel = primitives.event(spec.cancel_name, client)
    outbox.start()
    await record.save()  # the new attempt number, before anything starts
    execute = asyncio.ensure_future(Scheduler(recording, settings, bus, local=local).execute(todo))
    stop = asyncio.Event()
    watch = asyncio.ensure_future(_watch(cancel, stop))
    cancelled = False
    try:
        await asyncio.wait({execute, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not execute.done() and watch.exception() is None:  # the caller cancelled
            cancelled = True
            execute.cancel()
        try:
            results = await execute
        except asyncio.CancelledError:
            results = {}
        for job in todo:
            i = index[job.key]
            if i not in forwarder.ended:
                forwarder.end(i, results.get(job.key) or Cancelled("Cancelled before it started", host=job.key))
    finally:
        stop.set()  # the watcher ends after its current (short) request: nothing left half-done
        with contextlib.suppress(Exception):
            await watch
        bus.close()
        if own:
            with contextlib.suppress(Exception):
                await inner.close()
        await outbox.close(("done", spec.number, attempt))
    return {"shard": spec.number, "attempt": attempt, "ran": len(todo), "cancelled": cancelled}


__all__ = ["LOST", "Forwarder", "Outbox", "RecordingBackend", "make_backend", "run_shard", "run_spec"]
