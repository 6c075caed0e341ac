"""The asyncssh backend: native asyncio SSH, one pooled connection per target.

A thin adapter over the shared SSH layer :mod:`parallax.ssh`.  The target's
configuration comes from :mod:`parallax.ssh.config` (turned into asyncssh's
arguments by :mod:`.asyncssh_options`; asyncssh is called with ``config=None``
and every setting explicit, so ``$HOME/.ssh`` is never read behind the
caller's back); host keys are judged by :mod:`parallax.ssh.hostkeys` and
:mod:`parallax.ssh.policy` and recorded by :mod:`parallax.ssh.known_hosts_cache`;
connections are shared through :class:`parallax.ssh.pool.ConnectionPool`;
copy and slurp are :mod:`parallax.ssh.transfer` over :mod:`.asyncssh_sftp`;
asyncssh's exceptions become the shared classes in :mod:`.asyncssh_errors`.
What is left here is asyncssh-specific:

* Client keys are loaded once per backend instance (by path and passphrase);
  without an explicit identity OpenSSH's default keys are offered, encrypted
  ones only when a passphrase (or password) is set.  The password is given as
  a callable, so :meth:`AsyncSSHBackend.check` knows what authenticated, and
  withheld after a changed key was let through (``StrictHostKeyChecking no``).
* asyncssh trusts no key in advance: every host key reaches
  ``_Client.validate_host_public_key`` and the shared
  :mod:`parallax.ssh.hostkey_check`; the recorded key types are offered
  (as asyncssh and OpenSSH order host key algorithms).  ``off`` checks nothing.
* ``ProxyJump`` hops are opened by this backend, one through the other, each
  resolved as ``ssh -J`` does (:mod:`parallax.ssh.jump`).
* Exit status: the remote status; killed by signal N: ``128 + N``; no status: 255.
* Cancellation sends ``TERM`` to the remote command, closes the channel and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncssh

from ..errors import AuthenticationFailed, Error, HostKeyChanged, HostKeyUnknown
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh.copyjobs import job_walk
from ..ssh.hostkey_check import check_offered_blob
from ..ssh.hostkeys import KnownHosts
from ..ssh.keys import KeyCache, permission_denied
from ..ssh.keywords import IN_PROCESS_OPTIONS
from ..ssh.known_hosts_cache import KnownHostsCache
from ..ssh.pool import ConnectionPool
from ..ssh.pooled import PooledLifecycle
from ..ssh.targets import identity_paths
from ..ssh.tcp import open_tcp
from ..timeouts import within
from . import asyncssh_errors as errors
from .asyncssh_auth import sign_at_once
from .asyncssh_options import Conf, Confs, recorded_host_key_algs
from .asyncssh_sftp import SFTPFS, close_sftp
from .base import Backend, BackendInfo, BackendSetup, OutputSink, Stream, StreamSink
from .grace import CANCEL_GRACE, CLOSE_GRACE
from .terminate import terminate

T = TypeVar("T")

#: Lower-case ssh option names this backend honours in ``ssh_options``: the set shared with paramiko.
SUPPORTED_OPTIONS = IN_PROCESS_OPTIONS

#: known_hosts as asyncssh is told it when parallax checks keys: nothing trusted in advance, so every key
#: reaches ``_Client.validate_host_public_key`` (an empty value would make asyncssh read ~/.ssh/known_hosts).
_TRUST_NOTHING: tuple[list[str], list[str], list[str]] = ([], [], [])


class _Client(asyncssh.SSHClient):
    """Judges the host key with the shared lookup and policy; notes how authentication went."""

    def __init__(self, conf: Conf, known: KnownHosts | None) -> None:
        self.conf = conf
        self.known = known
        self.refusal: Error | None = None  # why the host key was refused
        self.no_password = False  # OpenSSH's restriction after accepting a changed key
        self.auth = "publickey"  # what authenticated (for check): "password" once the password was used
        self.jumps: list[asyncssh.SSHClientConnection] = []  # closed with this connection

    def password_for(self, password: str | None) -> Callable[[], str | None] | None:
        """The password as asyncssh's callable form, noting that it was asked for."""
        if password is None:
            return None

        def give() -> str | None:
            if self.no_password:
                return None
            self.auth = "password"
            return password

        return give

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        try:  # the one shared check (parallax.ssh.hostkey_check): lookup, policy, accept-new pin, refusal
            decision = check_offered_blob(self.conf.target, self.conf.hc, self.known, key.public_data)
        except Error as e:
            self.refusal = e
            return False
        self.no_password = decision.disable_password
        return True

    def host_key_error(self, detail: str) -> Error:
        """The error for a host key asyncssh reports refused (*detail*: its text)."""
        if self.refusal is not None:
            return self.refusal
        recorded = self.known is not None and self.known.known_types(self.conf.hc.host_key_name)
        return (HostKeyChanged if recorded else HostKeyUnknown).at(self.conf.target, detail)

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        sign_at_once(conn)  # publickey first, a file key's signature in the first request

    def connection_lost(self, exc: Exception | None) -> None:
        for jump in self.jumps:
            jump.close()


