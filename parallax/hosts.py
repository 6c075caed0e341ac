"""Turn the caller's host arguments into validated :class:`HostSpec` values.

Pure logic; the only I/O is reading hosts files.  Accepted entry forms:

* strings ``[user@]NODESET[:port]``, where NODESET is ClusterShell's node-set
  syntax (``web[01-20]``, ``h[1-2],h[5-6]``, ``h[1-10/2]``, ``h[1-3]!h2``,
  ``h[1-3]&h[2-5]``, ``r[1-2]n[1-3]``, ``@group``; see :mod:`parallax.nodeset`)
  and the user and port apply to every host of the set; a plain name is a
  node set of one.  ``[v6addr]``, ``[v6addr]:port``, ``user@[v6addr]:port``,
  and an address with more than one colon and no brackets (``::1``,
  ``fe80::1``, never with a port) are one IPv6 host;
* tuples or lists ``(host,)``, ``(host, port)``, ``(host, port, user)`` where
  ``None`` means unset and ``port`` is an int or a numeric string; the host
  element is one plain name (no ``user@``, ``:port``, brackets or node sets);
* :class:`HostSpec` values, passed through;
* a :class:`os.PathLike` (``pathlib.Path``): a pssh hosts file, read in place.
  A plain string with ``/`` is refused (it is not a host name).

Everything that ends up on an ssh command line or in an ssh config lookup is
validated here: a host or user name may not start with ``-`` and may not hold
whitespace, control characters or any character OpenSSH refuses in a host
name (``' ` " $ \\ ; & < > | ( ) { }``), so it can never be taken for an ssh
option or reach a shell (``Match exec``, ``ProxyCommand``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import nodeset

__all__ = [
    "ENV_VAR",
    "MAX_EXPANSION",
    "Host",
    "HostSpec",
    "name_problem",
    "parse_entry",
    "parse_host",
    "parse_hosts",
    "read_hosts_file",
    "safe_repr",
]

ENV_VAR = "PARALLAX_HOSTS"
MAX_EXPANSION = nodeset.MAX_NODES

#: Characters OpenSSH refuses in a host name (ssh.c ``valid_hostname``).
SHELL_CHARS = "'`\"$\\;&<>|(){}"
#: Node-set syntax: never part of one host name.
_NODESET_CHARS = ",!^@[]*?"
_NODESET_SYNTAX = set("[],!&^@*")
_PORT = re.compile(r"[0-9]+")
_COMMENT = re.compile(r"(^|\s)#.*")
_HINT = "node-set syntax: brackets hold numeric ranges such as web[1-5,7]; ',' '!' '&' '^' combine sets"


def safe_repr(value: object) -> str:
    """``repr`` of *value* for an error message: shortened, and safe for huge ints."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 200 else text[:160] + f"...({len(text)} characters)"


_show = safe_repr


def _bad(entry: object, reason: str, what: str = "host entry") -> ValueError:
    return ValueError(f"invalid {what} {_show(entry)}: {reason}")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Anything but printable ASCII other than SHELL_CHARS: a name without it passes name_problem at once.
_SUSPECT = re.compile("[^\x21-\x7e]|[" + re.escape(SHELL_CHARS) + "]")


def _control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def name_problem(text: str, what: str = "host", *, allow: str = "") -> str | None:
    """Why *text* cannot be a host or user name for ssh, or ``None`` if it can.

    Refuses what OpenSSH refuses in a host name: a leading ``-``, whitespace,
    control characters and ``' ` " $ \\ ; & < > | ( ) { }`` (less the
    characters in *allow*).  The reason starts with *what* (``"user"``...).
    """
    if text.startswith("-"):
        return f"{what} must not start with '-'"
    if _SUSPECT.search(text) is None:  # the usual case, without a look at each character
        return None
    if _control(text):
        return f"{what} must not contain control characters"
    if any(c.isspace() for c in text):
        return f"{what} must not contain whitespace"
    for char in text:
        if char in SHELL_CHARS and char not in allow:
            return f"{what} must not contain {char!r} (OpenSSH refuses it in host names)"
    return None


