"""Parallax 1.0's ``parallax.task.Task`` (deprecated compatibility layer).

A ``Task`` is one local command — in practice an ``ssh`` argument vector the
caller built itself, as crmsh's ``crm_pssh`` does — run by
:class:`parallax.manager.Manager` on parallax 2's scheduler.  New code should
call :func:`parallax.run` (or use a :class:`parallax.Session`) instead.

After the manager ran it, a task carries 1.0's attributes: ``exitstatus``
(negative for a process killed by a signal, ``-9`` after a timeout),
``failures`` (1.0's messages: ``"Exited with error code N"``, ``"Timed out"``,
...), ``outputbuffer``/``errorbuffer`` (bytes kept with ``inline_stdout``/
``inline``) and ``killed``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from .session import read_input

__all__ = ["Task"]

DEPRECATION = ("parallax.task.Task and parallax.manager.Manager are Parallax 1.0's internals, kept for "
               "compatibility; use parallax.run() or parallax.Session instead")


class Task:
    """One command for one host, as 1.0 described it (``cmd`` is an argument vector)."""

    def __init__(
        self,
        host: str,
        port: Any,
        user: str | None,
        cmd: list[str],
        verbose: Any = False,
        quiet: bool = False,
        stdin: Any = None,
        print_out: bool = False,
        inline: bool = False,
        inline_stdout: bool = False,
        default_user: str | None = None,
        is_local: bool = False,
    ) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        if not isinstance(verbose, bool):  # 1.0 also accepted an options object here
            opts = verbose
            verbose = bool(getattr(opts, "verbose", False))
            quiet = bool(getattr(opts, "quiet", False))
            print_out = bool(getattr(opts, "print_out", False))
            inline = bool(getattr(opts, "inline", False))
            inline_stdout = bool(getattr(opts, "inline_stdout", False))
            default_user = getattr(opts, "default_user", getattr(opts, "user", None))
        if isinstance(cmd, str) or not all(isinstance(a, str) for a in cmd) or not cmd:
            raise TypeError(f"Task cmd must be a non-empty list of strings (an argument vector), not {cmd!r}")
        if not isinstance(host, str) or not host or "/" in host or "\x00" in host:
            raise ValueError(f"Task host {host!r} must be a non-empty name without '/' (it names the output files)")
        self.host = host
        self.port = port
        self.user = user
        self.cmd = list(cmd)
        self.is_local = is_local
        self.pretty_host = host
        if user and user != default_user:
            self.pretty_host = f"{user}@{self.pretty_host}"
        if port:
            self.pretty_host = f"{self.pretty_host}:{port}"
        self.inputbuffer = read_input(stdin)
        self.verbose = bool(verbose)
        self.quiet = bool(quiet)
        self.print_out = bool(print_out)
        self.inline = bool(inline)
        self.inline_stdout = bool(inline) or bool(inline_stdout)
        self.exitstatus: int | None = None
        self.failures: list[str] = []
        self.killed = False
        self.outputbuffer = b""
        self.errorbuffer = b""
        self.timestamp: float | None = None

    def argv(self) -> list[str]:
        """What runs: ``cmd`` itself, or 1.0's local command line through ``/bin/sh -c``."""
        if self.is_local:
            return ["/bin/sh", "-c", " ".join(self.cmd)]
        return self.cmd

    def elapsed(self) -> float:
        """Seconds since the task started (0 before)."""
        return 0.0 if self.timestamp is None else time.time() - self.timestamp

    def cancel(self) -> None:
        """Mark a task that never started as cancelled (1.0)."""
        self.failures.append("Cancelled")

    def __repr__(self) -> str:
        return f"Task({self.pretty_host!r}, exitstatus={self.exitstatus!r}, failures={self.failures!r})"
