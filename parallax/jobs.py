"""Immutable units of work produced by the planner and run by the scheduler.

A job carries a fully resolved :class:`Target` (where and how to connect), so
a backend never looks at ``Options`` or the environment itself.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """Where and how to connect to one host; hashable so sessions can pool by it."""

    key: str  # the result-dict key: the host as the caller wrote it
    host: str
    port: int | None = None
    user: str | None = None
    ssh_key: str | None = None
    # ssh options as ("Key", "value") pairs, caller's first (first one wins).
    ssh_options: tuple[tuple[str, str], ...] = ()
    ssh_extra: tuple[str, ...] = ()  # raw extra ssh arguments (openssh only)
    connect_timeout: float | None = None
    # Secrets: never in repr() (jobs and targets end up in logs and error messages).
    password: str | None = field(default=None, repr=False)  # login password (also unlocks keys, see below)
    # unlocks encrypted keys only, never offered to a server; None: ``password`` unlocks keys (1.0)
    passphrase: str | None = field(default=None, repr=False)
    askpass: bool = False
    host_key_policy: str | None = None  # None: the transport's/ssh config's default
    known_hosts: str | None = None
    ssh_config: str | None = None  # None: ~/.ssh/config of the passwd home
    env: tuple[tuple[str, str], ...] = ()

    @property
    def key_passphrase(self) -> str | None:
        """What unlocks an encrypted key: ``passphrase``, else (as in 1.0) ``password``.

        The reverse never happens: a passphrase is offered to a server as a
        login password only if the caller gave the same value as ``password``.
        """
        return self.passphrase if self.passphrase is not None else self.password

    def option(self, name: str) -> str | None:
        """The first value given for ssh option *name* (case-insensitive), if any."""
        low = name.lower()
        for key, value in self.ssh_options:
            if key.lower() == low:
                return value
        return None

    @functools.cached_property
    def connection(self) -> Target:
        """This target without what varies per job (result key, environment): the
        key under which backends pool connections and the scheduler releases them."""
        return dataclasses.replace(self, key="", env=())

    @property
    def label(self) -> str:
        """``[user@]host[:port]`` for messages."""
        text = self.host if ":" not in self.host else f"[{self.host}]"
        if self.user:
            text = f"{self.user}@{text}"
        if self.port:
            text = f"{text}:{self.port}"
        return text


@dataclass(frozen=True)
class CommandJob:
    """Run ``command`` on the target. ``check``: non-zero exit is an error (``call``)."""

    target: Target
    command: str
    stdin: bytes | None = field(default=None, repr=False)  # may begin with a sudo password
    check: bool = True
    local: bool = False  # 1.0 shortcut: the target is this machine; run without ssh

    @property
    def key(self) -> str:
        return self.target.key


@dataclass(frozen=True)
class PutJob:
    """Copy local ``src`` to remote ``dst`` (a directory tree when ``recursive``)."""

    target: Target
    src: str
    dst: str
    recursive: bool = False

    @property
    def key(self) -> str:
        return self.target.key


@dataclass(frozen=True)
class GetJob:
    """Copy remote ``src`` to the local path ``dst`` (``<localdir>/<host>/<dst>``); nothing
    may be written outside ``root`` (``<localdir>``)."""

    target: Target
    src: str
    dst: str
    recursive: bool = False
    root: str = ""

    @property
    def key(self) -> str:
        return self.target.key


@dataclass(frozen=True)
class CheckJob:
    """Connect to the target, verify its host key and authenticate; open no session, run nothing."""

    target: Target

    @property
    def key(self) -> str:
        return self.target.key


Job = CommandJob | PutJob | GetJob | CheckJob

__all__ = ["CheckJob", "CommandJob", "GetJob", "Job", "PutJob", "Target"]
