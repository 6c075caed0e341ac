"""The TCP connect of the in-process backends that hand their library a socket (paramiko, libssh2, asyncssh).

As ``ssh`` does: each address of the host name in turn (``AddressFamily``),
``BindAddress`` and ``TCPKeepAlive`` applied, ``TCP_NODELAY`` set, small reads
acknowledged at once (:class:`QuickAckSocket`, see there why); the
failures in the shared shapes (``Could not resolve hostname ...``, ``connect
to HOST port N: Connection refused``, a connect past the timeout a
``Timeout``).  A numeric address is resolved without a thread; a name through
the event loop's resolver, so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from typing import Any

from ..errors import ConnectionFailed, NameResolutionFailed, Timeout
from ..jobs import Target
from ..timeouts import within
from .hostconfig import HostConfig

__all__ = ["FAMILIES", "QuickAckSocket", "ack_now", "open_tcp"]

#: AddressFamily values as socket families.
FAMILIES = {"any": socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}

_AddrInfo = Sequence[tuple[Any, ...]]  # getaddrinfo's (family, type, proto, canonname, sockaddr)

#: Linux's TCP_QUICKACK (absent elsewhere: then :func:`ack_now` does nothing).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: Reads at least this long are bulk data, where the kernel's own acknowledgement pace is right.
_SMALL_READ = 16384


def ack_now(sock: socket.socket) -> None:
    """Acknowledge what *sock* has received now rather than after the delayed-ACK timer.

    OpenSSH's sshd leaves Nagle's algorithm on for non-interactive sessions, so a
    message it sends while an earlier one is unacknowledged waits for the client's
    ACK (after logging in: the ``hostkeys-00`` notice, then the channel-open
    confirmation behind it).  Linux delays that ACK by 40 ms or more, which behind a
    50 ms link is most of another round trip on every connection.
    """
    if _QUICKACK is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:
            pass  # closed, or not TCP


class QuickAckSocket(socket.socket):
    """A TCP socket that acknowledges each small read at once (:func:`ack_now`): for the
    libraries that read the socket through its methods (paramiko, asyncio's transports)."""

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if 0 < len(data) < _SMALL_READ:
            ack_now(self)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        n = super().recv_into(buffer, nbytes, flags)
        if 0 < n < _SMALL_READ:
            ack_now(self)
        return n


async def _addresses(target: Target, hc: HostConfig, loop: asyncio.AbstractEventLoop) -> _AddrInfo:
    family = FAMILIES[hc.address_family]
    try:
        return socket.getaddrinfo(hc.hostname, hc.port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    try:
        return await loop.getaddrinfo(hc.hostname, hc.port, family=family, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise NameResolutionFailed(f"Could not resolve hostname {hc.hostname}: {e.strerror or e}",
                                   host=target.key) from None


async def open_tcp(target: Target, hc: HostConfig, timeout: float | None) -> socket.socket:
    """A connected non-blocking TCP socket to *hc*'s host and port, for *target* (named in errors)."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, kind, proto, _, addr in await _addresses(target, hc, loop):
        sock = QuickAckSocket(family, kind, proto)
        try:
            sock.setblocking(False)
            if hc.bind_address:
                sock.bind((hc.bind_address, 0))
            await within(loop.sock_connect(sock, addr), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if hc.tcp_keep_alive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            return sock
        except asyncio.TimeoutError:
            sock.close()
            raise Timeout.at(target, f"connect to {addr[0]} port {hc.port} took longer than {timeout:g} s") from None
        except OSError as e:
            sock.close()
            last = e
        except BaseException:
            sock.close()
            raise
    # asyncio's text is "Connect call failed (...)"; say what OpenSSH says ("Connection refused").
    detail = (os.strerror(last.errno) if last.errno else (last.strerror or str(last))) if last else "no address"
    raise ConnectionFailed.at(target, f"connect to {hc.hostname} port {hc.port}: {detail}")
