"""paramiko channels driven from the event loop: output pumped into a sink, long-lived streams.

paramiko fills a channel's buffers from its transport thread and signals a
``threading.Event``; :class:`_Wakeup` stands in for that event with a pipe
the event loop watches, so output is read on the loop with no thread per
channel and no lost wake-ups.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import paramiko

from .base import OutputSink, StreamSink
from .paramiko_private import send_signal

__all__ = ["CHUNK", "ChannelReader", "ChannelStream", "end_channel", "feed_stdin"]

log = logging.getLogger("parallax.paramiko")

CHUNK = 256 * 1024  # bytes read from a channel buffer at once


class _Wakeup:
    """Stands in for the ``threading.Event`` of a channel's buffers: every ``set`` writes a byte.

    The event loop watches the pipe, drains it, then reads the buffers, so
    data fed after the drain always leaves another byte behind (no lost
    wake-ups, one pipe for stdout and stderr).  ``clear`` is a no-op.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._closed = False
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._r

    def set(self) -> None:
        with self._lock:
            if not self._closed:
                try:
                    os.write(self._w, b"*")
                except BlockingIOError:
                    pass  # the pipe is full, hence readable: the loop will look

    def clear(self) -> None:
        pass

    def drain(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._r)
                os.close(self._w)


class ChannelReader:
    """Pumps *chan*'s stdout and stderr into *sink* from the event loop; ``done`` resolves at EOF
    (or with the sink's exception)."""

    def __init__(self, chan: paramiko.Channel, sink: OutputSink, loop: asyncio.AbstractEventLoop) -> None:
        self.chan = chan
        self.sink = sink
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.wakeup = _Wakeup()
        chan.in_buffer.set_event(self.wakeup)  # type: ignore[arg-type]  # _Wakeup is a duck-typed Event
        chan.in_stderr_buffer.set_event(self.wakeup)  # type: ignore[arg-type]
        loop.add_reader(self.wakeup.fileno(), self._pump)

    def _pump(self) -> None:
        chan, sink, done = self.chan, self.sink, self.done
        if done.done():
            return
        self.wakeup.drain()
        try:
            for _ in range(16):
                eof = chan.eof_received or chan.closed  # read before the buffers: data precedes EOF
                busy = False
                if chan.recv_ready():
                    sink.stdout(chan.recv(CHUNK))
                    busy = True
                if chan.recv_stderr_ready():
                    sink.stderr(chan.recv_stderr(CHUNK))
                    busy = True
                if not busy:
                    if eof:
                        self.loop.remove_reader(self.wakeup.fileno())
                        done.set_result(None)
                    return
            self.loop.call_soon(self._pump)  # more is buffered: let other hosts' work run first
        except Exception as e:  # a failing sink must not wedge the loop
            self.loop.remove_reader(self.wakeup.fileno())
            done.set_exception(e)

    def close(self) -> None:
        """Stop watching the channel (idempotent)."""
        self.loop.remove_reader(self.wakeup.fileno())
        self.wakeup.close()


class ChannelStream:
    """A long-lived channel (``open_stream``, what persistent shells run on): the event loop
    watches its :class:`_Wakeup` and hands output to the sink as it arrives."""

    def __init__(self, chan: paramiko.Channel, transport: paramiko.Transport, sink: StreamSink,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.chan = chan
        self.sink = sink
        self.loop = loop
        self.ended = False
        self.wakeup = _Wakeup()
        chan.in_buffer.set_event(self.wakeup)  # type: ignore[arg-type]  # _Wakeup is a duck-typed Event
        chan.in_stderr_buffer.set_event(self.wakeup)  # type: ignore[arg-type]
        loop.add_reader(self.wakeup.fileno(), self._pump)
        self._pump()

    def _pump(self) -> None:
        if self.ended:
            return
        self.wakeup.drain()
        try:
            eof = self.chan.eof_received or self.chan.closed  # read before the buffers: data precedes EOF
            while self.chan.recv_ready():
                self.sink.stdout(self.chan.recv(CHUNK))
            while self.chan.recv_stderr_ready():
                self.sink.stderr(self.chan.recv_stderr(CHUNK))
        except Exception as e:
            self._end(e)
            return
        if eof:
            active = self.transport.is_active()
            self._end(None if active else ConnectionError("the connection was lost"))

    def _end(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.loop.remove_reader(self.wakeup.fileno())
        self.wakeup.close()
        if not self.chan.closed:
            self.chan.close()
        self.sink.closed(exc)

    def write(self, data: bytes) -> None:
        if self.ended:
            raise BrokenPipeError("the channel is closed")
        try:
            self.chan.sendall(data)
        except (EOFError, paramiko.SSHException) as e:
            raise BrokenPipeError(str(e) or "the channel is closed") from e

    def signal(self, name: str) -> None:
        send_signal(self.chan, name)

    def close(self) -> None:
        self._end(None)


def end_channel(chan: paramiko.Channel) -> None:
    """TERM the channel's command and close the channel (not its connection).

    The signal request is queued before the close on the same transport, so
    it reaches sshd first; closing wakes every thread blocked on the channel
    (a stdin feeder, an exit status wait)."""
    if not chan.closed:
        if not chan.exit_status_ready():
            send_signal(chan, "TERM")
        try:
            chan.close()
        except Exception:  # a transport that died meanwhile
            log.debug("closing a cancelled channel failed", exc_info=True)


def feed_stdin(chan: paramiko.Channel, data: bytes) -> None:
    try:
        if data:
            chan.sendall(data)
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the command exited (or the channel closed) without reading all of it
