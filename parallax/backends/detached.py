"""A cleanup child process that may outlive the event loop that started it.

The openssh backend ends a cancelled remote command with a second ``ssh``
(the OpenSSH client cannot signal it).  When a one-call session closes, its
results must not wait for that ``ssh`` if the server is slow to answer, yet
killing it would leave the remote command running.  So such a child is
watched by polling (no pipes, no asyncio transport that dies with the loop),
and can be handed to a thread that reaps it instead: the thread ends its
process group at the child's deadline, and the interpreter's exit waits for
the thread (it is not a daemon), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections.abc import Mapping

from .grace import CANCEL_GRACE
from .process import _killpg, _status

#: Seconds between two looks at whether the child has exited.
POLL = 0.01


class DetachableProcess:
    """*argv* (never through a shell) in its own session, its output discarded, which
    runs for at most *limit* seconds: awaited with :meth:`wait`, or left to finish on
    its own with :meth:`detach`."""

    def __init__(self, argv: list[str], env: Mapping[str, str] | None, limit: float) -> None:
        self.deadline = time.monotonic() + limit
        self.detached = False
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     env=dict(env) if env is not None else None)

    async def wait(self) -> int:
        """The exit status (128 + N for signal N).  At the deadline, or when the awaiting
        task is cancelled, the child's group is ended first (TERM, then KILL), unless it
        was detached meanwhile: then it is the reaping thread's."""
        try:
            while (rc := self.proc.poll()) is None:
                if time.monotonic() >= self.deadline:
                    raise asyncio.TimeoutError
                await asyncio.sleep(POLL)
            return _status(rc)
        except BaseException:
            if not self.detached:
                _killpg(self.proc.pid, signal.SIGTERM)
                end = time.monotonic() + CANCEL_GRACE
                try:
                    while self.proc.poll() is None and time.monotonic() < end:
                        await asyncio.sleep(POLL)
                finally:
                    self._kill_and_reap()
            raise

    def detach(self) -> None:
        """Leave the child to finish on its own: a thread reaps it, ending its group at
        the deadline.  Call :meth:`wait`'s task's ``cancel()`` after this, not before."""
        if self.detached:
            return
        self.detached = True
        threading.Thread(target=self._reap, name=f"parallax-cleanup-{self.proc.pid}").start()

    def _reap(self) -> None:
        try:
            self.proc.wait(max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(CANCEL_GRACE)
            except subprocess.TimeoutExpired:
                self._kill_and_reap()

    def _kill_and_reap(self) -> None:
        if self.proc.poll() is None:
            _killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


__all__ = ["DetachableProcess"]
