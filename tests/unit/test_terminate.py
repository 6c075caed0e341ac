"""parallax.backends.terminate: TERM again until the command is seen to end, within the grace."""

from __future__ import annotations

import asyncio
import threading
import time

from parallax.backends.terminate import terminate, terminate_blocking


def test_term_is_sent_again_until_the_end_is_seen() -> None:
    async def main() -> tuple[bool, int]:
        ended = asyncio.get_running_loop().create_future()
        sent: list[float] = []

        def send() -> None:
            sent.append(time.monotonic())
            if len(sent) == 3:  # the third TERM lands
                asyncio.get_running_loop().call_later(0.001, ended.set_result, None)

        return await terminate(send, ended), len(sent)

    ended, sent = asyncio.run(main())
    assert ended and sent == 3


def test_an_end_that_never_comes_costs_the_grace_and_no_more() -> None:
    async def main() -> tuple[bool, int, float, bool]:
        never = asyncio.get_running_loop().create_future()
        sent: list[int] = []

        async def send() -> None:  # a coroutine send is awaited
            await asyncio.sleep(0)
            sent.append(1)

        t0 = time.monotonic()
        ended = await terminate(send, never, grace=0.1)
        return ended, len(sent), time.monotonic() - t0, never.cancelled()

    ended, sent, took, cancelled = asyncio.run(main())
    assert not ended
    assert 0.1 <= took < 1.0  # bounded by the grace (generous: a loaded machine)
    assert sent >= 2  # again (every TERM_REPEAT), not once
    assert not cancelled  # others may wait on the future


def test_the_blocking_twin_waits_on_an_event() -> None:
    event = threading.Event()
    sent: list[int] = []

    def send() -> None:
        sent.append(1)
        if len(sent) == 2:
            threading.Timer(0.001, event.set).start()

    assert terminate_blocking(send, event.wait)
    assert len(sent) == 2
    t0 = time.monotonic()
    assert not terminate_blocking(lambda: None, threading.Event().wait, grace=0.05)
    assert time.monotonic() - t0 < 1.0
