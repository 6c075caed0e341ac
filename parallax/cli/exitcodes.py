"""Exit statuses as pssh documents them.

0 every host succeeded; 1 a local error; 2 a usage error; 3 at least one
host timed out or was killed; 4 at least one host had an SSH failure
(connect, authentication, host key); 5 at least one remote command exited
non-zero (or a transfer failed on the remote side).  When several apply,
the lowest wins, as in pssh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import (
    BadInput,
    Cancelled,
    CommandFailed,
    Error,
    Timeout,
    TransferFailed,
    TransportError,
)

__all__ = [
    "INTERRUPTED",
    "KILLED",
    "LOCAL_ERROR",
    "OK",
    "REMOTE_FAILED",
    "SSH_FAILED",
    "USAGE",
    "exit_status",
    "host_status",
]

OK = 0
LOCAL_ERROR = 1
USAGE = 2
KILLED = 3
SSH_FAILED = 4
REMOTE_FAILED = 5
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def host_status(outcome: Any) -> int:
    """The exit status one host's *outcome* alone would give."""
    if isinstance(outcome, (Timeout, Cancelled)):
        return KILLED
    if isinstance(outcome, TransportError):
        return SSH_FAILED
    if isinstance(outcome, (CommandFailed, TransferFailed)):
        return REMOTE_FAILED
    if isinstance(outcome, (BadInput, Error)):
        return LOCAL_ERROR
    return OK if outcome[0] == 0 else REMOTE_FAILED


def exit_status(results: Mapping[str, Any]) -> int:
    """The command's exit status for *results* (``{host: result | Error}``)."""
    codes = {host_status(outcome) for outcome in results.values()} - {OK}
    return min(codes) if codes else OK
