"""The interface every transport implements.

A backend only moves bytes: it connects (or reuses a connection), runs a
command streaming output into a sink, puts and gets files, and closes.  The
scheduler owns concurrency, timeouts, retries and cancellation; a backend
must simply clean up (kill processes, close channels) when its coroutine is
cancelled, and raise the shared classes from :mod:`parallax.errors`.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Protocol

from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target


class OutputSink(Protocol):
    """Receives a command's output as it arrives."""

    def stdout(self, data: bytes) -> None: ...

    def stderr(self, data: bytes) -> None: ...


class StreamSink(OutputSink, Protocol):
    """Receives a long-lived channel's output, then its end."""

    def closed(self, exc: BaseException | None) -> None:
        """The channel ended: *exc* is why, or ``None`` for a normal end."""


class Stream(Protocol):
    """A remote command left running with its stdin open (see :meth:`Backend.open_stream`)."""

    def write(self, data: bytes) -> None:
        """Send *data* to the command's stdin."""

    def signal(self, name: str) -> None:
        """Best effort: deliver signal *name* (``"TERM"``) to the remote command."""

    def close(self) -> None:
        """End the channel (the sink's ``closed`` follows)."""


class Backend(abc.ABC):
    """One SSH transport.  An instance lives as long as one session/call."""

    #: The name users select it by (``Options.backend``).
    name: ClassVar[str] = ""
    #: ssh option names (lower case) this backend honours; others are refused.
    #: ``None`` means "any" (the openssh backend hands them all to ssh).
    supported_options: ClassVar[frozenset[str] | None] = None
    #: Optional behaviours the conformance suite checks when claimed, e.g.
    #: ``"remote-kill"``: cancelling a job also ends its remote command.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Set by a persistent Session: keep connections open between calls.
    keep_connections: bool = False
    #: Whether 1.0's local-host shortcut may bypass this backend (not for mocks).
    allows_local_shortcut: ClassVar[bool] = True

    def check_target(self, target: Target) -> None:
        """Refuse, before anything runs, options this backend cannot honour."""
        if self.supported_options is None:
            return
        from ..errors import UnsupportedOption

        for key, _ in target.ssh_options:
            if key.lower() not in self.supported_options:
                raise UnsupportedOption(
                    f"ssh option {key!r} is not supported by the {self.name} backend",
                    host=target.key,
                )

    @abc.abstractmethod
    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        """Run the job's command; stream output to *sink*; return the exit status."""

    @abc.abstractmethod
    async def put(self, job: PutJob, sink: OutputSink) -> None:
        """Copy the job's local ``src`` to the remote ``dst``."""

    @abc.abstractmethod
    async def get(self, job: GetJob, sink: OutputSink) -> None:
        """Copy the job's remote ``src`` to the local ``dst``."""

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect, verify the host key and authenticate without opening a session;
        return the authentication method that worked (``"publickey"``, ``"password"``,
        ``"keyboard-interactive"``, ...).  Backends that can claim the ``"check"`` capability."""
        from ..errors import UnsupportedOption

        raise UnsupportedOption(f"the {self.name} backend cannot check a host without running a command",
                                host=job.key)

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        """Start *command* on *target* (on the pooled connection) and keep its stdin
        open; what persistent shells are built on.  Backends that can claim the
        ``"stream"`` capability."""
        from ..errors import UnsupportedOption

        raise UnsupportedOption(f"the {self.name} backend cannot keep a remote shell open "
                                f"(persistent_shell)", host=target.key)

    async def disconnect(self, target: Target) -> None:  # noqa: B027 (optional: nothing pooled by default)
        """Drop any pooled connection to *target* (after a failure)."""

    async def close(self) -> None:  # noqa: B027 (optional: nothing held by default)
        """Release every connection and resource the backend holds."""

    def abandon(self) -> None:  # noqa: B027 (optional)
        """Best-effort synchronous cleanup for a session that was never closed
        (called by a finalizer, possibly at interpreter exit, without a loop)."""


__all__ = ["Backend", "OutputSink", "Stream", "StreamSink"]
