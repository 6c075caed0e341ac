"""The one place paramiko's and the socket layer's failures become parallax's error classes.

Every failure while connecting, authenticating or opening a channel goes through
:func:`map_error` (as httpx maps httpcore's exceptions at one boundary), so the
paramiko adapter gives the same classes and message shapes as every backend.
"""

from __future__ import annotations

import socket

import paramiko

from ..errors import (
    AuthenticationFailed,
    ConnectionFailed,
    Error,
    HostKeyChanged,
    NameResolutionFailed,
    Timeout,
    TransportError,
)
from ..jobs import Target

__all__ = ["map_error", "why"]


def why(e: BaseException) -> str:
    """The reason in *e*: an OS error's text, else its message, else its class name."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)
    return text or type(e).__name__


def map_error(e: BaseException, target: Target, *, via: str | None = None) -> Error:
    """Map a paramiko/socket failure while connecting onto the shared classes."""
    if isinstance(e, Error):
        return e
    where = f" (via {via})" if via else ""
    if isinstance(e, socket.gaierror):
        return NameResolutionFailed.at(target, why(e))
    if isinstance(e, (socket.timeout, TimeoutError)):
        return Timeout.at(target, f"{why(e)}{where}")
    if isinstance(e, paramiko.BadHostKeyException):
        return HostKeyChanged.at(target, str(e))
    if isinstance(e, paramiko.AuthenticationException):
        if "timeout" in str(e).lower():
            return Timeout.at(target, str(e))
        return AuthenticationFailed.at(target, str(e))
    if isinstance(e, paramiko.ChannelException):
        return ConnectionFailed.at(target, f"{e.text or e}{where}")
    if isinstance(e, paramiko.SSHException):
        text = str(e)
        low = text.lower()
        if "timed out" in low or "timeout" in low or isinstance(e.__context__, (socket.timeout, TimeoutError)):
            return Timeout.at(target, f"{text}{where}")
        if ("banner" in low or "not active" in low or "no existing session" in low or "closed" in low
                or "reset" in low or "eof" in low):
            return ConnectionFailed.at(target, f"{text}{where}")
        return TransportError.at(target, f"{text}{where}")
    if isinstance(e, EOFError):
        return ConnectionFailed.at(target, f"connection closed by remote host{where}")
    if isinstance(e, OSError):
        return ConnectionFailed.at(target, f"{why(e)}{where}")
    return TransportError.at(target, f"{type(e).__name__}: {e}{where}")
