"""libssh2 in non-blocking mode, driven by the asyncio event loop: no thread per host, no busy loop.

A :class:`Wire` is one libssh2 session on one non-blocking socket.
:meth:`Wire.call` runs a libssh2 call (an ``ssh2-python`` method); while it
answers ``LIBSSH2_ERROR_EAGAIN`` the coroutine waits for the socket with
``loop.add_reader``/``add_writer`` in the directions libssh2 reports
(``session.block_directions()``), then calls again.

Several coroutines may use one session at once (channels of a pooled
connection).  One fd takes one reader callback, so the wire keeps the
waiters itself and wakes all of them when the socket is ready.  libssh2
reads every packet it finds into its own buffers, whichever channel the
call was for: a packet for channel B may be read by a call for channel A,
after which the socket is no longer readable although B has data.  So a
call that starts an operation or makes progress wakes the other inbound
waiters once (a retry that made none does not, so two waiters never wake
each other in a loop), and when more
than one coroutine waits on a session each wait also ends after
:data:`SHARED_RECHECK` seconds (a safety net for a packet read by a retry
between two loop iterations; a session used by one coroutine at a time,
the usual case, never polls).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN
from ssh2.session import LIBSSH2_SESSION_BLOCK_INBOUND, LIBSSH2_SESSION_BLOCK_OUTBOUND, Session

from ..ssh.tcp import ack_now

__all__ = ["EAGAIN", "SHARED_RECHECK", "Wire", "again", "release_closed"]

EAGAIN: int = LIBSSH2_ERROR_EAGAIN
#: Seconds after which a waiter on a session that several coroutines wait on calls again anyway.
SHARED_RECHECK = 0.25

T = TypeVar("T")

#: Sockets of closed wires whose libssh2 session may still be alive (see :meth:`Wire.close`).
_closed_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()


def release_closed() -> None:
    """Free the libssh2 objects of closed wires that only reference cycles still hold, so their
    descriptors close now rather than at some later collection."""
    if _closed_sockets:
        gc.collect()


def again(result: object) -> bool:
    """Whether a libssh2 call's *result* (an int, an ``(rc, ...)`` tuple or an object) is EAGAIN."""
    if type(result) is int:
        return result == EAGAIN
    if type(result) is tuple:
        return bool(result) and result[0] == EAGAIN
    return False


class Wire:
    """One libssh2 session on a non-blocking socket, its waits driven by *loop*."""

    def __init__(self, sock: socket.socket, session: Session, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.session = session
        self.loop = loop
        self.fd = sock.fileno()
        self._readers: list[asyncio.Future[bool]] = []
        self._writers: list[asyncio.Future[bool]] = []
        self._reading = self._writing = False
        self.closed = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, again each time it answers EAGAIN and the socket is ready."""
        fresh = True
        while True:
            if self.closed:
                raise ConnectionResetError("the connection is closed")
            result = fn(*args)
            ack_now(self.sock)  # libssh2 reads the descriptor itself, past QuickAckSocket's methods
            if not again(result):
                if self._readers:
                    self._kick()  # it may have read packets other channels wait for
                return result
            if fresh and self._readers:
                self._kick()
            fresh = False
            await self._wait()

    async def wait(self, kick: bool = True) -> None:
        """After a call answered EAGAIN by hand (a partial write, a read loop): wait until it may
        go on.  *kick*: the caller made progress or starts anew (see the module's text)."""
        if self.closed:
            raise ConnectionResetError("the connection is closed")
        if kick and self._readers:
            self._kick()
        await self._wait()

    async def _wait(self) -> bool:
        """Wait for the socket in libssh2's blocked directions; True if the socket woke us."""
        directions = self.session.block_directions()
        fut: asyncio.Future[bool] = self.loop.create_future()
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND or not directions:
            self._readers.append(fut)
            if not self._reading:
                self.loop.add_reader(self.fd, self._on_readable)
                self._reading = True
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND:
            self._writers.append(fut)
            if not self._writing:
                self.loop.add_writer(self.fd, self._on_writable)
                self._writing = True
        shared = len(self._readers) + len(self._writers) > 1
        try:
            if shared:
                done, _ = await asyncio.wait([fut], timeout=SHARED_RECHECK)
                return bool(done) and fut.result()
            return await fut
        finally:
            self._forget(fut)

    def _forget(self, fut: asyncio.Future[bool]) -> None:
        for waiters in (self._readers, self._writers):
            if fut in waiters:
                waiters.remove(fut)
        if not fut.done():
            fut.cancel()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._reading and not self._readers:
            self.loop.remove_reader(self.fd)
            self._reading = False
        if self._writing and not self._writers:
            self.loop.remove_writer(self.fd)
            self._writing = False

    def _wake(self, waiters: list[asyncio.Future[bool]], by_socket: bool) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(by_socket)
        waiters.clear()

    def _on_readable(self) -> None:
        self._wake(self._readers, True)
        self._unwatch()

    def _on_writable(self) -> None:
        self._wake(self._writers, True)
        self._unwatch()

    async def heard_within(self, seconds: float) -> bool:
        """Whether the server sent something (or a call made progress) within *seconds*; an end of
        the connection closes the wire (what keepalive counting needs)."""
        fut: asyncio.Future[bool] = self.loop.create_future()
        self._readers.append(fut)
        if not self._reading:
            self.loop.add_reader(self.fd, self._on_readable)
            self._reading = True
        try:
            done, _ = await asyncio.wait([fut], timeout=seconds)
        finally:
            self._forget(fut)
        if done and fut.result() and not self.closed:
            try:
                if self.sock.recv(1, socket.MSG_PEEK) == b"":
                    self.close()
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.close()
        return bool(done) and not self.closed

    def kick(self) -> None:
        """Wake the inbound waiters (after a call made outside :meth:`call`, which read the socket)."""
        self._kick()

    def _kick(self) -> None:
        """Wake the inbound waiters so they look at libssh2's buffers again."""
        self._wake(self._readers, False)
        self._unwatch()

    def close(self) -> None:
        """Stop watching the socket, wake every waiter (their next call fails) and end the TCP
        connection both ways.

        The descriptor itself is not closed here: libssh2 may still write on it when its session,
        channels or SFTP handles are freed (later, by the garbage collector), and a closed number
        may by then belong to another connection, which those bytes would corrupt (and an SFTP
        handle freed there spins waiting for an answer).  The session holds the socket
        (``handshake`` keeps it), so the descriptor goes when the session does; see
        :func:`release_closed`.
        """
        if self.closed:
            return
        self.closed = True
        self._wake(self._readers, False)
        self._wake(self._writers, False)
        self._unwatch()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # never connected, or the peer already reset it
        _closed_sockets.add(self.sock)
