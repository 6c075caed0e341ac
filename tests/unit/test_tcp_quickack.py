"""parallax.ssh.tcp acknowledges small reads at once (sshd's Nagle waits for the ACK: see ack_now).

Linux reports the socket's mode through TCP_QUICKACK: 0 once it has gone over to
delayed ACKs (after a request/reply exchange), 1 while it acknowledges at once.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from parallax.ssh.tcp import QuickAckSocket, ack_now

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")


def _quickack(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)


def _exchanges(client: socket.socket, read: Callable[[socket.socket], object], rounds: int = 6) -> Iterator[int]:
    """Request/reply rounds over loopback TCP; the client's ACK mode after each reply is read."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        with server, client:
            for _ in range(rounds):
                client.sendall(b"request")
                server.recv(64)
                server.sendall(b"reply")
                read(client)
                yield _quickack(client)


def test_a_plain_socket_goes_over_to_delayed_acks() -> None:
    """What the others guard against (so their assertions can fail)."""
    modes = list(_exchanges(socket.socket(), lambda s: s.recv(64)))
    assert 0 in modes[1:], modes


def test_quickack_socket_acknowledges_every_small_read() -> None:
    modes = list(_exchanges(QuickAckSocket(socket.AF_INET, socket.SOCK_STREAM), lambda s: s.recv(64)))
    assert modes == [1] * len(modes), modes


def test_quickack_socket_recv_into_too() -> None:
    buf = bytearray(64)
    modes = list(_exchanges(QuickAckSocket(socket.AF_INET, socket.SOCK_STREAM), lambda s: s.recv_into(buf)))
    assert modes == [1] * len(modes), modes


def test_ack_now_for_a_library_that_reads_the_descriptor_itself() -> None:
    def read_past_the_methods(s: socket.socket) -> None:
        socket.socket.recv(s, 64)  # as libssh2 does, under the socket object's methods
        ack_now(s)

    modes = list(_exchanges(socket.socket(), read_past_the_methods))
    assert modes == [1] * len(modes), modes


def test_ack_now_on_a_closed_socket_is_harmless() -> None:
    s = socket.socket()
    s.close()
    ack_now(s)
