"""Hosts + resolved options -> immutable jobs with fully resolved targets.

Pure: the only I/O is reading hosts files (through :mod:`parallax.hosts`).
Everything that can be rejected up front is rejected here, before any
connection is made, with a ``ValueError`` naming the culprit.
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any
from collections.abc import Iterable, Mapping

from .hosts import HostSpec, parse_hosts
from .jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from .options import Settings
from .sudo import wrap as sudo_wrap


def make_target(spec: HostSpec, settings: Settings) -> Target:
    """Combine one host entry with the call's settings (entry values win)."""
    return Target(
        key=spec.key,
        host=spec.host,
        port=spec.port if spec.port is not None else settings.default_port,
        user=spec.user if spec.user is not None else settings.default_user,
        ssh_key=spec.ssh_key if spec.ssh_key is not None else settings.ssh_key,
        ssh_options=spec.ssh_options + settings.ssh_options,  # the host's own first: first value wins
        ssh_extra=settings.ssh_extra,
        connect_timeout=settings.connect_timeout,
        password=settings.password,
        passphrase=settings.passphrase,
        askpass=settings.askpass,
        host_key_policy=settings.host_key_policy,
        known_hosts=settings.known_hosts,
        ssh_config=settings.ssh_config,
        env=settings.env,
    )


def plan_targets(hosts: Any, settings: Settings, environ: Mapping[str, str] | None = None) -> list[Target]:
    """Parse *hosts* (any accepted form; ``None`` reads ``PARALLAX_HOSTS``) into targets."""
    specs = parse_hosts(hosts, environ=environ)
    return [make_target(spec, settings) for spec in specs]


def _check_text(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}: {value!r}")
    if "\x00" in value:
        raise ValueError(f"{what} {value!r} contains a NUL character")
    return value


def is_local(target: Target, local_names: Iterable[str], local_user: str | None) -> bool:
    """1.0's shortcut: the target names this machine with no other port or user."""
    names = {n.lower() for n in local_names}
    return (
        target.host.lower() in names
        and target.port is None
        and (target.user is None or target.user == local_user)
    )


def plan_commands(
    targets: list[Target],
    command: str,
    settings: Settings,
    *,
    check: bool,
    stdin: bytes | None = None,
    local_names: Iterable[str] = (),
    local_user: str | None = None,
) -> list[CommandJob]:
    """One :class:`CommandJob` per target; ``check`` makes a non-zero exit an error."""
    _check_text("command", command)
    if not command.strip():
        raise ValueError("command is empty")
    if settings.sudo:  # the sudo password rides on stdin only (see parallax.sudo)
        command, stdin = sudo_wrap(command, stdin, settings.sudo_user, settings.sudo_password)
    names = tuple(local_names) if settings.local_shortcut else ()
    return [
        CommandJob(
            target=t,
            command=command,
            stdin=stdin,
            check=check,
            local=bool(names) and is_local(t, names, local_user),
        )
        for t in targets
    ]


def plan_put(targets: list[Target], src: str, dst: str, settings: Settings) -> list[PutJob]:
    """One :class:`PutJob` per target copying local *src* to remote *dst*."""
    src = os.fspath(src)
    _check_text("copy source", src)
    _check_text("copy destination", dst)
    if not src:
        raise ValueError("copy source is empty")
    if not dst:
        raise ValueError("copy destination is empty")
    return [PutJob(target=t, src=src, dst=dst, recursive=settings.recursive) for t in targets]


def plan_check(targets: list[Target]) -> list[CheckJob]:
    """One :class:`CheckJob` per target (connect and authenticate only)."""
    return [CheckJob(target=t) for t in targets]


def local_source_problem(src: str, recursive: bool) -> str | None:
    """Why local *src* cannot be copied (missing, unreadable, a directory without
    ``recursive``), or ``None``: a per-host failure, as 1.0 reported it."""
    try:
        st = os.stat(src)
    except OSError as exc:
        return f"{src}: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        if not recursive:
            return f"{src}: is a directory (set recursive=True)"
        if not os.access(src, os.R_OK | os.X_OK):
            return f"{src}: Permission denied"
    elif not os.access(src, os.R_OK):
        return f"{src}: Permission denied"
    return None


def slurp_path(localdir: str | None, key: str, dst: str) -> str:
    """``<localdir>/<host>/<dst>``: where a slurp from *key* lands."""
    return os.path.join(localdir or os.curdir, key, dst)


def plan_get(targets: list[Target], src: str, dst: str, settings: Settings) -> list[GetJob]:
    """One :class:`GetJob` per target copying remote *src* to ``<localdir>/<host>/<dst>``."""
    _check_text("slurp source", src)
    dst = os.fspath(dst)
    _check_text("slurp destination", dst)
    if not src:
        raise ValueError("slurp source is empty")
    if not dst or os.path.isabs(dst):
        raise ValueError(f"slurp: destination {dst!r} must be a non-empty relative path")
    if ".." in posixpath.normpath(dst.replace(os.sep, "/")).split("/"):
        raise ValueError(f"slurp: destination {dst!r} must stay inside the host's directory")
    return [
        GetJob(target=t, src=src, dst=slurp_path(settings.localdir, t.key, dst), recursive=settings.recursive,
               root=settings.localdir or os.curdir)
        for t in targets
    ]


__all__ = [
    "is_local",
    "local_source_problem",
    "make_target",
    "plan_check",
    "plan_commands",
    "plan_get",
    "plan_put",
    "plan_targets",
    "slurp_path",
]
