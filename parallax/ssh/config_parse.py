"""Reading ssh_config files into validated directives, once per file (OpenSSH ``readconf.c``).

A line is a keyword and its arguments, separated by white space or one
``=``; arguments are split as OpenSSH's ``argv_split`` does (``"`` and ``'``
quotes, backslash escapes, ``#`` at the start of a word ends the line).
Keywords are case-insensitive.  Values are checked here, for every line,
active or not (OpenSSH also rejects a bad value in a block that does not
apply), so a resolve only has to apply them.

Unknown keywords: OpenSSH refuses them ("Bad configuration option") unless
they match ``IgnoreUnknown``; so does parallax (the check happens when the
line is reached, with the ``IgnoreUnknown`` value set by then, as in
OpenSSH).  Keywords OpenSSH knows but parallax does not use (``ForwardAgent``,
``ControlMaster``, ...) are accepted and their values are not checked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .jump import parse_jump
from .keywords import CHOICES, KEYWORDS, Kind
from .patterns import PatternSet

__all__ = [
    "ConfigError",
    "HostBlock",
    "Include",
    "Item",
    "MatchBlock",
    "Origin",
    "ParsedFile",
    "Segment",
    "Setting",
    "Unknown",
    "UnsupportedConfig",
    "parse_file",
    "parse_line",
    "parse_text",
    "split_args",
    "split_line",
]

WHITESPACE = " \t\r\n"
_TIME = re.compile(r"(\d+)([sSmMhHdDwW]?)")
_ALGORITHMS = re.compile(r"[-+^]?[A-Za-z0-9@._*?!-]+(,[A-Za-z0-9@._*?!-]+)*")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MATCH_ATTRIBUTES = frozenset({"all", "canonical", "final", "exec", "localnetwork", "tagged",
                              "host", "originalhost", "user", "localuser"})


class ConfigError(ValueError):
    """A bad ssh_config line or option, or a construct parallax cannot evaluate; names file and line."""


class UnsupportedConfig(ConfigError):
    """A valid construct parallax cannot evaluate faithfully (``Match exec``, ``KnownHostsCommand``, ...).

    The openssh backend, which hands the config to ``ssh`` itself, can still
    serve such a target.
    """


@dataclass(frozen=True)
class Origin:
    """Where a directive came from: a file and line, or a caller's ssh option."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Setting:
    """One keyword with its checked value (a str, int, bool or tuple, by keyword)."""

    key: str
    value: object
    origin: Origin


@dataclass(frozen=True)
class HostBlock:
    """A ``Host`` line: the following settings apply if the original host name matches."""

    patterns: PatternSet
    origin: Origin


@dataclass(frozen=True)
class MatchBlock:
    """A ``Match`` line: criteria ``(attribute, negated, argument or None, its patterns)``, left to right.

    Host patterns are lower-cased (``match_hostname``); user patterns are not.
    """

    criteria: tuple[tuple[str, bool, str | None, PatternSet | None], ...]
    origin: Origin


@dataclass(frozen=True)
class Include:
    """An ``Include`` line; globs are expanded when resolving."""

    patterns: tuple[str, ...]
    origin: Origin


@dataclass(frozen=True)
class Unknown:
    """A keyword OpenSSH does not know; an error unless ``IgnoreUnknown`` matches it."""

    keyword: str
    origin: Origin


Item = Setting | HostBlock | MatchBlock | Include | Unknown


@dataclass(frozen=True)
class Segment:
    """A ``Host``/``Match`` line (None at the top of a file) and the directives up to the next one."""

    head: HostBlock | MatchBlock | None
    body: tuple[Setting | Include | Unknown, ...]
    only_settings: bool  # nothing in body needs a visit when the block does not apply


@dataclass(frozen=True)
class ParsedFile:
    """The directives of one file, in order, grouped into segments."""

    path: str
    items: tuple[Item, ...]
    segments: tuple[Segment, ...]
    #: indexes of the segments every host must visit (top, Match, wildcard Host, Include/unknown inside)
    scan: tuple[int, ...] = ()
    #: literal Host name -> indexes of the other segments whose Host line names it
    by_name: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def visit(self, host: str) -> tuple[int, ...]:
        """The indexes of the segments that can matter for *host*, in order."""
        extra = self.by_name.get(host)
        return self.scan if extra is None else tuple(sorted(self.scan + extra))


