"""An in-memory backend for unit tests of code that uses parallax (like httpx's MockTransport).

The test declares what each host answers; the real planner, scheduler,
event consumers and result assembly run, but nothing connects anywhere::

    import parallax
    from parallax.backends.mock import MockBackend, MockHosts, MockResponse

    hosts = MockHosts(
        default=MockResponse(rc=0, stdout=b"ok\\n"),
        responses={
            "web1": MockResponse(rc=1, stderr=b"boom\\n"),
            "web2": MockResponse(delay=5.0),                    # slow: try timeout=0.5
            "db": MockResponse(fail="auth"),                    # AuthenticationFailed
            "flaky": MockResponse(fail="refused", fail_times=1),  # fails once, then rc 0
            "cmd": lambda host, command: MockResponse(stdout=command.encode()),
            "stream": MockResponse(stdout=[b"one\\n", b"two\\n"], chunk_delay=0.01),
        },
        files={"web1": {"/etc/hostname": b"web1\\n"}},          # remote files for slurp
    )
    results = parallax.call(["web1", "web2", "db"], "uptime", backend=MockBackend(hosts))
    hosts.calls           # [("web1", "run", "uptime"), ("web2", "run", "uptime"), ...]
    hosts.max_concurrent  # peak number of jobs running at once (checks ``limit``)

A response is looked up by the host's result key (``"root@web1:22"`` as
written), then by its bare host name, then ``default``.  It may be a
:class:`MockResponse`, a callable ``(host_key, detail) -> MockResponse``
(``detail`` is the command for ``run``, the remote path for ``put``/``get``),
or a list of those used one per attempt (the last one repeats).

``fail`` raises the shared error classes with the openssh backend's message
shapes: ``"refused"``, ``"dns"``, ``"auth"``, ``"hostkey-unknown"``,
``"hostkey-changed"``, ``"timeout"``, ``"transfer"``, and ``"lost"`` (the
connection drops after the output was sent).  ``delay`` and ``chunk_delay``
use ``asyncio.sleep``, so the scheduler's timeouts, deadline and
cancellation behave as with a real transport.

Recorded on the :class:`MockHosts` (accumulated across calls; see
:meth:`MockHosts.reset`): ``calls`` as ``(host_key, kind, detail)`` with kind
``"run"``, ``"put"`` or ``"get"``; ``disconnects`` (host keys whose connection
was dropped: before a retry, and after a host's last job in a one-off call);
``stdin[host_key]``;
``targets[host_key]`` (the resolved :class:`~parallax.jobs.Target`);
``cancelled`` (keys whose job was cancelled while running);
``max_concurrent``.  ``put`` stores the local file (or directory tree when
``recursive``, placed into/as ``dst`` like ``scp -r``) in
``files[host_key][path]``; ``get`` writes ``files[host_key][src]`` to the
local destination (a missing file is :class:`~parallax.errors.TransferFailed`).

Note: parallax's 1.0 local shortcut still runs ``call``/``run`` for this
machine's own host name locally; use other names or ``local_shortcut=False``.
"""

from __future__ import annotations

import asyncio
import os
import warnings
import posixpath
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from ..errors import (
    AuthenticationFailed,
    BadInput,
    ConnectionFailed,
    ConnectionLost,
    Error,
    HostKeyChanged,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    UnsupportedOption,
)
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from .base import Backend, BackendInfo, OutputSink

#: kind -> (error class, the detail ssh would print); {host} and {port} are filled in.
_FAILURE_KINDS: dict[str, tuple[type[Error], str]] = {
    "refused": (ConnectionFailed, "connect to host {host} port {port}: Connection refused"),
    "dns": (NameResolutionFailed, "Name or service not known"),
    "auth": (AuthenticationFailed, "Permission denied (publickey,password)."),
    "hostkey-unknown": (HostKeyUnknown, "Host key verification failed."),
    "hostkey-changed": (HostKeyChanged, "Host key verification failed."),
    "timeout": (Timeout, "connect to host {host} port {port}: Connection timed out"),
    "transfer": (TransferFailed, "scp: Permission denied"),
    "lost": (ConnectionLost, "Connection to {host} closed by remote host."),
}


FAILURES = tuple(_FAILURE_KINDS)

Chunks = bytes | Sequence[bytes]


