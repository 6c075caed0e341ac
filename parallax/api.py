"""The four operations, async (used by :mod:`parallax.aio`) and sync (``parallax.*``).

Each one resolves options, plans jobs, checks them against the backend and
hands them to the scheduler; everything that can be rejected is rejected
before the first connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import logging
import os
import pwd
import socket
import sys
import threading
from typing import Any, Coroutine, TypeVar

from .backends.local import LocalBackend
from .events import EventBus
from .jobs import Job, Target
from .options import Options, Settings, resolve
from .planner import plan_commands, plan_get, plan_put, plan_targets
from .plugins import backend_factory
from .scheduler import Scheduler

log = logging.getLogger("parallax")
T = TypeVar("T")

WARN_MESSAGE = (
    "Warning: do not enter your password if anyone else has superuser\n"
    "privileges or access to your account."
)


def _enable_verbose() -> None:
    if not any(getattr(h, "_parallax", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("parallax: %(message)s"))
        handler._parallax = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def _read_input(stream: Any) -> bytes | None:
    """``input_stream`` (file object, bytes or str) read once for every host."""
    if stream is None:
        return None
    if isinstance(stream, (bytes, bytearray, memoryview)):
        return bytes(stream)
    if isinstance(stream, str):
        return stream.encode()
    binary = getattr(stream, "buffer", None)
    data = (binary or stream).read()
    return data.encode() if isinstance(data, str) else bytes(data)


def _ask_password(settings: Settings) -> Settings:
    """``askpass``: prompt once on the terminal; the answer feeds every host."""
    if not settings.askpass or settings.password is not None:
        return settings
    if settings.warn_message:
        print(WARN_MESSAGE, file=sys.stderr)
    return dataclasses.replace(settings, password=getpass.getpass("Password: "))


def _local_identity() -> tuple[tuple[str, ...], str | None]:
    name = socket.gethostname()
    names = {name, name.split(".")[0]}
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = None
    return tuple(n for n in names if n), user


async def execute(jobs: list[Job], targets: list[Target], settings: Settings) -> dict[str, Any]:
    """Run planned *jobs* with the backend named in *settings*."""
    if settings.verbose:
        _enable_verbose()
    backend = backend_factory(settings.backend)(settings)
    try:
        for target in targets:
            backend.check_target(target)
        bus = EventBus(settings)
        try:
            scheduler = Scheduler(backend, settings, bus, local=LocalBackend())
            return await scheduler.execute(jobs)
        finally:
            bus.close()
    finally:
        await backend.close()


def _prepare(hosts: Any, opts: Options | None, overrides: dict[str, Any]) -> tuple[Settings, list[Target]]:
    settings = resolve(opts, **overrides)
    targets = plan_targets(hosts, settings)
    return _ask_password(settings) if targets else settings, targets


async def acall(hosts: Any, cmdline: str, opts: Options | None = None, *, _check: bool = True, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on every host; a non-zero exit is a :class:`CommandFailed`."""
    settings, targets = _prepare(hosts, opts, overrides)
    targets = [dataclasses.replace(t, password=settings.password) for t in targets] if settings.password else targets
    names, user = _local_identity() if settings.local_shortcut else ((), None)
    jobs = plan_commands(
        targets, cmdline, settings, check=_check, stdin=_read_input(settings.input_stream),
        local_names=names, local_user=user,
    )
    return await execute(list(jobs), targets, settings)


async def arun(hosts: Any, cmdline: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Run *cmdline* on every host; every exit status is a result."""
    return await acall(hosts, cmdline, opts, _check=False, **overrides)


async def acopy(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy local *src* (a directory when ``recursive``) to remote *dst* on every host."""
    settings, targets = _prepare(hosts, opts, overrides)
    targets = [dataclasses.replace(t, password=settings.password) for t in targets] if settings.password else targets
    src = os.fspath(src)
    if not os.path.exists(src):
        raise ValueError(f"copy: local source {src!r} does not exist")
    if os.path.isdir(src) and not settings.recursive:
        raise ValueError(f"copy: local source {src!r} is a directory; set recursive=True")
    jobs = plan_put(targets, src, dst, settings)
    return await execute(list(jobs), targets, settings)


async def aslurp(hosts: Any, src: str, dst: str, opts: Options | None = None, **overrides: Any) -> dict[str, Any]:
    """Copy remote *src* from every host to ``<localdir>/<host>/<dst>``."""
    settings, targets = _prepare(hosts, opts, overrides)
    targets = [dataclasses.replace(t, password=settings.password) for t in targets] if settings.password else targets
    jobs = plan_get(targets, src, dst, settings)
    return await execute(list(jobs), targets, settings)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to completion from synchronous code.

    Works from a thread whose event loop is running, by running the
    coroutine on a fresh loop in a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
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
    return box["value"]


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


__all__ = ["call", "run", "copy", "slurp", "acall", "arun", "acopy", "aslurp", "execute", "run_sync"]
