"""One libssh2 connection: TCP (or a ProxyJump tunnel), handshake, host key, authentication, keepalive, close.

Everything that is SSH semantics comes from the shared layer: the target's
:class:`~parallax.backends.libssh2_options.Conf` (the shared resolver's
``HostConfig``), the host-key verdict of :mod:`parallax.ssh.hostkeys` under
the policy of :mod:`parallax.ssh.policy`, judged once for every backend by
:mod:`parallax.ssh.hostkey_check`, and the TCP connect of
:mod:`parallax.ssh.tcp`.  libssh2 hands over the server's host key blob
(``session.hostkey()``) after the key exchange; authentication starts only
once the key was accepted.

A ProxyJump hop's connection carries the next one: a ``direct-tcpip``
channel on the hop, bridged to a local ``socketpair`` whose other end the
next libssh2 session handshakes on (libssh2 only talks to a socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from dataclasses import dataclass, field

from ssh2 import exceptions as x
from ssh2.session import (
    LIBSSH2_FLAG_COMPRESS,
    LIBSSH2_METHOD_CRYPT_CS,
    LIBSSH2_METHOD_CRYPT_SC,
    LIBSSH2_METHOD_HOSTKEY,
    LIBSSH2_METHOD_KEX,
    LIBSSH2_METHOD_MAC_CS,
    LIBSSH2_METHOD_MAC_SC,
    MethodType,
    Session,
)

from ..errors import AuthenticationFailed, Error
from ..ssh.hostconfig import HostConfig
from ..ssh.hostkey_check import check_offered_blob
from ..ssh.hostkeys import KnownHosts
from ..ssh.keys import KeyUnusable, is_encrypted, permission_denied
from ..ssh.targets import identity_paths
from ..ssh.tcp import open_tcp
from ..timeouts import within
from . import libssh2_errors as errors
from .grace import CLOSE_GRACE
from .libssh2_io import EAGAIN, Wire
from .libssh2_options import FAST_CIPHERS, FAST_MACS, Conf, merge_algorithms, recorded_host_key_algs

__all__ = ["CLOSE_GRACE", "Connection", "open_connection"]


@dataclass(eq=False)
class Connection:
    """An authenticated libssh2 session and what it needs kept: its ProxyJump hops and helper tasks."""

    wire: Wire
    auth: str  # the method that authenticated: publickey, password, keyboard-interactive
    hops: list[Connection] = field(default_factory=list)  # first hop first; closed after this one
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # keepalive, tunnel pump

    @property
    def alive(self) -> bool:
        """Whether the connection may still carry channels."""
        return not self.wire.closed

    async def close(self) -> None:
        """Disconnect (briefly), close the socket, stop helper tasks, then close the hops (idempotent)."""
        wire = self.wire
        if not wire.closed:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await within(wire.call(wire.session.disconnect), CLOSE_GRACE)
            wire.close()
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for hop in reversed(self.hops):
            await hop.close()


async def _tunnel(hop: Connection, conf: Conf) -> tuple[socket.socket, asyncio.Task[None]]:
    """A socket reaching the target through *hop* (a direct-tcpip channel) and the task bridging them."""
    wire, hc = hop.wire, conf.hc
    chan = await wire.call(wire.session.direct_tcpip_ex, hc.hostname, hc.port, "127.0.0.1", 0)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    return theirs, asyncio.get_running_loop().create_task(_pump(wire, chan, ours))


async def _pump(wire: Wire, chan: object, sock: socket.socket) -> None:
    """Copy bytes both ways between channel *chan* of *wire* and local socket *sock* until both end."""
    loop = asyncio.get_running_loop()

    async def outward() -> None:
        while True:
            data = await loop.sock_recv(sock, 65536)
            if not data:
                await wire.call(chan.send_eof)  # type: ignore[attr-defined]
                return
            await write_all(wire, chan, data)

    async def inward() -> None:
        while True:
            rc, data = await wire.call(chan.read, 65536)  # type: ignore[attr-defined]
            if rc <= 0 and not data:
                sock.shutdown(socket.SHUT_WR)
                return
            await loop.sock_sendall(sock, data)

    try:
        await asyncio.gather(outward(), inward())
    except (x.SSH2Error, OSError):
        pass  # either side gone: the session over the tunnel reports its own loss
    finally:
        sock.close()
        with contextlib.suppress(Exception):
            chan.close()  # type: ignore[attr-defined]


async def write_all(wire: Wire, chan: object, data: bytes) -> None:
    """Write all of *data* to channel *chan* (libssh2 takes part of it when the window is full)."""
    view = memoryview(data)
    while view:
        rc, written = chan.write(bytes(view))  # type: ignore[attr-defined]
        view = view[written:]
        if rc == EAGAIN and view:
            await wire.wait()


#: libssh2's KEX pseudo-algorithms (extension negotiation, strict KEX): kept whatever KexAlgorithms says.
_KEX_EXTENSIONS = ("ext-info-c", "kex-strict-c-v00@openssh.com")


def _wanted(kex: str | None, ciphers: str | None,
            macs: str | None) -> list[tuple[MethodType, str, str | None, tuple[str, ...]]]:
    return [(LIBSSH2_METHOD_KEX, "KexAlgorithms", kex, ()),
            (LIBSSH2_METHOD_CRYPT_CS, "Ciphers", ciphers, FAST_CIPHERS),
            (LIBSSH2_METHOD_CRYPT_SC, "Ciphers", ciphers, FAST_CIPHERS),
            (LIBSSH2_METHOD_MAC_CS, "MACs", macs, FAST_MACS),
            (LIBSSH2_METHOD_MAC_SC, "MACs", macs, FAST_MACS)]


@functools.lru_cache(maxsize=256)
def _method_prefs(kex: str | None, ciphers: str | None, macs: str | None) -> tuple[tuple[MethodType, str], ...]:
    """libssh2's preference strings for these KexAlgorithms/Ciphers/MACs specs: the same for every
    host that shares them, so worked out once, not once per connection (``AlgorithmError`` when
    a spec leaves nothing libssh2 has)."""
    session, prefs = Session(), []
    for method, option, spec, first in _wanted(kex, ciphers, macs):
        pref = merge_algorithms(option, spec, session.supported_algs(method), first)
        if pref and method is LIBSSH2_METHOD_KEX:
            pref = ",".join([pref, *(e for e in _KEX_EXTENSIONS if e not in pref.split(","))])
        if pref:
            prefs.append((method, pref))
    return tuple(prefs)


def check_algorithms(hc: HostConfig) -> None:
    """``AlgorithmError`` if an algorithm option of *hc* leaves nothing libssh2 can offer (before connecting)."""
    _method_prefs(hc.kex_algorithms, hc.ciphers, hc.macs)
    merge_algorithms("HostKeyAlgorithms", hc.host_key_algorithms, Session().supported_algs(LIBSSH2_METHOD_HOSTKEY))


def _prefer(session: Session, conf: Conf, known: KnownHosts | None) -> None:
    """Tell libssh2 the algorithms the config asks for (names libssh2 lacks dropped)."""
    hc = conf.hc
    for method, chosen in _method_prefs(hc.kex_algorithms, hc.ciphers, hc.macs):
        session.method_pref(method, chosen)
    supported = session.supported_algs(LIBSSH2_METHOD_HOSTKEY)
    pref = merge_algorithms("HostKeyAlgorithms", hc.host_key_algorithms, supported)
    if pref is None and known is not None:
        pref = recorded_host_key_algs(known.known_types(hc.host_key_name), supported)
    if pref:
        session.method_pref(LIBSSH2_METHOD_HOSTKEY, pref)
    if hc.compression:
        session.flag(LIBSSH2_FLAG_COMPRESS)


def _judge_host_key(session: Session, conf: Conf, known: KnownHosts) -> bool:
    """The shared check of the server's key (:mod:`parallax.ssh.hostkey_check`); whether password
    authentication stays allowed.  Raises the refusal."""
    blob, _ = session.hostkey()
    return not check_offered_blob(conf.target, conf.hc, known, blob).disable_password


async def _agent_auth(wire: Wire, user: str, path: str, reasons: list[str]) -> bool:
    """Offer the keys of the agent at socket *path* (its local socket is quick; the server's
    answers are waited for like every libssh2 call)."""
    session = wire.session
    try:
        agent = session.agent_init()
        agent.set_identity_path(path)
        agent.connect()
    except (x.SSH2Error, OSError, MemoryError) as e:
        reasons.append(f"agent {path} not usable ({errors.detail(e, session)})")
        return False
    try:
        agent.list_identities()
        for identity in agent.get_identities():
            try:
                await wire.call(agent.userauth, user, identity)
                return True
            except x.AuthenticationError:
                continue
        reasons.append("no agent key was accepted")
        return False
    except x.AgentError as e:
        reasons.append(f"agent {path}: {errors.detail(e, session)}")
        return False
    finally:
        with contextlib.suppress(Exception):
            agent.disconnect()


async def _keys(wire: Wire, conf: Conf, reasons: list[str]) -> bool:
    """publickey: the agent's keys (unless IdentitiesOnly), then each identity file, as OpenSSH orders them."""
    target, hc, session = conf.target, conf.hc, wire.session
    passphrase = target.key_passphrase  # unlocks keys only; never sent as a password
    agent = None if hc.identities_only else hc.agent_socket()
    if agent and await _agent_auth(wire, hc.user, agent, reasons):
        return True
    for path in identity_paths(hc, target):
        encrypted = is_encrypted(path)
        if passphrase is None and encrypted:
            reasons.append(str(KeyUnusable.encrypted(path)))
            continue
        try:
            await wire.call(session.userauth_publickey_fromfile, hc.user, path, passphrase or "")
            return True
        except (x.FileError, x.KeyfileAuthFailedError) as e:
            unusable = (KeyUnusable.wrong_passphrase(path) if passphrase is not None and encrypted
                        else KeyUnusable.unreadable(path, errors.detail(e, session)))
            reasons.append(str(unusable))
        except x.AuthenticationError:
            pass  # refused: the server's answer is the final "Permission denied"
    return False


