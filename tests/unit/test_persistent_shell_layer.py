"""The persistent-shell layer over streams to local ``/bin/sh`` processes: no
SSH involved, so the shell bookkeeping (reuse, a shell that died, a write
that fails, fallback, cancellation) is tested on its own."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from parallax.backends.base import Backend
from parallax.backends.persistent_shell import PersistentShellBackend
from parallax.backends.process import start_process
from parallax.errors import ConnectionLost
from parallax.jobs import CommandJob, Target


class Sink:
    def __init__(self) -> None:
        self.out = b""
        self.err = b""

    def stdout(self, data: bytes) -> None:
        self.out += data

    def stderr(self, data: bytes) -> None:
        self.err += data


class LocalStream:
    """A local ``sh -c command`` as a stream (stands in for an SSH channel)."""

    def __init__(self, proc, fail_writes: int) -> None:
        self.proc = proc
        self.fail_writes = fail_writes

    def write(self, data: bytes) -> None:
        if self.fail_writes:
            self.fail_writes -= 1
            raise BrokenPipeError("simulated dead channel")
        self.proc.write(data)

    def signal(self, name: str) -> None:
        os.killpg(self.proc.transport.get_pid(), getattr(signal, f"SIG{name}"))

    def close(self) -> None:
        self.proc.transport.get_pipe_transport(0).close()  # EOF: the shell exits, as over SSH


class LocalShells(Backend):
    name = "local-shells"
    capabilities = frozenset({"stream"})

    def __init__(self, shell: str = "/bin/sh", fail_writes: int = 0) -> None:
        self.shell = shell
        self.fail_writes = fail_writes
        self.streams: list[LocalStream] = []
        self.plain_runs = 0

    async def open_stream(self, target, command, sink):
        proc = await start_process([self.shell, "-c", command], sink, lambda status: sink.closed(None),
                                   env={**os.environ, "SHELL": self.shell})
        stream = LocalStream(proc, self.fail_writes)
        self.fail_writes = 0
        self.streams.append(stream)
        return stream

    async def run(self, job, sink):
        self.plain_runs += 1
        return 0

    async def put(self, job, sink):
        raise NotImplementedError

    async def get(self, job, sink):
        raise NotImplementedError

    async def close(self) -> None:
        for s in self.streams:
            s.close()
        await asyncio.gather(*(s.proc.wait() for s in self.streams))


def job(command: str, key: str = "h") -> CommandJob:
    return CommandJob(Target(key=key, host="h"), command)


def run(coro):
    return asyncio.run(coro)


async def echo_and_close(backend: PersistentShellBackend) -> tuple[int, bytes]:
    """One more command (``echo again``), then close: its status and stdout."""
    sink = Sink()
    rc = await backend.run(job("echo again"), sink)
    await backend.close()
    return rc, sink.out


def test_one_shell_serves_every_command():
    async def main():
        inner = LocalShells()
        backend = PersistentShellBackend(inner)
        outs = []
        for i in range(3):
            sink = Sink()
            rc = await backend.run(job(f"echo {i}; echo e >&2; exit {i}"), sink)
            outs.append((rc, sink.out, sink.err))
        await backend.close()
        return inner, outs

    inner, outs = run(main())
    assert outs == [(i, f"{i}\n".encode(), b"e\n") for i in range(3)]
    assert len(inner.streams) == 1


async def _kill(stream: LocalStream) -> None:
    os.killpg(stream.proc.transport.get_pid(), signal.SIGKILL)
    await stream.proc.wait()


async def _fail_next_write(stream: LocalStream) -> None:
    stream.fail_writes = 1


@pytest.mark.parametrize("breakage", [_kill, _fail_next_write], ids=["died between calls", "write fails"])
def test_a_broken_shell_is_replaced_once(breakage):
    async def main():
        inner = LocalShells()
        backend = PersistentShellBackend(inner)
        await backend.run(job("true"), Sink())
        await breakage(inner.streams[0])
        return inner, await echo_and_close(backend)

    inner, result = run(main())
    assert result == (0, b"again\n")
    assert len(inner.streams) == 2


def test_a_shell_killed_by_its_command_is_connection_lost():
    async def main():
        backend = PersistentShellBackend(LocalShells())
        with pytest.raises(ConnectionLost, match="the remote shell ended"):
            await backend.run(job("kill -9 $$"), Sink())
        rc = await backend.run(job("true"), Sink())
        await backend.close()
        return rc

    assert run(main()) == 0


def test_a_shell_that_cannot_greet_falls_back_to_plain_runs():
    async def main():
        inner = LocalShells(shell="/bin/false")
        backend = PersistentShellBackend(inner)
        rcs = [await backend.run(job("true"), Sink()) for _ in range(3)]
        await backend.close()
        return inner, rcs

    inner, rcs = run(main())
    assert rcs == [0, 0, 0]
    assert inner.plain_runs == 3
    assert len(inner.streams) == 1  # not retried for every command


def test_stdin_and_env_jobs_use_plain_runs():
    async def main():
        inner = LocalShells()
        backend = PersistentShellBackend(inner)
        await backend.run(CommandJob(Target(key="h", host="h"), "cat", stdin=b"x"), Sink())
        await backend.run(CommandJob(Target(key="h", host="h", env=(("A", "1"),)), "true"), Sink())
        await backend.close()
        return inner

    inner = run(main())
    assert inner.plain_runs == 2 and not inner.streams


def test_cancelled_command_is_ended_and_the_shell_reused():
    async def main():
        inner = LocalShells()
        backend = PersistentShellBackend(inner)
        task = asyncio.ensure_future(backend.run(job("sleep 30"), Sink()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return inner, await echo_and_close(backend)

    inner, result = run(main())
    assert result == (0, b"again\n")
    assert len(inner.streams) == 1


def test_backend_without_stream_capability_is_refused():
    class NoStreams(LocalShells):
        capabilities = frozenset()

    with pytest.raises(ValueError, match="persistent_shell: the local-shells backend"):
        PersistentShellBackend(NoStreams())
