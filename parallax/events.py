"""Per-call event fan-out and the built-in consumers of events.

The scheduler reports three events (job started, output chunk, job finished)
to an :class:`EventBus`.  Everything that reacts to output is a consumer
plugged into that bus with the same pluggy hooks third-party plugins use:
the in-memory buffers behind ``inline``, ``print_out``, ``outdir``/``errdir``,
failure reporting (``quiet``/``verbose``) and the user's callbacks.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, BinaryIO

import pluggy

from . import hookspecs
from .errors import Error
from .hookspecs import hookimpl
from .options import Settings

log = logging.getLogger("parallax")


class MemoryBuffer:
    """Keeps each host's output for its result, up to ``max_output`` bytes per stream."""

    def __init__(self, keep_stdout: bool, keep_stderr: bool, max_output: int | None) -> None:
        self.keep = {"stdout": keep_stdout, "stderr": keep_stderr}
        self.max_output = max_output
        self.chunks: dict[tuple[str, str], list[bytes]] = {}
        self.sizes: dict[tuple[str, str], int] = {}
        self.dropped: dict[str, int] = {}

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        if not self.keep[stream]:
            return
        slot = (job.key, stream)
        size = self.sizes.get(slot, 0)
        if self.max_output is not None and size + len(data) > self.max_output:
            room = max(self.max_output - size, 0)
            self.dropped[job.key] = self.dropped.get(job.key, 0) + len(data) - room
            data = data[:room]
            if not data:
                return
        self.chunks.setdefault(slot, []).append(data)
        self.sizes[slot] = size + len(data)

    def take(self, key: str) -> tuple[bytes, bytes, int]:
        """Pop ``(stdout, stderr, bytes_dropped)`` gathered for *key*."""
        out = b"".join(self.chunks.pop((key, "stdout"), ()))
        err = b"".join(self.chunks.pop((key, "stderr"), ()))
        self.sizes.pop((key, "stdout"), None)
        self.sizes.pop((key, "stderr"), None)
        return out, err, self.dropped.pop(key, 0)


class LinePrinter:
    """``print_out``: print each complete output line as ``host: line`` as it arrives."""

    MAX_LINE = 64 * 1024  # bytes held back waiting for a newline

    def __init__(self) -> None:
        self.partial: dict[tuple[str, str], bytes] = {}

    @staticmethod
    def _write(key: str, stream: str, line: bytes) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        binary = getattr(out, "buffer", None)
        if binary is not None:
            out.flush()
            binary.write(key.encode() + b": " + line + b"\n")
            binary.flush()
        else:
            out.write(f"{key}: {line.decode('utf-8', 'replace')}\n")
            out.flush()

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        slot = (job.key, stream)
        buf = self.partial.get(slot, b"") + data
        *lines, rest = buf.split(b"\n")
        if len(rest) > self.MAX_LINE:  # no newline in sight: print what we have
            lines.append(rest)
            rest = b""
        for line in lines:
            self._write(job.key, stream, line)
        self.partial[slot] = rest

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        for stream in ("stdout", "stderr"):
            rest = self.partial.pop((job.key, stream), b"")
            if rest:
                self._write(job.key, stream, rest)


class FileWriter:
    """``outdir``/``errdir``: one file per host, named after the host, as in 1.0."""

    def __init__(self, outdir: str | None, errdir: str | None) -> None:
        self.dirs = {"stdout": outdir, "stderr": errdir}
        self.files: dict[tuple[str, str], BinaryIO] = {}
        for d in (outdir, errdir):
            if d:
                os.makedirs(d, exist_ok=True)

    @hookimpl
    def parallax_job_started(self, job: Any) -> None:
        for stream, d in self.dirs.items():
            if d:
                self.files[(job.key, stream)] = open(os.path.join(d, job.key), "wb")

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        f = self.files.get((job.key, stream))
        if f is not None:
            f.write(data)

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        for stream in ("stdout", "stderr"):
            f = self.files.pop((job.key, stream), None)
            if f is not None:
                f.close()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