#: OpenSSH's default PreferredAuthentications, less what parallax never does (gssapi, hostbased).
_DEFAULT_ORDER = ("publickey", "keyboard-interactive", "password")


async def _authenticate(wire: Wire, conf: Conf, password_ok: bool) -> str:
    """The methods in PreferredAuthentications order (OpenSSH's by default); returns the one that worked.
    The password is tried once per method (a fixed password gains nothing from more prompts);
    NumberOfPasswordPrompts 0 means never."""
    target, hc, session = conf.target, conf.hc, wire.session
    identity_paths(hc, target)  # a missing ssh_key= is an AuthenticationFailed before anything is tried
    reasons: list[str] = []
    password = target.password if password_ok and hc.number_of_password_prompts > 0 else None
    enabled = {"publickey": hc.pubkey_authentication, "password": hc.password_authentication,
               "keyboard-interactive": hc.kbd_interactive_authentication}
    for method in hc.preferred_authentications or _DEFAULT_ORDER:
        if not enabled.get(method):
            continue
        if method == "publickey":
            if await _keys(wire, conf, reasons):
                return method
        elif password is not None:
            call = session.userauth_password if method == "password" else session.userauth_keyboardinteractive
            try:
                await wire.call(call, hc.user, password)
                return method
            except (x.AuthenticationError, x.MethodNoneError, x.MethodNotSupported):
                pass  # refused: the final "Permission denied" says so
    methods = ["publickey", *(["password"] if password is not None else [])]
    raise AuthenticationFailed.at(target, permission_denied(hc.user, hc.hostname, methods, reasons))


