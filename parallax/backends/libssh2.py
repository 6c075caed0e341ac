"""The libssh2 backend: the protocol work in C (libssh2 via ``ssh2-python``), driven by parallax's event loop.

libssh2 runs in non-blocking mode on sockets asyncio owns; each call that
would block waits with ``loop.add_reader``/``add_writer`` in the directions
libssh2 reports (:mod:`.libssh2_io`): no thread per host, no busy loop.
Like the asyncssh backend it is a thin adapter over :mod:`parallax.ssh`:
the target's configuration from the shared resolver (:mod:`.libssh2_options`),
host keys judged by :mod:`parallax.ssh.hostkeys` and the one policy table
(:mod:`.libssh2_conn`), connections shared through
:class:`parallax.ssh.pool.ConnectionPool`, copy and slurp as
:mod:`parallax.ssh.transfer` over :mod:`.libssh2_sftp`, and libssh2's
failures translated once in :mod:`.libssh2_errors`.

What is libssh2-specific:

* Identities are offered as files (libssh2 reads and unlocks them in C)
  after the agent's keys; an encrypted default identity without a
  passphrase is skipped.  The password is tried once per method.
* ``ProxyJump`` hops are libssh2 sessions too, bridged by a ``direct-tcpip``
  channel and a socketpair (:mod:`.libssh2_conn`).
* Exit status: the remote status; killed by signal N: ``128 + N``.
* Cancellation sends ``TERM`` (libssh2's signal request), closes the channel and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ssh2 import exceptions as x
from ssh2.channel import Channel

from ..errors import Error, Timeout, UnsupportedOption
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh.copyjobs import job_walk
from ..ssh.keywords import IN_PROCESS_OPTIONS
from ..ssh.known_hosts_cache import KnownHostsCache
from ..ssh.pool import ConnectionPool
from ..ssh.pooled import PooledLifecycle
from ..timeouts import within
from . import libssh2_errors as errors
from .base import Backend, BackendInfo, BackendSetup, OutputSink, Stream, StreamSink
from .grace import CANCEL_GRACE
from .terminate import terminate
from .libssh2_conn import Connection, check_algorithms, open_connection, write_all
from .libssh2_io import Wire, release_closed
from .libssh2_options import Conf, Confs
from .libssh2_sftp import SFTPFS

T = TypeVar("T")

READ_SIZE = 256 * 1024

#: Lower-case ssh option names this backend honours in ``ssh_options``: the shared in-process set.
SUPPORTED_OPTIONS = IN_PROCESS_OPTIONS


def _signal_status(name: bytes | str | None) -> int:
    text = name.decode() if isinstance(name, bytes) else (name or "")
    try:
        return 128 + signal.Signals["SIG" + text.upper().removeprefix("SIG")].value
    except KeyError:
        return 255


async def _read_until_eof(wire: Wire, chan: Channel, sink: OutputSink) -> None:
    """Stream the channel's stdout and stderr into *sink* until the remote end's EOF.

    Each read drains the socket into libssh2's queue, whichever stream the packets are for:
    the stderr read may queue stdout that arrived after the stdout read, and leave the socket
    silent (once the window is full, for good).  So before waiting for the socket, libssh2's
    queue is asked (without reading the socket) whether either stream has data.
    """
    fresh = True
    queued = False
    while True:
        rc, data = chan.read(READ_SIZE)
        if rc > 0:
            sink.stdout(data)
        rc2, data2 = chan.read_stderr(READ_SIZE)
        if rc2 > 0:
            sink.stderr(data2)
        if rc > 0 or rc2 > 0:
            fresh, queued = True, False
            continue
        if chan.eof():
            return
        if not queued and chan.poll_channel_read(1):  # 1: stdout or stderr
            queued = True  # read again once (a read still blocked, e.g. on its window adjust, waits)
            continue
        await wire.wait(kick=fresh)
        fresh = queued = False


class _Dropped:
    """The sink of a cancelled command's last output."""

    def stdout(self, data: bytes) -> None:
        pass

    def stderr(self, data: bytes) -> None:
        pass


_DROPPED = _Dropped()


async def _start(wire: Wire, command: str, env: tuple[tuple[str, str], ...]) -> Channel:
    """A session channel running *command* with *env* (variables the server refuses are dropped, as ssh does)."""
    chan: Channel = await wire.call(wire.session.open_session)
    requested = False
    try:
        for name, value in env:
            with contextlib.suppress(x.ChannelRequestDenied, x.ChannelFailure):
                await wire.call(chan.setenv, name, value)
        requested = True
        await wire.call(chan.execute, command)
    except asyncio.CancelledError:
        if not requested:
            with contextlib.suppress(Exception):
                chan.close()
            raise
        # sshd may run it already (closing the channel alone would leave it running): TERMed
        # while the exec request (libssh2 goes on with a request it began) is finished.
        async def exec_then_closed() -> None:
            await wire.call(chan.execute, command)
            await wire.call(chan.send_eof)
            await _until_closed(wire, chan, _DROPPED)

        await _end(wire, chan, True, exec_then_closed())
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            chan.close()
        raise
    return chan


