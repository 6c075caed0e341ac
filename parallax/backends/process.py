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
from typing import Callable, Mapping

from .base import OutputSink

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


class _Protocol(asyncio.SubprocessProtocol):
    """Output of a child to the sink; *done* is set once it exited and its pipes closed."""

    def __init__(self, sink: OutputSink, done: asyncio.Future) -> None:
        self.sink = sink
        self.done = done

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.sink.stdout(data)
        else:
            self.sink.stderr(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


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
) -> int:
    """Run *argv* (never through a shell); return its exit status.

    A status for death by signal N is reported as ``128 + N``, like a shell.
    On cancellation *before_kill(pid)* runs while the child is still alive
    (to note what it was connected to), then the child's group is killed.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    transport, _ = await loop.subprocess_exec(
        lambda: _Protocol(sink, done),
        *argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(env) if env is not None else None,
    )
    pid = transport.get_pid()
    try:
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            if stdin:
                pipe.write(stdin)
            pipe.close()
        # Shielded: cancelling this task must not cancel *done*, which the
        # cleanup below still needs to wait on.
        await asyncio.shield(done)
        rc = transport.get_returncode()
        return 128 - rc if rc < 0 else rc
    except BaseException:
        if before_kill is not None:
            try:
                before_kill(pid)
            except Exception:
                pass
        _killpg(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(done), KILL_GRACE)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            _killpg(pid, signal.SIGKILL)
            try:
                await asyncio.wait_for(asyncio.shield(done), KILL_GRACE)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
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
    def exited(self) -> asyncio.Future:
        """Resolves to the exit status (128 + N for signal N)."""
        return self.done

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        rc = self.transport.get_returncode()
        status = 255 if rc is None else (128 - rc if rc < 0 else rc)
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
        self.transport.get_pipe_transport(0).write(data)

    def close(self) -> None:
        """Ask the process group to end (:meth:`wait` makes sure it did)."""
        if self.transport is not None and not self.exited.done():
            _killpg(self.transport.get_pid(), signal.SIGTERM)

    async def wait(self) -> None:
        """Wait for the process to exit, killing its group if it will not."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)
                return
            except asyncio.TimeoutError:
                if self.transport is not None:
                    _killpg(self.transport.get_pid(), sig)
        await asyncio.wait([self.exited], timeout=KILL_GRACE)


async def start_process(argv: list[str], sink: OutputSink, on_exit: Callable[[int], None],
                        env: Mapping[str, str] | None = None) -> ProcessStream:
    """Start *argv* (never through a shell) in its own session with stdin left open."""
    loop = asyncio.get_running_loop()
    proto = ProcessStream(sink, on_exit)
    transport, _ = await loop.subprocess_exec(
        lambda: proto, *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env=dict(env) if env is not None else None,
    )
    proto.transport = transport
    return proto


def close_process(proc: asyncio.subprocess.Process) -> None:
    """Close an exited ``asyncio.subprocess.Process``'s transport while its loop runs.

    The class has no ``close()``; an unclosed transport complains when it is
    collected after its loop is gone.
    """
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


__all__ = ["run_process", "start_process", "ProcessStream", "close_process"]
