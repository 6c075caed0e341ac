"""Node sets as ClusterShell writes them, through ClusterShell's own ``NodeSet``.

``web[01-20]``, ``h[1-2],h[5-6]``, ``h[1-10/2]``, ``h[1-3]!h2`` (exclusion),
``h[1-3]&h[2-5]`` (intersection), ``h[1-3]^h[2-5]`` (symmetric difference),
``r[1-2]n[1-3]`` (several dimensions) and ``@group`` (ClusterShell group
sources, when the user has them configured).  ClusterShell is the reference
implementation (``cluset``), so parallax does not parse node sets itself.

Two guards sit in front of ClusterShell, because it builds every name in
memory (ten million names take it about 40 s): the size a pattern can reach
is bounded from its text before ClusterShell sees it (:data:`MAX_NODES`), and
a group that names no node is an error instead of silently nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ClusterShell.NodeSet import NodeSet, NodeSetException

#: More names than this from one node set is refused (a typo such as h[1-10000000]).
MAX_NODES = 100_000
#: Longest number accepted inside brackets (ClusterShell and int() choke on huge ones).
MAX_DIGITS = 18

__all__ = ["MAX_NODES", "NodeSetError", "count", "expand", "fold", "is_plain", "operands"]

_OPERATORS = ",!&^"
_PLAIN = re.compile(r"[A-Za-z0-9._%-]+")
_ITEM = re.compile(r"\s*\+?(\d[\d_]*)\s*(?:-\s*\+?(\d[\d_]*)\s*(?:/\s*\+?(\d[\d_]*)\s*)?)?")
_NUMBER = re.compile(r"[\d_+]+")
_BODY = re.compile(r"\[([^\[\]]*)\]")


class NodeSetError(ValueError):
    """A node set that ClusterShell cannot parse, that is too large, or that names no node.

    ``pattern`` is the node set as given, ``reason`` the message without it,
    ``syntax`` whether ClusterShell could not parse it (as opposed to: too
    large, or naming no node).
    """

    def __init__(self, pattern: str, reason: str, *, syntax: bool = False) -> None:
        super().__init__(f"invalid node set {_show(pattern)}: {reason}")
        self.pattern = pattern
        self.reason = reason
        self.syntax = syntax


def _show(pattern: str) -> str:
    """``repr`` of *pattern*, shortened so that an error message stays readable."""
    text = repr(pattern)
    return text if len(text) <= 200 else text[:160] + f"...' ({len(pattern)} characters)"


def is_plain(name: str) -> bool:
    """Whether *name* is one node name that ClusterShell would return unchanged.

    Letters, digits, ``.``, ``_``, ``%`` and ``-`` only: no brackets, operators,
    groups or wildcards, so parsing it as a node set is not needed.
    """
    return _PLAIN.fullmatch(name) is not None


def operands(pattern: str) -> list[str]:
    """The operands of *pattern*: the parts between ``, ! & ^`` outside brackets.

    ``h[1-2],h5!@db`` gives ``["h[1-2]", "h5", "@db"]``.  Brackets are not
    checked here (ClusterShell does that).
    """
    parts: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(pattern):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif depth == 0 and char in _OPERATORS:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _number(text: str, pattern: str) -> int:
    digits = text.replace("_", "").replace("+", "")
    if len(digits) > MAX_DIGITS:
        raise NodeSetError(pattern, f"number {text[:30]!r} is too long "
                           f"(more than {MAX_DIGITS} digits)")
    try:
        return int(digits) if digits else 0
    except ValueError:
        return 0  # not a number ClusterShell accepts either; it reports the error


def _body_size(body: str, pattern: str) -> int:
    """An upper bound of the names one ``[...]`` range body can give."""
    total = 0
    for item in body.split(","):
        match = _ITEM.fullmatch(item)
        if match:
            low = _number(match.group(1), pattern)
            high = _number(match.group(2), pattern) if match.group(2) else low
            step = _number(match.group(3), pattern) if match.group(3) else 1
            if high < low:
                raise NodeSetError(pattern, f"reversed range [{item.strip()}]", syntax=True)
            total += len(range(low, high + 1, step)) if step > 0 else 1
        else:  # an odd form ClusterShell may still accept (h[1-3-5]): bound it loosely
            numbers = [_number(n, pattern) for n in _NUMBER.findall(item)]
            total += 2 * max(numbers, default=0) + 1
    return total


def _check_size(pattern: str) -> None:
    """Refuse *pattern* if it could make ClusterShell build more than MAX_NODES names."""
    total = 0
    for operand in operands(pattern):
        size = 1
        for body in _BODY.findall(operand):
            size *= max(_body_size(body, pattern), 1)
            if size > MAX_NODES:
                break
        total += size
        if total > MAX_NODES:
            raise NodeSetError(pattern, f"expands to more than {MAX_NODES} names")


def _nodeset(pattern: str) -> NodeSet:
    try:
        return NodeSet(pattern)
    except NodeSetException as exc:
        raise NodeSetError(pattern, str(exc), syntax=True) from None
    except RecursionError:
        raise NodeSetError(pattern, "nested too deeply", syntax=True) from None
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        if type(exc).__name__ == "GroupResolverSourceError":
            raise NodeSetError(pattern, f"unknown group source {detail!r}") from None
        raise NodeSetError(pattern, detail, syntax=True) from None


def _parse(pattern: object) -> NodeSet:
    if not isinstance(pattern, str):
        raise TypeError(f"node set {pattern!r}: expected a string, not {type(pattern).__name__}")
    if "\x00" in pattern:
        raise NodeSetError(pattern, "contains a NUL character")
    _check_size(pattern)
    nodes = _nodeset(pattern)
    if len(nodes) > MAX_NODES:
        raise NodeSetError(pattern, f"expands to {len(nodes)} names, more than {MAX_NODES}")
    return nodes


def _check_groups(pattern: str) -> None:
    """An operand that names a group (``@web``) or a wildcard must name at least one node."""
    for operand in operands(pattern):
        text = operand.strip()
        if (text.startswith("@") or "*" in text) and not len(_nodeset(text)):
            what = "group" if text.startswith("@") else "wildcard"
            raise NodeSetError(pattern, f"{what} {text!r} names no node "
                               "(unknown group, or no ClusterShell group source defines it)")


def expand(pattern: str, *, allow_empty: bool = False) -> list[str]:
    """The names of *pattern* in ClusterShell's order (``cluset -e``).

    Raises :class:`NodeSetError` (a ``ValueError``) naming the pattern if
    ClusterShell refuses it, if it would give more than :data:`MAX_NODES`
    names, if a group or wildcard in it names no node, or if it names no node
    at all (``h1!h1``) unless *allow_empty* (as ``cluset`` prints nothing);
    ``TypeError`` if it is not a string.  An empty pattern names no node.
    """
    if isinstance(pattern, str) and is_plain(pattern):
        return [pattern]
    nodes = _parse(pattern)
    names = list(nodes)
    if not names:
        _check_groups(pattern)
        if allow_empty or not pattern.strip():
            return []
        raise NodeSetError(pattern, "names no node")
    if "@" in pattern or "*" in pattern:
        _check_groups(pattern)
    return names


def fold(names: Iterable[str]) -> str:
    """The folded node set of *names* (``cluset -f``): ``web[01-03,07]``."""
    items = list(names)
    for name in items:
        if not isinstance(name, str):
            raise TypeError(f"cannot fold {name!r}: node names are strings, not {type(name).__name__}")
    try:
        return str(NodeSet.fromlist(items))
    except NodeSetException as exc:
        raise NodeSetError(",".join(items), f"cannot fold: {exc}") from None
    except Exception as exc:
        raise NodeSetError(",".join(items), f"cannot fold: {exc or type(exc).__name__}") from None


def count(pattern: str) -> int:
    """How many names *pattern* holds (``cluset -c``)."""
    if isinstance(pattern, str) and is_plain(pattern):
        return 1
    return len(_parse(pattern))