async def _until_closed(wire: Wire, chan: Channel, sink: OutputSink) -> None:
    """Read the channel's output into *sink* until the server closes the channel: a command
    may close its output and run on, and only its end closes the channel."""
    await _read_until_eof(wire, chan, sink)
    await wire.call(chan.wait_closed)


async def _end(wire: Wire, chan: Channel, term: bool, closing: Coroutine[Any, Any, None] | None = None) -> None:
    """Best effort, briefly: TERM the remote command (if *term*: again until the server closes
    the channel, which *closing* awaits; see :mod:`.terminate`), then close the channel."""
    async def send() -> None:
        with contextlib.suppress(x.SSH2Error, OSError):
            await wire.call(chan.signal, "TERM")

    async def finish() -> None:
        if term:  # the channel's remaining output is dropped (without *closing*, our EOF is sent already)
            await terminate(send, closing or _until_closed(wire, chan, _DROPPED))
        await wire.call(chan.close)

    try:
        await within(finish(), CANCEL_GRACE)
    except (Exception, asyncio.TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(Exception):
            chan.close()  # once, without waiting for the server's answer


class _Stream:
    """A long-lived channel (see :meth:`Libssh2Backend.open_stream`): output to the sink, stdin queued."""

    def __init__(self, wire: Wire, chan: Channel, sink: StreamSink, tasks: set[asyncio.Task[None]]) -> None:
        # Both are dropped when the channel ends: a libssh2 object must not outlive its
        # connection's close for long (see Wire.close), and a shell's owner may keep this.
        self.wire: Wire | None = wire
        self.chan: Channel | None = chan
        self.sink = sink
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._tasks = tasks  # the backend's: its close waits for them
        self._reader = loop.create_task(self._read())
        self._writer = loop.create_task(self._write())
        for task in (self._reader, self._writer):
            self._track(task)

    async def _read(self) -> None:
        assert self.wire is not None and self.chan is not None
        exc: BaseException | None = None
        try:
            await _read_until_eof(self.wire, self.chan, self.sink)
        except asyncio.CancelledError:
            exc = ConnectionResetError("the channel was closed")
        except (x.SSH2Error, OSError) as e:
            exc = e.with_traceback(None)  # the sink may keep it: its frames would hold the channel
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self.wire = self.chan = None
        self.sink.closed(exc)

    async def _write(self) -> None:
        wire, chan = self.wire, self.chan
        assert wire is not None and chan is not None
        with contextlib.suppress(x.SSH2Error, OSError):
            while (data := await self._queue.get()) is not None:
                await write_all(wire, chan, data)
            await wire.call(chan.send_eof)

    def _spawn(self, aw: Awaitable[None]) -> None:
        self._track(asyncio.ensure_future(aw))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def write(self, data: bytes) -> None:
        """Send *data* to the command's stdin (in order, as the window allows)."""
        if self.wire is None or self.wire.closed or self._reader.done():
            raise ConnectionResetError("the channel is closed")
        self._queue.put_nowait(data)

    def signal(self, name: str) -> None:
        """Best effort: deliver signal *name* to the remote command."""
        wire, chan = self.wire, self.chan
        if wire is None or chan is None:
            return  # the channel has ended

        async def send() -> None:
            with contextlib.suppress(x.SSH2Error, OSError):
                await wire.call(chan.signal, name.upper().removeprefix("SIG"))

        self._spawn(send())

    def close(self) -> None:
        """End the channel (the sink's ``closed`` follows)."""
        wire, chan = self.wire, self.chan
        if wire is None or chan is None:
            return  # ended already

        async def shut() -> None:
            await _end(wire, chan, False)
            self._reader.cancel()

        self._spawn(shut())


class Libssh2Backend(PooledLifecycle[Connection], Backend):
    """libssh2 transport: pooled non-blocking sessions, channels per job, SFTP transfers."""

    info = BackendInfo("libssh2", SUPPORTED_OPTIONS, frozenset({"remote-kill", "stream", "check"}))

    def __init__(self, setup: BackendSetup | None = None) -> None:
        self.setup = setup
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            self._connect, lambda c: c.alive, lambda c: c.close())
        self._confs = Confs()
        self._known = KnownHostsCache()
        self._stream_tasks: set[asyncio.Task[None]] = set()

    def check_target(self, target: Target) -> None:
        """Refuse unsupported options and raw ssh arguments, and bad option values, before connecting."""
        super().check_target(target)
        hc = self._confs.targets.check_in_process(target, self.name, check_algorithms)
        if hc.proxy_command and not hc.proxy_jump:
            raise UnsupportedOption(f"ProxyCommand is not supported by the {self.name} backend "
                                    f"(use ProxyJump, or the openssh backend)", host=target.key)

    async def _open(self, conf: Conf, via: Connection | None) -> Connection:
        opening = open_connection(conf, self._known.for_host(conf.target, conf.hc), via)
        if not conf.timeout:
            return await opening
        try:
            return await within(opening, conf.timeout)
        except asyncio.TimeoutError:
            raise Timeout.at(conf.target, f"no answer within {conf.timeout:g} s") from None

    async def _connect(self, target: Target) -> Connection:
        """Connect to *target*, through its ProxyJump hops in order (what the pool calls)."""
        conf = self._confs.get(target)
        hops: list[Connection] = []
        try:
            via = None
            for hop in self._confs.hops(target):  # as ssh -J (parallax.ssh.jump)
                via = await self._open(hop, via)
                hops.append(via)
            conn = await self._open(conf, via)
        except BaseException:
            for hop_conn in reversed(hops):
                await hop_conn.close()
            raise
        conn.hops = hops
        return conn

    async def _on_channel(self, target: Target, open_: Callable[[Wire], Awaitable[T]],
                          refused: Callable[[Target, BaseException], Error]) -> T:
        """Open a channel with *open_* on the pooled connection; a dead pooled one is re-established once."""
        async def operation(conn: Connection) -> T:
            try:
                return await open_(conn.wire)
            except (x.ChannelFailure, x.ChannelRequestDenied, x.SFTPProtocolError, x.SFTPError) as e:
                raise refused(target, e) from e

        with errors.on_connection(target):
            return await self._pool.use(target, operation, errors.is_dead)

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        """Run the job's command on a channel of the pooled connection."""
        target = job.target
        env = self._confs.get(target).env
        holder: list[Wire] = []

        async def open_(wire: Wire) -> Channel:
            holder.append(wire)
            return await _start(wire, job.command, env)

        chan = await self._on_channel(target, open_, errors.session_refused)
        wire = holder[-1]
        try:
            with errors.on_connection(target):
                try:
                    if job.stdin:
                        await write_all(wire, chan, job.stdin)
                    await wire.call(chan.send_eof)
                    await _until_closed(wire, chan, sink)
                    await wire.call(chan.close)
                except (x.SSH2Error, ConnectionError) as e:
                    raise errors.lost(target, e) from e
        except BaseException as e:
            await _end(wire, chan, not isinstance(e, Error))
            raise
        status = chan.get_exit_status()
        exit_signal = chan.get_exit_signal()
        if exit_signal[1]:
            return _signal_status(exit_signal[1])
        return int(status)

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate (the pooled connection), opening no channel."""
        conn, _ = await self._pool.acquire(job.target)
        return conn.auth

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        """Start *command* on a channel of the pooled connection, its stdin left open."""
        env = self._confs.get(target).env

        async def open_(wire: Wire) -> _Stream:
            return _Stream(wire, await _start(wire, command, env), sink, self._stream_tasks)

        return await self._on_channel(target, open_, errors.session_refused)

    async def close(self) -> None:
        """Close every pooled connection, then free what reference cycles still hold of their
        libssh2 sessions, so the descriptors close with the backend (see ``Wire.close``)."""
        await super().close()
        if self._stream_tasks:  # a stream's last steps hold its channel: let them run (they fail fast now)
            await asyncio.wait(set(self._stream_tasks), timeout=CANCEL_GRACE)
        release_closed()

    async def _transfer(self, target: Target, walk: Callable[[SFTPFS], Awaitable[None]]) -> None:
        """Run a :mod:`parallax.ssh.transfer` walk over an SFTP session on the pooled connection."""
        async def open_(wire: Wire) -> tuple[Wire, Any]:
            return wire, await wire.call(wire.session.sftp_init)

        wire, sftp = await self._on_channel(target, open_, errors.sftp_refused)
        fs = SFTPFS(wire, sftp)
        del sftp  # the adapter holds the only reference: its shutdown frees (ends) the session
        try:
            with errors.in_sftp_session(target):
                await walk(fs)
        finally:
            fs.shutdown()

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        """Copy local ``src`` to remote ``dst`` as ``scp [-r] -p``."""
        await self._transfer(job.target, job_walk(job))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        """Copy remote ``src`` to local ``dst`` as ``scp [-r] -p``, never writing outside the slurp root."""
        await self._transfer(job.target, job_walk(job))


__all__ = ["SUPPORTED_OPTIONS", "Libssh2Backend"]
