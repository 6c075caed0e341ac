"""The paramiko backend: a thin adapter from parallax's shared SSH layer to paramiko.

Configuration, host-key policy and known_hosts, the connection pool and the
copy/slurp rules come from :mod:`parallax.ssh`; this module turns them into
paramiko calls.  Blocking paramiko calls (handshake, authentication, channel
and SFTP requests) run in a thread pool owned by the backend; the TCP connect
and the streaming of output happen on the event loop
(:mod:`.paramiko_channel`), so the loop never blocks.  A cancelled job ends
its own channel (TERM, close) and waits for the thread working for it.
Authentication is :mod:`.paramiko_auth`, error mapping
:mod:`.paramiko_errors`, SFTP :mod:`.paramiko_sftp`.

Known differences from OpenSSH: ``ProxyCommand`` is refused (use ProxyJump or
the openssh backend); host certificates are refused clearly; ``env`` requests
get no reply, so a server that refuses them (``AcceptEnv``) drops them, as
with OpenSSH; a command killed by a signal reports 255, as ``ssh`` does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import paramiko

from ..errors import ConnectionLost, Error, Timeout, TransferFailed, TransportError, UnsupportedOption
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh.copyjobs import job_walk
from ..ssh.boundary import lost_in_transfer
from ..ssh.hostkey_check import check_offered_blob
from ..ssh.known_hosts_cache import KnownHostsCache
from ..ssh.pool import ConnectionPool
from ..ssh.tcp import open_tcp
from .base import Backend, BackendInfo, BackendSetup, OutputSink, Stream, StreamSink
from .grace import CANCEL_GRACE
from .paramiko_auth import KeyStore, authenticate
from .paramiko_channel import (ChannelReader, ChannelStream, ExecStart, end_channel, feed_stdin, run_into,
                               term_until_exit, wait_status)
from .paramiko_errors import map_error, why
from .paramiko_sftp import SFTPFS, open_sftp
from .paramiko_transport import (
    SETTLE_TIMEOUT,
    Conn,
    alive,
    apply_algorithms,
    close_transport,
    join_all,
    jump_depth,
    prefer_key_types,
)
from .sshconfig import (
    SUPPORTED_OPTIONS,
    ConfigCache,
    HostConfig,
    logger_for,
)

log = logging.getLogger("parallax.paramiko")

CHUNK = 256 * 1024  # bytes read from a channel buffer at once
TUNNEL_TIMEOUT = 30.0  # seconds to open a direct-tcpip channel when no ConnectTimeout is set
DEFAULT_WORKERS = 64


async def _transport_died(conn: Conn) -> bool:
    """Whether a transfer's failure was its connection's: the SFTP channel can report the drop
    ("Server connection dropped") a moment before the transport's reader thread notices, so
    the transport gets up to CANCEL_GRACE to say it is gone."""
    deadline = time.monotonic() + CANCEL_GRACE
    while conn.transport.is_active():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class ParamikoBackend(Backend):
    """SSH through paramiko: pooled transports, blocking calls in a thread pool."""

    info = BackendInfo("paramiko", SUPPORTED_OPTIONS, frozenset({"remote-kill", "stream", "check"}))

    def __init__(self, setup: BackendSetup | None = None) -> None:
        limit = setup.limit if setup is not None else None
        self._workers = max(8, limit + 8) if isinstance(limit, int) and limit > 0 else DEFAULT_WORKERS
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._configs = ConfigCache()
        self._keys = KeyStore()
        self._known = KnownHostsCache()
        self._pool: ConnectionPool[Conn] = ConnectionPool(self._connect, alive, self._release)
        self._transports: set[paramiko.Transport] = set()

    # --- checks --------------------------------------------------------
    def check_target(self, target: Target) -> None:
        """Refuse raw ssh arguments and unsupported or malformed options before anything runs."""
        if target.ssh_extra:
            raise UnsupportedOption(
                f"ssh_extra {' '.join(target.ssh_extra)!r} (raw ssh arguments) is not supported "
                f"by the {self.name} backend; use ssh_options",
                host=target.key,
            )
        super().check_target(target)
        self._configs.check(target)

    # --- threads -------------------------------------------------------
    def _submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self._workers,
                                                                   thread_name_prefix="parallax-paramiko")
        cf = self._executor.submit(fn, *args)
        self._futures.add(cf)
        cf.add_done_callback(self._futures.discard)
        return cf

    async def _blocking(self, fn: Callable[..., Any], *args: Any, abort: Callable[[], None] | None = None,
                        last_resort: Callable[[], None] | None = None) -> Any:
        """Run *fn* in the pool; on cancellation call *abort* and wait for the thread.

        With *last_resort*, *abort* runs in a thread of its own (it may block: closing a channel
        waits for the transport a stuck writer holds), and if the worker has not ended within
        CANCEL_GRACE, *last_resort* (closing the transport, which wakes everything) is called.
        """
        cf = self._submit(fn, *args)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            if abort is not None and last_resort is not None:
                aborted: concurrent.futures.Future[Any] = concurrent.futures.Future()
                threading.Thread(target=run_into, args=(abort, aborted), name="parallax-paramiko-abort",
                                 daemon=True).start()
                waiter = asyncio.wrap_future(cf)
                waiter.add_done_callback(_retrieve)  # the worker's failure after the abort is expected
                await asyncio.wait({waiter, asyncio.wrap_future(aborted)}, timeout=CANCEL_GRACE)
                if not (cf.done() and aborted.done()):
                    last_resort()
            elif abort is not None:
                abort()
            await _settle(cf)
            raise

    # --- connecting ----------------------------------------------------
    async def _connect(self, target: Target) -> Conn:
        """A new authenticated transport to *target* (through its ProxyJump hops, each pooled too)."""
        hc = self._configs.resolve(target)
        jump = None
        if hc.proxy_jump:
            self._configs.check_jumps(target)  # a loop would wait on itself
            jump, _ = await self._pool.acquire(self._configs.jump_target(target, hc))
            sock: socket.socket | paramiko.Channel = await self._tunnel(jump, hc, target)
        else:
            sock = await open_tcp(target, hc.base, hc.connect_timeout)
        try:
            transport = paramiko.Transport(sock)
        except BaseException as e:
            sock.close()
            raise map_error(e, target) from None
        self._transports.add(transport)
        apply_algorithms(transport, hc)
        conn = Conn(transport, hc, target, target.connection, jump)
        try:
            await self._blocking(self._handshake, conn, abort=lambda: close_transport(transport))
        except BaseException as e:
            close_transport(transport)
            if isinstance(e, Exception):
                raise map_error(e, target, via=hc.proxy_jump) from None
            raise
        return conn

    async def _tunnel(self, jump: Conn, hc: HostConfig, target: Target) -> paramiko.Channel:
        """A direct-tcpip channel through *jump* to the target, used as its socket."""
        abandoned = threading.Event()

        def open_channel() -> paramiko.Channel:
            chan = jump.transport.open_channel(
                "direct-tcpip", (hc.hostname, hc.port), ("127.0.0.1", 0),
                timeout=hc.connect_timeout or TUNNEL_TIMEOUT,
            )
            if abandoned.is_set():
                chan.close()
            return chan

        # Closing the shared jump transport would break its other users, so a
        # cancelled open is abandoned; its thread ends within the open timeout.
        cf = self._submit(open_channel)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            abandoned.set()
            raise
        except Exception as e:
            raise map_error(e, target, via=hc.proxy_jump) from None

    def _handshake(self, conn: Conn) -> None:
        """SSH handshake, host key check and authentication (in a worker thread)."""
        t, hc = conn.transport, conn.hc
        t.set_log_channel(logger_for(hc.log_level))
        if hc.compression:
            t.use_compression(True)
        if hc.connect_timeout:
            t.banner_timeout = t.auth_timeout = hc.connect_timeout
        known = self._known.for_host(conn.target, hc.base)  # None under policy off
        if known is not None:
            prefer_key_types(t, list(known.known_types(hc.host_key_name)))
        t.start_client(timeout=hc.connect_timeout)
        if not t.initial_kex_done:  # start_client returns quietly when its timeout runs out
            raise Timeout.at(conn.target, f"no SSH handshake within {hc.connect_timeout:g} s")
        # the one shared check (parallax.ssh.hostkey_check): lookup, policy, accept-new pin, refusal
        decision = check_offered_blob(conn.target, hc.base, known, t.get_remote_server_key().asbytes())
        conn.password_ok = not decision.disable_password
        if hc.keepalive:
            t.set_keepalive(hc.keepalive)
        authenticate(conn, self._keys, self._configs.home)

    def _discard(self, conn: Conn) -> None:
        """Close *conn*'s transport (the pool then sees it dead and replaces it on next use)."""
        close_transport(conn.transport)
        if conn.transport in self._transports:
            self._transports.discard(conn.transport)
            self._submit(join_all, [conn.transport])

    async def _release(self, conn: Conn) -> None:
        self._discard(conn)

    async def _session(self, target: Target, opener: Callable[[Conn], Any],
                       abort: Callable[[], None] | None = None) -> tuple[Conn, Any]:
        """Connect (or reuse) and run *opener* in a thread; a dead pooled transport is replaced once.
        Cancelled, *abort* runs in a thread of its own (it ends what the opener began), and the
        transport is closed (that wakes the thread) unless both are done within CANCEL_GRACE;
        without *abort*, the transport is closed at once."""

        async def operation(conn: Conn) -> tuple[Conn, Any]:
            discard = functools.partial(self._discard, conn)
            if abort is None:
                return conn, await self._blocking(opener, conn, abort=discard)
            return conn, await self._blocking(opener, conn, abort=abort, last_resort=discard)

        try:
            return await self._pool.use(target, operation,
                                        dead=lambda e, c: not isinstance(e, Error) and not c.transport.is_active())
        except Error:
            raise
        except paramiko.ChannelException as e:  # e.g. MaxSessions reached
            raise TransportError.at(target, f"cannot open a session: {e.text}") from None
        except Exception as e:
            raise map_error(e, target) from None

    # --- commands ------------------------------------------------------
    async def _start(self, target: Target, command: str) -> tuple[Conn, paramiko.Channel]:
        """A channel running *command*.  Cancelled once the exec request may have left, the
        command is TERMed until it ends (see :mod:`.terminate`) and its channel closed: sshd
        may run it already, and a closed channel alone would leave it running."""
        start = ExecStart(command)
        return await self._session(target, start.open, start.abort)

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        target = job.target
        conn, chan = await self._start(target, job.command)
        reader = ChannelReader(chan, sink, asyncio.get_running_loop())
        feeder: concurrent.futures.Future[Any] | None = None
        try:
            if job.stdin:
                feeder = self._submit(feed_stdin, chan, job.stdin)
            else:
                feed_stdin(chan, b"")
            await reader.done
            if not chan.exit_status_ready():
                stop = threading.Event()  # cancelled, the command is ended below (it may still run)
                await self._blocking(wait_status, chan, stop, abort=stop.set)
            rc = chan.exit_status
            if feeder is not None:
                await _settle(feeder)
            if rc == -1:
                if not conn.transport.is_active():
                    self._discard(conn)
                    raise ConnectionLost(f"Connection to {target.label} lost before the command's exit status arrived")
                rc = 255
            return int(rc)
        except asyncio.CancelledError:
            # End this command only: TERM it, close its channel; the connection (and the
            # host's other commands on it, in a session) stay unless it is already dead.
            await self._terminate_remote(chan)
            end_channel(chan)
            if not conn.transport.is_active():
                self._discard(conn)
            if feeder is not None:
                await _settle(feeder)
            raise
        finally:
            reader.close()
            if not chan.closed:
                chan.close()

    async def _terminate_remote(self, chan: paramiko.Channel) -> None:
        """Ask sshd to send TERM to the cancelled command until its exit status arrives (see
        :mod:`.terminate`), before the channel and maybe the connection are torn down."""
        if chan.closed or chan.exit_status_ready():
            return
        await _settle(self._submit(term_until_exit, chan))

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate (the pooled transport), opening no channel."""
        conn, _ = await self._pool.acquire(job.target)
        return conn.auth

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        conn, chan = await self._start(target, command)
        return ChannelStream(chan, conn.transport, sink, asyncio.get_running_loop())

    # --- file transfer -------------------------------------------------
    async def put(self, job: PutJob, sink: OutputSink) -> None:
        """Copy local ``src`` to remote ``dst`` as ``scp [-r] -p``."""
        await self._sftp(job.target, job_walk(job))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        """Copy remote ``src`` to local ``dst`` as ``scp [-r] -p``, never writing outside the slurp root."""
        await self._sftp(job.target, job_walk(job))

    async def _sftp(self, target: Target, walk: Callable[[SFTPFS], Awaitable[None]]) -> None:
        """Run a :mod:`parallax.ssh.transfer` walk over an SFTP session on the pooled transport;
        each SFTP call is one blocking call in the pool, a dropped transport ``ConnectionFailed``."""
        conn, sftp = await self._session(target, lambda c: open_sftp(c.transport, c.target))
        # cancelled: closing the SFTP channel wakes the thread; the connection stays (a session's other work)
        fs = SFTPFS(sftp, lambda fn, *args: self._blocking(fn, *args, abort=functools.partial(_close_quietly, sftp),
                                                           last_resort=functools.partial(self._discard, conn)))
        try:
            await walk(fs)
        except TransferFailed as e:
            if await _transport_died(conn):
                raise lost_in_transfer(target, e.msg.split(": ", 1)[-1]) from None
            raise
        except (paramiko.SSHException, EOFError, OSError) as e:
            if await _transport_died(conn):
                raise lost_in_transfer(target, why(e)) from None
            raise TransferFailed.at(target, why(e)) from None
        finally:
            _close_quietly(sftp)

    # --- lifecycle -----------------------------------------------------
    async def disconnect(self, target: Target) -> None:
        await self._pool.discard(target)

    async def close(self) -> None:
        pool, self._pool = self._pool, ConnectionPool(self._connect, alive, self._release)
        transports = list(self._transports)
        self._transports.clear()
        # Innermost first: a transport tunnelled through a jump host says
        # goodbye over the jump's transport, which must still be open.
        levels: dict[int, list[paramiko.Transport]] = {}
        for t in transports:
            levels.setdefault(jump_depth(t), []).append(t)
        for depth in sorted(levels, reverse=True):
            for t in levels[depth]:
                close_transport(t)
            await self._blocking(join_all, levels[depth])
        await pool.close()  # pending connects cancelled; established transports were closed above
        for cf in list(self._futures):
            await _settle(cf)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


# --------------------------------------------------------------------------
# helpers run in worker threads


def _close_quietly(sftp: paramiko.SFTPClient) -> None:
    """Close an SFTP session whose connection may be gone (the transfer's own error is what counts)."""
    try:
        sftp.close()
    except (paramiko.SSHException, EOFError, OSError) as e:
        log.debug("closing an SFTP session failed: %s", e)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (asyncio reports unseen ones as never retrieved)."""
    if not future.cancelled():
        future.exception()


async def _settle(cf: concurrent.futures.Future[Any]) -> None:
    """Wait (bounded) for a worker thread to finish after its transport was closed."""
    if not cf.done():
        wrapped = asyncio.wrap_future(cf)
        await asyncio.wait({wrapped}, timeout=SETTLE_TIMEOUT)
        if wrapped.done() and not wrapped.cancelled():
            wrapped.exception()  # retrieved: its failure was expected after the abort




__all__ = ["ParamikoBackend"]
