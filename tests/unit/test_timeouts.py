"""parallax.timeouts.within: wait_for's contract without a task per call."""

from __future__ import annotations

import asyncio

import pytest

from parallax.timeouts import within


def test_returns_the_result_in_the_calling_task() -> None:
    async def main() -> bool:
        outer = asyncio.current_task()

        async def inner() -> asyncio.Task[object] | None:
            return asyncio.current_task()

        return await within(inner(), 5) is outer

    assert asyncio.run(main())


def test_times_out_with_timeout_error_and_none_means_no_limit() -> None:
    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await within(asyncio.sleep(5), 0.05)
        assert await within(asyncio.sleep(0.01, "done"), None) == "done"

    asyncio.run(main())


def test_a_timeout_in_cleanup_after_a_cancel_is_a_timeout_and_the_cancel_still_ends_the_task() -> None:
    """What the backends' close graces rely on: cleanup awaited under a grace after a cancel."""
    seen: list[str] = []

    async def job() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            try:
                await within(asyncio.sleep(10), 0.05)
            except asyncio.TimeoutError:
                seen.append("grace over")
            raise

    async def main() -> None:
        task = asyncio.create_task(job())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == ["grace over"]
