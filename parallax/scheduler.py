"""The one asyncio scheduler every backend runs under.

It owns what backends must not: the concurrency limit (a fixed pool of
``limit`` workers, so unstarted jobs never touch the backend), the per-host
timeout (connect + result), the optional overall deadline, retries of
connection failures, cancellation, and turning outcomes into results.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any
from collections.abc import Sequence

from .backends.base import Backend
from .errors import Cancelled, CommandFailed, ConnectionFailed, ConnectionLost, Error, Timeout, TransferFailed
from .events import EventBus, JobSink
from .jobs import CheckJob, CommandJob, GetJob, Job, PutJob
from .options import Settings
from .planner import local_source_problem
from .results import CallResult, CheckResult, CopyResult, SlurpResult
from .ssh.localdir import prepare_slurp
from .timeouts import within

log = logging.getLogger("parallax")

RETRY_DELAY = 0.2  # seconds before the first retry; doubles per attempt


class Scheduler:
    """Runs jobs on a backend under the call's limits and reports events."""

    def __init__(self, backend: Backend, settings: Settings, bus: EventBus, local: Backend | None = None) -> None:
        self.backend = backend
        self.local = local
        self.settings = settings
        self.bus = bus

    async def execute(self, jobs: Sequence[Job]) -> dict[str, Any]:
        """Run *jobs*; return ``{key: result | Error}`` in job order.

        On the overall deadline, running jobs become :class:`Timeout` and
        unstarted ones :class:`Cancelled`.  If the caller cancels (Ctrl-C),
        every running job is cancelled (its backend kills what it started)
        and the cancellation propagates once everything is cleaned up.
        """
        results: dict[str, Any] = {}
        queue = deque(jobs)
        running: dict[str, Job] = {}
        # Without a persistent session, a host's connection is released as
        # soon as its last job ends: descriptors and server sessions then
        # scale with ``limit``, not with the number of hosts.
        release = not self.backend.keep_connections
        remaining = Counter(j.target.connection for j in jobs) if release else Counter()

        async def worker() -> None:
            while queue:
                job = queue.popleft()
                running[job.key] = job
                try:
                    results[job.key] = await self._run_one(job)
                finally:
                    running.pop(job.key, None)
                if release:
                    conn = job.target.connection
                    remaining[conn] -= 1
                    if not remaining[conn]:
                        await self._release(job)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.settings.limit, len(jobs)))]
        try:
            if workers:
                done, pending = await asyncio.wait(workers, timeout=self.settings.deadline)
                if pending:
                    interrupted = list(running.values())
                    await self._stop(pending)
                    for job in interrupted:
                        if job.key not in results:
                            results[job.key] = self._finish(job, Timeout(
                                f"Overall deadline of {self.settings.deadline:g} s reached", job, host=job.key))
                for w in done:
                    exc = w.exception()
                    if exc is not None:
                        raise exc
        except asyncio.CancelledError:
            interrupted = list(running.values())
            await self._stop(workers)
            for job in interrupted:
                if job.key not in results:
                    results[job.key] = self._finish(job, Cancelled("Cancelled", job, host=job.key))
            raise
        finally:
            for job in jobs:
                if job.key not in results:
                    results[job.key] = Cancelled("Cancelled before it started", job, host=job.key)
        return {job.key: results[job.key] for job in jobs}

    async def _release(self, job: Job) -> None:
        try:
            await self.backend.disconnect(job.target)
        except Exception:  # the host's result is in; closing its connection is best effort
            log.debug("%s: closing the connection failed", job.key, exc_info=True)

    async def _stop(self, tasks: Any) -> None:
        for t in tasks:
            t.cancel()
        # Wait for backends to kill what they started, even if cancelled again.
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))

    def _finish(self, job: Job, result: Any) -> Any:
        out, err, _ = self.bus.buffer.take(job.key)
        if isinstance(result, Error):
            if not result.stdout:
                result.stdout = out
            if not result.stderr:
                result.stderr = err
        self._notify(self.bus.finished, job, result)
        return result

    @staticmethod
    def _notify(event: Any, job: Job, *args: Any) -> None:
        try:
            event(job, *args)
        except Exception:  # a consumer must never lose other hosts' results
            log.exception("%s: event consumer failed", job.key)

    async def _run_one(self, job: Job) -> Any:
        start = time.monotonic()
        self._notify(self.bus.started, job)
        sink = JobSink(job, self.bus)
        try:
            result = await within(self._attempts(job, sink), self.settings.timeout)
        except asyncio.TimeoutError:
            result = Timeout(f"Timed out after {self.settings.timeout:g} s (the per-host limit; "
                             f"timeout=0 lifts it)", job, host=job.key)
        except Error as e:
            result = e.for_job(job)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a backend bug must not hide other hosts' results
            log.debug("%s: unexpected backend failure", job.key, exc_info=True)
            result = Error(f"Internal error: {type(e).__name__}: {e}", job, host=job.key)
        duration = time.monotonic() - start
        out, err, dropped = self.bus.buffer.take(job.key)
        result = self._assemble(job, result, out, err, dropped, duration)
        self._notify(self.bus.finished, job, result)
        return result

    async def _attempts(self, job: Job, sink: JobSink) -> Any:
        delay = RETRY_DELAY
        for attempt in range(self.settings.retries + 1):
            try:
                return await self._dispatch(job, sink)
            except ConnectionLost:
                raise  # the command may have run: never run it twice
            except (ConnectionFailed, Timeout) as e:
                if attempt >= self.settings.retries:
                    raise
                log.info("%s: %s; retrying in %.1f s", job.key, e.msg, delay)
                self.bus.buffer.take(job.key)  # drop a failed attempt's partial output
                await self.backend.disconnect(job.target)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _dispatch(self, job: Job, sink: JobSink) -> Any:
        if isinstance(job, CommandJob):
            if job.local and self.local is not None and self.backend.info.allows_local_shortcut:
                return await self.local.run(job, sink)
            return await self.backend.run(job, sink)
        if isinstance(job, PutJob):
            problem = local_source_problem(job.src, job.recursive)
            if problem is not None:
                raise TransferFailed.at(job.target, problem)
            await self.backend.put(job, sink)
            return 0
        if isinstance(job, CheckJob):
            start = time.monotonic()
            auth = await self.backend.check(job, sink)
            return CheckResult(host=job.key, auth=auth, connect_time=time.monotonic() - start)
        if isinstance(job, GetJob):
            prepare_slurp(job)  # <localdir>/<host>/...: never through a symlink leading outside <localdir>
            await self.backend.get(job, sink)
            return 0
        raise TypeError(f"unknown job type {type(job).__name__}")

    def _assemble(self, job: Job, outcome: Any, out: bytes, err: bytes, dropped: int, duration: float) -> Any:
        if isinstance(outcome, Error):
            outcome.stdout = outcome.stdout or out
            outcome.stderr = outcome.stderr or err
            outcome.duration = duration
            return outcome
        if isinstance(job, CommandJob):
            if job.check and outcome != 0:
                return CommandFailed(
                    f"Exited with error code {outcome}", job, host=job.key,
                    stdout=out, stderr=err, rc=outcome, duration=duration,
                )
            return CallResult(outcome, out, err, host=job.key, duration=duration, truncated=dropped)
        if isinstance(job, CheckJob):
            return CheckResult(host=job.key, auth=outcome.auth, connect_time=outcome.connect_time, duration=duration)
        if isinstance(job, PutJob):
            return CopyResult(0, out, err, host=job.key, src=job.src, dst=job.dst, duration=duration)
        return SlurpResult(0, out, err, job.dst, host=job.key, src=job.src, duration=duration)


__all__ = ["Scheduler"]
