"""Sessions: one backend instance (and its connections) across many calls.

``AsyncSession`` is the single code path: the module-level functions open a
non-persistent one for one call; ``parallax.Session`` / ``parallax.aio.Session``
keep connections open (OpenSSH ControlMaster, pooled paramiko/asyncssh
connections) so a program talking to the same cluster many times pays the
SSH handshake once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import resource
import socket
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from .account import local_user
from .backends.base import Backend
from .backends.local import LocalBackend
from .backends.persistent_shell import PersistentShellBackend
from .diagnostics import verbose_logging
from .events import EventBus
from .hosts import parse_hosts
from .jobs import Job, Target
from .options import Options, Settings, resolve
from .planner import plan_check, plan_commands, plan_get, plan_put, plan_targets
from .plugins import create_backend
from .scheduler import Scheduler
from .sudo import mark_refusals as mark_sudo_refusals

T = TypeVar("T")

WARN_MESSAGE = (
    "Warning: do not enter your password if anyone else has superuser\n"
    "privileges or access to your account."
)
FDS_PER_JOB = 8  # pipes of an ssh child, or a socket plus slack for the in-process backends
FDS_PER_POOLED = 2  # a connection a persistent session keeps open between calls
#: Options that decide how a session connects: fixed when it is created, refused per call.
SESSION_FIXED = frozenset({
    "backend", "default_user", "port", "ssh_key", "ssh_options", "ssh_extra", "password", "passphrase",
    "askpass", "warn_message", "host_key_policy", "known_hosts", "ssh_config", "connect_timeout", "env",
    "persistent_shell", "mock", "cluster", "shard_by", "limit_per_worker",
})


def _ask_password(settings: Settings) -> Settings:
    """``askpass``: prompt once on the terminal; the answer feeds every host."""
    if not settings.askpass or settings.password is not None:
        return settings
    if settings.warn_message:
        print(WARN_MESSAGE, file=sys.stderr)
    return dataclasses.replace(settings, password=getpass.getpass("Password: "))


def ensure_fd_limit(limit: int, pooled: int = 0) -> None:
    """Raise the soft RLIMIT_NOFILE so *limit* running jobs (plus *pooled* open
    connections) fit, or say clearly before anything starts that they cannot."""
    need = limit * FDS_PER_JOB + pooled * FDS_PER_POOLED + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise ValueError(
            f"limit={limit} needs about {need} open files but RLIMIT_NOFILE allows at most {hard}; "
            f"lower the limit or raise the hard limit (ulimit -Hn)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _local_identity() -> tuple[tuple[str, ...], str]:
    """This machine's names and the current user, for 1.0's local shortcut."""
    name = socket.gethostname()
    return tuple(n for n in {name, name.split(".")[0]} if n), local_user()


def read_input(stream: Any) -> bytes | None:
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


class AsyncSession:
    """Hosts + options + one backend instance, reused by every call made through it.

    Keyword overrides on a call (``s.call(cmd, timeout=5)``) change how that
    call runs; the hosts and how to connect to them are fixed when the
    session is created.
    """

    def __init__(self, hosts: Any, opts: Options | None = None, *, persistent: bool = True, **overrides: Any) -> None:
        self._opts = opts
        self._overrides = overrides
        settings = resolve(opts, **overrides)
        targets = plan_targets(hosts, settings)
        if targets:
            settings = _ask_password(settings)
        if settings.password:
            targets = [dataclasses.replace(t, password=settings.password) for t in targets]
        self.settings = settings
        self.targets: list[Target] = targets
        self.persistent = persistent
        backend: Backend = create_backend(settings)
        if settings.persistent_shell:
            backend = PersistentShellBackend(backend, settings.connect_timeout)
        self.backend = backend
        self.backend.keep_connections = persistent
        self._local = LocalBackend()
        self._closed = False
        for target in targets:
            self.backend.check_target(target)
        self._finalizer: weakref.finalize[[Backend], AsyncSession] | None = (
            weakref.finalize(self, _abandon, self.backend) if persistent else None)

    @property
    def closed(self) -> bool:
        return self._closed

    def _settings_for(self, overrides: dict[str, Any]) -> Settings:
        if not overrides:
            return self.settings
        fixed = sorted(name for name in overrides if name in SESSION_FIXED)
        if fixed:
            raise ValueError(f"option {fixed[0]} is fixed when the session is created (it decides how the "
                             f"session connects); open another session to change it")
        settings = resolve(self._opts, **{**self._overrides, **overrides})
        return dataclasses.replace(settings, password=self.settings.password)

    def _targets_for(self, hosts: Any) -> list[Target]:
        """The session's targets, or those of the subset *hosts* (entries as written at creation)."""
        if hosts is None:
            return self.targets
        by_key = {t.key: t for t in self.targets}
        chosen = []
        for spec in parse_hosts(hosts):
            if spec.key not in by_key:
                raise ValueError(f"host {spec.key!r} is not one of this session's hosts")
            chosen.append(by_key[spec.key])
        return chosen

    async def _execute(self, jobs: Sequence[Job], settings: Settings) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("this parallax session is closed")
        if settings.cluster is not None:  # sharded across a Dask cluster (parallax[dask])
            from .cluster import execute_sharded, session_shards
            shards = getattr(self, "_shards", None)
            if shards is None and self.persistent:  # one holder per shard keeps its connections open
                shards = self._shards = session_shards(self.settings, [t.key for t in self.targets])
            sharded: dict[str, Any] = await execute_sharded(list(jobs), settings, holders=shards)
            return sharded
        ensure_fd_limit(min(settings.limit, max(len(jobs), 1)), len(self.targets) if self.persistent else 0)
        bus = EventBus(settings, total=len(jobs))
        try:
            with verbose_logging() if settings.verbose else contextlib.nullcontext():
                return await Scheduler(self.backend, settings, bus, local=self._local).execute(jobs)
        finally:
            bus.close()

    async def call(self, cmdline: str, *, hosts: Any = None, _check: bool = True, **overrides: Any) -> dict[str, Any]:
        """Run *cmdline* on every host (or the subset *hosts*); a non-zero exit is a :class:`CommandFailed`."""
        settings = self._settings_for(overrides)
        if settings.sudo:
            settings = self._with_sudo_password(settings)
        names, user = _local_identity() if settings.local_shortcut else ((), None)
        jobs = plan_commands(self._targets_for(hosts), cmdline, settings, check=_check,
                             stdin=read_input(settings.input_stream), local_names=names, local_user=user)
        results = await self._execute(jobs, settings)
        return mark_sudo_refusals(results) if settings.sudo else results

    def _with_sudo_password(self, settings: Settings) -> Settings:
        """``sudo_askpass``: prompt on the terminal at the first sudo call, then reuse the answer."""
        if settings.sudo_password is not None or not settings.sudo_askpass:
            return settings
        secret = getattr(self, "_sudo_secret", None)
        if secret is None:
            secret = self._sudo_secret = getpass.getpass("sudo password: ")
        return dataclasses.replace(settings, sudo_password=secret)

    async def run(self, cmdline: str, *, hosts: Any = None, **overrides: Any) -> dict[str, Any]:
        """Run *cmdline* on every host (or the subset *hosts*); every exit status is a result."""
        return await self.call(cmdline, hosts=hosts, _check=False, **overrides)

    async def copy(self, src: str, dst: str, *, hosts: Any = None, **overrides: Any) -> dict[str, Any]:
        """Copy local *src* (a directory when ``recursive``) to remote *dst* on every host."""
        settings = self._settings_for(overrides)
        # A missing or unreadable source fails in every host's entry, as in 1.0
        # (the scheduler checks it per job); only a malformed argument raises here.
        return await self._execute(plan_put(self._targets_for(hosts), src, dst, settings), settings)

    async def slurp(self, src: str, dst: str, *, hosts: Any = None, **overrides: Any) -> dict[str, Any]:
        """Copy remote *src* from every host (or the subset *hosts*) to ``<localdir>/<host>/<dst>``."""
        settings = self._settings_for(overrides)
        return await self._execute(plan_get(self._targets_for(hosts), src, dst, settings), settings)

    async def check(self, *, hosts: Any = None, **overrides: Any) -> dict[str, Any]:
        """Connect to every host (or the subset *hosts*), verify its host key and
        authenticate, running nothing: ``{host: CheckResult | Error}``."""
        settings = self._settings_for(overrides)
        return await self._execute(plan_check(self._targets_for(hosts)), settings)

    async def close(self) -> None:
        """Close every connection the session holds (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()
        try:
            await self.backend.close()
        finally:
            shards = getattr(self, "_shards", None)
            if shards is not None:  # a sharded session's holders on the workers
                await shards.close()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "persistent", False) and not getattr(self, "_closed", True):
            warnings.warn(f"unclosed parallax session to {len(self.targets)} hosts", ResourceWarning, stacklevel=2)


def _abandon(backend: Backend) -> None:
    """Finalizer of a session that was never closed: release what needs no event loop."""
    try:
        backend.abandon()
    except Exception:
        pass


class _LoopThread:
    """An event loop in a daemon thread, so a sync Session can keep connections open."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="parallax-session", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run *coro* on the loop; on Ctrl-C cancel it and wait until its cleanup ran.

        (A cancelled ``run_coroutine_threadsafe`` future reports "cancelled" at
        once, while the task is still killing what it started: closing the
        session then would race that cleanup.)
        """
        box: dict[str, asyncio.Task[T]] = {}
        done = threading.Event()

        def start() -> None:
            task = self.loop.create_task(coro)
            task.add_done_callback(lambda _: done.set())
            box["task"] = task

        def cancel() -> None:  # runs after start(): the loop takes callbacks in order
            box["task"].cancel()

        self.loop.call_soon_threadsafe(start)
        try:
            while not done.wait(0.05):
                pass
        except KeyboardInterrupt:
            self.loop.call_soon_threadsafe(cancel)
            done.wait(30)
            raise
        return box["task"].result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Session:
    """Synchronous session: ``with parallax.Session(hosts, **options) as s: s.call("id")``.

    Calls return exactly what the module-level functions return; connections
    stay open until :meth:`close` (or the end of the ``with`` block).
    """

    def __init__(self, hosts: Any, opts: Options | None = None, **overrides: Any) -> None:
        self._loop = _LoopThread()

        async def make() -> AsyncSession:
            return AsyncSession(hosts, opts, persistent=True, **overrides)

        try:
            self._session = self._loop.run(make())
        except BaseException:
            self._loop.stop()
            raise
        self._finalizer = weakref.finalize(self, _close_sync_session, self._session, self._loop)

    @property
    def targets(self) -> list[Target]:
        return self._session.targets

    def _run(self, method: Callable[..., Coroutine[Any, Any, dict[str, Any]]], *args: Any,
             **kwargs: Any) -> dict[str, Any]:
        if not self._finalizer.alive:
            raise RuntimeError("this parallax session is closed")
        return self._loop.run(method(*args, **kwargs))

    @property
    def backend(self) -> Backend:
        return self._session.backend

    def call(self, cmdline: str, **overrides: Any) -> dict[str, Any]:
        """Like :func:`parallax.call` on the session's hosts."""
        return self._run(self._session.call, cmdline, **overrides)

    def run(self, cmdline: str, **overrides: Any) -> dict[str, Any]:
        """Like :func:`parallax.run` on the session's hosts."""
        return self._run(self._session.run, cmdline, **overrides)

    def copy(self, src: str, dst: str, **overrides: Any) -> dict[str, Any]:
        """Like :func:`parallax.copy` on the session's hosts."""
        return self._run(self._session.copy, src, dst, **overrides)

    def slurp(self, src: str, dst: str, **overrides: Any) -> dict[str, Any]:
        """Like :func:`parallax.slurp` on the session's hosts."""
        return self._run(self._session.slurp, src, dst, **overrides)

    def check(self, **overrides: Any) -> dict[str, Any]:
        """Like :func:`parallax.check` on the session's hosts (the connections stay open)."""
        return self._run(self._session.check, **overrides)

    def close(self) -> None:
        """Close every connection and stop the session's event loop thread."""
        if self._finalizer.detach():
            _close_sync_session(self._session, self._loop)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_finalizer", None) is not None and self._finalizer.alive:
            warnings.warn(f"unclosed parallax.Session to {len(self.targets)} hosts", ResourceWarning, stacklevel=2)


def _close_sync_session(session: AsyncSession, loop: _LoopThread) -> None:
    try:
        if not loop.loop.is_closed() and loop.thread.is_alive():
            loop.run(session.close())
    finally:
        loop.stop()


__all__ = ["AsyncSession", "Session", "ensure_fd_limit"]
