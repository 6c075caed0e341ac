"""What the error translators of the in-process backends share: one shape per failure, whatever the library.

Each backend keeps one translator of its library's exceptions at the
boundary (``asyncssh_errors``, ``libssh2_errors``, ``paramiko_errors``, the
httpx ``map_httpcore_exceptions`` pattern); the parts that do not depend on
the library are here, so the three cannot drift: the context manager that
lets parallax errors and cancellation through and translates the rest, the
socket-level failures of a connect, and the shapes of a refused session or
SFTP subsystem and of a connection lost during a transfer.  Nothing here
imports an SSH library.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Iterator

from ..errors import (
    ConnectionFailed,
    ConnectionLost,
    Error,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    TransportError,
)
from ..jobs import Target

__all__ = ["dead_connection", "lost_in_transfer", "session_refused", "sftp_refused", "socket_failure", "translating"]


@contextlib.contextmanager
def translating(translate: Callable[[Exception], Error]) -> Iterator[None]:
    """Raise ``translate(e)`` for what the body raises; a parallax error and cancellation pass unchanged."""
    try:
        yield
    except (Error, asyncio.CancelledError):
        raise
    except Exception as e:
        raise translate(e) from e


@contextlib.contextmanager
def dead_connection(target: Target, dead: tuple[type[BaseException], ...],
                    detail: Callable[[BaseException], str]) -> Iterator[None]:
    """Around an operation on a pooled connection: one of the library's *dead* exceptions (the
    connection stayed dead after the pool's one reconnect) is ``ConnectionFailed``."""
    try:
        yield
    except (Error, asyncio.CancelledError):
        raise
    except dead as e:
        raise ConnectionFailed.at(target, detail(e)) from e


def socket_failure(exc: BaseException, target: Target, hostname: str, timeout: float | None,
                   text: str) -> Error | None:
    """A connect's socket-level failure (name resolution, timeout, refused, unreachable) in the shared
    shapes; ``None`` if *exc* is none of those (*text*: the library's words for it)."""
    if isinstance(exc, socket.gaierror):
        return NameResolutionFailed(f"Could not resolve hostname {hostname}: {exc.strerror or text}",
                                    host=target.key)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Timeout.at(target, f"no answer within {timeout:g} s" if timeout else text)
    if isinstance(exc, OSError):
        return ConnectionFailed.at(target, os.strerror(exc.errno) if exc.errno else (exc.strerror or text))
    return None


def session_refused(target: Target, detail: str) -> Error:
    """A session channel (or its exec) the server refused on a live connection."""
    return TransportError.at(target, f"cannot open a session: {detail}")


def sftp_refused(target: Target, detail: str) -> Error:
    """An SFTP subsystem the server refused."""
    return TransferFailed.at(target, f"SFTP is not available: {detail}")


def lost_in_transfer(target: Target, detail: str) -> ConnectionFailed:
    """The connection (or SFTP session) lost in the middle of a transfer: nothing ran remotely that a
    retry could repeat, so ``ConnectionFailed``, in ``ConnectionLost``'s words."""
    return ConnectionFailed(ConnectionLost.template.format(label=target.label, host=target.host, detail=detail),
                            host=target.key)
