"""Refusing ``Match exec`` before asyncssh's config loader can run it (until the asyncssh
backend resolves its config through :mod:`parallax.ssh.config`, which never runs anything).

asyncssh's loader runs a ``Match exec`` command through a local shell while it
reads the file; the scan below finds one (in the file and every file its
``Include`` lines pull in) and names the file and line first.
"""

from __future__ import annotations

import os
import re
import shlex

from ..errors import BadInput

__all__ = ["refuse_match_exec"]

_MAX_INCLUDE_DEPTH = 16
_MATCH_LINE = re.compile(r"\s*match(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)
_INCLUDE_LINE = re.compile(r"\s*include(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:  # unbalanced quotes: the libraries refuse the file; look at every word anyway
        return text.split()


def _included(patterns: str) -> list[str]:
    """The files an ``Include`` line pulls in, resolved as asyncssh and OpenSSH do (relative: ~/.ssh)."""
    from pathlib import Path

    files: list[str] = []
    for pattern in _words(patterns):
        path = Path(pattern).expanduser()
        if path.anchor:
            base, rest = Path(path.anchor), str(Path(*path.parts[1:]))
        else:
            base, rest = Path("~", ".ssh").expanduser(), pattern
        try:
            files += sorted(str(p) for p in base.glob(rest) if p.is_file())
        except (OSError, ValueError):
            continue
    return files


def _scan(path: str, follow_include: bool, depth: int, seen: set[str]) -> None:
    real = os.path.realpath(path)
    if real in seen or depth > _MAX_INCLUDE_DEPTH:
        return
    seen.add(real)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return  # the library reports an unreadable file itself
    for lineno, line in enumerate(lines, 1):
        match = _MATCH_LINE.match(line)
        if match:
            for word in _words(match.group(1)):
                if word.lower().lstrip("!").split("=", 1)[0] == "exec":
                    raise BadInput(
                        f"ssh_config file {path!r}, line {lineno}: 'Match exec' runs a local shell command "
                        "while the config is read; the in-process backends (paramiko, asyncssh) refuse it "
                        "(use backend='openssh', whose ssh evaluates it, or remove the line)")
            continue
        include = _INCLUDE_LINE.match(line)
        if include and follow_include:
            for child in _included(include.group(1)):
                _scan(child, follow_include, depth + 1, seen)


def refuse_match_exec(path: str, *, follow_include: bool) -> None:
    """Raise :class:`BadInput` naming the file and line if the ssh config at *path* has ``Match exec``.

    paramiko's ``SSHConfig.lookup`` and asyncssh's config loader run a
    ``Match exec`` command through a local shell, with ``%h`` and friends
    expanded; an in-process backend must never do that, so the file (and,
    with *follow_include*, every file its ``Include`` lines pull in, as
    asyncssh follows them; paramiko does not) is scanned first.  Any word
    ``exec`` among a ``Match`` line's criteria is refused, whatever its
    position.  Not cached: an included file may change while the main one
    does not, and a scan costs a read of a few small files.
    """
    _scan(path, follow_include, 0, set())