class _Session(asyncssh.SSHClientSession[bytes]):
    """Streams a command's output straight into the sink."""

    def __init__(self, sink: OutputSink, done: asyncio.Future[Exception | None] | None = None) -> None:
        self.sink = sink
        self.done = done
        self.chan: Any = None  # set once the channel is open, before its requests are sent

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: Any) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.sink.stderr(data)
        else:
            self.sink.stdout(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(exc)


class _StreamSession(_Session):
    """A long-lived channel (see :meth:`AsyncSSHBackend.open_stream`): output to the sink."""

    sink: StreamSink

    def __init__(self, sink: StreamSink) -> None:
        super().__init__(sink)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sink.closed(exc)

    def write(self, data: bytes) -> None:
        """Send *data* to the command's stdin."""
        self.chan.write(data)

    def signal(self, name: str) -> None:
        """Best effort: deliver signal *name* to the remote command."""
        try:
            self.chan.send_signal(name)
        except Exception:
            pass

    def close(self) -> None:
        """End the channel."""
        self.chan.close()


@dataclass
class _Pooled:
    conn: asyncssh.SSHClientConnection
    client: _Client  # its jumps: the ProxyJump hops' connections, first hop first


def _signal_status(name: str) -> int:
    try:
        return 128 + signal.Signals["SIG" + name.upper().removeprefix("SIG")].value
    except KeyError:
        return 255


async def _close_all(conns: Iterable[asyncssh.SSHClientConnection]) -> None:
    conns = list(conns)
    for conn in conns:
        conn.close()
    for conn in conns:
        try:
            await within(conn.wait_closed(), CLOSE_GRACE)
        except (asyncio.TimeoutError, Exception):
            pass


async def _close_pooled(pooled: _Pooled) -> None:
    await _close_all([pooled.conn, *reversed(pooled.client.jumps)])


S = TypeVar("S", bound=_Session)


def _send_term(chan: Any) -> None:
    with contextlib.suppress(Exception):
        chan.send_signal("TERM")


async def end_command(chan: Any) -> None:
    """TERM the command of *chan* (an asyncssh channel or process) until the channel closes (at
    most CANCEL_GRACE: a TERM that lands as the command starts is lost, see :mod:`.terminate`),
    then close the channel (closing alone leaves a command that writes nothing running on the host)."""
    try:
        await terminate(functools.partial(_send_term, chan), chan.wait_closed())
    finally:
        chan.close()


async def _start(conn: asyncssh.SSHClientConnection, session: S, command: str, env: Any) -> S:
    """*session* on a new channel of *conn* running *command*.  Cancelled once the channel is
    open (its exec request may have left), the command is TERMed and the channel closed: sshd
    may run it already, and closing the channel alone would leave it running."""
    try:
        await conn.create_session(lambda: session, command, env=env, request_pty=False, encoding=None)
    except asyncio.CancelledError:
        if session.chan is not None:
            await end_command(session.chan)
        raise
    return session


class AsyncSSHBackend(PooledLifecycle[_Pooled], Backend):
    """asyncssh transport: pooled connections, channels per job, SFTP transfers."""

    info = BackendInfo("asyncssh", SUPPORTED_OPTIONS, frozenset({"remote-kill", "stream", "check"}))

    def __init__(self, setup: BackendSetup | None = None) -> None:
        self._pool: ConnectionPool[_Pooled] = ConnectionPool(
            self._connect, lambda p: not p.conn.is_closed(), _close_pooled)
        self._confs = Confs()
        self._keys: KeyCache[list[asyncssh.SSHKeyPair]] = KeyCache(errors.load_keypairs)
        self._known = KnownHostsCache()

    # --- settings ---------------------------------------------------------------
    def check_target(self, target: Target) -> None:
        """Refuse unsupported options and raw ssh arguments, and bad option values."""
        super().check_target(target)
        self._confs.targets.check_in_process(target, self.name)
        self._confs.get(target)  # asyncssh's arguments: an algorithm list asyncssh has nothing of

    # --- cached keys and known_hosts -----------------------------------------
    def _client_keys(self, conf: Conf, notes: list[str]) -> list[asyncssh.SSHKeyPair]:
        """The identity files' keys, each file loaded once per backend; one that cannot be used is
        skipped with its reason in *notes*, as ssh skips it (the agent and password still follow)."""
        target, hc = conf.target, conf.hc
        found = self._keys.usable(identity_paths(hc, target), target.key_passphrase,  # unlocks keys only
                                  None if hc.default_identities else notes)  # ssh's own defaults: silently
        return [key for keys in found for key in keys]

    # --- connections ------------------------------------------------------------
    async def _open(self, conf: Conf, tunnel: asyncssh.SSHClientConnection | None
                    ) -> tuple[asyncssh.SSHClientConnection, _Client]:
        target, hc = conf.target, conf.hc
        notes: list[str] = []
        keys = self._client_keys(conf, notes)
        known = self._known.for_host(target, hc)  # None under policy off
        client = _Client(conf, known)
        kwargs = dict(conf.kwargs)
        if known is not None and "server_host_key_algs" not in kwargs:
            algs = recorded_host_key_algs(known.known_types(hc.host_key_name))
            if algs:
                kwargs["server_host_key_algs"] = algs
        if conf.timeout:
            kwargs["connect_timeout"] = conf.timeout
        methods = ["publickey", *(["password"] if target.password is not None else [])]

        def denied() -> Error:
            return AuthenticationFailed.at(target, permission_denied(hc.user, hc.hostname, methods, notes))

        sock: socket.socket | None = None
        with errors.connecting(target, hc.hostname, conf.timeout, client.host_key_error, denied):
            if tunnel is None and "proxy_command" not in kwargs:  # the shared TCP connect (parallax.ssh.tcp)
                sock = await open_tcp(target, hc, conf.timeout)
            try:
                conn = await asyncssh.connect(
                    hc.hostname, hc.port, tunnel=tunnel, sock=sock, config=None, client_factory=lambda: client,
                    username=hc.user, client_keys=keys, agent_path=conf.agent_path, agent_identities=None,
                    password=client.password_for(target.password), passphrase=target.key_passphrase,
                    known_hosts=None if known is None else _TRUST_NOTHING, host_key_alias=hc.host_key_alias,
                    **kwargs)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        return conn, client

    async def _connect(self, target: Target) -> _Pooled:
        """Connect to *target*, through its ProxyJump hops in order (what the pool calls)."""
        conf = self._confs.get(target)
        jumps: list[asyncssh.SSHClientConnection] = []
        try:
            tunnel = None
            for hop in self._confs.hops(target):  # as ssh -J (parallax.ssh.jump)
                tunnel, _ = await self._open(hop, tunnel)
                jumps.append(tunnel)
            conn, client = await self._open(conf, tunnel)
        except BaseException:
            await _close_all(reversed(jumps))
            raise
        client.jumps = jumps
        return _Pooled(conn, client)

    async def _on_channel(self, target: Target, open_: Callable[[asyncssh.SSHClientConnection], Awaitable[T]],
                          refused: Callable[[Exception], Error]) -> T:
        """Open a channel with *open_* on the pooled connection; a dead pooled one is re-established once."""
        async def operation(pooled: _Pooled) -> T:
            with errors.opening_channel(refused, pooled.conn.is_closed):
                return await open_(pooled.conn)

        with errors.on_connection(target):
            return await self._pool.use(target, operation, errors.is_dead)

    # --- operations ------------------------------------------------------------
    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        """Run the job's command on a channel of the pooled connection."""
        target = job.target
        env = self._confs.get(target).env
        done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        async def open_(conn: asyncssh.SSHClientConnection) -> Any:
            session = await _start(conn, _Session(sink, done), job.command, env)
            return session.chan

        chan = await self._on_channel(target, open_, errors.session_refused(target))
        try:
            if job.stdin:
                chan.write(job.stdin)
            chan.write_eof()
            exc = await asyncio.shield(done)  # cancelling us must not cancel *done*: cleanup waits on it
        except BaseException:
            await end_command(chan)
            raise
        if exc is not None:
            errors.lost(target, exc)
        status = chan.get_exit_status()
        if status is not None and status >= 0:
            return int(status)
        exit_signal = chan.get_exit_signal()
        return _signal_status(exit_signal[0]) if exit_signal else 255

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate (the pooled connection), opening no channel."""
        pooled, _ = await self._pool.acquire(job.target)
        return pooled.client.auth

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        """Start *command* on a channel of the pooled connection, its stdin left open."""
        env = self._confs.get(target).env

        async def open_(conn: asyncssh.SSHClientConnection) -> _StreamSession:
            return await _start(conn, _StreamSession(sink), command, env)

        return await self._on_channel(target, open_, errors.session_refused(target))

    async def _transfer(self, target: Target, walk: Callable[[SFTPFS], Awaitable[None]]) -> None:
        """Run a :mod:`parallax.ssh.transfer` walk over an SFTP session on the pooled connection."""
        async def open_(conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient:
            return await conn.start_sftp_client()

        sftp = await self._on_channel(target, open_, errors.sftp_refused(target))
        try:
            with errors.in_sftp_session(target):
                await walk(SFTPFS(sftp))
        except asyncio.CancelledError:  # briefly: a frozen server never confirms, and a timeout must end on time
            await close_sftp(sftp, CANCEL_GRACE)
            raise
        except BaseException:
            await close_sftp(sftp)
            raise
        await close_sftp(sftp)

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        """Copy local ``src`` to remote ``dst`` as ``scp [-r] -p``."""
        await self._transfer(job.target, job_walk(job))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        """Copy remote ``src`` to local ``dst`` as ``scp [-r] -p``, never writing outside the slurp root."""
        await self._transfer(job.target, job_walk(job))


__all__ = ["SUPPORTED_OPTIONS", "AsyncSSHBackend", "end_command"]
