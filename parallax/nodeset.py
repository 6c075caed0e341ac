"""Node sets as ClusterShell writes them, through ClusterShell's own ``NodeSet``.

``web[01-20]``, ``h[1-2],h[5-6]``, ``h[1-10/2]``, ``h[1-3]!h2`` (exclusion),
``h[1-3]&h[2-5]`` (intersection), ``h[1-3]^h[2-5]`` (symmetric difference),
``r[1-2]n[1-3]`` (several dimensions) and ``@group`` (ClusterShell group
sources, when the user has them configured).  ClusterShell is the reference
implementation (``cluset``), so parallax does not parse node sets itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from ClusterShell.NodeSet import NodeSet, NodeSetException

#: More names than this from one node set is refused (a typo such as h[1-10000000]).
MAX_NODES = 100_000

__all__ = ["MAX_NODES", "expand", "fold", "count", "NodeSetError"]


class NodeSetError(ValueError):
    """A node set that ClusterShell cannot parse, or that names no node."""


def _parse(pattern: str) -> NodeSet:
    if not isinstance(pattern, str):
        raise NodeSetError(f"node set {pattern!r}: expected a string, not {type(pattern).__name__}")
    try:
        nodes = NodeSet(pattern)
    except NodeSetException as exc:
        raise NodeSetError(f"invalid node set {pattern!r}: {exc}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # ClusterShell's own bugs on odd input
        raise NodeSetError(f"invalid node set {pattern!r}: {exc}") from None
    if len(nodes) > MAX_NODES:
        raise NodeSetError(f"node set {pattern!r} expands to {len(nodes)} names, more than {MAX_NODES}")
    return nodes


def expand(pattern: str) -> list[str]:
    """The names of *pattern* in ClusterShell's order (``cluset -e``)."""
    nodes = _parse(pattern)
    names = list(nodes)
    if not names and pattern.strip():
        raise NodeSetError(f"node set {pattern!r} names no node"
                           + (" (unknown group or no group source configured)" if "@" in pattern else ""))
    return names


def fold(names: Iterable[str]) -> str:
    """The folded node set of *names* (``cluset -f``): ``web[01-03,07]``."""
    items = list(names)
    try:
        return str(NodeSet.fromlist(items))
    except NodeSetException as exc:
        raise NodeSetError(f"cannot fold {items!r}: {exc}") from None


def count(pattern: str) -> int:
    """How many names *pattern* holds (``cluset -c``)."""
    return len(_parse(pattern))
