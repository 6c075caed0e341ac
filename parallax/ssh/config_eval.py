"""Applying parsed ssh_config directives to one host, in OpenSSH's order (``readconf.c``).

First obtained value wins, except ``IdentityFile``/``CertificateFile``
(accumulate, duplicates dropped) and ``SendEnv`` (accumulates, ``-pattern``
removes).  ``ProxyJump`` and ``ProxyCommand`` exclude each other: the first one
obtained wins, except that ``ProxyJump none`` still lets a later
``ProxyCommand`` through (as ``ssh -G`` shows).  ``Host`` matches the name as given
(case-sensitive); ``Match host`` the HostName obtained so far (with ``%h``),
``Match originalhost`` the name as given (both case-insensitive), ``Match
user`` the User obtained so far, ``Match localuser`` the local account.
``Match exec/canonical/final/localnetwork/tagged`` cannot be evaluated
faithfully (exec would run a command; the others need a second pass or
address lookups): reaching one is a :class:`ConfigError` naming the file and
line.  Nothing is ever executed.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from collections.abc import Callable

from .config_parse import ConfigError, HostBlock, UnsupportedConfig, Include, MatchBlock, ParsedFile, Setting, Unknown
from .patterns import match_pattern, match_pattern_list
from .tokens import TokenError, expand, expand_tilde

__all__ = ["MAX_INCLUDE_DEPTH", "EvalState", "FileLoader", "Globber", "evaluate", "glob_paths"]

MAX_INCLUDE_DEPTH = 16
MAX_IDENTITY_FILES = 100

#: (path, check_perm) -> parsed file; the resolver supplies a caching one.
FileLoader = Callable[[str, bool], ParsedFile]
#: An Include path (glob) -> the files it names, sorted; the resolver supplies a caching one.
Globber = Callable[[str], tuple[str, ...]]


@dataclass
class EvalState:
    """Values obtained so far for one host."""

    host_arg: str
    local_user: str
    values: dict[str, Setting] = field(default_factory=dict)
    identities: list[Setting] = field(default_factory=list)
    certificates: list[Setting] = field(default_factory=list)
    send_env: list[str] = field(default_factory=list)
    _seen: set[tuple[str, bool, str]] = field(default_factory=set)
    _host: str | None = None

    def apply(self, s: Setting, user_provided: bool = False) -> None:
        """Apply one setting of an active block."""
        key = s.key
        if key == "identityfile" or key == "certificatefile":
            target = self.identities if key == "identityfile" else self.certificates
            mark = (key, user_provided, str(s.value))
            if mark in self._seen:
                return
            if len(target) >= MAX_IDENTITY_FILES:
                raise ConfigError(f"{s.origin}: too many {key} entries (max {MAX_IDENTITY_FILES})")
            self._seen.add(mark)
            target.append(s)
        elif key == "sendenv":
            for name in s.value:  # type: ignore[attr-defined]
                if name.startswith("-"):
                    self.send_env = [p for p in self.send_env if not match_pattern(p, name[1:])]
                else:
                    self.send_env.append(name)
        elif key == "proxyjump":
            if "proxyjump" not in self.values and "proxycommand" not in self.values:
                self.values[key] = s
        elif key == "proxycommand":
            jump = self.values.get("proxyjump")
            if key not in self.values and (jump is None or str(jump.value).lower() == "none"):
                self.values[key] = s
        elif key in ("connecttimeout", "serveraliveinterval") and s.value == -1:
            return  # "none" sets nothing
        elif key not in self.values:
            self.values[key] = s

    def current_host(self) -> str:
        """The host name as ``Match host`` sees it now (HostName, once obtained, never changes)."""
        if self._host is not None:
            return self._host
        s = self.values.get("hostname")
        if s is None:
            return self.host_arg
        try:
            self._host = expand(str(s.value), {"h": self.host_arg}, allowed="h")
        except TokenError as e:
            raise ConfigError(f"{s.origin}: HostName: {e}") from None
        return self._host

    def current_user(self) -> str:
        """The remote user as ``Match user`` sees it now."""
        s = self.values.get("user")
        return str(s.value) if s is not None else self.local_user


@dataclass(frozen=True)
class _Walk:
    load: FileLoader
    glob: Globber
    user_config: bool
    include_home: str


def evaluate(parsed: ParsedFile, state: EvalState, *, user_config: bool, include_home: str,
             load: FileLoader, globber: Globber | None = None) -> None:
    """Apply the directives of *parsed* (a top-level file) to *state*."""
    _walk(parsed, state, True, False, 0, _Walk(load, globber or glob_paths, user_config, include_home))


def _walk(parsed: ParsedFile, state: EvalState, active: bool, never: bool, depth: int, w: _Walk) -> None:
    apply = state.apply
    segments = parsed.segments
    for index in parsed.visit(state.host_arg):
        seg = segments[index]
        head = seg.head
        if head is not None:
            if type(head) is HostBlock:
                active = not never and head.patterns.matches(state.host_arg)
            else:
                active = not never and _match(head, state)  # type: ignore[arg-type]
        if not active and seg.only_settings:
            continue
        for item in seg.body:
            kind = type(item)
            if kind is Setting:
                if active:
                    apply(item)  # type: ignore[arg-type]
            elif kind is Include:
                _include(item, state, active, never, depth, w)  # type: ignore[arg-type]
            else:
                _unknown(item, state)  # type: ignore[arg-type]


def _unknown(item: Unknown, state: EvalState) -> None:
    ignored = state.values.get("ignoreunknown")
    if ignored is not None and match_pattern_list(item.keyword, str(ignored.value), lower=True) == 1:
        return
    raise ConfigError(f"{item.origin}: bad configuration option {item.keyword!r} "
                      "(unknown to OpenSSH; list it in IgnoreUnknown to skip it)")


def _match(block: MatchBlock, state: EvalState) -> bool:
    result = True
    for attr, negated, _arg, patterns in block.criteria:
        if attr == "all":
            return not negated if result else False
        if patterns is not None:
            if attr == "host":
                text = state.current_host().lower()
            elif attr == "originalhost":
                text = state.host_arg.lower()
            elif attr == "user":
                text = state.current_user()
            else:
                text = state.local_user
            if (patterns.evaluate(text) == 1) == negated:
                result = False
            continue
        if result:
            what = f"Match {'!' if negated else ''}{attr}"
            reason = ("parallax never runs commands from ssh_config" if attr == "exec"
                      else "it needs OpenSSH's canonicalisation/final pass or network state")
            raise UnsupportedConfig(f"{block.origin}: {what} cannot be evaluated ({reason}); "
                              "use the openssh backend or remove it")
    return result


def _include(item: Include, state: EvalState, active: bool, never: bool, depth: int, w: _Walk) -> None:
    if depth + 1 > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{item.origin}: Include nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)")
    for pattern in item.patterns:
        if pattern.startswith("~"):
            if not w.user_config:
                raise ConfigError(f"{item.origin}: Include {pattern!r}: '~' is not allowed in a system config")
            try:
                path = expand_tilde(pattern, w.include_home)
            except TokenError as e:
                raise ConfigError(f"{item.origin}: Include: {e}") from None
        elif not pattern.startswith("/"):
            base = os.path.join(w.include_home, ".ssh") if w.user_config else "/etc/ssh"
            path = f"{base}/{pattern}"
        else:
            path = pattern
        for found in w.glob(path):
            parsed = w.load(found, True)
            _walk(parsed, state, active, never or not active, depth + 1, w)


def glob_paths(path: str) -> tuple[str, ...]:
    """The files an Include path names, sorted as glob(3) does; none is not an error."""
    if not glob.has_magic(path):
        return (path,) if os.path.exists(path) else ()
    return tuple(sorted(glob.glob(path)))
