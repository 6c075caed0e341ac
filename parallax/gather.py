"""Identical outcomes folded together, as ClusterShell's ``clubak -b`` and ``dshbak -c`` do.

``parallax.gather(results)`` turns ``{host: result | Error}`` (from ``call``,
``run``, ``copy`` or ``slurp``) into a list of :class:`Group` values: the hosts
that ended the same way, their folded node set (``web[01-03,07]``, through
:func:`parallax.nodeset.fold`) and the outcome they share.  With a thousand
hosts that mostly agree, the answer is a handful of groups instead of a
thousand lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Error
from .nodeset import NodeSetError, fold

__all__ = ["Group", "gather"]

#: Stands for the host's own name in the message of a group of several errors.
HOST_PLACEHOLDER = "<host>"


@dataclass(frozen=True)
class Group:
    """Hosts that share one outcome.

    ``nodes`` is the folded node set of ``hosts`` (``web[01-03]``), ``count``
    how many they are.  A group of results has ``error`` and ``message``
    ``None`` and the shared ``rc``/``stdout``/``stderr``; a group of errors
    has the error's class name in ``error``, its message in ``message`` (in a
    group of several hosts, each host's own name in it reads ``<host>``), its
    ``rc`` (the exit status of a :class:`~parallax.CommandFailed`, else
    ``None``) and the output it carries.
    """

    nodes: str
    count: int
    hosts: tuple[str, ...]
    rc: int | None
    stdout: bytes
    stderr: bytes
    error: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        """Whether these hosts succeeded: a result with exit status 0."""
        return self.error is None and self.rc == 0


def _names(host: str, outcome: Any) -> list[str]:
    """The spellings of *host* an error message may hold (longest first)."""
    names = {host}
    target = getattr(getattr(outcome, "task", None), "target", None)
    for attr in ("label", "host"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            names.add(value)
    return sorted(names, key=len, reverse=True)


def _signature(host: str, outcome: Any) -> tuple[Any, ...]:
    """What two hosts must share to be folded together."""
    if isinstance(outcome, Error):
        message = outcome.msg
        for name in _names(host, outcome):
            message = message.replace(name, HOST_PLACEHOLDER)
        return ("error", type(outcome).__name__, message, outcome.rc, outcome.stdout or b"", outcome.stderr or b"")
    if isinstance(outcome, tuple) and len(outcome) >= 3:
        return ("result", outcome[0], outcome[1] or b"", outcome[2] or b"")
    raise TypeError(f"gather: the outcome for {host!r} is neither a result nor a parallax.Error: {outcome!r}")


def _fold(hosts: list[str]) -> str:
    try:
        return fold(hosts)
    except NodeSetError:  # a name ClusterShell cannot fold: list them as they are
        return ",".join(sorted(hosts))


def gather(results: Mapping[str, Any]) -> list[Group]:
    """Fold the hosts of *results* (``{host: result | Error}``) that ended alike.

    Two hosts are folded when their results have the same exit status,
    stdout and stderr, or when they failed with the same error class,
    message (their own host names aside), exit status and output.  The
    groups come largest first, then by node set.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"gather: expected the dict a parallax call returns, not {type(results).__name__}")
    buckets: dict[tuple[Any, ...], list[str]] = {}
    for host, outcome in results.items():
        buckets.setdefault(_signature(host, outcome), []).append(host)
    groups = []
    for signature, hosts in buckets.items():
        first = results[hosts[0]]
        if signature[0] == "error":
            _, cls, message, rc, out, err = signature
            if len(hosts) == 1:
                message = first.msg
            groups.append(Group(_fold(hosts), len(hosts), tuple(hosts), rc, out, err, cls, message))
        else:
            _, rc, out, err = signature
            groups.append(Group(_fold(hosts), len(hosts), tuple(hosts), rc, out, err))
    groups.sort(key=lambda g: (-g.count, g.nodes))
    return groups
