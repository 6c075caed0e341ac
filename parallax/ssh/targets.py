"""A parallax :class:`~parallax.jobs.Target` through the shared resolver, the same way for every in-process backend.

The caller's ``user``/``port``/``ssh_key``/``ssh_options`` go ahead of the
ssh config (as on ``ssh``'s command line), ``known_hosts=`` after
``ssh_options`` (where the openssh backend puts its ``-o
UserKnownHostsFile``), and one :class:`~parallax.ssh.config.ConfigResolver`
serves every target of one config file.  Bad configuration is a
:class:`~parallax.errors.BadInput` naming the host and the file, line or option.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..errors import AuthenticationFailed, BadInput, UnsupportedOption
from ..jobs import Target
from .config import USER_CONFIG, ConfigError, ConfigResolver
from .hostconfig import HostConfig

__all__ = ["TargetConfigs", "connect_timeout", "environment", "identity_paths"]


class TargetConfigs:
    """One resolver per ssh config file; each target's connection resolved once (thread-safe)."""

    def __init__(self) -> None:
        self._resolvers: dict[str | None, ConfigResolver] = {}
        self._resolved: dict[Target, HostConfig] = {}
        self._lock = threading.Lock()

    def resolver(self, target: Target) -> ConfigResolver:
        """The resolver of *target*'s ssh config file (``BadInput`` if the file cannot be read)."""
        path = target.ssh_config
        with self._lock:
            found = self._resolvers.get(path)
            if found is None:
                try:
                    found = ConfigResolver(path if path is not None else USER_CONFIG)
                except ConfigError as e:
                    raise BadInput(f"ssh_config: {e}", host=target.key) from None
                self._resolvers[path] = found
            return found

    def resolve(self, target: Target) -> HostConfig:
        """*target*'s :class:`HostConfig` (cached per connection); ``BadInput`` for a bad option or config."""
        key = target.connection
        found = self._resolved.get(key)
        if found is None:
            options: list[tuple[str, str]] = list(target.ssh_options)
            if target.known_hosts is not None and target.host_key_policy != "off":
                options.append(("UserKnownHostsFile", target.known_hosts))  # after ssh_options, as on ssh's argv
            resolver = self.resolver(target)
            try:
                found = resolver.resolve(target.host, user=target.user, port=target.port,
                                         identity_files=[target.ssh_key] if target.ssh_key else [],
                                         ssh_options=options, host_key_policy=target.host_key_policy)
            except ConfigError as e:
                raise BadInput(str(e), host=target.key) from None
            self._resolved[key] = found
        return found

    def check_jumps(self, target: Target) -> None:
        """Refuse a ProxyJump chain that loops (or runs past 16 hops), naming it (``BadInput``)."""
        try:
            self.resolver(target).jump_chain(self.resolve(target))
        except ConfigError as e:
            raise BadInput(str(e), host=target.key) from None

    def check_in_process(self, target: Target, backend: str,
                         check: Callable[[HostConfig], object] | None = None) -> HostConfig:
        """What an in-process backend refuses before anything runs, the same way on each: raw ssh
        arguments (``ssh_extra``, ``UnsupportedOption``), a bad option, config file or ProxyJump loop,
        and whatever *check* (e.g. the library's algorithm tables) raises ``ValueError`` for
        (``BadInput``).  Returns *target*'s :class:`HostConfig`."""
        if target.ssh_extra:
            raise UnsupportedOption(f"ssh_extra {list(target.ssh_extra)!r} (raw OpenSSH arguments) is not "
                                    f"supported by the {backend} backend; use ssh_options", host=target.key)
        self.check_jumps(target)
        hc = self.resolve(target)
        if check is not None:
            try:
                check(hc)
            except ValueError as e:
                raise BadInput(str(e), host=target.key) from None
        return hc


def identity_paths(hc: HostConfig, target: Target) -> list[str]:
    """The identity files to offer that exist (as ssh, a configured but missing one is skipped);
    a missing ``ssh_key=`` is an ``AuthenticationFailed`` naming it, on every backend."""
    if target.ssh_key and not os.path.exists(target.ssh_key):
        raise AuthenticationFailed.at(target, f"identity file {target.ssh_key} not found")
    return [p for p in hc.identity_files if os.path.exists(p)]


def connect_timeout(hc: HostConfig, target: Target) -> float | None:
    """As the openssh backend: ``ConnectTimeout`` from ``ssh_options`` or the config wins over ``connect_timeout=``."""
    return float(hc.connect_timeout) if hc.connect_timeout else target.connect_timeout


def environment(hc: HostConfig, target: Target) -> dict[str, str]:
    """The variables to send: SendEnv matches, SetEnv, then the call's ``env=`` (which wins)."""
    env = hc.environment()
    env.update(dict(target.env))
    return env
