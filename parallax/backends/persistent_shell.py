"""Persistent shells (``persistent_shell=True``): one long-lived remote shell
per host runs the session's commands, so a command costs one write and one
reply instead of a new SSH channel, a fork of sshd and a new login shell.

Wraps any backend with the ``"stream"`` capability; copies, jobs with stdin
or per-call environment, and hosts whose login shell is not POSIX go through
the wrapped backend unchanged.  The wire format is in :mod:`parallax.framing`.
"""

from __future__ import annotations

import asyncio
import logging

from ..errors import ConnectionFailed, ConnectionLost
from ..framing import (GREETING_STATUS, LOOP_COMMAND, FrameReader, command_script, gated_command_script, greeting_pid,
                       greeting_script, new_tag)
from ..jobs import CommandJob, GetJob, PutJob, Target
from .base import Backend, BackendInfo, OutputSink, Stream
from .grace import CANCEL_GRACE  # how long a cancelled command gets to end before its shell is closed

log = logging.getLogger("parallax.persistent_shell")

GREETING_TIMEOUT = 20.0  # seconds for a new shell to answer (unless connect_timeout is set)


class _Unusable(Exception):
    """The shell never answered its greeting (a non-POSIX login shell, for one)."""


class _Unanswered(Exception):
    """No greeting in time, and the first command went with it: it may be running."""


class _Ended(Exception):
    """The shell's channel ended while a command was running."""


class _NotSent(Exception):
    """The command could not be written to the shell: it did not run."""


