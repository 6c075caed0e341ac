"""Parallax 1.0's ``parallax.manager.Manager`` (deprecated compatibility layer).

crmsh's ``crm_pssh`` builds an ``ssh`` argument vector per host, wraps each in
a :class:`parallax.task.Task`, adds them to a ``Manager`` and calls
:meth:`Manager.run`, which returns the exit statuses.  This module keeps that
working on parallax 2's one scheduler: the ``limit`` and per-task ``timeout``
are the scheduler's, output files in ``outdir``/``errdir`` are named as 1.0
named them (``host``, then ``host.1``, ``host.2`` ... for repeats), and a
timed-out or interrupted process's whole group is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import warnings
from typing import Any

from .backends.base import Backend, BackendInfo, OutputSink
from .backends.process import run_process
from .errors import BadInput, Cancelled, Error, Timeout
from .events import EventBus, LinePrinter
from .hookspecs import hookimpl
from .jobs import CommandJob, GetJob, PutJob, Target
from .options import DEFAULT_PARALLELISM, DEFAULT_TIMEOUT, resolve
from .scheduler import Scheduler
from .task import DEPRECATION, Task

__all__ = ["DefaultCallbacks", "FatalError", "Manager"]

KILLED = -9  # 1.0's exit status for a task it killed (-SIGKILL)


class FatalError(RuntimeError):
    """A fatal error in the Manager (1.0)."""


def _write_bytes(data: bytes) -> None:
    """Host output to stdout as it came (a text-only stdout gets it decoded)."""
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is not None:
        binary.write(data)
        binary.flush()
    else:
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()


class DefaultCallbacks:
    """1.0's reporting: a status line per finished task (unless ``quiet``), and
    ``run()`` returns the exit statuses in the order the tasks were added."""

    def finished(self, task: Task, n: int) -> None:
        error = ", ".join(task.failures)
        stamp = time.strftime("%H:%M:%S")
        if not task.quiet:
            status = f"[FAILURE] {task.pretty_host} {error}" if task.failures else f"[SUCCESS] {task.pretty_host}"
            print(f"[{n}] {stamp} {status}")
        if task.inline_stdout and task.outputbuffer:
            _write_bytes(task.outputbuffer)
        if task.inline and task.errorbuffer:
            sys.stdout.write("Stderr: ")
            _write_bytes(task.errorbuffer)

    def result(self, manager: Manager) -> list[int | None]:
        return [task.exitstatus for task in manager.save_tasks if task in manager.done]


class _TaskBackend(Backend):
    """Runs each task's own argument vector locally (the caller built the ssh command)."""

    info = BackendInfo("parallax-1.0-tasks", allows_local_shortcut=False)

    def __init__(self, tasks: dict[str, Task], numbers: dict[str, int]) -> None:
        self.tasks = tasks
        self.numbers = numbers

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        task = self.tasks[job.key]
        task.timestamp = time.time()
        env = dict(os.environ, PARALLAX_NODENUM=str(self.numbers[job.key]), PARALLAX_HOST=task.host)
        return await run_process(task.argv(), sink, task.inputbuffer, env, raw_status=True)

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        raise BadInput("the 1.0 Manager runs commands only", host=job.key)

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        raise BadInput("the 1.0 Manager runs commands only", host=job.key)


class _TaskReporter:
    """Event consumer: fills each task's 1.0 attributes as its job finishes, and
    prints ``print_out`` lines for the tasks that asked for them."""

    def __init__(self, manager: Manager, tasks: dict[str, Task]) -> None:
        self.manager = manager
        self.tasks = tasks
        self.printer = LinePrinter()

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        if self.tasks[job.key].print_out and stream == "stdout":
            self.printer.parallax_output(job, stream, data)

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        task = self.tasks[job.key]
        if task.print_out:
            self.printer.parallax_job_finished(job, result)
        if isinstance(result, Error):
            out, err = result.stdout, result.stderr
            if isinstance(result, Timeout):
                task.exitstatus, task.killed = KILLED, True
                task.failures.append("Timed out")
            elif isinstance(result, Cancelled):
                task.exitstatus, task.killed = KILLED, True
                task.failures.append("Interrupted")
            else:  # the command could not be started (e.g. no such program)
                task.exitstatus = 255
                task.failures.append(result.msg)
        else:
            rc, out, err = result
            task.exitstatus = rc
            if rc < 0:
                task.failures.append(f"Killed by signal {-rc}")
            elif rc > 0:
                task.failures.append(f"Exited with error code {rc}")
        task.outputbuffer = out if task.inline_stdout else b""
        task.errorbuffer = err if task.inline else b""
        self.manager._finished(task)