def split_line(line: str) -> tuple[str, str] | None:
    """``(keyword lower-cased, rest)`` of a config line; None for blank and comment lines.

    ``ValueError`` for an unbalanced quoted keyword.
    """
    text = line.rstrip(WHITESPACE + "\f").lstrip(WHITESPACE)
    if text.startswith('"'):  # a quoted keyword, as strdelim() allows
        end = text.find('"', 1)
        if end < 0:
            raise ValueError("invalid quotes")
        return text[1:end].lower(), text[end + 1:].lstrip(WHITESPACE)
    i = 0
    while i < len(text) and text[i] not in WHITESPACE + '="':
        i += 1
    keyword, rest = text[:i], text[i:]
    if not keyword or keyword.startswith("#"):
        return None
    had_equals = rest.startswith("=")
    if rest[:1] in (" ", "\t", "=", "\r", "\n"):
        rest = rest[1:].lstrip(WHITESPACE)
        if not had_equals and rest.startswith("="):
            rest = rest[1:].lstrip(WHITESPACE)
    return keyword.lower(), rest


def split_args(text: str) -> list[str] | None:
    """OpenSSH's ``argv_split(..., terminate_on_comment=1)``; None on unbalanced quotes."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        word: list[str] = []
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                word.append(text[i + 1])
                i += 2
                continue
            if not quote and ch in " \t":
                break
            if not quote and ch in "\"'":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                word.append(ch)
            i += 1
        if quote:
            return None
        args.append("".join(word))
    return args


def convtime(text: str) -> int:
    """OpenSSH's ``convtime``: ``90``, ``1m30s``, ``2h`` ... in seconds; -1 if malformed."""
    if not text:
        return -1
    total, pos = 0, 0
    while pos < len(text):
        m = _TIME.match(text, pos)
        if m is None:
            return -1
        total += int(m.group(1)) * _TIME_UNITS[m.group(2).lower()]
        pos = m.end()
    return total if total <= 2**31 - 1 else -1


def parse_line(line: str, origin: Origin, *, cmdline: bool = False) -> Item | None:
    """One line as a directive (None for blank/comment lines); :class:`ConfigError` if bad."""
    try:
        split = split_line(line)
    except ValueError as e:
        raise ConfigError(f"{origin}: {e}") from None
    if split is None:
        return None
    keyword, rest = split
    if not rest:
        raise ConfigError(f"{origin}: no argument after keyword {keyword!r}")
    spec = KEYWORDS.get(keyword)
    if spec is None:
        return Unknown(keyword, origin)
    key, kind = spec
    if kind in (Kind.HOST, Kind.MATCH, Kind.INCLUDE) and cmdline:
        raise ConfigError(f"{origin}: {keyword} is not allowed as an ssh option")
    if kind in (Kind.COMMAND, Kind.JUMP):
        return Setting(key, _raw(keyword, kind, rest.lstrip(WHITESPACE + "="), origin), origin)
    args = split_args(rest)
    if args is None:
        raise ConfigError(f"{origin}: invalid quotes")
    if kind is Kind.IGNORED:
        return Setting(key, tuple(args), origin)
    if kind is Kind.HOST:
        if any(a == "" for a in args):
            raise ConfigError(f"{origin}: empty Host pattern")
        return HostBlock(PatternSet(tuple(args)), origin)
    if kind is Kind.MATCH:
        return MatchBlock(_match_criteria(args, origin), origin)
    if kind is Kind.INCLUDE:
        if any(a == "" for a in args):
            raise ConfigError(f"{origin}: empty Include argument")
        return Include(tuple(args), origin)
    return Setting(key, _value(keyword, kind, args, origin), origin)


def _raw(keyword: str, kind: Kind, value: str, origin: Origin) -> str:
    if kind is Kind.JUMP:
        value = value.split("#", 1)[0].rstrip(WHITESPACE)
        try:
            parse_jump(value)
        except ValueError as e:
            raise ConfigError(f"{origin}: invalid ProxyJump {value!r}: {e}") from None
    return value


def _one(keyword: str, args: list[str], origin: Origin) -> str:
    if not args or args[0] == "":
        raise ConfigError(f"{origin}: missing argument for {keyword}")
    if len(args) > 1:
        raise ConfigError(f"{origin}: keyword {keyword} has extra arguments at end of line")
    return args[0]