async def _keepalive(wire: Wire, interval: int, count_max: int) -> None:
    """ServerAliveInterval/CountMax: a keepalive every *interval* seconds; the connection counts as
    dead (closed) after *count_max* intervals in a row without a byte from the server."""
    missed = 0
    while not wire.closed:
        await asyncio.sleep(interval)
        try:
            await wire.call(wire.session.keepalive_send)
        except (x.SSH2Error, OSError):
            wire.close()
            return
        if await wire.heard_within(interval):
            missed = 0
        else:
            missed += 1
            if count_max and missed >= count_max:
                wire.close()
                return


async def open_connection(conf: Conf, known: KnownHosts | None, via: Connection | None) -> Connection:
    """Connect to *conf*'s target (through hop *via* when given), judge the host key against
    *known* (``None``: policy off) and authenticate."""
    loop = asyncio.get_running_loop()
    target, hc = conf.target, conf.hc
    session = Session()
    tasks: list[asyncio.Task[None]] = []
    sock: socket.socket | None = None
    wire: Wire | None = None
    try:
        with errors.connecting(target, hc.hostname, conf.timeout, session):
            if via is None:
                sock = await open_tcp(target, hc, conf.timeout)
            else:
                sock, pump = await _tunnel(via, conf)
                tasks.append(pump)
            session.set_blocking(False)
            _prefer(session, conf, known)
            wire = Wire(sock, session, loop)
            await wire.call(session.handshake, sock)
            password_ok = True if known is None else _judge_host_key(session, conf, known)
            auth = await _authenticate(wire, conf, password_ok)
    except BaseException as e:
        if wire is not None:
            wire.close()
        elif sock is not None:
            sock.close()
        for task in tasks:
            task.cancel()
        if isinstance(e, Error) or not isinstance(e, Exception):
            raise
        raise errors.lost(target, e) from e  # pragma: no cover - connecting() translated it
    if hc.server_alive_interval:
        session.keepalive_config(True, hc.server_alive_interval)
        tasks.append(loop.create_task(_keepalive(wire, hc.server_alive_interval, hc.server_alive_count_max)))
    return Connection(wire, auth, tasks=tasks)


__all__ += ["write_all"]
