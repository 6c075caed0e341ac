"""paramiko channels driven from the event loop: output pumped into a sink, long-lived streams.

paramiko fills a channel's buffers from its transport thread and signals a
``threading.Event``; :class:`_Wakeup` stands in for that event with a pipe
the event loop watches, so output is read on the loop with no thread per
channel and no lost wake-ups.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import paramiko

from .base import OutputSink, StreamSink
from .grace import TERM_REPEAT
from .paramiko_private import send_signal
from .terminate import terminate_blocking

__all__ = ["CHANNEL_WINDOW", "CHUNK", "ChannelReader", "ChannelStream", "ExecStart", "end_channel", "feed_stdin",
           "run_into", "term_until_exit", "wait_status"]

log = logging.getLogger("parallax.paramiko")

CHUNK = 256 * 1024  # bytes read from a channel buffer at once
# Bytes a command may send ahead of what parallax has read (paramiko's default is 2 MiB): with
# output going to files, memory grows with limit x this window, not with the output's size.
CHANNEL_WINDOW = 256 * 1024


class ExecStart:
    """Opens a channel and runs a command in it (:meth:`open`, in a worker thread), and ends
    what it began when the start is cancelled (:meth:`abort`, in a thread of its own).

    Once the exec request may have left, sshd may run the command already: it is TERMed
    until its exit status arrives (see :mod:`.terminate`), then its channel closed.  A
    lock orders the two, so an open that has not yet sent its request sends none.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._lock = threading.Lock()
        self._cancelled = False
        self._requested: paramiko.Channel | None = None

    def open(self, conn: Any) -> paramiko.Channel:
        """The channel running the command on *conn* (a pooled paramiko connection)."""
        chan: paramiko.Channel = conn.transport.open_session(window_size=CHANNEL_WINDOW)
        try:
            if conn.hc.env:
                chan.update_environment(conn.hc.env)
            with self._lock:
                if self._cancelled:
                    raise EOFError("the start was cancelled")
                self._requested = chan  # the last attempt's: a dead pooled transport is replaced once
            chan.exec_command(self.command)
        except BaseException:
            chan.close()
            raise
        return chan

    def abort(self) -> None:
        """TERM the command the cancelled start may have begun, then close its channel."""
        with self._lock:
            self._cancelled = True
            chan = self._requested
        if chan is None:
            return
        term_until_exit(chan)
        try:
            chan.close()  # also wakes an open still waiting for the exec's answer
        except Exception:
            log.debug("closing a cancelled channel failed", exc_info=True)


def term_until_exit(chan: paramiko.Channel) -> bool:
    """TERM *chan*'s command until its exit status arrives, within CANCEL_GRACE (see
    :mod:`.terminate`); blocks, so it runs in a worker thread.  True if it exited."""
    return terminate_blocking(functools.partial(send_signal, chan, "TERM"), chan.status_event.wait)


def run_into(fn: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
    """Run *fn* (a thread's target) and put its outcome into *future*."""
    try:
        future.set_result(fn())
    except BaseException as e:
        future.set_exception(e)


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


def wait_status(chan: paramiko.Channel, stop: threading.Event) -> None:
    """Wait (in a worker thread) for *chan*'s exit status, or until *stop* is set: a command
    that closed its output may run on, and a cancel must leave its channel open to TERM it."""
    while not chan.status_event.wait(TERM_REPEAT):
        if stop.is_set():
            return


def feed_stdin(chan: paramiko.Channel, data: bytes) -> None:
    try:
        if data:
            chan.sendall(data)
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the command exited (or the channel closed) without reading all of it