def _check_host(host: object, entry: object, expanded: str | None = None, label: str = "expanded host") -> str:
    """Validate one bare host name or IPv6 address (no brackets, user or port).

    Errors name *entry*, and *expanded* (the host itself, as *label*) when it is not the entry.
    """
    suffix = "" if expanded is None else f" ({label} {_show(expanded)})"

    def bad(reason: str) -> ValueError:
        return ValueError(f"invalid host entry {_show(entry)}{suffix}: {reason}")

    if not isinstance(host, str):
        raise bad(f"host must be a string, not {type(host).__name__}")
    if not host:
        raise bad("host must not be empty")
    reason = name_problem(host)
    if reason:
        raise bad(reason)
    if "/" in host:
        raise bad("host must not contain '/'")
    if not host.strip("."):
        raise bad("host must not be only dots")
    if "@" in host:
        raise bad("host must not contain '@'")
    if "[" in host or "]" in host:
        raise bad("host must not contain '[' or ']' (unexpanded node set or stray bracket)")
    for char in _NODESET_CHARS:
        if char in host:
            raise bad(f"host must not contain {char!r} (node-set syntax, not part of a name)")
    if host.count(":") == 1:
        raise bad("host must not contain a single ':' (only IPv6 addresses contain ':'; "
                  "a port goes once at the end of the entry)")
    return host


def _check_user(user: object, entry: object, what: str = "host entry") -> str | None:
    """Validate a login name; ``None`` means unset."""
    if user is None:
        return None
    if not isinstance(user, str):
        raise _bad(entry, f"user must be a string or None, not {type(user).__name__}", what)
    if not user:
        raise _bad(entry, "user must not be empty", what)
    reason = name_problem(user, "user")
    if reason:
        raise _bad(entry, reason, what)
    if "@" in user or ":" in user or "/" in user:
        raise _bad(entry, "user must not contain '@', ':' or '/'", what)
    return user


def _check_port(port: object, entry: object) -> int | None:
    """Validate a port given as int or decimal string; ``None`` means unset."""
    if port is None:
        return None
    if isinstance(port, str):
        if not _PORT.fullmatch(port):
            raise _bad(entry, f"port {_show(port)} is not an integer")
        digits = port.lstrip("0") or "0"
        value = int(digits) if len(digits) <= 5 else 10**6
    elif isinstance(port, int) and not isinstance(port, bool):
        value = port
    else:
        raise _bad(entry, f"port {_show(port)} is not an integer")
    if not 1 <= value <= 65535:
        raise _bad(entry, f"port {_show(port)} is outside 1..65535")
    return value


@dataclass(frozen=True)
class HostSpec:
    """One validated host; ``key`` is the result-dict key (the entry as written).

    ``ssh_key`` and ``ssh_options`` (``("Key", "value")`` pairs) are per-host
    settings from a :class:`Host`; they go ahead of the call's own.
    """

    key: str
    host: str
    port: int | None = None
    user: str | None = None
    ssh_key: str | None = None
    ssh_options: tuple[tuple[str, str], ...] = ()
    #: Whether the key is only the bare host name of a tuple or Host entry, which
    #: becomes ``[user@]host[:port]`` when another entry has the same bare name.
    bare_key: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"invalid host key {_show(self.key)}: must be a non-empty string")
        _check_host(self.host, self.key, None if self.host == self.key else self.host, "host")
        if isinstance(self.port, str):
            raise _bad(self.key, f"port {_show(self.port)} is not an integer")
        _check_port(self.port, self.key)
        _check_user(self.user, self.key)


def _split_user(entry: str) -> tuple[str | None, str]:
    """``user@rest``: the last ``@`` that does not start a group (``@web``, ``h1,@web``)."""
    cut = -1
    for i, char in enumerate(entry):
        if char == "@" and i > 0 and entry[i - 1] not in ",!&^@":
            cut = i
    if cut < 0:
        return None, entry
    return entry[:cut], entry[cut + 1 :]


def _outside_brackets(text: str) -> str:
    """*text* with every ``[...]`` body removed (for checks that brackets may override)."""
    return re.sub(r"\[[^\[\]]*\]", "", text)


def _split_port(rest: str, entry: str) -> tuple[str, str | None]:
    """``NODESET[:port]``: the port is after the last ':' of the last operand."""
    last = nodeset.operands(rest)[-1]
    bare = _outside_brackets(last)
    colons = bare.count(":")
    if not colons or (last.startswith("@") and colons == 1):  # @source:group
        return rest, None
    pattern, _, port = rest.rpartition(":")
    if colons > 1 and not last.startswith("@"):
        raise _bad(entry, "an IPv6 address cannot be part of a node set; give it as its own entry")
    return pattern, port


