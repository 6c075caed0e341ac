"""The four operations, async (used by :mod:`parallax.aio`) and sync (``parallax.*``).

Each opens a one-call :class:`~parallax.session.AsyncSession`, so module-level
calls and sessions share one code path; everything that can be rejected is
rejected before the first connection.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar
from collections.abc import Coroutine

from .options import Options
from .session import AsyncSession

T = TypeVar("T")


async def acall(hosts: Any, cmdline: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on every host; a non-zero exit is a :class:`CommandFailed`."""
    async with AsyncSession(hosts, opts, persistent=False, **overrides) as session:
        return await session.call(cmdline)


async def arun(hosts: Any, cmdline: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on every host; every exit status is a result."""
    async with AsyncSession(hosts, opts, persistent=False, **overrides) as session:
        return await session.run(cmdline)


async def acopy(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy local *src* (a directory when ``recursive``) to remote *dst* on every host."""
    async with AsyncSession(hosts, opts, persistent=False, **overrides) as session:
        return await session.copy(src, dst)


async def aslurp(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy remote *src* from every host to ``<localdir>/<host>/<dst>``."""
    async with AsyncSession(hosts, opts, persistent=False, **overrides) as session:
        return await session.slurp(src, dst)


async def acheck(hosts: Any, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Connect, verify the host key and authenticate on every host, running nothing."""
    async with AsyncSession(hosts, opts, persistent=False, **overrides) as session:
        return await session.check()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to completion from synchronous code.

    Works from a thread whose event loop is running, by running the
    coroutine on a fresh loop in a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:  # outside the except block: the caller's errors are not chained to this one
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=runner, name="parallax-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def call(hosts: Any, cmdline: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on *hosts*: ``{host: CallResult | Error}``; non-zero exit is an Error."""
    return run_sync(acall(hosts, cmdline, opts, **overrides))


def run(hosts: Any, cmdline: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on *hosts*: ``{host: CallResult | Error}``; only SSH failures are Errors."""
    return run_sync(arun(hosts, cmdline, opts, **overrides))


def copy(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy local *src* to remote *dst*: ``{host: CopyResult | Error}``."""
    return run_sync(acopy(hosts, src, dst, opts, **overrides))


def slurp(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy remote *src* to ``<localdir>/<host>/<dst>``: ``{host: SlurpResult | Error}``."""
    return run_sync(aslurp(hosts, src, dst, opts, **overrides))


def check(hosts: Any, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Pre-flight: connect, verify the host key and authenticate, open no session and run
    no command: ``{host: CheckResult | Error}``; a result says which authentication
    method worked (``.auth``) and how long the connect took (``.connect_time``)."""
    return run_sync(acheck(hosts, opts, **overrides))


__all__ = ["acall", "acheck", "acopy", "arun", "aslurp", "call", "check", "copy", "run", "run_sync", "slurp"]
