"""Turn the caller's host arguments into validated :class:`HostSpec` values.

Pure logic, no network.  Accepted entry forms:

* strings ``host``, ``user@host``, ``host:port``, ``user@host:port``,
  ``[v6addr]``, ``[v6addr]:port``, ``user@[v6addr]:port``; an address with
  more than one colon and no brackets (``::1``, ``fe80::1``) is an IPv6 host
  without a port;
* tuples or lists ``(host,)``, ``(host, port)``, ``(host, port, user)`` where
  ``None`` means unset and ``port`` is an int or a numeric string; the host
  element is a plain name (no ``user@``, ``:port`` or brackets);
* :class:`HostSpec` values, passed through.

Strings and hosts-file entries may use ClusterShell-style name ranges
(``web[01-20]``, ``node[1-3,7]``, ``r[1-2]n[1-2]``).  Everything that ends up
on an ssh command line is validated here, so that a host name can never be
taken for an ssh option (``-oProxyCommand=...``) or smuggle in extra words.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENV_VAR",
    "MAX_EXPANSION",
    "HostSpec",
    "expand_ranges",
    "parse_host",
    "parse_hosts",
    "read_hosts_file",
]

ENV_VAR = "PARALLAX_HOSTS"
MAX_EXPANSION = 100_000

_GROUP = re.compile(r"\[([^\[\]]*)\]")
_RANGE_BODY = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
_PORT = re.compile(r"[0-9]+")
_COMMENT = re.compile(r"(^|\s)#.*")


def _bad(entry: object, reason: str, what: str = "host entry") -> ValueError:
    return ValueError(f"invalid {what} {entry!r}: {reason}")


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def _check_host(host: object, entry: object) -> str:
    """Validate a bare host name or IPv6 address (no brackets, user or port)."""
    if not isinstance(host, str):
        raise _bad(entry, f"host must be a string, not {type(host).__name__}")
    if not host:
        raise _bad(entry, "host must not be empty")
    if _has_control(host):
        raise _bad(entry, "host must not contain control characters")
    if host.startswith("-"):
        raise _bad(entry, "host must not start with '-'")
    if _has_space(host):
        raise _bad(entry, "host must not contain whitespace")
    if "/" in host:
        raise _bad(entry, "host must not contain '/'")
    if not host.strip("."):
        raise _bad(entry, "host must not be only dots")
    if "@" in host:
        raise _bad(entry, "host must not contain '@'")
    if "[" in host or "]" in host:
        raise _bad(entry, "host must not contain '[' or ']' (unexpanded range or stray bracket)")
    if host.count(":") == 1:
        raise _bad(entry, "host must not contain a single ':' (only IPv6 addresses contain ':')")
    return host


def _check_user(user: object, entry: object, what: str = "host entry") -> str | None:
    """Validate a login name; ``None`` means unset."""
    if user is None:
        return None
    if not isinstance(user, str):
        raise _bad(entry, f"user must be a string or None, not {type(user).__name__}", what)
    if not user:
        raise _bad(entry, "user must not be empty", what)
    if _has_control(user):
        raise _bad(entry, "user must not contain control characters", what)
    if user.startswith("-"):
        raise _bad(entry, "user must not start with '-'", what)
    if _has_space(user):
        raise _bad(entry, "user must not contain whitespace", what)
    if "@" in user or ":" in user or "/" in user:
        raise _bad(entry, "user must not contain '@', ':' or '/'", what)
    return user


def _check_port(port: object, entry: object) -> int | None:
    """Validate a port given as int or decimal string; ``None`` means unset."""
    if port is None:
        return None
    if isinstance(port, str):
        if not _PORT.fullmatch(port):
            raise _bad(entry, f"port {port!r} is not an integer")
        value = int(port)
    elif isinstance(port, int) and not isinstance(port, bool):
        value = port
    else:
        raise _bad(entry, f"port {port!r} is not an integer")
    if not 1 <= value <= 65535:
        raise _bad(entry, f"port {port!r} is outside 1..65535")
    return value


@dataclass(frozen=True)
class HostSpec:
    """One validated host; ``key`` is the result-dict key (the entry as written)."""

    key: str
    host: str
    port: int | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"invalid host key {self.key!r}: must be a non-empty string")
        _check_host(self.host, self.key)
        if isinstance(self.port, str):
            raise _bad(self.key, f"port {self.port!r} is not an integer")
        _check_port(self.port, self.key)
        _check_user(self.user, self.key)


def parse_host(entry: str, *, key: str | None = None) -> HostSpec:
    """Parse one ``[user@]host[:port]`` string (IPv6 in brackets, or bare without port).

    No range expansion: use :func:`expand_ranges` (or :func:`parse_hosts`) first.
    ``key`` defaults to ``entry``.
    """
    if not isinstance(entry, str):
        raise _bad(entry, f"expected a string, not {type(entry).__name__}")
    if not entry:
        raise _bad(entry, "host must not be empty")
    if _has_control(entry):
        raise _bad(entry, "control characters are not allowed")
    user: str | None = None
    rest = entry
    if "@" in entry:
        user, _, rest = entry.rpartition("@")
        _check_user(user, entry)
    port: str | None = None
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise _bad(entry, "unbalanced brackets")
        host = rest[1:close]
        tail = rest[close + 1 :]
        if tail.startswith(":"):
            port = tail[1:]
        elif tail:
            raise _bad(entry, f"unexpected {tail!r} after ']'")
        if "[" in host:
            raise _bad(entry, "unbalanced brackets")
    elif "[" in rest or "]" in rest:
        if rest.count("[") != rest.count("]"):
            raise _bad(entry, "unbalanced brackets")
        raise _bad(entry, "brackets are only allowed around an IPv6 address or as a name range")
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host = rest
    _check_host(host, entry)
    return HostSpec(
        key=entry if key is None else key,
        host=host,
        port=_check_port(port, entry),
        user=user,
    )


def _range_values(body: str, pattern: str) -> tuple[int, Iterator[str]]:
    """Count and lazily produce the names of one ``[..]`` range group."""
    parts: list[tuple[int, int, int]] = []
    for item in body.split(","):
        low_text, _, high_text = item.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError as exc:
            raise _bad(pattern, f"range [{body}] has an unusable number") from exc
        if high < low:
            raise _bad(pattern, f"reversed range [{item}]")
        parts.append((low, high, len(low_text)))
    count = sum(high - low + 1 for low, high, _ in parts)
    values = (str(n).zfill(width) for low, high, width in parts for n in range(low, high + 1))
    return count, values


def expand_ranges(pattern: str) -> list[str]:
    """Expand ClusterShell-style name ranges: ``node[01-03,7]`` -> node01..node03, node7.

    A bracket group is a range only if it holds digits, ``a-b`` ranges and
    commas, so IPv6 literals such as ``[::1]:22`` are left alone.  The lower
    bound's width sets the zero padding; several groups give the cartesian
    product in order.  More than ``MAX_EXPANSION`` names is an error.
    """
    if not isinstance(pattern, str):
        raise _bad(pattern, f"expected a string, not {type(pattern).__name__}")
    pieces: list[str] = []
    groups: list[Iterator[str]] = []
    total = 1
    pos = 0
    for match in _GROUP.finditer(pattern):
        body = match.group(1)
        if not _RANGE_BODY.fullmatch(body):
            continue
        count, values = _range_values(body, pattern)
        total *= count
        if total > MAX_EXPANSION:
            raise _bad(pattern, f"range expands to more than {MAX_EXPANSION} names")
        pieces.append(pattern[pos : match.start()])
        groups.append(values)
        pos = match.end()
    if not groups:
        return [pattern]
    pieces.append(pattern[pos:])
    names = []
    for combo in itertools.product(*groups):
        names.append("".join(itertools.chain.from_iterable(zip(pieces, combo))) + pieces[-1])
    return names


def _parse_tuple(entry: tuple[Any, ...] | list[Any]) -> HostSpec:
    if not 1 <= len(entry) <= 3:
        raise _bad(entry, f"expected 1 to 3 elements (host, port, user), got {len(entry)} elements")
    host, port, user = (*entry, None, None)[:3]
    _check_host(host, entry)
    port = _check_port(port, entry)
    return HostSpec(key=host, host=host, port=port, user=_check_user(user, entry))


def _parse_line(line: str) -> list[HostSpec]:
    fields = line.split()
    if len(fields) > 2:
        raise ValueError("too many fields, expected '[user@]host[:port] [user]'")
    user = _check_user(fields[1], fields[1], "user field") if len(fields) == 2 else None
    specs: list[HostSpec] = []
    for name in expand_ranges(fields[0]):
        spec = parse_host(name)
        if user is not None:
            if spec.user is not None:
                raise ValueError("user given twice (as 'user@' and as second field)")
            spec = HostSpec(spec.key, spec.host, spec.port, user)
        specs.append(spec)
    return specs


def _check_unique(items: Iterable[tuple[HostSpec, str]]) -> list[HostSpec]:
    """Return the specs, or raise if two of them share a result key."""
    seen: dict[str, str] = {}
    specs: list[HostSpec] = []
    for spec, origin in items:
        if spec.key in seen:
            first = seen[spec.key]
            where = f"from {first}" if first == origin else f"from {first} and {origin}"
            raise ValueError(f"duplicate host key {spec.key!r} ({where})")
        seen[spec.key] = origin
        specs.append(spec)
    return specs


def _file_items(path: str | os.PathLike[str]) -> Iterator[tuple[HostSpec, str]]:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            lines = handle.read().split("\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"hosts file {name!r} is not valid UTF-8: {exc}") from exc
    for lineno, raw in enumerate(lines, 1):
        line = _COMMENT.sub("", raw.removesuffix("\r")).strip()
        if not line:
            continue
        where = f"{name}, line {lineno}"
        try:
            if _has_control(line.replace("\t", " ")):
                raise ValueError("control characters are not allowed")
            specs = _parse_line(line)
        except ValueError as exc:
            raise ValueError(f"{where} ({line!r}): {exc}") from exc
        for spec in specs:
            yield spec, where


def read_hosts_file(path: str | os.PathLike[str]) -> list[HostSpec]:
    """Read a pssh-style hosts file: ``[user@]host[:port] [user]`` per line.

    ``#`` starts a comment (at line start or after whitespace); blank lines
    are skipped; ranges are expanded.  The key is the first field.  Bad lines
    raise ``ValueError`` naming the file and line; ``OSError`` propagates.
    """
    return _check_unique(_file_items(path))


def _env_paths(environ: Mapping[str, str]) -> list[str]:
    value = environ.get(ENV_VAR) or ""
    return [p for p in re.split(rf"[\s{re.escape(os.pathsep)}]+", value) if p]


def _env_items(environ: Mapping[str, str]) -> Iterator[tuple[HostSpec, str]]:
    paths = _env_paths(environ)
    if not paths:
        raise ValueError(f"no hosts given and {ENV_VAR} is not set")
    for path in paths:
        try:
            yield from _file_items(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ValueError(
                f"{ENV_VAR} names hosts file {path!r}, which cannot be read: {reason}"
            ) from exc


def _entry_items(hosts: Iterable[Any], sequence: bool) -> Iterator[tuple[HostSpec, str]]:
    for entry in hosts:
        origin = repr(entry)
        if isinstance(entry, str):
            for name in expand_ranges(entry):
                yield parse_host(name), origin
        elif isinstance(entry, (tuple, list)):
            yield _parse_tuple(entry), origin
        elif isinstance(entry, HostSpec):
            yield entry, origin
        else:
            hint = ""
            if sequence and (entry is None or isinstance(entry, int)):
                hint = " (a top-level list or tuple holds entries: write [(host, port, user)])"
            kind = type(entry).__name__
            raise _bad(entry, f"expected a string or a (host, port, user) tuple, not {kind}{hint}")


def parse_hosts(hosts: Any, *, environ: Mapping[str, str] | None = None) -> list[HostSpec]:
    """Normalise the ``hosts`` argument into a list of specs with unique keys, in input order.

    ``hosts`` is one string (a single entry, possibly a range) or a list,
    tuple or other iterable of entries; a top-level tuple is always a
    collection, so pass one tuple host as ``[(host, port)]``.  ``None`` reads
    the hosts files named in ``PARALLAX_HOSTS`` (of ``environ``, default
    ``os.environ``), separated by whitespace or ``os.pathsep``.
    """
    if hosts is None:
        items = _env_items(os.environ if environ is None else environ)
    elif isinstance(hosts, (str, HostSpec)):
        items = _entry_items([hosts], False)
    elif isinstance(hosts, (bytes, bytearray)) or not isinstance(hosts, Iterable):
        raise ValueError(
            f"invalid hosts argument {hosts!r}: expected a string or an iterable of host entries"
        )
    else:
        items = _entry_items(hosts, isinstance(hosts, (tuple, list)))
    return _check_unique(items)