def _check_pattern(pattern: str, entry: str) -> None:
    """Refuse what may never reach ClusterShell or ssh, before expanding anything."""
    if not pattern:
        raise _bad(entry, "host must not be empty")
    for operand in nodeset.operands(pattern):
        if operand.startswith("-"):
            raise _bad(entry, "host must not start with '-'")
        if _outside_brackets(operand).count(":") > 1 and not operand.startswith("@"):
            raise _bad(entry, "an IPv6 address cannot be part of a node set; give it as its own entry")
    reason = name_problem(pattern, allow="&")  # '&' is intersection
    if reason:
        raise _bad(entry, reason)
    if "/" in _outside_brackets(pattern):
        raise _bad(entry, "host must not contain '/' (to read a hosts file, pass a pathlib.Path)")


def _key(user: str | None, host: str, port: str | None) -> str:
    return (f"{user}@" if user is not None else "") + host + (f":{port}" if port is not None else "")


def _parse_ipv6_brackets(entry: str, user: str | None, rest: str, key: str) -> HostSpec:
    close = rest.find("]")
    if close < 0:
        raise _bad(entry, "unbalanced brackets")
    host = rest[1:close]
    tail = rest[close + 1 :]
    port: str | None = None
    if tail.startswith(":"):
        port = tail[1:]
    elif tail:
        raise _bad(entry, f"unexpected {_show(tail)} after ']'")
    if "[" in host:
        raise _bad(entry, "unbalanced brackets")
    _check_host(host, entry)
    return HostSpec(key=key, host=host, port=_check_port(port, entry), user=user)


def parse_entry(entry: str) -> list[HostSpec]:
    """Parse one ``[user@]NODESET[:port]`` string into its hosts, in ClusterShell's order.

    The key of a single host written without node-set syntax is the entry as
    written; the key of each host of a node set is ``[user@]host[:port]``.
    Errors are ``ValueError`` naming the entry (and the expanded host, for a
    host of a node set); ``TypeError`` if *entry* is not a string.
    """
    if not isinstance(entry, str):
        raise TypeError(f"invalid host entry {_show(entry)}: expected a string, not {type(entry).__name__}")
    if not entry:
        raise _bad(entry, "host must not be empty")
    if _control(entry):
        raise _bad(entry, "control characters are not allowed")
    user, rest = _split_user(entry)
    _check_user(user, entry)
    if rest.count("[") != rest.count("]"):
        raise _bad(entry, "unbalanced brackets")
    if rest.startswith("[") and (":" in rest.partition("]")[0] or rest.startswith("[]")):
        return [_parse_ipv6_brackets(entry, user, rest, entry)]
    if rest.count(":") > 1 and not _NODESET_SYNTAX.intersection(rest):  # bare IPv6, never a port
        _check_host(rest, entry)
        return [HostSpec(key=entry, host=rest, port=None, user=user)]
    pattern, port_text = _split_port(rest, entry)
    port = _check_port(port_text, entry)
    _check_pattern(pattern, entry)
    if not _NODESET_SYNTAX.intersection(pattern):
        _check_host(pattern, entry)
        return [HostSpec(key=entry, host=pattern, port=port, user=user)]
    try:
        names = nodeset.expand(pattern)
    except nodeset.NodeSetError as exc:
        raise _bad(entry, f"{exc.reason} ({_HINT})" if exc.syntax else exc.reason) from None
    specs = []
    for name in names:
        _check_host(name, entry, expanded=name)
        specs.append(HostSpec(key=_key(user, name, port_text), host=name, port=port, user=user))
    return specs


def parse_host(entry: str, *, key: str | None = None) -> HostSpec:
    """Parse one ``[user@]host[:port]`` string naming exactly one host.

    Node sets are not expanded here (``web[1-3]`` is an error): use
    :func:`parse_entry` or :func:`parse_hosts`.  ``key`` defaults to ``entry``.
    """
    if not isinstance(entry, str):
        raise _bad(entry, f"expected a string, not {type(entry).__name__}")
    specs = parse_entry(entry)
    if len(specs) != 1 or specs[0].key != entry:
        raise _bad(entry, "a node set (brackets, ',', '!', '&', '^', '@group') is not one host: use parse_hosts()")
    spec = specs[0]
    return spec if key is None else HostSpec(key, spec.host, spec.port, spec.user)


