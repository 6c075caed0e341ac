"""OpenSSH's algorithm-list options (``Ciphers``, ``KexAlgorithms``, ``MACs``, ``HostKeyAlgorithms``)
applied to one SSH library's algorithms, the same way for every in-process backend.

The spec is what :class:`~parallax.ssh.hostconfig.HostConfig` carries
(``name,name``, maybe ``+``/``-``/``^`` prefixed, with ``*``/``?``
patterns); :func:`assemble` turns it into the list to offer exactly as
OpenSSH's ``kex_assemble_names`` does.  Names the library lacks are dropped
(a config written for OpenSSH may name algorithms a library does not have),
but a spec that leaves nothing is an :class:`AlgorithmError` naming the
option, never a connection offering something else.
"""

from __future__ import annotations

from collections.abc import Sequence

from .patterns import match_pattern

__all__ = ["ALGORITHM_OPTIONS", "AlgorithmError", "assemble"]

#: Option name as written in errors -> the HostConfig field holding its spec.
ALGORITHM_OPTIONS = {
    "Ciphers": "ciphers",
    "KexAlgorithms": "kex_algorithms",
    "MACs": "macs",
    "HostKeyAlgorithms": "host_key_algorithms",
}


class AlgorithmError(ValueError):
    """An algorithm option that names nothing the backend's library can offer."""


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("!"):
        return False  # a negation selects nothing on its own (OpenSSH's match_filter_allowlist)
    return match_pattern(name, pattern)


def assemble(option: str, spec: str | None, default: Sequence[str], supported: Sequence[str],
             library: str) -> tuple[str, ...] | None:
    """The algorithms to offer for *option* set to *spec*, or None when it is unset (the library's default).

    *default* is what the backend offers when the option is unset (in its
    order), *supported* every name it can offer.  ``+list`` appends to the
    default, ``-list`` removes matching names from it, ``^list`` puts the list
    first; a plain list replaces it.  Every entry (a name or a pattern) is
    then expanded against *supported*, in *supported*'s order, each name once.
    """
    if not spec:
        return None
    head, body = (spec[0], spec[1:]) if spec[0] in "+-^" else ("", spec)
    names = [n for n in body.split(",") if n]
    if head == "+":
        wanted = [*default, *names]
    elif head == "-":
        wanted = [d for d in default if not any(_matches(d, p) for p in names)]
    elif head == "^":
        wanted = [*names, *default]
    else:
        wanted = names
    out: list[str] = []
    for entry in wanted:
        for name in supported:
            if name not in out and _matches(name, entry):
                out.append(name)
    if not out:
        raise AlgorithmError(f"{option}={spec}: names no algorithm the {library} backend can offer "
                             f"(it has: {','.join(supported)})")
    return tuple(out)
