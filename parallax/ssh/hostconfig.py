"""The resolved configuration of one target: what an in-process backend needs, immutable and typed."""

from __future__ import annotations

import os
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from .jump import JumpHop
from .patterns import match_pattern
from .policy import HostKeyPolicy

__all__ = ["HostConfig"]


@dataclass(frozen=True)
class HostConfig:
    """Everything an in-process backend needs to reach one target, fully resolved.

    Paths are expanded (``~``, ``%`` tokens, ``${VAR}``); ``None`` means
    "not set: use the library's default" where OpenSSH has no fixed default.
    """

    host: str  # the name as given (%n)
    hostname: str  # the real host name to connect to
    port: int
    user: str
    identity_files: tuple[str, ...]  # to try, in order
    default_identities: bool  # True: identity_files are OpenSSH's defaults (none configured)
    certificate_files: tuple[str, ...]
    identities_only: bool
    identity_agent: str | None  # None: no agent; "SSH_AUTH_SOCK": from the environment; else a socket path
    user_known_hosts_files: tuple[str, ...]  # the first receives accept-new records
    global_known_hosts_files: tuple[str, ...]
    strict_host_key_checking: str  # the OpenSSH value: yes, ask, accept-new or no
    host_key_policy: HostKeyPolicy
    host_key_alias: str | None
    hash_known_hosts: bool
    revoked_host_keys: str | None  # RevokedHostKeys file as written (9.2 expands nothing): keys in it are refused
    proxy_jump: tuple[JumpHop, ...]  # first hop first
    proxy_command: str | None  # tokens expanded; run through a shell by whoever supports it
    control_path: str | None
    server_alive_interval: int  # seconds, 0 = off
    server_alive_count_max: int
    tcp_keep_alive: bool
    bind_address: str | None
    connect_timeout: int | None  # seconds
    connection_attempts: int
    ciphers: str | None  # OpenSSH spec, may start with + - ^
    kex_algorithms: str | None
    macs: str | None
    host_key_algorithms: str | None
    send_env: tuple[str, ...]  # patterns of local variable names
    set_env: tuple[tuple[str, str], ...]
    pubkey_authentication: bool
    password_authentication: bool
    kbd_interactive_authentication: bool
    preferred_authentications: tuple[str, ...] | None
    number_of_password_prompts: int
    batch_mode: bool
    compression: bool
    log_level: str  # QUIET FATAL ERROR INFO VERBOSE DEBUG DEBUG2 DEBUG3
    address_family: str  # any, inet, inet6

    @classmethod
    def from_fields(cls, fields: dict[str, object]) -> HostConfig:
        """Build from a complete field dict without the frozen ``__init__`` (one ``setattr`` per field).

        The resolver's hot path (resolving thousands of hosts); the result
        equals ``HostConfig(**fields)``.  ``ValueError`` if a field is missing
        or unknown.
        """
        if fields.keys() != _FIELDS:
            raise ValueError(f"HostConfig fields: missing {sorted(_FIELDS - fields.keys())}, "
                             f"unknown {sorted(fields.keys() - _FIELDS)}")
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    @property
    def host_key_name(self) -> str:
        """The known_hosts name: HostKeyAlias, else ``host`` or ``[host]:port``."""
        if self.host_key_alias is not None:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    @property
    def known_hosts_files(self) -> tuple[str, ...]:
        """User then global known_hosts files, in lookup order."""
        return self.user_known_hosts_files + self.global_known_hosts_files

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables to send: SendEnv matches from *environ* (default ``os.environ``), then SetEnv.

        Without SendEnv the environment is not read at all; with it, which names match is
        computed once per (patterns, names) pair, not once per host."""
        out: dict[str, str] = {}
        if self.send_env:
            env = os.environ if environ is None else environ
            for name in _send_names(self.send_env, tuple(env)):
                out[name] = env[name]
        out.update(self.set_env)
        return out

    def agent_socket(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The agent socket to use, or None (no agent)."""
        env = os.environ if environ is None else environ
        if self.identity_agent is None or self.identity_agent.lower() == "none":
            return None
        if self.identity_agent == "SSH_AUTH_SOCK":
            return env.get("SSH_AUTH_SOCK") or None
        if self.identity_agent.startswith("$"):
            return env.get(self.identity_agent[1:]) or None
        return self.identity_agent


_FIELDS = frozenset(f.name for f in dataclasses.fields(HostConfig))


@lru_cache(maxsize=256)
def _send_names(patterns: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """The *names* (in their order) that some SendEnv pattern matches."""
    return tuple(k for k in names if any(match_pattern(k, p) for p in patterns))
