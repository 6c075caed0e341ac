"""The hosts a command line names: ``-h`` files, ``-H`` entries, ``-w`` node sets, ``--exclude``.

Everything goes through the library's own parsing (:mod:`parallax.hosts`,
:mod:`parallax.nodeset`), so the command accepts exactly what a program
calling :func:`parallax.call` may pass.  With none of ``-h``/``-H``/``-w``,
the library's ``PARALLAX_HOSTS`` applies.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import nodeset
from ..hosts import HostSpec, parse_hosts, read_hosts_file
from .arguments import UsageError

__all__ = ["select_hosts"]


def _read_file(path: str) -> list[HostSpec]:
    try:
        return read_hosts_file(path)
    except OSError as exc:
        raise UsageError(f"parallax: cannot read hosts file {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"parallax: {exc}") from None


def _expand(pattern: str, flag: str) -> list[str]:
    try:
        return nodeset.expand(pattern)
    except ValueError as exc:
        raise UsageError(f"parallax: {flag} {pattern!r}: {exc}") from None


def select_hosts(args: argparse.Namespace) -> list[HostSpec]:
    """The validated hosts of *args*, in command-line order, minus ``--exclude``."""
    entries: list[Any] = []
    for path in args.host_files:
        entries.extend(_read_file(path))
    for text in args.host_strings:
        words = text.split()
        if not words:
            raise UsageError(f"parallax: -H {text!r}: no host given")
        entries.extend(words)
    for pattern in args.nodesets:
        entries.extend(_expand(pattern, "-w"))
    try:
        specs = parse_hosts(entries if entries else None)
    except ValueError as exc:
        raise UsageError(f"parallax: {exc}") from None
    if args.exclude:
        drop = {name for pattern in args.exclude for name in _expand(pattern, "--exclude")}
        specs = [s for s in specs if s.key not in drop and s.host not in drop]
        if not specs:
            raise UsageError("parallax: --exclude leaves no host to run on")
    return specs