def _parse_tuple(entry: tuple[Any, ...] | list[Any]) -> HostSpec:
    if not 1 <= len(entry) <= 3:
        raise _bad(entry, f"expected 1 to 3 elements (host, port, user), got {len(entry)} elements")
    host, port, user = (*entry, None, None)[:3]
    _check_host(host, entry)
    port = _check_port(port, entry)
    return HostSpec(key=host, host=host, port=port, user=_check_user(user, entry), bare_key=True)


@dataclass(frozen=True)
class Host:
    """One host with its own settings, accepted wherever hosts are::

        parallax.run([Host("web1", user="deploy", port=2222, ssh_key="~/.ssh/deploy"),
                      Host("db1", ssh_options=["ProxyJump=bastion"])], "uptime")

    ``name`` is one host name or address (no node set); ``user``, ``port``
    and ``ssh_key`` win over the call's ``default_user``, ``port`` and
    ``ssh_key``; ``ssh_options`` (``"Key=Value"``) go ahead of the call's
    (OpenSSH keeps the first value).  The result key is ``key`` if given,
    else the name, or ``[user@]name[:port]`` when another entry has the same name.
    """

    name: str
    user: str | None = None
    port: int | None = None
    ssh_key: str | None = None
    ssh_options: tuple[str, ...] | list[str] = ()
    key: str | None = None

    def spec(self) -> HostSpec:
        """The validated :class:`HostSpec` (``ValueError`` naming this host otherwise)."""
        from .options import parse_ssh_option

        shown = f"Host({self.name!r})" if isinstance(self.name, str) else _show(self.name)
        _check_host(self.name, shown)
        port = _check_port(self.port, shown)
        user = _check_user(self.user, shown)
        if self.ssh_key is not None and (not isinstance(self.ssh_key, (str, os.PathLike))
                                         or "\x00" in os.fspath(self.ssh_key)):
            raise _bad(shown, f"ssh_key {_show(self.ssh_key)} is not a path")
        if isinstance(self.ssh_options, str) or not isinstance(self.ssh_options, (tuple, list)):
            raise _bad(shown, f"ssh_options {_show(self.ssh_options)}: expected a list of 'Key=Value' strings")
        options = tuple(parse_ssh_option(o, source=f"{shown} ssh_options") for o in self.ssh_options)
        if self.key is not None and (not isinstance(self.key, str) or not self.key or _control(self.key)):
            raise _bad(shown, f"key {_show(self.key)} must be a non-empty string without control characters")
        return HostSpec(key=self.key or self.name, host=self.name, port=port, user=user,
                        ssh_key=None if self.ssh_key is None else os.fspath(self.ssh_key),
                        ssh_options=options, bare_key=self.key is None)


def _parse_line(line: str) -> list[HostSpec]:
    fields = line.split()
    if len(fields) > 2:
        raise ValueError("too many fields, expected '[user@]host[:port] [user]'")
    user = _check_user(fields[1], fields[1], "user field") if len(fields) == 2 else None
    specs = parse_entry(fields[0])
    if user is not None:
        if any(spec.user is not None for spec in specs):
            raise ValueError("user given twice (as 'user@' and as second field)")
        specs = [HostSpec(spec.key, spec.host, spec.port, user) for spec in specs]
    return specs


def _distinct_keys(items: Iterable[tuple[HostSpec, str]]) -> list[tuple[HostSpec, str]]:
    """A tuple or :class:`Host` entry keeps 1.0's bare-host key unless another entry
    has the same one; then its key spells out what distinguishes it: ``[user@]host[:port]``."""
    pairs = list(items)
    counts: dict[str, int] = {}
    for spec, _ in pairs:
        counts[spec.key] = counts.get(spec.key, 0) + 1
    out = []
    for spec, origin in pairs:
        if spec.bare_key and counts[spec.key] > 1:
            host = f"[{spec.host}]" if ":" in spec.host and spec.port is not None else spec.host
            port = None if spec.port is None else str(spec.port)
            spec = dataclasses.replace(spec, key=_key(spec.user, host, port), bare_key=False)
        out.append((spec, origin))
    return out


def _check_unique(items: Iterable[tuple[HostSpec, str]]) -> list[HostSpec]:
    """Return the specs, or raise if two of them share a result key."""
    seen: dict[str, str] = {}
    specs: list[HostSpec] = []
    for spec, origin in _distinct_keys(items):
        if spec.key in seen:
            first = seen[spec.key]
            where = f"from {first}" if first == origin else f"from {first} and {origin}"
            raise ValueError(f"duplicate host key {spec.key!r} ({where})")
        seen[spec.key] = origin
        specs.append(spec)
    return specs


