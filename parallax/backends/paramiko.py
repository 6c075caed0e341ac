"""The paramiko backend: SSH in-process, one pooled transport per target.

Blocking paramiko calls (handshake, authentication, channel and SFTP
requests) run in a thread pool owned by the backend; the TCP connect and the
streaming of a command's output happen on the event loop (output is read
through pipes that paramiko's channel buffers signal), so the loop never
blocks.  A cancelled job closes its channel and transport, which unblocks any
thread working for it, and waits for that thread before re-raising.

Keys, known_hosts files and ssh config files are read once per backend
instance and cached by path.  Option precedence follows the openssh backend
(see :mod:`parallax.backends.sshconfig`).

Known differences from OpenSSH:

* the system-wide ``/etc/ssh/ssh_config`` is not read (only the user's file);
* ``StrictHostKeyChecking=no`` behaves like ``host_key_policy="off"``
  (accept, record nothing) instead of recording new keys;
* ``@cert-authority``/``@revoked`` known_hosts lines and host certificates
  are ignored;
* a ProxyJump hop inherits the target's key, password, timeouts and host key
  settings (``ssh -J`` would only use the config file for the hop);
* environment variables (``env``, ``SetEnv``, ``SendEnv``) are sent as
  ``env`` requests without a reply: a server that refuses them (``AcceptEnv``)
  silently drops them, exactly as with OpenSSH;
* a remote command killed by a signal yields status 255 (paramiko ignores
  ``exit-signal``), as ``ssh`` itself reports.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import functools
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import paramiko

from ..errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectionLost,
    Error,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    TransportError,
    UnsupportedOption,
)
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh import transfer
from ..ssh.pool import ConnectionPool
from .base import Backend, OutputSink, Stream, StreamSink
from ..ssh.hostkeys import HostCertificateUnsupported, HostKey, HostKeyStatus, KnownHosts, decide
from ..ssh.policy import HostKeyPolicy
from .hostkeys import KnownHostsCache, record_host_key, unrecordable
from .paramiko_channel import ChannelReader, ChannelStream, end_channel, feed_stdin
from .paramiko_errors import map_error, why
from .paramiko_sftp import SFTPFS, open_sftp
from .paramiko_signal import send_signal
from .sshconfig import (
    DEFAULT_IDENTITIES,
    SUPPORTED_OPTIONS,
    ConfigCache,
    HostConfig,
    logger_for,
)

log = logging.getLogger("parallax.paramiko")

CHUNK = 256 * 1024  # bytes read from a channel buffer at once
MAX_JUMPS = 8  # ProxyJump nesting limit (also catches loops)
SIGNAL_GRACE = 0.5  # seconds a cancelled command gets to die of the TERM sent to it
TUNNEL_TIMEOUT = 30.0  # seconds to open a direct-tcpip channel when no ConnectTimeout is set
# Bytes a command may send ahead of what parallax has read (paramiko's default is 2 MiB): with
# output going to files, memory grows with limit x this window, not with the output's size.
CHANNEL_WINDOW = 256 * 1024
SETTLE_TIMEOUT = 10.0  # seconds to wait for a worker thread after its transport was closed
DEFAULT_WORKERS = 64


# --------------------------------------------------------------------------
# credentials and host keys, loaded once per backend


class _KeyStore:
    """Private keys by path (and passphrase for encrypted ones), each file read at most once."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str | None], tuple[paramiko.PKey | None, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, path: str, passphrase: str | None) -> tuple[paramiko.PKey | None, str | None]:
        """``(key, None)`` or ``(None, why it could not be used)``; *passphrase* only unlocks encrypted keys."""
        path = os.path.expanduser(path)
        with self._lock:
            found = self._keys.get((path, None))
            if found is None:
                found = self._keys[(path, None)] = self._load(path, None)
            if found[0] is not None or found[1] != _ENCRYPTED or passphrase is None:
                return found[0], (found[1] if found[1] != _ENCRYPTED else
                                  f"identity file {path} is encrypted and no passphrase was given")
            unlocked = self._keys.get((path, passphrase))
            if unlocked is None:
                unlocked = self._keys[(path, passphrase)] = self._load(path, passphrase)
            return unlocked

    @staticmethod
    def _load(path: str, passphrase: str | None) -> tuple[paramiko.PKey | None, str | None]:
        try:
            # cryptography wants bytes; paramiko's annotation says str
            password = passphrase.encode() if passphrase is not None else None
            return paramiko.PKey.from_path(path, password), None  # type: ignore[arg-type]
        except FileNotFoundError:
            return None, f"identity file {path} not found"
        except (TypeError, paramiko.PasswordRequiredException) as e:
            encrypted = "password" in str(e).lower() or isinstance(e, paramiko.PasswordRequiredException)
            if passphrase is None and encrypted:
                return None, _ENCRYPTED
            return None, f"identity file {path} could not be loaded: {e}"
        except ValueError as e:
            if passphrase is not None:
                return None, f"identity file {path}: wrong passphrase (or not a private key)"
            return None, f"identity file {path} could not be loaded: {e}"
        except Exception as e:  # UnknownKeyType, OSError, SSHException...
            return None, f"identity file {path} could not be loaded: {e}"


