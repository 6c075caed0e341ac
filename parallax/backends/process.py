"""Run a local child process under asyncio, streaming its output into a sink.

The child gets its own session (process group, no controlling terminal, so
ssh can never prompt on the user's tty); a cancelled run kills the whole
group and reaps it before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from .base import OutputSink
from .grace import CANCEL_GRACE


class _Protocol(asyncio.SubprocessProtocol):
    """Output of a child to the sink; *done* is set once it exited and its pipes closed,
    *gone* as soon as it exited (its pipes may live on: an ``ssh`` multiplexed over a
    ControlMaster hands them to the master, which keeps them until it notices)."""

    def __init__(self, sink: OutputSink, done: asyncio.Future[Any]) -> None:
        self.sink = sink
        self.done = done
        self.gone: asyncio.Future[None] = done.get_loop().create_future()

    def process_exited(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.sink.stdout(data)
        else:
            self.sink.stderr(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _status(rc: int | None) -> int:
    """A child's exit status as a shell reports it: 128 + N for death by signal N."""
    if rc is None:
        return 255
    return 128 - rc if rc < 0 else rc


async def _end_group(pid: int, exited: asyncio.Future[Any], signals: tuple[int | None, ...],
                     *, through_cancel: bool = False) -> None:
    """Send each of *signals* (``None``: none) to the group of *pid* in turn, waiting
    up to :data:`~parallax.backends.grace.CANCEL_GRACE` after each for *exited*; stops
    as soon as the process is gone.
    *through_cancel*: a cancellation while waiting moves on to the next signal."""
    waited = (asyncio.TimeoutError, asyncio.CancelledError) if through_cancel else (asyncio.TimeoutError,)
    for sig in signals:
        if sig is not None:
            _killpg(pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(exited), CANCEL_GRACE)
            return
        except waited:
            pass


async def _spawn(proto: asyncio.SubprocessProtocol, argv: list[str], stdin_pipe: bool,
                 env: Mapping[str, str] | None) -> asyncio.SubprocessTransport:
    """Start *argv* in its own session (no controlling terminal), output piped to *proto*."""
    transport, _ = await asyncio.get_running_loop().subprocess_exec(
        lambda: proto, *argv,
        stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(env) if env is not None else None,
    )
    return transport


async def _spawn_through_cancel(proto: asyncio.SubprocessProtocol, argv: list[str], stdin_pipe: bool,
                                env: Mapping[str, str] | None) -> tuple[asyncio.SubprocessTransport, bool]:
    """:func:`_spawn`, finished even if this task is cancelled meanwhile: ``(transport, cancelled)``.

    asyncio's own answer to a cancelled spawn is to SIGKILL the child, which on a loaded machine
    may have got as far as starting its remote command, and the caller would never learn of it
    (no pid to note, no remote kill).  Finished, a cancelled spawn is ended like a cancelled run."""
    spawning = asyncio.ensure_future(_spawn(proto, argv, stdin_pipe, env))
    cancelled = False
    while True:
        try:
            return await asyncio.shield(spawning), cancelled
        except asyncio.CancelledError:
            if spawning.done():
                raise
            cancelled = True
        except Exception as e:
            if cancelled:  # nothing started: the cancellation is what the caller must see
                raise asyncio.CancelledError from e
            raise


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def run_process(
    argv: list[str],
    sink: OutputSink,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    before_kill: Callable[[int], None] | None = None,
    raw_status: bool = False,
) -> int:
    """Run *argv* (never through a shell); return its exit status.

    A status for death by signal N is reported as ``128 + N``, like a shell
    (``raw_status``: as ``-N``, like ``subprocess``, for 1.0's ``Manager``).
    On cancellation *before_kill(pid)* runs while the child is still alive
    (to note what it was connected to), then the child's group is killed.
    """
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proto = _Protocol(sink, done)
    transport, cancelled = await _spawn_through_cancel(proto, argv, stdin is not None, env)
    pid = transport.get_pid()
    try:
        if cancelled:
            raise asyncio.CancelledError
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            assert isinstance(pipe, asyncio.WriteTransport)
            if stdin:
                pipe.write(stdin)
            pipe.close()
        # Shielded: cancelling this task must not cancel *done*, which the
        # cleanup below still needs to wait on.
        await asyncio.shield(done)
        rc = transport.get_returncode()
        return rc if raw_status and rc is not None else _status(rc)
    except BaseException:
        if before_kill is not None:
            try:
                before_kill(pid)
            except Exception:
                pass
        await _end_group(pid, proto.gone, (signal.SIGTERM, signal.SIGKILL), through_cancel=True)
        raise
    finally:
        transport.close()


class ProcessStream(_Protocol):
    """A local child process whose stdin stays open: bytes go in with :meth:`write`,
    output goes to the sink, and *on_exit(status)* runs once it has exited and
    all its output was delivered."""

    def __init__(self, sink: OutputSink, on_exit: Callable[[int], None]) -> None:
        super().__init__(sink, asyncio.get_running_loop().create_future())
        self.on_exit = on_exit
        self.transport: asyncio.SubprocessTransport | None = None

    @property
    def exited(self) -> asyncio.Future[int]:
        """Resolves to the exit status (128 + N for signal N)."""
        return self.done

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        status = _status(self.transport.get_returncode())
        self.transport.close()
        if not self.done.done():
            self.done.set_result(status)
        self.on_exit(status)

    @property
    def closed(self) -> bool:
        return self.exited.done() or self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.closed:
            raise BrokenPipeError("the process has exited")
        assert self.transport is not None
        pipe = self.transport.get_pipe_transport(0)
        assert isinstance(pipe, asyncio.WriteTransport)
        pipe.write(data)

    def close(self) -> None:
        """Ask the process group to end (:meth:`wait` makes sure it did)."""
        if self.transport is not None and not self.exited.done():
            _killpg(self.transport.get_pid(), signal.SIGTERM)

    async def wait(self) -> None:
        """Wait for the process to exit, killing its group if it will not."""
        if self.transport is not None:
            await _end_group(self.transport.get_pid(), self.done, (None, signal.SIGTERM, signal.SIGKILL))


async def start_process(argv: list[str], sink: OutputSink, on_exit: Callable[[int], None],
                        env: Mapping[str, str] | None = None) -> ProcessStream:
    """Start *argv* (never through a shell) in its own session with stdin left open."""
    proto = ProcessStream(sink, on_exit)
    proto.transport = await _spawn(proto, argv, True, env)
    return proto


def close_process(proc: asyncio.subprocess.Process) -> None:
    """Close an exited ``asyncio.subprocess.Process``'s transport while its loop runs.

    The class has no ``close()``; an unclosed transport complains when it is
    collected after its loop is gone.
    """
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


__all__ = ["ProcessStream", "close_process", "run_process", "start_process"]