def _file_name(path: object) -> str:
    try:
        name = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"hosts file {_show(path)}: expected a path, not {type(path).__name__}") from None
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if "\x00" in name:
        raise ValueError(f"hosts file {_show(name)}: a path must not contain a NUL character")
    return str(name)


def _file_items(path: str | os.PathLike[str]) -> Iterator[tuple[HostSpec, str]]:
    name = _file_name(path)
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
            if _control(line.replace("\t", " ")):
                raise ValueError("control characters are not allowed")
            specs = _parse_line(line)
        except ValueError as exc:
            raise ValueError(f"{where} ({_show(line)}): {exc}") from exc
        for spec in specs:
            yield spec, where


def read_hosts_file(path: str | os.PathLike[str]) -> list[HostSpec]:
    """Read a pssh-style hosts file: ``[user@]NODESET[:port] [user]`` per line.

    ``#`` starts a comment (at line start or after whitespace); blank lines
    are skipped; node sets are expanded.  Bad lines raise ``ValueError``
    naming the file and line; ``OSError`` propagates.
    """
    return _check_unique(_file_items(path))


def _readable_file_items(path: object, origin: str = "") -> Iterator[tuple[HostSpec, str]]:
    """:func:`_file_items`, with a file that cannot be read as a ``ValueError`` naming it.

    *origin* says where the path came from (``"PARALLAX_HOSTS names "``).
    """
    try:
        yield from _file_items(path)  # type: ignore[arg-type]
    except OSError as exc:
        reason = exc.strerror or str(exc)
        which = ", which" if origin else ""
        raise ValueError(f"{origin}hosts file {_show(_file_name(path))}{which} cannot be read: {reason}") from exc


def _env_paths(environ: Mapping[str, str]) -> list[str]:
    value = environ.get(ENV_VAR) or ""
    return [p for p in re.split(rf"[\s{re.escape(os.pathsep)}]+", value) if p]


def _env_items(environ: Mapping[str, str]) -> Iterator[tuple[HostSpec, str]]:
    paths = _env_paths(environ)
    if not paths:
        raise ValueError(f"no hosts given and {ENV_VAR} is not set")
    for path in paths:
        if "\x00" in path:
            raise ValueError(f"{ENV_VAR} names hosts file {_show(path)}, which contains a NUL character")
        yield from _readable_file_items(path, f"{ENV_VAR} names ")


def _entry_items(hosts: Iterable[Any], sequence: bool) -> Iterator[tuple[HostSpec, str]]:
    for entry in hosts:
        origin = _show(entry)
        if isinstance(entry, str):
            for spec in parse_entry(entry):
                yield spec, origin
        elif isinstance(entry, (tuple, list)):
            yield _parse_tuple(entry), origin
        elif isinstance(entry, HostSpec):
            yield entry, origin
        elif isinstance(entry, Host):
            yield entry.spec(), origin
        elif isinstance(entry, os.PathLike):
            yield from _readable_file_items(entry)
        else:
            hint = ""
            if sequence and (entry is None or isinstance(entry, int)):
                hint = " (a top-level list or tuple holds entries: write [(host, port, user)])"
            kind = type(entry).__name__
            raise _bad(entry, f"expected a string, a (host, port, user) tuple or a pathlib.Path, not {kind}{hint}")


def parse_hosts(hosts: Any, *, environ: Mapping[str, str] | None = None) -> list[HostSpec]:
    """Normalise the ``hosts`` argument into a list of specs with unique keys, in input order.

    ``hosts`` is one string (one entry, possibly a node set), a
    ``pathlib.Path`` (a hosts file), or a list, tuple or other iterable of
    entries; a top-level tuple is always a collection, so pass one tuple host
    as ``[(host, port)]``.  ``None`` reads the hosts files named in
    ``PARALLAX_HOSTS`` (of ``environ``, default ``os.environ``), separated by
    whitespace or ``os.pathsep``.
    """
    if hosts is None:
        items = _env_items(os.environ if environ is None else environ)
    elif isinstance(hosts, (str, HostSpec, Host, os.PathLike)):
        items = _entry_items([hosts], False)
    elif isinstance(hosts, (bytes, bytearray)) or not isinstance(hosts, Iterable):
        raise ValueError(
            f"invalid hosts argument {_show(hosts)}: expected a string, a pathlib.Path "
            "or an iterable of host entries"
        )
    else:
        items = _entry_items(hosts, isinstance(hosts, (tuple, list)))
    return _check_unique(items)