_ENCRYPTED = "encrypted"


# --------------------------------------------------------------------------
# connections


@dataclasses.dataclass
class _Conn:
    """One authenticated transport to one target."""

    transport: paramiko.Transport
    hc: HostConfig
    target: Target
    key: Target  # pool key
    jump: _Conn | None = None
    auth: str = "unknown"  # the authentication method that worked (for check)
    password_ok: bool = True  # False after a changed host key was let through (StrictHostKeyChecking=no)


class ParamikoBackend(Backend):
    """SSH through paramiko: pooled transports, blocking calls in a thread pool."""

    name = "paramiko"
    capabilities = frozenset({"remote-kill", "stream", "check"})
    supported_options = SUPPORTED_OPTIONS

    def __init__(self, settings: object = None) -> None:
        limit = getattr(settings, "limit", None)
        self._workers = max(8, limit + 8) if isinstance(limit, int) and limit > 0 else DEFAULT_WORKERS
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._configs = ConfigCache()
        self._keys = _KeyStore()
        self._known = KnownHostsCache()
        self._pool: ConnectionPool[_Conn] = ConnectionPool(self._connect, _alive, self._release)
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

    async def _blocking(self, fn: Callable[..., Any], *args: Any, abort: Callable[[], None] | None = None) -> Any:
        """Run *fn* in the pool; on cancellation call *abort* and wait for the thread."""
        cf = self._submit(fn, *args)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            if abort is not None:
                abort()
            await _settle(cf)
            raise

    # --- connecting ----------------------------------------------------
    async def _connect(self, target: Target) -> _Conn:
        """A new authenticated transport to *target* (through its ProxyJump hops, each pooled too)."""
        hc = self._configs.resolve(target)
        jump = None
        if hc.proxy_jump:
            self._configs.check_jumps(target)  # a loop would wait on itself
            jump, _ = await self._pool.acquire(self._configs.jump_target(target, hc))
            sock: socket.socket | paramiko.Channel = await self._tunnel(jump, hc, target)
        else:
            sock = await self._tcp(hc, target)
        try:
            transport = paramiko.Transport(sock)
        except BaseException as e:
            sock.close()
            raise map_error(e, target) from None
        self._transports.add(transport)
        _prefer_gcm(transport)
        conn = _Conn(transport, hc, target, target.connection, jump)
        try:
            await self._blocking(self._handshake, conn, abort=lambda: _close_transport(transport))
        except BaseException as e:
            _close_transport(transport)
            if isinstance(e, Exception):
                raise map_error(e, target, via=hc.proxy_jump) from None
            raise
        return conn

    async def _tcp(self, hc: HostConfig, target: Target) -> socket.socket:
        loop = asyncio.get_running_loop()
        try:
            infos = socket.getaddrinfo(hc.hostname, hc.port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        except socket.gaierror:
            try:
                infos = await self._blocking(socket.getaddrinfo, hc.hostname, hc.port, 0, socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise NameResolutionFailed.at(target, why(e)) from None
        last: OSError | None = None
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(sock, addr), hc.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except asyncio.TimeoutError:
                sock.close()
                raise Timeout.at(target, f"connect to {addr[0]} port {hc.port} "
                              f"took longer than {hc.connect_timeout:g} s") from None
            except OSError as e:
                sock.close()
                last = e
            except BaseException:
                sock.close()
                raise
        # asyncio's text is "Connect call failed (...)"; say what OpenSSH says ("Connection refused").
        detail = (os.strerror(last.errno) if last.errno else why(last)) if last else "no address"
        raise ConnectionFailed.at(target, f"connect to {hc.hostname} port {hc.port}: {detail}")

    async def _tunnel(self, jump: _Conn, hc: HostConfig, target: Target) -> paramiko.Channel:
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

    def _handshake(self, conn: _Conn) -> None:
        """SSH handshake, host key check and authentication (in a worker thread)."""
        t, hc = conn.transport, conn.hc
        t.set_log_channel(logger_for(hc.log_level))
        if hc.compression:
            t.use_compression(True)
        if hc.connect_timeout:
            t.banner_timeout = t.auth_timeout = hc.connect_timeout
        known: KnownHosts | None = None
        if hc.policy != "off":
            known = self._known.load(hc.known_hosts + hc.global_known_hosts)
            _prefer_key_types(t, list(known.known_types(hc.host_key_name)))
        t.start_client(timeout=hc.connect_timeout)
        if not t.initial_kex_done:  # start_client returns quietly when its timeout runs out
            raise Timeout.at(conn.target, f"no SSH handshake within {hc.connect_timeout:g} s")
        self._check_host_key(conn, known)
        if hc.keepalive:
            t.set_keepalive(hc.keepalive)
        self._authenticate(conn)

    def _check_host_key(self, conn: _Conn, known: KnownHosts | None) -> None:
        """The shared policy table (:mod:`parallax.ssh.policy`) applied to the shared lookup."""
        hc, target = conn.hc, conn.target
        if known is None:  # policy off
            return
        key = conn.transport.get_remote_server_key()
        offered = HostKey.from_parts(key.get_name(), key.get_base64())
        try:
            verdict = known.check(hc.host_key_name, offered)
        except HostCertificateUnsupported as e:
            raise HostKeyError.at(target, str(e)) from None
        decision = decide(HostKeyPolicy(hc.policy), verdict)
        if decision.record and not hc.known_hosts:
            decision = dataclasses.replace(decision, accept=False)  # nowhere to pin it: not accepted
        if decision.disable_password:  # OpenSSH's StrictHostKeyChecking=no on a changed key
            conn.password_ok = False
            log.info("%s: host key changed (%s %s); StrictHostKeyChecking=no lets it through without password "
                     "authentication", target.label, key.get_name(), key.fingerprint)
        if decision.record:
            try:
                record_host_key(hc.known_hosts[0], hc.host_key_name, key.get_name(), key.get_base64())
            except OSError as e:  # a key accept-new cannot pin is not accepted
                raise unrecordable(hc.known_hosts[0], target, e) from None
        if decision.accept:
            return
        if verdict.status is HostKeyStatus.REVOKED:
            raise HostKeyError.at(target, f"{hc.host_key_name} offered a revoked {key.get_name()} key "
                                          f"({key.fingerprint})")
        if verdict.status is HostKeyStatus.CHANGED and verdict.entry is not None:
            old = verdict.entry
            raise HostKeyChanged.at(target, f"{hc.host_key_name} offered {key.get_name()} {key.fingerprint}, "
                                            f"{old.file} line {old.line} has {old.key.type} "
                                            f"{_fingerprint(old.key.blob)}")
        files = ", ".join(hc.known_hosts + hc.global_known_hosts) or "no known_hosts file"
        raise HostKeyUnknown.at(target, f"no {key.get_name()} key for {hc.host_key_name} in {files} "
                                        f"(fingerprint {key.fingerprint})")

    def _authenticate(self, conn: _Conn) -> None:
        """Keys (explicit, agent, default files), then the password, like OpenSSH."""
        t, hc, target = conn.transport, conn.hc, conn.target
        user = hc.user
        notes: list[str] = []
        allowed: list[str] | None = None
        offered = 0

        def offer(key: paramiko.PKey) -> bool:
            nonlocal allowed, offered
            offered += 1
            try:
                t.auth_publickey(user, key)
            except paramiko.BadAuthenticationType as e:
                allowed = list(e.allowed_types)
            except paramiko.AuthenticationException as e:
                if "timeout" in str(e).lower():
                    raise
            except (paramiko.SSHException, EOFError, OSError):
                if t.is_active():
                    raise
            conn.auth = "publickey"
            return t.is_authenticated()

        def publickey_allowed() -> bool:
            return t.is_active() and (allowed is None or "publickey" in allowed)

        def offer_files(paths: Iterable[str]) -> bool:
            for path in paths:
                if not publickey_allowed():
                    return False
                key, why = self._keys.get(path, target.key_passphrase)  # unlocks keys only
                if key is None:
                    notes.append(why or path)
                elif offer(key):
                    return True
            return False

        if hc.pubkey:
            if offer_files(hc.identity_files):
                return
            if hc.use_agent and publickey_allowed():
                try:
                    agent = paramiko.Agent()
                except Exception as e:  # a stale SSH_AUTH_SOCK must not stop other methods
                    notes.append(f"ssh agent unavailable: {why(e)}")
                    agent = None
                try:
                    for key in agent.get_keys() if agent is not None else ():
                        if not publickey_allowed():
                            break
                        if offer(key):
                            return
                finally:
                    if agent is not None:
                        agent.close()
            if hc.default_identities:  # OpenSSH's defaults, those that exist
                defaults = (os.path.join(self._configs.home, ".ssh", name) for name in DEFAULT_IDENTITIES)
                if offer_files(p for p in defaults if os.path.isfile(p)):
                    return
        if target.password is not None and hc.password_auth and conn.password_ok and t.is_active():
            try:
                t.auth_password(user, target.password)
                conn.auth = "password"
            except paramiko.BadAuthenticationType as e:
                allowed = list(e.allowed_types)
                if "keyboard-interactive" in allowed:
                    try:
                        secret = target.password
                        t.auth_interactive(user, lambda title, instr, prompts: [secret] * len(prompts))
                        conn.auth = "keyboard-interactive"
                    except paramiko.AuthenticationException:
                        pass
            except paramiko.AuthenticationException:
                pass
            if t.is_authenticated():
                return
        if not t.is_active():
            notes.append("the server closed the connection (too many authentication failures?)")
        elif not offered and target.password is None:
            notes.append("no identity file, agent key or password to offer")
        methods = ",".join(allowed) if allowed else "publickey" + (",password" if target.password else "")
        detail = f"{user}@{hc.hostname}: Permission denied ({methods})"
        if notes:
            detail += "; " + "; ".join(notes)
        raise AuthenticationFailed.at(target, detail)

    def _discard(self, conn: _Conn) -> None:
        """Close *conn*'s transport (the pool then sees it dead and replaces it on next use)."""
        _close_transport(conn.transport)
        if conn.transport in self._transports:
            self._transports.discard(conn.transport)
            self._submit(_join_all, [conn.transport])

    async def _release(self, conn: _Conn) -> None:
        self._discard(conn)

    async def _session(self, target: Target, opener: Callable[[_Conn], Any]) -> tuple[_Conn, Any]:
        """Connect (or reuse) and run *opener* in a thread; a dead pooled transport is replaced once."""

        async def operation(conn: _Conn) -> tuple[_Conn, Any]:
            return conn, await self._blocking(opener, conn, abort=functools.partial(self._discard, conn))

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
    @staticmethod
    def _open_exec(conn: _Conn, command: str) -> paramiko.Channel:
        chan = conn.transport.open_session(window_size=CHANNEL_WINDOW)
        try:
            if conn.hc.env:
                chan.update_environment(conn.hc.env)
            chan.exec_command(command)
        except BaseException:
            chan.close()
            raise
        return chan

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        target = job.target
        conn, chan = await self._session(target, lambda c: self._open_exec(c, job.command))
        reader = ChannelReader(chan, sink, asyncio.get_running_loop())
        feeder: concurrent.futures.Future[Any] | None = None
        try:
            if job.stdin:
                feeder = self._submit(feed_stdin, chan, job.stdin)
            else:
                feed_stdin(chan, b"")
            await reader.done
            if not chan.exit_status_ready():
                await self._blocking(chan.status_event.wait, abort=lambda: end_channel(chan))
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
        """Ask sshd to send TERM to the cancelled command, and give it a moment to land
        (the short wait lets the request reach the server before the connection is torn down)."""
        if chan.closed or chan.exit_status_ready():
            return
        if send_signal(chan, "TERM"):
            cf = self._submit(chan.status_event.wait, SIGNAL_GRACE)
            await _settle(cf)

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate (the pooled transport), opening no channel."""
        conn, _ = await self._pool.acquire(job.target)
        return conn.auth

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        conn, chan = await self._session(target, lambda c: self._open_exec(c, command))
        return ChannelStream(chan, conn.transport, sink, asyncio.get_running_loop())

    # --- file transfer -------------------------------------------------
    async def put(self, job: PutJob, sink: OutputSink) -> None:
        await self._sftp(job.target, lambda fs: transfer.put(
            fs, job.src, transfer.sftp_path(job.dst), target=job.target, recursive=job.recursive))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        await self._sftp(job.target, lambda fs: transfer.get(
            fs, transfer.sftp_path(job.src), job.dst, target=job.target, root=transfer.slurp_root(job),
            recursive=job.recursive, label=job.src))

    async def _sftp(self, target: Target, walk: Callable[[SFTPFS], Awaitable[None]]) -> None:
        """Run a :mod:`parallax.ssh.transfer` walk over an SFTP session on the pooled transport;
        each SFTP call is one blocking call in the pool, a dropped transport ``ConnectionFailed``."""
        conn, sftp = await self._session(target, lambda c: open_sftp(c.transport, c.target))
        # cancelled: closing the SFTP channel wakes the thread; the connection stays (a session's other work)
        fs = SFTPFS(sftp, lambda fn, *args: self._blocking(fn, *args, abort=sftp.close))
        try:
            await walk(fs)
        except TransferFailed as e:
            if not conn.transport.is_active():
                raise ConnectionFailed(f"Connection to {target.label} lost during the transfer: "
                                       f"{e.msg.split(': ', 1)[-1]}") from None
            raise
        except (paramiko.SSHException, EOFError, OSError) as e:
            if not conn.transport.is_active():
                raise ConnectionFailed(f"Connection to {target.label} lost during the transfer: {why(e)}") from None
            raise TransferFailed.at(target, why(e)) from None
        finally:
            sftp.close()

    # --- lifecycle -----------------------------------------------------
    async def disconnect(self, target: Target) -> None:
        await self._pool.discard(target)

    async def close(self) -> None:
        pool, self._pool = self._pool, ConnectionPool(self._connect, _alive, self._release)
        transports = list(self._transports)
        self._transports.clear()
        # Innermost first: a transport tunnelled through a jump host says
        # goodbye over the jump's transport, which must still be open.
        levels: dict[int, list[paramiko.Transport]] = {}
        for t in transports:
            levels.setdefault(_jump_depth(t), []).append(t)
        for depth in sorted(levels, reverse=True):
            for t in levels[depth]:
                _close_transport(t)
            await self._blocking(_join_all, levels[depth])
        await pool.close()  # pending connects cancelled; established transports were closed above
        for cf in list(self._futures):
            await _settle(cf)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


# --------------------------------------------------------------------------
# helpers run in worker threads


async def _settle(cf: concurrent.futures.Future[Any]) -> None:
    """Wait (bounded) for a worker thread to finish after its transport was closed."""
    if not cf.done():
        wrapped = asyncio.wrap_future(cf)
        await asyncio.wait({wrapped}, timeout=SETTLE_TIMEOUT)
        if wrapped.done() and not wrapped.cancelled():
            wrapped.exception()  # retrieved: its failure was expected after the abort


def _close_transport(t: paramiko.Transport) -> None:
    """Close *t* so that every thread blocked on it wakes up promptly."""
    sock = t.sock
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the transport thread's recv at once
        except OSError:
            pass
    try:
        t.close()
        # A transport closed mid-handshake leaves the packetizer's handshake-timeout
        # threading.Timer running until it fires (connect_timeout later): cancel it.
        t.packetizer.complete_handshake()
    except Exception:  # closing a half-built transport must not mask the real error
        log.debug("closing transport failed", exc_info=True)


def _jump_depth(t: paramiko.Transport) -> int:
    depth, sock = 0, t.sock
    while isinstance(sock, paramiko.Channel) and depth <= MAX_JUMPS:
        depth += 1
        sock = sock.get_transport().sock
    return depth


def _join_all(transports: list[paramiko.Transport]) -> None:
    for t in transports:
        if t.is_alive() and t is not threading.current_thread():
            t.join(SETTLE_TIMEOUT)


def _alive(conn: _Conn) -> bool:
    """A pooled connection is usable while its transport, and its jump host's, are active."""
    return conn.transport.is_active() and (conn.jump is None or conn.jump.transport.is_active())


def _fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _prefer_gcm(t: paramiko.Transport) -> None:
    """Offer AES-GCM first: one AEAD call per packet instead of AES-CTR plus an HMAC.

    Every cipher paramiko knows stays offered, so no server is refused.
    """
    opts = t.get_security_options()
    available = list(opts.ciphers)
    first = [c for c in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if c in available]
    if first:
        opts.ciphers = first + [c for c in available if c not in first]


def _prefer_key_types(t: paramiko.Transport, known_types: list[str]) -> None:
    """Ask for a host key type already in known_hosts first (as OpenSSH does)."""
    if not known_types:
        return
    opts = t.get_security_options()
    available = list(opts.key_types)
    wanted: list[str] = []
    for kt in known_types:
        for name in (["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if kt == "ssh-rsa" else [kt]):
            if name in available and name not in wanted:
                wanted.append(name)
    if wanted:
        opts.key_types = wanted + [k for k in available if k not in wanted]


__all__ = ["ParamikoBackend"]