class Manager:
    """Runs added :class:`~parallax.task.Task` objects, at most ``limit`` at once,
    each within ``timeout`` seconds (0: none); ``run()`` returns the exit statuses.

    As in 1.0, the first argument may instead be an options object whose
    ``limit``, ``timeout``, ``askpass``, ``outdir`` and ``errdir`` are used.
    """

    def __init__(self, limit: Any = DEFAULT_PARALLELISM, timeout: float = DEFAULT_TIMEOUT, askpass: bool = False,
                 outdir: str | None = None, errdir: str | None = None, warn_message: bool = True,
                 callbacks: Any = None) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        if not isinstance(limit, int):
            opts = limit
            limit = getattr(opts, "limit", getattr(opts, "par", DEFAULT_PARALLELISM))
            timeout = getattr(opts, "timeout", DEFAULT_TIMEOUT)
            askpass = getattr(opts, "askpass", False)
            outdir = getattr(opts, "outdir", None)
            errdir = getattr(opts, "errdir", None)
        self.limit = limit
        self.timeout = timeout
        self.askpass = askpass
        self.outdir = outdir
        self.errdir = errdir
        self.warn_message = warn_message
        self.callbacks = callbacks if callbacks is not None else DefaultCallbacks()
        self.tasks: list[Task] = []
        self.save_tasks: list[Task] = []
        self.done: list[Task] = []

    def add_task(self, task: Task) -> None:
        """Add a task to be run by :meth:`run`."""
        if not isinstance(task, Task):
            raise TypeError(f"Manager.add_task expects a parallax.task.Task, not {type(task).__name__}")
        self.tasks.append(task)

    def _finished(self, task: Task) -> None:
        self.done.append(task)
        self.callbacks.finished(task, len(self.done))

    def _jobs(self) -> tuple[list[CommandJob], dict[str, Task], dict[str, int]]:
        """One job per task, keyed by the file name 1.0 gave its output (``host``, ``host.1``, ...)."""
        jobs: list[CommandJob] = []
        by_key: dict[str, Task] = {}
        numbers: dict[str, int] = {}
        counts: dict[str, int] = {}
        for n, task in enumerate(self.tasks):
            count = counts.get(task.pretty_host, 0)
            counts[task.pretty_host] = count + 1
            key = f"{task.pretty_host}.{count}" if count else task.pretty_host
            by_key[key], numbers[key] = task, n
            target = Target(key=key, host=task.host)
            jobs.append(CommandJob(target=target, command=" ".join(task.cmd), stdin=task.inputbuffer, check=False))
        return jobs, by_key, numbers

    def run(self) -> Any:
        """Run every added task; return ``callbacks.result(self)`` (1.0: the exit statuses)."""
        from .api import run_sync

        if self.askpass:
            raise FatalError("the 1.0 Manager compatibility layer does not prompt for passwords; "
                             "use parallax.call(..., askpass=True)")
        self.save_tasks = list(self.tasks)
        jobs, by_key, numbers = self._jobs()
        settings = resolve(None, environ={}, limit=self.limit, timeout=self.timeout or 0, outdir=self.outdir,
                           errdir=self.errdir, inline=True, inline_stdout=True, quiet=True, local_shortcut=False)
        bus = EventBus(settings, consumers=[_TaskReporter(self, by_key)])

        async def execute() -> None:
            await Scheduler(_TaskBackend(by_key, numbers), settings, bus).execute(jobs)

        try:
            run_sync(execute())
        except (KeyboardInterrupt, asyncio.CancelledError):
            for task in self.tasks:
                if task not in self.done:
                    task.cancel()
                    self._finished(task)
            raise
        finally:
            bus.close()
            self.tasks = []
        return self.callbacks.result(self)
