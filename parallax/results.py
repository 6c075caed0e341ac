"""Result types: tuples that unpack exactly like Parallax 1.0's, plus names.

``rc, out, err = call_result`` and ``rc, out, err, path = slurp_result`` keep
working; new code can use ``.rc``, ``.stdout``, ``.host``, ``.duration`` ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .errors import Error

R = TypeVar("R", bound="_Result")

REPR_BYTES = 64  # output shown by repr(); more is summarised by its length


def _short(value: Any) -> str:
    """repr() of a field, with long output cut: a result may hold megabytes."""
    if isinstance(value, bytes) and len(value) > REPR_BYTES:
        return f"{value[:REPR_BYTES]!r}...({len(value)} bytes)"
    return repr(value)


class _Result(tuple[Any, ...]):
    """Base: a tuple of the 1.0 fields with extra attributes in ``__dict__``."""

    _fields: tuple[str, ...] = ()
    #: The host's result key (as the caller wrote the entry).
    host: str
    #: Seconds from the job's start to its result.
    duration: float

    def __new__(cls: type[R], *values: Any, **extra: Any) -> R:
        self = tuple.__new__(cls, values)
        self.__dict__.update(extra)
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(self), dict(self.__dict__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={_short(v)}" for n, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}(host={self.__dict__.get('host')!r}, {fields})"

    @property
    def rc(self) -> int:
        """The exit status (0 for a copy, slurp or check that worked)."""
        rc: int = self[0]
        return rc

    @property
    def stdout(self) -> bytes:
        """The host's stdout (``b""`` unless kept in memory: ``inline``/``inline_stdout``)."""
        out: bytes = self[1]
        return out

    @property
    def stderr(self) -> bytes:
        """The host's stderr (``b""`` unless ``inline``)."""
        err: bytes = self[2]
        return err

    @property
    def ok(self) -> bool:
        """Whether the exit status is 0."""
        return bool(self[0] == 0)


class CallResult(_Result):
    """``(rc, stdout, stderr)`` of a command, plus ``host``, ``duration``,
    ``truncated`` (bytes dropped past the per-host output cap)."""

    _fields = ("rc", "stdout", "stderr")
    truncated: int

    def __new__(
        cls,
        rc: int,
        stdout: bytes,
        stderr: bytes,
        *,
        host: str,
        duration: float = 0.0,
        truncated: int = 0,
    ) -> CallResult:
        return super().__new__(cls, rc, stdout, stderr, host=host, duration=duration, truncated=truncated)


class CopyResult(_Result):
    """``(rc, stdout, stderr)`` of a copy to the host, plus ``host``, ``src``,
    ``dst``, ``duration``."""

    _fields = ("rc", "stdout", "stderr")
    src: str
    dst: str

    def __new__(
        cls,
        rc: int,
        stdout: bytes,
        stderr: bytes,
        *,
        host: str,
        src: str,
        dst: str,
        duration: float = 0.0,
    ) -> CopyResult:
        return super().__new__(cls, rc, stdout, stderr, host=host, src=src, dst=dst, duration=duration)


class SlurpResult(_Result):
    """``(rc, stdout, stderr, path)`` of a copy from the host; ``path`` is the
    local file or directory written."""

    _fields = ("rc", "stdout", "stderr", "path")
    src: str

    def __new__(
        cls,
        rc: int,
        stdout: bytes,
        stderr: bytes,
        path: str,
        *,
        host: str,
        src: str,
        duration: float = 0.0,
    ) -> SlurpResult:
        return super().__new__(cls, rc, stdout, stderr, path, host=host, src=src, duration=duration)

    @property
    def path(self) -> str:
        """The local file or directory written."""
        path: str = self[3]
        return path


class CheckResult(_Result):
    """``(rc, stdout, stderr)`` = ``(0, b"", b"")`` of a pre-flight check (:func:`parallax.check`),
    plus ``host``, ``auth`` (the authentication method that worked, e.g. ``"publickey"``),
    ``connect_time`` (seconds to connect and authenticate) and ``duration``."""

    _fields = ("rc", "stdout", "stderr")
    auth: str
    connect_time: float

    def __new__(cls, *, host: str, auth: str, connect_time: float, duration: float = 0.0) -> CheckResult:
        return super().__new__(cls, 0, b"", b"", host=host, auth=auth, connect_time=connect_time,
                               duration=duration)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (), dict(self.__dict__)

    def __repr__(self) -> str:
        return (f"CheckResult(host={self.__dict__.get('host')!r}, auth={self.__dict__.get('auth')!r}, "
                f"connect_time={self.__dict__.get('connect_time', 0.0):.3f})")


#: What the operations return: ``{host key: result or Error}``, in the order of the hosts.
CallResults = dict[str, "CallResult | Error"]
CopyResults = dict[str, "CopyResult | Error"]
SlurpResults = dict[str, "SlurpResult | Error"]
CheckResults = dict[str, "CheckResult | Error"]

__all__ = [
    "CallResult",
    "CallResults",
    "CheckResult",
    "CheckResults",
    "CopyResult",
    "CopyResults",
    "SlurpResult",
    "SlurpResults",
]