@dataclass
class MockResponse:
    """What one host answers: exit status, output (bytes or chunks), delay, or a failure."""

    rc: int = 0
    stdout: Chunks = b""
    stderr: Chunks = b""
    delay: float = 0.0  # seconds before the output (or failure) is produced
    chunk_delay: float = 0.0  # seconds between output chunks
    fail: str | None = None  # one of FAILURES
    fail_times: int | None = None  # fail only the first N operations on the host; None: always
    message: str | None = None  # the failure's detail (after "...: "); default mimics ssh

    def __post_init__(self) -> None:
        if self.fail is not None and self.fail not in FAILURES:
            raise ValueError(f"MockResponse: fail={self.fail!r} is not one of {', '.join(FAILURES)}")
        if self.fail_times is not None and (not isinstance(self.fail_times, int) or self.fail_times < 0):
            raise ValueError(f"MockResponse: fail_times={self.fail_times!r} must be an integer >= 0")
        for name in ("stdout", "stderr"):
            _chunks(name, getattr(self, name))
        if isinstance(self.rc, bool) or not isinstance(self.rc, int):
            raise ValueError(f"MockResponse: rc={self.rc!r} must be an int")


Answer = MockResponse | Callable[[str, str], MockResponse] | Sequence[Any]


def _chunks(name: str, value: Chunks) -> list[bytes]:
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)] if value else []
    if isinstance(value, str) or not all(isinstance(c, (bytes, bytearray)) for c in value):
        raise ValueError(f"MockResponse: {name} must be bytes or a list of bytes chunks, not {value!r}")
    return [bytes(c) for c in value if c]


@dataclass
class MockHosts:
    """The mock's world: per-host answers and remote files in, everything observed out."""

    default: Answer = field(default_factory=MockResponse)
    responses: Mapping[str, Answer] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: ssh option names (lower case) to accept; ``None`` accepts any.
    supported_options: frozenset[str] | None = None
    calls: list[tuple[str, str, str]] = field(default_factory=list, init=False)
    disconnects: list[str] = field(default_factory=list, init=False)
    stdin: dict[str, bytes] = field(default_factory=dict, init=False)
    targets: dict[str, Target] = field(default_factory=dict, init=False)
    cancelled: list[str] = field(default_factory=list, init=False)
    attempts: dict[str, int] = field(default_factory=dict, init=False)
    max_concurrent: int = field(default=0, init=False)
    running: int = field(default=0, init=False)

    def reset(self) -> None:
        """Forget everything recorded (calls, stdin, attempts, peak), keeping answers and files."""
        self.calls.clear()
        self.disconnects.clear()
        self.stdin.clear()
        self.targets.clear()
        self.cancelled.clear()
        self.attempts.clear()
        self.max_concurrent = 0

    def answer(self, target: Target, detail: str) -> MockResponse:
        """The response for this attempt on *target* (counts the attempt)."""
        key = target.key
        n = self.attempts.get(key, 0)
        self.attempts[key] = n + 1
        if key in self.responses:
            spec = self.responses[key]
        elif target.host in self.responses:
            spec = self.responses[target.host]
        else:
            spec = self.default
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ValueError(f"MockHosts: the response list for {key!r} is empty")
            spec = spec[min(n, len(spec) - 1)]
        if callable(spec) and not isinstance(spec, MockResponse):
            spec = spec(key, detail)
        if not isinstance(spec, MockResponse):
            raise TypeError(f"MockHosts: the response for {key!r} is {spec!r}, not a MockResponse")
        if spec.fail is not None and spec.fail_times is not None and n >= spec.fail_times:
            return MockResponse(rc=spec.rc, stdout=spec.stdout, stderr=spec.stderr, delay=spec.delay,
                                chunk_delay=spec.chunk_delay)
        return spec

    def remote_files(self, target: Target) -> dict[str, bytes]:
        """The file table of *target* (by key, else bare host name; created on first write)."""
        if target.key in self.files:
            return self.files[target.key]
        if target.host in self.files:
            return self.files[target.host]
        return self.files.setdefault(target.key, {})


def failure(kind: str, target: Target, message: str | None = None) -> Error:
    """The shared error openssh's ``classify`` would give for *kind*."""
    try:
        cls, detail = _FAILURE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown mock failure {kind!r}") from None
    return cls.at(target, message or detail.format(host=target.host, port=target.port or 22))


def _is_dir(files: Mapping[str, bytes], path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in files)


