"""libssh2's failures (``ssh2.exceptions``) as parallax's error classes: the one translator at the boundary.

ssh2-python raises its exceptions without a message; the text is libssh2's
``session.last_error()``, read here.  As in :mod:`.asyncssh_errors`, only the
shared classes of :mod:`parallax.errors` leave these context managers, each in
its shared message shape; a parallax error raised inside and cancellation pass
through unchanged.

* :func:`connecting`: TCP connect, handshake and authentication;
* :func:`on_connection`: an operation on a pooled connection (a dead one is
  ``ConnectionFailed``; :func:`is_dead` tells the pool to reconnect once);
* :func:`in_sftp_session`: a session lost in the middle of a transfer.

The library-neutral shapes are :mod:`parallax.ssh.boundary`'s; a refused
host key is :mod:`parallax.ssh.hostkey_check`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from ssh2 import exceptions as x
from ssh2.session import Session

from ..errors import AuthenticationFailed, ConnectionFailed, ConnectionLost, Error, TransportError
from ..jobs import Target
from ..ssh import boundary
from ..ssh.boundary import socket_failure, translating

__all__ = ["DEAD", "connecting", "detail", "in_sftp_session", "is_dead",
           "lost", "on_connection", "session_refused", "sftp_refused"]

#: What an operation on a dead connection raises (the socket closed, reset or the session ended).
DEAD = (x.SocketDisconnectError, x.SocketRecvError, x.SocketSendError, x.BadSocketError, x.ChannelUnknownError,
        x.ChannelClosedError, x.SessionError, ConnectionError, BrokenPipeError)


def detail(exc: BaseException, session: Session | None = None) -> str:
    """libssh2's text for *exc* (its last error on *session*), else the exception's name."""
    text = str(exc)
    if not text and session is not None:
        try:
            raw = session.last_error()
        except Exception:  # the session is gone
            raw = b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    return text or type(exc).__name__


def _connect_error(exc: BaseException, target: Target, hostname: str, timeout: float | None,
                   session: Session | None) -> Error:
    text = detail(exc, session)
    if isinstance(exc, x.AuthenticationError):
        return AuthenticationFailed.at(target, text if str(exc) else "no identity was accepted")
    if isinstance(exc, (x.KeyExchangeError, x.KexFailureError, x.AlgoUnsupportedError, x.MethodNotSupported,
                        x.HostkeyInitError, x.HostkeySignError, x.InvalidMACError, x.DecryptError)):
        return TransportError.at(target, f"key exchange failed: {text}")
    if isinstance(exc, (x.SocketDisconnectError, x.SocketRecvError, x.BannerRecvError, x.SessionHandshakeError)):
        return ConnectionFailed.at(target, f"the server closed the connection ({text})")
    failed = socket_failure(exc, target, hostname, timeout, text)
    return failed or TransportError.at(target, f"{type(exc).__name__}: {text}")


@contextlib.contextmanager
def connecting(target: Target, hostname: str, timeout: float | None,
               session: Session | None = None) -> Iterator[None]:
    """Translate what reaching *hostname* for *target* raises (socket, handshake, authentication)."""
    with translating(lambda e: _connect_error(e, target, hostname, timeout, session)):
        yield


def is_dead(exc: BaseException, conn: object = None) -> bool:
    """Whether *exc* says the pooled connection was dead before the operation started anything."""
    return isinstance(exc, DEAD)


@contextlib.contextmanager
def on_connection(target: Target) -> Iterator[None]:
    """Around a pooled operation: a connection that stayed dead is ``ConnectionFailed``."""
    with boundary.dead_connection(target, DEAD, detail):
        yield


def session_refused(target: Target, exc: BaseException) -> Error:
    """A session channel (or its exec) the server refused on a live connection."""
    return boundary.session_refused(target, detail(exc))


def sftp_refused(target: Target, exc: BaseException) -> Error:
    """An SFTP subsystem the server refused."""
    return boundary.sftp_refused(target, detail(exc))


@contextlib.contextmanager
def in_sftp_session(target: Target) -> Iterator[None]:
    """During a transfer walk: the session or connection lost is ``ConnectionFailed``."""
    try:
        yield
    except (Error, asyncio.CancelledError):
        raise
    except (x.SSH2Error, ConnectionError) as e:
        raise boundary.lost_in_transfer(target, detail(e)) from e


def lost(target: Target, exc: BaseException) -> ConnectionLost:
    """The failure that ended a running command's channel (never retried)."""
    return ConnectionLost.at(target, detail(exc))
