"""paramiko transports: the connection record the adapter pools, and closing and tuning them.

Closing is careful because paramiko's threads block on a transport: a
shutdown of the socket wakes them at once, and a transport tunnelled through a
jump host is closed before the jump's.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import socket
import threading
from typing import TYPE_CHECKING

import paramiko

from ..jobs import Target

if TYPE_CHECKING:
    from .sshconfig import HostConfig

__all__ = [
    "MAX_JUMPS",
    "SETTLE_TIMEOUT",
    "Conn",
    "alive",
    "apply_algorithms",
    "close_transport",
    "join_all",
    "jump_depth",
    "prefer_key_types",
    "security_defaults",
]

log = logging.getLogger("parallax.paramiko")

MAX_JUMPS = 8  # ProxyJump nesting limit
SETTLE_TIMEOUT = 10.0  # seconds to wait for a worker thread after its transport was closed


@dataclasses.dataclass
class Conn:
    """One authenticated transport to one target."""

    transport: paramiko.Transport
    hc: HostConfig
    target: Target
    key: Target  # pool key
    jump: Conn | None = None
    auth: str = "unknown"  # the authentication method that worked (for check)
    password_ok: bool = True  # False after a changed host key was let through (StrictHostKeyChecking=no)


def close_transport(t: paramiko.Transport) -> None:
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


def jump_depth(t: paramiko.Transport) -> int:
    depth, sock = 0, t.sock
    while isinstance(sock, paramiko.Channel) and depth <= MAX_JUMPS:
        depth += 1
        sock = sock.get_transport().sock
    return depth


def join_all(transports: list[paramiko.Transport]) -> None:
    for t in transports:
        if t.is_alive() and t is not threading.current_thread():
            t.join(SETTLE_TIMEOUT)


def alive(conn: Conn) -> bool:
    """A pooled connection is usable while its transport, and its jump host's, are active."""
    return conn.transport.is_active() and (conn.jump is None or conn.jump.transport.is_active())


_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _gcm_first(ciphers: tuple[str, ...]) -> tuple[str, ...]:
    first = tuple(c for c in _GCM if c in ciphers)
    return first + tuple(c for c in ciphers if c not in first)


@functools.cache
def security_defaults() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """``(offered by default, supported)`` per attribute of ``Transport.get_security_options()``
    (``ciphers``, ``kex``, ``digests``, ``key_types``), read once from a transport that never starts.

    The default ciphers put AES-GCM first: one AEAD call per packet instead of
    AES-CTR plus an HMAC; every cipher paramiko offers stays offered.
    """
    a, b = socket.socketpair()
    try:
        opts = paramiko.Transport(a).get_security_options()
        found = {attr: tuple(getattr(opts, attr)) for attr in ("ciphers", "kex", "digests", "key_types")}
    finally:
        a.close()
        b.close()
    return {attr: (_gcm_first(names) if attr == "ciphers" else names, names) for attr, names in found.items()}


def apply_algorithms(t: paramiko.Transport, hc: HostConfig) -> None:
    """Offer what *hc*'s Ciphers/KexAlgorithms/MACs/HostKeyAlgorithms chose, else paramiko's
    defaults with AES-GCM first (:func:`security_defaults`)."""
    opts = t.get_security_options()
    chosen = dict(hc.algorithms)
    if "ciphers" not in chosen:
        chosen["ciphers"] = security_defaults()["ciphers"][0]
    for attr, names in chosen.items():
        setattr(opts, attr, names)


def prefer_key_types(t: paramiko.Transport, known_types: list[str]) -> None:
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