class MockBackend(Backend):
    """Answers jobs from a :class:`MockHosts` description; see the module docstring."""

    info = BackendInfo("mock", allows_local_shortcut=False)

    def __init__(self, hosts: Any = None, **world: Any) -> None:
        """``MockBackend(MockHosts(...))`` or ``MockBackend(responses=..., default=..., files=...)``,
        passed as ``backend=``.  (Built by name, ``backend="mock"``, it takes the deprecated
        ``mock=`` option: see :meth:`from_option`.)"""
        if world or hosts is None:
            if hosts is not None:
                raise TypeError("MockBackend: give a MockHosts or its keyword arguments, not both")
            hosts = MockHosts(**world)
        elif not isinstance(hosts, MockHosts):
            # the registered factory called with a BackendSetup, or (before 2.0) the settings
            hosts = self._checked(getattr(hosts, "mock", None), stacklevel=4)
        self.hosts = hosts

    @classmethod
    def from_option(cls, mock: object) -> MockBackend:
        """``backend="mock"`` with the deprecated ``mock=MockHosts(...)`` option (warns)."""
        return cls(cls._checked(mock, stacklevel=5))

    @staticmethod
    def _checked(mock: object, stacklevel: int) -> MockHosts:
        if mock is None:
            raise BadInput('backend="mock" needs mock=MockHosts(...); better: '
                           "backend=MockBackend(MockHosts(...)) (from parallax.backends.mock)")
        if not isinstance(mock, MockHosts):
            raise BadInput(f"option mock={mock!r}: expected a parallax.backends.mock.MockHosts")
        warnings.warn("the mock= option is deprecated: pass backend=MockBackend(MockHosts(...))",
                      DeprecationWarning, stacklevel=stacklevel)
        return mock

    def check_target(self, target: Target) -> None:
        """Refuse ssh options outside ``MockHosts.supported_options`` (when given)."""
        allowed = self.hosts.supported_options
        if allowed is None:
            return
        for key, _ in target.ssh_options:
            if key.lower() not in allowed:
                raise UnsupportedOption(f"ssh option {key!r} is not supported by the mock backend", host=target.key)

    async def _perform(self, target: Target, kind: str, detail: str, sink: OutputSink | None,
                       body: Callable[[], None] | None = None) -> int:
        """Record, wait, emit output or fail, then run *body*; tracks concurrency and cancellation."""
        hosts = self.hosts
        hosts.calls.append((target.key, kind, detail))
        hosts.targets[target.key] = target
        response = hosts.answer(target, detail)
        hosts.running += 1
        hosts.max_concurrent = max(hosts.max_concurrent, hosts.running)
        try:
            await asyncio.sleep(response.delay)
            if response.fail is not None and response.fail != "lost":
                raise failure(response.fail, target, response.message)
            if sink is not None:
                first = True
                for write, chunks in ((sink.stdout, response.stdout), (sink.stderr, response.stderr)):
                    for chunk in _chunks("output", chunks):
                        if not first:
                            await asyncio.sleep(response.chunk_delay)
                        write(chunk)
                        first = False
            if response.fail == "lost":
                raise failure("lost", target, response.message)
            if body is not None:
                body()
            rc: int = response.rc
            return rc
        except asyncio.CancelledError:
            hosts.cancelled.append(target.key)
            raise
        finally:
            hosts.running -= 1

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        if job.stdin is not None:
            self.hosts.stdin[job.key] = job.stdin
        return await self._perform(job.target, "run", job.command, sink)

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Recorded as kind ``"check"``; ``fail``/``delay`` apply; authentication is ``"publickey"``."""
        await self._perform(job.target, "check", "", None)
        return "publickey"

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        def store() -> None:
            files = self.hosts.remote_files(job.target)
            if os.path.isdir(job.src):
                if not job.recursive:
                    raise TransferFailed.at(job.target, f"{job.src}: not a regular file")
                base = job.dst
                if _is_dir(files, job.dst):
                    base = posixpath.join(job.dst, os.path.basename(os.path.normpath(job.src)))
                for root, _dirs, names in os.walk(job.src):
                    rel = os.path.relpath(root, job.src)
                    for name in names:
                        remote = posixpath.normpath(posixpath.join(base, rel.replace(os.sep, "/"), name))
                        with open(os.path.join(root, name), "rb") as f:
                            files[remote] = f.read()
                return
            try:
                with open(job.src, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise TransferFailed.at(job.target, f"{job.src}: {e.strerror}") from None
            dst = job.dst
            if _is_dir(files, dst):
                dst = posixpath.join(dst, os.path.basename(job.src))
            files[dst] = data

        await self._perform(job.target, "put", job.dst, sink, store)

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        def fetch() -> None:
            files = self.hosts.remote_files(job.target)
            if job.src in files:
                with open(job.dst, "wb") as f:
                    f.write(files[job.src])
                return
            if _is_dir(files, job.src):
                if not job.recursive:
                    raise TransferFailed.at(job.target, f"scp: {job.src}: not a regular file")
                prefix = job.src.rstrip("/") + "/"
                for path, data in files.items():
                    if path.startswith(prefix):
                        local = os.path.join(job.dst, *path[len(prefix):].split("/"))
                        os.makedirs(os.path.dirname(local), exist_ok=True)
                        with open(local, "wb") as f:
                            f.write(data)
                return
            raise TransferFailed.at(job.target, f"scp: {job.src}: No such file or directory")

        await self._perform(job.target, "get", job.src, sink, fetch)

    async def disconnect(self, target: Target) -> None:
        self.hosts.disconnects.append(target.key)


__all__ = ["FAILURES", "MockBackend", "MockHosts", "MockResponse", "failure"]
