"""OpenSSH's host-pattern matching (``match.c``), shared by ssh_config and known_hosts.

A pattern has only two wildcards: ``*`` (any run of characters, dots
included) and ``?`` (one character); everything else is literal.  A pattern
*list* is comma-separated; a ``!`` prefix negates one entry and a negated
match vetoes the whole list, as OpenSSH's ``match_pattern_list`` does.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["PatternSet", "compile_pattern", "match_hostname", "match_pattern", "match_pattern_list"]


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A compiled regular expression equivalent to one OpenSSH pattern (use ``fullmatch``)."""
    return _regex(pattern)


def match_pattern(text: str, pattern: str) -> bool:
    """Whether *text* matches one pattern (case-sensitive), like ``match_pattern()``."""
    return _regex(pattern).fullmatch(text) is not None


def match_pattern_list(text: str, patterns: str, lower: bool = False) -> int:
    """1 if *text* matches the comma list, -1 if a negated entry matches, else 0.

    With *lower*, the patterns are lower-cased first (the caller lower-cases
    *text*), as OpenSSH's ``dolower`` does.
    """
    return _pattern_list(patterns.lower() if lower else patterns).evaluate(text)


@lru_cache(maxsize=4096)
def _pattern_list(patterns: str) -> PatternSet:
    return PatternSet(tuple(patterns.split(",")))


def match_hostname(host: str, patterns: str) -> int:
    """``match_pattern_list`` with both sides lower-cased (``match_hostname()``)."""
    return match_pattern_list(host.lower(), patterns, lower=True)


class PatternSet:
    """The patterns of one ``Host`` line, compiled once: any positive and no negated match.

    Literal names (most aliases) are a set lookup; only wildcards use a regex.
    """

    __slots__ = ("_neg", "_neg_names", "_pos", "_pos_names")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        pos = [p for p in patterns if not p.startswith("!")]
        neg = [p[1:] for p in patterns if p.startswith("!")]
        self._pos_names = frozenset(p for p in pos if not _WILD.intersection(p))
        self._neg_names = frozenset(p for p in neg if not _WILD.intersection(p))
        self._pos = _union([p for p in pos if _WILD.intersection(p)])
        self._neg = _union([p for p in neg if _WILD.intersection(p)])

    def literal_names(self) -> frozenset[str] | None:
        """The only names that can match, if no positive pattern has a wildcard; else None."""
        return self._pos_names if self._pos is None else None

    def evaluate(self, text: str) -> int:
        """-1 if a negated pattern matches, else 1 if a positive one does, else 0."""
        if text in self._neg_names or (self._neg is not None and self._neg.fullmatch(text) is not None):
            return -1
        return 1 if text in self._pos_names or (self._pos is not None and self._pos.fullmatch(text)) else 0

    def matches(self, text: str) -> bool:
        """Whether a ``Host`` line with these patterns applies to *text*."""
        if text not in self._pos_names and (self._pos is None or self._pos.fullmatch(text) is None):
            return False
        if text in self._neg_names:
            return False
        return self._neg is None or self._neg.fullmatch(text) is None


_WILD = frozenset("*?")


def _union(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{_regex(p).pattern})" for p in patterns), re.DOTALL)