def _consume(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # an end nobody waits for any more must not be reported as unretrieved


class _Collect:
    """Keeps a greeting's stdout (the shell's pid); drops its stderr."""

    def __init__(self) -> None:
        self.out = b""

    def stdout(self, data: bytes) -> None:
        self.out = (self.out + data)[-4096:]

    def stderr(self, data: bytes) -> None:
        pass


class _Shell:
    """One remote shell: the stream to it and the frame of the command it runs."""

    def __init__(self) -> None:
        self.stream: Stream | None = None
        self.ended = False
        self.end_exc: BaseException | None = None
        self._out: FrameReader | None = None
        self._err: FrameReader | None = None
        self._done: asyncio.Future[int] | None = None
        self._queued: tuple[str, OutputSink] | None = None  # the command sent with the greeting
        self.pending: asyncio.Future[int] | None = None  # its end, once the greeting answered

    # --- StreamSink: called by the backend as output arrives --------------------
    def stdout(self, data: bytes) -> None:
        self._feed(self._out, data)

    def stderr(self, data: bytes) -> None:
        self._feed(self._err, data)

    def closed(self, exc: BaseException | None) -> None:
        self.ended = True
        self.end_exc = exc
        if self._done is not None and not self._done.done():
            self._done.set_exception(_Ended(exc or "the remote shell exited"))

    def _feed(self, reader: FrameReader | None, data: bytes) -> None:
        if reader is None or self._done is None or self._done.done():
            if data:
                log.debug("persistent shell: %d bytes after a command's end dropped", len(data))
            return
        try:
            reader.feed(data)
        except ValueError as e:
            self._done.set_exception(_Ended(e))
            return
        if self._out is not None and self._err is not None and self._out.done and self._err.done:
            status = 255 if self._out.status is None else self._out.status
            done, queued, self._queued = self._done, self._queued, None
            if queued is not None and status == GREETING_STATUS:
                # the command sent with the greeting runs now: its frame starts right here, so no
                # byte that came in the greeting's last chunk is lost
                extra_out, extra_err = self._out.extra, self._err.extra
                self.pending = self._frame(*queued)
                if extra_out:
                    self._feed(self._out, extra_out)
                if extra_err:
                    self._feed(self._err, extra_err)
            done.set_result(status)

    # --- driving it ------------------------------------------------------------
    def _frame(self, tag: str, sink: OutputSink) -> asyncio.Future[int]:
        self._out = FrameReader(tag, sink.stdout, with_status=True)
        self._err = FrameReader(tag, sink.stderr, with_status=False)
        self._done = asyncio.get_running_loop().create_future()
        self._done.add_done_callback(_consume)
        return self._done

    async def start(self, backend: Backend, target: Target, timeout: float,
                    first: tuple[str, OutputSink] | None = None) -> None:
        """Open the shell and wait for its greeting; :class:`_Unusable` if it never comes.

        *first* (command, sink) is sent in the same write, gated on the greeting's
        test (:func:`~parallax.framing.gated_command_script`): once the greeting
        answered, :attr:`pending` is its end.  A shell that ends or fails the
        greeting never ran it; one that stays silent past *timeout* may have:
        :class:`_Unanswered`.
        """
        tag = new_tag()
        greeting = _Collect()
        done = self._frame(tag, greeting)
        script = greeting_script(tag)
        if first is not None:
            first_tag = new_tag()
            script += gated_command_script(first[0], first_tag)
            self._queued = (first_tag, first[1])
        self.stream = await backend.open_stream(target, LOOP_COMMAND, self)
        try:
            self.stream.write(script)
            status = await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            self.close()
            if first is not None:
                raise _Unanswered(f"no answer within {timeout:g} s") from None
            raise _Unusable("TimeoutError") from None
        except (_Ended, OSError) as e:
            self.close()
            raise _Unusable(str(e) or type(e).__name__) from None
        except BaseException:
            if first is not None:
                await self._end_first(done, greeting)
            self.close()
            raise
        if status != GREETING_STATUS:
            self.close()
            raise _Unusable(f"greeting answered {status}")
        self._note_pid(greeting)

    def _note_pid(self, greeting: _Collect) -> None:
        if self.stream is not None and hasattr(self.stream, "remote_pid"):
            self.stream.remote_pid = greeting_pid(greeting.out)

    async def _end_first(self, greeted: asyncio.Future[int], greeting: _Collect) -> None:
        """Cancelled before the greeting answered: end the command sent with it if it started
        (within one CANCEL_GRACE in all)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_GRACE
        try:
            await asyncio.wait_for(asyncio.shield(greeted), CANCEL_GRACE)
        except (_Ended, asyncio.TimeoutError, asyncio.CancelledError):
            return
        if self.pending is not None:
            self._note_pid(greeting)
            await self.interrupt(max(0.0, deadline - loop.time()))

    async def run(self, command: str, sink: OutputSink) -> int:
        """Run *command*; its output goes to *sink*; returns its exit status."""
        assert self.stream is not None
        tag = new_tag()
        script = command_script(command, tag)
        done = self._frame(tag, sink)
        if self.ended:
            raise _NotSent("the remote shell has ended")
        try:
            self.stream.write(script)
        except OSError as e:
            self.close()
            raise _NotSent(str(e) or type(e).__name__) from None
        return await asyncio.shield(done)

    async def interrupt(self, grace: float) -> None:
        """After a cancel: TERM the running command; close the shell unless it answers."""
        if self.stream is None or self.ended:
            return
        self.stream.signal("TERM")
        if self._done is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._done), grace)
                return
            except (_Ended, asyncio.TimeoutError, asyncio.CancelledError):
                pass
        self.close()

    def close(self) -> None:
        self.ended = True
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception:
                pass


class PersistentShellBackend(Backend):
    """Runs commands through persistent shells on *inner*'s pooled connections."""

    def __init__(self, inner: Backend, greeting_timeout: float | None = None) -> None:
        if "stream" not in inner.info.capabilities:
            raise ValueError(f"persistent_shell: the {inner.info.name} backend cannot keep a remote shell open; "
                             f"use a backend with the 'stream' capability (asyncssh, paramiko, openssh)")
        self.inner = inner
        self.greeting_timeout = greeting_timeout or GREETING_TIMEOUT
        self._idle: dict[Target, list[_Shell]] = {}
        self._all: set[_Shell] = set()
        self._plain: set[Target] = set()  # connections whose login shell did not answer

    # --- what the session and scheduler read are the wrapped backend's --------
    @property
    def info(self) -> BackendInfo:  # type: ignore[override]
        """The wrapped backend's metadata (this layer is no backend of its own)."""
        return self.inner.info

    @property
    def keep_connections(self) -> bool:
        return self.inner.keep_connections

    @keep_connections.setter
    def keep_connections(self, value: bool) -> None:
        self.inner.keep_connections = value

    def check_target(self, target: Target) -> None:
        self.inner.check_target(target)

    # --- operations ------------------------------------------------------------
    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        target = job.target
        if job.stdin or target.env or target.connection in self._plain:
            return await self.inner.run(job, sink)
        for attempt in (0, 1):
            shell = await self._take(target, job.command, sink)
            if shell is None:
                return await self.inner.run(job, sink)
            try:
                if shell.pending is not None:  # a new shell: the command went with its greeting
                    pending, shell.pending = shell.pending, None
                    status = await asyncio.shield(pending)
                else:
                    status = await shell.run(job.command, sink)
            except _NotSent as e:  # a shell that died between calls: start another, once
                self._forget(shell)
                if attempt:
                    raise ConnectionFailed.at(target, f"cannot reach the remote shell: {e}") from None
                continue
            except asyncio.CancelledError:
                await shell.interrupt(CANCEL_GRACE)
                self._give_back(target, shell)
                raise
            except _Ended as e:
                self._forget(shell)
                raise ConnectionLost.at(target, f"the remote shell ended: {e}") from None
            self._give_back(target, shell)
            return status
        raise AssertionError("unreachable")

    async def _take(self, target: Target, command: str, sink: OutputSink) -> _Shell | None:
        """An idle shell on *target*'s connection, or a new one that was sent *command* with its
        greeting (its :attr:`_Shell.pending`); ``None``: use plain channels."""
        key = target.connection
        idle = self._idle.get(key)
        while idle:
            shell = idle.pop()
            if not shell.ended:
                return shell
            self._all.discard(shell)
        shell = _Shell()
        self._all.add(shell)
        try:
            await shell.start(self.inner, target, self.greeting_timeout, (command, sink))
        except _Unanswered as e:
            self._all.discard(shell)
            self._plain.add(key)
            raise ConnectionFailed.at(target, f"the remote shell did not answer its greeting ({e}); the command "
                                              f"sent with it may have started, so it is not run again") from None
        except _Unusable as e:
            self._all.discard(shell)
            if shell.end_exc is None:
                log.info("%s: no persistent shell (%s); using one channel per command", target.key, e)
                self._plain.add(key)
            return None
        except BaseException:
            self._all.discard(shell)
            raise
        return shell

    def _give_back(self, target: Target, shell: _Shell) -> None:
        if shell.ended:
            self._forget(shell)
        else:
            self._idle.setdefault(target.connection, []).append(shell)

    def _forget(self, shell: _Shell) -> None:
        shell.close()
        self._all.discard(shell)

    def _close_shells(self, key: Target | None) -> None:
        """Close the idle shells on connection *key* (``None``: every shell)."""
        if key is None:
            shells = list(self._all)
            self._idle.clear()
        else:
            shells = self._idle.pop(key, [])
        for shell in shells:
            self._forget(shell)

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        await self.inner.put(job, sink)

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        await self.inner.get(job, sink)

    async def disconnect(self, target: Target) -> None:
        self._close_shells(target.connection)
        await self.inner.disconnect(target)

    async def close(self) -> None:
        self._close_shells(None)
        await self.inner.close()

    def abandon(self) -> None:
        self.inner.abandon()


__all__ = ["CANCEL_GRACE", "GREETING_TIMEOUT", "PersistentShellBackend"]
