"""The shared connection pool's rules, over stand-in connections (no SSH: this tests the pool logic)."""

from __future__ import annotations

import asyncio

import pytest

from parallax.errors import ConnectionFailed
from parallax.jobs import Target
from parallax.ssh.pool import ConnectionPool


class Conn:
    def __init__(self, n: int) -> None:
        self.n = n
        self.alive = True
        self.closed = 0


class World:
    """Counts connects and closes; connects take *delay* and may fail."""

    def __init__(self, delay: float = 0.01, fail: int = 0) -> None:
        self.delay = delay
        self.fail = fail
        self.connects = 0
        self.cancelled = 0
        self.made: list[Conn] = []

    async def connect(self, target: Target) -> Conn:
        self.connects += 1
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            self.fail -= 1
            raise ConnectionFailed.at(target, "Connection refused")
        conn = Conn(self.connects)
        self.made.append(conn)
        return conn

    async def close(self, conn: Conn) -> None:
        conn.closed += 1
        conn.alive = False

    def pool(self) -> ConnectionPool[Conn]:
        return ConnectionPool(self.connect, lambda c: c.alive, self.close)


T1 = Target(key="a", host="h1")
T1_OTHER_KEY = Target(key="b", host="h1")  # same connection, another result key
T2 = Target(key="c", host="h2")


def run(coro):
    return asyncio.run(coro)


def test_concurrent_callers_share_one_connect():
    world = World()

    async def main():
        pool = world.pool()
        got = await asyncio.gather(*(pool.acquire(t) for t in (T1, T1_OTHER_KEY, T1, T2)))
        await pool.close()
        return got

    got = run(main())
    assert world.connects == 2
    assert got[0][0] is got[1][0] is got[2][0] and got[3][0] is not got[0][0]
    assert all(conn.closed == 1 for conn in world.made)


def test_reuse_is_reported_and_a_dead_connection_is_replaced():
    world = World()

    async def main():
        pool = world.pool()
        first, reused1 = await pool.acquire(T1)
        again, reused2 = await pool.acquire(T1)
        first.alive = False
        fresh, reused3 = await pool.acquire(T1)
        await pool.close()
        return first, again, fresh, (reused1, reused2, reused3)

    first, again, fresh, reused = run(main())
    assert again is first and fresh is not first
    assert reused == (False, True, False)
    assert first.closed == 1  # the dead one was closed when replaced


def test_a_failed_connect_is_not_kept_and_every_waiter_sees_the_same_error():
    world = World(fail=1)

    async def main():
        pool = world.pool()
        errors = await asyncio.gather(pool.acquire(T1), pool.acquire(T1), return_exceptions=True)
        _conn, reused = await pool.acquire(T1)  # tried again: a failure is not pooled
        await pool.close()
        return errors, reused

    errors, reused = run(main())
    assert all(isinstance(e, ConnectionFailed) for e in errors) and errors[0] is errors[1]
    assert world.connects == 2 and reused is False


def test_cancelling_the_only_waiter_cancels_the_connect_but_not_others():
    world = World(delay=0.5)

    async def main():
        pool = world.pool()
        alone = asyncio.ensure_future(pool.acquire(T1))
        await asyncio.sleep(0.01)
        alone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await alone
        cancelled_after_alone = world.cancelled
        one = asyncio.ensure_future(pool.acquire(T2))
        two = asyncio.ensure_future(pool.acquire(T2))
        await asyncio.sleep(0.01)
        one.cancel()
        conn, _ = await two  # the other waiter still gets the connection
        await pool.close()
        return cancelled_after_alone, conn, len(pool)

    cancelled, conn, left = run(main())
    assert cancelled == 1 and isinstance(conn, Conn) and left == 0
    assert world.cancelled == 1


def test_use_retries_once_on_a_dead_reused_connection_only():
    world = World()
    calls: list[int] = []

    async def op(conn: Conn) -> str:
        calls.append(conn.n)
        if not conn.alive or conn.n == 1:
            raise BrokenPipeError("the connection is gone")
        return "done"

    async def main():
        pool = world.pool()
        await pool.acquire(T1)  # connection 1 is pooled; op fails on it as on a dead one
        result = await pool.use(T1, op, dead=lambda exc, conn: isinstance(exc, BrokenPipeError))
        # a fresh connection that fails is not retried
        world2 = World()
        pool2 = world2.pool()

        async def always(conn: Conn) -> str:
            raise BrokenPipeError("gone")

        with pytest.raises(BrokenPipeError):
            await pool2.use(T1, always, dead=lambda exc, conn: True)
        await pool.close()
        await pool2.close()
        return result, world2.connects

    result, connects2 = run(main())
    assert result == "done" and calls == [1, 2]
    assert connects2 == 1


def test_use_does_not_retry_when_the_operation_may_have_run():
    world = World()

    async def op(conn: Conn) -> str:
        raise RuntimeError("the command started, then failed")

    async def main():
        pool = world.pool()
        await pool.acquire(T1)
        with pytest.raises(RuntimeError):
            await pool.use(T1, op, dead=lambda exc, conn: False)
        await pool.close()

    run(main())
    assert world.connects == 1


def test_close_is_idempotent_and_discard_of_a_stale_connection_keeps_the_new_one():
    world = World()

    async def main():
        pool = world.pool()
        old, _ = await pool.acquire(T1)
        old.alive = False
        new, _ = await pool.acquire(T1)
        await pool.discard(T1, old)  # a late discard of the old one must not drop the new one
        assert pool.pooled(T1) is new
        await pool.close()
        await pool.close()
        return new

    new = run(main())
    assert new.closed == 1
