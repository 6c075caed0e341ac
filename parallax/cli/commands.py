"""``parallax run``, ``copy``, ``slurp`` and ``check``: pssh, pscp, pslurp and a pre-flight.

Each subcommand is one call of :func:`parallax.run`, :func:`parallax.copy`,
:func:`parallax.slurp` or :func:`parallax.check` with the options the flags
ask for; the status lines (or JSON Lines) are that call's ``on_finish``
callback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import parallax

from ..gather import gather
from .config import library_options
from .exitcodes import exit_status
from .hostset import select_hosts
from .output import JsonPrinter, StatusPrinter, print_groups

__all__ = ["check", "copy", "run", "slurp"]


def _reporter(args: argparse.Namespace) -> Callable[[str, Any], None] | None:
    """What prints each host as it ends: JSON Lines, status lines, or nothing (``-b`` prints at the end)."""
    if args.json:
        return JsonPrinter()
    if getattr(args, "gather", False):
        return None
    return StatusPrinter(inline=getattr(args, "inline", False), inline_stdout=getattr(args, "inline_stdout", False))


def _finish(args: argparse.Namespace, results: dict[str, Any]) -> int:
    if getattr(args, "gather", False) and not args.json:
        print_groups(gather(results))
    return exit_status(results)


def run(args: argparse.Namespace) -> int:
    """pssh: run the command on every host."""
    hosts = select_hosts(args)
    opts = library_options(args)
    report = _reporter(args)
    if report is not None:
        opts["on_finish"] = report
    results = parallax.run(hosts, " ".join(args.command), **opts)
    return _finish(args, results)


def _merge(into: dict[str, Any], results: dict[str, Any]) -> None:
    """A host's outcome over several copies: its first failure, else its last result."""
    for host, outcome in results.items():
        if not isinstance(into.get(host), parallax.Error):
            into[host] = outcome


def copy(args: argparse.Namespace) -> int:
    """pscp: copy LOCAL... to REMOTE on every host."""
    hosts = select_hosts(args)
    opts = library_options(args)
    *sources, remote = args.paths
    report = _reporter(args)
    if len(sources) == 1:
        if report is not None:
            opts["on_finish"] = report
        return _finish(args, parallax.copy(hosts, sources[0], remote, **opts))
    # Several sources: one copy each over one session; a host is reported once, at the end.
    merged: dict[str, Any] = {}
    with parallax.Session(hosts, **opts) as session:
        for source in sources:
            _merge(merged, session.copy(source, remote))
    if report is not None:
        for host, outcome in merged.items():
            report(host, outcome)
    return _finish(args, merged)


def slurp(args: argparse.Namespace) -> int:
    """pslurp: copy REMOTE from every host to LOCALDIR/<host>/LOCAL."""
    hosts = select_hosts(args)
    opts = library_options(args)
    remote, local = args.paths
    report = _reporter(args)
    if report is not None:
        opts["on_finish"] = report
    return _finish(args, parallax.slurp(hosts, remote, local, **opts))


def check(args: argparse.Namespace) -> int:
    """Connect, verify the host key and authenticate on every host; run nothing."""
    hosts = select_hosts(args)
    opts = library_options(args)
    report = _reporter(args)
    if report is not None:
        opts["on_finish"] = report
    return _finish(args, parallax.check(hosts, **opts))
