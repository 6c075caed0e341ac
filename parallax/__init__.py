"""parallax: run commands and copy files over SSH on many hosts at once.

Drop-in compatible with Parallax SSH 1.0 (``call``, ``copy``, ``slurp``,
``Options``, ``Error``), with ``run``, interchangeable backends, an async twin
(:mod:`parallax.aio`) and precise error classes.
"""

from __future__ import annotations

import logging

from . import aio
from .api import call, check, copy, run, slurp
from .gather import Group, gather
from .errors import (
    AuthenticationFailed,
    BadInput,
    Cancelled,
    CommandFailed,
    ConnectionFailed,
    ConnectionLost,
    Error,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    TransportError,
    UnsupportedOption,
    WorkerLost,
)
from .hookspecs import hookimpl
from .hosts import Host
from .options import DEFAULT_PARALLELISM, DEFAULT_TIMEOUT, Options
from .results import CallResult, CheckResult, CopyResult, SlurpResult
from .session import Session

__version__ = "2.0.0.dev0"

logging.getLogger("parallax").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_PARALLELISM",
    "DEFAULT_TIMEOUT",
    "AuthenticationFailed",
    "BadInput",
    "CallResult",
    "Cancelled",
    "CheckResult",
    "CommandFailed",
    "ConnectionFailed",
    "ConnectionLost",
    "CopyResult",
    "Error",
    "Group",
    "Host",
    "HostKeyChanged",
    "HostKeyError",
    "HostKeyUnknown",
    "NameResolutionFailed",
    "Options",
    "Session",
    "SlurpResult",
    "Timeout",
    "TransferFailed",
    "TransportError",
    "UnsupportedOption",
    "WorkerLost",
    "aio",
    "call",
    "check",
    "copy",
    "gather",
    "hookimpl",
    "run",
    "slurp",
]
