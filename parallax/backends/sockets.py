"""TCP sockets of this machine, and which one a local process holds, read from Linux's /proc.

The OpenSSH backend uses it to recognise, on the remote host, the processes
of a session it cancelled: sshd gives them ``SSH_CONNECTION="<client ip>
<client port> ..."``, and the client side of that is this process's socket.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

#: ``st`` values of /proc/net/tcp
ESTABLISHED = "01"
LISTEN = "0A"


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            link = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def _decode(hex_addr: str) -> tuple[str, int]:
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        ip6 = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        ip = ip6.ipv4_mapped or ip6
    return str(ip), int(port, 16)


def tcp_sockets() -> Iterator[tuple[str, tuple[str, int], tuple[str, int], str]]:
    """``(state, (local ip, port), (remote ip, port), inode)`` of every IPv4/IPv6 TCP socket."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9:
                yield fields[3], _decode(fields[1]), _decode(fields[2]), fields[9]


def tcp_client_address(pid: int) -> tuple[str, int] | None:
    """``(local ip, local port)`` of the established TCP connection *pid* holds, if exactly one."""
    inodes = _socket_inodes(pid)
    if not inodes:
        return None
    found = [local for state, local, _, inode in tcp_sockets() if state == ESTABLISHED and inode in inodes]
    return found[0] if len(found) == 1 else None


__all__ = ["ESTABLISHED", "LISTEN", "tcp_client_address", "tcp_sockets"]
