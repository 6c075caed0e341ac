"""The per-host error hierarchy shared by every backend.

An :class:`Error` is *returned* in place of a host's result (it is also an
``Exception``, so callers may raise it).  Every backend maps its transport
failures onto these classes so that callers can handle them uniformly.
"""

from __future__ import annotations

from typing import Any, TypeVar

E = TypeVar("E", bound="Error")


def _text(data: bytes | str | None) -> str:
    if not data:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


class Error(Exception):
    """A failure for one host, returned instead of that host's result.

    Keeps the 1.0 attributes ``msg`` and ``task`` (here: the job); ``str()``
    includes the host's stderr, as 1.0 did.
    """

    def __init__(
        self,
        msg: str,
        task: Any = None,
        *,
        host: str | None = None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        rc: int | None = None,
        duration: float = 0.0,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.task = task
        self.host = host
        self.stdout = stdout
        self.stderr = stderr
        self.rc = rc
        self.duration = duration

    #: The status 1.0's text reports for a failure that has no remote exit status
    #: (connect, authentication, host key, timeout): what ``ssh`` itself exits with.
    SSH_FAILURE_STATUS = 255

    def __str__(self) -> str:
        """1.0's text, which programs such as crmsh parse.

        A host's result reads ``Exited with error code N, Error output: DETAIL``
        (``N`` is the remote status, 255 when there is none, as ssh reports it;
        ``DETAIL`` is the diagnostic, then the host's stderr).  An error raised
        before anything ran (no ``task``) reads as its message.
        """
        err = _text(self.stderr).rstrip("\n")
        if self.task is None:
            return f"{self.msg}, Error output: {err}" if err else self.msg
        code = self.rc if self.rc is not None else self.SSH_FAILURE_STATUS
        head = f"Exited with error code {code}"
        detail = self.msg[len(head):].lstrip(", ") if self.msg.startswith(head) else self.msg
        return f"{head}, Error output: " + "\n".join(p for p in (detail, err) if p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.msg!r}, host={self.host!r})"

    def for_job(self: E, job: Any) -> E:
        """This failure as *job*'s result: a copy carrying the job and its key, so
        that one error raised to several waiters (a shared connect) stays as raised."""
        # Not copy.copy: libraries may register reducers for exceptions (distributed installs
        # tblib's), and a copy must never share this error's attributes.
        new = type(self).__new__(type(self), *self.args)
        new.__dict__.update(self.__dict__)
        new.__cause__, new.__suppress_context__ = self.__cause__, self.__suppress_context__
        new.task = job
        new.host = getattr(job, "key", self.host)
        return new

    #: The message shape every backend uses for this failure (see :meth:`at`).
    template = "{detail}"

    @classmethod
    def at(cls: type[E], target: Any, detail: str, **kwargs: Any) -> E:
        """This failure for *target* (a :class:`~parallax.jobs.Target`), in the one
        message shape all backends share, e.g. ``Connection to web1:22 failed: <detail>``."""
        msg = cls.template.format(label=target.label, host=target.host, detail=detail)
        return cls(msg, host=target.key, **kwargs)


class TransportError(Error):
    """The SSH layer failed: nothing (or not all) of the remote work happened."""

    template = "ssh to {label} failed: {detail}"


class ConnectionFailed(TransportError):
    """The TCP connection was refused, reset, or the host was unreachable."""

    template = "Connection to {label} failed: {detail}"


class ConnectionLost(ConnectionFailed):
    """The connection dropped after the remote command started (never retried)."""

    template = "Connection to {label} lost: {detail}"


class WorkerLost(TransportError):
    """The Dask worker running this host (a sharded call, ``cluster=``) died after the
    host started: the command may or may not have run, so it is not run again
    (unless ``idempotent=True``)."""

    template = "The worker running {label} died; the command may or may not have run{detail}"


class NameResolutionFailed(ConnectionFailed):
    """The host name could not be resolved (DNS)."""

    template = "Could not resolve hostname {host}: {detail}"


class AuthenticationFailed(TransportError):
    """The server rejected every credential offered."""

    template = "Authentication failed for {label}: {detail}"


class HostKeyError(TransportError):
    """The server's host key was not accepted."""


class HostKeyUnknown(HostKeyError):
    """The host key is not in known_hosts and the policy is ``strict``."""

    template = "Host key for {label} is not trusted: {detail}"


class HostKeyChanged(HostKeyError):
    """The host key differs from the one recorded in known_hosts."""

    template = "Host key for {label} has changed: {detail}"


class Timeout(Error):
    """The per-host limit (connect + result) or the overall deadline ran out."""

    template = "Connection to {label} timed out: {detail}"


class Cancelled(Error):
    """The host's work was cancelled (Ctrl-C, deadline) or never started."""


class CommandFailed(Error):
    """The remote command exited non-zero (``call`` only); ``rc`` holds the status."""


class TransferFailed(Error):
    """A file copy to or from the host failed after the connection was made."""

    template = "Transfer with {label} failed: {detail}"


class BadInput(Error, ValueError):
    """An argument for this host (path, option) was invalid; nothing ran."""


class UnsupportedOption(BadInput):
    """An ssh option is not supported by the chosen backend."""


__all__ = [
    "AuthenticationFailed",
    "BadInput",
    "Cancelled",
    "CommandFailed",
    "ConnectionFailed",
    "ConnectionLost",
    "Error",
    "HostKeyChanged",
    "HostKeyError",
    "HostKeyUnknown",
    "NameResolutionFailed",
    "Timeout",
    "TransferFailed",
    "TransportError",
    "UnsupportedOption",
    "WorkerLost",
]
