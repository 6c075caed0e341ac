"""asyncssh's exceptions as parallax's error classes: the one translator at the boundary.

As httpx's ``map_httpcore_exceptions``: the backend runs asyncssh calls inside
these context managers, and only the shared classes of :mod:`parallax.errors`
come out, each in its shared message shape (:meth:`~parallax.errors.Error.at`).
A parallax error raised inside (a host-key refusal, an unreadable key) and
cancellation pass through unchanged.

* :func:`connecting`: a connect and handshake (refused, unreachable, DNS,
  timeout, key exchange, authentication, host key);
* :func:`load_keypairs`: reading one identity file;
* :func:`opening_channel` inside a pooled operation and :func:`on_connection`
  around it: a channel refused on a live connection is the operation's own
  failure, a dead connection (:func:`is_dead`: the pool reconnects once) is
  ``ConnectionFailed``;
* :func:`in_sftp_session`: a session lost in the middle of a transfer;
* :func:`lost`: a command's channel closed by a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NoReturn

import asyncssh

from ..errors import AuthenticationFailed, BadInput, ConnectionFailed, ConnectionLost, Error, TransportError
from ..jobs import Target
from ..ssh import boundary
from ..ssh.boundary import socket_failure, translating
from ..ssh.keys import KeyUnusable

__all__ = ["connecting", "in_sftp_session", "is_dead", "load_keypairs", "lost",
           "on_connection", "opening_channel", "session_refused", "sftp_refused"]

#: What a dead connection raises when a channel is opened on it.
_DEAD = (asyncssh.DisconnectError, ConnectionError, BrokenPipeError, asyncssh.ChannelOpenError)


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _connect_error(exc: Exception, target: Target, hostname: str, timeout: float | None,
                   host_key: Callable[[str], Error], denied: Callable[[], Error] | None) -> Error:
    detail = _detail(exc)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return host_key(detail)
    if isinstance(exc, asyncssh.PermissionDenied):
        return denied() if denied is not None else AuthenticationFailed.at(target, detail)
    if isinstance(exc, (asyncssh.KeyExchangeFailed, asyncssh.ProtocolNotSupported)):
        return TransportError.at(target, detail)
    if isinstance(exc, (asyncssh.DisconnectError, asyncssh.ChannelOpenError)):
        return ConnectionFailed.at(target, detail)
    failed = socket_failure(exc, target, hostname, timeout, detail)
    if failed is not None:
        return failed
    if isinstance(exc, ValueError):
        return BadInput(f"Invalid SSH settings for {target.label}: {detail}", host=target.key)
    return TransportError.at(target, f"{type(exc).__name__}: {detail}")


@contextlib.contextmanager
def connecting(target: Target, hostname: str, timeout: float | None,
               host_key: Callable[[str], Error], denied: Callable[[], Error] | None = None) -> Iterator[None]:
    """Translate what ``asyncssh.connect`` raises for *target* (reaching *hostname*).

    *host_key* gives the error for a refused host key from asyncssh's text
    (the client that refused it knows why: unknown, changed, unrecordable);
    *denied* the error for a refused login (in the shared words, with why keys were skipped).
    """
    with translating(lambda e: _connect_error(e, target, hostname, timeout, host_key, denied)):
        yield


def load_keypairs(path: str, passphrase: str | None) -> list[asyncssh.SSHKeyPair]:
    """asyncssh's parser for :class:`~parallax.ssh.keys.KeyCache`, its failures in the shared words."""
    try:
        return list(asyncssh.load_keypairs([path], passphrase))
    except asyncssh.KeyEncryptionError:
        raise KeyUnusable.wrong_passphrase(path) from None
    except asyncssh.KeyImportError as e:
        if "assphrase" in str(e):
            raise KeyUnusable.encrypted(path) from None
        raise KeyUnusable.unreadable(path, str(e)) from None
    except OSError as e:
        raise KeyUnusable.unreadable(path, e.strerror or str(e)) from None


@contextlib.contextmanager
def opening_channel(refused: Callable[[Exception], Error], closed: Callable[[], bool]) -> Iterator[None]:
    """Inside a pooled operation: a channel (or SFTP) refused while the connection is alive
    (``closed()`` false) is *refused*'s error; on a dead connection the failure goes on to the
    pool (see :func:`is_dead`)."""
    try:
        yield
    except asyncssh.SFTPError as e:
        raise refused(e) from e
    except asyncssh.ChannelOpenError as e:
        if closed():
            raise
        raise refused(e) from e


def session_refused(target: Target) -> Callable[[Exception], Error]:
    """The error for a session channel the server refused on a live connection."""
    return lambda e: boundary.session_refused(target, str(e))


def sftp_refused(target: Target) -> Callable[[Exception], Error]:
    """The error for an SFTP subsystem the server refused."""
    return lambda e: boundary.sftp_refused(target, str(e))


def is_dead(exc: BaseException, conn: object = None) -> bool:
    """Whether *exc* (raised under :func:`opening_channel`) says the connection was dead
    before the operation started anything: the pool's ``dead`` rule for a reconnect."""
    return isinstance(exc, _DEAD)


@contextlib.contextmanager
def on_connection(target: Target) -> Iterator[None]:
    """Around a pooled operation: a connection that stayed dead is ``ConnectionFailed``."""
    with boundary.dead_connection(target, _DEAD, _detail):
        yield


@contextlib.contextmanager
def in_sftp_session(target: Target) -> Iterator[None]:
    """During a transfer walk: the session or connection lost is ``ConnectionFailed``
    (per-path failures are already ``TransferFailed``)."""
    try:
        yield
    except (asyncssh.SFTPError, asyncssh.DisconnectError, ConnectionError) as e:
        raise boundary.lost_in_transfer(target, getattr(e, "reason", None) or _detail(e)) from e


def lost(target: Target, exc: BaseException) -> NoReturn:
    """Raise the failure that closed a running command's channel (never retried)."""
    raise ConnectionLost.at(target, _detail(exc))
