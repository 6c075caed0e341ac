"""parallax.backends.detached: a cleanup child that can outlive its event loop, real processes."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest

from parallax.backends.detached import DetachableProcess
from parallax.testing.processes import process_table


def _alive(pid: int) -> bool:
    """Running (not reaped and not a zombie)."""
    return process_table().get(pid, (0, "Z"))[1] != "Z"


def _reaped(pid: int) -> bool:
    """Gone from the process table: its parent (us) has collected its status."""
    return pid not in process_table()


def _reaper(pid: int) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == f"parallax-cleanup-{pid}"), None)


def test_wait_gives_the_status_and_reaps():
    async def main() -> tuple[int, int]:
        p = DetachableProcess([sys.executable, "-c", "raise SystemExit(3)"], None, 10)
        return await p.wait(), p.proc.pid

    rc, pid = asyncio.run(main())
    assert rc == 3
    assert _reaped(pid)


def test_the_environment_is_the_one_given():
    path = f"/tmp/parallax-detached-{os.getpid()}"
    code = f"import os; open({path!r}, 'w').write(os.environ.get('PARALLAX_T', '-'))"

    async def main() -> int:
        return await DetachableProcess([sys.executable, "-c", code], {"PARALLAX_T": "yes"}, 10).wait()

    try:
        assert asyncio.run(main()) == 0
        with open(path) as f:
            assert f.read() == "yes"
    finally:
        os.unlink(path)


def test_a_cancelled_wait_ends_and_reaps_the_child():
    async def main() -> int:
        p = DetachableProcess(["sleep", "30"], None, 10)
        task = asyncio.ensure_future(p.wait())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return p.proc.pid

    pid = asyncio.run(main())
    assert _reaped(pid)


def test_the_deadline_ends_a_waited_child():
    async def main() -> int:
        p = DetachableProcess(["sleep", "30"], None, 0.2)
        with pytest.raises(asyncio.TimeoutError):
            await p.wait()
        return p.proc.pid

    t0 = time.monotonic()
    pid = asyncio.run(main())
    assert time.monotonic() - t0 < 5
    assert _reaped(pid)


def test_a_detached_child_outlives_the_loop_and_is_reaped_when_it_exits():
    marker = f"/tmp/parallax-detached-done-{os.getpid()}"
    code = f"import time; time.sleep(0.5); open({marker!r}, 'w').close()"

    async def main() -> DetachableProcess:
        p = DetachableProcess([sys.executable, "-c", code], None, 10)
        task = asyncio.ensure_future(p.wait())
        await asyncio.sleep(0.05)
        p.detach()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return p

    try:
        p = asyncio.run(main())  # the loop is gone; the child is not
        assert _alive(p.proc.pid)
        reaper = _reaper(p.proc.pid)
        assert reaper is not None and not reaper.daemon  # the interpreter's exit waits for it
        reaper.join(10)
        assert os.path.exists(marker)  # it was left to finish its work
        assert p.proc.returncode == 0
        assert _reaped(p.proc.pid)
    finally:
        if os.path.exists(marker):
            os.unlink(marker)


def test_a_detached_child_is_ended_at_its_deadline():
    async def main() -> DetachableProcess:
        p = DetachableProcess(["sleep", "30"], None, 0.3)
        p.detach()
        return p

    p = asyncio.run(main())
    reaper = _reaper(p.proc.pid)
    assert reaper is not None
    reaper.join(10)
    assert not reaper.is_alive()
    assert p.proc.returncode is not None and p.proc.returncode < 0  # ended by a signal
    assert _reaped(p.proc.pid)