def _value(keyword: str, kind: Kind, args: list[str], origin: Origin) -> object:
    if kind is Kind.FILES:
        if any(a == "" for a in args):
            raise ConfigError(f"{origin}: {keyword}: empty argument")
        if any(a.lower() == "none" for a in args) and len(args) > 1:
            raise ConfigError(f"{origin}: {keyword}: 'none' must appear alone")
        if len(args) > 32:
            raise ConfigError(f"{origin}: {keyword}: too many files (max 32)")
        return () if args[0].lower() == "none" else tuple(args)
    if kind is Kind.SENDENV:
        if any(a == "" or "=" in a for a in args):
            raise ConfigError(f"{origin}: SendEnv: invalid environment name in {args!r}")
        return tuple(args)
    if kind is Kind.SETENV:
        if any("=" not in a for a in args):
            raise ConfigError(f"{origin}: SetEnv: expected NAME=VALUE, got {args!r}")
        return tuple(args)
    arg = _one(keyword, args, origin)
    low = arg.lower()
    if kind is Kind.FLAG:
        if low in ("yes", "true"):
            return True
        if low in ("no", "false"):
            return False
        raise ConfigError(f"{origin}: {keyword}: unsupported option {arg!r} (expected yes or no)")
    if kind is Kind.PORT:
        if not arg.isdigit() or not 1 <= int(arg) <= 65535:
            raise ConfigError(f"{origin}: bad port {arg!r}")
        return int(arg)
    if kind is Kind.INT:
        if not arg.isdigit() or int(arg) > 2**31 - 1:
            raise ConfigError(f"{origin}: {keyword}: integer value {arg!r} invalid")
        return int(arg)
    if kind is Kind.TIME:
        seconds = -1 if arg == "none" else convtime(arg)
        if seconds < 0 and arg != "none":
            raise ConfigError(f"{origin}: {keyword}: invalid time value {arg!r}")
        return seconds  # -1 ("none") sets nothing, as in OpenSSH
    if kind is Kind.CHOICE:
        mapping = CHOICES[keyword]
        if low not in mapping:
            raise ConfigError(f"{origin}: {keyword}: unsupported value {arg!r} "
                              f"(expected one of {', '.join(sorted(mapping))})")
        return mapping[low]
    if kind is Kind.ALGORITHMS and not _ALGORITHMS.fullmatch(arg):
        raise ConfigError(f"{origin}: {keyword}: bad algorithm list {arg!r}")
    return arg


def _match_criteria(args: list[str], origin: Origin) -> tuple[tuple[str, bool, str | None, PatternSet | None], ...]:
    if not args:
        raise ConfigError(f"{origin}: Match needs one or more attributes")
    out: list[tuple[str, bool, str | None, PatternSet | None]] = []
    i = 0
    while i < len(args):
        word = args[i]
        negated = word.startswith("!")
        attr = (word[1:] if negated else word).lower()
        i += 1
        if attr not in MATCH_ATTRIBUTES:
            raise ConfigError(f"{origin}: unsupported Match attribute {word!r}")
        if attr in ("all", "canonical", "final"):
            if attr == "all" and (out or i < len(args)):
                raise ConfigError(f"{origin}: Match 'all' cannot be combined with other attributes")
            out.append((attr, negated, None, None))
            continue
        if i >= len(args) or args[i] == "":
            raise ConfigError(f"{origin}: missing Match criteria for {word!r}")
        arg = args[i]
        patterns = None
        if attr in ("host", "originalhost"):
            patterns = PatternSet(tuple(arg.lower().split(",")))
        elif attr in ("user", "localuser"):
            patterns = PatternSet(tuple(arg.split(",")))
        out.append((attr, negated, arg, patterns))
        i += 1
    return tuple(out)


def parse_text(text: str, path: str) -> ParsedFile:
    """The directives of config *text* read from *path* (used in messages)."""
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), 1):
        item = parse_line(line, Origin(path, number))
        if item is not None:
            items.append(item)
    segments: list[Segment] = []
    head: HostBlock | MatchBlock | None = None
    body: list[Setting | Include | Unknown] = []
    for item in [*items, None]:
        if item is None or isinstance(item, (HostBlock, MatchBlock)):
            if head is not None or body:
                segments.append(Segment(head, tuple(body), all(type(b) is Setting for b in body)))
            head, body = item, []
        else:
            body.append(item)
    scan: list[int] = []
    by_name: dict[str, list[int]] = {}
    for index, seg in enumerate(segments):
        names = seg.head.patterns.literal_names() if isinstance(seg.head, HostBlock) else None
        if names is None or not seg.only_settings:
            scan.append(index)
        else:
            for name in names:
                by_name.setdefault(name, []).append(index)
    return ParsedFile(path, tuple(items), tuple(segments), tuple(scan),
                      {k: tuple(v) for k, v in by_name.items()})


def parse_file(path: str, *, check_perm: bool) -> ParsedFile:
    """Read and parse *path*; with *check_perm*, refuse a file others may write (as OpenSSH)."""
    try:
        with open(path, "rb") as f:
            if check_perm:
                st = os.fstat(f.fileno())
                if (st.st_uid not in (0, os.getuid())) or st.st_mode & 0o022:
                    raise ConfigError(f"{path}: bad owner or permissions (writable by others)")
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ssh config: {e.strerror}") from None
    return parse_text(data.decode("utf-8", "surrogateescape"), path)
