"""The TCP connect of an in-process backend whose library talks over a socket it is given (paramiko, libssh2).

As ``ssh`` does: each address of the host name in turn (``AddressFamily``),
``BindAddress`` and ``TCPKeepAlive`` applied, ``TCP_NODELAY`` set; the
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
from .hostconfig import HostConfig

__all__ = ["FAMILIES", "open_tcp"]

#: AddressFamily values as socket families.
FAMILIES = {"any": socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}

_AddrInfo = Sequence[tuple[Any, ...]]  # getaddrinfo's (family, type, proto, canonname, sockaddr)


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
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if hc.bind_address:
                sock.bind((hc.bind_address, 0))
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
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