class FailureReporter:
    """Logs each host's failure (``quiet`` silences it) and successes when verbose."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    @hookimpl
    def parallax_job_started(self, job: Any) -> None:
        if self.verbose:
            log.debug("%s: started", job.key)

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        if isinstance(result, Error):
            # INFO, not WARNING: the failure is in the caller's results already (1.0 was silent).
            log.info("%s: %s", job.key, result.msg)
            if result.stderr:
                log.debug("%s: stderr: %s", job.key, result.stderr[-2048:].decode("utf-8", "replace"))
        elif self.verbose:
            log.info("%s: finished (rc=%s, %.3f s)", job.key, result[0], getattr(result, "duration", 0.0))


class UserCallbacks:
    """The ``on_start``/``on_output``/``on_finish`` options as event consumers.

    A raising callback is logged, never allowed to skip the other consumers
    or to lose any host's result.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def _safe(callback: Any, key: str, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(key, *args)
        except Exception:
            log.exception("%s: callback %r failed", key, callback)

    @hookimpl
    def parallax_job_started(self, job: Any) -> None:
        self._safe(self.settings.on_start, job.key)

    @hookimpl
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        self._safe(self.settings.on_output, job.key, stream, data)

    @hookimpl
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        self._safe(self.settings.on_finish, job.key, result)


class EventBus:
    """Fans events out to this call's consumers and to globally registered plugins."""

    def __init__(self, settings: Settings, consumers: list[Any] | None = None, *, total: int | None = None) -> None:
        from .plugins import plugin_manager

        keep_out = settings.inline or settings.inline_stdout
        self.buffer = MemoryBuffer(keep_out, settings.inline, settings.max_output)
        self.files: FileWriter | None = None
        self.pm = pluggy.PluginManager("parallax")
        self.pm.add_hookspecs(hookspecs)
        # Process-wide plugins first: pluggy calls the latest registered first,
        # so this call's own consumers (buffers, files, callbacks) run before them.
        for plugin in plugin_manager().get_plugins():
            self.pm.register(plugin)
        self.pm.register(self.buffer)
        if settings.outdir or settings.errdir:
            self.files = FileWriter(settings.outdir, settings.errdir)
            self.pm.register(self.files)
        if settings.print_out:
            self.pm.register(LinePrinter())
        if not settings.quiet:
            self.pm.register(FailureReporter(settings.verbose))
        if settings.on_start or settings.on_output or settings.on_finish:
            self.pm.register(UserCallbacks(settings))
        for consumer in consumers or ():
            self.pm.register(consumer)
        self.progress: Any = None
        # ``total``: the call's job count, for done/total and the ETA.  Verbose diagnostics are
        # written to stderr at any moment, so they replace the live line rather than tear it.
        if settings.progress and not settings.verbose:
            from .progress import ProgressDisplay

            self.progress = ProgressDisplay(total, clear_on_output=settings.print_out or settings.on_output is not None)
            self.pm.register(self.progress)
            self.pm.register(self.progress.clearer)
        self._hooks = self.pm.hook

    def started(self, job: Any) -> None:
        self._hooks.parallax_job_started(job=job)

    def output(self, job: Any, stream: str, data: bytes) -> None:
        self._hooks.parallax_output(job=job, stream=stream, data=data)

    def finished(self, job: Any, result: Any) -> None:
        self._hooks.parallax_job_finished(job=job, result=result)

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
        if self.progress is not None:
            self.progress.close()


class JobSink:
    """The :class:`~parallax.backends.base.OutputSink` a backend writes one job's output to."""

    __slots__ = ("bus", "job")

    def __init__(self, job: Any, bus: EventBus) -> None:
        self.job = job
        self.bus = bus

    def stdout(self, data: bytes) -> None:
        if data:
            self.bus.output(self.job, "stdout", data)

    def stderr(self, data: bytes) -> None:
        if data:
            self.bus.output(self.job, "stderr", data)


__all__ = ["EventBus", "FailureReporter", "FileWriter", "JobSink", "LinePrinter", "MemoryBuffer", "UserCallbacks"]
