"""parallax.backends.process: local children (ssh, scp) under asyncio, real processes."""

from __future__ import annotations

import asyncio
import sys

import pytest

from parallax.backends.base import OutputSink
from parallax.backends.process import run_process
from parallax.testing.processes import process_table


class _Sink(OutputSink):
    def __init__(self) -> None:
        self.out = b""

    def stdout(self, data: bytes) -> None:
        self.out += data

    def stderr(self, data: bytes) -> None:
        pass


def _alive(pid: int) -> bool:
    return process_table().get(pid, (0, "Z"))[1] != "Z"


def test_status_and_output():
    sink = _Sink()
    rc = asyncio.run(run_process([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], sink))
    assert (rc, sink.out) == (3, b"hi\n")


@pytest.mark.parametrize("after", [0, 1, 3], ids=["before-the-spawn", "in-the-spawn", "while-starting"])
def test_a_run_cancelled_while_its_child_starts_is_ended_like_a_running_one(after):
    """Cancelled before the child's pipes are connected, asyncio would SIGKILL it by itself and the
    caller would never hear its pid: an ``ssh`` that got that far unseen may have started its
    remote command, with nobody to end it.  The child must be noted (``before_kill``) and ended."""
    noted: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(run_process(["sleep", "30"], _Sink(), before_kill=noted.append))
        for _ in range(after):
            await asyncio.sleep(0)  # let the task get as far as awaiting the spawn's pipes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    if after == 0:
        assert noted == []  # cancelled before it ran: nothing was started
        return
    assert len(noted) == 1, noted
    assert not _alive(noted[0])


def test_a_cancelled_run_whose_child_cannot_start_is_still_cancelled():
    async def main() -> None:
        task = asyncio.ensure_future(run_process(["/nonexistent/ssh"], _Sink()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
