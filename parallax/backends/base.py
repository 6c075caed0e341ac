"""The interface every transport implements.

A backend only moves bytes: it connects (or reuses a connection), runs a
command streaming output into a sink, puts and gets files, and closes.  The
scheduler owns concurrency, timeouts, retries and cancellation; a backend
must simply clean up (kill processes, close channels) when its coroutine is
cancelled, and raise the shared classes from :mod:`parallax.errors`.

What a backend *is* (its name, the ssh options it honours, its optional
capabilities) is one frozen :class:`BackendInfo` on the class; what it is
built with is one frozen :class:`BackendSetup` (never the caller's whole
settings: everything about a host arrives with each job's
:class:`~parallax.jobs.Target`).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NoReturn, Protocol, TypeVar, overload

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


T = TypeVar("T")

#: The metadata fields a pre-:class:`BackendInfo` subclass may still set as class attributes.
_LEGACY_FIELDS = ("name", "supported_options", "capabilities", "allows_local_shortcut")


@dataclass(frozen=True)
class BackendInfo:
    """What a backend is, fixed for its class: the core reads only this (``backend.info``)."""

    #: The name users select it by (``Options.backend``).
    name: str
    #: ssh option names (lower case) this backend honours; others are refused before
    #: anything runs.  ``None`` means "any" (the openssh backend hands them all to ssh).
    supported_options: frozenset[str] | None = None
    #: Optional behaviours the conformance suite checks when claimed, e.g.
    #: ``"remote-kill"``: cancelling a job also ends its remote command.
    capabilities: frozenset[str] = frozenset()
    #: Whether 1.0's local-host shortcut may bypass this backend (not for mocks).
    allows_local_shortcut: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"BackendInfo.name must be a str, not {self.name!r}")
        for field in ("supported_options", "capabilities"):
            value = getattr(self, field)
            if value is None and field == "supported_options":
                continue
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"BackendInfo.{field} of backend {self.name!r} must be a set of names, "
                                f"not {value!r}")
            object.__setattr__(self, field, frozenset(v.lower() if field == "supported_options" else v
                                                      for v in value))


@dataclass(frozen=True)
class BackendSetup:
    """What a backend factory is called with (``factory(setup)``): only what a backend needs
    before it sees any job.  Per-host settings come with each job's target."""

    #: How many jobs may run at once (``limit``), e.g. to size a thread pool; ``None``: unknown.
    limit: int | None = None


class _InfoField(Generic[T]):
    """A read-only view of one :class:`BackendInfo` field, on the class and on instances
    (``backend.name`` is ``backend.info.name``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name

    @overload
    def __get__(self, obj: None, owner: type[Backend]) -> T: ...

    @overload
    def __get__(self, obj: Backend, owner: type[Backend] | None = None) -> T: ...

    def __get__(self, obj: Backend | None, owner: type[Backend] | None = None) -> T:
        info = obj.info if obj is not None else owner.info if owner is not None else None
        value: T = getattr(info, self.field)
        return value

    def __set__(self, obj: Backend, value: T) -> NoReturn:
        raise AttributeError(f"{type(obj).__name__}.{self.field} is read-only: it is the frozen "
                             f"{type(obj).__name__}.info (a BackendInfo)")


class Backend(abc.ABC):
    """One SSH transport.  An instance lives as long as one session/call.

    A subclass declares ``info = BackendInfo(name, supported_options, capabilities)``.
    The old way, class attributes ``name``/``supported_options``/``capabilities``/
    ``allows_local_shortcut``, still works: they are folded into ``info`` when the
    class is created (anything not set is inherited).
    """

    #: What this backend is; see :class:`BackendInfo`.
    info: ClassVar[BackendInfo] = BackendInfo("")
    #: Set by a persistent Session: keep connections open between calls.
    keep_connections: bool = False

    name: _InfoField[str] = _InfoField()
    supported_options: _InfoField[frozenset[str] | None] = _InfoField()
    capabilities: _InfoField[frozenset[str]] = _InfoField()
    allows_local_shortcut: _InfoField[bool] = _InfoField()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Fold the old metadata class attributes of *cls* into its ``info``."""
        super().__init_subclass__(**kwargs)
        legacy = {f: cls.__dict__[f] for f in _LEGACY_FIELDS
                  if f in cls.__dict__ and not isinstance(cls.__dict__[f], (_InfoField, property))}
        if not legacy:
            return
        if "info" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: set info = BackendInfo(...) or the old class attributes "
                            f"{sorted(legacy)}, not both")
        for f in legacy:
            delattr(cls, f)  # the read-only view of info takes over
        cls.info = dataclasses.replace(cls.info, **legacy)

    def check_target(self, target: Target) -> None:
        """Refuse, before anything runs, options this backend cannot honour."""
        supported = self.info.supported_options
        if supported is None:
            return
        from ..errors import UnsupportedOption

        for key, _ in target.ssh_options:
            if key.lower() not in supported:
                raise UnsupportedOption(
                    f"ssh option {key!r} is not supported by the {self.info.name} backend",
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

        raise UnsupportedOption(f"the {self.info.name} backend cannot check a host without running a command",
                                host=job.key)

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        """Start *command* on *target* (on the pooled connection) and keep its stdin
        open; what persistent shells are built on.  Backends that can claim the
        ``"stream"`` capability."""
        from ..errors import UnsupportedOption

        raise UnsupportedOption(f"the {self.info.name} backend cannot keep a remote shell open "
                                f"(persistent_shell)", host=target.key)

    async def disconnect(self, target: Target) -> None:  # noqa: B027 (optional: nothing pooled by default)
        """Drop any pooled connection to *target* (after a failure)."""

    async def close(self) -> None:  # noqa: B027 (optional: nothing held by default)
        """Release every connection and resource the backend holds."""

    def abandon(self) -> None:  # noqa: B027 (optional)
        """Best-effort synchronous cleanup for a session that was never closed
        (called by a finalizer, possibly at interpreter exit, without a loop)."""


def build(factory: Callable[..., Any], setup: BackendSetup) -> Backend:
    """Call a backend *factory* the way the core does: ``factory(setup)``, or ``factory()``
    when it takes no argument; a result that is not a :class:`Backend` is a ``TypeError``."""
    try:
        takes_none = not inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (some builtins): the usual call
        takes_none = False
    backend = factory() if takes_none else factory(setup)
    if not isinstance(backend, Backend):
        raise TypeError(f"backend factory {factory!r} returned {backend!r}, not a parallax Backend")
    return backend


__all__ = ["Backend", "BackendInfo", "BackendSetup", "OutputSink", "Stream", "StreamSink", "build"]
